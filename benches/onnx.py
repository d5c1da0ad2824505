"""Encode latency of the W2 encoder (784-256-64, ReLU hidden and code; ../shared/bench/README.md)
in latent and in ONNX Runtime, same machine, same sitting, both called from Python: latent
through its ctypes binding (Network.encode), ONNX Runtime through InferenceSession.run on the
file Network.export_onnx wrote. One row per call, and 256 rows per call; the median over 7
passes of the mean time per call. Both use every core they are given (THREADS, default 2: latent's
thread count and ONNX Runtime's intra-op threads); latent runs inputs under 32k floats on the
calling thread, the other threads - 1 of its workers taking parts of the products big enough
to split (docs/threads_and_numerics.md).

    python3 benches/onnx.py          # LATENT_LIBRARY=target/release/liblatent.so if not found
    THREADS=1 python3 benches/onnx.py
    QUICK=1 python3 benches/onnx.py  # a smoke run (tests/onnx.rs)

Prints a Markdown table (docs/serving.md quotes one).
"""

import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import latent  # noqa: E402


QUICK = os.environ.get("QUICK") == "1"  # a smoke run for the tests: few calls, one pass


def per_call(fn, calls, passes=1 if QUICK else 7):
    fn()  # warm-up
    times = []
    for _ in range(passes):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t) / calls)
    return statistics.median(times)


def main():
    threads = int(os.environ.get("THREADS", "2"))
    net = latent.Network(input_dim=784, encoder=[256], code=64, activation="relu", code_activation="relu",
                         output_activation="sigmoid", loss="mse", init="fan_in_uniform", seed=1)
    net.set_threads(threads)
    path = os.path.join(tempfile.mkdtemp(), "w2_encoder.onnx")
    net.export_onnx(path, part="encoder")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    print(f"W2 encoder 784-256-64 ReLU, {threads} threads, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; latent {latent.version()}, onnxruntime {ort.__version__}, numpy {np.__version__}")
    print()
    print("| batch | latent µs/call | ONNX Runtime µs/call | latent rows/s | ONNX Runtime rows/s |")
    print("|---|---|---|---|---|")
    for rows, calls in ((1, 20), (256, 5)) if QUICK else ((1, 3000), (256, 200)):
        x = rng.random((rows, 784), dtype=np.float32)
        (got,) = session.run(["code"], {"x": x})
        # bfloat16 products (LATENT_MATMUL_PRECISION=bf16) round each input to 8 mantissa bits.
        tol = 1e-5 if latent.matmul_precision() == latent.MatmulPrecision.F32 else 1e-2 * max(1.0, np.max(np.abs(got)))
        assert np.max(np.abs(got - net.encode(x))) <= tol
        t_latent = per_call(lambda: net.encode(x), calls)
        t_ort = per_call(lambda: session.run(["code"], {"x": x}), calls)
        print(f"| {rows} | {t_latent * 1e6:.1f} | {t_ort * 1e6:.1f} | {rows / t_latent:,.0f} | {rows / t_ort:,.0f} |")


if __name__ == "__main__":
    main()
