/*
 * runtime.c — gen.runtime, loaded by gen/init.lua just before gen.core, in a module that does
 * not link libgomp.
 *
 * libgomp reads its environment once, when it is loaded (as a dependency of gen.core). By default
 * its idle threads spin for about 300000 iterations before sleeping; on a machine where another
 * process uses a core, the spinning and the waits for a descheduled thread made 2-thread UNet
 * steps 5x slower than 1 thread. OMP_WAIT_POLICY=passive (idle threads sleep at once) keeps 2
 * threads at worst about as fast as 1. A value the user set is left alone.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>

int luaopen_gen_runtime(lua_State *L);

int luaopen_gen_runtime(lua_State *L) {
  setenv("OMP_WAIT_POLICY", "passive", 0);
  lua_newtable(L);
  lua_pushstring(L, getenv("OMP_WAIT_POLICY"));
  lua_setfield(L, -2, "omp_wait_policy");
  return 1;
}
