/* bind_sort.c — Lua binding of ops_sort.c: sort, argsort, topk. Dimensions are 1-based (negative
 * ones count from the end) and default to the last; indices come back 1-based int64. */
#include "../ops_sort.h"
#include "bind.h"

static int dim_or_last(lua_State *L, int idx, const gen_tensor *a, const char *fname) {
  if (a->ndim == 0) bind_error(L, fname, "needs at least 1 dimension, got a 0-d tensor");
  return lua_isnoneornil(L, idx) ? a->ndim - 1 : bind_dim(L, idx, a->ndim, fname);
}

/* values, indices of the first k (all with k < 0) along dim */
static int run(lua_State *L, gen_tensor *a, int64_t k, int dim, bool descending, int nret, const char *fname) {
  gen_tensor **values = bind_slot(L);
  gen_tensor **indices = bind_slot(L);
  *values = gen_topk(a, k < 0 ? a->shape[dim] : k, dim, descending, indices);
  if (!*values) bind_core_error(L, fname);
  bind_pace_gc(L);
  if (nret == 1) lua_remove(L, -2); /* argsort: the indices alone */
  return nret;
}

/* x:sort([d [, descending]]) -> values, indices */
static int l_sort(lua_State *L) {
  gen_tensor *a = bind_tensor(L, 1, "gen.sort");
  int dim = dim_or_last(L, 2, a, "gen.sort");
  return run(L, a, -1, dim, lua_toboolean(L, 3), 2, "gen.sort");
}

/* x:argsort([d [, descending]]) -> indices */
static int l_argsort(lua_State *L) {
  gen_tensor *a = bind_tensor(L, 1, "gen.argsort");
  int dim = dim_or_last(L, 2, a, "gen.argsort");
  return run(L, a, -1, dim, lua_toboolean(L, 3), 1, "gen.argsort");
}

/* x:topk(k [, d [, largest = true]]) -> values, indices (largest first, or smallest first) */
static int l_topk(lua_State *L) {
  gen_tensor *a = bind_tensor(L, 1, "gen.topk");
  lua_Integer k = luaL_checkinteger(L, 2);
  int dim = dim_or_last(L, 3, a, "gen.topk");
  bool largest = lua_isnoneornil(L, 4) ? true : lua_toboolean(L, 4);
  if (k < 0 || k > a->shape[dim]) {
    char buf[128];
    bind_error(L, "gen.topk", "k = %lld out of range for dimension %d of %s (%lld entries)", (long long)k, dim + 1,
               gen_shape_str(buf, sizeof buf, a->ndim, a->shape), (long long)a->shape[dim]);
  }
  return run(L, a, k, dim, largest, 2, "gen.topk");
}

static const luaL_Reg functions[] = {{"sort", l_sort}, {"argsort", l_argsort}, {"topk", l_topk}, {NULL, NULL}};

void bind_register_sort(lua_State *L) { luaL_setfuncs(L, functions, 0); }
