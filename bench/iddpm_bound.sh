#!/bin/sh
# Improved DDPM's variational bound on the Fashion-MNIST test set, in bits/dim:
#   sh bench/iddpm_bound.sh [DIR [STEPS [N [K [VARIANCES]]]]]
# defaults: runs/iddpm 3000 200 0 "learned beta"
# Trains examples/diffusion/ddpm.lua with learned variances, the cosine betas and the hybrid loss
# (lambda 0.001) for STEPS steps at one thread, seed 0 (resuming DIR's run if it has fewer steps,
# nothing if it has them all), then bounds the first N test images with the EMA weights, once per
# reverse variance in VARIANCES (learned: the network's; beta or posterior: fixed, the same
# network's mean), over all T = 1000 terms (K = 0) or K random ones (an unbiased estimate). Each
# bound runs on a copy of the checkpoint and appends its line (total, its parts, the time) and
# the host's load to DIR/bound.txt. Two invocations with different VARIANCES may run side by side
# once the training is done.
set -e
dir=${1:-runs/iddpm}; steps=${2:-3000}; n=${3:-200}; k=${4:-0}; variances=${5:-learned beta}
model="--learn-variance --betas cosine --threads 1 --seed 0"
last=$(tail -n 1 "$dir/log.csv" 2>/dev/null | cut -d, -f1)
if [ "$last" != "$steps" ]; then
  resume=""; [ -f "$dir/checkpoint.safetensors" ] && resume=--resume
  # shellcheck disable=SC2086
  bin/gen examples/diffusion/ddpm.lua $model --steps "$steps" --out "$dir" $resume | grep '^trained' >> "$dir/bound.txt"
  echo "  loss at the end: $(tail -n 1 "$dir/log.csv"); $(uptime)" >> "$dir/bound.txt"
fi
tmp=""
trap 'rm -rf "$tmp"' EXIT
for v in $variances; do
  tmp=$(mktemp -d)
  cp "$dir/checkpoint.safetensors" "$tmp/"
  # shellcheck disable=SC2086
  line=$(bin/gen examples/diffusion/ddpm.lua $model --out "$tmp" --sample 1 --bound "$n" --bound-steps "$k" --bound-variance "$v" \
    | grep 'variational bound')
  echo "$line; $(uptime)" >> "$dir/bound.txt"
  rm -rf "$tmp"
done
