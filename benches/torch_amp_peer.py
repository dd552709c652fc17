#!/usr/bin/env python3
"""PyTorch peer of benches/amp_step.rs: median training-step time in f32 and under CPU
bf16 autocast (torch.autocast("cpu", dtype=torch.bfloat16)) for
  * the MLP 784-512-512-10 (ReLU, cross-entropy), batch 128, SGD lr 0.01;
  * the Criteo-shaped DCN-v2 of ../shared/peers/dcn_infer.py (26 x Embedding(100000, 16),
    13 dense, 3 full-rank cross layers, deep 512-256-128), batch 4096, BCE-with-logits,
    Adagrad lr 1e-2 with sparse embedding gradients.
Random data, fixed seeds. Usage: python torch_amp_peer.py [threads] [--quick]
"""
import statistics
import sys
import time

import torch
import torch.nn as nn

threads = int(next((a for a in sys.argv[1:] if a.isdigit()), "2"))
quick = "--quick" in sys.argv
torch.set_num_threads(threads)
torch.manual_seed(0)
g = torch.Generator().manual_seed(1)


def median_step_ms(model, opt, loss_fn, pool, warm, steps, amp):
    def step(i):
        x, y = pool[i % len(pool)]
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(model(*x), y)
        loss.backward()
        opt.step()
        return loss.item()

    first = step(0)
    for i in range(warm):
        step(i)
    ts = []
    for i in range(steps):
        t0 = time.perf_counter()
        step(i)
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts), first, step(0)


def compare(label, make, loss_fn, pool, warm, steps):
    out = []
    for amp in (False, True):
        model, opt = make()
        out.append(median_step_ms(model, opt, loss_fn, pool, warm, steps, amp))
    (f, f1, f2), (b, b1, b2) = out
    print(f"{label}: f32 {f:.2} ms (loss {f1:.4} -> {f2:.4}), bf16 autocast {b:.2} ms "
          f"(loss {b1:.4} -> {b2:.4}), bf16/f32 {b / f:.2f}x time", flush=True)


def make_mlp():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    return m, torch.optim.SGD(m.parameters(), lr=0.01)


N_SPARSE, VOCAB, DIM, N_DENSE, D_IN = 26, 100_000, 16, 13, 26 * 16 + 13


class DCNv2(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.ModuleList([nn.Embedding(VOCAB, DIM, sparse=True) for _ in range(N_SPARSE)])
        self.cross = nn.ModuleList([nn.Linear(D_IN, D_IN) for _ in range(3)])
        self.deep = nn.Sequential(nn.Linear(D_IN, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                                  nn.Linear(256, 128), nn.ReLU())
        self.head = nn.Linear(D_IN + 128, 1)

    def forward(self, sparse, dense):
        x0 = torch.cat([e(sparse[:, i]) for i, e in enumerate(self.emb)] + [dense], dim=1)
        x = x0
        for lin in self.cross:
            x = x0 * lin(x) + x
        return self.head(torch.cat([x, self.deep(x0)], dim=1))


def make_dcn():
    torch.manual_seed(0)
    m = DCNv2()
    return m, torch.optim.Adagrad(m.parameters(), lr=1e-2)


print(f"# torch {torch.__version__} bf16 autocast vs f32 training step, {threads} threads (median)")
mlp_pool = [((torch.randn(128, 784, generator=g),), torch.randint(0, 10, (128,), generator=g)) for _ in range(8)]
compare("mlp 784-512-512-10 batch 128 sgd", make_mlp, nn.CrossEntropyLoss(), mlp_pool, 20, 20 if quick else 200)
dcn_pool = [((torch.randint(0, VOCAB, (4096, N_SPARSE), generator=g), torch.randn(4096, N_DENSE, generator=g)),
             torch.randint(0, 2, (4096, 1), generator=g).float()) for _ in range(4)]
compare("dcn-v2 criteo-shaped batch 4096 adagrad", make_dcn, nn.BCEWithLogitsLoss(), dcn_pool,
        1 if quick else 2, 3 if quick else 10)
