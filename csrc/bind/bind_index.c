/* bind_index.c — Lua binding of index_select, gather, scatter_add, embedding (ops_index.c). */
#include "../autograd.h"
#include "../ops_index.h"
#include "bind.h"

/* x:index_select(d, idx) and x:gather(d, idx) */
static int select_along(lua_State *L, gen_tensor *(*fn)(gen_tensor *, int, gen_tensor *), const char *fname) {
  gen_tensor *a = bind_tensor(L, 1, fname);
  if (a->ndim == 0) bind_error(L, fname, "cannot index a 0-d tensor");
  int d = bind_dim(L, 2, a->ndim, fname);
  gen_tensor *idx = bind_tensor(L, 3, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = fn(a, d, idx);
  return bind_result(L, *slot, fname);
}
static int l_index_select(lua_State *L) { return select_along(L, gen_index_select, "gen.index_select"); }
static int l_gather(lua_State *L) { return select_along(L, gen_gather, "gen.gather"); }

static int scatter_add_impl(lua_State *L, bool inplace, const char *fname) {
  gen_tensor *a = bind_tensor(L, 1, fname);
  if (a->ndim == 0) bind_error(L, fname, "cannot index a 0-d tensor");
  int d = bind_dim(L, 2, a->ndim, fname);
  gen_tensor *idx = bind_tensor(L, 3, fname), *src = bind_tensor(L, 4, fname);
  if (inplace && gen_check_inplace(a) < 0) bind_core_error(L, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_scatter_add(a, d, idx, src);
  if (!*slot) bind_core_error(L, fname);
  if (inplace) {
    if (gen_copy_raw(a, *slot) < 0) bind_core_error(L, fname);
    lua_settop(L, 1);
  }
  return bind_result(L, *slot, fname);
}

static int l_scatter_add(lua_State *L) { return scatter_add_impl(L, false, "gen.scatter_add"); }
static int l_scatter_add_(lua_State *L) { return scatter_add_impl(L, true, "gen.scatter_add_"); }

static int l_embedding(lua_State *L) {
  const char *fname = "gen.embedding";
  gen_tensor *idx = bind_tensor(L, 1, fname), *w = bind_tensor(L, 2, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_embedding(idx, w);
  return bind_result(L, *slot, fname);
}

static const luaL_Reg functions[] = {{"index_select", l_index_select}, {"gather", l_gather},       {"scatter_add", l_scatter_add},
                                     {"scatter_add_", l_scatter_add_}, {"embedding", l_embedding}, {NULL, NULL}};

void bind_register_index(lua_State *L) { luaL_setfuncs(L, functions, 0); }
