-- Runs the busted specs under Lua 5.4 (Debian's /usr/bin/busted runs Lua 5.1), offline, with the
-- module from this checkout: lua5.4 spec/run.lua [spec files or dirs]
local build = os.getenv("GEN_BUILD") or "build"
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath
local args = { ... }
local files = #args > 0 and args or { "spec" }
-- --sort-files: busted otherwise takes the directory's order, which is the filesystem's hash order
-- once spec/ holds enough files, and zz_coverage_spec.lua must run last.
arg = { -- luacheck: ignore (busted reads its command line from arg)
  [0] = "spec/run.lua", "--output=spec/support/summary.lua", "--pattern=_spec", "--sort-files", table.unpack(files) }
require "busted.runner" ({ standalone = false })
