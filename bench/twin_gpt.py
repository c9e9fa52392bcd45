# PyTorch twin of gen's GPT prior (gen.models.gpt.GPT, examples/autoregressive/gpt_prior.lua): the
# same architecture layer by layer (same parameter names and count: token table, learned
# positions, class-embedding prefix, pre-norm blocks with causal self-attention, GELU MLP, final
# LayerNorm, linear head), the same training step (cross-entropy over the 49 codes of a 7x7 grid,
# AdamW) and the same sampling (a preallocated key/value cache, one token per forward, softmax and
# a multinomial draw per token). PyTorch 1.13 has no fused attention: softmax(QK^T / sqrt(d)) V
# with a causal mask, as minGPT writes it.
# bench/e2e.py imports it for the gpt_prior_step and gpt_prior_sample workloads; run alone it
# prints the wall and CPU time (time.process_time, all threads) per step and per sample, the
# counterpart of bench/gpt_prior.lua (CPU time is what a host shared by other jobs does not blur):
#   OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 bench/twin_gpt.py [THREADS [ITERS]]
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# the example's defaults: codes of a 7x7 grid from a K = 512 codebook, 10 classes
CONFIG = dict(vocab=512, block_size=49, dim=192, depth=4, heads=6, classes=10, dropout=0.1)
BATCH, SAMPLES = 64, 64


class Block(nn.Module):  # gen.nn.blocks.TransformerBlock with gen.nn.MultiheadAttention's parameters
    def __init__(self, dim, heads, p):
        super().__init__()
        self.heads, self.p = heads, p
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.Module()
        self.attn.in_proj_weight = nn.Parameter(torch.randn(3 * dim, dim) * 0.02)
        self.attn.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.attn.out_proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def attend(self, h, cache=None, pos=0):
        b, t, e = h.shape
        hd = e // self.heads
        q, k, v = F.linear(h, self.attn.in_proj_weight, self.attn.in_proj_bias).split(e, 2)
        q, k, v = (y.view(b, t, self.heads, hd).transpose(1, 2) for y in (q, k, v))
        if cache is not None:  # write the new keys and values after the cached ones
            cache[0][:, :, pos:pos + t] = k
            cache[1][:, :, pos:pos + t] = v
            k, v = cache[0][:, :, :pos + t], cache[1][:, :, :pos + t]
        s = q @ k.transpose(-1, -2) * (1.0 / math.sqrt(hd))
        if t > 1:
            n = k.shape[2]
            s = s.masked_fill(torch.ones(t, n, dtype=torch.bool).triu(n - t + 1), float("-inf"))
        y = torch.softmax(s, -1) @ v
        return self.attn.out_proj(y.transpose(1, 2).reshape(b, t, e))

    def forward(self, x, cache=None, pos=0):
        x = x + F.dropout(self.attend(self.norm1(x), cache, pos), self.p, self.training)
        return x + F.dropout(self.mlp(self.norm2(x)), self.p, self.training)


class GPT(nn.Module):
    def __init__(self, vocab, block_size, dim, depth, heads, classes, dropout):
        super().__init__()
        self.depth, self.heads, self.dim, self.block_size, self.p = depth, heads, dim, block_size, dropout
        self.tok_emb = nn.Embedding(vocab, dim)
        self.pos_emb = nn.Module()
        self.pos_emb.pos = nn.Parameter(torch.randn(block_size, dim) * 0.02)
        self.class_emb = nn.Embedding(classes, dim)
        self.blocks = nn.ModuleList([Block(dim, heads, dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, x, labels=None, caches=None, pos=0):
        h = self.tok_emb(x)
        if pos == 0:  # the class prefix goes in first
            h = torch.cat([self.class_emb(labels).unsqueeze(1), h], 1)
        h = h + self.pos_emb.pos[pos:pos + h.shape[1]]
        h = F.dropout(h, self.p, self.training)
        for i, blk in enumerate(self.blocks):
            h = blk(h, caches[i] if caches else None, pos)
        return self.head(self.norm(h))


def make_step():
    model = GPT(**CONFIG)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.01)
    codes = torch.randint(0, CONFIG["vocab"], (BATCH, 49))
    labels = torch.randint(0, CONFIG["classes"], (BATCH,))

    def step():
        opt.zero_grad()
        logits = model(codes[:, :48], labels)
        loss = F.cross_entropy(logits.reshape(-1, CONFIG["vocab"]), codes.reshape(-1))
        loss.backward()
        opt.step()
        return loss.item()

    return step, sum(p.numel() for p in model.parameters())


def make_sample():
    model = GPT(**CONFIG).eval()
    labels = torch.randint(0, CONFIG["classes"], (SAMPLES,))
    hd = CONFIG["dim"] // CONFIG["heads"]
    gen = torch.Generator().manual_seed(0)

    @torch.no_grad()
    def sample():
        caches = [(torch.zeros(SAMPLES, CONFIG["heads"], CONFIG["block_size"], hd),
                   torch.zeros(SAMPLES, CONFIG["heads"], CONFIG["block_size"], hd)) for _ in range(CONFIG["depth"])]
        out = torch.zeros(SAMPLES, 49, dtype=torch.long)
        x, pos = torch.zeros(SAMPLES, 0, dtype=torch.long), 0
        for t in range(49):
            logits = model(x, labels, caches, pos)[:, -1]
            pos += x.shape[1] + (1 if t == 0 else 0)
            x = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)
            out[:, t] = x[:, 0]
        return out

    return sample, sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    iters = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    torch.manual_seed(0)
    for name, make in (("step", make_step), ("sample", make_sample)):
        fn, params = make()
        fn()
        walls, cpus = [], []
        for _ in range(iters):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        walls.sort()
        cpus.sort()
        print("torch %s: wall %.1f ms, CPU %.1f ms (medians of %d; %d parameters)" % (
            name, walls[(iters - 1) // 2] * 1e3, cpus[(iters - 1) // 2] * 1e3, iters, params))
