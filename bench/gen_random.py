# gen's random streams in numpy, bit for bit: Philox4x32-10 blocks (csrc/random.c), float32
# uniform fills (gen.rand) and permutations (gen.randperm, Fisher-Yates in csrc/bind/bind_tensor.c).
# The PyTorch twins use it where gen's randomness is part of the measurement rather than of the
# model: the data order of an epoch, fixed test masks, the linear probe's batch order. Then both
# libraries see the same batches and are scored on the same masks.
import numpy as np

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = 0x9E3779B9, 0xBB67AE85
LOW = np.uint64(0xFFFFFFFF)
S32 = np.uint64(32)


def philox(seed, blocks):
    """The four 32-bit words of each block of seed's stream: {len(blocks), 4} uint64 (< 2^32)."""
    blocks = np.asarray(blocks, dtype=np.uint64)
    seed &= (1 << 64) - 1
    c0, c1 = blocks & LOW, blocks >> S32
    c2, c3 = np.zeros_like(c0), np.zeros_like(c0)
    k0, k1 = seed & 0xFFFFFFFF, seed >> 32
    for _ in range(10):
        p0, p1 = M0 * c0, M1 * c2  # 32 x 32 -> 64 bits, no overflow in uint64
        n0 = (p1 >> S32) ^ c1 ^ np.uint64(k0)
        n2 = (p0 >> S32) ^ c3 ^ np.uint64(k1)
        c1, c3, c0, c2 = p1 & LOW, p0 & LOW, n0, n2
        k0, k1 = (k0 + W0) & 0xFFFFFFFF, (k1 + W1) & 0xFFFFFFFF
    return np.stack([c0, c1, c2, c3], 1)


class Generator:
    """gen.Generator(seed): a seed and an offset (the next unused block)."""

    def __init__(self, seed):
        self.seed, self.offset = seed, 0

    def reserve(self, n):
        first = self.offset
        self.offset += n
        return first

    def rand(self, *shape):
        """gen.rand(shape, {generator = g}): float32 uniforms in [0, 1), two per block."""
        n = int(np.prod(shape))
        first = self.reserve((n + 1) // 2)
        w = philox(self.seed, first + np.arange((n + 1) // 2, dtype=np.uint64))
        u = np.empty(2 * w.shape[0], dtype=np.float64)
        u[0::2] = ((w[:, 0] << np.uint64(21)) ^ (w[:, 1] >> np.uint64(11))).astype(np.float64)
        u[1::2] = ((w[:, 2] << np.uint64(21)) ^ (w[:, 3] >> np.uint64(11))).astype(np.float64)
        return (u[:n] * (1.0 / 9007199254740992.0)).astype(np.float32).reshape(shape)

    def randperm(self, n):
        """gen.randperm(n, {generator = g}), 0-based: Fisher-Yates from the last position down."""
        first = self.reserve(n)
        p = np.arange(n, dtype=np.int64)
        if n < 2:
            return p
        w = philox(self.seed, first + np.arange(n, dtype=np.uint64))
        draws = ((w[:, 0] << S32) | w[:, 1]).tolist()  # Python ints: the modulo below is exact
        for i in range(n - 1, 0, -1):
            r = draws[i] % (i + 1)
            p[i], p[r] = p[r], p[i]
        return p
