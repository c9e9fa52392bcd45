# PyTorch twin of gen.models.stylegan (modulated convolutions, the default of
# examples/gan/stylegan.lua) and of one step of gen.gan.stylegan.step: the same layers, parameter
# shapes and counts, equalized learning rate, non-fused modulated convolutions (x * s, the shared
# weight's convolution, * demodulation), nearest upsampling of features and bilinear upsampling
# of the RGB skips, style mixing with probability 0.9, the non-saturating logistic loss, Adam
# (0, 0.99) and an EMA of G. With r1 > 0 and r1_every = 1 the step adds R1 = gamma / 2
# E ||grad_x D(x)||^2 (create_graph) to D's loss.
import math

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2)


def lrelu(x):
    return F.leaky_relu(x, 0.2) * SQRT2


class EqLinear(torch.nn.Module):
    def __init__(self, cin, cout, lr_mul=1.0, bias_init=0.0):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = torch.nn.Parameter(torch.full([cout], bias_init / lr_mul))
        self.gain, self.lr_mul = lr_mul / math.sqrt(cin), lr_mul

    def forward(self, x):
        return F.linear(x, self.weight * self.gain, self.bias * self.lr_mul)


class EqConv(torch.nn.Module):
    def __init__(self, cin, cout, k, bias=True):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = torch.nn.Parameter(torch.zeros(cout)) if bias else None
        self.gain, self.pad = 1 / math.sqrt(cin * k * k), k // 2

    def forward(self, x):
        return F.conv2d(x, self.weight * self.gain, self.bias, padding=self.pad)


def modconv(x, weight, s, demodulate, padding):
    n, cin = s.shape
    cout, _, kh, kw = weight.shape
    y = F.conv2d(x * s.view(n, cin, 1, 1), weight, padding=padding)
    if not demodulate:
        return y
    d = (torch.matmul(s * s, (weight * weight).view(cout, cin, kh * kw).sum(2).t()) + 1e-8).rsqrt()
    return y * d.view(n, cout, 1, 1)


class StyledConv(torch.nn.Module):
    def __init__(self, cin, cout, w_dim, up):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.gain, self.up = 1 / math.sqrt(cin * 9), up
        self.affine = EqLinear(w_dim, cin, bias_init=1.0)
        self.noise_strength = torch.nn.Parameter(torch.zeros(cout))
        self.bias = torch.nn.Parameter(torch.zeros(cout))

    def forward(self, x, w):
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = modconv(x, self.weight * self.gain, self.affine(w), True, 1)
        noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3])
        x = x + noise * self.noise_strength.view(1, -1, 1, 1)
        return lrelu(x + self.bias.view(1, -1, 1, 1))


class ToRGB(torch.nn.Module):
    def __init__(self, cin, channels, w_dim):
        super().__init__()
        self.affine = EqLinear(w_dim, cin, bias_init=1.0)
        self.weight = torch.nn.Parameter(torch.randn(channels, cin, 1, 1))
        self.gain = 1 / math.sqrt(cin)
        self.bias = torch.nn.Parameter(torch.zeros(channels))

    def forward(self, x, w):
        return modconv(x, self.weight * self.gain, self.affine(w), False, 0) + self.bias.view(1, -1, 1, 1)


