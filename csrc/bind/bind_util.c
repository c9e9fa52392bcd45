/* bind_util.c — argument checking, slots, collector pacing, and the module entry point. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../autograd.h"
#include "bind.h"

int bind_error(lua_State *L, const char *fname, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  luaL_where(L, 1);
  lua_pushfstring(L, "%s: %s", fname, msg);
  lua_concat(L, 2);
  lua_error(L);
  for (;;) {}
}

int bind_core_error(lua_State *L, const char *fname) {
  static const char oom[] = "out of memory: needs ";
  const char *msg = gen_last_error();
  if (strncmp(msg, oom, sizeof oom - 1) == 0) { /* "out of memory: gen.OP needs N MB (live L MB, limit M MB)" */
    char buf[1024];
    snprintf(buf, sizeof buf, "out of memory: %s needs %s", fname, msg + sizeof oom - 1);
    luaL_where(L, 1);
    lua_pushstring(L, buf);
    lua_concat(L, 2);
    lua_error(L);
  }
  bind_error(L, fname, "%s", msg);
}

gen_tensor *bind_totensor(lua_State *L, int idx) {
  gen_tensor **slot = luaL_testudata(L, idx, GEN_TENSOR_MT);
  return slot ? *slot : NULL;
}

gen_tensor *bind_tensor(lua_State *L, int idx, const char *fname) {
  gen_tensor *t = bind_totensor(L, idx);
  if (!t) bind_error(L, fname, "argument %d: expected a tensor, got %s", idx, luaL_typename(L, idx));
  return t;
}

gen_tensor *bind_opt_tensor(lua_State *L, int idx, const char *fname) {
  return lua_isnoneornil(L, idx) ? NULL : bind_tensor(L, idx, fname);
}

gen_tensor *bind_operand(lua_State *L, int idx, const gen_tensor *like, const char *fname) {
  gen_tensor *t = bind_totensor(L, idx);
  if (t) return t;
  if (lua_type(L, idx) != LUA_TNUMBER)
    bind_error(L, fname, "argument %d: expected a tensor or a number, got %s", idx, luaL_typename(L, idx));
  gen_dtype dt = GEN_FLOAT32;
  if (like && (gen_dtype_is_float(like->dtype) || lua_isinteger(L, idx))) dt = like->dtype;
  gen_tensor **slot = bind_slot(L);
  *slot = gen_scalar(dt, lua_tonumber(L, idx));
  if (!*slot) bind_core_error(L, fname);
  return *slot;
}

gen_tensor **bind_slot(lua_State *L) {
  gen_tensor **slot = lua_newuserdatauv(L, sizeof(gen_tensor *), 0);
  *slot = NULL;
  luaL_setmetatable(L, GEN_TENSOR_MT);
  return slot;
}

void bind_push_owned(lua_State *L, gen_tensor *t) {
  /* lua_newuserdatauv may raise a memory error: release t if it does. */
  gen_tensor **slot = bind_slot(L);
  *slot = t;
}

/*
 * Lua's collector does not see tensor bytes, so garbage tensors could pile up while Lua thinks its
 * heap is small. Policy: once the bytes allocated since the last full collection exceed both
 * GC_FLOOR and a quarter of the live tensor bytes measured then, run a full collection. That
 * bounds the garbage to about a quarter of the live size (RSS stays flat in a loop) and costs one
 * Lua-heap traversal per that much allocation: cheap, since tensor userdata are small. (With the
 * whole live size as the threshold, a UNet forward at batch 1024 held 1.5 GB of garbage beside its
 * live tensors; each collection still comes after at least 8 MB of allocation, whose writing alone
 * outweighs the traversal.) The floor is small (8 MB) because a tensor
 * freed soon is a tensor reused while still in cache: with 64 MB, a loop of small products wrote
 * every output to memory that had left the caches, 15-20% slower than the same BLAS calls on
 * reused buffers; large models are unaffected (their live bytes set the threshold).
 */
#define GC_FLOOR ((int64_t)8 << 20)
static int64_t allocated_since_gc, gc_threshold = GC_FLOOR;

int64_t bind_gc_threshold(void) { return gc_threshold; }

void bind_pace_gc(lua_State *L) {
  allocated_since_gc += gen_memory_take_pressure();
  /* under a memory limit, garbage must not be what hits it: collect once live bytes pass 3/4 of
   * the limit (and a sixteenth of it was allocated since the last collection) */
  int64_t limit = gen_memory_limit();
  bool near_limit = limit > 0 && allocated_since_gc >= limit / 16 && gen_memory().live_bytes > limit - limit / 4;
  if (allocated_since_gc < gc_threshold && !near_limit) return;
  allocated_since_gc = 0;
  lua_gc(L, LUA_GCCOLLECT);
  int64_t live = gen_memory().live_bytes;
  gc_threshold = live / 4 > GC_FLOOR ? live / 4 : GC_FLOOR;
}

