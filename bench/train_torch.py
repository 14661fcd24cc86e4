"""PyTorch baseline for bench/bench_train.c: one training epoch of the
default `attnflow train` digits model on the CPU, one thread.

Same model (2x2 patches -> 16 tokens + CLS, linear embedding, learned
positions, pre-LayerNorm, one SoftMax attention head of dim 64 in dim 128,
residual, LayerNorm + linear head on CLS), same data (sklearn's
digits.csv.gz, 1397 training images), batch 10, Adam lr 1e-3, float64 like
the C code (float32 also reported). Prints `epoch_seconds S` (float64, best
of 3 epochs) and `epoch_seconds_f32 S`. Run with Debian's /usr/bin/python3.

`train_torch.py --check FILE` instead reads parameters, a batch, n_it, the
loss and the gradients written by bench_train.c, recomputes loss and
gradients with autograd (n_it unrolled log-domain Sinkhorn normalisations,
1 = SoftMax) and prints `check_loss_relerr E` and `check_grad_relerr E`
(normwise over all parameters).
"""
import gzip
import sys
import time

import numpy as np

try:
    import torch
    from torch import nn
except ImportError:
    print("torch not installed", file=sys.stderr)
    sys.exit(1)

PATH = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"


def load():
    data = np.loadtxt(gzip.open(PATH, "rt"), delimiter=",")
    x, y = data[:, :64] / 16.0, data[:, 64].astype(np.int64)
    # 'b (h p1) (w p2) -> b (h w) (p1 p2)'
    x = x.reshape(-1, 4, 2, 4, 2).transpose(0, 1, 3, 2, 4).reshape(-1, 16, 4)
    perm = np.random.default_rng(1).permutation(len(y))
    tr = perm[400:]
    return x[tr], y[tr]


class ViT(nn.Module):
    def __init__(self, dim=128, dh=64, classes=10, n_it=1):
        super().__init__()
        self.embed = nn.Linear(4, dim)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, 17, dim))
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dh, bias=False)
        self.out = nn.Linear(dh, dim)
        self.lnf = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)
        self.scale = dh ** -0.5
        self.n_it = n_it

    def forward(self, x):
        e = self.embed(x)
        z = torch.cat([self.cls.expand(x.shape[0], -1, -1), e], dim=1) + self.pos
        q, k, v = self.qkv(self.ln1(z)).chunk(3, dim=-1)
        if self.n_it == 1:
            a = torch.softmax(q @ k.transpose(1, 2) * self.scale, dim=-1)
        else:  # unrolled Sinkhorn in log space, rows first
            s = q @ k.transpose(1, 2) * self.scale
            for i in range(self.n_it):
                s = s - torch.logsumexp(s, dim=-1 if i % 2 == 0 else -2, keepdim=True)
            a = torch.exp(s)
        z = z + self.out(a @ v)
        return self.head(self.lnf(z[:, 0]))


def epoch_time(dtype, reps=3):
    torch.manual_seed(1)
    x, y = load()
    X = torch.tensor(x, dtype=dtype)
    Y = torch.tensor(y)
    model = ViT().to(dtype)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    best = float("inf")
    for _ in range(reps):
        perm = torch.randperm(len(Y))
        t0 = time.perf_counter()
        for i in range(0, len(Y), 10):
            idx = perm[i:i + 10]
            opt.zero_grad()
            loss = lossf(model(X[idx]), Y[idx])
            loss.backward()
            opt.step()
        best = min(best, time.perf_counter() - t0)
    return best


def check(path):
    """Loss and gradients of the C model against autograd on the same numbers."""
    with open(path) as f:
        n_it, batch = (int(t) for t in f.readline().split())
        vals = np.array(f.read().split(), dtype=np.float64)
    model = ViT(n_it=n_it).double()
    # the C flat layout: row-major (in x out) weights, torch stores (out x in)
    blocks = [(model.embed.weight, True), (model.embed.bias, False), (model.cls, False),
              (model.pos, False), (model.ln1.weight, False), (model.ln1.bias, False),
              (model.qkv.weight, True), (model.out.weight, True), (model.out.bias, False),
              (model.lnf.weight, False), (model.lnf.bias, False), (model.head.weight, True),
              (model.head.bias, False)]
    at = 0
    with torch.no_grad():
        for p, tr in blocks:
            n = p.numel()
            v = torch.tensor(vals[at:at + n])
            p.copy_(v.reshape(p.shape[::-1]).T if tr else v.reshape(p.shape))
            at += n
    npar = at
    x = torch.tensor(vals[at:at + batch * 64]).reshape(batch, 16, 4)
    at += batch * 64
    y = torch.tensor(vals[at:at + batch]).long()
    at += batch
    loss_c = vals[at]
    at += 1
    grad_c = vals[at:at + npar]
    loss = nn.CrossEntropyLoss()(model(x), y)
    loss.backward()
    g = np.concatenate([(p.grad.T if tr else p.grad).reshape(-1).numpy() for p, tr in blocks])
    print("check_loss_relerr", abs(loss.item() - loss_c) / abs(loss.item()))
    print("check_grad_relerr", np.linalg.norm(g - grad_c) / np.linalg.norm(g))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
        sys.exit(0)
    torch.set_num_threads(1)
    print("epoch_seconds", epoch_time(torch.float64))
    print("epoch_seconds_f32", epoch_time(torch.float32))
