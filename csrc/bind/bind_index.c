/* bind_index.c — Lua binding of the index op family. */
#include "bind.h"

static const luaL_Reg functions[] = {{NULL, NULL}};

void bind_register_index(lua_State *L) { luaL_setfuncs(L, functions, 0); }
