/* bind_optim.c — Lua binding of the optimizer updates (optim.c). Called by lua/gen/optim. */
#include "../autograd.h"
#include "../optim.h"
#include "bind.h"

/* adam_step_(p, g, m, v, {lr, beta1, beta2, eps, weight_decay, step, decoupled}) */
static int l_adam_step(lua_State *L) {
  const char *fname = "gen.optim.Adam";
  gen_tensor *p = bind_tensor(L, 1, fname), *g = bind_tensor(L, 2, fname), *m = bind_tensor(L, 3, fname),
             *v = bind_tensor(L, 4, fname);
  gen_adam_config c = {
      .lr = bind_opt_num_field(L, 5, "lr", 1e-3, fname),
      .beta1 = bind_opt_num_field(L, 5, "beta1", 0.9, fname),
      .beta2 = bind_opt_num_field(L, 5, "beta2", 0.999, fname),
      .eps = bind_opt_num_field(L, 5, "eps", 1e-8, fname),
      .weight_decay = bind_opt_num_field(L, 5, "weight_decay", 0, fname),
      .step = bind_opt_int_field(L, 5, "step", 1, fname),
      .decoupled = bind_opt_bool_field(L, 5, "decoupled", 0, fname),
  };
  if (c.step < 1) bind_error(L, fname, "step must be >= 1");
  if (gen_adam_step(p, g, m, v, &c) < 0) bind_core_error(L, fname);
  return 0;
}

/* sgd_step_(p, g, buf | nil, {lr, momentum, dampening, weight_decay, nesterov, first_step}) */
static int l_sgd_step(lua_State *L) {
  const char *fname = "gen.optim.SGD";
  gen_tensor *p = bind_tensor(L, 1, fname), *g = bind_tensor(L, 2, fname), *buf = bind_opt_tensor(L, 3, fname);
  gen_sgd_config c = {
      .lr = bind_opt_num_field(L, 4, "lr", 1e-2, fname),
      .momentum = bind_opt_num_field(L, 4, "momentum", 0, fname),
      .dampening = bind_opt_num_field(L, 4, "dampening", 0, fname),
      .weight_decay = bind_opt_num_field(L, 4, "weight_decay", 0, fname),
      .nesterov = bind_opt_bool_field(L, 4, "nesterov", 0, fname),
      .first_step = bind_opt_bool_field(L, 4, "first_step", 0, fname),
  };
  if (gen_sgd_step(p, g, buf, &c) < 0) bind_core_error(L, fname);
  return 0;
}

/* rmsprop_step_(p, g, sq, buf | nil, gavg | nil, {lr, alpha, eps, weight_decay, momentum, centered}) */
static int l_rmsprop_step(lua_State *L) {
  const char *fname = "gen.optim.RMSprop";
  gen_tensor *p = bind_tensor(L, 1, fname), *g = bind_tensor(L, 2, fname), *sq = bind_tensor(L, 3, fname);
  gen_tensor *buf = bind_opt_tensor(L, 4, fname), *gavg = bind_opt_tensor(L, 5, fname);
  gen_rmsprop_config c = {
      .lr = bind_opt_num_field(L, 6, "lr", 1e-2, fname),
      .alpha = bind_opt_num_field(L, 6, "alpha", 0.99, fname),
      .eps = bind_opt_num_field(L, 6, "eps", 1e-8, fname),
      .weight_decay = bind_opt_num_field(L, 6, "weight_decay", 0, fname),
      .momentum = bind_opt_num_field(L, 6, "momentum", 0, fname),
      .centered = bind_opt_bool_field(L, 6, "centered", 0, fname),
  };
  if (gen_rmsprop_step(p, g, sq, buf, gavg, &c) < 0) bind_core_error(L, fname);
  return 0;
}

static int l_ema_update(lua_State *L) {
  const char *fname = "gen.optim.EMA";
  gen_tensor *e = bind_tensor(L, 1, fname), *p = bind_tensor(L, 2, fname);
  double decay = luaL_checknumber(L, 3);
  if (!(decay >= 0 && decay <= 1)) bind_error(L, fname, "decay must be in [0, 1], got %g", decay);
  if (gen_ema_update(e, p, decay) < 0) bind_core_error(L, fname);
  return 0;
}

static int l_sum_squares(lua_State *L) {
  lua_pushnumber(L, gen_sum_squares(bind_tensor(L, 1, "gen.optim.clip_grad_norm")));
  return 1;
}

static const luaL_Reg functions[] = {{"adam_step_", l_adam_step},       {"sgd_step_", l_sgd_step},
                                     {"rmsprop_step_", l_rmsprop_step}, {"ema_update_", l_ema_update},
                                     {"sum_squares", l_sum_squares},    {NULL, NULL}};

void bind_register_optim(lua_State *L) { luaL_setfuncs(L, functions, 0); }
