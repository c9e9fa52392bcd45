/*
 * bind_tensor.c — the tensor userdata: metatable, fields, creation, randomness, inspection,
 * conversion and autograd entry points.
 *
 * Field access: __index is a C closure over the plain methods table. One rawget answers method
 * lookups; only on a miss do we look at the computed fields (shape, dtype, grad ...) and integer
 * keys (x[i] selects along the first dimension, as in Torch7).
 */
#include <math.h>
#include <string.h>

#include "../autograd.h"
#include "../ops_shape.h"
#include "bind.h"

/* ---- userdata lifecycle and fields ---- */

static int tensor_gc(lua_State *L) {
  gen_tensor **slot = lua_touserdata(L, 1);
  if (slot && *slot) {
    gen_release(*slot);
    *slot = NULL;
  }
  return 0;
}

static void push_shape(lua_State *L, const gen_tensor *t) {
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, t->shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
}

static int tensor_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  gen_tensor *t = bind_tensor(L, 1, "gen.Tensor");
  if (lua_isinteger(L, 2)) { /* x[i] == x:select(1, i) */
    lua_getfield(L, lua_upvalueindex(1), "select");
    lua_pushvalue(L, 1);
    lua_pushinteger(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 3, 1);
    return 1;
  }
  const char *k = lua_tostring(L, 2);
  if (!k) return 0;
  if (strcmp(k, "shape") == 0) {
    push_shape(L, t);
  } else if (strcmp(k, "dtype") == 0) {
    lua_pushstring(L, gen_dtype_name(t->dtype));
  } else if (strcmp(k, "grad") == 0) {
    if (!t->grad) return 0;
    gen_retain(t->grad);
    bind_push_owned(L, t->grad);
  } else if (strcmp(k, "requires_grad") == 0) {
    lua_pushboolean(L, t->requires_grad);
  } else if (strcmp(k, "is_leaf") == 0) {
    lua_pushboolean(L, t->grad_fn == NULL);
  } else if (strcmp(k, "grad_fn") == 0) {
    if (!t->grad_fn) return 0;
    lua_pushstring(L, gen_op_name(t->grad_fn->op));
  } else {
    return 0;
  }
  return 1;
}

static int tensor_newindex(lua_State *L) {
  const char *fname = "gen.Tensor";
  gen_tensor *t = bind_tensor(L, 1, fname);
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "grad") == 0) {
    gen_tensor *g = bind_opt_tensor(L, 3, "gen.Tensor.grad");
    if (g && (!gen_same_shape(g, t) || g->dtype != t->dtype)) {
      char a[GEN_SHAPE_STR_MAX], b[GEN_SHAPE_STR_MAX];
      bind_error(L, "gen.Tensor.grad", "assigned gradient %s %s does not match the tensor's %s %s", gen_dtype_name(g->dtype),
                 gen_shape_str(a, sizeof a, g->ndim, g->shape), gen_dtype_name(t->dtype),
                 gen_shape_str(b, sizeof b, t->ndim, t->shape));
    }
    if (g) gen_retain(g);
    gen_release(t->grad);
    t->grad = g;
    return 0;
  }
  if (k && strcmp(k, "requires_grad") == 0) {
    luaL_checktype(L, 3, LUA_TBOOLEAN);
    lua_getfield(L, lua_upvalueindex(1), "requires_grad_");
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 3);
    lua_call(L, 2, 0);
    return 0;
  }
  return bind_error(L, fname, "cannot set field '%s' (tensors have no user fields)", k ? k : luaL_typename(L, 2));
}

static int tensor_len(lua_State *L) {
  gen_tensor *t = bind_tensor(L, 1, "gen.Tensor.__len");
  lua_pushinteger(L, t->ndim ? t->shape[0] : 0);
  return 1;
}

/* ---- creation ---- */

typedef struct {
  int ndim;
  int64_t shape[GEN_MAX_DIMS];
  gen_dtype dtype;
  int opts; /* stack index of an options table, or 0 */
} creation_args;

/* Accepts (d1, d2, ... [, dtype | opts]) or ({d1, d2, ...} [, dtype | opts]) starting at idx. */
static creation_args parse_creation(lua_State *L, int idx, const char *fname) {
  creation_args c = {0};
  c.dtype = GEN_FLOAT32;
  int top = lua_gettop(L), last = top;
  while (last >= idx &&
         (lua_type(L, last) == LUA_TSTRING || lua_isnil(L, last) || (lua_type(L, last) == LUA_TTABLE && last > idx))) {
    if (lua_type(L, last) == LUA_TSTRING)
      c.dtype = bind_dtype(L, last, GEN_FLOAT32, fname);
    else if (lua_type(L, last) == LUA_TTABLE) {
      c.opts = last;
      lua_getfield(L, last, "dtype");
      if (!lua_isnil(L, -1)) c.dtype = bind_dtype(L, -1, GEN_FLOAT32, fname);
      lua_pop(L, 1);
    }
    last--;
  }
  if (last >= idx && lua_type(L, idx) == LUA_TTABLE) {
    if (last != idx) bind_error(L, fname, "give the shape as one table or as integers, not both");
    c.ndim = bind_shape(L, idx, c.shape, fname);
  } else {
    c.ndim = last - idx + 1 > 0 ? last - idx + 1 : 0;
    if (c.ndim > GEN_MAX_DIMS) bind_error(L, fname, "%d dimensions (at most %d are supported)", c.ndim, GEN_MAX_DIMS);
    for (int i = 0; i < c.ndim; i++) {
      if (!lua_isinteger(L, idx + i))
        bind_error(L, fname, "size %d must be an integer, got %s", i + 1,
                   lua_type(L, idx + i) == LUA_TNUMBER ? lua_tostring(L, idx + i) : luaL_typename(L, idx + i));
      c.shape[i] = lua_tointeger(L, idx + i);
      if (c.shape[i] < 0) bind_error(L, fname, "size %d is negative (%lld)", i + 1, (long long)c.shape[i]);
    }
  }
  (void)top;
  return c;
}

