#!/usr/bin/env bash
# The runs behind the README's quality table: gen's examples with the table's settings, then their
# PyTorch twins (bench/twins_quality.py) at the same number of steps, all at 2 threads on the same
# Fashion-MNIST files and all scored by gen's own tools/metrics.lua against the test set. About
# two and a half hours on 2 cores; every run logs to runs/quality/NAME.log and ends with its metrics line.
#   bash bench/quality.sh               everything
#   bash bench/quality.sh flow ddpm     only these (gen: dcgan cdcgan vae flow ddpm ddpm_eval; twins: torch_dcgan torch_vae torch_flow)
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/quality
mkdir -p "$out"
torch_env=(env OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2)
selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=(dcgan cdcgan vae flow ddpm ddpm_eval torch_dcgan torch_vae torch_flow)

run() { # run NAME COMMAND...: the command's output goes to runs/quality/NAME.log and its last lines to stdout
  local name=$1
  shift
  echo "== $name: $*"
  "$@" > "$out/$name.log" 2>&1
  tail -n 3 "$out/$name.log"
}

for w in "${selected[@]}"; do
  case $w in
  dcgan) run dcgan bin/gen examples/gan/dcgan.lua --epochs 5 --threads 2 --out "$out/dcgan" --eval 10000 ;;
  cdcgan) run cdcgan bin/gen examples/gan/cgan.lua --model dcgan --epochs 5 --threads 2 --out "$out/cdcgan" --eval 10000 ;;
  vae) run vae bin/gen examples/autoencoder/vae.lua --epochs 20 --threads 2 --out "$out/vae" --eval 10000 ;;
  flow)
    run flow bin/gen examples/diffusion/rectified_flow.lua --steps 2000 --threads 2 --out "$out/flow" --sample-steps 25 --eval 10000
    run flow_1000 bin/gen examples/diffusion/rectified_flow.lua --threads 2 --out "$out/flow" --sample-steps 25 --sample 100 --eval 1000 ;;
  ddpm) run ddpm bin/gen examples/diffusion/ddpm.lua --steps 8000 --threads 2 --out "$out/ddpm" ;;
  ddpm_eval) # scores the checkpoint that 'ddpm' trained: DDIM-50 at N=10000, then DDIM-50 vs 1000-step ancestral at N=500
    run ddpm_ddim bin/gen examples/diffusion/ddpm.lua --threads 2 --out "$out/ddpm" --sample 64 --eval 10000
    run ddpm_ddim_500 bin/gen examples/diffusion/ddpm.lua --threads 2 --out "$out/ddpm" --sample 64 --eval 500
    run ddpm_ddim_eta1_500 bin/gen examples/diffusion/ddpm.lua --threads 2 --out "$out/ddpm" --sample 64 --eta 1 --eval 500
    run ddpm_ddim100_500 bin/gen examples/diffusion/ddpm.lua --threads 2 --out "$out/ddpm" --sample 64 --sample-steps 100 --eval 500
    run ddpm_ancestral_500 bin/gen examples/diffusion/ddpm.lua --threads 2 --out "$out/ddpm" --sample 64 --sampler ddpm --eval 500 ;;
  torch_dcgan)
    run torch_dcgan "${torch_env[@]}" /usr/bin/python3 bench/twins_quality.py dcgan 4685 10000 "$out/torch_dcgan.idx"
    run torch_dcgan_metrics bin/gen tools/metrics.lua "$out/torch_dcgan.idx" ;;
  torch_vae)
    run torch_vae "${torch_env[@]}" /usr/bin/python3 bench/twins_quality.py vae 9360 10000 "$out/torch_vae.idx"
    run torch_vae_metrics bin/gen tools/metrics.lua "$out/torch_vae.idx" ;;
  torch_flow)
    run torch_flow "${torch_env[@]}" /usr/bin/python3 bench/twins_quality.py flow 2000 1000 "$out/torch_flow.idx"
    run torch_flow_metrics bin/gen tools/metrics.lua "$out/torch_flow.idx" --cycle 1 ;;
  *) echo "quality.sh: unknown run '$w'"; exit 1 ;;
  esac
done
