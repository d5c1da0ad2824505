"""Checks ONNX files exported by latent (run by tests/onnx.rs): every file is parsed with the
`onnx` package and its fields checked against what latent writes (IR version, opset, producer,
graph input and output names, types and shapes with the symbolic batch dimension, initializers),
passes onnx.checker.check_model(full_check=True), and is run in ONNX Runtime on the rows latent
ran, whose outputs must agree with latent's within 1e-5 (max absolute difference), on the whole
batch and on batches of 1 and 7 rows (the batch dimension is dynamic).

usage: python3 tests/onnx_check.py CASES.json     (prints "ONNX CHECK PASSED ..." on success)
"""

import json
import os
import sys
from collections import defaultdict

import numpy as np
import onnx
import onnx.checker
import onnx.numpy_helper
import onnxruntime as ort

TOLERANCE = 1e-5
OPSET = 17
IR_VERSION = 8


def read(base, name, rows, cols):
    return np.fromfile(os.path.join(base, name), dtype="<f4").reshape(rows, cols)


def shape_of(value_info):
    t = value_info.type.tensor_type
    assert t.elem_type == onnx.TensorProto.FLOAT, f"{value_info.name}: element type {t.elem_type}"
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in t.shape.dim]


def check_fields(model, case):
    problems = []

    def want(cond, what):
        if not cond:
            problems.append(what)

    want(model.ir_version == IR_VERSION, f"ir_version {model.ir_version}")
    opsets = [(o.domain, o.version) for o in model.opset_import]
    want(opsets == [("", OPSET)], f"opset_import {opsets}")
    want(model.producer_name == "latent", f"producer_name {model.producer_name!r}")
    want(model.producer_version != "", "no producer_version")
    g = model.graph
    in_name, _, _, in_cols = case["input"]
    want([i.name for i in g.input] == [in_name], f"inputs {[i.name for i in g.input]}")
    if len(g.input) == 1:
        want(shape_of(g.input[0]) == ["batch", in_cols], f"input shape {shape_of(g.input[0])}")
    outs = case["outputs"]
    want([o.name for o in g.output] == [o[0] for o in outs], f"outputs {[o.name for o in g.output]}")
    for o, (_, _, _, cols) in zip(g.output, outs):
        want(shape_of(o) == ["batch", cols], f"output {o.name} shape {shape_of(o)}")
    names = set()
    for t in g.initializer:
        a = onnx.numpy_helper.to_array(t)
        want(t.name and t.name not in names, f"initializer name {t.name!r}")
        names.add(t.name)
        want(list(a.shape) == list(t.dims), f"initializer {t.name} dims {list(t.dims)} data {a.shape}")
        want(t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64), f"{t.name} type {t.data_type}")
        if t.data_type == onnx.TensorProto.FLOAT:
            want(np.all(np.isfinite(a)), f"initializer {t.name} not finite")
    want(not names & {i.name for i in g.input}, "an initializer is also a graph input")
    if "first_layer" in case:
        wfile, n_in, n_out, bfile = case["first_layer"]
        w = read(base_dir, wfile, n_in, n_out)
        b = read(base_dir, bfile, 1, n_out)[0]
        inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
        gemm = [n for n in g.node if n.op_type == "Gemm" and n.input[0] == in_name]
        want(len(gemm) == 1, f"{len(gemm)} Gemm nodes read the input")
        if gemm:
            want(np.array_equal(inits.get(gemm[0].input[1]), w), "first Gemm's B is not the layer's weights")
            want(np.array_equal(inits.get(gemm[0].input[2]), b), "first Gemm's C is not the layer's bias")
    return problems


def main():
    global base_dir
    manifest = sys.argv[1]
    base_dir = os.path.dirname(os.path.abspath(manifest))
    with open(manifest) as f:
        cases = json.load(f)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    failures = []
    worst = defaultdict(float)
    for case in cases:
        path = os.path.join(base_dir, case["model"])
        model = onnx.load(path)
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as e:  # the checker's own exception types vary by version
            failures.append(f"{case['name']}: onnx.checker: {e}")
            continue
        problems = check_fields(model, case)
        if problems:
            failures.append(f"{case['name']}: fields: {'; '.join(problems)}")
            continue
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        in_name, in_file, rows, cols = case["input"]
        x = read(base_dir, in_file, rows, cols)
        expected = [read(base_dir, o[1], o[2], o[3]) for o in case["outputs"]]
        names = [o[0] for o in case["outputs"]]
        if not any(np.ptp(e, axis=0).max() > 0 for e in expected):
            failures.append(f"{case['name']}: latent's outputs are constant over the rows (a dead model tests nothing)")
        diff = 0.0
        for sl in (slice(None), slice(0, 1), slice(3, 10)):
            got = sess.run(names, {in_name: x[sl]})
            for n, g, e in zip(names, got, expected):
                if g.shape != e[sl].shape:
                    failures.append(f"{case['name']}: output {n} shape {g.shape}, latent {e[sl].shape}")
                    continue
                diff = max(diff, float(np.max(np.abs(g.astype(np.float64) - e[sl]))) if g.size else 0.0)
        if not diff <= TOLERANCE:
            failures.append(f"{case['name']}: max |ONNX Runtime - latent| = {diff:.3g} > {TOLERANCE}")
        print(f"case {case['name']:<40} {case['kind']:<28} {case['part']:<15} max|diff| {diff:.2e}")
        key = (case["kind"], case["part"])
        worst[key] = max(worst[key], diff)
    print(f"\nonnx {onnx.__version__}, onnxruntime {ort.__version__}; worst max|diff| per layer kind and part:")
    for (kind, part), d in sorted(worst.items()):
        print(f"  {kind:<28} {part:<15} {d:.2e}")
    if failures:
        print("\nFAILED:")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    overall = max(worst.values()) if worst else 0.0
    print(f"ONNX CHECK PASSED models: {len(cases)}, worst max|diff| {overall:.2e} (tolerance {TOLERANCE})")


base_dir = "."

if __name__ == "__main__":
    main()
