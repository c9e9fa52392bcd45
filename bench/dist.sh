#!/usr/bin/env bash
# Data-parallel step times on one machine: np 1 x 2 threads against np 2 x 1 thread, alternating
# over ROUNDS rounds (default 3) so drift in a shared machine's load spreads over both; prints the
# machine, its load before and after, and one line per run (bench/dist_step.lua).
#   bash bench/dist.sh [ROUNDS]
#   bash bench/dist.sh ROUNDS progress   # np 2 with 0.5 MB buckets, the progress thread on and off
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
if [ "${2:-}" = progress ]; then
  mpi="mpirun --oversubscribe"; [ "$(id -u)" = 0 ] && mpi="$mpi --allow-run-as-root"
  echo "load before: $(uptime | sed 's/.*load average: //')"
  for r in $(seq "$rounds"); do
    for p in 1 0; do
      for w in "dcgan 64 20" "unet 32 10"; do
        set -- $w
        echo -n "GEN_DIST_PROGRESS=$p "
        GEN_DIST_PROGRESS=$p OMP_NUM_THREADS=1 $mpi -x GEN_DIST_PROGRESS -np 2 bin/gen bench/dist_step.lua "$1" "$2" "$3" 1 float 0.5
      done
    done
  done
  echo "load after: $(uptime | sed 's/.*load average: //')"
  exit 0
fi
mpi="mpirun --oversubscribe"; [ "$(id -u)" = 0 ] && mpi="$mpi --allow-run-as-root"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, flags: $(grep -m1 -o 'avx512f\|avx2' /proc/cpuinfo | head -1)..."
echo "load before: $(uptime | sed 's/.*load average: //')"
for r in $(seq "$rounds"); do
  for w in "dcgan 64 20" "unet 32 10"; do
    set -- $w
    OMP_NUM_THREADS=2 $mpi -np 1 bin/gen bench/dist_step.lua "$1" "$2" "$3" 2
    OMP_NUM_THREADS=1 $mpi -np 2 bin/gen bench/dist_step.lua "$1" "$2" "$3" 1
    OMP_NUM_THREADS=1 $mpi -np 2 bin/gen bench/dist_step.lua "$1" "$2" "$3" 1 deterministic
    OMP_NUM_THREADS=1 $mpi -np 2 bin/gen bench/dist_step.lua "$1" "$2" "$3" 1 float 0.5
  done
done
echo "load after: $(uptime | sed 's/.*load average: //')"
