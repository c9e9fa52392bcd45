# PyTorch twin of bench/e2e.lua: the same models layer by layer (same parameter counts), losses,
# optimizers, shapes and timing method.
# Usage: OPENBLAS_NUM_THREADS=N OMP_NUM_THREADS=N python3 bench/e2e.py N WORKLOAD
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from twin_models import VAE, dcgan_discriminator, dcgan_generator

threads, name = int(sys.argv[1]), sys.argv[2]
quick = os.environ.get("GEN_BENCH_QUICK") == "1"
WARMUP, ITERS = 2, 3 if quick else 10
torch.set_num_threads(threads)
torch.manual_seed(0)


def bench(step):
    times = []
    for i in range(WARMUP + ITERS):
        t0 = time.perf_counter()
        step()
        if i >= WARMUP:
            times.append(time.perf_counter() - t0)
    return statistics.median_low(times)


def count(*models):
    return sum(p.numel() for m in models for p in m.parameters())


def dcgan_step():
    G, D = dcgan_generator(), dcgan_discriminator()
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    ones, zeros = torch.ones(64, 1), torch.zeros(64, 1)

    def step():
        fake = G(torch.randn(64, 100))
        opt_d.zero_grad(set_to_none=True)
        loss_d = F.binary_cross_entropy_with_logits(D(x), ones) + F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        loss_g = F.binary_cross_entropy_with_logits(D(fake), ones)
        loss_g.backward()
        opt_g.step()
        return loss_d.item() + loss_g.item()

    return bench(step), count(G, D)


def vae_mlp_step():
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(128, 1, 28, 28)

    def step():
        opt.zero_grad(set_to_none=True)
        logits, mu, logvar = model(x)
        n = x.shape[0]
        # per-sample -ELBO: Bernoulli likelihood summed over pixels, KL summed over latents
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
        kl = (-0.5 * (1 + logvar - mu * mu - logvar.exp())).sum() / n
        loss = recon + kl
        loss.backward()
        opt.step()
        return loss.item()

    return bench(step), count(model)


# ---------------------------------------------------------------- UNet (gen.models.unet)
def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float().view(-1, 1) * freqs.view(1, half)
    return torch.cat([args.sin(), args.cos()], 1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb, groups):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(temb, cout)
        self.norm2, self.conv2 = nn.GroupNorm(groups, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.skip(x) if self.skip is not None else x)


class AttnBlock(nn.Module):
    def __init__(self, c, heads, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c)
        self.attn = nn.MultiheadAttention(c, heads, batch_first=True)

    def forward(self, x):
        b, c, h, w = x.shape
        tokens = self.norm(x).view(b, c, h * w).transpose(1, 2)
        y, _ = self.attn(tokens, tokens, tokens, need_weights=False)
        return x + y.transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    def __init__(self, channels=1, widths=(32, 64, 64), tdim=128, heads=4, groups=8):
        super().__init__()
        self.widths = widths
        self.time_mlp = nn.Sequential(nn.Linear(widths[0], tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.input = nn.Conv2d(channels, widths[0], 3, padding=1)
        self.down_blocks, self.downsample = nn.ModuleList(), nn.ModuleList()
        prev = widths[0]
        for i, w in enumerate(widths):
            self.down_blocks.append(ResBlock(prev, w, tdim, groups))
            if i < len(widths) - 1:
                self.downsample.append(nn.Conv2d(w, w, 3, stride=2, padding=1))
            prev = w
        self.down_attn = AttnBlock(prev, heads, groups)
        self.mid = ResBlock(prev, prev, tdim, groups)
        self.up_blocks, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(len(widths))):
            w = widths[i]
            self.up_blocks.append(ResBlock(prev + w, w, tdim, groups))
            if i > 0:
                self.upsample.append(nn.Conv2d(w, w, 3, padding=1))
            prev = w
        self.up_attn = AttnBlock(widths[-1], heads, groups)
        self.out_norm = nn.GroupNorm(groups, widths[0])
        self.output = nn.Conv2d(widths[0], channels, 3, padding=1)

    def forward(self, x, t):
        temb = self.time_mlp(timestep_embedding(t, self.widths[0]))
        h = self.input(x)
        skips, levels = [], len(self.widths)
        for i in range(levels):
            h = self.down_blocks[i](h, temb)
            if i == levels - 1:
                h = self.down_attn(h)
            skips.append(h)
            if i < levels - 1:
                h = self.downsample[i](h)
        h = self.mid(h, temb)
        for k in range(levels):
            i = levels - 1 - k
            h = self.up_blocks[k](torch.cat([h, skips[i]], 1), temb)
            if i == levels - 1:
                h = self.up_attn(h)
            if i > 0:
                h = self.upsample[k](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.output(F.silu(self.out_norm(h)))


def linear_alpha_bars(T=1000, beta1=1e-4, betaT=0.02):
    # in float64, as gen.diffusion keeps its schedule in Lua numbers
    betas = beta1 + (betaT - beta1) * torch.arange(T, dtype=torch.float64) / (T - 1)
    return torch.cumprod(1 - betas, 0)


def unet_ddpm_step():
    model = UNet()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4)
    alpha_bars = linear_alpha_bars()
    x0 = torch.rand(32, 1, 32, 32) * 2 - 1

    def step():
        opt.zero_grad(set_to_none=True)
        # t uniform in 1..T, fed to the model as the 1-based step (gen.diffusion.ddpm_loss)
        t = torch.randint(1, 1001, (x0.shape[0],))
        eps = torch.randn_like(x0)
        ab = alpha_bars[t - 1].float().view(-1, 1, 1, 1)
        loss = F.mse_loss(model(x0 * ab.sqrt() + eps * (1 - ab).sqrt(), t.float()), eps)
        loss.backward()
        opt.step()
        return loss.item()

    return bench(step), count(model)


def unet_ddim_sample():
    model = UNet().eval()  # what a PyTorch user samples with (it allows the fused attention path)
    alpha_bars = linear_alpha_bars().tolist()
    steps = WARMUP + ITERS if quick else 50
    ts = [max(1, math.floor(1000 * (steps - i) / steps + 0.5)) for i in range(steps)]
    stamps = [time.perf_counter()]
    with torch.no_grad():
        x = torch.randn(64, 1, 32, 32)
        for i, t in enumerate(ts):
            eps = model(x, torch.full((64,), float(t)))
            ab = alpha_bars[t - 1]
            ab_prev = alpha_bars[ts[i + 1] - 1] if i + 1 < steps else 1.0
            x0 = (x - eps * math.sqrt(1 - ab)) / math.sqrt(ab)
            x = x0 * math.sqrt(ab_prev) + eps * math.sqrt(max(0.0, 1 - ab_prev))
            stamps.append(time.perf_counter())
    times = [stamps[i + 1] - stamps[i] for i in range(WARMUP, steps)]
    return 50 * statistics.median_low(times), count(model)


workloads = {"dcgan_step": dcgan_step, "vae_mlp_step": vae_mlp_step, "unet_ddpm_step": unet_ddpm_step,
             "unet_ddim_sample": unet_ddim_sample}
seconds, params = workloads[name]()
peak = [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print("%s %d %.9g %s params=%d" % (name, threads, seconds, peak, params))
