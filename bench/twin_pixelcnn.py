# PyTorch twin of gen's gated PixelCNN (gen.models.pixelcnn, gen.autoregressive.pixelcnn): the same
# layers with the same kernel shapes, masks, parameter names and initialization (PyTorch's
# defaults, which gen's layers copy), the same loss (mean cross-entropy over 256 values per pixel)
# and the same Adam settings.
#   train and score (test NLL in bits/dim, training time):
#     OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 bench/twin_pixelcnn.py train \
#       --steps 600 --batch 32 --width 32 --layers 5 [--test-images 10000] [--seed 0]
#   same start, same batches as gen (bench/twin_pixelcnn_check.lua): writes the initial weights and
#   the batch order, then prints the twin's loss at every step and its test NLL on 1000 images:
#     /usr/bin/python3 bench/twin_pixelcnn.py parity --steps 200 --out /tmp/pixelcnn_parity.safetensors
#     bin/gen bench/twin_pixelcnn_check.lua /tmp/pixelcnn_parity.safetensors
#   bench/e2e.py imports make_step for the pixelcnn_step workload.
import argparse
import gzip
import math
import os
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from twin_models import write_safetensors

DATA = os.environ.get("GEN_DATA") or "/usr/share/datasets/fashion-mnist"


class MaskedConv2d(nn.Conv2d):
    """gen.nn.MaskedConv2d with stack = "vertical" or "horizontal": the unmasked half kernel,
    the input zero-padded so the output keeps its size, type A masking the centre."""

    def __init__(self, cin, cout, k, stack, mask):
        half = k // 2
        shape = (half + 1, k) if stack == "vertical" else (1, half + 1)
        super().__init__(cin, cout, shape)
        self.pad = (half, half, half, 0) if stack == "vertical" else (half, 0, 0, 0)
        m = torch.ones(1, 1, *shape)
        if mask == "A":
            if stack == "vertical":
                m[:, :, -1, :] = 0
            else:
                m[:, :, :, -1] = 0
        self.register_buffer("mask", m, persistent=False)
        self.masked = mask == "A"

    def forward(self, x):
        w = self.weight * self.mask if self.masked else self.weight
        return F.conv2d(F.pad(x, self.pad), w, self.bias)


def shift_down(x):
    return F.pad(x, (0, 0, 1, 0))[:, :, : x.shape[2]]


def gate(x):
    a, b = x.chunk(2, 1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    def __init__(self, cin, p, k, mask, residual, cond_dim):
        super().__init__()
        self.residual = residual
        self.v = MaskedConv2d(cin, 2 * p, k, "vertical", "B")
        self.h = MaskedConv2d(cin, 2 * p, k, "horizontal", mask)
        self.v_to_h = nn.Conv2d(2 * p, 2 * p, 1)
        self.h_out = nn.Conv2d(p, p, 1)
        if cond_dim > 0:
            self.cond_v = nn.Linear(cond_dim, 2 * p, bias=False)
            self.cond_h = nn.Linear(cond_dim, 2 * p, bias=False)

    def forward(self, v, h, e):
        vp = self.v(v)
        hp = self.h(h) + self.v_to_h(shift_down(vp))
        cv, ch = vp, hp
        if e is not None:
            cv = cv + self.cond_v(e)[:, :, None, None]
            ch = ch + self.cond_h(e)[:, :, None, None]
        h_new = self.h_out(gate(ch))
        if self.residual:
            h_new = h + h_new
        return gate(cv), h_new


class ClassEmbedding(nn.Module):  # gen.nn.blocks.ClassEmbedding: weights N(0, 1)
    def __init__(self, classes, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, dim))

    def forward(self, labels):
        return F.embedding(labels, self.weight)


class GatedPixelCNN(nn.Module):
    def __init__(self, width=64, layers=8, kernel=3, first_kernel=7, head=None, classes=0, levels=256):
        super().__init__()
        p = width
        if classes > 0:
            self.class_embed = ClassEmbedding(classes, p)
        self.classes = classes
        self.stack = nn.ModuleList(
            [GatedLayer(1 if l == 0 else p, p, first_kernel if l == 0 else kernel, "A" if l == 0 else "B", l > 0, p if classes else 0)
             for l in range(layers)])
        self.out1 = nn.Conv2d(p, head or p, 1)
        self.out2 = nn.Conv2d(head or p, levels, 1)

    def forward(self, x, labels=None):  # x: float pixel values 0..255, {B, 1, H, W}; labels 0-based
        f = x * (2 / 255) - 1
        e = self.class_embed(labels) if self.classes else None
        v, h = f, f
        for layer in self.stack:
            v, h = layer(v, h, e)
        return self.out2(F.relu(self.out1(F.relu(h))))


