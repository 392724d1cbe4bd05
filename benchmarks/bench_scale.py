"""Mosaic-scale benchmark: ``morphoscope run`` on 4k, 8k and 16k simulated fields.

For each size a field of constant source density (about 100 000 galaxies on 16384 x 16384
pixels) is written as a float32 FITS file; then, each in a fresh process,

* ``tiled``: ``morphoscope run FIELD --tile 2048 --workers 1`` (single process);
* ``dask``: ``morphoscope run FIELD --tile 2048 --workers N`` (a LocalCluster of N
  single-threaded worker processes);
* ``sep`` (peer, ``--peer``): ``sep.Background`` + ``sep.extract`` on the whole image
  (thresh 1.5 sigma, minarea 5, the same Gaussian filter), the usual whole-image approach.

``--measure-set full|fast`` (passed to ``morphoscope run``) picks the measurements: ``full``
(the default of ``measure``: statmorph's set and a Sérsic fit per source) or ``fast`` (the
first-order columns only), printed in the header and stored in every JSON row.

Printed per run: wall time, CPU time (user + system, all processes: on a shared machine
the better measure of the work done), peak resident memory of the whole process tree (sum over the
processes, sampled every 0.2 s, memory-mapped file pages included) and of its largest
process, CPU seconds per megapixel (constant if time is linear in the area), the number of
sources, and the completeness against the truth (fraction of galaxies with S/N > 20
matched within 2 pixels) for morphoscope and the peer.

The field generator is fast by design (rendering 100 000 GalSim profiles would take hours):
a library of PSF-convolved Sérsic stamps (``independent_field.render_sersic`` and
``moffat_psf``: n 0.5-4, r_e 1.5-8 px, axis ratio 0.3-1) is rendered once, and each galaxy
is a randomly chosen stamp scaled to a flux drawn from a power law in S/N (5 to 2000),
placed at a random position, over a sky of 1 +- 1 with a weak gradient.

Usage::

    python benchmarks/bench_scale.py [--sizes 4096 8192 16384] [--workers 2] [--peer]
        [--measure-set full|fast] [--work /tmp/bench_scale] [--keep] [--json FILE]
    python benchmarks/bench_scale.py --check 4096 [--measure-set fast]
        # tiled == untiled, Dask == single process
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from independent_field import moffat_psf, render_sersic

DENSITY = 100_000 / 16384**2  # galaxies per pixel
SKY = 1.0


def stamp_library(n: int = 240, seed: int = 0) -> list[tuple[np.ndarray, float]]:
    """PSF-convolved unit-flux Sérsic stamps and the S/N-per-flux of each (sky rms 1)."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(seed)
    psf = moffat_psf(fwhm=3.0, half=10)
    out = []
    for _ in range(n):
        r_e = float(np.exp(rng.uniform(np.log(1.5), np.log(8.0))))
        nser = float(np.exp(rng.uniform(np.log(0.5), np.log(4.0))))
        q = float(rng.uniform(0.3, 1.0))
        pa = float(rng.uniform(0, np.pi))
        half = int(np.clip(5 * r_e, 8, 40))
        st = fftconvolve(render_sersic(r_e, nser, q, pa, 0.0, 0.0, half), psf, mode="same")
        st = np.clip(st, 0, None)
        st /= st.sum()
        out.append((st.astype(np.float32), float(np.sqrt((st**2).sum()))))
    return out


