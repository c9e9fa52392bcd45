-- Turns bench results ("<who> <workload> <threads> <seconds> <peak kB>") into the table of
-- bench/README.md: the measured section between the markers is replaced, the rest is kept.
local results_path, readme_path = arg[1], arg[2]
local rows, order = {}, {}
for line in io.lines(results_path) do
  local who, w, th, s, kb = line:match("^(%S+)%s+(%S+)%s+(%d+)%s+(%S+)%s+(%d+)")
  if who then
    local key = w .. "@" .. th
    if not rows[key] then rows[key] = { w = w, th = th }; order[#order + 1] = key end
    rows[key][who] = { s = tonumber(s), kb = tonumber(kb) }
  end
end

local function fmt_time(s)
  if s < 1e-3 then return string.format("%.2f us", s * 1e6) end
  return string.format("%.2f ms", s * 1e3)
end

local lines = {
  "| workload | threads | gen | PyTorch | PyTorch / gen | gen GFLOPS | raw sgemm GFLOPS | gen / raw | peak RSS gen / torch (MB) |",
  "|---|---|---|---|---|---|---|---|---|",
}
for _, key in ipairs(order) do
  local r = rows[key]
  local g, t, raw = r.gen, r.torch, r.raw
  local n = tonumber(r.w:match("^sgemm(%d+)$"))
  local gflops = function(x) return n and x and string.format("%.1f", 2 * n ^ 3 / x.s / 1e9) or "" end
  lines[#lines + 1] = string.format("| %s | %s | %s | %s | %.2fx | %s | %s | %s | %.0f / %.0f |", r.w, r.th,
    fmt_time(g.s), fmt_time(t.s), t.s / g.s, gflops(g), gflops(raw), raw and string.format("%.1f%%", 100 * raw.s / g.s) or "",
    g.kb / 1024, t.kb / 1024)
end

local cpu = io.popen("lscpu | sed -n 's/^Model name:[ ]*//p'"):read("l") or "?"
local cores = io.popen("nproc"):read("l") or "?"
local table_text = string.format("Measured %s on %s (%s cores).\n\n%s\n", os.date("!%Y-%m-%d %H:%M UTC"), cpu, cores,
  table.concat(lines, "\n"))
print(table_text)

local f = io.open(readme_path)
local readme = f and f:read("a") or ""
if f then f:close() end
local begin_mark, end_mark = "<!-- results:begin -->", "<!-- results:end -->"
local block = begin_mark .. "\n" .. table_text .. end_mark
if readme:find(begin_mark, 1, true) then
  readme = readme:gsub(begin_mark:gsub("%p", "%%%0") .. ".-" .. end_mark:gsub("%p", "%%%0"), function() return block end)
else
  readme = readme .. "\n" .. block .. "\n"
end
f = assert(io.open(readme_path, "w"))
f:write(readme)
f:close()
