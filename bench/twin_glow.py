# PyTorch twin of gen's Glow (gen.models.glow with levels 3, depth 4, hidden 64 on 1x32x32, the
# README's measured run): the same layers (ActNorm with data-dependent initialization, the
# LU-parameterized 1x1 convolution, affine coupling with a tanh-bounded scale, squeeze, split with
# a learned conditional prior, learned top prior), the same parameter count, the same objective
# (bits/dim of uniformly dequantized 8-bit images padded from 28 to 32, counted over 784 pixels,
# gen.flows.bits_per_dim) and the same step (Adam 1e-3, gradient norm clipped at 50).
# bench/e2e.py imports it for the glow_step workload; run alone it times the step:
#   OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 bench/twin_glow.py [THREADS]
# or trains it as `bin/gen examples/flows/glow.lua --levels 3 --depth 4 --hidden 64 --steps 2000
# --threads 1 --seed 0` does (gen.flows.cli: batch 64 of Fashion-MNIST in reshuffled epochs without
# the last partial batch, Adam 1e-3 with gen.optim.schedules.linear_warmup(200), gradient norm
# clipped at 50) and prints the mean test bits/dim over the 10000 test images (written to
# DIR/bpd.txt; DIR/log.csv has the training bits/dim and gradient norm every 100 steps, DIR/model.pt
# the trained state dict; --train-eval N also scores the first N training images, --eval-every K
# the first 1000 test images every K steps; DIR/gen_weights.safetensors the same weights for gen,
# which `bin/gen bench/twin_glow_check.lua DIR` scores with gen's own code):
#   nice -n 19 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 bench/twin_glow.py \
#     --train 2000 --out runs/twin_glow [--seed 0 --threads 1]
# --train 0 evaluates a freshly initialized model (its ActNorms initialized by the first test batch).
import argparse
import gzip
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from twin_models import write_safetensors

CONFIG = dict(channels=1, resolution=32, levels=3, depth=4, hidden=64)
BATCH, PIXELS = 64, 28 * 28
LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(z, mean, logsd):
    e = (z - mean) * torch.exp(-logsd)
    return ((e * e + LOG_2PI) * -0.5 - logsd).flatten(1).sum(1)