static int l_empty(lua_State *L) {
  creation_args c = parse_creation(L, 1, "gen.empty");
  gen_tensor **slot = bind_slot(L);
  *slot = gen_empty(c.dtype, c.ndim, c.shape);
  return bind_result(L, *slot, "gen.empty");
}

static int l_zeros(lua_State *L) {
  creation_args c = parse_creation(L, 1, "gen.zeros");
  gen_tensor **slot = bind_slot(L);
  *slot = gen_zeros(c.dtype, c.ndim, c.shape);
  return bind_result(L, *slot, "gen.zeros");
}

static int l_ones(lua_State *L) {
  creation_args c = parse_creation(L, 1, "gen.ones");
  gen_tensor **slot = bind_slot(L);
  *slot = gen_full(c.dtype, c.ndim, c.shape, 1.0);
  return bind_result(L, *slot, "gen.ones");
}

/* gen.full(shape, value [, dtype]) */
static int l_full(lua_State *L) {
  const char *fname = "gen.full";
  luaL_argexpected(L, lua_type(L, 1) == LUA_TTABLE, 1, "shape table");
  if (lua_type(L, 2) != LUA_TNUMBER) bind_error(L, fname, "argument 2: expected a number, got %s", luaL_typename(L, 2));
  int64_t shape[GEN_MAX_DIMS];
  int nd = bind_shape(L, 1, shape, fname);
  gen_dtype dt = bind_dtype(L, 3, GEN_FLOAT32, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_full(dt, nd, shape, lua_tonumber(L, 2));
  return bind_result(L, *slot, fname);
}

typedef enum { RAND_UNIFORM, RAND_NORMAL } rand_kind;

static int make_random(lua_State *L, rand_kind kind, const char *fname) {
  creation_args c = parse_creation(L, 1, fname);
  if (!gen_dtype_is_float(c.dtype)) bind_error(L, fname, "dtype must be float32 or float64");
  gen_generator *g = c.opts ? bind_generator_opt(L, c.opts, fname) : gen_default_generator();
  gen_tensor **slot = bind_slot(L);
  *slot = gen_empty(c.dtype, c.ndim, c.shape);
  if (*slot) {
    if (kind == RAND_UNIFORM)
      gen_fill_uniform(*slot, g, 0, 1);
    else
      gen_fill_normal(*slot, g, 0, 1);
  }
  return bind_result(L, *slot, fname);
}

static int l_rand(lua_State *L) { return make_random(L, RAND_UNIFORM, "gen.rand"); }
static int l_randn(lua_State *L) { return make_random(L, RAND_NORMAL, "gen.randn"); }

/* gen.randint(lo, hi, shape [, opts]): inclusive of both ends, int64 unless opts.dtype says. */
static int l_randint(lua_State *L) {
  const char *fname = "gen.randint";
  lua_Integer lo = luaL_checkinteger(L, 1), hi = luaL_checkinteger(L, 2);
  if (hi < lo) bind_error(L, fname, "empty range: lo %lld > hi %lld", (long long)lo, (long long)hi);
  creation_args c = parse_creation(L, 3, fname);
  if (!c.opts || (lua_getfield(L, c.opts, "dtype"), lua_isnil(L, -1))) c.dtype = GEN_INT64;
  gen_generator *g = c.opts ? bind_generator_opt(L, c.opts, fname) : gen_default_generator();
  gen_tensor **slot = bind_slot(L);
  *slot = gen_empty(c.dtype, c.ndim, c.shape);
  if (*slot) gen_fill_randint(*slot, g, lo, hi);
  return bind_result(L, *slot, fname);
}

/* gen.multinomial(probs, n [, {replacement = false, generator}]): n 1-based category indices per
 * row of probs ({V} or {B, V} nonnegative weights). */
static int l_multinomial(lua_State *L) {
  const char *fname = "gen.multinomial";
  gen_tensor *p = bind_tensor(L, 1, fname);
  lua_Integer n = luaL_checkinteger(L, 2);
  bool replacement = lua_istable(L, 3) && bind_opt_bool_field(L, 3, "replacement", 0, fname);
  gen_generator *g = lua_istable(L, 3) ? bind_generator_opt(L, 3, fname) : gen_default_generator();
  gen_tensor **slot = bind_slot(L);
  *slot = gen_multinomial(p, (int64_t)n, replacement, g);
  return bind_result(L, *slot, fname);
}

/* gen.randperm(n [, opts]): a permutation of 1..n (int64), by Fisher-Yates on Philox draws. */
static int l_randperm(lua_State *L) {
  const char *fname = "gen.randperm";
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n < 0) bind_error(L, fname, "n must be >= 0, got %lld", (long long)n);
  gen_generator *g = lua_istable(L, 2) ? bind_generator_opt(L, 2, fname) : gen_default_generator();
  int64_t shape[1] = {n};
  gen_tensor **slot = bind_slot(L);
  *slot = gen_empty(GEN_INT64, 1, shape);
  if (!*slot) bind_core_error(L, fname);
  int64_t *p = (int64_t *)gen_data_ptr(*slot);
  for (int64_t i = 0; i < n; i++) p[i] = i + 1;
  uint64_t first = gen_generator_reserve(g, (uint64_t)n);
  for (int64_t i = n - 1; i > 0; i--) {
    uint32_t w[4];
    gen_philox_block(g->seed, first + (uint64_t)i, w);
    uint64_t r = ((uint64_t)w[0] << 32 | w[1]) % (uint64_t)(i + 1);
    int64_t tmp = p[i];
    p[i] = p[r];
    p[r] = tmp;
  }
  return bind_result(L, *slot, fname);
}

