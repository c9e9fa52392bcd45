/* bind_hooks.c — gradient-ready hooks (autograd.h) as Lua functions.
 *
 *   core.set_grad_hook_key(t [, key])  watch leaf t under key (> 0) or stop (0); returns the old key
 *   core.set_grad_hooks(ready, done)   ready(key, t) when t's .grad is final in a backward;
 *                                      done(ok) after every backward; nil, nil turns them off
 *
 * lua/gen/init.lua builds gen.autograd.register_grad_ready_hook / register_backward_end_hook on
 * these (several hooks per tensor, handles that remove them). The engine calls back from inside
 * gen_backward, so the calls run protected (lua_pcall): a Lua error in a hook becomes the engine's
 * error and backward returns cleanly instead of longjmping over its C frames.
 */
#include "../autograd.h"
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
    {NULL, NULL},
};

void bind_register_hooks(lua_State *L) { luaL_setfuncs(L, functions, 0); }
