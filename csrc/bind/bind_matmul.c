/* bind_matmul.c — Lua binding of ops_matmul.c: matmul (batched, broadcasting) and bmm. */
#include "../ops_matmul.h"
#include "bind.h"

static int l_matmul(lua_State *L) {
  gen_tensor *a = bind_tensor(L, 1, "gen.matmul"), *b = bind_tensor(L, 2, "gen.matmul");
  gen_tensor **slot = bind_slot(L);
  *slot = gen_matmul(a, b);
  return bind_result(L, *slot, "gen.matmul");
}

static int l_bmm(lua_State *L) {
  gen_tensor *a = bind_tensor(L, 1, "gen.bmm"), *b = bind_tensor(L, 2, "gen.bmm");
  if (a->ndim != 3 || b->ndim != 3 || a->shape[0] != b->shape[0]) {
    char sa[GEN_SHAPE_STR_MAX], sb[GEN_SHAPE_STR_MAX];
    bind_error(L, "gen.bmm", "needs two 3-d tensors with the same batch size, got %s and %s",
               gen_shape_str(sa, sizeof sa, a->ndim, a->shape), gen_shape_str(sb, sizeof sb, b->ndim, b->shape));
  }
  gen_tensor **slot = bind_slot(L);
  *slot = gen_matmul(a, b);
  return bind_result(L, *slot, "gen.bmm");
}

static const luaL_Reg functions[] = {{"matmul", l_matmul}, {"bmm", l_bmm}, {NULL, NULL}};

void bind_register_matmul(lua_State *L) { luaL_setfuncs(L, functions, 0); }
