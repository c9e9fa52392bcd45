# PyTorch twin of gen's masked autoencoder (gen.models.mae, gen.autoencoder.mae): the same ViT
# encoder and decoder layer by layer (same parameter count and names), the same masking (argsort
# of uniform noise per sample), the same loss on masked patches and the same AdamW settings.
# bench/e2e.py imports it for the mae_step workload; run alone it times the step:
#   OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 bench/twin_mae.py [THREADS]
# or trains as `bin/gen examples/autoencoder/mae.lua --steps N --probe` does and reports the same
# numbers (test MSE on masked patches, linear probe and kNN of the [CLS] features):
#   OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 bench/twin_mae.py train --steps 1000 \
#       [--seed 0] [--threads 1] [--probe-train 10000]
# `score CHECKPOINT [--images N]` scores a gen checkpoint of mae.lua with the twin's code (the same
# lines as `bin/gen bench/twin_mae_check.lua CHECKPOINT N`, which scores it with gen's).
# What comes from gen's own random streams (bench/gen_random.py, bit for bit): each epoch's data
# order (gen.data.DataLoader with seed = --seed), the test masks (gen.Generator(2)) and the linear
# probe's batch order, so both libraries see the same batches and are scored on the same masks.
# What does not: the initial weights and the training masks (PyTorch's generator seeded with --seed).
import argparse
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn

from gen_random import Generator
from twin_probe import extract_features, knn, linear_probe
from twins_quality import load_images, load_labels

# the example's defaults (examples/autoencoder/mae.lua)
CONFIG = dict(resolution=28, channels=1, patch=4, dim=128, depth=4, heads=4, decoder_dim=64, decoder_depth=2,
              decoder_heads=4, mlp_ratio=4)
BATCH, MASK_RATIO = 128, 0.75
TEST_IMAGES = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
TEST_LABELS = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"


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

    def random_masking(self, n, mask_ratio, noise=None):
        L = self.num_patches
        keep = int(L * (1 - mask_ratio) + 1e-9)
        if noise is None:
            ids_shuffle = torch.argsort(torch.rand(n, L), dim=1)
        else:  # given noise: gen's stable argsort (ties keep their order)
            ids_shuffle = torch.argsort(noise, dim=1, stable=True)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        mask = torch.ones(n, L)
        mask[:, :keep] = 0
        return ids_shuffle[:, :keep], ids_restore, torch.gather(mask, 1, ids_restore)

    def encode(self, t):  # gen.models.vit.ViT:encode: [CLS] first, the blocks, the norm
        b, _, d = t.shape
        t = torch.cat([(self.cls_token + self.pos[:1]).expand(b, 1, d), t], 1)
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)

    def features(self, x):  # gen.models.mae.MAE:features with pool = "cls": the [CLS] output, nothing masked
        return self.encode(self.patch_embed(patchify(x, self.patch)) + self.pos[1:])[:, 0]

    def forward(self, x, mask_ratio, noise=None):
        t = self.patch_embed(patchify(x, self.patch)) + self.pos[1:]
        b, L, d = t.shape
        ids_keep, ids_restore, mask = self.random_masking(b, mask_ratio, noise)
        t = torch.gather(t, 1, ids_keep.unsqueeze(-1).expand(b, ids_keep.shape[1], d))
        t = self.decoder_embed(self.encode(t))
        dd = t.shape[2]
        tokens = torch.cat([t[:, 1:], self.mask_token.expand(b, L - ids_keep.shape[1], dd)], 1)
        tokens = torch.gather(tokens, 1, ids_restore.unsqueeze(-1).expand(b, L, dd))
        h = torch.cat([t[:, :1], tokens], 1) + self.decoder_pos
        for blk in self.decoder_blocks:
            h = blk(h)
        return self.decoder_pred(self.decoder_norm(h))[:, 1:], mask


def mae_loss(model, x, mask_ratio, noise=None):
    pred, mask = model(x, mask_ratio, noise)
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


# Pixels as gen's loader scales them (csrc/io_pixels.c): a table of the 256 values in double.
PIXELS = torch.from_numpy((np.arange(256) / 255.0).astype(np.float32))


def test_mse(model, images, mask_ratio, batch=500):
    """gen.autoencoder.mae.test_mse with generator = gen.Generator(2): the per-pixel MSE over the
    masked patches of uint8 images {N, 1, H, W} (scaled by / 255), and its PSNR in dB."""
    g = Generator(2)
    total, count = 0.0, 0.0
    with torch.no_grad():
        for i in range(0, images.shape[0], batch):
            x = images[i:i + batch].float() / 255
            noise = torch.from_numpy(g.rand(x.shape[0], model.num_patches))
            pred, mask = model(x, mask_ratio, noise)
            target = patchify(x, model.patch)
            total += (((pred - target) ** 2).sum(2) * mask).sum().item()
            count += mask.sum().item() * target.shape[2]
    mse = total / count
    return mse, 10 * math.log10(1 / mse)


