-- Kill trials for atomic checkpoints, shared by spec/checkpoint_kill_spec.lua (a short run) and
-- bench/checkpoint_kill.lua (a long one, for the README's count).
--
-- One trial: a child process saves checkpoints of increasing steps to one path; we SIGKILL it
-- after a random delay; the file must then load whole (every tensor holds its step's values)
-- with a step no older than the last one known to be saved; then we save once ourselves and
-- no PATH.tmp-PID file may be left in the directory.
local gen = require "gen"

local M = {}

-- The state saved at a step: 2 MB of tensors whose values encode the step.
function M.state(step)
  return { weights = { a = gen.full({ 512, 1024 }, step), b = gen.full({ 1000 }, -step, "float64") }, step = step }
end

-- Checks a loaded state: returns its step, or raises.
function M.check(path)
  local s = gen.checkpoint.load(path, nil, { rng = false })
  local step = assert(s.step, "no step")
  local a, b = s.weights.a, s.weights.b
  assert(a:numel() == 512 * 1024 and a:min():item() == step and a:max():item() == step, "tensor a does not hold step " .. step)
  assert(b:numel() == 1000 and b:min():item() == -step and b:max():item() == -step, "tensor b does not hold step " .. -step)
  return step
end

local function litter(dir)
  local p = io.popen("ls -a " .. dir)
  local found = {}
  for name in p:lines() do
    if name:find("%.tmp%-") then found[#found + 1] = name end
  end
  p:close()
  return found
end

-- Runs n trials in dir; returns counts {trials, killed_mid_run, old, new, litter_before, litter_after}.
function M.run(n, dir, opts)
  opts = opts or {}
  local lua = opts.lua or "lua5.4"
  local path = dir .. "/checkpoint.safetensors"
  gen.checkpoint.save(path, M.state(0))
  local known, stats = 0, { trials = 0, old = 0, new = 0, litter_before = 0, litter_after = 0, finished = 0 }
  math.randomseed(opts.seed or 1)
  for trial = 1, n do
    local first = trial * 1000
    local delay = opts.min_delay + math.random() * (opts.max_delay - opts.min_delay)
    local errfile = dir .. "/child.err"
    local cmd = string.format("%s spec/support/checkpoint_child.lua %s %d %d 2>%s & pid=$!; sleep %.3f; kill -9 $pid 2>/dev/null;"
      .. " wait $pid; echo $?", lua, path, first, first + 1000, errfile, delay)
    local p = io.popen("sh -c '" .. cmd .. "' 2>/dev/null")
    local status = tonumber(p:read("a"):match("(%d+)%s*$"))
    p:close()
    if status ~= 137 and status ~= 0 then
      local f = io.open(errfile)
      local msg = f and f:read("a") or ""
      if f then f:close() end
      error("trial " .. trial .. ": the saving child failed (status " .. tostring(status) .. "): " .. msg)
    end
    if status == 0 then stats.finished = stats.finished + 1 end
    local step = M.check(path)
    assert(step == known or (step >= first and step <= first + 1000),
      string.format("trial %d: step %d is neither the previous %d nor one of this trial's", trial, step, known))
    if step == known then stats.old = stats.old + 1 else stats.new = stats.new + 1 end
    if #litter(dir) > 0 then stats.litter_before = stats.litter_before + 1 end
    known = first + 1000 + 1
    gen.checkpoint.save(path, M.state(known))
    assert(M.check(path) == known)
    local left = litter(dir)
    if #left > 0 then stats.litter_after = stats.litter_after + 1 end
    stats.trials = trial
  end
  return stats
end

return M
