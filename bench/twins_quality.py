# The quality yardstick: trains the PyTorch twin of an example (bench/twin_models.py) with the
# example's settings and budget on Fashion-MNIST (Debian's dataset-fashion-mnist), then writes N
# samples as IDX, to be scored by gen's own tools/metrics.lua exactly like gen's samples.
# Usage: OMP_NUM_THREADS=T OPENBLAS_NUM_THREADS=T python3 bench/twins_quality.py dcgan|vae|flow STEPS N OUT.idx
# (flow samples cycle through the classes 1..10, as examples/diffusion/rectified_flow.lua draws them: score them with
# tools/metrics.lua --cycle 1)
import gzip
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from twin_models import VAE, DCGANUpdate, UNet

TRAIN = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
TRAIN_LABELS = "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"


def load_images(path=TRAIN):
    with gzip.open(path) as f:
        data = f.read()
    _, n, h, w = struct.unpack(">IIII", data[:16])
    return torch.from_numpy(np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, h, w).copy())


def load_labels(path=TRAIN_LABELS):  # 0-based classes
    with gzip.open(path) as f:
        data = f.read()
    return torch.from_numpy(np.frombuffer(data, np.uint8, offset=8).astype(np.int64))


def write_idx(path, images):  # uint8 {N, H, W}, the format gen.data.idx.read reads
    with open(path, "wb") as f:
        f.write(struct.pack(">IIII", 0x00000803, *images.shape))
        f.write(images.contiguous().numpy().tobytes())


START = [0.0]


def training_done(steps):
    """Prints the training time (from the start of the run to here, before sampling)."""
    print(f"trained {steps} steps in {time.perf_counter() - START[0]:.1f} s", flush=True)


def batches(images, batch, steps, generator, labels=None):
    """Shuffled epochs without the last partial batch, as gen's DataLoader with drop_last."""
    done = 0
    while True:
        perm = torch.randperm(images.shape[0], generator=generator)
        for i in range(0, images.shape[0] - batch + 1, batch):
            idx = perm[i:i + batch]
            yield images[idx] if labels is None else (images[idx], labels[idx])
            done += 1
            if done == steps:
                return


def train_dcgan(images, steps, n):
    """examples/gan/dcgan.lua: batch 64, Adam(2e-4, 0.5/0.999), BCE on logits, non-saturating G loss."""
    update = DCGANUpdate()
    for u8 in batches(images, 64, steps, torch.Generator().manual_seed(0)):
        update(u8.float() / 127.5 - 1)
    training_done(steps)
    with torch.no_grad():  # train-mode batch norm, as gen's example samples
        return update.G(torch.randn(n, 100))


def train_vae(images, steps, n):
    """examples/autoencoder/vae.lua (MLP): batch 128, Adam(1e-3), Bernoulli -ELBO per sample; decoded means."""
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for u8 in batches(images, 128, steps, torch.Generator().manual_seed(0)):
        x = u8.float() / 255
        logits, mu, logvar = model(x)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        kl = (-0.5 * (1 + logvar - mu * mu - logvar.exp())).sum() / x.shape[0]
        opt.zero_grad(set_to_none=True)
        (recon + kl).backward()
        opt.step()
    training_done(steps)
    with torch.no_grad():
        return torch.sigmoid(model.decoder(torch.randn(n, 20))).view(n, 1, 28, 28) * 2 - 1


def train_flow(images, steps, n):
    """examples/diffusion/rectified_flow.lua: class-conditional rectified flow on 32x32 (padded with -1), batch 32,
    AdamW(2e-4), label dropout 0.1 to the "no class" entry, EMA 0.999 with the (1 + n) / (10 + n)
    warm-up; samples from the EMA weights with 25 Euler steps and guidance 2.0, classes cycling."""
    classes, null = 10, 10
    model = UNet(classes=classes)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4)
    ema = [p.detach().clone() for p in model.parameters()]
    labels = load_labels()
    for updates, (u8, y) in enumerate(batches(images, 32, steps, torch.Generator().manual_seed(0), labels)):
        x0 = F.pad(u8.float() / 127.5 - 1, (2, 2, 2, 2), value=-1.0)
        b = x0.shape[0]
        t = torch.sigmoid(torch.randn(b))
        eps = torch.randn_like(x0)
        xt = x0 * (1 - t.view(b, 1, 1, 1)) + eps * t.view(b, 1, 1, 1)
        y = torch.where(torch.rand(b) < 0.1, torch.full_like(y, null), y)
        loss = F.mse_loss(model(xt, t * 1000, y), eps - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        d = min(0.999, (1 + updates) / (10 + updates))
        with torch.no_grad():
            for e, p in zip(ema, model.parameters()):
                e.mul_(d).add_(p.detach(), alpha=1 - d)
    training_done(steps)
    with torch.no_grad():
        for e, p in zip(ema, model.parameters()):
            p.copy_(e)
        out, steps_s, w = [], 25, 2.0
        for first in range(0, n, 250):
            m = min(250, n - first)
            want = torch.arange(first, first + m) % classes
            x = torch.randn(m, 1, 32, 32)
            for i in range(steps_s):
                tt = 1 - i / steps_s
                both = model(torch.cat([x, x]), torch.full((2 * m,), tt * 1000), torch.cat([want, torch.full_like(want, null)]))
                v = both[:m] * (1 + w) - both[m:] * w
                x = x - v / steps_s
            out.append(x[:, :, 2:30, 2:30])
        return torch.cat(out)


def main():
    name, steps, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    torch.manual_seed(0)
    images = load_images()
    t0 = START[0] = time.perf_counter()
    samples = {"dcgan": train_dcgan, "vae": train_vae, "flow": train_flow}[name](images, steps, n)
    seconds = time.perf_counter() - t0
    u8 = ((samples.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).view(n, 28, 28)
    write_idx(out, u8)
    print(f"{name}: {steps} steps and {n} samples in {seconds:.1f} s ({torch.get_num_threads()} threads); wrote {out}")


if __name__ == "__main__":
    main()
