"""Render docs/images/scale_tiling.png: how a tiled run cuts an image, and how it scales.

Usage::

    python docs/scripts/make_scale_figure.py [OUTPUT_DIR] [--bench results.json ...]

Left: a 1024 x 1024 field of Gaussian galaxies (two of them larger than the overlap) run
with ``tile=512`` (cores: white lines; one window: dashed), every source outlined in the
colour of the tile that owns it (the tile holding the centre of its parent detection's
bounding box). Right: CPU
seconds per megapixel against the image size for the fast and the full measurement sets,
from ``benchmarks/bench_scale.py --json`` files (the figures of docs/scale.md when none is
given).
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

# Measured by benchmarks/bench_scale.py on 2026-11-24 (--measure-set fast with --peer: 4k-16k;
# --measure-set full: 2k, 4k, and 16k tiled); see docs/scale.md.
FIGURES: list[dict] = [
    {"size": 4096, "run": "tiled", "measure_set": "fast", "cpu": 9.0, "peak_mb": 779},
    {"size": 4096, "run": "dask", "measure_set": "fast", "cpu": 15.7, "peak_mb": 1526},
    {"size": 4096, "run": "sep", "measure_set": "sep", "cpu": 2.2, "peak_mb": 1049},
    {"size": 8192, "run": "tiled", "measure_set": "fast", "cpu": 26.5, "peak_mb": 1023},
    {"size": 8192, "run": "dask", "measure_set": "fast", "cpu": 48.2, "peak_mb": 1789},
    {"size": 8192, "run": "sep", "measure_set": "sep", "cpu": 4.8, "peak_mb": 1492},
    {"size": 16384, "run": "tiled", "measure_set": "fast", "cpu": 107.8, "peak_mb": 1861},
    {"size": 16384, "run": "dask", "measure_set": "fast", "cpu": 176.3, "peak_mb": 2632},
    {"size": 16384, "run": "sep", "measure_set": "sep", "cpu": 22.5, "peak_mb": 3323},
    {"size": 2048, "run": "tiled", "measure_set": "full", "cpu": 19.1, "peak_mb": 666},
    {"size": 2048, "run": "dask", "measure_set": "full", "cpu": 41.6, "peak_mb": 991},
    {"size": 4096, "run": "tiled", "measure_set": "full", "cpu": 74.9, "peak_mb": 918},
    {"size": 4096, "run": "dask", "measure_set": "full", "cpu": 155.4, "peak_mb": 1554},
    {"size": 16384, "run": "tiled", "measure_set": "full", "cpu": 938.3, "peak_mb": 1997},
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
    ap.add_argument("--bench", nargs="*", default=[], help="JSON files replacing FIGURES")
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

    figures = [r for path in args.bench for r in json.loads(Path(path).read_text())]
    figures = figures or list(FIGURES)
    series = (
        ("tiled", "fast", "o", "C0", "tiled, 1 process, fast set"),
        ("dask", "fast", "s", "C1", "LocalCluster 2 workers, fast set"),
        ("tiled", "full", "o", "C2", "tiled, 1 process, full set"),
        ("dask", "full", "s", "C3", "LocalCluster 2 workers, full set"),
        ("sep", "sep", "^", "C7", "SEP (peer), whole image"),
    )
    for run, mset, marker, colour, label in series:
        rs = [r for r in figures if r["run"] == run and r.get("measure_set", "fast") == mset]
        rs = sorted(rs, key=lambda r: r["size"])
        if rs:
            mp = np.array([r["size"] ** 2 / 1e6 for r in rs])
            cpu = np.array([r["cpu"] for r in rs])
            bx.plot(mp, cpu / mp, marker=marker, color=colour, label=label)
            for m, r in zip(mp, rs, strict=True):
                bx.annotate(f"{r['peak_mb'] / 1024:.1f} GB", (m, r["cpu"] / m * 1.08), fontsize=8)
    bx.set_xscale("log")
    bx.set_yscale("log")
    bx.set_xlabel("image area (megapixels)")
    bx.set_ylabel("CPU seconds per megapixel (labels: peak memory)")
    bx.set_title("constant cost per pixel = time linear in the area")
    bx.legend(fontsize=8)
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "scale_tiling.png", dpi=90)
    print(out / "scale_tiling.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
