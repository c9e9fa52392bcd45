/* bind_attention.c — Lua binding of ops_attention.c: scaled_dot_product_attention. */
#include "../ops_attention.h"
#include "bind.h"

/* scaled_dot_product_attention(q, k, v [, {causal, offset, mask, scale}]) */
static int l_attention(lua_State *L) {
  const char *fname = "gen.scaled_dot_product_attention";
  gen_tensor *q = bind_tensor(L, 1, fname), *k = bind_tensor(L, 2, fname), *v = bind_tensor(L, 3, fname);
  bool causal = bind_opt_bool_field(L, 4, "causal", 0, fname);
  lua_Integer offset = bind_opt_int_field(L, 4, "offset", 0, fname);
  double scale = bind_opt_num_field(L, 4, "scale", 0, fname);
  gen_tensor *mask = NULL;
  if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "mask");
    if (!lua_isnil(L, -1)) mask = bind_tensor(L, lua_gettop(L), fname);
    lua_pop(L, 1); /* the options table keeps it alive */
  }
  gen_tensor **slot = bind_slot(L);
  *slot = gen_attention(q, k, v, mask, causal, (int64_t)offset, scale);
  return bind_result(L, *slot, fname);
}

static const luaL_Reg functions[] = {{"scaled_dot_product_attention", l_attention}, {NULL, NULL}};

void bind_register_attention(lua_State *L) { luaL_setfuncs(L, functions, 0); }
