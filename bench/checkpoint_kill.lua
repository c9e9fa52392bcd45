-- Kill trials for atomic checkpoints (the README's Reliability count): N child processes each save
-- checkpoints in a loop and are killed with SIGKILL after a random delay; after each, the
-- checkpoint must load whole, and after the next save no temporary file may remain.
--   lua5.4 bench/checkpoint_kill.lua [N]     (from the repository root; default 300)
local build = os.getenv("GEN_BUILD") or "build"
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath
local gen = require "gen"
local kill = require "support.checkpoint_kill"

local n = tonumber(arg[1]) or 300
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local t0 = gen.time()
local s = kill.run(n, dir, { min_delay = 0.05, max_delay = 0.5, seed = os.time() })
os.execute("rm -rf " .. dir)
print(string.format("%d kill trials in %.0f s: %d left the previous checkpoint, %d a newer one (all whole and "
  .. "loadable); %d left a temporary file, removed by the next save in all but %d; %d children finished before the kill",
  s.trials, gen.time() - t0, s.old, s.new, s.litter_before, s.litter_after, s.finished))
