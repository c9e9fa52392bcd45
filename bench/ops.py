# PyTorch twin of bench/ops.lua: same workloads, shapes and timing method.
# Usage: OPENBLAS_NUM_THREADS=N OMP_NUM_THREADS=N python3 bench/ops.py N WORKLOAD
import statistics
import sys
import time

import torch

threads, name = int(sys.argv[1]), sys.argv[2]
torch.set_num_threads(threads)


def bench(f, calls, samples):
    times = []
    for s in range(samples + 1):
        t0 = time.perf_counter()
        for _ in range(calls):
            f()
        if s > 0:
            times.append((time.perf_counter() - t0) / calls)
    return statistics.median_low(times)


def add4():
    a, b = torch.ones(4), torch.ones(4)
    return bench(lambda: a + b, 20000, 15)


def add4_grad():
    a, b = torch.ones(4, requires_grad=True), torch.ones(4)
    return bench(lambda: a + b, 20000, 15)


def matmul64():
    a, b = torch.randn(64, 64), torch.randn(64, 64)
    return bench(lambda: torch.matmul(a, b), 2000, 15)


def sgemm(n):
    a, b = torch.randn(n, n), torch.randn(n, n)
    return bench(lambda: torch.matmul(a, b), max(1, int(2e9 / (2 * n ** 3))), 10)


workloads = {"add4": add4, "add4_grad": add4_grad, "matmul64": matmul64}
for n in (256, 512, 1024, 2048):
    workloads["sgemm%d" % n] = (lambda n: lambda: sgemm(n))(n)
seconds = workloads[name]()
peak = [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print("%s %d %.9g %s" % (name, threads, seconds, peak))
