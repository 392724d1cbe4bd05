"""Render docs/images/scale_tiling.png: how a tiled run cuts an image, and how it scales.

Usage::

    python docs/scripts/make_scale_figure.py [OUTPUT_DIR] [--bench results.json ...]

Left: a 1024 x 1024 field of Gaussian galaxies (two of them larger than the overlap) run
with ``tile=512`` (cores: white lines; one window: dashed), every source outlined in the
colour of the tile that owns it (the tile holding the centre of its parent detection's
bounding box). Right: CPU
seconds per megapixel against the image size, from ``benchmarks/bench_scale.py --json``
files (the figures of docs/scale.md when none is given).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import ndimage

from morphoscope.pipeline import run_pipeline
from morphoscope.pipeline.tiling import DEFAULT_OVERLAP, plan_tiles

# (size, run, CPU seconds) measured by benchmarks/bench_scale.py; see docs/scale.md.
FIGURES: list[dict] = [
    {"cpu": 5.0, "peak_mb": 703.0, "size": 2048, "run": "tiled"},
    {"cpu": 12.5, "peak_mb": 1069.6, "size": 2048, "run": "dask"},
    {"cpu": 1.2, "peak_mb": 940.9, "size": 2048, "run": "sep"},
    {"cpu": 14.0, "peak_mb": 862.3, "size": 4096, "run": "tiled"},
    {"cpu": 25.1, "peak_mb": 1717.8, "size": 4096, "run": "dask"},
    {"cpu": 2.0, "peak_mb": 1048.4, "size": 4096, "run": "sep"},
    {"cpu": 47.2, "peak_mb": 1084.2, "size": 8192, "run": "tiled"},
    {"cpu": 60.6, "peak_mb": 1964.5, "size": 8192, "run": "dask"},
    {"cpu": 5.0, "peak_mb": 1492.4, "size": 8192, "run": "sep"},
    {"cpu": 193.9, "peak_mb": 1923.2, "size": 16384, "run": "tiled"},
    {"cpu": 254.3, "peak_mb": 2830.0, "size": 16384, "run": "dask"},
    {"cpu": 22.0, "peak_mb": 3304.5, "size": 16384, "run": "sep"},
]


def field(size=1024, seed=12):
    rng = np.random.default_rng(seed)
    img = rng.normal(0, 1, (size, size)) + 5
    y, x = np.mgrid[:size, :size]
    blobs = [(*rng.uniform(0, size, 2), rng.uniform(5, 200), rng.uniform(1, 4)) for _ in range(300)]
    blobs += [(510, 520, 30, 40.0), (130, 800, 30, 40.0)]
    for x0, y0, a, s in blobs:
        r = int(6 * s) + 1
        ys = slice(max(0, int(y0) - r), min(size, int(y0) + r))
        xs = slice(max(0, int(x0) - r), min(size, int(x0) + r))
        img[ys, xs] += a * np.exp(-((x[ys, xs] - x0) ** 2 + (y[ys, xs] - y0) ** 2) / (2 * s * s))
    return img


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default="docs/images")
    ap.add_argument("--bench", nargs="*", default=[])
    args = ap.parse_args(argv)
    img = field()
    tile = 512
    res = run_pipeline(img, report=False, tile=tile)
    seg = np.asarray(res.segmap)
    tiles = plan_tiles(img.shape, tile, DEFAULT_OVERLAP)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 5.6))
    ax.imshow(np.arcsinh((img - 5) / 3), origin="lower", cmap="gray_r", vmin=-1, vmax=5)
    colours = plt.cm.tab10(np.arange(len(tiles)))
    # Owner tile of each source's parent: the core holding its bounding-box centre.
    parent = res.segmentation.parent
    objs = ndimage.find_objects(seg)
    boxes = {}
    for lab, o in enumerate(objs, start=1):
        p = parent[lab]
        b = (o[0].start, o[0].stop, o[1].start, o[1].stop)
        q = boxes.get(p, b)
        boxes[p] = (min(q[0], b[0]), max(q[1], b[1]), min(q[2], b[2]), max(q[3], b[3]))
    edge = seg != ndimage.grey_erosion(seg, size=3)
    owner = np.zeros(seg.max() + 1, int)
    for lab in range(1, seg.max() + 1):
        b = boxes[parent[lab]]
        cy, cx = (b[0] + b[1] - 1) // 2, (b[2] + b[3] - 1) // 2
        owner[lab] = next(
            t.index for t in tiles if t.core[0] <= cy < t.core[1] and t.core[2] <= cx < t.core[3]
        )
    rgba = np.zeros((*seg.shape, 4))
    lab_edge = np.where(edge & (seg > 0), seg, 0)
    own = owner[lab_edge]
    for t in tiles:
        rgba[(lab_edge > 0) & (own == t.index)] = colours[t.index]
    ax.imshow(rgba, origin="lower", interpolation="nearest")
    for t in tiles:
        y0, y1, x0, x1 = t.core
        ax.add_patch(
            plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="white", lw=1.5)
        )
    y0, y1, x0, x1 = tiles[0].window
    ax.add_patch(
        plt.Rectangle(
            (x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=colours[0], lw=1.5, ls="--"
        )
    )
    ax.set_title(f"tile {tile}, overlap {DEFAULT_OVERLAP}: {len(res.catalog)} sources ")
    ax.set_axis_off()

    figures = list(FIGURES)
    for path in args.bench:
        figures += json.loads(Path(path).read_text())
    for run, marker in (("tiled", "o"), ("dask", "s"), ("sep", "^")):
        rs = sorted((r for r in figures if r["run"] == run), key=lambda r: r["size"])
        if rs:
            mp = np.array([r["size"] ** 2 / 1e6 for r in rs])
            cpu = np.array([r["cpu"] for r in rs])
            bx.plot(mp, cpu / mp, marker=marker, label=run)
            for m, r in zip(mp, rs, strict=True):
                bx.annotate(f"{r['peak_mb'] / 1024:.1f} GB", (m, r["cpu"] / m * 1.04), fontsize=8)
    bx.set_xscale("log")
    bx.set_xlabel("image area (megapixels)")
    bx.set_ylabel("CPU seconds per megapixel (labels: peak memory)")
    bx.set_ylim(bottom=0)
    bx.set_title("constant cost per pixel = time linear in the area")
    bx.legend()
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "scale_tiling.png", dpi=90)
    print(out / "scale_tiling.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
