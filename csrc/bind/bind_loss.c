/* bind_loss.c — Lua binding of ops_loss.c: the losses, each with {reduction = "mean" | "sum" | "none"}. */
#include <string.h>

#include "../ops_likelihood.h"
#include "../ops_loss.h"
#include "bind.h"

static gen_reduction reduction(lua_State *L, int idx, const char *fname) {
  if (lua_isnoneornil(L, idx)) return GEN_REDUCE_MEAN;
  if (!lua_istable(L, idx)) bind_error(L, fname, "options must be a table, got %s", luaL_typename(L, idx));
  lua_getfield(L, idx, "reduction");
  const char *r = lua_isnil(L, -1) ? "mean" : lua_tostring(L, -1);
  gen_reduction out = GEN_REDUCE_MEAN;
  if (r && strcmp(r, "sum") == 0)
    out = GEN_REDUCE_SUM;
  else if (r && strcmp(r, "none") == 0)
    out = GEN_REDUCE_NONE;
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

static int l_discretized_gaussian_log_likelihood(lua_State *L) {
  const char *fname = "gen.discretized_gaussian_log_likelihood";
  gen_tensor *x = bind_tensor(L, 1, fname), *mean = bind_tensor(L, 2, fname), *log_scale = bind_tensor(L, 3, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_discretized_gaussian_log_likelihood(x, mean, log_scale);
  return bind_result(L, *slot, fname);
}

static const luaL_Reg functions[] = {{"mse_loss", l_mse_loss},
                                     {"l1_loss", l_l1_loss},
                                     {"bce_with_logits", l_bce_with_logits},
                                     {"binary_cross_entropy", l_binary_cross_entropy},
                                     {"cross_entropy", l_cross_entropy},
                                     {"nll_loss", l_nll_loss},
                                     {"kl_normal", l_kl_normal},
                                     {"discretized_gaussian_log_likelihood", l_discretized_gaussian_log_likelihood},
                                     {NULL, NULL}};

void bind_register_loss(lua_State *L) { luaL_setfuncs(L, functions, 0); }