/* Anomaly mode: "file.lua:12", the first Lua line above this call outside gen's own plumbing
 * (lua/gen/init.lua turns methods and operators into core calls), or "?" */
static const char *call_site(lua_State *L, char *buf, size_t n) {
  lua_Debug ar;
  snprintf(buf, n, "?");
  for (int level = 1; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0 || strstr(ar.short_src, "gen/init.lua")) continue;
    snprintf(buf, n, "%s:%d", ar.short_src, ar.currentline);
    break;
  }
  return buf;
}

int bind_result(lua_State *L, gen_tensor *t, const char *fname) {
  if (gen_anomaly_enabled()) { /* cheap otherwise: only this test */
    char site[512];
    if (!t) bind_error(L, fname, "%s (at %s)", gen_last_error(), call_site(L, site, sizeof site));
    if (t->grad_fn && !t->grad_fn->site) gen_node_set_site(t->grad_fn, call_site(L, site, sizeof site));
  }
  if (!t) bind_core_error(L, fname);
  bind_pace_gc(L);
  return 1;
}

int bind_dim_value(lua_State *L, lua_Integer d, int ndim, const char *fname) {
  int n = ndim > 0 ? ndim : 1;
  if (d == 0 || d > n || d < -n)
    bind_error(L, fname, "dimension %lld out of range for a %d-d tensor (1..%d, or -%d..-1)", (long long)d, ndim, n, n);
  return (int)(d > 0 ? d - 1 : n + d);
}

int bind_dim(lua_State *L, int idx, int ndim, const char *fname) {
  if (!lua_isinteger(L, idx))
    bind_error(L, fname, "argument %d: expected an integer dimension, got %s", idx,
               lua_type(L, idx) == LUA_TNUMBER ? "a non-integer number" : luaL_typename(L, idx));
  return bind_dim_value(L, lua_tointeger(L, idx), ndim, fname);
}

int64_t bind_index(lua_State *L, lua_Integer i, int64_t n, const char *fname) {
  if (i == 0 || i > n || i < -n)
    bind_error(L, fname, "index %lld out of range for a dimension of size %lld", (long long)i, (long long)n);
  return i > 0 ? i - 1 : n + i;
}

static int64_t shape_entry(lua_State *L, int idx, int pos, bool allow_infer, const char *fname) {
  if (!lua_isinteger(L, idx)) {
    if (lua_type(L, idx) == LUA_TNUMBER) {
      lua_Number v = lua_tonumber(L, idx);
      if (v == floor(v) && fabs(v) < 9e15) return (int64_t)v;
    }
    bind_error(L, fname, "size %d must be an integer, got %s", pos,
               lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx) : luaL_typename(L, idx));
  }
  lua_Integer v = lua_tointeger(L, idx);
  if (v < 0 && !(allow_infer && v == -1)) bind_error(L, fname, "size %d is negative (%lld)", pos, (long long)v);
  return (int64_t)v;
}

static int shape_impl(lua_State *L, int idx, int64_t *shape, bool allow_infer, const char *fname) {
  int n;
  if (lua_type(L, idx) == LUA_TTABLE) {
    n = (int)luaL_len(L, idx);
    if (n > GEN_MAX_DIMS) bind_error(L, fname, "%d dimensions (at most %d are supported)", n, GEN_MAX_DIMS);
    for (int i = 1; i <= n; i++) {
      lua_geti(L, idx, i);
      shape[i - 1] = shape_entry(L, -1, i, allow_infer, fname);
      lua_pop(L, 1);
    }
  } else {
    int top = lua_gettop(L);
    n = top >= idx ? top - idx + 1 : 0;
    if (n > GEN_MAX_DIMS) bind_error(L, fname, "%d dimensions (at most %d are supported)", n, GEN_MAX_DIMS);
    for (int i = 0; i < n; i++) shape[i] = shape_entry(L, idx + i, i + 1, allow_infer, fname);
  }
  if (allow_infer) {
    int inferred = 0;
    for (int i = 0; i < n; i++) inferred += shape[i] == -1;
    if (inferred > 1) bind_error(L, fname, "only one size may be -1");
  }
  return n;
}

int bind_shape(lua_State *L, int idx, int64_t *shape, const char *fname) { return shape_impl(L, idx, shape, false, fname); }
int bind_shape_infer(lua_State *L, int idx, int64_t *shape, const char *fname) { return shape_impl(L, idx, shape, true, fname); }

