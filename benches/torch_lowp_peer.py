#!/usr/bin/env python3
"""PyTorch's figures for benches/lowp_matmul.rs: f32, bf16 and f16 square matmul GFLOP/s (median).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $PEERS_VENV/bin/python benches/torch_lowp_peer.py [threads]
"""
import statistics
import sys
import time

import torch


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


all_threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
print(f"# torch {torch.__version__} matmul (GFLOP/s, median)")
g = torch.Generator().manual_seed(0)
for threads in [1, all_threads]:
    torch.set_num_threads(threads)
    for n in [512, 1024, 2048]:
        reps = min(max(2_000_000_000 // (2 * n**3), 1), 200)
        line = f"threads={threads} n={n}:"
        for name, dtype in [("f32", torch.float32), ("bf16", torch.bfloat16), ("f16", torch.float16)]:
            a = torch.randn(n, n, generator=g).to(dtype)
            b = torch.randn(n, n, generator=g).to(dtype)
            s = median_secs(7, reps, lambda: torch.matmul(a, b))
            line += f" {name} {2 * n**3 / s / 1e9:.1f}"
        print(line, flush=True)
