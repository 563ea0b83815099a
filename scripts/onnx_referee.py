#!/usr/bin/env python3
"""Outside referee for grasp-edge's ONNX export: checks a model with onnx.checker and compares
onnxruntime's outputs with the ones our runtime (tract) produced.

usage: onnx_referee.py MODEL.onnx INPUT.f32 OUTPUTS_DIR
  INPUT.f32        raw little-endian float32 input in the model's input shape
  OUTPUTS_DIR/NAME.f32  raw float32 output NAME as computed by tract
Prints one line per output with the max |difference|; exits 1 if any exceeds 1e-4.
"""
import sys, os
import numpy as np
import onnx
import onnxruntime as ort

TOLERANCE = 1e-4

def main():
    model_path, input_path, outputs_dir = sys.argv[1:4]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    print(f"onnx.checker: ok (opset {model.opset_import[0].version}, ir {model.ir_version})")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.fromfile(input_path, dtype="<f4").reshape(inp.shape)
    names = [o.name for o in sess.get_outputs()]
    results = sess.run(names, {inp.name: x})
    worst = 0.0
    for name, value in zip(names, results):
        ours = np.fromfile(os.path.join(outputs_dir, name + ".f32"), dtype="<f4").reshape(value.shape)
        diff = float(np.max(np.abs(ours - value)))
        worst = max(worst, diff)
        print(f"output {name}: max |tract - onnxruntime| = {diff:.3g}")
    sys.exit(0 if worst <= TOLERANCE else 1)

if __name__ == "__main__":
    main()
