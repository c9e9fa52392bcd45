/* bind_optim.c — Lua binding of the optim op family. */
#include "bind.h"

static const luaL_Reg functions[] = {{NULL, NULL}};

void bind_register_optim(lua_State *L) { luaL_setfuncs(L, functions, 0); }
