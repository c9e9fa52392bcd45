# PyTorch twin of examples/autoregressive/vqvae.lua (one level): the same network layer by layer
# (lua/gen/models/vqvae.lua), quantizer (nearest code, straight-through, codebook loss + 0.25 x
# commitment loss, dead codes restarted at batch outputs when their usage EMA falls below 1),
# batch 128, Adam(1e-3), pixels in [0, 1], on Debian's Fashion-MNIST files. Reports what the gen
# example reports: the test reconstruction MSE and the codebook perplexity over the test codes.
# Usage: OMP_NUM_THREADS=T OPENBLAS_NUM_THREADS=T python3 bench/twin_vqvae.py STEPS [K] [--ema]
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from twins_quality import batches, load_images

TEST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


class Residual(nn.Module):
    def __init__(self, c, hidden):
        super().__init__()
        self.conv1 = nn.Conv2d(c, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, c, 1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


def encoder(cin, w, cout, rw, blocks=2):
    return nn.Sequential(nn.Conv2d(cin, w, 4, 2, 1), nn.ReLU(), nn.Conv2d(w, w, 4, 2, 1), nn.ReLU(),
                         nn.Conv2d(w, w, 3, padding=1), *[Residual(w, rw) for _ in range(blocks)], nn.ReLU(),
                         nn.Conv2d(w, cout, 1))


def decoder(cin, w, cout, rw, blocks=2):
    return nn.Sequential(nn.Conv2d(cin, w, 3, padding=1), *[Residual(w, rw) for _ in range(blocks)], nn.ReLU(),
                         nn.ConvTranspose2d(w, w, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(w, cout, 4, 2, 1))


class VectorQuantizer(nn.Module):
    def __init__(self, k, d, beta=0.25, ema=False, decay=0.99, eps=1e-5, restart=1.0):
        super().__init__()
        self.k, self.d, self.beta, self.ema, self.decay, self.eps, self.restart = k, d, beta, ema, decay, eps, restart
        self.embedding = nn.Embedding(k, d)
        self.embedding.weight.data.uniform_(-1 / k, 1 / k)
        self.embedding.weight.requires_grad_(not ema)
        self.register_buffer("cluster_size", torch.zeros(k))
        if ema:
            self.register_buffer("embed_sum", self.embedding.weight.data.clone())

    @torch.no_grad()
    def indices(self, rows):
        e = self.embedding.weight
        dist = (e * e).sum(1) - 2 * rows @ e.t()  # ||z||^2 is the same for every code of a row
        return dist.argmin(1)

    def forward(self, z):
        rows = z.permute(0, 2, 3, 1).reshape(-1, self.d)
        idx = self.indices(rows)
        e = self.embedding(idx)
        commitment = F.mse_loss(rows, e.detach())
        codebook = F.mse_loss(e, rows.detach())
        loss = self.beta * commitment if self.ema else codebook + self.beta * commitment
        self.last = (rows.detach(), idx) if self.training else None
        zq = rows + (e - rows).detach()  # straight-through
        b, _, h, w_ = z.shape
        return zq.view(b, h, w_, self.d).permute(0, 3, 1, 2), loss, idx


    @torch.no_grad()
    def update(self):
        """The usage statistics, EMA and restarts of the last training batch (gen does them in the
        forward; PyTorch's embedding backward keeps the weight, so here they follow the step)."""
        rows, idx = self.last
        counts = torch.bincount(idx, minlength=self.k).float()
        w = self.embedding.weight
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        if self.ema:
            sums = torch.zeros_like(w).index_add_(0, idx, rows)
            self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            n = self.cluster_size.sum()
            smoothed = (self.cluster_size + self.eps) / (n + self.k * self.eps) * n
            w.copy_(self.embed_sum / smoothed.unsqueeze(1))
        if self.restart > 0:
            dead = self.cluster_size < self.restart
            if dead.any():
                fresh = rows[torch.randint(0, rows.shape[0], (self.k,))]
                w.copy_(torch.where(dead.unsqueeze(1), fresh, w))
                self.cluster_size.copy_(torch.where(dead, torch.full_like(self.cluster_size, self.restart), self.cluster_size))
                if self.ema:
                    self.embed_sum.copy_(torch.where(dead.unsqueeze(1), fresh * self.restart, self.embed_sum))


class VQVAE(nn.Module):
    def __init__(self, k=512, d=64, w=64, rw=32, ema=False):
        super().__init__()
        self.encoder = encoder(1, w, d, rw)
        self.quantizer = VectorQuantizer(k, d, ema=ema)
        self.decoder = decoder(d, w, 1, rw)

    def forward(self, x):
        zq, loss, idx = self.quantizer(self.encoder(x))
        return self.decoder(zq), loss, idx


def main():
    steps = int(sys.argv[1])
    k = int(sys.argv[2]) if len(sys.argv) > 2 and not sys.argv[2].startswith("--") else 512
    ema = "--ema" in sys.argv
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    torch.manual_seed(0)
    model = VQVAE(k=k, ema=ema)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    images = load_images()
    t0 = time.perf_counter()
    for u8 in batches(images, 128, steps, torch.Generator().manual_seed(0)):
        x = u8.float() / 255
        xhat, vq_loss, _ = model(x)
        loss = F.mse_loss(xhat, x) + vq_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.quantizer.update()
    seconds = time.perf_counter() - t0
    model.eval()
    test = load_images(TEST)
    total, counts = 0.0, torch.zeros(k)
    with torch.no_grad():
        for i in range(0, test.shape[0], 500):
            x = test[i:i + 500].float() / 255
            xhat, _, idx = model(x)
            total += F.mse_loss(xhat, x, reduction="sum").item()
            counts += torch.bincount(idx, minlength=k).float()
    mse = total / test.numel()
    p = counts / counts.sum()
    perplexity = torch.exp(-(p * (p + 1e-12).log()).sum()).item()
    print(f"torch vqvae: trained {steps} steps in {seconds:.1f} s; test (10000 images): reconstruction MSE {mse:.5f}; "
          f"codebook perplexity {perplexity:.1f} of {k} codes ({int((counts == 0).sum())} unused)")


if __name__ == "__main__":
    main()
