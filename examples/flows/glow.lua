-- Glow (Kingma & Dhariwal, 2018) on Fashion-MNIST padded to 32x32, by exact maximum likelihood.
--   bin/gen examples/flows/glow.lua --epochs 10 [--levels 3 --depth 8 --hidden 128] [--additive]
--   bin/gen examples/flows/glow.lua --sample 10000 --temperature 0.7
-- Reports the test set's bits/dim (over the 784 pixels; see gen.flows.bits_per_dim) and writes a
-- temperature sweep, DIR/temperatures.png (rows at 0.5, 0.7, 0.85, 1.0); see gen.flows.cli.
local gen = require "gen"
local glow = require "gen.models.glow"
local experiment = require "gen.experiment"
local fcli = require "gen.flows.cli"

local run = experiment.parse("glow", arg, fcli.defaults { levels = 3, depth = 8, hidden = 128, additive = false, plain_conv = false })
gen.manual_seed(run.seed)
fcli.train(run, glow.Glow { levels = run.levels, depth = run.depth, hidden = run.hidden, lu = not run.plain_conv,
  coupling = run.additive and "additive" or "affine" })
