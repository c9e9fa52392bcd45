# gen.metrics.linear_probe and gen.metrics.knn (lua/gen/metrics/probe.lua) in PyTorch, step for
# step, so a twin's frozen features are scored by the same instrument as gen's:
#   linear probe: features standardized by the training set's mean and (unbiased) standard
#     deviation + 1e-6; a zero-initialized softmax regression trained by AdamW (lr 1e-3, betas
#     0.9/0.999, eps 1e-8, decoupled weight decay 1e-4) on the mean cross-entropy of batches of 256
#     (the last one partial), 20 epochs in the orders gen.randperm draws from gen.Generator(0)
#     (replayed by gen_random.py), test accuracy by argmax (first index on ties)
#   kNN: L2-normalized features (norm + 1e-12), cosine similarities by matmul, the k = 20 most
#     similar training points (ties to the earlier one), votes = summed similarities per class
#     added in that order, the largest vote wins (first class on ties)
# Labels here are 0-based int64 (gen's are 1-based: the same classes shifted by one).
#   OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 bench/twin_probe.py check
# prints both on the probe-check features of bench/twin_probe_check.lua (run it with bin/gen to
# compare).
import sys

import numpy as np
import torch
import torch.nn.functional as F

from gen_random import Generator


def extract_features(fn, images, batch=500):
    """fn(x) over uint8 images {N, 1, H, W} in batches, x scaled to [0, 1] (gen.metrics.extract_features)."""
    parts = []
    with torch.no_grad():
        for i in range(0, images.shape[0], batch):
            parts.append(fn(images[i:i + batch].float() / 255).contiguous())
    return torch.cat(parts, 0)


def linear_probe(train_f, train_y, test_f, test_y, epochs=20, batch=256, lr=1e-3, weight_decay=1e-4, seed=0):
    """-> test accuracy, train accuracy."""
    classes = int(max(train_y.max().item(), test_y.max().item())) + 1
    train_f, test_f = train_f.float(), test_f.float()
    mean = train_f.mean(0, keepdim=True)
    std = train_f.std(0, keepdim=True) + 1e-6
    xtr, xte = (train_f - mean) / std, (test_f - mean) / std
    n, d = xtr.shape
    w = torch.zeros(classes, d, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.AdamW([w, b], lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    g = Generator(seed)
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.from_numpy(g.randperm(n))
            for i in range(0, n, batch):
                idx = order[i:i + batch]
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(F.linear(xtr[idx], w, b), train_y[idx])
                loss.backward()
                opt.step()
    with torch.no_grad():
        test_acc = (F.linear(xte, w, b).argmax(1) == test_y).float().mean().item()
        train_acc = (F.linear(xtr, w, b).argmax(1) == train_y).float().mean().item()
    return test_acc, train_acc


def knn(train_f, train_y, test_f, test_y, k=20, batch=256):
    """-> test accuracy."""
    def normalize(f):
        f = f.float()
        return f / ((f * f).sum(1, keepdim=True).sqrt() + 1e-12)

    tr, te = normalize(train_f), normalize(test_f)
    classes = int(max(train_y.max().item(), test_y.max().item())) + 1
    correct = 0
    with torch.no_grad():
        for i in range(0, te.shape[0], batch):
            q = te[i:i + batch]
            sims = q @ tr.t()
            # a stable descending sort keeps equal similarities in training order, as gen's top-k
            v, idx = torch.sort(sims, dim=1, descending=True, stable=True)
            v, idx = v[:, :k], idx[:, :k]
            votes = torch.zeros(q.shape[0], classes)
            for j in range(k):  # one neighbour at a time: gen's scatter_add adds them in rank order
                votes.scatter_add_(1, train_y[idx[:, j]].view(-1, 1), v[:, j:j + 1])
            correct += (votes.argmax(1) == test_y[i:i + q.shape[0]]).sum().item()
    return correct / te.shape[0]


def check_features():
    """The features of bench/twin_probe_check.lua, drawn from the same gen streams: -> (name, train
    features, train labels, test features, test labels) for raw Fashion-MNIST pixels and for
    clustered random 128-d features."""
    from twins_quality import load_images, load_labels
    sets = []
    train = load_images()[:10000].reshape(10000, -1)
    test = load_images("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").reshape(10000, -1)
    ytr = load_labels()[:10000]
    yte = load_labels("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
    sets.append(("raw pixels", train.float() / 255, ytr, test.float() / 255, yte))
    # 10 random centres in [0, 1]^128 and uniform noise around them, labels cycling 1..10
    centres = Generator(1).rand(10, 128)
    n = 12000
    labels = np.arange(n) % 10
    feats = Generator(2).rand(n, 128) + centres[labels] * np.float32(0.25)
    f, y = torch.from_numpy(feats), torch.from_numpy(labels.astype(np.int64))
    sets.append(("random clusters", f[:8000], y[:8000], f[8000:], y[8000:]))
    return sets


if __name__ == "__main__" and sys.argv[1:] == ["check"]:
    torch.set_num_threads(1)
    for name, ftr, ytr, fte, yte in check_features():
        test_acc, train_acc = linear_probe(ftr, ytr, fte, yte)
        print("%s: features sum %.6f; linear probe test %.4f%% train %.4f%%; kNN %.4f%%"
              % (name, ftr.double().sum().item() + fte.double().sum().item(), 100 * test_acc, 100 * train_acc,
                 100 * knn(ftr, ytr, fte, yte)), flush=True)