/* arange and linspace fill element by element: a count past this is almost surely a wrong step or
 * bound (gen.arange(2^31, 0, -1.8) would write 4.8 GB), refused before allocating. */
#define FILL_MAX ((int64_t)1 << 30)

/* gen.arange(a, b [, step] [, dtype]): a, a+step, ... < b (end-exclusive). gen.arange(n) is 0..n-1.
 * The dtype is int64 when all arguments are integers, else float32. */
static int l_arange(lua_State *L) {
  const char *fname = "gen.arange";
  int nargs = lua_gettop(L);
  gen_dtype dt = GEN_INT64;
  if (nargs >= 1 && lua_type(L, nargs) == LUA_TSTRING) {
    dt = bind_dtype(L, nargs, GEN_FLOAT32, fname);
    nargs--;
  } else {
    for (int i = 1; i <= nargs; i++)
      if (!lua_isinteger(L, i)) dt = GEN_FLOAT32;
  }
  if (nargs < 1 || nargs > 3) bind_error(L, fname, "expected (stop), (start, stop) or (start, stop, step)");
  for (int i = 1; i <= nargs; i++)
    if (lua_type(L, i) != LUA_TNUMBER) bind_error(L, fname, "argument %d: expected a number, got %s", i, luaL_typename(L, i));
  double a = nargs == 1 ? 0 : lua_tonumber(L, 1), b = nargs == 1 ? lua_tonumber(L, 1) : lua_tonumber(L, 2);
  double step = nargs == 3 ? lua_tonumber(L, 3) : 1;
  if (step == 0 || !isfinite(step) || !isfinite(a) || !isfinite(b))
    bind_error(L, fname, "need finite bounds and a nonzero step (got %g, %g, %g)", a, b, step);
  double count = ceil((b - a) / step);
  if (!(count <= (double)FILL_MAX)) bind_error(L, fname, "(%g, %g, %g) has %.0f elements (at most 2^30)", a, b, step, count);
  int64_t shape[1] = {count > 0 ? (int64_t)count : 0};
  gen_tensor **slot = bind_slot(L);
  *slot = gen_empty(dt, 1, shape);
  if (*slot) {
    char *p = gen_data_ptr(*slot);
    int64_t n = shape[0];
    if (dt == GEN_FLOAT32) {
      float *f = (float *)p;
      for (int64_t i = 0; i < n; i++) f[i] = (float)(a + (double)i * step);
    } else {
      for (int64_t i = 0; i < n; i++) gen_write_f64(p + (size_t)i * gen_dtype_size(dt), dt, a + (double)i * step);
    }
  }
  return bind_result(L, *slot, fname);
}

static int l_linspace(lua_State *L) {
  const char *fname = "gen.linspace";
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3);
  if (n < 0 || n > FILL_MAX) bind_error(L, fname, "number of points must be in 0..2^30, got %lld", (long long)n);
  gen_dtype dt = bind_dtype(L, 4, GEN_FLOAT32, fname);
  int64_t shape[1] = {n};
  gen_tensor **slot = bind_slot(L);
  *slot = gen_empty(dt, 1, shape);
  if (*slot) {
    char *p = gen_data_ptr(*slot);
    for (int64_t i = 0; i < n; i++)
      gen_write_f64(p + (size_t)i * gen_dtype_size(dt), dt, n == 1 ? a : a + (b - a) * (double)i / (double)(n - 1));
  }
  return bind_result(L, *slot, fname);
}

static int l_eye(lua_State *L) {
  const char *fname = "gen.eye";
  lua_Integer n = luaL_checkinteger(L, 1);
  lua_Integer m = lua_isinteger(L, 2) ? lua_tointeger(L, 2) : n;
  if (n < 0 || m < 0) bind_error(L, fname, "sizes must be >= 0, got %lld x %lld", (long long)n, (long long)m);
  gen_dtype dt = bind_dtype(L, lua_isinteger(L, 2) ? 3 : 2, GEN_FLOAT32, fname);
  int64_t shape[2] = {n, m};
  gen_tensor **slot = bind_slot(L);
  *slot = gen_zeros(dt, 2, shape);
  if (*slot)
    for (int64_t i = 0; i < n && i < m; i++)
      gen_write_f64(gen_data_ptr(*slot) + (size_t)(i * m + i) * gen_dtype_size(dt), dt, 1.0);
  return bind_result(L, *slot, fname);
}

