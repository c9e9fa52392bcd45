-- Crash-safe checkpoints: a save killed at any moment leaves the previous checkpoint or the new one,
-- whole and loadable; the next save removes the killed one's temporary file; a full disk is a clear
-- error that keeps the previous checkpoint. (bench/checkpoint_kill.lua runs more trials.)
local gen = require "gen"
local kill = require "support.checkpoint_kill"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() end
  return f ~= nil
end

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

describe("crash-safe checkpoints", function()
  it("30 saves killed (SIGKILL) at random moments: always the old or the new checkpoint, no litter", function()
    os.execute("mkdir -p " .. dir .. "/kill")
    local s = kill.run(30, dir .. "/kill", { min_delay = 0.05, max_delay = 0.5, seed = 7 })
    assert.equal(30, s.trials)
    assert.equal(30, s.old + s.new)
    assert.equal(0, s.litter_after)
  end)

  it("removes PATH.tmp-PID files of dead processes, keeps those of live ones", function()
    local path = dir .. "/ck.safetensors"
    local _, dead = sh("sh -c 'echo $$'") -- a process that has exited
    dead = tonumber(dead:match("%d+"))
    local stale, live = path .. ".tmp-" .. dead, path .. ".tmp-1" -- pid 1 is alive
    local other = dir .. "/ck.safetensors2.tmp-" .. dead -- another file's name: not ours to remove
    for _, p in ipairs({ stale, live, other }) do
      local f = assert(io.open(p, "wb"))
      f:write("partial")
      f:close()
    end
    gen.checkpoint.save(path, kill.state(5))
    assert.is_false(exists(stale))
    assert.is_true(exists(live))
    assert.is_true(exists(other))
    assert.equal(5, kill.check(path))
    os.remove(live)
    os.remove(other)
  end)

  it("a full disk (RLIMIT_FSIZE) is an error naming the file, and the previous checkpoint stays", function()
    local path = dir .. "/full.safetensors"
    gen.checkpoint.save(path, kill.state(3))
    -- ignore SIGXFSZ so the write fails with EFBIG instead of killing the process; 256 KB limit
    local ok, out = sh(string.format("sh -c \"trap '' XFSZ; ulimit -f 512; %s spec/support/checkpoint_child.lua %s 4 4\"",
      "lua5.4", path))
    assert.is_falsy(ok)
    assert.is_truthy(out:find(path .. ": write failed (File too large)", 1, true), out)
    assert.is_truthy(out:find("previous file", 1, true), out)
    assert.equal(3, kill.check(path))
    local p = io.popen("ls -a " .. dir)
    for name in p:lines() do assert.is_falsy(name:find("full%.safetensors%.tmp%-"), name) end
    p:close()
  end)
end)
