-- What the specs that run commands share: sh(cmd) -> ok, output (stdout and stderr together);
-- read(path) -> the file's bytes or nil; tmpdir() -> a fresh name for a directory (not created).
local M = {}

function M.sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function M.tmpdir()
  local base = os.tmpname()
  os.remove(base)
  return base
end

return M
