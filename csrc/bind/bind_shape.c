/* bind_shape.c — Lua binding of views, shape changes and copies (ops_shape.c). */
#include "../ops_shape.h"
#include "bind.h"

/* x:view(d1, d2, ...) or x:view{d1, d2, ...}; one size may be -1. */
static int view_or_reshape(lua_State *L, gen_tensor *(*fn)(gen_tensor *, int, const int64_t *), const char *fname) {
  gen_tensor *a = bind_tensor(L, 1, fname);
  int64_t shape[GEN_MAX_DIMS];
  int nd = bind_shape_infer(L, 2, shape, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = fn(a, nd, shape);
  return bind_result(L, *slot, fname);
}

static int l_view(lua_State *L) { return view_or_reshape(L, gen_view, "gen.view"); }
static int l_reshape(lua_State *L) { return view_or_reshape(L, gen_reshape, "gen.reshape"); }

static const luaL_Reg functions[] = {{"view", l_view}, {"reshape", l_reshape}, {NULL, NULL}};

void bind_register_shape(lua_State *L) { luaL_setfuncs(L, functions, 0); }