def squeeze(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, c * 4, h // 2, w // 2)


def unsqueeze(z):
    n, c4, h, w = z.shape
    c = c4 // 4
    return z.reshape(n, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c, h * 2, w * 2)


class ActNorm(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.register_buffer("initialized", torch.zeros(1))

    def forward(self, x):
        if self.initialized.item() == 0:
            with torch.no_grad():
                flat = x.transpose(0, 1).reshape(x.shape[1], -1)
                mean = flat.mean(1, keepdim=True)
                var = ((flat - mean) ** 2).mean(1)
                self.bias.copy_(-mean.view(1, -1, 1, 1))
                self.logs.copy_(-torch.log(var.sqrt() + 1e-6).view(1, -1, 1, 1))
                self.initialized.fill_(1)
        return (x + self.bias) * torch.exp(self.logs), self.logs.sum() * x.shape[2] * x.shape[3]


class InvConv1x1LU(nn.Module):
    def __init__(self, c):
        super().__init__()
        w0 = torch.linalg.qr(torch.randn(c, c))[0]
        P, L, U = torch.linalg.lu(w0)
        s = torch.diagonal(U)
        mask = torch.tril(torch.ones(c, c), -1)
        self.register_buffer("p", P)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", mask)
        self.register_buffer("eye", torch.eye(c))
        self.lower = nn.Parameter(L * mask)
        self.upper = nn.Parameter(U * mask.t())
        self.log_s = nn.Parameter(s.abs().log())

    def forward(self, x):
        L = self.lower * self.lower_mask + self.eye
        U = self.upper * self.lower_mask.t() + torch.diag(self.sign_s * torch.exp(self.log_s))
        W = self.p @ L @ U
        return F.conv2d(x, W.view(*W.shape, 1, 1)), self.log_s.sum() * x.shape[2] * x.shape[3]


class AffineCoupling(nn.Module):
    def __init__(self, c, hidden):
        super().__init__()
        self.ca, self.cb = c // 2, c - c // 2
        last = nn.Conv2d(hidden, 2 * self.cb, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(nn.Conv2d(self.ca, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, hidden, 1), nn.ReLU(), last)
        self.scale = nn.Parameter(torch.ones(1, self.cb, 1, 1))

    def forward(self, x):
        xa, xb = x[:, :self.ca], x[:, self.ca:]
        h = self.net(xa)
        s, t = self.scale * torch.tanh(h[:, :self.cb]), h[:, self.cb:]
        return torch.cat([xa, xb * torch.exp(s) + t], 1), s.flatten(1).sum(1)


class Split(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1 = c - c // 2
        self.prior = nn.Conv2d(self.c1, 2 * (c - self.c1), 3, padding=1)
        nn.init.zeros_(self.prior.weight)
        nn.init.zeros_(self.prior.bias)

    def forward(self, x):
        z1, z2 = x[:, :self.c1], x[:, self.c1:]
        h = self.prior(z1)
        c2 = z2.shape[1]
        return z1, gaussian_log_prob(z2, h[:, :c2], h[:, c2:])


class Glow(nn.Module):
    def __init__(self, channels, resolution, levels, depth, hidden):
        super().__init__()
        self.levels, self.splits = nn.ModuleList(), nn.ModuleList()
        c, r = channels, resolution
        for level in range(levels):
            c, r = c * 4, r // 2
            steps = []
            for _ in range(depth):
                steps += [ActNorm(c), InvConv1x1LU(c), AffineCoupling(c, hidden)]
            self.levels.append(nn.ModuleList(steps))
            if level < levels - 1:
                self.splits.append(Split(c))
                c = c - c // 2
        self.top_mean = nn.Parameter(torch.zeros(1, c, r, r))
        self.top_logsd = nn.Parameter(torch.zeros(1, c, r, r))

    def log_prob(self, x):
        logp = torch.zeros(x.shape[0])
        for i, level in enumerate(self.levels):
            x = squeeze(x)
            for layer in level:
                x, ld = layer(x)
                logp = logp + ld
            if i < len(self.splits):
                x, lp = self.splits[i](x)
                logp = logp + lp
        return logp + gaussian_log_prob(x, self.top_mean.expand_as(x), self.top_logsd.expand_as(x))


def bits_per_dim(model, images, generator=None):
    y = (images + torch.rand(images.shape, generator=generator)) / 256 - 0.5  # gen.likelihood.dequantize into [-0.5, 0.5]
    log_p = model.log_prob(y) + images[0].numel() * math.log(1 / 256)  # the discrete log-probability
    return -log_p / (PIXELS * math.log(2))


def make_step():
    model = Glow(**CONFIG)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = F.pad(torch.randint(0, 256, (BATCH, 1, 28, 28)).float(), (2, 2, 2, 2))

    def step():
        opt.zero_grad()
        loss = bits_per_dim(model, images).mean()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 50)
        opt.step()
        return loss.item()

    return step, sum(p.numel() for p in model.parameters())


DATA_DIR = os.environ.get("GEN_DATA") or "/usr/share/datasets/fashion-mnist"  # gen.data.fashion_mnist's


def read_images(prefix):
    """The uint8 images {N, 1, 28, 28} of an IDX file (gzip-compressed or plain), as gen reads them."""
    path = os.path.join(DATA_DIR, prefix + "-images-idx3-ubyte")
    raw = gzip.open(path + ".gz").read() if os.path.exists(path + ".gz") else open(path, "rb").read()
    n, h, w = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    return torch.frombuffer(bytearray(raw[16:16 + n * h * w]), dtype=torch.uint8).view(n, 1, h, w)


def pad(images):
    return F.pad(images.float(), (2, 2, 2, 2))  # 28 -> 32 with zeros, transform {pad = 2}


def image_bits_per_dim(model, images, batch=250, seed=0):
    """Each image's bits/dim as gen.flows.test_bits_per_dim scores them (batches of 250, no
    gradients, dequantized from a generator seeded alike); their mean is the reported number."""
    g, parts = torch.Generator().manual_seed(seed), []
    with torch.no_grad():
        for first in range(0, images.shape[0], batch):
            parts.append(bits_per_dim(model, pad(images[first:first + batch]), g))
    return torch.cat(parts).double()


def export_for_gen(model, test_images, out):
    """DIR/gen_weights.safetensors: the state dict under gen.models.glow's names (gen's levels count
    the squeeze as layer 0); DIR/gen_check.safetensors: 250 dequantized test images and the twin's
    log p of them, which bench/twin_glow_check.lua compares with gen's log p of the same weights."""
    names = {}
    for name, t in model.state_dict().items():
        parts = name.split(".")
        if parts[0] == "levels":
            parts = ["levels", parts[1], "layers", str(int(parts[2]) + 1)] + parts[3:]
        names[".".join(parts)] = t
    write_safetensors(os.path.join(out, "gen_weights.safetensors"), names)
    images = pad(test_images[:250])
    y = (images + torch.rand(images.shape, generator=torch.Generator().manual_seed(1))) / 256 - 0.5
    with torch.no_grad():
        write_safetensors(os.path.join(out, "gen_check.safetensors"), {"y": y, "log_p": model.log_prob(y)})


def describe(bpd):
    q = torch.quantile(bpd, torch.tensor([0.5, 0.99], dtype=bpd.dtype))
    return "mean %.4f, median %.4f, 99th percentile %.4f, max %.4f" % (bpd.mean(), q[0], q[1], bpd.max())


def train(args):
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    model = Glow(**CONFIG)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    train_images, test_images = read_images("train"), read_images("t10k")
    per_epoch = train_images.shape[0] // BATCH  # drop_last
    order = torch.Generator().manual_seed(args.seed)
    log = open(os.path.join(args.out, "log.csv"), "w")
    log.write("step,bpd,mean_bpd_100,grad_norm,lr,seconds\n")
    print("twin Glow: %d parameters, %d steps of batch %d (%d per epoch)" % (params, args.train, BATCH, per_epoch))
    t0, step, recent = time.perf_counter(), 0, []
    while step < args.train:
        perm = torch.randperm(train_images.shape[0], generator=order)
        for b in range(per_epoch):
            step += 1
            x = pad(train_images[perm[b * BATCH:(b + 1) * BATCH]])
            lr = args.lr * min(1.0, step / args.warmup)  # gen.flows.cli: lr * linear_warmup(warmup)(step - 1)
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad()
            loss = bits_per_dim(model, x).mean()  # the first batch initializes the ActNorms
            loss.backward()
            norm = nn.utils.clip_grad_norm_(model.parameters(), 50).item()  # the norm before clipping
            opt.step()
            recent = (recent + [loss.item()])[-100:]
            if step % 100 == 0 or step == args.train:
                row = (step, recent[-1], sum(recent) / len(recent), norm, lr, time.perf_counter() - t0)
                log.write("%d,%.4f,%.4f,%.4g,%.3g,%.1f\n" % row)
                log.flush()
                print("step %d  bpd %.4f  mean of the last 100 %.4f  grad norm %.4g  lr %.3g  %.1f s" % row, flush=True)
            if args.eval_every > 0 and step % args.eval_every == 0 and step < args.train:
                t1 = time.perf_counter()  # not counted as training time
                print("step %d  first 1000 test images: %s" % (step, describe(image_bits_per_dim(model, test_images[:1000]))), flush=True)
                t0 += time.perf_counter() - t1
            if step >= args.train:
                break
    log.close()
    seconds = time.perf_counter() - t0
    torch.save(model.state_dict(), os.path.join(args.out, "model.pt"))
    export_for_gen(model, test_images, args.out)
    t1 = time.perf_counter()
    bpd = image_bits_per_dim(model, test_images)
    lines = ["test bits/dim: %.4f (%d test images, 8-bit, dequantized)" % (bpd.mean(), test_images.shape[0]),
             "test images: " + describe(bpd)]
    print(lines[0])
    print("trained %d steps in %.1f s; evaluated in %.1f s" % (step, seconds, time.perf_counter() - t1))
    if args.train_eval > 0:  # the same evaluation on training images: the generalization gap
        lines.append("first %d training images: %s" % (args.train_eval, describe(image_bits_per_dim(model, train_images[:args.train_eval]))))
    print("\n".join(lines[1:]))
    with open(os.path.join(args.out, "bpd.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="PyTorch twin of gen's Glow: time one step, or train and report test bits/dim")
    parser.add_argument("threads", nargs="?", type=int, help="threads (default 1)")
    parser.add_argument("--threads", dest="threads_opt", type=int)
    parser.add_argument("--train", type=int, metavar="STEPS", help="train STEPS steps, then the test bits/dim (0: a fresh model)")
    parser.add_argument("--out", default="runs/twin_glow")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--train-eval", type=int, default=0, metavar="N", help="also score the first N training images")
    parser.add_argument("--eval-every", type=int, default=0, metavar="K", help="score the first 1000 test images every K steps")
    args = parser.parse_args()
    torch.set_num_threads(args.threads_opt or args.threads or 1)
    if args.train is not None:
        train(args)
        sys.exit(0)
    step, params = make_step()
    times = []
    for i in range(7):
        t0 = time.perf_counter()
        step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    print("glow_step torch %.4f s (median of 5), %d parameters" % (statistics.median_low(times), params))
