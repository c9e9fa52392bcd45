-- Linear-probe and kNN baselines for the autoencoders' table: raw pixels, and the posterior mean
-- of a trained VAE (examples/autoencoder/vae.lua's checkpoint).
--   bin/gen tools/probe_baselines.lua [--vae runs/vae] [--vae-model mlp|conv] [--probe-train 10000]
-- Writes DIR/probe.txt for each (runs/pixels and the VAE's directory).
local gen = require "gen"
local experiment = require "gen.experiment"
local vae = require "gen.models.vae"

local run = experiment.parse("pixels", arg, { vae = "runs/vae", vae_model = "mlp", latent = 20, probe = true,
  probe_train = 10000, probe_test = 0 })
os.execute('mkdir -p "' .. run.out .. '"')
experiment.probe(run, function(x) return x:flatten(2) end, "raw pixels")
local f = io.open(run.vae .. "/checkpoint.safetensors", "rb")
if f then
  f:close()
  local model = run.vae_model == "conv" and vae.Conv { latent = run.latent } or vae.MLP { latent = run.latent }
  gen.checkpoint.load(run.vae .. "/checkpoint.safetensors", { model = model })
  experiment.probe({ out = run.vae, probe_train = run.probe_train, probe_test = run.probe_test, name = "vae" },
    function(x) return (model:encode(x)) end, "VAE posterior mean")
else
  print("no VAE checkpoint in " .. run.vae .. " (train examples/autoencoder/vae.lua first)")
end
