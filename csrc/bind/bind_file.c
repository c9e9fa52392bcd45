/* bind_file.c — gen.save / gen.load (safetensors). */
#include <stdlib.h>
#include <string.h>

#include "../safetensors.h"
#include "bind.h"

#define ST_BOX_MT "gen.safetensors_box"

static int box_gc(lua_State *L) {
  gen_st_contents *c = luaL_checkudata(L, 1, ST_BOX_MT);
  gen_st_free(c);
  return 0;
}

/* gen.load(path) -> {name = tensor, ...}, {key = value, ...} */
static int l_load(lua_State *L) {
  const char *fname = "gen.load";
  const char *path = luaL_checkstring(L, 1);
  gen_st_contents *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, ST_BOX_MT);
  if (gen_safetensors_load(path, c) < 0) bind_core_error(L, fname);
  lua_createtable(L, 0, c->count);
  for (int i = 0; i < c->count; i++) {
    bind_push_owned(L, c->tensors[i]);
    c->tensors[i] = NULL; /* now owned by the userdata */
    lua_setfield(L, -2, c->names[i]);
  }
  lua_createtable(L, 0, c->meta_count);
  for (int i = 0; i < c->meta_count; i++) {
    lua_pushstring(L, c->meta_values[i]);
    lua_setfield(L, -2, c->meta_keys[i]);
  }
  bind_pace_gc(L);
  return 2;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* gen.save(path, {name = tensor, ...} [, {key = string, ...} [, {atomic = bool}]]) */
static int l_save(lua_State *L) {
  const char *fname = "gen.save";
  const char *path = luaL_checkstring(L, 1);
  if (lua_type(L, 2) != LUA_TTABLE) bind_error(L, fname, "argument 2: expected a table of tensors, got %s", luaL_typename(L, 2));
  if (!lua_isnoneornil(L, 3) && lua_type(L, 3) != LUA_TTABLE)
    bind_error(L, fname, "argument 3: expected a metadata table of strings, got %s", luaL_typename(L, 3));
  int atomic = bind_opt_bool_field(L, 4, "atomic", 0, fname);
  int count = 0, meta = 0;
  for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING) bind_error(L, fname, "tensor names must be strings, got a %s key", luaL_typename(L, -2));
    if (!bind_totensor(L, -1)) bind_error(L, fname, "'%s' is a %s, not a tensor", lua_tostring(L, -2), luaL_typename(L, -1));
    if (strcmp(lua_tostring(L, -2), "__metadata__") == 0) bind_error(L, fname, "'__metadata__' is reserved");
    count++;
  }
  if (!lua_isnoneornil(L, 3))
    for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        bind_error(L, fname, "metadata must map strings to strings (got %s -> %s)", luaL_typename(L, -2), luaL_typename(L, -1));
      meta++;
    }
  /* Scratch arrays live in userdata, so an error anywhere below frees them. */
  const char **names = lua_newuserdatauv(L, sizeof(char *) * (size_t)(count + 1), 0);
  gen_tensor **tensors = lua_newuserdatauv(L, sizeof(gen_tensor *) * (size_t)(count + 1), 0);
  const char **keys = lua_newuserdatauv(L, sizeof(char *) * (size_t)(meta + 1), 0);
  const char **values = lua_newuserdatauv(L, sizeof(char *) * (size_t)(meta + 1), 0);
  int i = 0;
  for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) names[i++] = lua_tostring(L, -2);
  qsort(names, (size_t)count, sizeof *names, cmp_str); /* deterministic files */
  for (i = 0; i < count; i++) {
    lua_getfield(L, 2, names[i]);
    tensors[i] = bind_totensor(L, -1);
    lua_pop(L, 1); /* still referenced by the table */
  }
  i = 0;
  if (meta)
    for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) {
      keys[i] = lua_tostring(L, -2);
      values[i++] = lua_tostring(L, -1);
    }
  if (gen_safetensors_save(path, count, names, tensors, meta, keys, values, atomic) < 0) bind_core_error(L, fname);
  return 0;
}

static const luaL_Reg functions[] = {{"load", l_load}, {"save", l_save}, {NULL, NULL}};

void bind_register_file(lua_State *L) {
  luaL_newmetatable(L, ST_BOX_MT);
  lua_pushcfunction(L, box_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_setfuncs(L, functions, 0);
}
