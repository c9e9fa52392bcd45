/* bind_norm.c — Lua binding of normalization, dropout, losses and attention. */
#include "bind.h"

static const luaL_Reg functions[] = {{NULL, NULL}};

void bind_register_norm(lua_State *L) { luaL_setfuncs(L, functions, 0); }
