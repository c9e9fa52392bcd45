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

from twin_models import VAE, DCGANUpdate, UNet
from twin_mae import make_step as mae_make_step
from twin_glow import make_step as glow_make_step
import twin_gpt
from twin_pixelcnn import make_step as pixelcnn_make_step
from twin_stylegan import make_step as stylegan_make_step

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
    update = DCGANUpdate()
    x = torch.rand(64, 1, 28, 28) * 2 - 1

    def step():
        loss_d, loss_g = update(x)
        return loss_d.item() + loss_g.item()

    return bench(step), count(update.G, update.D)


def dcgan_d_step(r1):
    """One D update of the DCGAN on real and fixed generated images, plain or with R1 (gamma 10)
    on the real batch, through torch.autograd.grad(create_graph=True), as gen.gan.r1_penalty."""
    update = DCGANUpdate()
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        fake = update.G(torch.randn(64, 100))

    def step():
        update.opt_d.zero_grad(set_to_none=True)
        xr = x.detach().requires_grad_(r1)
        out = update.D(xr)
        loss = F.binary_cross_entropy_with_logits(out, update.real) + \
            F.binary_cross_entropy_with_logits(update.D(fake), update.fake)
        if r1:
            g, = torch.autograd.grad(out.sum(), xr, create_graph=True)
            loss = loss + g.pow(2).flatten(1).sum(1).mean() * 5
        loss.backward()
        update.opt_d.step()
        return loss.item()

    return bench(step), count(update.D)


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


def sampling(kind, batch, sampler=None):
    """EDM/Heun (18 Karras noise levels, 35 network evaluations) or rectified flow (25 Euler steps
    uniform in t) on the unconditional UNet without autograd, as gen.diffusion.sample runs them;
    on the EDM model also DPM-Solver++(2M) and Euler ancestral (20 levels, 20 evaluations), and
    DDPM's ancestral sampler on a VP/epsilon model ("vp": 50 uniform steps of the linear chain),
    and the reverse SDE on a VE/score model ("ve": Euler-Maruyama in 50 steps, predictor-corrector
    in 25 with one Langevin step each).
    Batch 64: one sample with each step stamped (the sum of the steps after the first plus the
    median step for the first); batch 1: a whole one-image sample per iteration."""
    model = UNet().eval()
    if kind == "edm":
        sd, rho, smin, smax = 0.5, 7.0, 0.002, 80.0
        n = 18 if sampler is None else 20
        a, b = smax ** (1 / rho), smin ** (1 / rho)
        sigmas = [(a + i / (n - 1) * (b - a)) ** rho for i in range(n)] + [0.0]

        def denoise(x, s):
            c_skip, c_out = sd * sd / (s * s + sd * sd), s * sd / math.sqrt(s * s + sd * sd)
            c_in, c_noise = 1 / math.sqrt(s * s + sd * sd), math.log(s) / 4
            out = model(x * c_in, torch.full((x.shape[0],), 1000 * c_noise))
            return x * c_skip + out * c_out

        old = {}

        def dpmpp_2m(x, s, s_next):  # Lu et al., 2022, Algorithm 2, in lambda = -ln sigma
            d = denoise(x, s)
            if s_next == 0:
                return d
            h, dh = math.log(s) - math.log(s_next), d
            if old:
                r = old["h"] / h
                dh = d * (1 + 1 / (2 * r)) - old["d"] * (1 / (2 * r))
            old.update(d=d, h=h)
            return x * (s_next / s) + dh * (1 - s_next / s)

        def euler_ancestral(x, s, s_next):
            d = denoise(x, s)
            up = min(s_next, math.sqrt(s_next * s_next * (s * s - s_next * s_next) / (s * s)))
            down = math.sqrt(s_next * s_next - up * up)
            y = d + (x - d) * (down / s)
            return y + torch.randn_like(x) * up if up > 0 else y

        def step(x, s, s_next):
            d = denoise(x, s)
            slope = (x - d) / s
            if s_next == 0:
                return d
            y = x + slope * (s_next - s)
            slope2 = (y - denoise(y, s_next)) / s_next
            return x + (slope + slope2) * ((s_next - s) / 2)

        start = smax
        step = {None: step, "dpmpp_2m": dpmpp_2m, "euler_ancestral": euler_ancestral}[sampler]
    elif kind == "ve":  # Song et al.'s VE SDE, score model: D = x + sigma out, sigma = 0.01 (5000)^t
        smin, smax = 0.01, 50.0
        n = 25 if sampler == "pc" else 50
        sigmas = [smin * (smax / smin) ** (1 - i / (n - 1)) for i in range(n)] + [0.0]

        def denoise(x, s):
            t = math.log(s / smin) / math.log(smax / smin)
            return x + model(x, torch.full((x.shape[0],), 1000 * t)) * s

        def reverse_sde(x, s, s_next):
            d = denoise(x, s)
            if s_next == 0:
                return d
            dv = s * s - s_next * s_next
            return x + (d - x) * (dv / (s * s)) + torch.randn_like(x) * math.sqrt(dv)

        def pc(x, s, s_next):  # one Langevin corrector step at snr 0.16 after the predictor
            y = reverse_sde(x, s, s_next)
            if s_next == 0:
                return y
            g = (denoise(y, s_next) - y) / (s_next * s_next)
            z = torch.randn_like(y)
            zn = z.flatten(1).norm(dim=1).mean().item()
            gn = g.flatten(1).norm(dim=1).mean().item()
            e = 2 * (0.16 * zn / gn) ** 2
            return y + g * e + z * math.sqrt(2 * e)

        start = smax
        step = pc if sampler == "pc" else reverse_sde
    elif kind == "vp":  # x^ = x_t / s(t) = x_0 + sigma eps, sigma = sqrt((1 - ab) / ab)
        n, alpha_bars = 50, linear_alpha_bars().tolist()
        ts = [max(1, math.floor(1000 * (n - i) / n + 0.5)) for i in range(n)]
        sigmas = [math.sqrt((1 - alpha_bars[t - 1]) / alpha_bars[t - 1]) for t in ts] + [0.0]
        times = dict(zip(sigmas, ts))

        def step(x, s, s_next):  # Ho et al.'s ancestral step with variance beta_t
            eps = model(x / math.sqrt(1 + s * s), torch.full((x.shape[0],), float(times[s])))
            d = x - eps * s
            y = d + (x - d) * (s_next * s_next / s / s)
            if s_next == 0:
                return y
            var = (s * s - s_next * s_next) * (1 + s_next * s_next) / (1 + s * s)
            return y + torch.randn_like(x) * math.sqrt(var)

        start = sigmas[0]
    else:
        n = 25
        ts = [min(0.999, (n - i) / n) for i in range(n)] + [0.0]
        sigmas = [t / (1 - t) for t in ts]

        def step(x, s, s_next):  # x is x^ = x_t / (1 - t); D from the velocity
            t = s / (1 + s)
            v = model(x * (1 - t), torch.full((x.shape[0],), 1000 * t))
            d = (x - v * s) / (1 + s)
            return d if s_next == 0 else d + (x - d) * (s_next / s)

        start = 1.0

    def sample(b, stamps=None):
        x = torch.randn(b, 1, 32, 32) * start
        for i in range(n):
            x = step(x, sigmas[i], sigmas[i + 1])
            if stamps is not None:
                stamps.append(time.perf_counter())
        return x

    with torch.no_grad():
        if batch == 1:
            return bench(lambda: sample(1).sum().item()), count(model)
        stamps = [time.perf_counter()]
        sample(batch, stamps)
    times = [stamps[i + 1] - stamps[i] for i in range(n)]
    return sum(times[1:]) + statistics.median_low(times), count(model)


