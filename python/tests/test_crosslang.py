"""A model saved from Python loads in C and gives bit-identical codes."""

import os
import subprocess
from pathlib import Path

import numpy as np

import latent

from conftest import ROOT

C_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include "latent.h"

/* encode MODEL ROWS_FILE ROWS COLS CODES_FILE: float32 rows in, float32 codes out. */
int main(int argc, char **argv) {
    if (argc != 6) return 2;
    size_t rows = (size_t)strtoull(argv[3], NULL, 10), cols = (size_t)strtoull(argv[4], NULL, 10);
    latent_network *net = NULL;
    if (latent_network_load(argv[1], &net) != LATENT_STATUS_OK) {
        fprintf(stderr, "load: %s\n", latent_last_error_message());
        return 1;
    }
    size_t code = latent_network_code_dim(net);
    float *x = malloc(rows * cols * sizeof *x), *c = malloc(rows * code * sizeof *c);
    FILE *f = fopen(argv[2], "rb");
    if (!x || !c || !f || fread(x, sizeof *x, rows * cols, f) != rows * cols) return 3;
    fclose(f);
    if (latent_network_encode(net, x, rows, cols, c, rows * code) != LATENT_STATUS_OK) {
        fprintf(stderr, "encode: %s\n", latent_last_error_message());
        return 1;
    }
    f = fopen(argv[5], "wb");
    if (!f || fwrite(c, sizeof *c, rows * code, f) != rows * code) return 4;
    fclose(f);
    latent_network_free(net);
    free(x);
    free(c);
    return 0;
}
"""


def test_model_saved_from_python_gives_identical_codes_in_c(tmp_path, digits, cc):
    x, _ = digits
    rows = np.ascontiguousarray(x[:300], np.float32)
    net = latent.Network(input_dim=64, encoder=[48, 24], code=10, activation="tanh", code_activation="sigmoid",
                         seed=11)
    latent.Trainer(epochs=3, batch_size=64, seed=1).fit(net, x)
    model = tmp_path / "py.latent"
    net.save(model)
    rows.tofile(tmp_path / "rows.f32")

    src = tmp_path / "encode.c"
    src.write_text(C_PROGRAM)
    exe = tmp_path / "encode"
    libfile = Path(latent.library_path)
    cmd = [cc, "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}", str(src), "-o", str(exe)]
    if libfile.is_absolute():
        cmd += [f"-L{libfile.parent}", f"-Wl,-rpath,{libfile.parent}"]
        # Link the very file Python loaded, whatever its name.
        cmd += [str(libfile)] if libfile.name != "liblatent.so" else ["-llatent"]
    else:
        cmd += ["-llatent"]
    subprocess.run(cmd + ["-lm"], check=True)
    env = dict(os.environ)
    r = subprocess.run([str(exe), str(model), str(tmp_path / "rows.f32"), "300", "64", str(tmp_path / "codes.f32")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    c_codes = np.fromfile(tmp_path / "codes.f32", np.float32).reshape(300, 10)
    py_codes = net.encode(rows)
    assert c_codes.tobytes() == py_codes.tobytes()
