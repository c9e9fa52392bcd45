--- gen.experiment: the command-line contract and training loop shared by examples/FAMILY/*.lua.
--
--   local run = experiment.parse("dcgan", arg, {epochs = 5, batch = 64, lr = 2e-4})
--   experiment.train(run, {state = {...}, data = dataset, losses = {"loss_d", "loss_g"},
--                          step = function(x, y, step) ... return {loss_d = ..., loss_g = ...} end,
--                          sample = function(n, opts) ... return images in [-1, 1] end})
--
-- Options every example takes: --out DIR (runs/NAME), --epochs N, --steps N (either bounds
-- training; both count the total across resumes), --batch N, --seed N, --threads N, --resume,
-- --sample N (load DIR's checkpoint, write N images as DIR/samples.idx and DIR/samples.png),
-- --sample-batch B (64: --sample and --eval draw B images at a time, so time per image and memory
-- stay those of batch B whatever N is), --class K and --guidance W (conditional models),
-- --log-every N, --eval N (after training or --sample, score N fresh samples with gen.metrics
-- against the test set: printed and written to DIR/metrics.txt, drawn --sample-batch at a time, or
-- --eval-batch B if given; conditional models' sample functions return the requested labels too,
-- which adds the classifier's agreement with them), --detect-anomaly (gen.autograd.detect_anomaly: the first
-- op producing NaN or Inf stops the run, named with its line), --dist (data-parallel over the
-- ranks of `mpirun -np P`: see "Data-parallel runs" below; --dist-deterministic reduces gradients
-- in a fixed rank order, --dist-sync-bn normalizes batch norms over the global batch).
-- Example-specific options are
-- declared by their defaults (numbers, strings, booleans) and parsed the same way (--sample-steps
-- sets sample_steps); an option with a fixed set of values is declared once with
-- experiment.choice(default, {values...}), and the usage text lists the values.
-- Scripts whose learning rate follows a schedule declare experiment.lr_schedule_options(defaults)
-- (--lr-schedule constant|cosine, --warmup N, --min-lr F) and pass their optimizers as
-- spec.scheduled: the lr of step k (1-based) is lr * warm-up(k - 1) * decay(k - 1), a function of
-- the step alone, so a resumed run continues the same curve.
-- Two-stage scripts (priors over VQ-VAE codes) take --stage1 DIR, the --out of a stage-1 run, and
-- get its model with experiment.stage1(run, "vqvae"); the stage-1 script saves
-- experiment.stage1_record(kind, config) in its state, so the model can be rebuilt and its kind
-- checked. Other scripts refuse --stage1.
-- Bad command-line input (an unknown flag, a bad number, a value outside its choices, --sample
-- without a checkpoint, --resume from another model's checkpoint, an unwritable --out) raises a
-- usage error: run by bin/gen, the script ends with a one-line message and exit status 2, never a
-- traceback.
local gen = require "gen"

local M = {}

local common = { out = "", epochs = 0, steps = 0, batch = 64, seed = 0, threads = 0, resume = false, sample = 0,
  sample_batch = 64, class = 0, guidance = 0.0, log_every = 50, checkpoint_every = 500, eval = 0, eval_batch = 0,
  detect_anomaly = false, dist = false, dist_deterministic = false, dist_sync_bn = false, stage1 = "" }
-- the smallest value each common count accepts
local minimum = { epochs = 0, steps = 0, batch = 1, seed = 0, threads = 0, sample = 0, sample_batch = 1, class = 0,
  log_every = 1, checkpoint_every = 1, eval = 0, eval_batch = 0 }

local Choice = {}
--- An option that takes one of a fixed set of strings: experiment.choice("ddim", {"ddim", "ddpm"}).
function M.choice(default, values)
  local allowed = {}
  for _, v in ipairs(values) do allowed[v] = true end
  if not allowed[default] then error("gen.experiment.choice: default '" .. tostring(default) .. "' is not among the values", 2) end
  return setmetatable({ default = default, values = values, allowed = allowed }, Choice)
end

-- Bad command-line input is raised as a UsageError: bin/gen prints its one line and exits with
-- status 2 (see gen.app.run), and code that calls parse or train in-process can catch it.
local UsageError = { __tostring = function(e) return e.message end }

--- Raises a bad-command-line error, "SCRIPT: MSG".
function M.fail(script, msg)
  error(setmetatable({ message = script .. ": " .. msg }, UsageError), 0)
end

--- True for an error raised by fail.
function M.is_usage_error(e) return getmetatable(e) == UsageError end

local function usage(script, opts, choices)
  local keys = {}
  for k in pairs(opts) do keys[#keys + 1] = k end
  table.sort(keys)
  local lines = { "usage: bin/gen " .. script .. " [options]" }
  for _, k in ipairs(keys) do
    local flag = "--" .. k:gsub("_", "-")
    if choices[k] then
      lines[#lines + 1] = string.format("  %-18s %s (default %s)", flag, table.concat(choices[k].values, "|"), tostring(opts[k]))
    else
      lines[#lines + 1] = string.format("  %-18s (default %s)", flag, tostring(opts[k]))
    end
  end
  return table.concat(lines, "\n")
end

--- Parses argv against the common options and the example's defaults; returns the options table.
function M.parse(name, argv, defaults)
  local opts, choices = {}, {}
  for k, v in pairs(common) do opts[k] = v end
  for k, v in pairs(defaults or {}) do
    if getmetatable(v) == Choice then choices[k], v = v, v.default end
    opts[k] = v
  end
  local script = argv and argv[0] or (name .. ".lua")
  local function fail(msg) M.fail(script, msg) end
  local i = 1
  while argv and argv[i] do
    local a = argv[i]
    if a == "-h" or a == "--help" then print(usage(script, opts, choices)); os.exit(0) end
    local key = a:match("^%-%-([%w%-]+)$")
    if not key then fail("unexpected argument '" .. a .. "' (--help lists the options)") end
    key = key:gsub("%-", "_")
    local flag = "--" .. key:gsub("_", "-")
    local cur = opts[key]
    if cur == nil then fail("unknown option " .. flag .. " (--help lists the options)") end
    if type(cur) == "boolean" then
      opts[key] = true
      i = i + 1
    else
      local v = argv[i + 1]
      if v == nil then fail("option " .. flag .. " needs a value") end
      if type(cur) == "number" then
        local n = tonumber(v)
        if not n or n ~= n then fail("option " .. flag .. " needs a number, got '" .. v .. "'") end
        if math.type(cur) == "integer" then
          n = math.tointeger(n)
          if n == nil then fail("option " .. flag .. " needs an integer, got '" .. v .. "'") end
        end
        opts[key] = n
        if minimum[key] and opts[key] < minimum[key] then
          fail(string.format("option %s must be at least %d, got %s", flag, minimum[key], v))
        end
      elseif choices[key] and not choices[key].allowed[v] then
        fail(string.format("option %s must be one of %s, got '%s'", flag, table.concat(choices[key].values, "|"), v))
      else
        opts[key] = v
      end
      i = i + 2
    end
  end
  opts.name, opts.script = name, script
  if opts.out == "" then opts.out = "runs/" .. name end
  if opts.threads > 0 then gen.set_num_threads(opts.threads) end
  if opts.detect_anomaly then gen.autograd.detect_anomaly(true) end -- --detect-anomaly: see gen.autograd
  return opts
end

-- Creates dir (and its parents) and checks that files can be written in it.
local function writable_dir(run)
  os.execute('mkdir -p "' .. run.out:gsub('"', '\\"') .. '" 2>/dev/null')
  local probe = run.out .. "/.write-test"
  local f = io.open(probe, "w")
  if not f then M.fail(run.script, "cannot write to --out " .. run.out) end
  f:close()
  os.remove(probe)
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Loads the checkpoint into the state, or ends with a one-line message saying why it cannot.
local function load_checkpoint(run, path, state, why)
  if not file_exists(path) then
    M.fail(run.script, string.format("%s: no checkpoint at %s (train first, without %s)", why, path, why))
  end
  local ok, result = pcall(gen.checkpoint.load, path, state)
  if not ok then
    M.fail(run.script, string.format("%s: %s does not hold this model's state (%s)", why, path,
      tostring(result):gsub("^[^:]*:%d+: ", "")))
  end
  return result
end

--- Writes images ({N, C, H, W} in [-1, 1]) as DIR/samples.idx (uint8, N x H x W for one channel,
-- 0 = black) and the first nrow x nrow of them (nrow defaults to 8) as a grid DIR/samples.png.
function M.write_samples(dir, images, nrow)
  nrow = nrow or 8
  local u8 = ((images:clamp(-1, 1) + 1) * 127.5 + 0.5):byte()
  local n, c, h, w = table.unpack(u8.shape)
  gen.data.idx.write(dir .. "/samples.idx", c == 1 and u8:view(n, h, w) or u8)
  local shown = images:narrow(1, 1, math.min(n, nrow * nrow))
  gen.image.save(dir .. "/samples.png", gen.image.grid(shown, { nrow = nrow, range = { -1, 1 } }))
end

local function plot_losses(run, losses)
  local names, cols = gen.ui.read_csv(run.out .. "/log.csv")
  local series = {}
  for _, l in ipairs(losses) do if cols[l] then series[#series + 1] = { name = l, x = cols.step, y = cols[l] } end end
  if #series > 0 and #cols.step > 1 then
    gen.ui.plot(run.out .. "/losses.png", { series = series, title = run.name .. " losses", xlabel = "step", ylabel = "loss" })
  end
  return names
end

-- The seed of image `index` of a draw seeded with `seed`: its own stream, whatever batch it falls in.
local function image_seed(seed, index) return (seed << 32) + index end

--- The noise of a batch of a draw: a tensor {n, ...dims} whose row i comes from the draw's own
-- stream for its image (draw.generators[i]), so an image gets the same noise in any batch; without
-- a draw (the grid after training), from gen's global stream.
function M.noise(draw, n, ...)
  local dims = { ... }
  if not draw then return gen.randn(n, table.unpack(dims)) end
  if #draw.generators ~= n then error(string.format("gen.experiment.noise: %d rows for a batch of %d images", n, #draw.generators), 2) end
  local rows = {}
  for i, g in ipairs(draw.generators) do rows[i] = gen.randn({ 1, table.unpack(dims) }, { generator = g }) end
  return gen.cat(rows, 1)
end

--- n images of spec.sample (and their labels if it returns them), drawn in batches of `batch`:
-- spec.sample(b, run, draw) for each batch, without autograd, where draw = {first = index of the
-- batch's first image in 1..n, generators = one gen.Generator per image of the batch, seeded from
-- (seed, image index)}. A sample function that draws all its randomness from draw.generators
-- (experiment.noise, the diffusion samplers' generator option) gives the same images for every
-- batch size; the others draw from gen's global stream, seeded with `seed` once, and are
-- reproducible for a given batch size. Why batches: a UNet pass over 2000 images held 3.1 GB and
-- ran 72 s per sampling step, 10x the time of the same images 64 at a time.
function M.draw(run, spec, n, seed, batch)
  batch = batch or run.sample_batch
  if math.type(batch) ~= "integer" or batch < 1 then M.fail(run.script, "option --sample-batch must be >= 1, got " .. tostring(batch)) end
  gen.manual_seed(seed)
  local parts, part_labels = {}, {}
  for first = 1, n, batch do
    local b = math.min(batch, n - first + 1)
    local draw = { first = first, generators = {} }
    for i = 1, b do draw.generators[i] = gen.Generator(image_seed(seed, first + i - 1)) end
    local images, labels = gen.no_grad(spec.sample, b, run, draw)
    parts[#parts + 1], part_labels[#part_labels + 1] = images, labels
  end
  return gen.cat(parts), #part_labels == #parts and gen.cat(part_labels) or nil
end

--- Scores n samples of spec.sample with gen.metrics; prints the line and writes DIR/metrics.txt.
function M.evaluate(run, spec, n)
  local metrics = require "gen.metrics"
  local t0 = gen.time()
  local batch = run.eval_batch > 0 and run.eval_batch or run.sample_batch
  local images, labels = M.draw(run, spec, n, run.seed + 2, batch)
  local seconds = gen.time() - t0
  local r = metrics.evaluate(images:clamp(-1, 1), { labels = labels })
  local line = string.format("%s: %d samples (%.1f s)  FID %.2f  KID %.4f  IS %.2f  coverage %.3f%s", run.name, r.n, seconds,
    r.fid, r.kid, r.inception_score, r.coverage, r.agreement and string.format("  agreement %.1f%%", 100 * r.agreement) or "")
  print(line)
  local f = assert(io.open(run.out .. "/metrics.txt", "w"))
  f:write(line, "\n")
  f:close()
  return r
end

-- Data-parallel runs (--dist). Every rank runs the script; gen.dist.DataParallel averages the
-- gradients of each module in the state, the loader gives each rank its shard of every global
-- batch (--batch is per rank: the global batch is --batch x ranks), and each rank draws its own
-- noise, reseeded from (--seed, rank, step) before every step so a resumed run continues bitwise.
-- Rank 0 alone writes the checkpoint (with the number of ranks, which --resume checks), the log
-- (losses averaged over the ranks), the grids and the progress bar; --sample and --eval run on
-- rank 0 only.
local function dist_setup(run)
  if not run.dist then return { rank = 0, size = 1, main = true } end
  local dist = require "gen.dist"
  local rank, size = dist.init()
  return { dist = dist, rank = rank, size = size, main = rank == 0, models = {} }
end

local function dist_wrap(ctx, run, state)
  if not ctx.dist then return end
  local names = {}
  for k, v in pairs(state) do
    if type(v) == "table" and rawget(v, "_is_module") then names[#names + 1] = k end
  end
  table.sort(names) -- the same order on every rank: DataParallel broadcasts in its constructor
  for _, k in ipairs(names) do
    ctx.models[#ctx.models + 1] = ctx.dist.DataParallel(state[k], { deterministic = run.dist_deterministic,
      batch_norm = run.dist_sync_bn and "sync" or "local" })
  end
end

local function dist_check_resume(ctx, run, ck, ck_path)
  local saved = math.tointeger(ck.dist_world_size) or 1
  if saved ~= ctx.size then
    M.fail(run.script, string.format("--resume: %s was written by a run on %d rank%s; resume it with the same number "
      .. "(%s), not %d", ck_path, saved, saved == 1 and "" or "s",
      saved == 1 and "without --dist, or mpirun -np 1 ... --dist" or "mpirun -np " .. saved .. " ... --dist", ctx.size))
  end
end

-- The losses of a logged step, averaged over the ranks (every rank calls it on the same steps).
local function dist_mean(ctx, losses, values)
  if not ctx.dist or ctx.size == 1 then return values end
  local v = {}
  for i, l in ipairs(losses) do v[i] = tonumber(values[l]) or 0 end
  local t = ctx.dist.all_reduce(gen.tensor(v, "float64"), "mean"):totable()
  local out = {}
  for k, x in pairs(values) do out[k] = x end
  for i, l in ipairs(losses) do if values[l] ~= nil then out[l] = t[i] end end
  return out
end

-- The record a two-stage script's checkpoint keeps of the stage-1 model it was trained on (added to
-- the state by experiment.train when experiment.stage1 was called): --sample and --resume with a
-- --stage1 whose weights differ (another run, or the same directory retrained since) would decode
-- the prior's codes with the wrong codebook, so they are refused, naming both.
local function stage1_identity(run)
  local mine = run._stage1_identity
  return {
    optional_state = true, -- checkpoints written before this record still load
    state_dict = function() return mine end,
    load_state_dict = function(_, saved)
      if type(saved) == "table" and saved.fingerprint ~= nil and saved.fingerprint ~= mine.fingerprint then
        error(string.format("it was trained on the codes of the %s in %s (fingerprint %s), and --stage1 %s holds another one (%s)",
          tostring(saved.kind), tostring(saved.dir), tostring(saved.fingerprint), mine.dir, mine.fingerprint), 0)
      end
    end,
  }
end

--- Adds the learning-rate schedule options to an example's defaults: --lr-schedule constant
-- (default) or cosine (from --lr down to --min-lr times it at the last step), after --warmup N
-- steps of linear warm-up from lr / N (0: none).
function M.lr_schedule_options(defaults)
  defaults.lr_schedule = M.choice("constant", { "constant", "cosine" })
  defaults.warmup, defaults.min_lr = 0, 0.0
  return defaults
end

-- The schedulers of spec.scheduled (optimizers) over `total` steps, positioned at `step`.
local function lr_schedulers(run, spec, total, step)
  if not spec.scheduled then return {} end
  if run.lr_schedule == nil then error("gen.experiment.train: spec.scheduled needs experiment.lr_schedule_options in the defaults", 3) end
  if run.warmup < 0 then M.fail(run.script, "option --warmup must be >= 0, got " .. run.warmup) end
  if run.min_lr < 0 or run.min_lr > 1 then M.fail(run.script, "option --min-lr must be in [0, 1], got " .. run.min_lr) end
  local schedules = gen.optim.schedules
  local schedule = schedules.chain(run.warmup > 0 and schedules.linear_warmup(run.warmup) or schedules.constant(),
    run.lr_schedule == "cosine" and schedules.cosine(math.max(1, total - 1), run.min_lr) or schedules.constant())
  local list = {}
  for i, opt in ipairs(spec.scheduled) do
    local s = gen.optim.Scheduler(opt, schedule)
    -- the base is the command line's lr (a loaded optimizer holds the last step's scheduled one)
    s:load_state_dict { count = step, base_lr = run.lr }
    list[i] = s
  end
  return list
end

--- Runs training (or sampling with --sample) as described at the top of this file.
function M.train(run, spec)
  if run.stage1 ~= "" and not rawget(run, "_stage1_loaded") then
    M.fail(run.script, "option --stage1 is for two-stage scripts, and this one has no stage 1")
  end
  if rawget(run, "_stage1_identity") then spec.state.stage1_used = stage1_identity(run) end
  local ctx = dist_setup(run)
  if ctx.main then writable_dir(run) end
  local ck_path = run.out .. "/checkpoint.safetensors"
  if run.sample > 0 and not ctx.main then return end
  if run.sample > 0 then
    load_checkpoint(run, ck_path, spec.state, "--sample")
    local t0 = gen.time()
    local images = M.draw(run, spec, run.sample, run.seed + 1)
    if os.getenv("GEN_SAMPLE_TIME") then io.stderr:write(string.format("sampling: %.2f s\n", gen.time() - t0)) end
    M.write_samples(run.out, images, spec.nrow)
    print(string.format("wrote %d samples to %s/samples.idx and %s/samples.png", run.sample, run.out, run.out))
    if run.eval > 0 then M.evaluate(run, spec, run.eval) end
    return
  end
  gen.manual_seed(run.seed)
  local loader = gen.data.DataLoader(spec.data, { batch_size = run.batch, drop_last = true, seed = run.seed,
    transform = spec.transform, rank = ctx.rank, ranks = ctx.size })
  local per_epoch = #loader
  local total = run.steps > 0 and run.steps or (run.epochs > 0 and run.epochs or 1) * per_epoch
  if run.steps > 0 and run.epochs > 0 then total = math.min(run.steps, run.epochs * per_epoch) end
  local step = 0
  if run.resume then
    local ck = load_checkpoint(run, ck_path, spec.state, "--resume")
    dist_check_resume(ctx, run, ck, ck_path)
    step = ck.step
    if ctx.main then print(string.format("resumed from %s at step %d", ck_path, step)) end
  end
  dist_wrap(ctx, run, spec.state)
  local schedulers = lr_schedulers(run, spec, total, step)
  local function save(at)
    local s = M.state_with_step(spec.state, at)
    if ctx.dist then s.dist_world_size = ctx.size end
    gen.checkpoint.save(ck_path, s)
  end
  local log = ctx.main and gen.ui.CSVLogger(run.out .. "/log.csv", { "step", table.unpack(spec.losses) }, { append = run.resume })
  local progress = ctx.main and gen.ui.progress(total, { label = run.name })
  local t0 = gen.time()
  while step < total do
    local epoch = step // per_epoch + 1
    for x, y in loader:iter { epoch = epoch, start = step % per_epoch + 1 } do
      step = step + 1
      if ctx.dist then gen.manual_seed(((run.seed * 1000003 + step) * 4099 + ctx.rank) % 0x7fffffffffff) end
      local values = spec.step(x, y, step)
      for _, s in ipairs(schedulers) do s:step() end
      if step % run.log_every == 0 or step == total then
        values = dist_mean(ctx, spec.losses, values)
        local row = { step = step }
        for _, l in ipairs(spec.losses) do row[l] = values[l] end
        if log then log:log(row) end
      end
      if progress then progress:update(step, values) end
      if step % run.checkpoint_every == 0 and ctx.main then save(step) end
      if step >= total then break end
    end
  end
  for _, m in ipairs(ctx.models or {}) do m:close() end
  if not ctx.main then return end
  progress:close()
  log:close()
  save(step)
  plot_losses(run, spec.losses)
  gen.manual_seed(run.seed + 1)
  local nrow = spec.nrow or 8 -- a square grid: with nrow = 10 and classes cycling, each column is one class
  M.write_samples(run.out, gen.no_grad(spec.sample, nrow * nrow, run), nrow)
  local seconds = gen.time() - t0 -- training, checkpoint and grid; not the evaluation in spec.after
  if spec.after then spec.after() end
  print(string.format("trained %d steps in %.1f s; wrote %s/checkpoint.safetensors, samples.png, log.csv, losses.png",
    step, seconds, run.out))
  if run.eval > 0 then M.evaluate(run, spec, run.eval) end
end

--- Writes rows of images ({{N, C, H, W}, ...}, values in [0, 1]) as one PNG: each group of up to
-- nrow (8) images becomes a band of #rows rows, one row per entry (original | corrupted or
-- masked | reconstruction, as in figure 2 of the MAE paper), with a blank row between bands.
function M.write_reconstructions(path, rows, nrow)
  nrow = nrow or 8
  local n = rows[1]:size(1)
  local tiles = {}
  for first = 1, n, nrow do
    local count = math.min(nrow, n - first + 1)
    for _, r in ipairs(rows) do
      local band = r:narrow(1, first, count):clamp(0, 1)
      if count < nrow then band = gen.cat({ band, gen.zeros(nrow - count, table.unpack(band.shape, 2)) }, 1) end
      tiles[#tiles + 1] = band
    end
  end
  gen.image.save(path, gen.image.grid(gen.cat(tiles, 1), { nrow = nrow, range = { 0, 1 } }))
end

--- With --probe: the linear-probe and kNN (k = 20) test accuracies of features(x) (x in [0, 1],
-- {B, 1, 28, 28}), trained on the first --probe-train training images and scored on the test
-- set (--probe-test images, all by default); printed and written to DIR/probe.txt.
function M.probe(run, features, name)
  local metrics = require "gen.metrics"
  local train, test = gen.data.fashion_mnist { split = "train" }, gen.data.fashion_mnist { split = "test" }
  local ntr = math.min(run.probe_train or 10000, train.images:size(1))
  local nte = math.min((run.probe_test or 0) > 0 and run.probe_test or test.images:size(1), test.images:size(1))
  local t0 = gen.time()
  local ftr = metrics.extract_features(features, train.images:narrow(1, 1, ntr), { label = "train features" })
  local fte = metrics.extract_features(features, test.images:narrow(1, 1, nte), { label = "test features" })
  local ytr, yte = train.labels:narrow(1, 1, ntr), test.labels:narrow(1, 1, nte)
  local lin = metrics.linear_probe(ftr, ytr, fte, yte)
  local knn = metrics.knn(ftr, ytr, fte, yte, { k = 20 })
  local line = string.format("%s: linear probe %.2f%%  kNN (k = 20, cosine) %.2f%%  (%d-d features; trained on %d, tested on %d images; %.1f s)",
    name or run.name, 100 * lin, 100 * knn, ftr:size(2), ntr, nte, gen.time() - t0)
  print(line)
  local f = assert(io.open(run.out .. "/probe.txt", "w"))
  f:write(line, "\n")
  f:close()
  return lin, knn
end

--- The labels of n samples of a class-conditional model: all --class K, or, without --class, the
-- classes 1..classes cycling (so each column of a grid with nrow = classes is one class). With a
-- draw (see M.draw), the labels of its batch: the cycle continues from image draw.first.
function M.class_labels(run, n, classes, draw)
  if run.class > classes then M.fail(run.script, string.format("option --class must be in 1..%d, got %d", classes, run.class)) end
  local labels, first = {}, draw and draw.first or 1
  for i = 1, n do labels[i] = run.class > 0 and run.class or (first + i - 2) % classes + 1 end
  return gen.tensor(labels, "int64")
end

-- How each stage-1 kind is rebuilt from the config its checkpoint records.
local stage1_builders = {
  vqvae = function(config) return require("gen.models.vqvae").VQVAE(config) end,
}

--- The record a stage-1 script keeps in its checkpoint state (as `stage1 = ...`): its kind and the
-- model's constructor options, so experiment.stage1 can check and rebuild it. Loading it back
-- (--resume, --sample) checks the kind.
function M.stage1_record(kind, config)
  return {
    state_dict = function() return { kind = kind, config = config } end,
    load_state_dict = function(_, s)
      if type(s) ~= "table" or s.kind ~= kind then
        error(string.format("expected a %s checkpoint, found %s", kind, type(s) == "table" and tostring(s.kind) or "none"), 0)
      end
    end,
  }
end

--- experiment.stage1(run, kind) -> model, config: the stage-1 model of --stage1 DIR
-- (DIR/checkpoint.safetensors), rebuilt from its recorded config, in eval mode, with frozen
-- parameters. A missing --stage1, a missing file or a checkpoint of another kind ends the script
-- with a one-line usage error naming the expected kind and what was found.
function M.stage1(run, kind)
  local build = stage1_builders[kind]
  if not build then error("gen.experiment.stage1: unknown stage-1 kind '" .. tostring(kind) .. "'", 2) end
  local fail = function(msg) M.fail(run.script, "--stage1: " .. msg) end
  if run.stage1 == nil or run.stage1 == "" then
    M.fail(run.script, string.format("option --stage1 DIR is required (the --out directory of a trained %s run)", kind))
  end
  local path = run.stage1 .. "/checkpoint.safetensors"
  if not file_exists(path) then fail(string.format("expected a %s checkpoint, found no file at %s", kind, path)) end
  local ok, state = pcall(gen.checkpoint.load, path, nil, { rng = false })
  if not ok then fail(string.format("expected a %s checkpoint, %s is not readable (%s)", kind, path, tostring(state):gsub("^[^:]*:%d+: ", ""))) end
  local record = type(state.stage1) == "table" and state.stage1 or nil
  if not record or record.kind ~= kind then
    local found
    if record then
      found = "a " .. tostring(record.kind) .. " checkpoint"
    else
      local names = {}
      for k in pairs(state) do if k ~= "rng" and k ~= "step" then names[#names + 1] = k end end
      table.sort(names)
      found = "a checkpoint with no stage-1 record (it holds " .. table.concat(names, ", ") .. ")"
    end
    fail(string.format("expected a %s checkpoint, %s is %s", kind, path, found))
  end
  local built, model = pcall(build, record.config or {})
  if not built then fail(string.format("cannot rebuild the %s of %s (%s)", kind, path, tostring(model))) end
  local loaded, err = pcall(model.load_state_dict, model, state.model or {})
  if not loaded then fail(string.format("%s does not hold the %s its record describes (%s)", path, kind, tostring(err):gsub("^[^:]*:%d+: ", ""))) end
  model:eval()
  for _, p in ipairs(model:parameters()) do p:requires_grad_(false) end
  rawset(run, "_stage1_loaded", path)
  rawset(run, "_stage1_identity", { dir = run.stage1, kind = kind, fingerprint = M.fingerprint(model) })
  return model, record.config
end

--- fingerprint(model) -> 16 hex digits that tell one trained model from another: FNV-1a (64 bit)
-- over the exact float64 images of up to 4096 evenly spaced values of every tensor of its
-- state dict, in name order. Values, not sums of them, so that no summation order (thread count,
-- ISA) can change it; a sample, so that it costs milliseconds for any model size.
function M.fingerprint(model)
  local sd = model:state_dict()
  local names = {}
  for name in pairs(sd) do names[#names + 1] = name end
  table.sort(names)
  local h = -3750763034362895579 -- the FNV-1a 64-bit offset basis, as a signed integer
  local function mix(bytes)
    for i = 1, #bytes do h = (h ~ bytes:byte(i)) * 1099511628211 end
  end
  for _, name in ipairs(names) do
    local flat = sd[name]:contiguous():view(-1)
    local n = flat:numel()
    local picks = math.min(n, 4096)
    mix(name .. "\0" .. n .. "\0")
    if picks > 0 then
      local index = {}
      for i = 1, picks do index[i] = 1 + (i - 1) * n // picks end
      for _, v in ipairs(flat:double():index_select(1, gen.tensor(index, "int64")):totable()) do mix(string.pack("<d", v)) end
    end
  end
  return string.format("%016x", h)
end


--- settings(run, keys [, opts]): an object for a checkpoint's state that saves run[k] for the keys
-- and, on load (--resume, --sample), fails with a message naming the flag to pass when the run
-- differs. opts.optional: checkpoints written without it load as they are; opts.applies(k): whether
-- a key counts for this run.
function M.settings(run, keys, opts)
  opts = opts or {}
  local s = { optional_state = opts.optional or false }
  function s.state_dict()
    local t = {}
    for _, k in ipairs(keys) do t[k] = run[k] end
    return t
  end
  function s.load_state_dict(_, saved)
    for _, k in ipairs(keys) do
      if saved[k] ~= nil and saved[k] ~= run[k] and (not opts.applies or opts.applies(k)) then
        local flag = "--" .. k:gsub("_", "-")
        local fix = type(saved[k]) ~= "boolean" and (flag .. " " .. tostring(saved[k])) or saved[k] and ("add " .. flag) or ("drop " .. flag)
        error(string.format("it was trained with %s %s, not %s: %s", flag, tostring(saved[k]), tostring(run[k]), fix), 0)
      end
    end
  end
  return s
end

function M.state_with_step(state, step)
  local s = { step = step }
  for k, v in pairs(state) do s[k] = v end
  return s
end

return M
