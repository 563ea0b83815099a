#!/usr/bin/env python3
"""The peer in grasp-edge's inference benchmark: median onnxruntime latency of ONNX files.

usage: bench_onnxruntime.py THREADS RUNS MODEL.onnx...
Prints one JSON object {model path: median milliseconds} on stdout. Input: random, fixed seed."""
import json, sys, time
import numpy as np
import onnxruntime as ort

def median_ms(path, threads, runs):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(0).random(inp.shape, dtype=np.float32) - 0.5
    for _ in range(3):
        sess.run(None, {inp.name: x})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {inp.name: x})
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))

threads, runs = int(sys.argv[1]), int(sys.argv[2])
print(json.dumps({p: median_ms(p, threads, runs) for p in sys.argv[3:]}))
