#!/usr/bin/env bash
# make bench: gen against PyTorch (Debian's python3-torch) on identical workloads, alternating
# in one run, at 1 and 2 threads; writes the table to stdout and bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq python3-torch >/dev/null; else
    echo "bench: PyTorch is missing; run: sudo apt-get install -y python3-torch"; exit 1; fi
fi
mkdir -p build/bench
cc -O2 -o build/bench/sgemm_raw bench/sgemm_raw.c -I/usr/include/x86_64-linux-gnu/openblas-openmp \
  -L/usr/lib/x86_64-linux-gnu/openblas-openmp -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp -lopenblas
results=build/bench/results.txt
: > "$results"
for threads in 1 2; do
  for w in add4 add4_grad matmul64 sgemm256 sgemm512 sgemm1024 sgemm2048 conv_s2 conv_s1 convT attn256 attn784; do
    echo "gen   $(lua5.4 bench/ops.lua $threads $w)" | tee -a "$results"
    echo "torch $(OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads /usr/bin/python3 bench/ops.py $threads $w)" | tee -a "$results"
    case $w in sgemm*) echo "raw   $(build/bench/sgemm_raw $threads ${w#sgemm})" | tee -a "$results";; esac
  done
done
lua5.4 bench/report.lua "$results" bench/README.md
