-- The deterministic training run the gen.dist specs compare across process counts: an MLP
-- classifier (no noise; with opts.batch_norm = "sync", a batch norm synchronized over the ranks)
-- trained with SGD + momentum for `steps` steps on a fixed
-- data set, each rank taking its shard of every global batch of `global_batch`. Returns the
-- trained parameters as one flat float32 tensor.
local gen = require "gen"

return function(opts)
  local ranks, rank = opts.ranks or 1, opts.rank or 0
  local g = gen.Generator(11)
  local n = 96
  local images = gen.randint(0, 255, { n, 1, 4, 4 }, { generator = g }):byte()
  local labels = gen.randint(1, 4, { n }, { generator = g })
  local data = gen.data.Dataset { images = images, labels = labels }
  local loader = gen.data.DataLoader(data, { batch_size = opts.global_batch // ranks, drop_last = true, seed = 5,
    rank = rank, ranks = ranks })
  gen.manual_seed(3)
  local net = opts.batch_norm
    and gen.nn.Sequential(gen.nn.Flatten(), gen.nn.Linear(16, 32), gen.nn.BatchNorm1d(32), gen.nn.Tanh(), gen.nn.Linear(32, 4))
    or gen.nn.Sequential(gen.nn.Flatten(), gen.nn.Linear(16, 32), gen.nn.Tanh(), gen.nn.Linear(32, 32), gen.nn.Tanh(),
      gen.nn.Linear(32, 4))
  local model = opts.dist and opts.dist.DataParallel(net, { deterministic = opts.deterministic, bucket_mb = opts.bucket_mb,
    batch_norm = opts.batch_norm }) or net
  local opt = gen.optim.SGD(net, { lr = 0.2, momentum = 0.9 })
  local step, epoch = 0, 0
  while step < opts.steps do
    epoch = epoch + 1
    for x, y in loader:iter { epoch = epoch } do
      opt:zero_grad()
      gen.cross_entropy(model(x), y):backward()
      opt:step()
      step = step + 1
      if step == opts.steps then break end
    end
  end
  if model ~= net then model:close() end
  local flat = {}
  for _, p in ipairs(net:parameters()) do flat[#flat + 1] = p:detach():reshape(-1) end
  for _, b in ipairs(net:buffers()) do
    if b.dtype == "float32" then flat[#flat + 1] = b:reshape(-1) end -- running statistics
  end
  return gen.cat(flat)
end
