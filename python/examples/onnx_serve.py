"""Serves an ONNX file exported by latent (c_examples/cpp/onnx_export.cpp, Network.export_onnx or
latent_network_export_onnx) with ONNX Runtime, and checks it against latent on random rows.

    python3 python/examples/onnx_serve.py MODEL.latent MODEL.onnx [ROWS]

Needs `python3 -m pip install numpy onnxruntime` and the latent package (python/ on the path,
LATENT_LIBRARY naming liblatent.so when it is not found by itself).
"""

import sys

import numpy as np
import onnxruntime as ort

import latent


def main():
    model_path, onnx_path = sys.argv[1], sys.argv[2]
    rows = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    net = latent.Network.load(model_path)
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    (out,) = session.get_outputs()
    width = inp.shape[1]
    x = np.random.default_rng(0).random((rows, width), dtype=np.float32)
    (got,) = session.run([out.name], {inp.name: x})
    # What latent computes for the same part, by the graph's input and output names.
    want = {
        "code": lambda: net.encode(x),
        "output": lambda: net.decode(x),
        "reconstruction": lambda: net.reconstruct(x),
        "prediction": lambda: net.predict(x),
    }[out.name]()
    diff = float(np.max(np.abs(got - want)))
    print(f"{onnx_path}: {inp.name} [{inp.shape[0]}, {width}] -> {out.name} {list(got.shape)} in ONNX Runtime "
          f"{ort.__version__}")
    print(f"ONNX Runtime and latent agree on {rows} rows: max |diff| {diff:.2e}")
    sys.exit(0 if diff <= 1e-5 else 1)


if __name__ == "__main__":
    main()
