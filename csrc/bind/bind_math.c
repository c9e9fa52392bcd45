/* bind_math.c — arithmetic, comparisons, reductions (sum, mean) and matrix products. */
#include "../autograd.h"
#include "../ops_arith.h"
#include "../ops_matmul.h"
#include "../ops_reduce.h"
#include "bind.h"

/* a op b where either side may be a number (x + 1, 2 * x). */
static int binary(lua_State *L, gen_binop op, const char *fname) {
  gen_tensor *ta = bind_totensor(L, 1), *tb = bind_totensor(L, 2);
  if (!ta && !tb)
    bind_error(L, fname, "expected at least one tensor, got %s and %s", luaL_typename(L, 1), luaL_typename(L, 2));
  gen_tensor *a = ta ? ta : bind_operand(L, 1, tb, fname);
  gen_tensor *b = tb ? tb : bind_operand(L, 2, ta, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_binary(op, a, b);
  return bind_result(L, *slot, fname);
}

static int l_add(lua_State *L) { return binary(L, GEN_BIN_ADD, "gen.add"); }
static int l_sub(lua_State *L) { return binary(L, GEN_BIN_SUB, "gen.sub"); }
static int l_mul(lua_State *L) { return binary(L, GEN_BIN_MUL, "gen.mul"); }
static int l_div(lua_State *L) { return binary(L, GEN_BIN_DIV, "gen.div"); }
static int l_pow(lua_State *L) { return binary(L, GEN_BIN_POW, "gen.pow"); }
static int l_maximum(lua_State *L) { return binary(L, GEN_BIN_MAXIMUM, "gen.maximum"); }
static int l_minimum(lua_State *L) { return binary(L, GEN_BIN_MINIMUM, "gen.minimum"); }
static int l_eq(lua_State *L) { return binary(L, GEN_BIN_EQ, "gen.eq"); }
static int l_ne(lua_State *L) { return binary(L, GEN_BIN_NE, "gen.ne"); }
static int l_lt(lua_State *L) { return binary(L, GEN_BIN_LT, "gen.lt"); }
static int l_le(lua_State *L) { return binary(L, GEN_BIN_LE, "gen.le"); }
static int l_gt(lua_State *L) { return binary(L, GEN_BIN_GT, "gen.gt"); }
static int l_ge(lua_State *L) { return binary(L, GEN_BIN_GE, "gen.ge"); }

static int l_neg(lua_State *L) {
  gen_tensor *a = bind_tensor(L, 1, "gen.neg");
  gen_tensor **slot = bind_slot(L);
  *slot = gen_neg(a);
  return bind_result(L, *slot, "gen.neg");
}

/* x:add_(y) ... in place; y may be a number. Returns x. */
static int binary_(lua_State *L, gen_binop op, const char *fname) {
  gen_tensor *a = bind_tensor(L, 1, fname);
  gen_tensor *b = bind_operand(L, 2, a, fname);
  if (gen_binary_(op, a, b) < 0) bind_core_error(L, fname);
  lua_settop(L, 1);
  return 1;
}

static int l_add_(lua_State *L) { return binary_(L, GEN_BIN_ADD, "gen.add_"); }
static int l_sub_(lua_State *L) { return binary_(L, GEN_BIN_SUB, "gen.sub_"); }
static int l_mul_(lua_State *L) { return binary_(L, GEN_BIN_MUL, "gen.mul_"); }
static int l_div_(lua_State *L) { return binary_(L, GEN_BIN_DIV, "gen.div_"); }
static int l_pow_(lua_State *L) { return binary_(L, GEN_BIN_POW, "gen.pow_"); }

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

static int l_matmul(lua_State *L) {
  gen_tensor *a = bind_tensor(L, 1, "gen.matmul"), *b = bind_tensor(L, 2, "gen.matmul");
  gen_tensor **slot = bind_slot(L);
  *slot = gen_matmul(a, b);
  return bind_result(L, *slot, "gen.matmul");
}

static int l_bmm(lua_State *L) {
  gen_tensor *a = bind_tensor(L, 1, "gen.bmm"), *b = bind_tensor(L, 2, "gen.bmm");
  if (a->ndim != 3 || b->ndim != 3 || a->shape[0] != b->shape[0]) {
    char sa[GEN_SHAPE_STR_MAX], sb[GEN_SHAPE_STR_MAX];
    bind_error(L, "gen.bmm", "needs two 3-d tensors with the same batch size, got %s and %s",
               gen_shape_str(sa, sizeof sa, a->ndim, a->shape), gen_shape_str(sb, sizeof sb, b->ndim, b->shape));
  }
  gen_tensor **slot = bind_slot(L);
  *slot = gen_matmul(a, b);
  return bind_result(L, *slot, "gen.bmm");
}

static const luaL_Reg functions[] = {
    {"add", l_add}, {"sub", l_sub}, {"mul", l_mul}, {"div", l_div}, {"pow", l_pow},
    {"maximum", l_maximum}, {"minimum", l_minimum},
    {"eq", l_eq}, {"ne", l_ne}, {"lt", l_lt}, {"le", l_le}, {"gt", l_gt}, {"ge", l_ge},
    {"neg", l_neg},
    {"add_", l_add_}, {"sub_", l_sub_}, {"mul_", l_mul_}, {"div_", l_div_}, {"pow_", l_pow_},
    {"sum", l_sum}, {"mean", l_mean}, {"matmul", l_matmul}, {"bmm", l_bmm},
    {"var", l_var}, {"std", l_std}, {"max", l_max}, {"min", l_min}, {"argmax", l_argmax}, {"argmin", l_argmin},
    {"logsumexp", l_logsumexp}, {"softmax", l_softmax}, {"log_softmax", l_log_softmax},
    {NULL, NULL}};

void bind_register_math(lua_State *L) {
  luaL_setfuncs(L, functions, 0);
  /* operators on the tensor metatable */
  luaL_getmetatable(L, GEN_TENSOR_MT);
  static const luaL_Reg operators[] = {{"__add", l_add}, {"__sub", l_sub}, {"__mul", l_mul},
                                       {"__div", l_div}, {"__pow", l_pow}, {"__unm", l_neg},
                                       {NULL, NULL}};
  luaL_setfuncs(L, operators, 0);
  lua_pop(L, 1);
}
