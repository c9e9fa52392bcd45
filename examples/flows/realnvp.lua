-- RealNVP (Dinh et al., 2017) on Fashion-MNIST padded to 32x32, by exact maximum likelihood.
--   bin/gen examples/flows/realnvp.lua --epochs 10 [--levels 3 --blocks 3 --hidden 64]
--   bin/gen examples/flows/realnvp.lua --sample 10000 --temperature 0.7
-- Reports the test set's bits/dim (over the 784 pixels; see gen.flows.bits_per_dim) and writes a
-- temperature sweep, DIR/temperatures.png (rows at 0.5, 0.7, 0.85, 1.0); see gen.flows.cli.
local gen = require "gen"
local realnvp = require "gen.models.realnvp"
local experiment = require "gen.experiment"
local fcli = require "gen.flows.cli"

local run = experiment.parse("realnvp", arg, fcli.defaults { levels = 3, blocks = 3, hidden = 64 })
gen.manual_seed(run.seed)
fcli.train(run, realnvp.RealNVP { levels = run.levels, blocks = run.blocks, hidden = run.hidden })
