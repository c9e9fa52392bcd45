/* bind_io.c — Lua binding of IDX and PNG files, and raw bytes to tensors. */
#include <string.h>

#include "../io.h"
#include "bind.h"

static const char *check_path(lua_State *L, const char *fname) {
  if (lua_type(L, 1) != LUA_TSTRING) bind_error(L, fname, "argument 1: expected a file path, got %s", luaL_typename(L, 1));
  return lua_tostring(L, 1);
}

static int l_idx_read(lua_State *L) {
  const char *path = check_path(L, "gen.data.idx.read");
  gen_tensor **slot = bind_slot(L);
  *slot = gen_idx_read(path);
  return bind_result(L, *slot, "gen.data.idx.read");
}

/* idx_write(path, t [, {gzip = bool}]) (a plain boolean is accepted for the gzip flag too) */
static int l_idx_write(lua_State *L) {
  const char *fname = "gen.data.idx.write";
  const char *path = check_path(L, fname);
  gen_tensor *t = bind_tensor(L, 2, fname);
  bool gz = lua_istable(L, 3) ? bind_opt_bool_field(L, 3, "gzip", 0, fname) : lua_toboolean(L, 3);
  if (gen_idx_write(path, t, gz) < 0) bind_core_error(L, fname);
  return 0;
}

static int l_png_read(lua_State *L) {
  const char *fname = "gen.image.load";
  const char *path = check_path(L, fname);
  lua_Integer c = luaL_optinteger(L, 2, 0);
  if (c < 0 || c > 4) bind_error(L, fname, "channels must be 1..4 (or 0 for the file's own), got %lld", (long long)c);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_png_read(path, (int)c);
  return bind_result(L, *slot, fname);
}

static int l_png_write(lua_State *L) {
  const char *fname = "gen.image.save";
  const char *path = check_path(L, fname);
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

/* io.batch_images(images, idx [, {flip = mask, pad = 0, range = {lo, hi}, pad_value = lo}]):
 * images {N, C, H, W}, idx int64 {B} 1-based, mask {B} (nonzero mirrors that sample). */
static int l_batch_images(lua_State *L) {
  const char *fname = "gen.data.batch_images";
  gen_tensor *images = bind_tensor(L, 1, fname);
  gen_tensor *idx = bind_tensor(L, 2, fname);
  if (images->ndim != 4) bind_error(L, fname, "images must be {N, C, H, W}, got %d dims", images->ndim);
  if (idx->ndim != 1 || idx->dtype != GEN_INT64)
    bind_error(L, fname, "indices must be a 1-d int64 tensor, got %s with %d dims", gen_dtype_name(idx->dtype), idx->ndim);
  int64_t b = idx->shape[0];
  gen_tensor *flip = NULL;
  double lo = -1, hi = 1;
  lua_Integer pad = 0;
  if (lua_istable(L, 3)) {
    if (lua_getfield(L, 3, "flip") != LUA_TNIL) flip = bind_tensor(L, -1, fname);
    lua_pop(L, 1);
    if (flip && (flip->ndim != 1 || flip->shape[0] != b)) bind_error(L, fname, "flip mask must have %lld elements", (long long)b);
    pad = bind_opt_int_field(L, 3, "pad", 0, fname);
    if (lua_getfield(L, 3, "range") == LUA_TTABLE) {
      lua_rawgeti(L, -1, 1);
      lua_rawgeti(L, -2, 2);
      if (!lua_isnumber(L, -2) || !lua_isnumber(L, -1)) bind_error(L, fname, "range must be {lo, hi}");
      lo = lua_tonumber(L, -2);
      hi = lua_tonumber(L, -1);
      lua_pop(L, 2);
    } else if (!lua_isnil(L, -1)) {
      bind_error(L, fname, "range must be {lo, hi}");
    }
    lua_pop(L, 1);
  }
  double pad_value = lua_istable(L, 3) ? bind_opt_num_field(L, 3, "pad_value", lo, fname) : lo;
  if (pad < 0 || pad > 1 << 20) bind_error(L, fname, "pad must be in 0..2^20, got %lld", (long long)pad);
  /* 0-based rows and the flip flags live in a userdata, so an error below frees them */
  int64_t *rows = lua_newuserdatauv(L, (size_t)b * sizeof(int64_t) + (size_t)b + 1, 0);
  uint8_t *flags = (uint8_t *)(rows + b);
  for (int64_t i = 0; i < b; i++) {
    int64_t r = gen_get_flat_i64(idx, i);
    if (r < 1 || r > images->shape[0])
      bind_error(L, fname, "index %lld out of range 1..%lld", (long long)r, (long long)images->shape[0]);
    rows[i] = r - 1;
    flags[i] = flip && gen_get_flat(flip, i) != 0;
  }
  gen_tensor **slot = bind_slot(L);
  *slot = gen_batch_images(images, rows, b, flip ? flags : NULL, pad, lo, hi, pad_value);
  return bind_result(L, *slot, fname);
}

/* io.to_uint8(t [, lo = 0, hi = 1]): pixels scaled from [lo, hi] to bytes (see gen_to_uint8_range) */
static int l_to_uint8(lua_State *L) {
  const char *fname = "gen.image.to_uint8";
  gen_tensor *t = bind_tensor(L, 1, fname);
  double lo = luaL_optnumber(L, 2, 0), hi = luaL_optnumber(L, 3, 1);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_to_uint8_range(t, lo, hi);
  return bind_result(L, *slot, fname);
}

static const luaL_Reg io_functions[] = {{"batch_images", l_batch_images}, {"to_uint8", l_to_uint8}, {NULL, NULL}};

static const luaL_Reg functions[] = {{"idx_read", l_idx_read},
                                     {"idx_write", l_idx_write},
                                     {"png_read", l_png_read},
                                     {"png_write", l_png_write},
                                     {"from_bytes", l_from_bytes},
                                     {"to_bytes", l_to_bytes},
                                     {NULL, NULL}};

/* The IO entry points are core-only names (lua/gen/init.lua lists them); the batch kernel sits in
 * a sub-table, core.io, so it never becomes a gen.* function or a tensor method. */
void bind_register_io(lua_State *L) {
  luaL_setfuncs(L, functions, 0);
  lua_newtable(L);
  luaL_setfuncs(L, io_functions, 0);
  lua_setfield(L, -2, "io");
}