def make_field(size: int, path: Path, seed: int = 1) -> Table:
    """Write a ``size`` x ``size`` float32 field to ``path``; return the truth table."""
    rng = np.random.default_rng(seed)
    lib = stamp_library()
    n = round(DENSITY * size * size)
    img = np.empty((size, size), np.float32)
    rows = 1024
    yy = np.arange(size, dtype=np.float32)
    for r0 in range(0, size, rows):
        r1 = min(size, r0 + rows)
        strip = rng.standard_normal((r1 - r0, size), dtype=np.float32) * SKY
        strip += (
            np.float32(0.5) + np.float32(2e-5) * yy[None, :] + np.float32(1e-5) * yy[r0:r1, None]
        )
        img[r0:r1] = strip
    # S/N (matched filter) from a power law dN/dS ~ S^-1.7 between 5 and 2000.
    a, lo, hi = -0.7, 5.0, 2000.0
    u = rng.uniform(size=n)
    snr = (lo**a + u * (hi**a - lo**a)) ** (1 / a)
    which = rng.integers(0, len(lib), n)
    x = rng.integers(0, size, n)
    y = rng.integers(0, size, n)
    for k in range(n):
        st, norm = lib[which[k]]
        flux = snr[k] * SKY / norm
        h = st.shape[0] // 2
        y0, y1 = y[k] - h, y[k] + h + 1
        x0, x1 = x[k] - h, x[k] + h + 1
        sy0, sx0 = max(0, -y0), max(0, -x0)
        sy1 = st.shape[0] - max(0, y1 - size)
        sx1 = st.shape[1] - max(0, x1 - size)
        img[max(0, y0) : min(size, y1), max(0, x0) : min(size, x1)] += (
            np.float32(flux) * st[sy0:sy1, sx0:sx1]
        )
    fits.PrimaryHDU(img).writeto(path, overwrite=True)
    return Table({"x": x, "y": y, "snr": snr})


