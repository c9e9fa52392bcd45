/* bind_quantize.c — Lua binding of ops_quantize.c: vector_quantize, the two VQ losses, the EMA update. */
#include "../ops_quantize.h"
#include "bind.h"

/* zq, indices = gen.vector_quantize(z, codebook) */
static int l_vector_quantize(lua_State *L) {
  const char *fname = "gen.vector_quantize";
  gen_tensor *z = bind_tensor(L, 1, fname), *codebook = bind_tensor(L, 2, fname);
  gen_tensor **out = bind_slot(L), **idx = bind_slot(L);
  *out = gen_vector_quantize(z, codebook, idx);
  if (!*out) bind_core_error(L, fname);
  bind_pace_gc(L);
  return 2;
}

static int loss(lua_State *L, gen_tensor *(*fn)(gen_tensor *, gen_tensor *, gen_tensor *), const char *fname) {
  gen_tensor *z = bind_tensor(L, 1, fname), *codebook = bind_tensor(L, 2, fname), *idx = bind_tensor(L, 3, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = fn(z, codebook, idx);
  return bind_result(L, *slot, fname);
}
static int l_vq_codebook_loss(lua_State *L) { return loss(L, gen_vq_codebook_loss, "gen.vq_codebook_loss"); }
static int l_vq_commitment_loss(lua_State *L) { return loss(L, gen_vq_commitment_loss, "gen.vq_commitment_loss"); }

/* counts = gen.vq_ema_update_(codebook, cluster_size, embed_sum, z, indices [, {decay = 0.99, eps = 1e-5}]) */
static int l_vq_ema_update_(lua_State *L) {
  const char *fname = "gen.vq_ema_update_";
  gen_tensor *codebook = bind_tensor(L, 1, fname), *cluster_size = bind_tensor(L, 2, fname);
  gen_tensor *embed_sum = bind_tensor(L, 3, fname), *z = bind_tensor(L, 4, fname), *idx = bind_tensor(L, 5, fname);
  if (!lua_isnoneornil(L, 6) && !lua_istable(L, 6)) bind_error(L, fname, "options must be a table, got %s", luaL_typename(L, 6));
  double decay = lua_isnoneornil(L, 6) ? 0.99 : bind_opt_num_field(L, 6, "decay", 0.99, fname);
  double eps = lua_isnoneornil(L, 6) ? 1e-5 : bind_opt_num_field(L, 6, "eps", 1e-5, fname);
  if (codebook->ndim != 2 || codebook->shape[0] < 1 || !gen_dtype_is_float(codebook->dtype))
    bind_error(L, fname, "codebook must be a non-empty float {K, D} tensor");
  gen_tensor **counts = bind_slot(L);
  *counts = gen_zeros(codebook->dtype, 1, codebook->shape);
  if (!*counts) bind_core_error(L, fname);
  if (gen_vq_ema_update_(codebook, cluster_size, embed_sum, z, idx, decay, eps, *counts) < 0) bind_core_error(L, fname);
  bind_pace_gc(L);
  return 1;
}

static const luaL_Reg functions[] = {{"vector_quantize", l_vector_quantize},
                                     {"vq_codebook_loss", l_vq_codebook_loss},
                                     {"vq_commitment_loss", l_vq_commitment_loss},
                                     {"vq_ema_update_", l_vq_ema_update_},
                                     {NULL, NULL}};

void bind_register_quantize(lua_State *L) { luaL_setfuncs(L, functions, 0); }
