"""grid_dbscan against scikit-learn's DBSCAN on thresholded pixels.

For 1e4, 1e5 and 1e6 points (the pixels above a threshold of a smoothed random field,
60% of the bounding box filled, as in a large galaxy cutout), each method runs in its
own process: wall time (best of ``--repeat``; scikit-learn once at 1e6), peak Python
heap (tracemalloc, in a separate run) and peak resident memory above the process's
baseline after loading the data (``ru_maxrss``), and whether the labels are identical.
Points are ``[x, y, f]`` with ``f`` the pixel value scaled to at most ``--value-scale``
(1, as in the emission search; 10 makes the flux coordinate cut many grid-neighbour pairs
and exercises the general union-find path), or ``[x, y]`` with ``--dims 2``.

Usage::

    python benchmarks/bench_dbscan.py [--sizes 10000 100000 1000000] [--dims 3] [--out r.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

EPS = 1.5
MIN_SAMPLES = 4


def make_data(
    n: int, seed: int = 0, fill: float = 0.6, value_scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n / fill)))
    img = ndimage.gaussian_filter(rng.normal(size=(side, side)), 2.0)
    thr = np.partition(img.ravel(), img.size - n)[img.size - n]
    mask = img >= thr
    values = value_scale * img / np.abs(img).max()
    return mask, values


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(method: str, path: str, dims: int, repeat: int, out: str) -> None:
    data = np.load(path)
    mask, values = data["mask"], data["values"]
    if method == "sklearn":
        from sklearn.cluster import DBSCAN

        ys, xs = np.nonzero(mask)
        cols = [xs, ys] if dims == 2 else [xs, ys, values[ys, xs]]
        points = np.column_stack(cols).astype(np.float64)
        del ys, xs

        def run():
            return DBSCAN(eps=EPS, min_samples=MIN_SAMPLES).fit_predict(points)
    else:
        from morphoscope.emission import grid_dbscan

        vals = None if dims == 2 else values

        def run():
            return grid_dbscan(mask, EPS, MIN_SAMPLES, values=vals)

    base = _rss_mb()
    times = []
    labels = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        labels = run()
        times.append(time.perf_counter() - t0)
    rss_peak = _rss_mb() - base
    del labels
    tracemalloc.start()
    labels = run()
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.save(out, labels)
    print(
        json.dumps({"time_s": min(times), "rss_peak_mb": rss_peak, "heap_peak_mb": heap_peak / 1e6})
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--dims", type=int, choices=(2, 3), default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--value-scale",
        type=float,
        default=1.0,
        help="multiply the flux coordinate (10 makes it cut many grid-neighbour pairs, "
        "exercising the general union-find path)",
    )
    ap.add_argument("--out", default=None)
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        method, path, dims, repeat, out = args.worker
        worker(method, path, int(dims), int(repeat), out)
        return 0

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            mask, values = make_data(n, value_scale=args.value_scale)
            path = Path(tmp) / f"data_{n}.npz"
            np.savez(path, mask=mask, values=values)
            res = {}
            for method in ("grid", "sklearn"):
                rep = 1 if (method == "sklearn" and n >= 500_000) else args.repeat
                lab = Path(tmp) / f"{method}_{n}.npy"
                cmd = [sys.executable, __file__, "--worker", method, str(path), str(args.dims)]
                proc = subprocess.run(
                    [*cmd, str(rep), str(lab)], capture_output=True, text=True, check=True
                )
                res[method] = json.loads(proc.stdout.strip().splitlines()[-1])
                res[method]["labels"] = np.load(lab)
            same = bool(np.array_equal(res["grid"]["labels"], res["sklearn"]["labels"]))
            g, s = res["grid"], res["sklearn"]
            row = {
                "n_points": int(mask.sum()),
                "dims": args.dims,
                "value_scale": args.value_scale,
                "n_clusters": int(g["labels"].max()) + 1,
                "t_sklearn_s": s["time_s"],
                "t_grid_s": g["time_s"],
                "speedup": s["time_s"] / g["time_s"],
                "heap_sklearn_mb": s["heap_peak_mb"],
                "heap_grid_mb": g["heap_peak_mb"],
                "heap_ratio": s["heap_peak_mb"] / max(g["heap_peak_mb"], 1e-9),
                "rss_sklearn_mb": s["rss_peak_mb"],
                "rss_grid_mb": g["rss_peak_mb"],
                "rss_ratio": s["rss_peak_mb"] / max(g["rss_peak_mb"], 1e-9),
                "identical": same,
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)

    head = (
        "| points | dims | f scale | clusters | sklearn s | grid s | speed-up "
        "| heap MB sk/grid (x) | RSS MB sk/grid (x) | identical |"
    )
    print(head)
    print("|" + "---|" * 10)
    for r in rows:
        print(
            f"| {r['n_points']:,} | {r['dims']} | {r['value_scale']:g} | {r['n_clusters']} "
            f"| {r['t_sklearn_s']:.3f} "
            f"| {r['t_grid_s']:.4f} | {r['speedup']:.0f}x "
            f"| {r['heap_sklearn_mb']:.1f} / {r['heap_grid_mb']:.1f} ({r['heap_ratio']:.1f}x) "
            f"| {r['rss_sklearn_mb']:.0f} / {r['rss_grid_mb']:.0f} ({r['rss_ratio']:.1f}x) "
            f"| {r['identical']} |"
        )
    if args.out:
        tmp_out = args.out + ".tmp"
        with open(tmp_out, "w") as fh:
            json.dump(rows, fh, indent=1)
        os.replace(tmp_out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
