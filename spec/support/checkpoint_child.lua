-- Saves checkpoints of steps FIRST..LAST to PATH, one after another: spec/checkpoint_kill_spec.lua
-- kills it (SIGKILL) at a random moment, most often in the middle of a save.
--   lua5.4 spec/support/checkpoint_child.lua PATH FIRST LAST
local build = os.getenv("GEN_BUILD") or "build"
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath
local gen = require "gen"
local kill = require "support.checkpoint_kill"

local path, first, last = arg[1], tonumber(arg[2]), tonumber(arg[3])
for step = first, last do
  local ok, err = pcall(gen.checkpoint.save, path, kill.state(step))
  if not ok then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
end
