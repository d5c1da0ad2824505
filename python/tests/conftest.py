"""Shared fixtures. The checkout's python/ directory goes first on sys.path, so the tests run the
package next to them (set LATENT_LIBRARY to choose the library)."""

import os
import shutil
import sys
from pathlib import Path

import pytest

PYDIR = Path(__file__).resolve().parent.parent
ROOT = PYDIR.parent
sys.path.insert(0, str(PYDIR))

import latent  # noqa: E402

REQUIRE = os.environ.get("LATENT_REQUIRE_DATA") == "1"


def skip(what, how):
    """The Rust tests' rule: under LATENT_REQUIRE_DATA=1 (CI) a missing data set or tool fails."""
    if REQUIRE:
        pytest.fail(f"{what} is required (LATENT_REQUIRE_DATA=1) but missing: {how}")
    pytest.skip(f"{what} not found: {how}")


@pytest.fixture(scope="session")
def digits_path():
    try:
        return latent.find_data("digits/digits.csv.gz")
    except latent.LatentIOError as e:
        p = ROOT.parent / "shared" / "data" / "digits" / "digits.csv.gz"
        if p.exists():
            return str(p)
        skip("digits data set", str(e))


@pytest.fixture(scope="session")
def digits(digits_path):
    """(features scaled to [0, 1] as float32, labels): 1797 rows of 64 pixels."""
    with latent.Dataset.from_csv(digits_path, label_column=64) as ds:
        ds.scale("min_max")
        return ds.to_numpy(), ds.labels


@pytest.fixture(scope="session")
def cc():
    path = shutil.which("cc")
    if path is None:
        skip("a C compiler (cc)", "install gcc to run the cross-language test")
    return path
