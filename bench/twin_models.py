# PyTorch twins of gen.models shared by bench/e2e.py (speed) and bench/twins_quality.py (quality),
# and what the twin scripts share (write_safetensors).
import json
import math
import struct

import torch
import torch.nn.functional as F
from torch import nn


def write_safetensors(path, tensors):
    """float32 tensors in a safetensors file (gen.load reads it: a length, a JSON header, raw data)."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().float().contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


# ---------------------------------------------------------------- DCGAN (gen.models.dcgan)
def dcgan_init(seq):
    for m in seq:
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1, 0.02)
        elif hasattr(m, "weight"):
            nn.init.normal_(m.weight, 0, 0.02)
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)
    return seq


def dcgan_generator(z_dim=100, w=64):
    return dcgan_init(nn.Sequential(
        nn.Linear(z_dim, 2 * w * 49, bias=False), nn.BatchNorm1d(2 * w * 49), nn.ReLU(), nn.Unflatten(1, (2 * w, 7, 7)),
        nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
        nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh()))


def dcgan_discriminator(w=64):
    return dcgan_init(nn.Sequential(
        nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(2 * w * 49, 1)))


class DCGANUpdate:
    """One step of examples/gan/dcgan.lua: a discriminator update on real and generated images, then
    a generator update (non-saturating), BCE on logits, Adam(2e-4, betas 0.5/0.999) for both."""

    def __init__(self, batch=64, z_dim=100):
        self.G, self.D, self.batch, self.z_dim = dcgan_generator(z_dim), dcgan_discriminator(), batch, z_dim
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.real, self.fake = torch.ones(batch, 1), torch.zeros(batch, 1)

    def __call__(self, x):
        generated = self.G(torch.randn(self.batch, self.z_dim))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d = F.binary_cross_entropy_with_logits(self.D(x), self.real) + \
            F.binary_cross_entropy_with_logits(self.D(generated.detach()), self.fake)
        loss_d.backward()
        self.opt_d.step()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g = F.binary_cross_entropy_with_logits(self.D(generated), self.real)
        loss_g.backward()
        self.opt_g.step()
        return loss_d, loss_g


# ---------------------------------------------------------------- MLP VAE (gen.models.vae.MLP)
class VAE(nn.Module):
    def __init__(self, d=784, h=400, z=20):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(d, h), nn.ReLU())
        self.mu, self.logvar = nn.Linear(h, z), nn.Linear(h, z)
        self.decoder = nn.Sequential(nn.Linear(z, h), nn.ReLU(), nn.Linear(h, d))

    def forward(self, x):
        h = self.encoder(x.flatten(1))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + (logvar * 0.5).exp() * torch.randn_like(mu)
        return self.decoder(z).view(x.shape), mu, logvar


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
    """gen.models.unet.UNet; with classes > 0 a class embedding (classes + 1 rows, the last one
    "no class") is added to the time embedding. Labels are 0-based here (gen's minus one)."""

    def __init__(self, channels=1, widths=(32, 64, 64), tdim=128, heads=4, groups=8, classes=0):
        super().__init__()
        self.widths = widths
        self.time_mlp = nn.Sequential(nn.Linear(widths[0], tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.class_embed = nn.Embedding(classes + 1, tdim) if classes > 0 else None
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

    def forward(self, x, t, labels=None):
        temb = self.time_mlp(timestep_embedding(t, self.widths[0]))
        if self.class_embed is not None:
            temb = temb + self.class_embed(labels)
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
