#!/usr/bin/env bash
# make bench: gen against PyTorch (Debian's python3-torch) on identical workloads, alternating
# in one run, at 1 and 2 threads; writes the tables to stdout and bench/README.md.
#   bash bench/run.sh                           every workload
#   bash bench/run.sh dcgan_step vae_mlp_step   only these; the other rows of the table are kept
#   GEN_BENCH_QUICK=1 bash bench/run.sh ...     3 iterations instead of 10, for development: the
#                                               results go to build/bench/quick.txt, not the README
#   GEN_BENCH_THREADS="1" (default "1 2")       the thread counts to run (the other rows are kept)
#   GEN_BENCH_ROUNDS=N (default 3)              rounds over all selected workloads; each row reports
#                                               the median round (a shared VM drifts by 20% and more
#                                               over minutes, and rounds spread both sides over them)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq python3-torch >/dev/null; else
    echo "bench: PyTorch is missing; run: sudo apt-get install -y python3-torch"; exit 1; fi
fi
mkdir -p build/bench
make -s all >/dev/null # sgemm_raw links gen's SGEMM objects
cc -O2 -fopenmp -o build/bench/sgemm_raw bench/sgemm_raw.c build/csrc/kernels/gemm_sgemm.o build/csrc/kernels/isa.o \
  -I/usr/include/x86_64-linux-gnu/openblas-openmp \
  -L/usr/lib/x86_64-linux-gnu/openblas-openmp -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp -lopenblas
cc -O2 -fopenmp -o build/bench/peak bench/peak.c
# the machine: CPU model, the ISA level gen runs at, each ISA's FMA peak per core, the load
isa=$(lua5.4 -e 'package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
  package.cpath = (os.getenv("GEN_BUILD") or "build") .. "/?.so;" .. package.cpath
  io.write(require("gen").config().isa)')
{ build/bench/peak 1; echo "isa $isa"; echo "load $(cut -d' ' -f1-3 /proc/loadavg)"; } >build/bench/machine.txt
sed 's/^/bench: /' build/bench/machine.txt

ops=(add4 add4_grad matmul64 sgemm256 sgemm512 sgemm1024 sgemm2048 linear conv_s2 conv_s1 convT attn256 attn784)
e2e=(dcgan_step dcgan_d_step dcgan_r1_step vae_mlp_step mae_step glow_step gpt_prior_step gpt_prior_sample gpt_prior_sample_nocache
     pixelcnn_step stylegan_step stylegan_r1_step unet_ddpm_step unet_ddim_sample edm_heun_sample edm_heun_sample_b1 flow_sample
     flow_sample_b1 edm_dpmpp_2m_sample edm_euler_ancestral_sample vp_ddpm_sample ve_euler_maruyama_sample ve_pc_sample example_dcgan example_vae example_ddpm)
all=("${ops[@]}" "${e2e[@]}")
selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=("${all[@]}")
for w in "${selected[@]}"; do
  case " ${all[*]} " in *" $w "*) ;; *) echo "bench: unknown workload '$w' (known: ${all[*]})"; exit 1;; esac
done

# bench/results.txt is committed: a partial run replaces its own workloads' lines and the tables are
# regenerated from all of them, so rows measured in other checkouts or on other days stay
results=bench/results.txt readme=bench/README.md
if [ "${GEN_BENCH_QUICK:-}" = 1 ]; then results=build/bench/quick.txt readme=-; fi
touch "$results"
when=$(date -u +%Y-%m-%dT%H:%M)
rounds=${GEN_BENCH_ROUNDS:-3}
[ "${GEN_BENCH_QUICK:-}" = 1 ] && rounds=1
record() { # record WHO COMMAND...: runs one workload in a fresh process and keeps its line
  local who=$1 line
  shift
  line=$("$@")
  echo "$who $line when=$when round=$round" | tee -a "$results"
}
# Debian's torch.set_num_threads does not reach its OpenBLAS: pin both pools from the environment
torch_py() { OPENBLAS_NUM_THREADS=$2 OMP_NUM_THREADS=$2 /usr/bin/python3 "$1" "$2" "$3"; }

for round in $(seq "$rounds"); do
  for threads in ${GEN_BENCH_THREADS:-1 2}; do
    for w in "${selected[@]}"; do
      case " ${ops[*]} " in *" $w "*) script=bench/ops;; *) script=bench/e2e;; esac
      record gen lua5.4 "$script.lua" "$threads" "$w"
      case $w in example_*|*_nocache) ;; *) record torch torch_py "$script.py" "$threads" "$w";; esac
      case $w in sgemm*|linear) record raw build/bench/sgemm_raw "$threads" "${w#sgemm}";; esac
      if [ "$isa" = avx512 ]; then
        case $w in sgemm*|linear) record rawgen build/bench/sgemm_raw "$threads" "${w#sgemm}" gen;; esac
      fi
    done
  done
done
GEN_BENCH_MACHINE=build/bench/machine.txt lua5.4 bench/report.lua "$results" "$readme" "${all[@]}"
