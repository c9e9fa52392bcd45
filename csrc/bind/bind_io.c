/* bind_io.c — Lua binding of IDX and PNG files, and raw bytes to tensors. */
#include <string.h>

#include "../io.h"
#include "bind.h"

static int l_idx_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_idx_read(path);
  return bind_result(L, *slot, "gen.data.idx.read");
}

static int l_idx_write(lua_State *L) {
  const char *fname = "gen.data.idx.write";
  const char *path = luaL_checkstring(L, 1);
  gen_tensor *t = bind_tensor(L, 2, fname);
  bool gz = lua_toboolean(L, 3);
  if (gen_idx_write(path, t, gz) < 0) bind_core_error(L, fname);
  return 0;
}

static int l_png_read(lua_State *L) {
  const char *fname = "gen.image.load";
  const char *path = luaL_checkstring(L, 1);
  lua_Integer c = luaL_optinteger(L, 2, 0);
  if (c < 0 || c > 4) bind_error(L, fname, "channels must be 1..4 (or 0 for the file's own), got %lld", (long long)c);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_png_read(path, (int)c);
  return bind_result(L, *slot, fname);
}

static int l_png_write(lua_State *L) {
  const char *fname = "gen.image.save";
  const char *path = luaL_checkstring(L, 1);
  gen_tensor *t = bind_tensor(L, 2, fname);
  if (gen_png_write(path, t) < 0) bind_core_error(L, fname);
  return 0;
}

/* from_bytes(string, shape): a uint8 tensor holding the string's bytes */
static int l_from_bytes(lua_State *L) {
  const char *fname = "gen.from_bytes";
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int64_t shape[GEN_MAX_DIMS];
  int nd = bind_shape(L, 2, shape, fname);
  if ((size_t)gen_numel_of(nd, shape) != len)
    bind_error(L, fname, "%zu bytes do not fill shape of %lld elements", len, (long long)gen_numel_of(nd, shape));
  gen_tensor **slot = bind_slot(L);
  *slot = gen_empty(GEN_UINT8, nd, shape);
  if (*slot) memcpy((*slot)->storage->data, s, len);
  return bind_result(L, *slot, fname);
}

/* to_bytes(t): the bytes of a uint8 tensor as a string (row-major) */
static int l_to_bytes(lua_State *L) {
  gen_tensor *t = bind_tensor(L, 1, "gen.to_bytes");
  if (t->dtype != GEN_UINT8) bind_error(L, "gen.to_bytes", "needs a uint8 tensor, got %s", gen_dtype_name(t->dtype));
  gen_tensor **slot = bind_slot(L); /* owns the contiguous copy if pushing the string fails */
  *slot = gen_contiguous_raw(t);
  if (!*slot) bind_core_error(L, "gen.to_bytes");
  lua_pushlstring(L, gen_data_ptr(*slot), (size_t)gen_numel(*slot));
  return 1;
}

static const luaL_Reg functions[] = {{"idx_read", l_idx_read}, {"idx_write", l_idx_write}, {"png_read", l_png_read},
                                     {"png_write", l_png_write}, {"from_bytes", l_from_bytes}, {"to_bytes", l_to_bytes},
                                     {NULL, NULL}};

void bind_register_io(lua_State *L) { luaL_setfuncs(L, functions, 0); }
