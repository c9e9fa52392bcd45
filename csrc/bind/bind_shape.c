/* bind_shape.c — Lua binding of views, shape changes and copies (ops_shape.c). */
#include <string.h>

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

/* x:permute(d1, d2, ...) or x:permute{...} */
static int l_permute(lua_State *L) {
  const char *fname = "gen.permute";
  gen_tensor *a = bind_tensor(L, 1, fname);
  int dims[GEN_MAX_DIMS];
  int n = lua_type(L, 2) == LUA_TTABLE ? (int)luaL_len(L, 2) : lua_gettop(L) - 1;
  if (n != a->ndim) bind_error(L, fname, "got %d dims for a %d-d tensor", n, a->ndim);
  for (int i = 0; i < n; i++) {
    if (lua_type(L, 2) == LUA_TTABLE)
      lua_geti(L, 2, i + 1);
    else
      lua_pushvalue(L, i + 2);
    dims[i] = bind_dim(L, lua_gettop(L), a->ndim, fname);
    lua_pop(L, 1);
  }
  gen_tensor **slot = bind_slot(L);
  *slot = gen_permute(a, dims);
  return bind_result(L, *slot, fname);
}

static int transpose_impl(lua_State *L, gen_tensor *a, int d1, int d2, const char *fname) {
  int dims[GEN_MAX_DIMS];
  for (int d = 0; d < a->ndim; d++) dims[d] = d;
  dims[d1] = d2;
  dims[d2] = d1;
  gen_tensor **slot = bind_slot(L);
  *slot = gen_permute(a, dims);
  return bind_result(L, *slot, fname);
}

static int l_transpose(lua_State *L) {
  const char *fname = "gen.transpose";
  gen_tensor *a = bind_tensor(L, 1, fname);
  int d1 = bind_dim(L, 2, a->ndim, fname), d2 = bind_dim(L, 3, a->ndim, fname);
  return transpose_impl(L, a, d1, d2, fname);
}

static int l_t(lua_State *L) {
  gen_tensor *a = bind_tensor(L, 1, "gen.t");
  if (a->ndim != 2) bind_error(L, "gen.t", "needs a 2-d tensor, got %d dimensions (use transpose)", a->ndim);
  return transpose_impl(L, a, 0, 1, "gen.t");
}

static int l_narrow(lua_State *L) {
  const char *fname = "gen.narrow";
  gen_tensor *a = bind_tensor(L, 1, fname);
  if (a->ndim == 0) bind_error(L, fname, "cannot narrow a 0-d tensor");
  int d = bind_dim(L, 2, a->ndim, fname);
  lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  if (start < 0) start += a->shape[d] + 1; /* negative starts count from the end */
  gen_tensor **slot = bind_slot(L);
  *slot = gen_narrow(a, d, start - 1, len);
  return bind_result(L, *slot, fname);
}

static int l_select(lua_State *L) {
  const char *fname = "gen.select";
  gen_tensor *a = bind_tensor(L, 1, fname);
  if (a->ndim == 0) bind_error(L, fname, "cannot select from a 0-d tensor");
  int d = bind_dim(L, 2, a->ndim, fname);
  int64_t i = bind_index(L, luaL_checkinteger(L, 3), a->shape[d], fname);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_select(a, d, i);
  return bind_result(L, *slot, fname);
}

static int l_expand(lua_State *L) {
  const char *fname = "gen.expand";
  gen_tensor *a = bind_tensor(L, 1, fname);
  int64_t shape[GEN_MAX_DIMS];
  int nd;
  if (lua_type(L, 2) == LUA_TTABLE) {
    nd = (int)luaL_len(L, 2);
    if (nd > GEN_MAX_DIMS) bind_error(L, fname, "too many dimensions");
    for (int i = 0; i < nd; i++) {
      lua_geti(L, 2, i + 1);
      shape[i] = luaL_checkinteger(L, -1);
      lua_pop(L, 1);
    }
  } else {
    nd = lua_gettop(L) - 1;
    if (nd > GEN_MAX_DIMS) bind_error(L, fname, "too many dimensions");
    for (int i = 0; i < nd; i++) shape[i] = luaL_checkinteger(L, i + 2);
  }
  for (int i = 0; i < nd; i++)
    if (shape[i] < -1) bind_error(L, fname, "size %d is negative (%lld)", i + 1, (long long)shape[i]);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_expand(a, nd, shape);
  return bind_result(L, *slot, fname);
}

/* gen.cat({t1, t2, ...} [, d = 1]) */
static int l_cat(lua_State *L) {
  const char *fname = "gen.cat";
  if (lua_type(L, 1) != LUA_TTABLE) bind_error(L, fname, "argument 1: expected a list of tensors, got %s", luaL_typename(L, 1));
  int n = (int)luaL_len(L, 1);
  if (n < 1) bind_error(L, fname, "needs at least one tensor");
  lua_settop(L, 2); /* the optional dim stays at 2, scratch goes above it */
  gen_tensor **ts = lua_newuserdatauv(L, sizeof(gen_tensor *) * (size_t)n, 0);
  for (int i = 0; i < n; i++) {
    lua_geti(L, 1, i + 1);
    ts[i] = bind_totensor(L, -1);
    if (!ts[i]) bind_error(L, fname, "element %d is a %s, not a tensor", i + 1, luaL_typename(L, -1));
    lua_pop(L, 1); /* the list keeps it alive */
  }
  int d = lua_isnoneornil(L, 2) ? 0 : bind_dim(L, 2, ts[0]->ndim, fname);
  if (ts[0]->ndim == 0) bind_error(L, fname, "cannot concatenate 0-d tensors (use gen.stack)");
  gen_tensor **slot = bind_slot(L);
  *slot = gen_cat(n, ts, d);
  return bind_result(L, *slot, fname);
}

static const luaL_Reg functions[] = {{"view", l_view},
                                     {"reshape", l_reshape},
                                     {"permute", l_permute},
                                     {"transpose", l_transpose},
                                     {"t", l_t},
                                     {"narrow", l_narrow},
                                     {"select", l_select},
                                     {"expand", l_expand},
                                     {"cat", l_cat},
                                     {NULL, NULL}};

void bind_register_shape(lua_State *L) { luaL_setfuncs(L, functions, 0); }
