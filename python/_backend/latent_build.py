"""A minimal in-tree PEP 517 build backend for the pure-Python `latent` package.

It needs nothing but the standard library, so `pip install ./python` works offline (pip's build
isolation would otherwise download setuptools). It packs latent/*.py and the liblatent shared
library into a wheel, so that `import latent` works without LATENT_LIBRARY: a library copied into
latent/ if there is one, else the checkout's target/release one, which it builds with
`cargo build --release --lib` first when it is missing (set LATENT_PIP_NO_BUILD=1 to make a
pure-Python wheel instead). Editable installs add a .pth file (they find the checkout's library).
"""

import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

NAME = "latent"
VERSION = "0.1.0"
ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / NAME
LIBS = ("liblatent.so", "liblatent.dylib", "latent.dll")

METADATA = f"""Metadata-Version: 2.1
Name: {NAME}
Version: {VERSION}
Summary: Python bindings (ctypes) for liblatent, autoencoders as a C library
License: MIT
Requires-Python: >=3.8
Requires-Dist: numpy>=1.17
Provides-Extra: test
Requires-Dist: pytest; extra == "test"

ctypes bindings for liblatent; see python/README.md and docs/python.md in the latent repository.
"""


def _files():
    for p in sorted(PKG.iterdir()):
        if p.suffix == ".py" or p.name in LIBS:
            yield p


def _library():
    """(file name, path) of the shared library the wheel bundles, or None."""
    for p in _files():
        if p.name in LIBS:
            return p.name, p
    checkout = ROOT.parent
    if not (checkout / "Cargo.toml").exists():
        return None
    built = [checkout / "target" / "release" / n for n in LIBS]
    if not any(b.exists() for b in built) and not os.environ.get("LATENT_PIP_NO_BUILD"):
        cargo = shutil.which("cargo")
        if cargo is None:
            sys.stderr.write("latent: no liblatent built and no cargo: making a wheel without the library "
                             "(set LATENT_LIBRARY at run time, or install Rust and reinstall)\n")
            return None
        sys.stderr.write("latent: building liblatent with cargo build --release --lib (a few minutes)\n")
        subprocess.run([cargo, "build", "--release", "--lib"], cwd=str(checkout), check=True)
    for b in built:
        if b.exists():
            return b.name, b
    return None


def _tag(with_library):
    if with_library:
        plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
        return f"py3-none-{plat}", "false"
    return "py3-none-any", "true"


def _digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _write_wheel(directory, entries, with_library=False):
    tag, purelib = _tag(with_library)
    distinfo = f"{NAME}-{VERSION}.dist-info"
    entries = list(entries) + [
        (f"{distinfo}/METADATA", METADATA.encode()),
        (f"{distinfo}/WHEEL", f"Wheel-Version: 1.0\nGenerator: latent_build\nRoot-Is-Purelib: {purelib}\n"
                              f"Tag: {tag}\n".encode()),
    ]
    record = "".join(f"{name},{_digest(data)},{len(data)}\n" for name, data in entries)
    record += f"{distinfo}/RECORD,,\n"
    entries.append((f"{distinfo}/RECORD", record.encode()))
    wheel = f"{NAME}-{VERSION}-{tag}.whl"
    with zipfile.ZipFile(os.path.join(directory, wheel), "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return wheel


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    entries = [(f"{NAME}/{p.name}", p.read_bytes()) for p in _files() if p.name not in LIBS]
    lib = _library()
    if lib is not None:
        entries.append((f"{NAME}/{lib[0]}", lib[1].read_bytes()))
    return _write_wheel(wheel_directory, entries, with_library=lib is not None)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, [(f"{NAME}.pth", (str(ROOT) + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None):
    base = f"{NAME}-{VERSION}"
    name = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for rel in ["pyproject.toml", "README.md", "_backend/latent_build.py"] + [
                f"{NAME}/{p.name}" for p in _files() if p.suffix == ".py"]:
            t.add(str(ROOT / rel), arcname=f"{base}/{rel}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        data = METADATA.encode()
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return name