def _tree_rss(proc) -> tuple[int, int]:
    import psutil

    try:
        p = psutil.Process(proc.pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    total = big = 0
    for q in procs:
        try:
            r = q.memory_info().rss
        except psutil.Error:
            continue
        total += r
        big = max(big, r)
    return total, big


def timed(cmd: list[str], log: Path) -> dict:
    """Run ``cmd``; wall time and peak RSS of its process tree (total and largest)."""
    import resource

    peak = {"total": 0, "largest": 0}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        done = threading.Event()

        def watch():
            while not done.is_set():
                total, big = _tree_rss(proc)
                peak["total"] = max(peak["total"], total)
                peak["largest"] = max(peak["largest"], big)
                time.sleep(0.2)

        th = threading.Thread(target=watch, daemon=True)
        th.start()
        rc = proc.wait()
        done.set()
        th.join()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({rc}); see {log}")
    return {
        "wall": wall,
        "cpu": cpu,
        "peak_mb": peak["total"] / 2**20,
        "largest_mb": peak["largest"] / 2**20,
    }


SEP_SCRIPT = """
import sys, numpy as np, sep
from astropy.io import fits
from astropy.table import Table
img = fits.getdata(sys.argv[1]).astype(np.float32)
sep.set_extract_pixstack(20_000_000)
sep.set_sub_object_limit(4096)
bkg = sep.Background(img, bw=64, bh=64)
sub = img - bkg.back()
sigma = 3.0 / 2.3548
r = int(4 * sigma + 0.5)
yk, xk = np.mgrid[-r:r + 1, -r:r + 1]
kernel = np.exp(-(xk**2 + yk**2) / (2 * sigma**2))
obj = sep.extract(sub, 1.5, err=bkg.globalrms, minarea=5, filter_kernel=kernel,
                  filter_type="conv", deblend_nthresh=32, deblend_cont=0.005)
Table({"x": obj["x"], "y": obj["y"]}).write(sys.argv[2], overwrite=True)
"""


def completeness(cat_xy: np.ndarray, truth: Table, radius: float = 2.0) -> float:
    from scipy.spatial import cKDTree

    bright = np.asarray(truth["snr"]) > 20
    txy = np.column_stack([truth["x"], truth["y"]])[bright].astype(float)
    if len(cat_xy) == 0 or len(txy) == 0:
        return float("nan")
    d, _ = cKDTree(cat_xy).query(txy)
    return float(np.mean(d <= radius))


def compare_catalogs(c1: Table, c2: Table) -> str:
    """Column-by-column differences of two catalogs of the same sources in the same order.

    Every column but the Sérsic fit's: largest ``|a - b| / max(1, |a|)`` and how many
    sources differ by more than 1e-9 of it. The Sérsic fit (``sersic_*``, ``flag_sersic``,
    batched Levenberg-Marquardt fits, see docs/scale.md): the fitted values in units of their
    uncertainty, and how many sources differ by more than 0.1 sigma, change ``flag_sersic``,
    or are finite in one catalog and NaN in the other.
    """
    labels = np.asarray(c1["label"])
    worst, worst_col, n_other = 0.0, "", set()
    sersic_sig, sersic_col, n_sersic, n_nan = 0.0, "", set(), set()
    for col in c1.colnames:
        if col == "label":
            continue
        a, b = np.asarray(c1[col], float), np.asarray(c2[col], float)
        nan_diff = np.isfinite(a) != np.isfinite(b)
        ok = np.isfinite(a) & np.isfinite(b)
        sersic = col.startswith("sersic_") or col == "flag_sersic"
        if sersic:
            n_nan |= set(labels[nan_diff].tolist())
        else:
            n_other |= set(labels[nan_diff].tolist())
        if not ok.any():
            continue
        diff = np.abs(a - b)
        if not sersic:
            rel = np.where(ok, diff / np.maximum(1.0, np.abs(a)), 0.0)
            n_other |= set(labels[rel > 1e-9].tolist())
            if rel.max() > worst:
                worst, worst_col = float(rel.max()), col
        elif col == "flag_sersic":
            n_sersic |= set(labels[ok & (diff > 0)].tolist())
        elif f"{col}_err" in c1.colnames:
            e = np.asarray(c1[f"{col}_err"], float)
            good = ok & np.isfinite(e) & (e > 0)
            sig = np.where(good, diff / np.where(good, e, 1.0), 0.0)
            n_sersic |= set(labels[sig > 0.1].tolist())
            if sig.max() > sersic_sig:
                sersic_sig, sersic_col = float(sig.max()), col
    return (
        f"other columns: largest relative difference {worst:.1e} ({worst_col or '-'}), "
        f"{len(n_other)} sources beyond 1e-9; Sersic fit: largest {sersic_sig:.1e} sigma "
        f"({sersic_col or '-'}), {len(n_sersic)} sources beyond 0.1 sigma or with another "
        f"flag_sersic, {len(n_nan)} fitted in one run only"
    )


def check_same(size: int, work: Path, workers: int, measure_set: str = "full") -> None:
    """Tiled (two tile sizes) vs untiled, and LocalCluster vs single process, on one field."""
    from morphoscope.pipeline import measure_set_options, run_pipeline

    opts = measure_set_options(measure_set)
    print(f"# check {size}: measurement set {measure_set} {opts}", flush=True)
    path = work / f"check_{size}.fits"
    make_field(size, path)
    ref = run_pipeline(str(path), report=False, tile=None, measure_options=opts)
    s1 = np.asarray(ref.segmap)
    c1 = ref.catalog[np.argsort(np.asarray(ref.catalog["label"]))]
    single = None
    for tile in (size // 4, size // 2):
        res = run_pipeline(str(path), report=False, tile=tile, measure_options=opts)
        s2 = np.asarray(res.segmap)
        pairs = np.unique(np.stack([s1.ravel(), s2.ravel()]).astype(np.int64), axis=1)
        one_to_one = pairs.shape[1] == np.unique(s1).size == np.unique(s2).size
        lut = dict(zip(pairs[1], pairs[0], strict=True))
        c2 = res.catalog[np.argsort([lut[int(v)] for v in res.catalog["label"]])]
        d = compare_catalogs(c1, c2)
        print(
            f"# check {size}: tile {tile}: {len(c2)} sources (untiled {len(c1)}), labels "
            f"one-to-one: {one_to_one}, fallback windows "
            f"{res.catalog.meta['tiling']['fallback_windows']}; {d}",
            flush=True,
        )
        single = res
    res = run_pipeline(
        str(path), report=False, tile=size // 2, workers=workers, measure_options=opts
    )
    same = np.array_equal(np.asarray(res.segmap), np.asarray(single.segmap)) and all(
        np.array_equal(np.asarray(res.catalog[c]), np.asarray(single.catalog[c]), equal_nan=True)
        for c in single.catalog.colnames
    )
    print(f"# check {size}: LocalCluster of {workers} == single process: {same}", flush=True)
    path.unlink(missing_ok=True)


def _print_row(r: dict) -> None:
    mpix = r["size"] ** 2 / 1e6
    print(
        f"{r['size']:>6} {r['run']:<8} {r['sources']:>8} {r['wall']:>8.1f} {r['cpu']:>8.1f} "
        f"{r['cpu'] / mpix:>10.3f} {r['peak_mb']:>8.0f} {r['largest_mb']:>8.0f} "
        f"{r['compl']:>6.3f}",
        flush=True,
    )


def _save(path: Path | None, results: list[dict]) -> None:
    """Write the rows so far (after every run: a long benchmark keeps what it measured)."""
    if path is not None:
        path.write_text(json.dumps(results, indent=1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192, 16384])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tile", type=int, default=2048)
    ap.add_argument("--runs", nargs="+", default=["tiled", "dask"], choices=["tiled", "dask"])
    ap.add_argument("--peer", action="store_true", help="also run SEP on the whole image")
    ap.add_argument(
        "--measure-set",
        choices=["full", "fast"],
        default="full",
        help="measurements of morphoscope run (default full: statmorph's set + Sersic fit)",
    )
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_scale"))
    ap.add_argument("--keep", action="store_true", help="keep the fields and outputs")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    ap.add_argument(
        "--check", type=int, metavar="SIZE", help="only compare tiled/untiled/Dask on a field"
    )
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.check:
        check_same(args.check, args.work, args.workers, args.measure_set)
        return 0
    exe = [sys.executable, "-m", "morphoscope.cli"]
    results = []
    print(
        f"# measurement set: {args.measure_set}; tiles {args.tile}; {args.workers} Dask workers; "
        f"load average {os.getloadavg()[0]:.1f}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        flush=True,
    )
    print(
        f"{'size':>6} {'run':<8} {'sources':>8} {'wall s':>8} {'CPU s':>8} {'CPU s/Mpix':>10} "
        f"{'peak MB':>8} {'largest':>8} {'compl':>6}"
    )
    for size in args.sizes:
        field = args.work / f"field_{size}.fits"
        t0 = time.perf_counter()
        truth = make_field(size, field)
        gen = time.perf_counter() - t0
        print(f"# {size} x {size}: {len(truth)} galaxies, generated in {gen:.0f} s", flush=True)
        runs = [(r, 1 if r == "tiled" else args.workers) for r in args.runs]
        for name, workers in runs:
            out = args.work / f"out_{size}_{name}"
            cmd = [
                *exe,
                "run",
                str(field),
                "--tile",
                str(args.tile),
                "--workers",
                str(workers),
                "--measure-set",
                args.measure_set,
                "--no-report",
                "--quiet",
                "--out",
                str(out),
            ]
            r = timed(cmd, args.work / f"log_{size}_{name}.txt")
            cat = Table.read(out / "catalog.ecsv")
            xy = np.column_stack([cat["xc_centroid"], cat["yc_centroid"]])
            r.update(size=size, run=name, sources=len(cat), compl=completeness(xy, truth),
                     measure_set=args.measure_set, load=os.getloadavg()[0])  # fmt: skip
            results.append(r)
            _print_row(r)
            _save(args.json, results)
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
        if args.peer:
            script = args.work / "sep_run.py"
            script.write_text(SEP_SCRIPT)
            out = args.work / f"sep_{size}.ecsv"
            try:
                r = timed(
                    [sys.executable, str(script), str(field), str(out)],
                    args.work / f"log_{size}_sep.txt",
                )
                cat = Table.read(out)
                xy = np.column_stack([cat["x"], cat["y"]])
                r.update(size=size, run="sep", sources=len(cat), compl=completeness(xy, truth),
                         measure_set="sep", load=os.getloadavg()[0])  # fmt: skip
                results.append(r)
                _print_row(r)
                _save(args.json, results)
            except RuntimeError as exc:
                print(f"{size:>6} sep      failed: {exc}", flush=True)
        if not args.keep:
            field.unlink(missing_ok=True)
    for name in ("tiled", "dask"):
        rs = [r for r in results if r["run"] == name]
        if len(rs) >= 2:
            area = np.array([r["size"] ** 2 for r in rs], float)
            for key in ("wall", "cpu"):
                t = np.array([r[key] for r in rs])
                slope = np.polyfit(np.log(area), np.log(t), 1)[0]
                print(f"# {name}: {key} time ~ area^{slope:.2f} over {len(rs)} sizes")
    _save(args.json, results)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
