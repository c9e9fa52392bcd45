/* bind_io.c — Lua binding of the io op family. */
#include "bind.h"

static const luaL_Reg functions[] = {{NULL, NULL}};

void bind_register_io(lua_State *L) { luaL_setfuncs(L, functions, 0); }
