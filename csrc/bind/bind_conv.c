/* bind_conv.c — Lua binding of ops_conv.c: conv2d, conv_transpose2d, and the Winograd switch. */
#include "../ops_conv.h"
#include "bind.h"

static gen_conv_opts conv_opts(lua_State *L, int idx, const char *fname) {
  gen_conv_opts o;
  bind_opt_pair_field(L, idx, "stride", 1, o.stride, fname);
  bind_opt_pair_field(L, idx, "padding", 0, o.padding, fname);
  bind_opt_pair_field(L, idx, "dilation", 1, o.dilation, fname);
  bind_opt_pair_field(L, idx, "output_padding", 0, o.output_padding, fname);
  o.groups = bind_opt_int_field(L, idx, "groups", 1, fname);
  return o;
}

/* conv2d(x, w [, b [, opts]]) */
static int conv(lua_State *L, bool transposed, const char *fname) {
  gen_tensor *x = bind_tensor(L, 1, fname), *w = bind_tensor(L, 2, fname), *b = bind_opt_tensor(L, 3, fname);
  gen_conv_opts o = conv_opts(L, 4, fname);
  gen_tensor **slot = bind_slot(L);
  *slot = transposed ? gen_conv_transpose2d(x, w, b, &o) : gen_conv2d(x, w, b, &o);
  return bind_result(L, *slot, fname);
}
static int l_conv2d(lua_State *L) { return conv(L, false, "gen.conv2d"); }
static int l_conv_transpose2d(lua_State *L) { return conv(L, true, "gen.conv_transpose2d"); }

/* set_winograd(enabled) -> previous setting */
static int l_set_winograd(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  lua_pushboolean(L, gen_conv_set_winograd(lua_toboolean(L, 1)));
  return 1;
}

static const luaL_Reg functions[] = {
    {"conv2d", l_conv2d}, {"conv_transpose2d", l_conv_transpose2d}, {"set_winograd", l_set_winograd}, {NULL, NULL}};

void bind_register_conv(lua_State *L) { luaL_setfuncs(L, functions, 0); }
