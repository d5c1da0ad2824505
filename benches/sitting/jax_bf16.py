"""JAX's bench (../shared/bench/peers/bench_jax.py, unchanged) with its dense layers' products
in bfloat16: inputs and weights cast to bfloat16, sums in f32, as latent's
LATENT_MATMUL_PRECISION=bf16 does. (JAX's `jax_default_matmul_precision="bfloat16"` ran at its
f32 speed on the AMD Zen 4 machine, 68-69k samples/s on W2: XLA's CPU backend ignores it.)

usage: python jax_bf16.py [bench_jax.py's arguments]; run with the JAX peers' venv.
"""
import os
import sys

PEERS = os.environ.get("PEERS_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/bench/peers")
sys.path.insert(0, PEERS)

import bench_jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402


def dense_bf16(p, x):
    return jnp.dot(x.astype(jnp.bfloat16), p["w"].astype(jnp.bfloat16), preferred_element_type=jnp.float32) + p["b"]


# The workloads call the module's `dense` when they are traced, after this.
bench_jax.dense = dense_bf16

if __name__ == "__main__":
    bench_jax.main()
