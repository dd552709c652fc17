#!/usr/bin/env python3
"""PyTorch and ONNX Runtime figures for the graph bench's MLP inference lines (same model, 2 threads).

Model: 784-512-512-10 MLP (ReLU), f32, batch 1 (latency) and batch 256 (throughput).
torch: eager under inference_mode. ONNX Runtime: CPUExecutionProvider, intra_op 2, inter_op 1,
ORT_ENABLE_ALL, on the same weights written as Gemm/Relu nodes with a dynamic batch axis.
Run with the peer venv from ../shared/peers (outside the repository):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $PEERS_VENV/bin/python benches/graph_peer.py
"""
import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

torch.set_num_threads(2)
DIMS = [784, 512, 512, 10]


def timed(f, batch, min_time=1.0):
    for _ in range(20):
        f()
    samples = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_time or len(samples) < 50:
        t0 = time.perf_counter()
        f()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    p50 = statistics.median(samples)
    return p50, samples[int(0.99 * (len(samples) - 1))], batch / p50


g = torch.Generator().manual_seed(0)
layers = []
for i, o in zip(DIMS, DIMS[1:]):
    layers.append((torch.randn(o, i, generator=g) * (2 / i) ** 0.5, torch.zeros(o)))


def torch_mlp(x):
    for k, (w, b) in enumerate(layers):
        x = torch.nn.functional.linear(x, w, b)
        if k + 1 < len(layers):
            x = torch.relu(x)
    return x


nodes, inits = [], []
prev = "x"
for k, (w, b) in enumerate(layers):
    inits += [numpy_helper.from_array(w.numpy(), f"w{k}"), numpy_helper.from_array(b.numpy(), f"b{k}")]
    out = f"h{k}"
    nodes.append(helper.make_node("Gemm", [prev, f"w{k}", f"b{k}"], [out], transB=1))
    if k + 1 < len(layers):
        nodes.append(helper.make_node("Relu", [out], [f"r{k}"]))
        out = f"r{k}"
    prev = out
graph = helper.make_graph(
    nodes,
    "mlp",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", DIMS[0]])],
    [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["batch", DIMS[-1]])],
    inits,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
opts = ort.SessionOptions()
opts.intra_op_num_threads, opts.inter_op_num_threads = 2, 1
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])

for batch in (1, 256):
    x = torch.randn(batch, DIMS[0], generator=g)
    xn = x.numpy()
    ref = torch_mlp(x)
    assert np.allclose(sess.run(None, {"x": xn})[0], ref.numpy(), atol=1e-4)
    with torch.inference_mode():
        p50, p99, rate = timed(lambda: torch_mlp(x), batch)
    print(f"torch mlp inference batch {batch}: p50 {p50 * 1e6:.1f} us, p99 {p99 * 1e6:.1f} us, {rate:.0f} samples/s")
    p50, p99, rate = timed(lambda: sess.run(None, {"x": xn}), batch)
    print(f"onnxruntime mlp inference batch {batch}: p50 {p50 * 1e6:.1f} us, p99 {p99 * 1e6:.1f} us, {rate:.0f} samples/s")
