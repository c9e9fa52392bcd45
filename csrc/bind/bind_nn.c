/* bind_nn.c — Lua binding of the nn op family. */
#include "bind.h"

static const luaL_Reg functions[] = {{NULL, NULL}};

void bind_register_nn(lua_State *L) { luaL_setfuncs(L, functions, 0); }
