# PyTorch twin of bench/ops.lua: same workloads, shapes and timing method.
# Usage: OPENBLAS_NUM_THREADS=N OMP_NUM_THREADS=N python3 bench/ops.py N WORKLOAD
import os
import statistics
import sys
import time

import torch

threads, name = int(sys.argv[1]), sys.argv[2]
quick = os.environ.get("GEN_BENCH_QUICK") == "1"
torch.set_num_threads(threads)


def bench(f, calls, samples):
    if quick:  # development only: a tenth of the calls, 3 samples
        calls, samples = max(1, calls // 10), 3
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


def fwd_bwd(make):
    run = make()

    def once():
        out = run()
        out.backward(torch.ones_like(out))

    return bench(once, 1, 10)


def conv(xs, ws, **kw):
    def make():
        x, w = torch.randn(*xs, requires_grad=True), (torch.randn(*ws) * 0.05).requires_grad_()
        b = torch.zeros(ws[0], requires_grad=True)
        return lambda: torch.nn.functional.conv2d(x, w, b, **kw)
    return lambda: fwd_bwd(make)


def conv_t(xs, ws, **kw):
    def make():
        x, w = torch.randn(*xs, requires_grad=True), (torch.randn(*ws) * 0.05).requires_grad_()
        b = torch.zeros(ws[1], requires_grad=True)
        return lambda: torch.nn.functional.conv_transpose2d(x, w, b, **kw)
    return lambda: fwd_bwd(make)


def linear():
    x, w = torch.randn(128, 784, requires_grad=True), (torch.randn(400, 784) * 0.05).requires_grad_()
    b = torch.zeros(400, requires_grad=True)
    g = torch.ones(128, 400)

    def once():
        x.grad = w.grad = b.grad = None
        torch.nn.functional.linear(x, w, b).backward(g)

    return bench(once, 20, 10)


def attention(b, h, t, d):
    # PyTorch 1.13 has no fused attention: the explicit softmax(QK^T / sqrt(d)) V
    def make():
        q, k, v = (torch.randn(b, h, t, d, requires_grad=True) for _ in range(3))
        return lambda: torch.softmax(q @ k.transpose(-1, -2) / d ** 0.5, -1) @ v
    return lambda: fwd_bwd(make)


workloads = {"add4": add4, "add4_grad": add4_grad, "matmul64": matmul64}
for n in (256, 512, 1024, 2048):
    workloads["sgemm%d" % n] = (lambda n: lambda: sgemm(n))(n)
workloads["conv_s2"] = conv((64, 64, 14, 14), (128, 64, 4, 4), stride=2, padding=1)
workloads["conv_s1"] = conv((32, 64, 28, 28), (64, 64, 3, 3), padding=1)
workloads["convT"] = conv_t((64, 128, 7, 7), (128, 64, 4, 4), stride=2, padding=1)
workloads["linear"] = linear
workloads["attn256"] = attention(8, 4, 256, 32)
workloads["attn784"] = attention(4, 4, 784, 64)
seconds = workloads[name]()
peak = [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print("%s %d %.9g %s" % (name, threads, seconds, peak))