def loss_fn(model, x, labels=None):
    return F.cross_entropy(model(x, labels), x[:, 0].long())


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).reshape(shape)


def load(split):
    prefix = "train" if split == "train" else "t10k"
    for ext in ("", ".gz"):
        img = os.path.join(DATA, prefix + "-images-idx3-ubyte" + ext)
        if os.path.exists(img):
            return read_idx(img), read_idx(os.path.join(DATA, prefix + "-labels-idx1-ubyte" + ext)).long()
    sys.exit("no Fashion-MNIST in " + DATA)


def make_step(batch=64, width=64, layers=8):
    """One training step of the example's defaults on a fixed random batch (bench/e2e.py)."""
    torch.manual_seed(0)
    model = GatedPixelCNN(width=width, layers=layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randint(0, 256, (batch, 1, 28, 28)).float()

    def step():
        opt.zero_grad()
        loss = loss_fn(model, x)
        loss.backward()
        opt.step()
        return loss.item()

    return step, sum(p.numel() for p in model.parameters())


@torch.no_grad()
def test_bits_per_dim(model, images, batch=256):
    model.eval()
    total = 0.0
    for i in range(0, images.shape[0], batch):
        x = images[i : i + batch].float()[:, None]
        nll = F.cross_entropy(model(x), x[:, 0].long(), reduction="sum")
        total += nll.item()
    return total / (images.shape[0] * images[0].numel() * math.log(2))


def train(args):
    torch.manual_seed(args.seed)
    images, _ = load("train")
    test, _ = load("test")
    model = GatedPixelCNN(width=args.width, layers=args.layers, kernel=args.kernel, first_kernel=args.first_kernel)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    n, step = images.shape[0], 0
    t0 = time.perf_counter()
    while step < args.steps:
        order = torch.randperm(n)
        for first in range(0, n - args.batch + 1, args.batch):
            x = images[order[first : first + args.batch]].float()[:, None]
            opt.zero_grad()
            loss = loss_fn(model, x)
            loss.backward()
            opt.step()
            step += 1
            if step % 50 == 0 or step == args.steps:
                print("step %d  %.4f bits/dim" % (step, loss.item() / math.log(2)), flush=True)
            if step == args.steps:
                break
    seconds = time.perf_counter() - t0
    m = min(args.test_images, test.shape[0])
    t1 = time.perf_counter()
    bpd = test_bits_per_dim(model, test[:m])
    print("torch twin: %d steps in %.1f s (%.3f s/step); test NLL %.4f bits/dim over %d images (%.1f s); %d params"
          % (args.steps, seconds, seconds / args.steps, bpd, m, time.perf_counter() - t1, sum(p.numel() for p in model.parameters())), flush=True)


def parity(args):
    """The twin's initial weights (gen.models.pixelcnn's parameter names are the same) and its batch
    order (0-based training-image indices, {steps, batch}, exact in float32) to args.out, then
    the twin's loss at every step on those batches and its test NLL on the first 1000 images."""
    torch.manual_seed(args.seed)
    images, _ = load("train")
    test, _ = load("test")
    model = GatedPixelCNN(width=args.width, layers=args.layers, kernel=args.kernel, first_kernel=args.first_kernel)
    order = torch.stack([torch.randperm(images.shape[0])[: args.batch] for _ in range(args.steps)])
    state = dict(model.state_dict())
    state["batches"] = order.float()
    write_safetensors(args.out, state)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    for step in range(args.steps):
        x = images[order[step]].float()[:, None]
        opt.zero_grad()
        loss = loss_fn(model, x)
        loss.backward()
        opt.step()
        print("step %d loss %.6f" % (step + 1, loss.item()), flush=True)
    print("test NLL %.5f bits/dim over 1000 images" % test_bits_per_dim(model, test[:1000]), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["train", "parity"])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--kernel", type=int, default=3)
    ap.add_argument("--first-kernel", type=int, default=7)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--test-images", type=int, default=10000)
    ap.add_argument("--out", default="/tmp/pixelcnn_parity.safetensors")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    parity(args) if args.mode == "parity" else train(args)
