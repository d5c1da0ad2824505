"""Pictures from Python: scaled grids decoded back (every pixel a scale x scale block), the SVG
scatter parsed as XML (a circle per point, the colour of its label, inside the plot area), the
VAE manifold grid equal to the VAE's own decode of latent.normal_grid_points, and the errors."""

import statistics
import xml.etree.ElementTree as ET
import zlib

import numpy as np
import pytest

import latent

SVG = "{http://www.w3.org/2000/svg}"
TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def read_pgm(path):
    b = open(path, "rb").read()
    magic, dims, maxval, rest = b.split(b"\n", 3)
    assert magic == b"P5" and maxval == b"255"
    w, h = map(int, dims.split())
    return np.frombuffer(rest, np.uint8).reshape(h, w)


def read_png(path):
    b = open(path, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(b):
        n = int.from_bytes(b[pos:pos + 4], "big")
        kind, data = b[pos + 4:pos + 8], b[pos + 8:pos + 8 + n]
        assert zlib.crc32(kind + data) == int.from_bytes(b[pos + 8 + n:pos + 12 + n], "big")
        if kind == b"IHDR":
            w, h = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")
        elif kind == b"IDAT":
            idat += data
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w + 1)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:]


def images(n=12, h=5, w=4):
    return (np.arange(n * h * w).reshape(n, h, w) * 37 % 101 / 100.0).astype(np.float32)


@pytest.mark.parametrize("ext,read", [("pgm", read_pgm), ("png", read_png)])
def test_scaled_grid_is_blocks_of_the_unscaled_one(tmp_path, ext, read):
    x = images()
    latent.image_grid(tmp_path / f"a.{ext}", x, cols=5, scale=1)
    latent.image_grid(tmp_path / f"b.{ext}", x, cols=5, scale=4)
    small, big = read(tmp_path / f"a.{ext}"), read(tmp_path / f"b.{ext}")
    assert small.shape == (3 * 5 + 4, 5 * 4 + 6)
    assert big.shape == (4 * small.shape[0], 4 * small.shape[1])
    assert (big == np.kron(small, np.ones((4, 4), np.uint8))).all()
    # Tile 0's pixel (0, 0) (value 0) is black, padding mid-gray.
    assert small[1, 1] == 0 and small[0, 0] == 128
    # (n, h*w) with height and width; pairs.
    latent.image_grid(tmp_path / f"c.{ext}", x.reshape(12, -1), height=5, width=4, cols=5, scale=1)
    assert (read(tmp_path / f"c.{ext}") == small).all()
    latent.image_pairs(tmp_path / f"p.{ext}", x, 1 - x, cols=6, scale=2)
    p = read(tmp_path / f"p.{ext}")
    assert p.shape == (2 * (4 * 5 + 4 + 1 + 3), 2 * (6 * 4 + 7))


def test_grid_errors(tmp_path):
    x = images()
    with pytest.raises(latent.InvalidArgument, match="scale"):
        latent.image_grid(tmp_path / "a.png", x, scale=0)
    with pytest.raises(latent.InvalidArgument, match="scale"):
        latent.image_grid(tmp_path / "a.png", x, scale=65)
    with pytest.raises(latent.InvalidArgument, match="extension"):
        latent.image_grid(tmp_path / "a.jpg", x)
    bad = x.copy()
    bad[3, 2, 1] = np.nan
    with pytest.raises(latent.NonFinite):
        latent.image_grid(tmp_path / "a.png", bad)
    with pytest.raises(ValueError):
        latent.image_grid(tmp_path / "a.png", x.reshape(12, -1))


def parse_scatter(path):
    root = ET.parse(path).getroot()
    area = next(r for r in root.iter(SVG + "rect") if r.get("class") == "plot-area")
    x0, y0 = float(area.get("x")), float(area.get("y"))
    x1, y1 = x0 + float(area.get("width")), y0 + float(area.get("height"))
    groups = [g for g in root.iter(SVG + "g") if g.get("class") == "points"]
    return root, (x0, y0, x1, y1), groups


