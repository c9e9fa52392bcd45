/* bind_linalg.c — Lua binding of ops_linalg.c, as gen.core.linalg_*: lua/gen/linalg.lua builds the
 * public gen.linalg functions on them (broadcasting, P / L / U from the packed factors, options)
 * and names the errors after them. */
#include "../ops_linalg.h"
#include "bind.h"

/* linalg_lu_factor(A) -> LU, pivots, P */
static int l_lu_factor(lua_State *L) {
  gen_tensor *a = bind_tensor(L, 1, "gen.linalg.lu_factor");
  gen_tensor **lu = bind_slot(L), **piv = bind_slot(L), **perm = bind_slot(L);
  *lu = gen_lu_factor(a, piv, perm);
  if (!*lu) bind_core_error(L, "gen.linalg.lu_factor");
  bind_pace_gc(L);
  return 3;
}

/* linalg_slogdet(A) -> sign, logabsdet */
static int l_slogdet(lua_State *L) {
  gen_tensor *a = bind_tensor(L, 1, "gen.linalg.slogdet");
  gen_tensor **sign = bind_slot(L), **logabs = bind_slot(L);
  *logabs = gen_slogdet(a, sign);
  if (!*logabs) bind_core_error(L, "gen.linalg.slogdet");
  bind_pace_gc(L);
  return 2;
}

static int l_inverse(lua_State *L) {
  gen_tensor *a = bind_tensor(L, 1, "gen.linalg.inverse");
  gen_tensor **slot = bind_slot(L);
  *slot = gen_inverse(a);
  return bind_result(L, *slot, "gen.linalg.inverse");
}

/* linalg_solve_triangular(A, B, upper, unitriangular) */
static int l_solve_triangular(lua_State *L) {
  gen_tensor *a = bind_tensor(L, 1, "gen.linalg.solve_triangular"), *b = bind_tensor(L, 2, "gen.linalg.solve_triangular");
  luaL_checktype(L, 3, LUA_TBOOLEAN);
  luaL_checktype(L, 4, LUA_TBOOLEAN);
  bool upper = lua_toboolean(L, 3), unit = lua_toboolean(L, 4);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_solve_triangular(a, b, upper, unit);
  return bind_result(L, *slot, "gen.linalg.solve_triangular");
}

static const luaL_Reg functions[] = {{"linalg_lu_factor", l_lu_factor},
                                     {"linalg_slogdet", l_slogdet},
                                     {"linalg_inverse", l_inverse},
                                     {"linalg_solve_triangular", l_solve_triangular},
                                     {NULL, NULL}};

void bind_register_linalg(lua_State *L) { luaL_setfuncs(L, functions, 0); }
