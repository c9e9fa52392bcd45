rockspec_format = "3.0"
package = "gen"
version = "scm-1"
source = { url = "git+file://." }
description = {
  summary = "Deep generative modeling in Lua 5.4 on a fast C core",
  detailed = [[
Tensors, reverse-mode autograd, convolutions, fused attention and every layer in C (OpenBLAS,
OpenMP); modules, optimizers, data loading and models in Lua. `require "gen"`.]],
  license = "MIT",
}
dependencies = { "lua >= 5.4" }
build = {
  -- The Makefile builds gen.core (C11, OpenMP, OpenBLAS, libpng, zlib) and installs the module,
  -- lua/gen and the gen launcher into the LuaRocks tree.
  type = "make",
  build_target = "all",
  install_target = "install-rock",
  build_variables = { LUA_INC = "$(LUA_INCDIR)" },
  install_variables = { ROCK_LIBDIR = "$(LIBDIR)", ROCK_LUADIR = "$(LUADIR)", ROCK_BINDIR = "$(BINDIR)" },
}