def train(args):
    """examples/autoencoder/mae.lua --steps N [--probe]: batch 128 of shuffled epochs without the
    last partial batch, images in [0, 1], AdamW on every parameter (no exclusions, as gen.optim.AdamW)."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = MAE(**CONFIG)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=args.weight_decay)
    images, labels = load_images(), load_labels()
    n = images.shape[0]
    per_epoch = n // args.batch
    print("torch twin of mae.lua: %d parameters, %d steps of batch %d (%d per epoch), mask ratio %g, %d thread(s)"
          % (sum(p.numel() for p in model.parameters()), args.steps, args.batch, per_epoch, args.mask_ratio, args.threads),
          flush=True)
    step, t0, window = 0, time.perf_counter(), []
    while step < args.steps:
        epoch = step // per_epoch + 1
        order = torch.from_numpy(Generator(args.seed * 1000003 + epoch).randperm(n))  # gen.data.DataLoader{seed}
        for k in range(step % per_epoch, per_epoch):
            x = PIXELS[images[order[k * args.batch:(k + 1) * args.batch]].long()]
            opt.zero_grad(set_to_none=True)
            loss = mae_loss(model, x, args.mask_ratio)
            loss.backward()
            opt.step()
            step += 1
            window.append(loss.item())
            if step % args.log_every == 0 or step == args.steps:
                print("step %d  loss %.5f (mean of the last %d)  %.1f s" % (step, sum(window) / len(window), len(window),
                                                                         time.perf_counter() - t0), flush=True)
                window = []
            if step == args.steps:
                break
    seconds = time.perf_counter() - t0
    print("trained %d steps in %.1f s (%.3f s/step)" % (step, seconds, seconds / step), flush=True)
    test = load_images(TEST_IMAGES)[:args.test_images]
    mse, psnr = test_mse(model, test, args.mask_ratio)
    print("test (%d images): MSE on masked patches %.5f (PSNR %.2f dB), mask ratio %g" % (test.shape[0], mse, psnr, args.mask_ratio),
          flush=True)
    t1 = time.perf_counter()
    ntr = min(args.probe_train, n)
    ftr = extract_features(model.features, images[:ntr])
    fte = extract_features(model.features, test)
    ytr, yte = labels[:ntr], load_labels(TEST_LABELS)[:test.shape[0]]
    lin, _ = linear_probe(ftr, ytr, fte, yte)
    near = knn(ftr, ytr, fte, yte, k=20)
    print("mae (torch twin): linear probe %.2f%%  kNN (k = 20, cosine) %.2f%%  (%d-d features; trained on %d, tested on %d images; %.1f s)"
          % (100 * lin, 100 * near, ftr.shape[1], ntr, fte.shape[0], time.perf_counter() - t1), flush=True)


def load_gen_checkpoint(model, path):
    """Loads the model part of a gen checkpoint of examples/autoencoder/mae.lua (safetensors, read by
    hand: the format is a length, a JSON header and the raw tensors) into the twin."""
    import json
    import struct
    with open(path, "rb") as f:
        data = f.read()
    size = struct.unpack("<Q", data[:8])[0]
    header, body = json.loads(data[8:8 + size]), 8 + size
    rename = {"encoder.pos_embed.pos": "pos", "decoder_pos.pos": "decoder_pos"}
    state = {}
    for key, t in header.items():
        if not key.startswith("model/"):
            continue
        if t["dtype"] != "F32":
            sys.exit("%s: %s is %s, expected F32" % (path, key, t["dtype"]))
        a, b = t["data_offsets"]
        name = key[len("model/"):]
        name = rename.get(name, name[len("encoder."):] if name.startswith("encoder.") else name)
        state[name] = torch.from_numpy(np.frombuffer(data, np.float32, (b - a) // 4, body + a).copy()).reshape(t["shape"])
    model.load_state_dict(state, strict=True)


def score(args):
    """The test MSE and probe of a gen checkpoint computed by the twin's code, to compare with
    bench/twin_mae_check.lua (gen's code on the same checkpoint)."""
    torch.set_num_threads(args.threads)
    model = MAE(**CONFIG)
    load_gen_checkpoint(model, args.checkpoint)
    n = args.images
    test, images = load_images(TEST_IMAGES)[:n], load_images()[:n]
    mse, psnr = test_mse(model, test, MASK_RATIO)
    print("torch: test MSE on masked patches %.7f (PSNR %.4f dB)" % (mse, psnr))
    ftr, fte = extract_features(model.features, images), extract_features(model.features, test)
    print("torch: feature sums %.6f %.6f" % (ftr.double().sum().item(), fte.double().sum().item()))
    ytr, yte = load_labels()[:n], load_labels(TEST_LABELS)[:n]
    lin, lin_train = linear_probe(ftr, ytr, fte, yte)
    print("torch: linear probe %.4f%% (train %.4f%%)  kNN %.4f%%" % (100 * lin, 100 * lin_train, 100 * knn(ftr, ytr, fte, yte)))


def time_step(threads):
    torch.set_num_threads(threads)
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


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "train":
        ap = argparse.ArgumentParser(prog="twin_mae.py train")
        ap.add_argument("--steps", type=int, default=1000)
        ap.add_argument("--batch", type=int, default=BATCH)
        ap.add_argument("--lr", type=float, default=1e-3)
        ap.add_argument("--weight-decay", type=float, default=0.05)
        ap.add_argument("--mask-ratio", type=float, default=MASK_RATIO)
        ap.add_argument("--seed", type=int, default=0)
        ap.add_argument("--threads", type=int, default=1)
        ap.add_argument("--probe-train", type=int, default=10000)
        ap.add_argument("--test-images", type=int, default=10000)
        ap.add_argument("--log-every", type=int, default=100)
        train(ap.parse_args(sys.argv[2:]))
    elif len(sys.argv) > 1 and sys.argv[1] == "score":
        ap = argparse.ArgumentParser(prog="twin_mae.py score")
        ap.add_argument("checkpoint")
        ap.add_argument("--images", type=int, default=1000)
        ap.add_argument("--threads", type=int, default=1)
        score(ap.parse_args(sys.argv[2:]))
    else:
        time_step(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
