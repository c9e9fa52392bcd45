/* bind_linear.c — Lua binding of ops_linear.c: linear(x, w [, b]). */
#include "../ops_linear.h"
#include "bind.h"

static int l_linear(lua_State *L) {
  const char *fname = "gen.linear";
  gen_tensor *x = bind_tensor(L, 1, fname), *w = bind_tensor(L, 2, fname), *b = bind_opt_tensor(L, 3, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_linear(x, w, b);
  return bind_result(L, *slot, fname);
}

static const luaL_Reg functions[] = {{"linear", l_linear}, {NULL, NULL}};

void bind_register_linear(lua_State *L) { luaL_setfuncs(L, functions, 0); }
