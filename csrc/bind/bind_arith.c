/* bind_arith.c — Lua binding of ops_arith.c: add, sub, mul, div, pow, neg (also as operators on the
 * tensor metatable), maximum/minimum, comparisons, and the in-place variants. */
#include "../ops_arith.h"
#include "bind.h"

/* a op b where either side may be a number (x + 1, 2 * x). */
static int binary(lua_State *L, gen_binop op, const char *fname) {
  gen_tensor *ta = bind_totensor(L, 1), *tb = bind_totensor(L, 2);
  if (!ta && !tb) bind_error(L, fname, "expected at least one tensor, got %s and %s", luaL_typename(L, 1), luaL_typename(L, 2));
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

static const luaL_Reg functions[] = {{"add", l_add},   {"sub", l_sub},         {"mul", l_mul},         {"div", l_div},
                                     {"pow", l_pow},   {"maximum", l_maximum}, {"minimum", l_minimum}, {"eq", l_eq},
                                     {"ne", l_ne},     {"lt", l_lt},           {"le", l_le},           {"gt", l_gt},
                                     {"ge", l_ge},     {"neg", l_neg},         {"add_", l_add_},       {"sub_", l_sub_},
                                     {"mul_", l_mul_}, {"div_", l_div_},       {"pow_", l_pow_},       {NULL, NULL}};

void bind_register_arith(lua_State *L) {
  luaL_setfuncs(L, functions, 0);
  /* operators on the tensor metatable */
  luaL_getmetatable(L, GEN_TENSOR_MT);
  static const luaL_Reg operators[] = {{"__add", l_add}, {"__sub", l_sub}, {"__mul", l_mul}, {"__div", l_div},
                                       {"__pow", l_pow}, {"__unm", l_neg}, {NULL, NULL}};
  luaL_setfuncs(L, operators, 0);
  lua_pop(L, 1);
}
