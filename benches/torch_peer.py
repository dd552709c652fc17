#!/usr/bin/env python3
"""PyTorch's figures for the engine bench's elementwise and dispatch lines (same shapes, 2 threads).

Run with the peer venv from ../shared/peers (outside the repository):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $PEERS_VENV/bin/python benches/torch_peer.py
Matmul and the MLP step come from ../shared/peers/matmul.py and mlp_train.py --no-compile.
"""
import statistics
import time

import torch

torch.set_num_threads(2)


def median_secs(samples, reps, f):
    for _ in range(max(reps, 1)):
        f()
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(reps):
            f()
        times.append((time.perf_counter() - start) / reps)
    return statistics.median(times)


g = torch.Generator().manual_seed(0)
n = 16 << 20
x, y = torch.randn(n, generator=g), torch.randn(n, generator=g)
copy = median_secs(9, 1, lambda: x.clone())
print(f"torch copy_f32 16M: {8 * n / copy / 1e9:.1f} GB/s (clone)")
add = median_secs(9, 1, lambda: torch.add(x, y))
print(f"torch add_f32 16M: {12 * n / add / 1e9:.1f} GB/s ({add * 1e3:.2f} ms)")
relu = median_secs(9, 1, lambda: torch.relu(x))
print(f"torch relu_f32 16M: {8 * n / relu / 1e9:.1f} GB/s ({relu * 1e3:.2f} ms)")
ex = median_secs(9, 1, lambda: torch.exp(x))
print(f"torch exp_f32 16M: {8 * n / ex / 1e9:.1f} GB/s ({ex * 1e3:.2f} ms)")

a, b = torch.randn(100, generator=g), torch.randn(100, generator=g)
per_op = median_secs(15, 20000, lambda: torch.add(a, b))
print(f"torch dispatch add 100 elems: {per_op * 1e6:.3f} us/op (called from Python)")
a.requires_grad_(True)
per_op_grad = median_secs(15, 20000, lambda: torch.add(a, b))
print(f"torch dispatch add 100 elems, input requires grad: {per_op_grad * 1e6:.3f} us/op")
