/* bind_norm.c — Lua binding of normalization, dropout, losses and attention. */
#include <string.h>

#include "../ops_attention.h"
#include "../ops_loss.h"
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

static gen_reduction reduction(lua_State *L, int idx, const char *fname) {
  if (lua_isnoneornil(L, idx)) return GEN_REDUCE_MEAN;
  if (!lua_istable(L, idx)) bind_error(L, fname, "options must be a table, got %s", luaL_typename(L, idx));
  lua_getfield(L, idx, "reduction");
  const char *r = lua_isnil(L, -1) ? "mean" : lua_tostring(L, -1);
  gen_reduction out = GEN_REDUCE_MEAN;
  if (r && strcmp(r, "sum") == 0) out = GEN_REDUCE_SUM;
  else if (r && strcmp(r, "none") == 0) out = GEN_REDUCE_NONE;
  else if (!r || strcmp(r, "mean") != 0)
    bind_error(L, fname, "reduction must be \"mean\", \"sum\" or \"none\", got %s", r ? r : luaL_typename(L, -1));
  lua_pop(L, 1);
  return out;
}

static int loss(lua_State *L, gen_tensor *(*fn)(gen_tensor *, gen_tensor *, gen_reduction), const char *fname) {
  gen_tensor *a = bind_tensor(L, 1, fname), *b = bind_tensor(L, 2, fname);
  gen_reduction r = reduction(L, 3, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = fn(a, b, r);
  return bind_result(L, *slot, fname);
}
static int l_mse_loss(lua_State *L) { return loss(L, gen_mse_loss, "gen.mse_loss"); }
static int l_l1_loss(lua_State *L) { return loss(L, gen_l1_loss, "gen.l1_loss"); }
static int l_bce_with_logits(lua_State *L) { return loss(L, gen_bce_with_logits, "gen.bce_with_logits"); }
static int l_binary_cross_entropy(lua_State *L) { return loss(L, gen_binary_cross_entropy, "gen.binary_cross_entropy"); }
static int l_cross_entropy(lua_State *L) { return loss(L, gen_cross_entropy, "gen.cross_entropy"); }
static int l_nll_loss(lua_State *L) { return loss(L, gen_nll_loss, "gen.nll_loss"); }
static int l_kl_normal(lua_State *L) { return loss(L, gen_kl_normal, "gen.kl_normal"); }

/* scaled_dot_product_attention(q, k, v [, {causal, mask, scale}]) */
static int l_attention(lua_State *L) {
  const char *fname = "gen.scaled_dot_product_attention";
  gen_tensor *q = bind_tensor(L, 1, fname), *k = bind_tensor(L, 2, fname), *v = bind_tensor(L, 3, fname);
  bool causal = bind_opt_bool_field(L, 4, "causal", 0, fname);
  double scale = bind_opt_num_field(L, 4, "scale", 0, fname);
  gen_tensor *mask = NULL;
  if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "mask");
    if (!lua_isnil(L, -1)) mask = bind_tensor(L, lua_gettop(L), fname);
    lua_pop(L, 1); /* the options table keeps it alive */
  }
  gen_tensor **slot = bind_slot(L);
  *slot = gen_attention(q, k, v, mask, causal, scale);
  return bind_result(L, *slot, fname);
}

static const luaL_Reg functions[] = {
    {"batch_norm", l_batch_norm}, {"group_norm", l_group_norm}, {"layer_norm", l_layer_norm}, {"dropout", l_dropout},
    {"mse_loss", l_mse_loss}, {"l1_loss", l_l1_loss}, {"bce_with_logits", l_bce_with_logits},
    {"binary_cross_entropy", l_binary_cross_entropy}, {"cross_entropy", l_cross_entropy}, {"nll_loss", l_nll_loss},
    {"kl_normal", l_kl_normal}, {"scaled_dot_product_attention", l_attention}, {NULL, NULL}};

void bind_register_norm(lua_State *L) { luaL_setfuncs(L, functions, 0); }
