#!/bin/sh
# FID against network evaluations for one trained diffusion checkpoint, across samplers:
#   sh bench/diffusion_nfe.sh RUN_DIR N "SAMPLER:STEPS ..." [extra options for every run]
# Each run copies nothing: it samples RUN_DIR's checkpoint (EMA weights) with --eval N at one
# thread and appends "sampler steps NFE extra | the metrics line" to RUN_DIR/nfe.txt.
# Heun's NFE is 2 steps - 1, every other sampler's its steps.
set -e
dir=$1; n=$2; cases=$3; shift 3
for c in $cases; do
  s=${c%%:*}; k=${c##*:}
  nfe=$k; [ "$s" = heun ] && nfe=$((2 * k - 1))
  tmp=$(mktemp -d)
  cp "$dir/checkpoint.safetensors" "$tmp/"
  line=$(bin/gen examples/diffusion/ddpm.lua --out "$tmp" --sample 1 --eval "$n" --threads 1 --sampler "$s" --sample-steps "$k" "$@" \
    | grep 'samples (')
  echo "$s $k NFE=$nfe $* | $line" >> "$dir/nfe.txt"
  rm -rf "$tmp"
done
