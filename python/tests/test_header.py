"""The ctypes mirror against include/latent.h: struct fields in order, sizeof/offsetof from a
compiled C program, the #define constants, and the ABI version."""

import ctypes
import re
import subprocess

import pytest

import latent
from latent import _ffi

from conftest import ROOT, skip

HEADER = ROOT / "include" / "latent.h"


def header_text():
    if not HEADER.exists():
        skip("include/latent.h", f"no {HEADER}")
    return HEADER.read_text()


def header_structs():
    """{struct name: [field names in order]} parsed from the header."""
    text = re.sub(r"//[^\n]*", "", header_text())
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = {}
    for name, body in re.findall(r"typedef struct (\w+) \{(.*?)\} \1;", text, flags=re.S):
        fields = []
        for decl in body.split(";"):
            decl = re.sub(r"\[[^\]]*\]", "", decl).strip()  # char name[256] -> char name
            if decl:
                fields.append(re.findall(r"\w+", decl)[-1])
        out[name] = fields
    return out


def test_every_header_struct_is_mirrored_field_for_field():
    structs = header_structs()
    assert len(structs) >= 14
    mirrored = {s.__name__: s for s in _ffi.STRUCTS}
    assert set(structs) == set(mirrored), "structs in latent.h and in latent._ffi differ"
    for name, fields in structs.items():
        assert [f for f, _ in mirrored[name]._fields_] == fields, name


def test_sizes_and_offsets_match_c(tmp_path, cc):
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "latent.h"', "int main(void) {"]
    for s in _ffi.STRUCTS:
        n = s.__name__
        lines.append(f'  printf("{n} %zu\\n", sizeof({n}));')
        for f, _ in s._fields_:
            lines.append(f'  printf("{n}.{f} %zu\\n", offsetof({n}, {f}));')
    lines += ["  return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c99", f"-I{ROOT / 'include'}", str(src), "-o", str(exe)], check=True)
    c = dict(line.rsplit(" ", 1) for line in subprocess.run([str(exe)], check=True, capture_output=True,
                                                             text=True).stdout.splitlines())
    py = {}
    for s in _ffi.STRUCTS:
        py[s.__name__] = ctypes.sizeof(s)
        for f, _ in s._fields_:
            py[f"{s.__name__}.{f}"] = getattr(s, f).offset
    assert {k: int(v) for k, v in c.items()} == py


def test_constants_match_the_defines():
    defines = dict(re.findall(r"#define (LATENT_\w+) (-?\d+)\b", header_text()))
    assert int(defines["LATENT_ABI_VERSION"]) == latent.ABI_VERSION
    seen = {}
    for name, value in defines.items():
        prefix = max((p for p in _ffi.ENUMS if name.startswith(p)), key=len, default=None)
        if prefix is None:
            continue
        enum = _ffi.ENUMS[prefix]
        member = name[len(prefix):]
        assert enum[member] == int(value), name
        seen.setdefault(enum, set()).add(member)
    for enum in _ffi.ENUMS.values():
        assert seen.get(enum) == {m.name for m in enum}, f"{enum.__name__} has members the header lacks"


def test_abi_version_checked_at_import():
    assert _ffi.lib.latent_abi_version() == latent.ABI_VERSION
    assert re.fullmatch(r"\d+\.\d+\.\d+", latent.version())


def test_missing_library_gives_a_clear_import_error(tmp_path):
    import os
    import sys

    env = dict(os.environ, LATENT_LIBRARY=str(tmp_path / "nope.so"))
    r = subprocess.run([sys.executable, "-c", "import latent"], cwd=str(ROOT / "python"), env=env,
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "LATENT_LIBRARY" in r.stderr


@pytest.mark.parametrize("name,enum,value", [("leaky-relu", latent.Activation, 4), ("F03", latent.Connection, 3),
                                             ("Binary_Cross_Entropy", latent.Loss, 1)])
def test_enum_names(name, enum, value):
    assert enum.coerce(name) == value
