/* bind_norm.c — Lua binding of ops_norm.c: batch, group and layer normalization, and dropout. */
#include "../ops_norm.h"
#include "bind.h"

/* batch_norm(x, running_mean, running_var, w, b, {training, momentum, eps}) */
static int l_batch_norm(lua_State *L) {
  const char *fname = "gen.batch_norm";
  gen_tensor *x = bind_tensor(L, 1, fname), *rm = bind_opt_tensor(L, 2, fname), *rv = bind_opt_tensor(L, 3, fname);
  gen_tensor *w = bind_opt_tensor(L, 4, fname), *b = bind_opt_tensor(L, 5, fname);
  bool training = bind_opt_bool_field(L, 6, "training", 1, fname);
  double momentum = bind_opt_num_field(L, 6, "momentum", 0.1, fname), eps = bind_opt_num_field(L, 6, "eps", 1e-5, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_batch_norm(x, rm, rv, w, b, training, momentum, eps);
  return bind_result(L, *slot, fname);
}

/* group_norm(x, groups, w, b [, eps]) */
static int l_group_norm(lua_State *L) {
  const char *fname = "gen.group_norm";
  gen_tensor *x = bind_tensor(L, 1, fname);
  lua_Integer groups = luaL_checkinteger(L, 2);
  gen_tensor *w = bind_opt_tensor(L, 3, fname), *b = bind_opt_tensor(L, 4, fname);
  double eps = luaL_optnumber(L, 5, 1e-5);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_group_norm(x, groups, w, b, eps);
  return bind_result(L, *slot, fname);
}

/* layer_norm(x, normalized_shape, w, b [, eps]) */
static int l_layer_norm(lua_State *L) {
  const char *fname = "gen.layer_norm";
  gen_tensor *x = bind_tensor(L, 1, fname);
  int64_t shape[GEN_MAX_DIMS];
  int nd;
  if (lua_isinteger(L, 2)) {
    nd = 1;
    shape[0] = lua_tointeger(L, 2);
  } else if (lua_istable(L, 2)) {
    nd = bind_shape(L, 2, shape, fname);
  } else {
    return bind_error(L, fname, "argument 2: normalized shape must be an integer or a table, got %s", luaL_typename(L, 2));
  }
  gen_tensor *w = bind_opt_tensor(L, 3, fname), *b = bind_opt_tensor(L, 4, fname);
  double eps = luaL_optnumber(L, 5, 1e-5);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_layer_norm(x, nd, shape, w, b, eps);
  return bind_result(L, *slot, fname);
}

/* dropout(x, p [, training = true [, {generator = g}]]) */
static int l_dropout(lua_State *L) {
  const char *fname = "gen.dropout";
  gen_tensor *x = bind_tensor(L, 1, fname);
  double p = luaL_optnumber(L, 2, 0.5);
  bool training = lua_isnoneornil(L, 3) ? true : lua_toboolean(L, 3);
  gen_generator *g = lua_istable(L, 4) ? bind_generator_opt(L, 4, fname) : gen_default_generator();
  gen_tensor **slot = bind_slot(L);
  *slot = gen_dropout(x, p, training, g);
  return bind_result(L, *slot, fname);
}

static const luaL_Reg functions[] = {{"batch_norm", l_batch_norm},
                                     {"group_norm", l_group_norm},
                                     {"layer_norm", l_layer_norm},
                                     {"dropout", l_dropout},
                                     {NULL, NULL}};

void bind_register_norm(lua_State *L) { luaL_setfuncs(L, functions, 0); }
