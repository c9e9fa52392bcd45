/* bind_config.c — gen.config(): what this process runs with (ISA level, threads, BLAS, build). */
#include <cblas.h>
#include <string.h>

#include "../kernels/gemm.h"
#include "../kernels/isa.h"
#include "bind.h"

#if defined(__SANITIZE_ADDRESS__)
#define BUILD_SANITIZERS ", AddressSanitizer"
#else
#define BUILD_SANITIZERS ""
#endif
#if defined(__clang__)
#define BUILD_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define BUILD_COMPILER "gcc " __VERSION__
#else
#define BUILD_COMPILER "unknown compiler"
#endif

/* gen.config() -> {isa = "avx512", isa_available = {"avx512", "avx2", "generic"}, threads = 2,
 *   blas = "OpenBLAS 0.3.21 ... (core Haswell)", sgemm = "gen" | "openblas", build = "gcc 12.2.0, x86-64"} */
static int l_config(lua_State *L) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, gen_isa_name(gen_isa()));
  lua_setfield(L, -2, "isa");
  int best = (int)gen_isa_best();
  lua_createtable(L, best + 1, 0);
  for (int l = best; l >= 0; l--) {
    lua_pushstring(L, gen_isa_name((gen_isa_level)l));
    lua_rawseti(L, -2, best - l + 1);
  }
  lua_setfield(L, -2, "isa_available");
  lua_pushinteger(L, gen_get_num_threads());
  lua_setfield(L, -2, "threads");
  lua_pushfstring(L, "%s (core %s)", openblas_get_config(), openblas_get_corename());
  lua_setfield(L, -2, "blas");
  lua_pushstring(L, gen_sgemm_backend());
  lua_setfield(L, -2, "sgemm");
#if GEN_ISA_X86
  lua_pushstring(L, BUILD_COMPILER ", x86-64 with runtime ISA dispatch" BUILD_SANITIZERS);
#else
  lua_pushstring(L, BUILD_COMPILER ", generic kernels only" BUILD_SANITIZERS);
#endif
  lua_setfield(L, -2, "build");
  return 1;
}

void bind_register_config(lua_State *L) {
  /* first thing at load: a bad GEN_ISA fails require "gen" with the reason */
  const char *err = gen_isa_init();
  if (err) luaL_error(L, "gen: %s", err);
  lua_pushcfunction(L, l_config);
  lua_setfield(L, -2, "config");
}
