-- This process as the kernel counts it (/proc/self): what the memory specs measure.
local M = {}

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

--- Resident set size in kB.
function M.rss_kb() return tonumber(read("/proc/self/status"):match("VmRSS:%s+(%d+)")) end

--- Minor page faults so far (field 10 of /proc/self/stat): fresh pages the process touched.
function M.minor_faults() return tonumber(read("/proc/self/stat"):match("^%d+ %b() %S+" .. string.rep(" %S+", 6) .. " (%d+)")) end

return M
