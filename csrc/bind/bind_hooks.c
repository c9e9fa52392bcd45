/* bind_hooks.c — gradient-ready hooks (autograd.h) as Lua functions.
 *
 *   core.set_grad_hook_key(t [, key])  watch leaf t under key (> 0) or stop (0); returns the old key
 *   core.set_grad_hooks(ready, done)   ready(key, t) when t's .grad is final in a backward;
 *                                      done(ok) after every backward; nil, nil turns them off
 *
 * lua/gen/init.lua builds gen.autograd.register_grad_ready_hook / register_backward_end_hook on
 * these (several hooks per tensor, handles that remove them).
 *
 *   core.grad_hook(x, key)             y = x, whose backward gives x transform(key, dy)
 *   core.set_grad_transform(fn)        fn(key, dy) -> the gradient for x (nil keeps dy); nil: off
 *
 * (gen.autograd.gradient_hook builds on these.) The engine calls back from inside
 * gen_backward, so the calls run protected (lua_pcall): a Lua error in a hook becomes the engine's
 * error and backward returns cleanly instead of longjmping over its C frames.
 */
#include "../autograd.h"
#include "../ops_hook.h"
#include "bind.h"

static lua_State *running_L; /* the thread inside t:backward(), set by bind_hooks_enter */
static int ready_ref = LUA_NOREF, done_ref = LUA_NOREF;

void bind_hooks_enter(lua_State *L) { running_L = L; }

/* In protected mode: fn(key, t) with t wrapped in a new userdata (allocation may raise). */
static int call_ready(lua_State *L) {
  gen_tensor *t = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ready_ref);
  lua_pushinteger(L, (lua_Integer)t->grad_hook);
  gen_tensor **slot = bind_slot(L);
  gen_retain(t);
  *slot = t;
  lua_call(L, 2, 0);
  return 0;
}

static int call_done(lua_State *L) {
  int ok = lua_toboolean(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, done_ref);
  lua_pushboolean(L, ok);
  lua_call(L, 1, 0);
  return 0;
}

/* Runs fn(arg) protected; a Lua error becomes the engine's error (-1). */
static int protected_call(lua_CFunction fn, void *p, int b) {
  lua_State *L = running_L;
  if (!L) return gen_fail_int("internal: a gradient hook fired outside t:backward()");
  int top = lua_gettop(L);
  lua_pushcfunction(L, fn);
  if (p)
    lua_pushlightuserdata(L, p);
  else
    lua_pushboolean(L, b);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    gen_fail_int("in a gradient hook: %s", msg ? msg : "(error object is not a string)");
    lua_settop(L, top);
    return -1;
  }
  lua_settop(L, top);
  return 0;
}

static int on_ready(gen_tensor *leaf) { return protected_call(call_ready, leaf, 0); }
static int on_done(bool ok) { return protected_call(call_done, NULL, ok); }

/* set_grad_hook_key(t [, key]): returns the key t had; without key, only reads it. */
/* ---- grad_hook: the listener for ops_hook.c ---- */

static int transform_ref = LUA_NOREF;

typedef struct {
  int64_t key;
  gen_tensor *g;
  gen_tensor *out; /* a new reference, set on success */
} transform_call;

static int call_transform(lua_State *L) {
  transform_call *c = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, transform_ref);
  lua_pushinteger(L, (lua_Integer)c->key);
  gen_tensor **slot = bind_slot(L);
  gen_retain(c->g);
  *slot = c->g;
  lua_call(L, 2, 1);
  if (lua_isnil(L, -1)) return 0;
  gen_tensor *r = bind_totensor(L, -1);
  if (!r) return luaL_error(L, "a gradient hook must return a tensor or nil, got %s", luaL_typename(L, -1));
  if (!gen_same_shape(r, c->g) || r->dtype != c->g->dtype) {
    char a[GEN_SHAPE_STR_MAX], b[GEN_SHAPE_STR_MAX];
    return luaL_error(L, "a gradient hook returned %s %s for a gradient %s %s", gen_dtype_name(r->dtype),
                      gen_shape_str(a, sizeof a, r->ndim, r->shape), gen_dtype_name(c->g->dtype),
                      gen_shape_str(b, sizeof b, c->g->ndim, c->g->shape));
  }
  gen_retain(r);
  c->out = r;
  return 0;
}

static int on_transform(int64_t key, gen_tensor *g, gen_tensor **out) {
  transform_call c = {key, g, NULL};
  if (transform_ref == LUA_NOREF) return 0;
  if (protected_call(call_transform, &c, 0) < 0) return -1;
  *out = c.out;
  return 0;
}

static int l_grad_hook(lua_State *L) {
  gen_tensor *x = bind_tensor(L, 1, "gen.core.grad_hook");
  lua_Integer key = luaL_checkinteger(L, 2);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_grad_hook(x, (int64_t)key);
  return bind_result(L, *slot, "gen.core.grad_hook");
}

static int l_set_grad_transform(lua_State *L) {
  if (!lua_isnil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_unref(L, LUA_REGISTRYINDEX, transform_ref);
  transform_ref = LUA_NOREF;
  lua_settop(L, 1);
  if (!lua_isnil(L, 1)) transform_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  gen_set_grad_transform(transform_ref == LUA_NOREF ? NULL : on_transform);
  return 0;
}

static int l_set_grad_hook_key(lua_State *L) {
  gen_tensor *t = bind_tensor(L, 1, "gen.core.set_grad_hook_key");
  lua_pushinteger(L, (lua_Integer)t->grad_hook);
  if (lua_isnoneornil(L, 2)) return 1;
  lua_Integer key = luaL_checkinteger(L, 2);
  if (key < 0) bind_error(L, "gen.core.set_grad_hook_key", "key must be >= 0, got %lld", (long long)key);
  if (key && t->grad_fn)
    bind_error(L, "gen.core.set_grad_hook_key", "only a leaf tensor can be watched (this one is an op's result)");
  t->grad_hook = (int64_t)key;
  return 1;
}

static int l_set_grad_hooks(lua_State *L) {
  if (!lua_isnil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  if (!lua_isnil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_unref(L, LUA_REGISTRYINDEX, ready_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, done_ref);
  ready_ref = done_ref = LUA_NOREF;
  if (lua_isnil(L, 1)) {
    gen_set_grad_hooks(NULL, NULL);
    return 0;
  }
  lua_settop(L, 2);
  done_ref = lua_isnil(L, 2) ? LUA_NOREF : luaL_ref(L, LUA_REGISTRYINDEX);
  ready_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  gen_set_grad_hooks(on_ready, done_ref == LUA_NOREF ? NULL : on_done);
  return 0;
}

static const luaL_Reg functions[] = {
    {"set_grad_hook_key", l_set_grad_hook_key},
    {"set_grad_hooks", l_set_grad_hooks},
    {"grad_hook", l_grad_hook},
    {"set_grad_transform", l_set_grad_transform},
    {NULL, NULL},
};

void bind_register_hooks(lua_State *L) { luaL_setfuncs(L, functions, 0); }
