--- bin/gen FILE.lua ARGS...: runs FILE as `lua5.4 FILE ARGS...` would (global `gen` loaded, `arg`
-- set), except for how it ends on an error: a bad command line (an error raised through
-- gen.experiment.fail) prints its one-line message and exits with status 2; any other error
-- prints its message and traceback and exits with status 1. In a gen.dist job of several ranks,
-- an error on one rank stops every rank (gen.dist.on_error).
local experiment = require "gen.experiment"

local script = arg[1]
local args = { [0] = script, table.unpack(arg, 2) }
_G.arg = args
local chunk, load_error = loadfile(script)
if not chunk then
  io.stderr:write("gen: ", load_error, "\n")
  os.exit(1, true)
end
local ok, err = xpcall(chunk, function(e)
  if experiment.is_usage_error(e) then return e end
  return debug.traceback(tostring(e), 2)
end, table.unpack(args))
if not ok then
  -- in a gen.dist job of several ranks, this rank's error stops them all (naming the rank)
  local dist = package.loaded["gen.dist"]
  if dist then dist.on_error((experiment.is_usage_error(err) and "" or "lua5.4: ") .. tostring(err)) end
  io.stderr:write(experiment.is_usage_error(err) and "" or "lua5.4: ", tostring(err), "\n")
  io.stderr:flush()
  os.exit(experiment.is_usage_error(err) and 2 or 1, true)
end