gen_dtype bind_dtype(lua_State *L, int idx, gen_dtype dflt, const char *fname) {
  if (lua_isnoneornil(L, idx)) return dflt;
  const char *name = lua_tostring(L, idx);
  int dt = name ? gen_dtype_from_name(name) : -1;
  if (dt < 0) bind_error(L, fname, "unknown dtype '%s' (float32, float64, int64 or uint8)", name ? name : luaL_typename(L, idx));
  return (gen_dtype)dt;
}

static int push_field(lua_State *L, int idx, const char *field) {
  if (lua_isnoneornil(L, idx)) return 0;
  if (lua_type(L, idx) != LUA_TTABLE) return -1;
  lua_getfield(L, idx, field);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

lua_Integer bind_opt_int_field(lua_State *L, int idx, const char *field, lua_Integer dflt, const char *fname) {
  int has = push_field(L, idx, field);
  if (has < 0) bind_error(L, fname, "options must be a table, got %s", luaL_typename(L, idx));
  if (!has) return dflt;
  if (!lua_isinteger(L, -1)) bind_error(L, fname, "option '%s' must be an integer, got %s", field, luaL_typename(L, -1));
  lua_Integer v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

lua_Number bind_opt_num_field(lua_State *L, int idx, const char *field, lua_Number dflt, const char *fname) {
  int has = push_field(L, idx, field);
  if (has < 0) bind_error(L, fname, "options must be a table, got %s", luaL_typename(L, idx));
  if (!has) return dflt;
  if (lua_type(L, -1) != LUA_TNUMBER) bind_error(L, fname, "option '%s' must be a number, got %s", field, luaL_typename(L, -1));
  lua_Number v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

int bind_opt_bool_field(lua_State *L, int idx, const char *field, int dflt, const char *fname) {
  int has = push_field(L, idx, field);
  if (has < 0) bind_error(L, fname, "options must be a table, got %s", luaL_typename(L, idx));
  if (!has) return dflt;
  if (!lua_isboolean(L, -1)) bind_error(L, fname, "option '%s' must be a boolean, got %s", field, luaL_typename(L, -1));
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

void bind_opt_pair_field(lua_State *L, int idx, const char *field, lua_Integer dflt, int64_t out[2], const char *fname) {
  out[0] = out[1] = dflt;
  int has = push_field(L, idx, field);
  if (has < 0) bind_error(L, fname, "options must be a table, got %s", luaL_typename(L, idx));
  if (!has) return;
  if (lua_isinteger(L, -1)) {
    out[0] = out[1] = lua_tointeger(L, -1);
  } else if (lua_type(L, -1) == LUA_TTABLE && luaL_len(L, -1) == 2) {
    for (int i = 0; i < 2; i++) {
      lua_geti(L, -1, i + 1);
      if (!lua_isinteger(L, -1)) bind_error(L, fname, "option '%s' must hold integers, got %s", field, luaL_typename(L, -1));
      out[i] = lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
  } else {
    bind_error(L, fname, "option '%s' must be an integer or a pair {a, b}, got %s", field, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
}

gen_generator *bind_generator_opt(lua_State *L, int idx, const char *fname) {
  int has = push_field(L, idx, "generator");
  if (has < 0) bind_error(L, fname, "options must be a table, got %s", luaL_typename(L, idx));
  if (!has) return gen_default_generator();
  gen_generator *g = luaL_testudata(L, -1, GEN_GENERATOR_MT);
  if (!g) bind_error(L, fname, "option 'generator' must be a gen.Generator, got %s", luaL_typename(L, -1));
  lua_pop(L, 1); /* the generator stays alive: the options table holds it */
  return g;
}

int luaopen_gen_core(lua_State *L);
int luaopen_gen_core(lua_State *L) {
  lua_newtable(L);
  bind_register_config(L);
  bind_register_tensor(L); /* first: it makes the tensor metatable the others extend */
  bind_register_arith(L);
  bind_register_reduce(L);
  bind_register_sort(L);
  bind_register_matmul(L);
  bind_register_linalg(L);
  bind_register_unary(L);
  bind_register_shape(L);
  bind_register_index(L);
  bind_register_linear(L);
  bind_register_conv(L);
  bind_register_pool(L);
  bind_register_norm(L);
  bind_register_loss(L);
  bind_register_attention(L);
  bind_register_quantize(L);
  bind_register_io(L);
  bind_register_optim(L);
  bind_register_file(L);
  bind_register_signal(L);
  bind_register_hooks(L);
  return 1;
}
