-- Turns bench results into the tables of bench/README.md.
-- Usage: lua5.4 bench/report.lua RESULTS README|- [WORKLOAD...]
-- RESULTS is bench/results.txt, committed: a run on one machine updates its own rows and keeps the
-- rows measured before (each row says when it was measured).
-- RESULTS holds lines "<who> <workload> <threads> <seconds> <peak kB> [params=N] [when=T]"; a later
-- line for the same who/workload/threads replaces an earlier one, so a partial rerun updates only
-- its rows. The file is rewritten with one line per key. The WORKLOADs give the row order. The
-- tables go to stdout and, unless README is "-", between the markers of README (the rest is kept).
local results_path, readme_path = arg[1], arg[2]
local rank = {}
for i = 3, #arg do rank[arg[i]] = i end

-- A run may measure a workload in several rounds (GEN_BENCH_ROUNDS); the lines of a key's newest
-- run are all kept, and its row reports their median time and largest peak RSS.
local groups, order_keys = {}, {}
for line in io.lines(results_path) do
  local who, w, th = line:match("^(%S+)%s+(%S+)%s+(%d+)%s+%S+%s+%d+")
  if who then
    local key, when = who .. " " .. w .. " " .. th, line:match("when=(%S+)") or ""
    local g = groups[key]
    if not g then
      g = { when = when, lines = {} }
      groups[key] = g
      order_keys[#order_keys + 1] = key
    end
    if when > g.when then g.when, g.lines = when, {} end
    if when == g.when then g.lines[#g.lines + 1] = line end
  end
end
local lines, all = {}, {}
for _, key in ipairs(order_keys) do
  local g = groups[key]
  local times, kb = {}, 0
  for _, line in ipairs(g.lines) do
    all[#all + 1] = line
    local s, k = line:match("^%S+%s+%S+%s+%d+%s+(%S+)%s+(%d+)")
    times[#times + 1] = tonumber(s)
    kb = math.max(kb, tonumber(k))
  end
  table.sort(times)
  local median = times[(#times + 1) // 2]
  local head, rest = g.lines[1]:match("^(%S+%s+%S+%s+%d+)%s+%S+%s+%d+(.*)$")
  lines[#lines + 1] = string.format("%s %.9g %d%s", head, median, kb, (rest:gsub("%s*round=%d+", "")))
  if #g.lines > 1 then lines[#lines] = lines[#lines] .. " rounds=" .. #g.lines end
end
local f = assert(io.open(results_path, "w"))
f:write(table.concat(all, "\n"), #all > 0 and "\n" or "")
f:close()

local rows, first, last, undated = {}, nil, nil, 0
for _, line in ipairs(lines) do
  local who, w, th, s, kb = line:match("^(%S+)%s+(%S+)%s+(%d+)%s+(%S+)%s+(%d+)")
  local key = w .. "@" .. th
  rows[key] = rows[key] or { w = w, th = tonumber(th), e2e = false }
  local params, when = line:match("params=(%d+)"), line:match("when=(%S+)")
  rows[key][who] = { s = tonumber(s), kb = tonumber(kb), params = tonumber(params), when = when }
  if params then rows[key].e2e = true end
  if not when then undated = undated + 1 end
  if when then
    if not first or when < first then first = when end
    if not last or when > last then last = when end
  end
end

-- a model whose twin has another parameter count is not the same model: refuse to report it
for _, r in pairs(rows) do
  if r.gen and r.torch and r.gen.params ~= r.torch.params then
    io.stderr:write(string.format("bench: %s has %s parameters in gen but %s in PyTorch; the twins differ\n", r.w,
      tostring(r.gen.params), tostring(r.torch.params)))
    os.exit(1)
  end
end

local ops, e2e = {}, {}
for _, r in pairs(rows) do table.insert(r.e2e and e2e or ops, r) end
local function order(a, b) return (rank[a] or math.huge) < (rank[b] or math.huge) or (rank[a] == rank[b] and a < b) end
-- the op table groups by thread count; the end-to-end one puts a workload's 1- and 2-thread rows together
table.sort(ops, function(a, b) if a.th ~= b.th then return a.th < b.th end return order(a.w, b.w) end)
table.sort(e2e, function(a, b) if a.w ~= b.w then return order(a.w, b.w) end return a.th < b.th end)

local function fmt_time(x)
  if not x then return "" end
  if x.s < 1e-3 then return string.format("%.2f us", x.s * 1e6) end
  if x.s < 10 then return string.format("%.2f ms", x.s * 1e3) end
  return string.format("%.2f s", x.s)
end
local function mb(x) return x and x.kb > 0 and string.format("%.0f", x.kb / 1024) or "" end
local function ratio(a, b) return a and b and string.format("%.2fx", a.s / b.s) or "" end
-- when the row was measured: partial reruns leave rows of several dates in one table
local function measured(r)
  local x = r.gen or r.torch
  return x and x.when and x.when:gsub("^%d%d%d%d%-", ""):gsub("T", " ") or ""
end

-- The machine (bench/run.sh writes it): CPU model, ISA level in use, FMA peak per core of each ISA.
local machine = { peak = {} }
local mf = io.open(os.getenv("GEN_BENCH_MACHINE") or "build/bench/machine.txt")
if mf then
  for line in mf:lines() do
    local isa, gf = line:match("^peak (%S+) %d+ (%S+)")
    if isa then machine.peak[isa] = tonumber(gf) end
    machine.cpu = machine.cpu or line:match("^cpu (.+)")
    machine.isa = machine.isa or line:match("^isa (%S+)")
    machine.load = machine.load or line:match("^load (.+)")
  end
  mf:close()
end
local peak = machine.isa and machine.peak[machine.isa]

-- Floating-point operations of the GEMM-bound workloads (forward + backward for the layers:
-- three products of the forward's size; attention: seven T x T x d products per head; the
-- convolutions counted as direct convolution, so Winograd's savings show as more than 100%).
local function workload_flops(w)
  local n = tonumber(w:match("^sgemm(%d+)$"))
  if n then return 2 * n ^ 3 end
  local per = {
    linear = 3 * 2 * 128 * 784 * 400,
    conv_s1 = 3 * 2 * 32 * 64 * 28 * 28 * 64 * 9,
    conv_s2 = 3 * 2 * 64 * 128 * 7 * 7 * 64 * 16,
    attn256 = 8 * 4 * 7 * 2 * 256 * 256 * 32,
    attn784 = 4 * 4 * 7 * 2 * 784 * 784 * 64,
  }
  return per[w]
end

local out = {
  "| workload | threads | gen | PyTorch | PyTorch / gen | gen GFLOPS | gen / FMA peak | raw OpenBLAS sgemm GFLOPS"
    .. " | raw gen sgemm GFLOPS | gen peak RSS (MB) | PyTorch peak RSS (MB) | measured (UTC) |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|",
}
for _, r in ipairs(ops) do
  local flops = workload_flops(r.w)
  local function gflops(x) return flops and x and string.format("%.1f", flops / x.s / 1e9) or "" end
  local of_peak = flops and r.gen and peak and string.format("%.0f%%", 100 * flops / r.gen.s / 1e9 / (peak * r.th)) or ""
  out[#out + 1] = string.format("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", r.w, r.th, fmt_time(r.gen),
    fmt_time(r.torch), ratio(r.torch, r.gen), gflops(r.gen), of_peak, gflops(r.raw), gflops(r.rawgen), mb(r.gen), mb(r.torch),
    measured(r))
end
if #e2e > 0 then
  out[#out + 1] = ""
  out[#out + 1] = "| workload | threads | gen | PyTorch | PyTorch / gen | gen 2T speed-up | PyTorch 2T speed-up | gen peak RSS (MB) "
    .. "| PyTorch peak RSS (MB) | parameters | measured (UTC) |"
  out[#out + 1] = "|---|---|---|---|---|---|---|---|---|---|---|"
  for _, r in ipairs(e2e) do
    local one = r.th == 2 and rows[r.w .. "@1"] or {}
    local g = fmt_time(r.gen)
    -- the examples' loops have no twin; their rate is what a user sees in the progress bar
    if r.gen and r.w:match("^example_") then g = string.format("%s (%.2f steps/s)", g, 1 / r.gen.s) end
    out[#out + 1] = string.format("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |", r.w, r.th, g, fmt_time(r.torch),
      ratio(r.torch, r.gen), ratio(one.gen, r.th == 2 and r.gen or nil), ratio(one.torch, r.th == 2 and r.torch or nil),
      mb(r.gen), mb(r.torch), r.gen and r.gen.params or "", measured(r))
  end
end

local cpu = io.popen("lscpu | sed -n 's/^Model name:[ ]*//p'"):read("l") or "?"
local cores = io.popen("nproc"):read("l") or "?"
local span = not first and "at an unrecorded time" or (first == last and first or (first .. " to " .. last)) .. " UTC"
if first and undated > 0 then span = span .. " (some rows earlier)" end
local isa_note = ""
if machine.isa then
  local peaks = {}
  for _, isa in ipairs { "avx512", "avx2" } do
    if machine.peak[isa] then peaks[#peaks + 1] = string.format("%s %.0f", isa, machine.peak[isa]) end
  end
  isa_note = string.format(" gen's kernels at ISA level %s; measured FMA peak per core (GFLOPS): %s;"
    .. " load average at the start: %s.", machine.isa, #peaks > 0 and table.concat(peaks, ", ") or "?", machine.load or "?")
end
local text = string.format("Measured %s on %s (%s cores).%s\n\n%s\n", span, machine.cpu or cpu, cores, isa_note,
  table.concat(out, "\n"))
print(text)
if readme_path == "-" then return end

f = io.open(readme_path)
local readme = f and f:read("a") or ""
if f then f:close() end
local begin_mark, end_mark = "<!-- results:begin -->", "<!-- results:end -->"
local block = begin_mark .. "\n" .. text .. end_mark
if readme:find(begin_mark, 1, true) then
  readme = readme:gsub(begin_mark:gsub("%p", "%%%0") .. ".-" .. end_mark:gsub("%p", "%%%0"), function() return block end)
else
  readme = readme .. "\n" .. block .. "\n"
end
f = assert(io.open(readme_path, "w"))
f:write(readme)
f:close()