def mae_step():
    step, params = mae_make_step()
    return bench(step), params


def glow_step():
    step, params = glow_make_step()
    return bench(step), params


def gpt_prior_step():
    step, params = twin_gpt.make_step()
    return bench(step), params


def gpt_prior_sample():
    sample, params = twin_gpt.make_sample()
    return bench(sample), params


def pixelcnn_step():
    step, params = pixelcnn_make_step(batch=64, width=64, layers=8)
    return bench(step), params


def stylegan_step():
    step, params = stylegan_make_step(batch=32)
    return bench(step), params


def stylegan_r1_step():
    step, params = stylegan_make_step(batch=32, r1=10.0)
    return bench(step), params


workloads = {"stylegan_step": stylegan_step, "stylegan_r1_step": stylegan_r1_step,
             "pixelcnn_step": pixelcnn_step, "glow_step": glow_step, "gpt_prior_step": gpt_prior_step, "gpt_prior_sample": gpt_prior_sample,
             "mae_step": mae_step, "dcgan_step": dcgan_step, "dcgan_d_step": lambda: dcgan_d_step(False),
             "dcgan_r1_step": lambda: dcgan_d_step(True), "vae_mlp_step": vae_mlp_step, "unet_ddpm_step": unet_ddpm_step,
             "unet_ddim_sample": unet_ddim_sample,
             "edm_heun_sample": lambda: sampling("edm", 64), "edm_heun_sample_b1": lambda: sampling("edm", 1),
             "flow_sample": lambda: sampling("flow", 64), "flow_sample_b1": lambda: sampling("flow", 1),
             "edm_dpmpp_2m_sample": lambda: sampling("edm", 64, "dpmpp_2m"),
             "edm_euler_ancestral_sample": lambda: sampling("edm", 64, "euler_ancestral"),
             "vp_ddpm_sample": lambda: sampling("vp", 64),
             "ve_euler_maruyama_sample": lambda: sampling("ve", 64, "euler_maruyama"),
             "ve_pc_sample": lambda: sampling("ve", 64, "pc")}
seconds, params = workloads[name]()
peak = [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print("%s %d %.9g %s params=%d" % (name, threads, seconds, peak, params))
