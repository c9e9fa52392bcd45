/* bind_reduce.c — Lua binding of ops_reduce.c: sum, mean, var, std, max, min, argmax, argmin,
 * logsumexp, softmax, log_softmax and cumsum. */
#include "../ops_reduce.h"
#include "bind.h"

/* x:sum([d [, keepdim]]) */
static int reduce(lua_State *L, gen_tensor *(*fn)(gen_tensor *, int, bool), const char *fname) {
  gen_tensor *a = bind_tensor(L, 1, fname);
  int dim = lua_isnoneornil(L, 2) ? GEN_DIM_ALL : bind_dim(L, 2, a->ndim, fname);
  if (a->ndim == 0) dim = GEN_DIM_ALL;
  bool keepdim = lua_toboolean(L, 3);
  gen_tensor **slot = bind_slot(L);
  *slot = fn(a, dim, keepdim);
  return bind_result(L, *slot, fname);
}

static int l_sum(lua_State *L) { return reduce(L, gen_sum, "gen.sum"); }
static int l_mean(lua_State *L) { return reduce(L, gen_mean, "gen.mean"); }

/* x:var([d [, keepdim [, {correction = 1} | {unbiased = bool}]]]) */
static int var_or_std(lua_State *L, gen_tensor *(*fn)(gen_tensor *, int, bool, int64_t), const char *fname) {
  gen_tensor *a = bind_tensor(L, 1, fname);
  int dim = lua_isnoneornil(L, 2) || a->ndim == 0 ? GEN_DIM_ALL : bind_dim(L, 2, a->ndim, fname);
  bool keepdim = lua_toboolean(L, 3);
  int64_t correction = 1;
  if (lua_istable(L, 4)) {
    correction = bind_opt_bool_field(L, 4, "unbiased", 1, fname) ? 1 : 0;
    correction = bind_opt_int_field(L, 4, "correction", correction, fname);
    if (correction < 0) bind_error(L, fname, "correction must be >= 0");
  }
  gen_tensor **slot = bind_slot(L);
  *slot = fn(a, dim, keepdim, correction);
  return bind_result(L, *slot, fname);
}
static int l_var(lua_State *L) { return var_or_std(L, gen_var, "gen.var"); }
static int l_std(lua_State *L) { return var_or_std(L, gen_std, "gen.std"); }

/* x:max() -> 0-d value; x:max(d [, keepdim]) -> values, indices (1-based) */
static int extreme(lua_State *L, gen_tensor *(*fn)(gen_tensor *, int, bool, gen_tensor **), const char *fname) {
  gen_tensor *a = bind_tensor(L, 1, fname);
  bool with_dim = !lua_isnoneornil(L, 2);
  int dim = !with_dim || a->ndim == 0 ? GEN_DIM_ALL : bind_dim(L, 2, a->ndim, fname);
  bool keepdim = lua_toboolean(L, 3);
  gen_tensor **values = bind_slot(L);
  gen_tensor **indices = bind_slot(L);
  *values = fn(a, dim, keepdim, indices);
  if (!*values) bind_core_error(L, fname);
  bind_pace_gc(L);
  if (!with_dim) lua_pop(L, 1);
  return with_dim ? 2 : 1;
}
static int l_max(lua_State *L) { return extreme(L, gen_max, "gen.max"); }
static int l_min(lua_State *L) { return extreme(L, gen_min, "gen.min"); }

static int l_argmax(lua_State *L) { return reduce(L, gen_argmax, "gen.argmax"); }
static int l_argmin(lua_State *L) { return reduce(L, gen_argmin, "gen.argmin"); }
static int l_logsumexp(lua_State *L) { return reduce(L, gen_logsumexp, "gen.logsumexp"); }

static int softmax(lua_State *L, gen_tensor *(*fn)(gen_tensor *, int), const char *fname) {
  gen_tensor *a = bind_tensor(L, 1, fname);
  if (lua_isnoneornil(L, 2)) bind_error(L, fname, "needs a dimension (softmax(x, d))");
  if (a->ndim == 0) bind_error(L, fname, "needs at least 1 dimension");
  int d = bind_dim(L, 2, a->ndim, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = fn(a, d);
  return bind_result(L, *slot, fname);
}
static int l_softmax(lua_State *L) { return softmax(L, gen_softmax, "gen.softmax"); }
static int l_log_softmax(lua_State *L) { return softmax(L, gen_log_softmax, "gen.log_softmax"); }

/* x:cumsum(d) */
static int l_cumsum(lua_State *L) {
  const char *fname = "gen.cumsum";
  gen_tensor *a = bind_tensor(L, 1, fname);
  if (lua_isnoneornil(L, 2)) bind_error(L, fname, "needs a dimension (cumsum(x, d))");
  if (a->ndim == 0) bind_error(L, fname, "needs at least 1 dimension");
  int d = bind_dim(L, 2, a->ndim, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_cumsum(a, d);
  return bind_result(L, *slot, fname);
}

static const luaL_Reg functions[] = {{"sum", l_sum},
                                     {"mean", l_mean},
                                     {"var", l_var},
                                     {"std", l_std},
                                     {"max", l_max},
                                     {"min", l_min},
                                     {"argmax", l_argmax},
                                     {"argmin", l_argmin},
                                     {"logsumexp", l_logsumexp},
                                     {"softmax", l_softmax},
                                     {"log_softmax", l_log_softmax},
                                     {"cumsum", l_cumsum},
                                     {NULL, NULL}};

void bind_register_reduce(lua_State *L) { luaL_setfuncs(L, functions, 0); }
