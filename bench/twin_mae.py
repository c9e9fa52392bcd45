# PyTorch twin of gen's masked autoencoder (gen.models.mae, gen.autoencoder.mae): the same ViT
# encoder and decoder layer by layer (same parameter count and names), the same masking (argsort
# of uniform noise per sample), the same loss on masked patches and the same AdamW settings.
# bench/e2e.py imports it for the mae_step workload; run alone it times the step:
#   OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 bench/twin_mae.py [THREADS]
import sys
import time

import torch
import torch.nn as nn

# the example's defaults (examples/autoencoder/mae.lua)
CONFIG = dict(resolution=28, channels=1, patch=4, dim=128, depth=4, heads=4, decoder_dim=64, decoder_depth=2,
              decoder_heads=4, mlp_ratio=4)
BATCH, MASK_RATIO = 128, 0.75


def sincos_1d(dim, pos):
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    out = pos.reshape(-1)[:, None] * omega[None, :]
    return torch.cat([torch.sin(out), torch.cos(out)], 1)


def sincos_2d(dim, size, cls):
    g = torch.arange(size, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), 0)
    emb = torch.cat([sincos_1d(dim // 2, grid[0]), sincos_1d(dim // 2, grid[1])], 1)
    if cls:
        emb = torch.cat([torch.zeros(1, dim, dtype=torch.float64), emb], 0)
    return emb.float()


class Block(nn.Module):  # gen.nn.blocks.TransformerBlock
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


def patchify(x, p):
    b, c, h, w = x.shape
    return x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)


class MAE(nn.Module):
    def __init__(self, resolution, channels, patch, dim, depth, heads, decoder_dim, decoder_depth, decoder_heads, mlp_ratio):
        super().__init__()
        self.patch, grid = patch, resolution // patch
        self.num_patches = grid * grid
        # encoder (gen.models.vit.ViT: patch embedding, [CLS], sin-cos positions, blocks, norm)
        self.patch_embed = nn.Linear(patch * patch * channels, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.register_buffer("pos", sincos_2d(dim, grid, True))
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        # decoder
        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.randn(1, 1, decoder_dim) * 0.02)
        self.register_buffer("decoder_pos", sincos_2d(decoder_dim, grid, True))
        self.decoder_blocks = nn.ModuleList([Block(decoder_dim, decoder_heads, mlp_ratio) for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, patch * patch * channels)

    def random_masking(self, n, mask_ratio):
        L = self.num_patches
        keep = int(L * (1 - mask_ratio))
        ids_shuffle = torch.argsort(torch.rand(n, L), dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        mask = torch.ones(n, L)
        mask[:, :keep] = 0
        return ids_shuffle[:, :keep], ids_restore, torch.gather(mask, 1, ids_restore)

    def forward(self, x, mask_ratio):
        t = self.patch_embed(patchify(x, self.patch)) + self.pos[1:]
        b, L, d = t.shape
        ids_keep, ids_restore, mask = self.random_masking(b, mask_ratio)
        t = torch.gather(t, 1, ids_keep.unsqueeze(-1).expand(b, ids_keep.shape[1], d))
        t = torch.cat([(self.cls_token + self.pos[:1]).expand(b, 1, d), t], 1)
        for blk in self.blocks:
            t = blk(t)
        t = self.decoder_embed(self.norm(t))
        dd = t.shape[2]
        tokens = torch.cat([t[:, 1:], self.mask_token.expand(b, L - ids_keep.shape[1], dd)], 1)
        tokens = torch.gather(tokens, 1, ids_restore.unsqueeze(-1).expand(b, L, dd))
        h = torch.cat([t[:, :1], tokens], 1) + self.decoder_pos
        for blk in self.decoder_blocks:
            h = blk(h)
        return self.decoder_pred(self.decoder_norm(h))[:, 1:], mask


def mae_loss(model, x, mask_ratio):
    pred, mask = model(x, mask_ratio)
    target = patchify(x, model.patch)
    per_patch = ((pred - target) ** 2).mean(-1)
    return (per_patch * mask).sum() / mask.sum()


def make_step():
    """The training step of examples/autoencoder/mae.lua: returns (step function, parameter count)."""
    model = MAE(**CONFIG)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
    x = torch.rand(BATCH, CONFIG["channels"], CONFIG["resolution"], CONFIG["resolution"])

    def step():
        opt.zero_grad(set_to_none=True)
        loss = mae_loss(model, x, MASK_RATIO)
        loss.backward()
        opt.step()
        return loss.item()

    return step, sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    torch.manual_seed(0)
    step, params = make_step()
    for _ in range(2):
        step()
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    print("mae_step torch %.4f s (median of 10), %d parameters" % (times[4], params))