class Generator(torch.nn.Module):
    def __init__(self, z_dim=128, width=64, layers=4, channels=1):
        super().__init__()
        widths = [2 * width, 2 * width, width, width // 2]
        self.z_dim, self.num_ws = z_dim, 2 * len(widths)
        self.mapping = torch.nn.ModuleList([EqLinear(z_dim, z_dim, lr_mul=0.01) for _ in range(layers)])
        self.register_buffer("w_avg", torch.zeros(z_dim))
        self.const = torch.nn.Parameter(torch.randn(widths[0], 4, 4))
        convs, rgbs = [], []
        for i, c in enumerate(widths):
            if i > 0:
                convs.append(StyledConv(widths[i - 1], c, z_dim, True))
            convs.append(StyledConv(c, c, z_dim, False))
            rgbs.append(ToRGB(c, channels, z_dim))
        self.convs, self.to_rgb = torch.nn.ModuleList(convs), torch.nn.ModuleList(rgbs)

    def map(self, z):
        x = z * ((z * z).mean(1, keepdim=True) + 1e-8).rsqrt()
        for layer in self.mapping:
            x = lrelu(layer(x))
        return x

    def forward(self, z, mixing):
        w = self.map(z)
        with torch.no_grad():
            self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, 0.995))
        cut, w2 = self.num_ws, w
        if mixing > 0 and torch.rand([]).item() < mixing:
            cut = int(torch.randint(1, self.num_ws, []).item())
            w2 = self.map(torch.randn_like(z))
        ws = [w if i < cut else w2 for i in range(self.num_ws)]
        x = self.const.unsqueeze(0).expand(z.shape[0], -1, -1, -1)
        x = self.convs[0](x, ws[0])
        img = self.to_rgb[0](x, ws[1])
        wi = 1
        for b in range(1, len(self.to_rgb)):
            x = self.convs[2 * b - 1](x, ws[wi])
            x = self.convs[2 * b](x, ws[wi + 1])
            img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False) + self.to_rgb[b](x, ws[wi + 2])
            wi += 2
        return img[:, :, 2:30, 2:30]


class DBlock(torch.nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv0, self.conv1, self.skip = EqConv(cin, cin, 3), EqConv(cin, cout, 3), EqConv(cin, cout, 1, bias=False)

    def forward(self, x):
        y = self.skip(F.avg_pool2d(x, 2))
        x = F.avg_pool2d(lrelu(self.conv1(lrelu(self.conv0(x)))), 2)
        return (x + y) * (1 / SQRT2)


def minibatch_stddev(x, group=4):
    n, c, h, w = x.shape
    g = min(group, n)
    while n % g:
        g -= 1
    y = x.view(g, n // g, c, h, w)
    y = y - y.mean(0, keepdim=True)
    s = ((y * y).mean(0) + 1e-8).pow(0.5).view(n // g, -1).mean(1)
    return torch.cat([x, s.view(n // g, 1, 1, 1).expand(n // g, 1, h, w).repeat(g, 1, 1, 1)], 1)


class Discriminator(torch.nn.Module):
    def __init__(self, width=64, channels=1):
        super().__init__()
        widths = [2 * width, 2 * width, width, width // 2]
        self.from_rgb = EqConv(channels, widths[3], 1)
        self.blocks = torch.nn.ModuleList([DBlock(widths[i], widths[i - 1]) for i in (3, 2, 1)])
        top = widths[0]
        self.conv, self.fc, self.out = EqConv(top + 1, top, 3), EqLinear(top * 16, top), EqLinear(top, 1)

    def forward(self, x):
        x = F.pad(x + 1, (2, 2, 2, 2)) - 1
        x = lrelu(self.from_rgb(x))
        for b in self.blocks:
            x = b(x)
        x = lrelu(self.conv(minibatch_stddev(x)))
        return self.out(lrelu(self.fc(x.flatten(1))))


def make_step(batch=32, r1=0.0):
    G, D = Generator(), Discriminator()
    G_ema = [p.detach().clone() for p in G.parameters()]
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0, 0.99), eps=1e-8)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0, 0.99), eps=1e-8)
    x = torch.rand(batch, 1, 28, 28) * 2 - 1
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)

    def step():
        fake = G(torch.randn(batch, G.z_dim), 0.9)
        opt_d.zero_grad(set_to_none=True)
        loss_d = F.binary_cross_entropy_with_logits(D(x), ones) + F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
        total = loss_d
        if r1 > 0:
            real = x.detach().requires_grad_()
            (g,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
            total = loss_d + r1 / 2 * g.pow(2).sum([1, 2, 3]).mean()
        total.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        loss_g = F.binary_cross_entropy_with_logits(D(fake), ones)
        loss_g.backward()
        opt_g.step()
        with torch.no_grad():
            for e, p in zip(G_ema, G.parameters()):
                e.lerp_(p, 1 - 0.999)
        return loss_d.item() + loss_g.item()

    return step, sum(p.numel() for m in (G, D) for p in m.parameters())
