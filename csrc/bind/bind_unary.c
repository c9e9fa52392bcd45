/* bind_unary.c — Lua binding of the unary op family. */
#include "bind.h"

static const luaL_Reg functions[] = {{NULL, NULL}};

void bind_register_unary(lua_State *L) { luaL_setfuncs(L, functions, 0); }
