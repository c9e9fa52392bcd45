#!/usr/bin/env bash
# Soak: train an example for a fixed wall time and record its resident set size over time.
#
#   bash bench/soak.sh [SECONDS [EXAMPLE [ARGS...]]]
#   bash bench/soak.sh 1800 examples/gan/dcgan.lua --threads 1
#
# Writes build/soak/rss.csv (seconds since start, RSS in MB, the training step last logged) and
# prints the RSS at 1 minute, at the end and its maximum, plus the least-squares slope of RSS over
# the run's second half in MB per hour: a training loop that leaks shows a positive slope there,
# after the warm-up allocations (the block cache, the first checkpoint) have settled.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-1800}
example=${2:-examples/gan/dcgan.lua}
shift 2 2>/dev/null || shift $#
out=build/soak
rm -rf "$out" && mkdir -p "$out"

bin/gen "$example" --out "$out/run" --steps 100000000 --epochs 100000 --log-every 50 "$@" \
  >"$out/stdout.txt" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT

echo "seconds,rss_mb,step" >"$out/rss.csv"
start=$(date +%s)
while kill -0 "$pid" 2>/dev/null; do
  now=$(($(date +%s) - start))
  ((now >= seconds)) && break
  rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  step=$(tail -n 1 "$out/run/log.csv" 2>/dev/null | cut -d, -f1 || true)
  echo "$now,$(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k / 1024}'),${step:-0}" >>"$out/rss.csv"
  sleep 10
done
if ! kill -0 "$pid" 2>/dev/null; then
  echo "soak: $example stopped before $seconds s; its output:" >&2
  tail -n 20 "$out/stdout.txt" >&2
  exit 1
fi
kill "$pid"

awk -F, -v total="$seconds" 'NR > 1 {
    t[NR] = $1; r[NR] = $2; s = $3; n = NR
    if ($2 > max) max = $2
    if (!at1 && $1 >= 60) at1 = $2
  }
  END {
    for (i = 2; i <= n; i++) if (t[i] >= total / 2) { k++; sx += t[i]; sy += r[i]; sxx += t[i] * t[i]; sxy += t[i] * r[i] }
    slope = (k > 1) ? (k * sxy - sx * sy) / (k * sxx - sx * sx) * 3600 : 0
    printf "soak: %d samples over %d s, last logged step %s\n", n - 1, t[n], s
    printf "soak: RSS %.1f MB at 1 min, %.1f MB at the end, %.1f MB at most; second-half slope %+.1f MB/hour\n", at1, r[n], max, slope
  }' "$out/rss.csv"
