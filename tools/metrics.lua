-- Prints FID, Inception Score, coverage (and class agreement) for a file of samples.
--   bin/gen tools/metrics.lua runs/dcgan/samples.idx [--class K]
--   bin/gen tools/metrics.lua samples.idx --cycle 1    (sample i was drawn as class (i - 1) % 10 + 1,
--                                                       as flow.lua and cgan.lua draw them)
--   bin/gen tools/metrics.lua grid.png [--nrow 8 --padding 2]      (a sample grid from gen.image.grid)
-- Samples: an IDX file N x 28 x 28 (uint8, 0 = black), or a PNG grid of 28x28 tiles.
local gen = require "gen"
local metrics = require "gen.metrics"

local path = arg[1]
if not path or path:match("^%-%-") then
  io.stderr:write("usage: bin/gen tools/metrics.lua SAMPLES.idx|GRID.png [--class K | --cycle 1] [--nrow N --padding P]\n")
  os.exit(2)
end
local opts = { class = 0, cycle = 0, nrow = 8, padding = 2 }
for i = 2, #arg, 2 do
  local k = arg[i]:match("^%-%-(%w+)$")
  if not k or opts[k] == nil or not tonumber(arg[i + 1]) then
    io.stderr:write("tools/metrics.lua: bad option " .. tostring(arg[i]) .. "\n")
    os.exit(2)
  end
  opts[k] = math.tointeger(tonumber(arg[i + 1]))
end

local images
if path:lower():match("%.png$") then
  local grid = gen.image.load(path, { channels = 1, uint8 = true })[1]
  local p, tiles = opts.padding, {}
  local rows, cols = (grid:size(1) - p) // (28 + p), (grid:size(2) - p) // (28 + p)
  for r = 0, rows - 1 do
    for c = 0, cols - 1 do
      tiles[#tiles + 1] = grid:narrow(1, p + r * (28 + p) + 1, 28):narrow(2, p + c * (28 + p) + 1, 28):unsqueeze(1)
    end
  end
  images = gen.stack(tiles)
else
  images = gen.data.idx.read(path)
  if images:dim() == 3 then images = images:unsqueeze(2) end
end
if images:dim() ~= 4 or images:size(3) ~= 28 or images:size(4) ~= 28 then
  io.stderr:write(string.format("tools/metrics.lua: expected 28x28 images, got {%s}\n", table.concat(images.shape, ",")))
  os.exit(1)
end
local labels
if opts.cycle > 0 then
  local l = {}
  for i = 1, images:size(1) do l[i] = (i - 1) % 10 + 1 end
  labels = gen.tensor(l, "int64")
end
local r = metrics.evaluate(images, { class = opts.class, labels = labels })
local wanted = labels and "the cycled classes" or ("class " .. opts.class)
print(string.format("samples %d  FID %.2f  KID %.4f  IS %.2f  coverage %.3f (ln 10 = 2.303)%s", r.n, r.fid, r.kid, r.inception_score,
  r.coverage, r.agreement and string.format("  agreement with %s: %.1f%%", wanted, 100 * r.agreement) or ""))
