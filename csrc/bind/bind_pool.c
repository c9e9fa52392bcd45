/* bind_pool.c — Lua binding of ops_pool.c: max_pool2d, avg_pool2d, upsample and pad. */
#include <math.h>
#include <string.h>

#include "../ops_pool.h"
#include "bind.h"

/* max_pool2d(x, k [, {stride = k, padding = 0}]) */
static int pool(lua_State *L, bool max, const char *fname) {
  gen_tensor *x = bind_tensor(L, 1, fname);
  int64_t k[2], stride[2], pad[2];
  if (lua_isinteger(L, 2)) {
    k[0] = k[1] = lua_tointeger(L, 2);
  } else if (lua_istable(L, 2) && luaL_len(L, 2) == 2) {
    for (int i = 0; i < 2; i++) {
      lua_geti(L, 2, i + 1);
      k[i] = luaL_checkinteger(L, -1);
      lua_pop(L, 1);
    }
  } else {
    bind_error(L, fname, "argument 2: kernel size must be an integer or a pair, got %s", luaL_typename(L, 2));
  }
  bind_opt_pair_field(L, 3, "stride", LUA_MININTEGER, stride, fname); /* absent: the kernel size */
  if (stride[0] == LUA_MININTEGER) stride[0] = k[0];
  if (stride[1] == LUA_MININTEGER) stride[1] = k[1];
  bind_opt_pair_field(L, 3, "padding", 0, pad, fname);
  bool inc = bind_opt_bool_field(L, 3, "count_include_pad", 1, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = max ? gen_max_pool2d(x, k, stride, pad) : gen_avg_pool2d(x, k, stride, pad, inc);
  return bind_result(L, *slot, fname);
}
static int l_max_pool2d(lua_State *L) { return pool(L, true, "gen.max_pool2d"); }
static int l_avg_pool2d(lua_State *L) { return pool(L, false, "gen.avg_pool2d"); }

/* upsample(x, {scale = 2 | {sh, sw} | size = {H, W}, mode = "nearest" | "bilinear"}) */
static int l_upsample(lua_State *L) {
  const char *fname = "gen.upsample";
  gen_tensor *x = bind_tensor(L, 1, fname);
  if (x->ndim != 4) bind_error(L, fname, "input must be {N, C, H, W}, got %d dimensions", x->ndim);
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t size[2] = {0, 0};
  double scale[2] = {0, 0}; /* 0: the size was given */
  lua_getfield(L, 2, "size");
  bool has_size = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (has_size) {
    bind_opt_pair_field(L, 2, "size", 0, size, fname);
  } else {
    lua_getfield(L, 2, "scale");
    if (lua_type(L, -1) == LUA_TTABLE && luaL_len(L, -1) == 2) {
      for (int i = 0; i < 2; i++) {
        lua_geti(L, -1, i + 1);
        scale[i] = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 0;
        lua_pop(L, 1);
      }
    } else {
      scale[0] = scale[1] = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 0;
    }
    lua_pop(L, 1);
    if (!(scale[0] > 0 && scale[1] > 0)) bind_error(L, fname, "give scale > 0 or size = {H, W}");
    double oh = floor((double)x->shape[2] * scale[0]), ow = floor((double)x->shape[3] * scale[1]);
    if (!(oh < 0x1p62 && ow < 0x1p62))
      bind_error(L, fname, "scale %gx%g of a %lldx%lld image gives a size past 2^62", scale[0], scale[1], (long long)x->shape[2],
                 (long long)x->shape[3]);
    size[0] = (int64_t)floor((double)x->shape[2] * scale[0]);
    size[1] = (int64_t)floor((double)x->shape[3] * scale[1]);
  }
  lua_getfield(L, 2, "mode");
  const char *mode = lua_isnil(L, -1) ? "nearest" : lua_tostring(L, -1);
  bool bilinear = mode && strcmp(mode, "bilinear") == 0;
  if (!mode || (!bilinear && strcmp(mode, "nearest") != 0))
    bind_error(L, fname, "mode must be \"nearest\" or \"bilinear\", got %s", mode ? mode : luaL_typename(L, -1));
  lua_pop(L, 1);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_upsample(x, size[0], size[1], scale[0], scale[1], bilinear);
  return bind_result(L, *slot, fname);
}

/* pad(x, {left, right, top, bottom} [, mode = "constant" [, value = 0]]) */
static int l_pad(lua_State *L) {
  const char *fname = "gen.pad";
  gen_tensor *x = bind_tensor(L, 1, fname);
  if (lua_type(L, 2) != LUA_TTABLE || (luaL_len(L, 2) != 4 && luaL_len(L, 2) != 2))
    bind_error(L, fname, "argument 2: expected {left, right, top, bottom} (or {left, right})");
  int64_t pads[4] = {0, 0, 0, 0};
  for (int i = 0; i < (int)luaL_len(L, 2); i++) {
    lua_geti(L, 2, i + 1);
    if (!lua_isinteger(L, -1)) bind_error(L, fname, "pads must be integers, got %s", luaL_typename(L, -1));
    pads[i] = lua_tointeger(L, -1);
    lua_pop(L, 1);
  }
  const char *mode = luaL_optstring(L, 3, "constant");
  gen_pad_mode m = GEN_PAD_CONSTANT;
  if (strcmp(mode, "reflect") == 0)
    m = GEN_PAD_REFLECT;
  else if (strcmp(mode, "replicate") == 0)
    m = GEN_PAD_REPLICATE;
  else if (strcmp(mode, "constant") != 0 && strcmp(mode, "zeros") != 0)
    bind_error(L, fname, "mode must be \"constant\", \"reflect\" or \"replicate\", got '%s'", mode);
  double value = luaL_optnumber(L, 4, 0);
  gen_tensor **slot = bind_slot(L);
  *slot = gen_pad(x, pads, m, value);
  return bind_result(L, *slot, fname);
}

static const luaL_Reg functions[] = {
    {"max_pool2d", l_max_pool2d}, {"avg_pool2d", l_avg_pool2d}, {"upsample", l_upsample}, {"pad", l_pad}, {NULL, NULL}};

void bind_register_pool(lua_State *L) { luaL_setfuncs(L, functions, 0); }
