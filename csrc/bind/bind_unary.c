/* bind_unary.c — Lua binding of elementwise math, activations, where and masked_fill. */
#include <math.h>
#include <string.h>

#include "../autograd.h"
#include "../ops_unary.h"
#include "bind.h"

static int unary(lua_State *L, gen_unop op, double p1, double p2, const char *fname) {
  gen_tensor *a = bind_tensor(L, 1, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_unary(op, a, p1, p2);
  return bind_result(L, *slot, fname);
}

static int unary_(lua_State *L, gen_unop op, double p1, double p2, const char *fname) {
  gen_tensor *a = bind_tensor(L, 1, fname);
  if (gen_unary_(op, a, p1, p2) < 0) bind_core_error(L, fname);
  lua_settop(L, 1);
  return 1;
}

static double opt_number(lua_State *L, int idx, double dflt, const char *fname, const char *what) {
  if (lua_isnoneornil(L, idx)) return dflt;
  if (lua_type(L, idx) != LUA_TNUMBER) bind_error(L, fname, "%s must be a number, got %s", what, luaL_typename(L, idx));
  return lua_tonumber(L, idx);
}

#define PLAIN(name, OP)                                                                                                          \
  static int l_##name(lua_State *L) { return unary(L, OP, 0, 0, "gen." #name); }                                                 \
  static int l_##name##_(lua_State *L) { return unary_(L, OP, 0, 0, "gen." #name "_"); }
PLAIN(exp, GEN_UN_EXP)
PLAIN(log, GEN_UN_LOG)
PLAIN(sqrt, GEN_UN_SQRT)
PLAIN(rsqrt, GEN_UN_RSQRT)
PLAIN(abs, GEN_UN_ABS)
PLAIN(tanh, GEN_UN_TANH)
PLAIN(sigmoid, GEN_UN_SIGMOID)
PLAIN(sin, GEN_UN_SIN)
PLAIN(cos, GEN_UN_COS)
PLAIN(relu, GEN_UN_RELU)
PLAIN(silu, GEN_UN_SILU)
PLAIN(erf, GEN_UN_ERF)
#undef PLAIN

/* clamp(x, lo, hi): either bound may be nil */
static void clamp_bounds(lua_State *L, double *lo, double *hi, const char *fname) {
  *lo = opt_number(L, 2, NAN, fname, "lower bound");
  *hi = opt_number(L, 3, NAN, fname, "upper bound");
  if (isnan(*lo) && isnan(*hi)) bind_error(L, fname, "needs at least one bound");
  if (*lo > *hi) bind_error(L, fname, "lower bound %g is above upper bound %g", *lo, *hi);
}
static int l_clamp(lua_State *L) {
  double lo, hi;
  clamp_bounds(L, &lo, &hi, "gen.clamp");
  return unary(L, GEN_UN_CLAMP, lo, hi, "gen.clamp");
}
static int l_clamp_(lua_State *L) {
  double lo, hi;
  clamp_bounds(L, &lo, &hi, "gen.clamp_");
  return unary_(L, GEN_UN_CLAMP, lo, hi, "gen.clamp_");
}

static int l_leaky_relu(lua_State *L) {
  return unary(L, GEN_UN_LEAKY_RELU, opt_number(L, 2, 0.01, "gen.leaky_relu", "slope"), 0, "gen.leaky_relu");
}

/* gelu(x [, {approximate = "none" | "tanh"}]) */
static int l_gelu(lua_State *L) {
  const char *fname = "gen.gelu";
  gen_unop op = GEN_UN_GELU;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "approximate");
    const char *s = lua_tostring(L, -1);
    if (s && strcmp(s, "tanh") == 0)
      op = GEN_UN_GELU_TANH;
    else if (s && strcmp(s, "none") != 0)
      bind_error(L, fname, "approximate must be \"none\" or \"tanh\", got '%s'", s);
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  return unary(L, op, 0, 0, fname);
}

static int l_softplus(lua_State *L) {
  const char *fname = "gen.softplus";
  double beta = opt_number(L, 2, 1, fname, "beta"), threshold = opt_number(L, 3, 20, fname, "threshold");
  if (beta <= 0) bind_error(L, fname, "beta must be positive, got %g", beta);
  return unary(L, GEN_UN_SOFTPLUS, beta, threshold, fname);
}

static int l_elu(lua_State *L) { return unary(L, GEN_UN_ELU, opt_number(L, 2, 1, "gen.elu", "alpha"), 0, "gen.elu"); }

/* gen.where(mask, a, b): a or b may be numbers */
static int l_where(lua_State *L) {
  const char *fname = "gen.where";
  gen_tensor *mask = bind_tensor(L, 1, fname);
  lua_settop(L, 3);
  gen_tensor *ta = bind_totensor(L, 2), *tb = bind_totensor(L, 3);
  gen_tensor *a = ta ? ta : bind_operand(L, 2, tb, fname);
  gen_tensor *b = tb ? tb : bind_operand(L, 3, a, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_where(mask, a, b);
  return bind_result(L, *slot, fname);
}

static int masked_fill_impl(lua_State *L, bool inplace, const char *fname) {
  gen_tensor *x = bind_tensor(L, 1, fname), *mask = bind_tensor(L, 2, fname);
  if (lua_type(L, 3) != LUA_TNUMBER) bind_error(L, fname, "argument 3: expected a number, got %s", luaL_typename(L, 3));
  double v = lua_tonumber(L, 3);
  if (inplace && gen_check_inplace(x) < 0) bind_core_error(L, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_masked_fill(x, mask, v);
  if (!*slot) bind_core_error(L, fname);
  if (inplace) {
    if (gen_copy_raw(x, *slot) < 0) bind_core_error(L, fname);
    lua_settop(L, 1);
  }
  return bind_result(L, *slot, fname);
}
static int l_masked_fill(lua_State *L) { return masked_fill_impl(L, false, "gen.masked_fill"); }
static int l_masked_fill_(lua_State *L) { return masked_fill_impl(L, true, "gen.masked_fill_"); }

static const luaL_Reg functions[] = {{"exp", l_exp},
                                     {"log", l_log},
                                     {"sqrt", l_sqrt},
                                     {"rsqrt", l_rsqrt},
                                     {"abs", l_abs},
                                     {"tanh", l_tanh},
                                     {"sigmoid", l_sigmoid},
                                     {"sin", l_sin},
                                     {"cos", l_cos},
                                     {"relu", l_relu},
                                     {"silu", l_silu},
                                     {"erf", l_erf},
                                     {"exp_", l_exp_},
                                     {"log_", l_log_},
                                     {"sqrt_", l_sqrt_},
                                     {"rsqrt_", l_rsqrt_},
                                     {"abs_", l_abs_},
                                     {"tanh_", l_tanh_},
                                     {"sigmoid_", l_sigmoid_},
                                     {"sin_", l_sin_},
                                     {"cos_", l_cos_},
                                     {"relu_", l_relu_},
                                     {"silu_", l_silu_},
                                     {"erf_", l_erf_},
                                     {"clamp", l_clamp},
                                     {"clamp_", l_clamp_},
                                     {"leaky_relu", l_leaky_relu},
                                     {"gelu", l_gelu},
                                     {"softplus", l_softplus},
                                     {"elu", l_elu},
                                     {"where", l_where},
                                     {"masked_fill", l_masked_fill},
                                     {"masked_fill_", l_masked_fill_},
                                     {NULL, NULL}};

void bind_register_unary(lua_State *L) { luaL_setfuncs(L, functions, 0); }