def test_scatter_svg_is_xml_with_a_circle_per_point(tmp_path):
    rng = np.random.default_rng(0)
    n = 10_000
    labels = rng.integers(0, 10, n)
    codes = (rng.normal(size=(n, 2)) + labels[:, None] * 0.5).astype(np.float32)
    path = tmp_path / "s.svg"
    latent.scatter_svg(path, codes, labels, title="ten classes")
    assert path.stat().st_size < 450_000
    root, (x0, y0, x1, y1), groups = parse_scatter(path)
    assert [g.get("data-label") for g in groups] == [str(i) for i in range(10)]
    total = 0
    for i, g in enumerate(groups):
        assert g.get("fill") == TAB10[i]
        circles = list(g.iter(SVG + "circle"))
        assert len(circles) == (labels == i).sum()
        for c in circles:
            assert x0 <= float(c.get("cx")) <= x1 and y0 <= float(c.get("cy")) <= y1
        total += len(circles)
    assert total == n
    texts = [t.text for t in root.iter(SVG + "text")]
    assert "ten classes" in texts and all(str(i) in texts for i in range(10))
    # The leftmost circle is the smallest first coordinate: order along x is kept.
    xs = {float(c.get("cx")) for g in groups for c in g.iter(SVG + "circle")}
    assert abs(min(xs) - (x0 + (x1 - x0) * 0.05 / 1.1)) < 0.1
    # Without labels: one group.
    latent.scatter_svg(path, codes[:50])
    _, _, groups = parse_scatter(path)
    assert len(groups) == 1 and len(list(groups[0].iter(SVG + "circle"))) == 50
    with pytest.raises(ValueError):
        latent.scatter_svg(path, codes[:, :1])
    with pytest.raises(latent.InvalidArgument):
        latent.scatter_svg(path, codes[:0])


def test_network_and_vae_scatter_codes(tmp_path, digits):
    x, y = digits
    ds = latent.Dataset(x[:300])
    ds.labels = y[:300]
    net = latent.Network(64, 2)
    net.scatter_codes(ds, tmp_path / "n.svg", title="digits")
    _, _, groups = parse_scatter(tmp_path / "n.svg")
    assert sorted(int(g.get("data-label")) for g in groups) == sorted(set(y[:300].tolist()))
    assert sum(len(list(g.iter(SVG + "circle"))) for g in groups) == 300
    with pytest.raises(latent.InvalidArgument, match="needs 2"):
        latent.Network(64, 3).scatter_codes(ds, tmp_path / "n3.svg")
    vae = latent.Vae(input_dim=64, latent_dim=2, encoder=[32], decoder=[32], seed=1)
    vae.scatter_codes(ds, tmp_path / "v.svg")
    # The same picture as the posterior means drawn by hand.
    latent.scatter_svg(tmp_path / "v2.svg", vae.encode(x[:300]), y[:300], title="latent space")
    assert (tmp_path / "v.svg").read_bytes() == (tmp_path / "v2.svg").read_bytes()
    with pytest.raises(latent.InvalidArgument, match="latent dimensions"):
        latent.Vae(input_dim=64, latent_dim=3).scatter_codes(ds, tmp_path / "v3.svg")


def test_manifold_grid_is_the_decode_of_the_quantile_points(tmp_path):
    k = 6
    z = latent.normal_grid_points(k)
    q = [statistics.NormalDist().inv_cdf((i + 0.5) / k) for i in range(k)]
    assert np.allclose(z[:, 0], np.tile(q, k), atol=1e-6)
    assert np.allclose(z[:, 1], np.repeat(q[::-1], k), atol=1e-6)
    vae = latent.Vae(input_dim=20, latent_dim=2, encoder=[8], decoder=[8], seed=2)
    vae.manifold_grid(tmp_path / "m.pgm", k=k, height=5, width=4, scale=2)
    decoded = vae.generate(z)
    latent.image_grid(tmp_path / "h.pgm", decoded, height=5, width=4, cols=k, scale=2)
    assert (tmp_path / "m.pgm").read_bytes() == (tmp_path / "h.pgm").read_bytes()
    assert read_pgm(tmp_path / "m.pgm").shape == (2 * (k * 5 + k + 1), 2 * (k * 4 + k + 1))
    with pytest.raises(latent.ShapeMismatch):
        vae.manifold_grid(tmp_path / "m.pgm", k=k, height=4, width=4)
    with pytest.raises(latent.InvalidArgument, match="latent dimensions"):
        latent.Vae(input_dim=20, latent_dim=4).manifold_grid(tmp_path / "m.pgm", k=k, height=5, width=4)
