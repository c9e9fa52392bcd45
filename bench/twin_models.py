# PyTorch twins of gen.models shared by bench/e2e.py (speed) and bench/twins_quality.py (quality).
import torch
from torch import nn


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