/* gen.tensor(nested_table | number [, dtype]) */
static int nested_shape(lua_State *L, int idx, int64_t *shape, const char *fname) {
  int nd = 0;
  lua_pushvalue(L, idx);
  while (lua_type(L, -1) == LUA_TTABLE) {
    if (nd == GEN_MAX_DIMS) bind_error(L, fname, "nested more than %d levels deep", GEN_MAX_DIMS);
    shape[nd++] = (int64_t)luaL_len(L, -1);
    if (shape[nd - 1] == 0) break;
    lua_geti(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  return nd;
}

/* Fills depth-first, checking each sub-table's length against the shape (ragged tables fail). */
static void nested_fill(lua_State *L, int idx, int depth, int nd, const int64_t *shape, char **out, gen_dtype dt, char *path,
                        size_t pathlen, const char *fname) {
  int64_t n = shape[depth];
  for (int64_t i = 1; i <= n; i++) {
    lua_geti(L, idx, i);
    int top = lua_gettop(L);
    size_t plen = pathlen + (size_t)snprintf(path + pathlen, 256 - pathlen > 0 ? 256 - pathlen : 0, "[%lld]", (long long)i);
    if (plen > 255) plen = 255;
    if (depth + 1 < nd) {
      if (lua_type(L, top) != LUA_TTABLE)
        bind_error(L, fname, "element %s is a %s where a table of length %lld was expected", path, luaL_typename(L, top),
                   (long long)shape[depth + 1]);
      if ((int64_t)luaL_len(L, top) != shape[depth + 1])
        bind_error(L, fname, "ragged nested table: %s has length %lld, expected %lld", path, (long long)luaL_len(L, top),
                   (long long)shape[depth + 1]);
      nested_fill(L, top, depth + 1, nd, shape, out, dt, path, plen, fname);
    } else {
      int ty = lua_type(L, top);
      if (ty == LUA_TBOOLEAN) {
        gen_write_f64(*out, dt, lua_toboolean(L, top));
      } else if (ty == LUA_TNUMBER) {
        if (dt == GEN_INT64 && lua_isinteger(L, top))
          *(int64_t *)*out = lua_tointeger(L, top);
        else
          gen_write_f64(*out, dt, lua_tonumber(L, top));
      } else {
        bind_error(L, fname, "element %s is a %s, expected a number", path, luaL_typename(L, top));
      }
      *out += gen_dtype_size(dt);
    }
    path[pathlen] = 0;
    lua_pop(L, 1);
  }
}

static int l_tensor(lua_State *L) {
  const char *fname = "gen.tensor";
  gen_dtype dt = bind_dtype(L, 2, GEN_FLOAT32, fname);
  if (lua_type(L, 1) == LUA_TNUMBER) {
    gen_tensor **slot = bind_slot(L);
    *slot = gen_scalar(dt, lua_tonumber(L, 1));
    if (*slot && dt == GEN_INT64 && lua_isinteger(L, 1)) *(int64_t *)gen_data_ptr(*slot) = lua_tointeger(L, 1);
    return bind_result(L, *slot, fname);
  }
  if (bind_totensor(L, 1)) { /* gen.tensor(t): a copy, detached */
    gen_tensor *src = bind_totensor(L, 1);
    gen_tensor **slot = bind_slot(L);
    *slot = gen_to_dtype_raw(src, lua_isnoneornil(L, 2) ? src->dtype : dt);
    return bind_result(L, *slot, fname);
  }
  if (lua_type(L, 1) != LUA_TTABLE)
    bind_error(L, fname, "argument 1: expected a (nested) table of numbers or a number, got %s", luaL_typename(L, 1));
  int64_t shape[GEN_MAX_DIMS];
  int nd = nested_shape(L, 1, shape, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_empty(dt, nd, shape);
  if (!*slot) bind_core_error(L, fname);
  char *p = gen_data_ptr(*slot), path[260] = {0};
  if (gen_numel(*slot) > 0) nested_fill(L, 1, 0, nd, shape, &p, dt, path, 0, fname);
  return bind_result(L, *slot, fname);
}

/* ---- randomness state ---- */

static int l_manual_seed(lua_State *L) {
  lua_Integer s = luaL_checkinteger(L, 1);
  gen_generator_seed(gen_default_generator(), (uint64_t)s);
  return 0;
}

static int l_generator_new(lua_State *L) {
  lua_Integer s = luaL_optinteger(L, 1, 0);
  gen_generator *g = lua_newuserdatauv(L, sizeof *g, 0);
  gen_generator_seed(g, (uint64_t)s);
  luaL_setmetatable(L, GEN_GENERATOR_MT);
  return 1;
}

static gen_generator *opt_generator(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return gen_default_generator();
  return luaL_checkudata(L, idx, GEN_GENERATOR_MT);
}

/* State is {seed, offset}: the whole state of a counter-based generator. */
static int l_get_rng_state(lua_State *L) {
  gen_generator *g = opt_generator(L, 1);
  lua_createtable(L, 2, 0);
  lua_pushinteger(L, (lua_Integer)g->seed);
  lua_rawseti(L, -2, 1);
  lua_pushinteger(L, (lua_Integer)g->offset);
  lua_rawseti(L, -2, 2);
  return 1;
}

static int l_set_rng_state(lua_State *L) {
  const char *fname = "gen.set_rng_state";
  if (lua_type(L, 1) != LUA_TTABLE)
    bind_error(L, fname, "expected a state table from gen.get_rng_state, got %s", luaL_typename(L, 1));
  gen_generator *g = opt_generator(L, 2);
  lua_geti(L, 1, 1);
  lua_geti(L, 1, 2);
  if (!lua_isinteger(L, -2) || !lua_isinteger(L, -1)) bind_error(L, fname, "malformed state (expected {seed, offset} integers)");
  g->seed = (uint64_t)lua_tointeger(L, -2);
  g->offset = (uint64_t)lua_tointeger(L, -1);
  return 0;
}

static int l_generator_seed(lua_State *L) {
  gen_generator *g = luaL_checkudata(L, 1, GEN_GENERATOR_MT);
  gen_generator_seed(g, (uint64_t)luaL_checkinteger(L, 2));
  return 0;
}

/* x:uniform_(lo, hi [, opts]), x:normal_(mean, std [, opts]), x:bernoulli_(p [, opts]) */
static int fill_inplace(lua_State *L, int kind, const char *fname) {
  gen_tensor *t = bind_tensor(L, 1, fname);
  if (!gen_dtype_is_float(t->dtype) && kind != 2) bind_error(L, fname, "needs a float tensor, got %s", gen_dtype_name(t->dtype));
  if (gen_check_inplace(t) < 0) bind_core_error(L, fname);
  int opts = kind == 2 ? 3 : 4;
  gen_generator *g = lua_istable(L, opts) ? bind_generator_opt(L, opts, fname) : gen_default_generator();
  int rc;
  if (kind == 0)
    rc = gen_fill_uniform(t, g, luaL_optnumber(L, 2, 0), luaL_optnumber(L, 3, 1));
  else if (kind == 1)
    rc = gen_fill_normal(t, g, luaL_optnumber(L, 2, 0), luaL_optnumber(L, 3, 1));
  else
    rc = gen_fill_bernoulli(t, g, luaL_optnumber(L, 2, 0.5));
  if (rc < 0) bind_core_error(L, fname);
  lua_settop(L, 1);
  return 1;
}
static int l_uniform_(lua_State *L) { return fill_inplace(L, 0, "gen.uniform_"); }
static int l_normal_(lua_State *L) { return fill_inplace(L, 1, "gen.normal_"); }
static int l_bernoulli_(lua_State *L) { return fill_inplace(L, 2, "gen.bernoulli_"); }

static int l_fill_(lua_State *L) {
  const char *fname = "gen.fill_";
  gen_tensor *t = bind_tensor(L, 1, fname);
  if (lua_type(L, 2) != LUA_TNUMBER) bind_error(L, fname, "argument 2: expected a number, got %s", luaL_typename(L, 2));
  if (gen_check_inplace(t) < 0) bind_core_error(L, fname);
  gen_tensor *v = bind_operand(L, 2, t, fname);
  if (gen_copy_raw(t, v) < 0) bind_core_error(L, fname);
  lua_settop(L, 1);
  return 1;
}

static int l_zero_(lua_State *L) {
  lua_settop(L, 1);
  lua_pushinteger(L, 0);
  return l_fill_(L);
}

/* ---- inspection ---- */

static int l_size(lua_State *L) {
  gen_tensor *t = bind_tensor(L, 1, "gen.size");
  if (lua_isnoneornil(L, 2)) {
    push_shape(L, t);
    return 1;
  }
  int d = bind_dim(L, 2, t->ndim, "gen.size");
  lua_pushinteger(L, t->ndim ? t->shape[d] : 1);
  return 1;
}

static int l_stride(lua_State *L) {
  gen_tensor *t = bind_tensor(L, 1, "gen.stride");
  if (lua_isnoneornil(L, 2)) {
    lua_createtable(L, t->ndim, 0);
    for (int d = 0; d < t->ndim; d++) {
      lua_pushinteger(L, t->stride[d]);
      lua_rawseti(L, -2, d + 1);
    }
    return 1;
  }
  int d = bind_dim(L, 2, t->ndim, "gen.stride");
  lua_pushinteger(L, t->ndim ? t->stride[d] : 1);
  return 1;
}

static int l_dim(lua_State *L) {
  lua_pushinteger(L, bind_tensor(L, 1, "gen.dim")->ndim);
  return 1;
}

static int l_numel(lua_State *L) {
  lua_pushinteger(L, gen_numel(bind_tensor(L, 1, "gen.numel")));
  return 1;
}

static int l_is_contiguous(lua_State *L) {
  lua_pushboolean(L, gen_is_contiguous(bind_tensor(L, 1, "gen.is_contiguous")));
  return 1;
}

static int l_storage_offset(lua_State *L) {
  lua_pushinteger(L, bind_tensor(L, 1, "gen.storage_offset")->offset + 1);
  return 1;
}

static void push_element(lua_State *L, const gen_tensor *t, const char *p) {
  if (t->dtype == GEN_INT64)
    lua_pushinteger(L, *(const int64_t *)p);
  else if (t->dtype == GEN_UINT8)
    lua_pushinteger(L, *(const uint8_t *)p);
  else
    lua_pushnumber(L, gen_read_f64(p, t->dtype));
}

static int l_item(lua_State *L) {
  gen_tensor *t = bind_tensor(L, 1, "gen.item");
  if (gen_numel(t) != 1) {
    char s[GEN_SHAPE_STR_MAX];
    bind_error(L, "gen.item", "only a one-element tensor has an item, this one has shape %s",
               gen_shape_str(s, sizeof s, t->ndim, t->shape));
  }
  push_element(L, t, gen_data_ptr(t));
  return 1;
}

static void totable_rec(lua_State *L, const gen_tensor *t, int d, int64_t off) {
  size_t es = gen_dtype_size(t->dtype);
  lua_createtable(L, (int)t->shape[d], 0);
  for (int64_t i = 0; i < t->shape[d]; i++) {
    int64_t o = off + i * t->stride[d];
    if (d + 1 == t->ndim)
      push_element(L, t, (const char *)t->storage->data + (size_t)o * es);
    else
      totable_rec(L, t, d + 1, o);
    lua_rawseti(L, -2, i + 1);
  }
}

#define TOTABLE_MAX ((int64_t)1 << 30)
static int l_totable(lua_State *L) {
  gen_tensor *t = bind_tensor(L, 1, "gen.totable");
  if (t->ndim == 0) {
    push_element(L, t, gen_data_ptr(t));
    return 1;
  }
  /* every nested table and element is a Lua value: an expanded {2^40, 0} is no elements but 2^40
   * tables, so count both and refuse before building (the memory limit cannot see Lua's heap) */
  int64_t values = 0, level = 1;
  bool ovf = false;
  for (int d = 0; d < t->ndim; d++) {
    level = gen_size_mul(level, t->shape[d], &ovf);
    values = gen_size_add(values, level, &ovf);
    if (ovf || values > TOTABLE_MAX) {
      char s[GEN_SHAPE_STR_MAX];
      bind_error(L, "gen.totable", "shape %s would make more than %lld Lua tables and numbers",
                 gen_shape_str(s, sizeof s, t->ndim, t->shape), (long long)TOTABLE_MAX);
    }
  }
  luaL_checkstack(L, t->ndim + 8, "gen.totable");
  totable_rec(L, t, 0, t->offset);
  return 1;
}

/* Flat row-major values as a Lua array (tostring uses it on the rows it shows). */
static int l_values(lua_State *L) {
  const char *fname = "gen.values";
  gen_tensor *t = bind_tensor(L, 1, fname);
  int64_t n = gen_numel(t);
  lua_Integer first = luaL_optinteger(L, 2, 1), count = luaL_optinteger(L, 3, n);
  if (first < 1 || count < 0 || first - 1 > n || count > n - (first - 1))
    bind_error(L, fname, "range of %lld elements from %lld is outside 1..%lld", (long long)count, (long long)first, (long long)n);
  lua_createtable(L, (int)count, 0);
  for (lua_Integer i = 0; i < count; i++) {
    double v = gen_get_flat(t, first - 1 + i);
    if (gen_dtype_is_float(t->dtype))
      lua_pushnumber(L, v);
    else
      lua_pushinteger(L, (lua_Integer)v);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* x:at(i): the element at flat (row-major, 1-based) index i, for printing. */
static int l_at(lua_State *L) {
  gen_tensor *t = bind_tensor(L, 1, "gen.at");
  lua_Integer i = luaL_checkinteger(L, 2);
  int64_t n = gen_numel(t);
  if (i < 1 || i > n) bind_error(L, "gen.at", "flat index %lld out of range 1..%lld", (long long)i, (long long)n);
  double v = gen_get_flat(t, i - 1);
  if (gen_dtype_is_float(t->dtype))
    lua_pushnumber(L, v);
  else
    lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

/* x:set_at(i, v): writes v at flat index i in place (gradcheck perturbs inputs with it). */
static int l_set_at(lua_State *L) {
  const char *fname = "gen.set_at";
  gen_tensor *t = bind_tensor(L, 1, fname);
  lua_Integer i = luaL_checkinteger(L, 2);
  double v = luaL_checknumber(L, 3);
  int64_t n = gen_numel(t);
  if (i < 1 || i > n) bind_error(L, fname, "flat index %lld out of range 1..%lld", (long long)i, (long long)n);
  if (gen_check_inplace(t) < 0) bind_core_error(L, fname);
  int64_t off = t->offset, rest = i - 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    off += (rest % t->shape[d]) * t->stride[d];
    rest /= t->shape[d];
  }
  gen_write_f64((char *)t->storage->data + (size_t)off * gen_dtype_size(t->dtype), t->dtype, v);
  gen_bump_version(t);
  lua_settop(L, 1);
  return 1;
}

/* ---- conversion and copies ---- */

static int l_type(lua_State *L) {
  const char *fname = "gen.type";
  gen_tensor *t = bind_tensor(L, 1, fname);
  if (lua_isnoneornil(L, 2)) {
    lua_pushstring(L, gen_dtype_name(t->dtype));
    return 1;
  }
  gen_dtype dt = bind_dtype(L, 2, GEN_FLOAT32, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_to_dtype(t, dt);
  return bind_result(L, *slot, fname);
}

static int l_clone(lua_State *L) {
  gen_tensor *t = bind_tensor(L, 1, "gen.clone");
  gen_tensor **slot = bind_slot(L);
  *slot = gen_clone(t);
  return bind_result(L, *slot, "gen.clone");
}

static int l_contiguous(lua_State *L) {
  gen_tensor *t = bind_tensor(L, 1, "gen.contiguous");
  if (gen_is_contiguous(t)) {
    lua_settop(L, 1);
    return 1;
  }
  gen_tensor **slot = bind_slot(L);
  *slot = gen_contiguous(t);
  return bind_result(L, *slot, "gen.contiguous");
}

static int l_copy_(lua_State *L) {
  const char *fname = "gen.copy_";
  gen_tensor *dst = bind_tensor(L, 1, fname);
  gen_tensor *src = bind_operand(L, 2, dst, fname);
  if (gen_check_inplace(dst) < 0) bind_core_error(L, fname);
  if (gen_copy_raw(dst, src) < 0) bind_core_error(L, fname);
  lua_settop(L, 1);
  return 1;
}

/* ---- autograd ---- */

static int l_requires_grad_(lua_State *L) {
  const char *fname = "gen.requires_grad_";
  gen_tensor *t = bind_tensor(L, 1, fname);
  int on = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
  if (t->grad_fn && !on) bind_error(L, fname, "cannot turn off requires_grad on the result of an op; use detach()");
  if (on && !gen_dtype_is_float(t->dtype))
    bind_error(L, fname, "only float tensors can require grad, this one is %s", gen_dtype_name(t->dtype));
  if (!t->grad_fn) t->requires_grad = on;
  lua_settop(L, 1);
  return 1;
}

static int l_detach(lua_State *L) {
  gen_tensor *t = bind_tensor(L, 1, "gen.detach");
  gen_tensor **slot = bind_slot(L);
  *slot = gen_detach(t);
  return bind_result(L, *slot, "gen.detach");
}

/* t:backward([grad] [, {retain_graph = bool}]) */
static int l_backward(lua_State *L) {
  const char *fname = "gen.backward";
  gen_tensor *t = bind_tensor(L, 1, fname);
  gen_tensor *g = bind_totensor(L, 2);
  int opts = g ? 3 : 2;
  if (!g && !lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    bind_error(L, fname, "argument 2: expected a gradient tensor or an options table, got %s", luaL_typename(L, 2));
  int retain = bind_opt_bool_field(L, opts, "retain_graph", 0, fname);
  bind_hooks_enter(L);
  if (gen_backward(t, g, retain) < 0) bind_core_error(L, fname);
  bind_pace_gc(L);
  return 0;
}

/* Tensors of the list at idx (a table of tensors; nil entries allowed when allow_nil) into a
 * Lua-owned array of n pointers. */
static gen_tensor **tensor_list(lua_State *L, int idx, int n, bool allow_nil, const char *what, const char *fname) {
  gen_tensor **ts = lua_newuserdatauv(L, sizeof(gen_tensor *) * (size_t)(n ? n : 1), 0);
  for (int i = 0; i < n; i++) {
    lua_geti(L, idx, i + 1);
    ts[i] = bind_totensor(L, -1);
    if (!ts[i] && !(allow_nil && lua_isnil(L, -1)))
      bind_error(L, fname, "%s[%d] must be a tensor, got %s", what, i + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  return ts;
}

/* core.grad(outputs, inputs, grad_outputs | nil, create_graph, retain_graph) -> results, used:
 * two lists of #inputs entries (results nil where no gradient; used false where the input is not
 * reached). lua/gen/init.lua's gen.autograd.grad checks the arguments and applies allow_unused. */
static int l_grad(lua_State *L) {
  const char *fname = "gen.autograd.grad";
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n_out = (int)luaL_len(L, 1), n_in = (int)luaL_len(L, 2);
  bool create = lua_toboolean(L, 4), retain = lua_toboolean(L, 5);
  gen_tensor **outs = tensor_list(L, 1, n_out, false, "outputs", fname);
  gen_tensor **ins = tensor_list(L, 2, n_in, false, "inputs", fname);
  gen_tensor **gos = lua_istable(L, 3) ? tensor_list(L, 3, n_out, true, "grad_outputs", fname) : NULL;
  gen_tensor **res = lua_newuserdatauv(L, sizeof(gen_tensor *) * (size_t)(n_in ? n_in : 1), 0);
  bool *used = lua_newuserdatauv(L, sizeof(bool) * (size_t)(n_in ? n_in : 1), 0);
  lua_createtable(L, n_in, 0); /* results, filled after the call: slots first, so nothing leaks */
  int tres = lua_gettop(L);
  gen_tensor ***slots = lua_newuserdatauv(L, sizeof(gen_tensor **) * (size_t)(n_in ? n_in : 1), 0);
  for (int j = 0; j < n_in; j++) {
    slots[j] = bind_slot(L);
    lua_rawseti(L, tres, j + 1);
  }
  lua_createtable(L, n_in, 0);
  for (int j = 0; j < n_in; j++) {
    lua_pushboolean(L, 0);
    lua_rawseti(L, -2, j + 1);
  }
  int tused = lua_gettop(L);
  if (gen_grad(n_out, outs, gos, n_in, ins, create, retain, res, used) < 0) bind_core_error(L, fname);
  for (int j = 0; j < n_in; j++) {
    *slots[j] = res[j];
    lua_pushboolean(L, used[j]);
    lua_rawseti(L, tused, j + 1);
    if (!res[j]) { /* no gradient: nil, not an empty tensor */
      lua_pushnil(L);
      lua_rawseti(L, tres, j + 1);
    }
  }
  bind_pace_gc(L);
  lua_pushvalue(L, tres);
  lua_pushvalue(L, tused);
  return 2;
}

static int l_graph_backward_counts(lua_State *L) {
  lua_createtable(L, 0, GEN_OP_COUNT);
  for (int op = 0; op < GEN_OP_COUNT; op++) {
    lua_pushinteger(L, gen_graph_backward_count((gen_op)op));
    lua_setfield(L, -2, gen_op_name((gen_op)op));
  }
  return 1;
}

static int l_set_grad_enabled(lua_State *L) {
  lua_pushboolean(L, gen_grad_enabled());
  gen_set_grad_enabled(lua_toboolean(L, 1));
  return 1;
}

/* set_detect_anomaly(on) -> previous setting */
static int l_set_detect_anomaly(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  lua_pushboolean(L, gen_anomaly_enabled());
  gen_set_anomaly_enabled(lua_toboolean(L, 1));
  return 1;
}

static int l_is_grad_enabled(lua_State *L) {
  lua_pushboolean(L, gen_grad_enabled());
  return 1;
}

static int l_count_backward(lua_State *L) {
  gen_set_backward_counting(lua_toboolean(L, 1));
  return 0;
}

static int l_backward_counts(lua_State *L) {
  lua_createtable(L, 0, GEN_OP_COUNT);
  for (int op = 0; op < GEN_OP_COUNT; op++) {
    lua_pushinteger(L, gen_backward_count((gen_op)op));
    lua_setfield(L, -2, gen_op_name((gen_op)op));
  }
  return 1;
}

/* ---- runtime ---- */

static int l_memory(lua_State *L) {
  gen_memory_stats m = gen_memory();
  lua_createtable(L, 0, 7);
  lua_pushinteger(L, m.live_bytes);
  lua_setfield(L, -2, "live");
  lua_pushinteger(L, m.peak_bytes);
  lua_setfield(L, -2, "peak");
  lua_pushinteger(L, m.total_allocs);
  lua_setfield(L, -2, "allocations");
  lua_pushinteger(L, gen_memory_limit());
  lua_setfield(L, -2, "limit");
  lua_pushinteger(L, bind_gc_threshold());
  lua_setfield(L, -2, "gc_threshold");
  lua_pushinteger(L, gen_derived_bytes());
  lua_setfield(L, -2, "weight_cache");
  lua_pushinteger(L, gen_derived_budget());
  lua_setfield(L, -2, "weight_cache_limit");
  if (lua_toboolean(L, 1)) gen_memory_reset_peak();
  return 1;
}

/* The byte limit at idx (an integer, or a float below 2^63): raises "expected <what>, got <type>"
 * for anything else and names a negative one. */
static lua_Integer limit_bytes(lua_State *L, int idx, const char *fname, const char *what) {
  if (!lua_isinteger(L, idx) && !(lua_type(L, idx) == LUA_TNUMBER && lua_tonumber(L, idx) >= 0 && lua_tonumber(L, idx) < 9e18))
    bind_error(L, fname, "expected %s, got %s", what, luaL_typename(L, idx));
  lua_Integer b = lua_isinteger(L, idx) ? lua_tointeger(L, idx) : (lua_Integer)lua_tonumber(L, idx);
  if (b < 0) bind_error(L, fname, "the limit must be >= 0 bytes, got %lld", (long long)b);
  return b;
}

/* set_memory_limit(bytes | nil) -> the previous limit (nil when there was none). 0 or nil: none. */
static int l_set_memory_limit(lua_State *L) {
  lua_Integer b = lua_isnoneornil(L, 1) ? 0 : limit_bytes(L, 1, "gen.set_memory_limit", "a number of bytes or nil");
  int64_t was = gen_set_memory_limit(b);
  if (was > 0)
    lua_pushinteger(L, was);
  else
    lua_pushnil(L);
  return 1;
}

/* set_weight_cache_limit(bytes) -> the previous limit. 0 turns the cache of transformed weights off
 * (and empties it as the entries are next looked at or their weights freed). */
static int l_set_weight_cache_limit(lua_State *L) {
  lua_pushinteger(L, gen_set_derived_budget(limit_bytes(L, 1, "gen.set_weight_cache_limit", "a number of bytes")));
  return 1;
}

static int l_set_num_threads(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n < 1 || n > 1024) bind_error(L, "gen.set_num_threads", "thread count must be in 1..1024, got %lld", (long long)n);
  gen_set_num_threads((int)n);
  return 0;
}

static int l_get_num_threads(lua_State *L) {
  lua_pushinteger(L, gen_get_num_threads());
  return 1;
}

static int l_time(lua_State *L) {
  lua_pushnumber(L, gen_time());
  return 1;
}

static int l_is_tensor(lua_State *L) {
  lua_pushboolean(L, bind_totensor(L, 1) != NULL);
  return 1;
}

static const luaL_Reg functions[] = {{"empty", l_empty},
                                     {"zeros", l_zeros},
                                     {"ones", l_ones},
                                     {"full", l_full},
                                     {"rand", l_rand},
                                     {"randn", l_randn},
                                     {"randint", l_randint},
                                     {"randperm", l_randperm},
                                     {"arange", l_arange},
                                     {"linspace", l_linspace},
                                     {"eye", l_eye},
                                     {"tensor", l_tensor},
                                     {"manual_seed", l_manual_seed},
                                     {"Generator", l_generator_new},
                                     {"multinomial", l_multinomial},
                                     {"get_rng_state", l_get_rng_state},
                                     {"set_rng_state", l_set_rng_state},
                                     {"uniform_", l_uniform_},
                                     {"normal_", l_normal_},
                                     {"bernoulli_", l_bernoulli_},
                                     {"fill_", l_fill_},
                                     {"zero_", l_zero_},
                                     {"size", l_size},
                                     {"stride", l_stride},
                                     {"dim", l_dim},
                                     {"numel", l_numel},
                                     {"is_contiguous", l_is_contiguous},
                                     {"storage_offset", l_storage_offset},
                                     {"item", l_item},
                                     {"totable", l_totable},
                                     {"values", l_values},
                                     {"at", l_at},
                                     {"set_at", l_set_at},
                                     {"type", l_type},
                                     {"clone", l_clone},
                                     {"contiguous", l_contiguous},
                                     {"copy_", l_copy_},
                                     {"requires_grad_", l_requires_grad_},
                                     {"detach", l_detach},
                                     {"backward", l_backward},
                                     {"set_grad_enabled", l_set_grad_enabled},
                                     {"is_grad_enabled", l_is_grad_enabled},
                                     {"set_detect_anomaly", l_set_detect_anomaly},
                                     {"set_memory_limit", l_set_memory_limit},
                                     {"backward_counts", l_backward_counts},
                                     {"graph_backward_counts", l_graph_backward_counts},
                                     {"autograd_grad", l_grad},
                                     {"count_backward", l_count_backward},
                                     {"memory", l_memory},
                                     {"set_weight_cache_limit", l_set_weight_cache_limit},
                                     {"set_num_threads", l_set_num_threads},
                                     {"get_num_threads", l_get_num_threads},
                                     {"time", l_time},
                                     {"is_tensor", l_is_tensor},
                                     {NULL, NULL}};

void bind_register_tensor(lua_State *L) {
  int module = lua_gettop(L);
  /* methods table, shared by __index; lua/gen/init.lua fills it */
  lua_newtable(L);
  int methods = lua_gettop(L);
  lua_pushvalue(L, methods);
  lua_setfield(L, module, "Tensor");

  luaL_newmetatable(L, GEN_TENSOR_MT);
  lua_pushvalue(L, methods);
  lua_pushcclosure(L, tensor_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, methods);
  lua_pushcclosure(L, tensor_newindex, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, tensor_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, tensor_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, tensor_len);
  lua_setfield(L, -2, "__len");
  lua_pushstring(L, "gen.Tensor");
  lua_setfield(L, -2, "__name");
  lua_setfield(L, module, "tensor_mt");

  luaL_newmetatable(L, GEN_GENERATOR_MT);
  lua_newtable(L);
  lua_pushcfunction(L, l_generator_seed);
  lua_setfield(L, -2, "manual_seed");
  lua_pushcfunction(L, l_get_rng_state);
  lua_setfield(L, -2, "get_state");
  lua_setfield(L, -2, "__index");
  lua_setfield(L, module, "generator_mt");

  lua_settop(L, module);
  luaL_setfuncs(L, functions, 0);
}
