/*
 * fuzz_lua.c — libFuzzer harness for the Lua binding: one Lua state runs fuzz/lua_driver.lua, whose
 * grammar turns each input into a sequence of gen calls (random ops, shapes, dtypes, strides,
 * views and options) under pcall. Every call must return or raise a Lua error; a crash, a
 * sanitizer report or the driver failing aborts. GEN_ROOT (set by the Makefile) is the checkout,
 * for lua/gen and the driver; gen.core is linked in and preloaded.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>

int luaopen_gen_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static int run_ref = LUA_NOREF;

static void setup(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_gen_core);
  lua_setfield(L, -2, "gen.core");
  lua_pop(L, 1);
  const char *code = "package.path = '" GEN_ROOT "/lua/?.lua;" GEN_ROOT "/lua/?/init.lua;' .. package.path\n"
                     "return dofile('" GEN_ROOT "/fuzz/lua_driver.lua')";
  if (luaL_dostring(L, code) != LUA_OK) {
    fprintf(stderr, "fuzz_lua: cannot load the driver: %s\n", lua_tostring(L, -1));
    abort();
  }
  run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) setup();
  lua_rawgeti(L, LUA_REGISTRYINDEX, run_ref);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_lua: %s\n", lua_tostring(L, -1));
    abort();
  }
  return 0;
}
