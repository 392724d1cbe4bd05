"""Validation of the extended-emission search on simulated galaxies.

Two independent simulated sets:

``sersic`` (always)
    This script's own generator: astropy ``Sersic2D`` continuum (n 0.8-2.5,
    r_eff 1.5-3 px, axis ratio 0.5-1) convolved with a Gaussian PSF (FWHM 2 px), on a
    mosaic of 64 x 64 px stamps. The medium band holds the continuum plus line
    emission of one kind:

    - ``halo``: a circular exponential halo,
    - ``bicone``: two opposite Gaussian-profile lobes (opening angle 30-60 deg),
    - ``compact`` (null): line emission with exactly the continuum's profile,
    - ``none`` (null): no line at all.

    Grid: line-to-continuum flux ratio L/C in the medium band, extent = r90 of the
    (PSF-convolved) emission over r90 of the continuum, and the integrated S/N of the
    emission, ``F_line / (rms * sqrt(pi r90_em**2))``. The reference band is the same
    continuum at an integrated S/N of ``max(50, 2 x`` the medium-band continuum's).

``scene`` (when :mod:`morphoscope.simulate` provides ``simulate_scene``)
    GalSim scenes with ``emission_band="F335M"``; the truth columns
    ``has_extended_emission``, ``emission_kind``, ``emission_extent`` say which
    sources should be candidates.

Reported: completeness of ``candidate`` per (kind, L/C, extent, S/N) cell, the
false-positive rate per (null kind, L/C, S/N) cell for each brightness guard, and the
throughput (sources/s) on 1 and 2 processes.

Usage::

    python benchmarks/bench_emission.py [--per-cell 25] [--seed 1] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from astropy.modeling.models import Sersic2D
from scipy import ndimage

STAMP = 64
PSF_FWHM = 2.0
SIGMA = PSF_FWHM / (2 * math.sqrt(2 * math.log(2)))


def _r90(img: np.ndarray, xc: float, yc: float) -> float:
    yy, xx = np.indices(img.shape)
    r = np.hypot(xx - xc, yy - yc).ravel()
    order = np.argsort(r)
    cum = np.cumsum(img.ravel()[order])
    return float(r[order][np.searchsorted(cum, 0.9 * cum[-1])])


def _continuum(rng, xc, yc):
    yy, xx = np.mgrid[:STAMP, :STAMP]
    n = rng.uniform(0.8, 2.5)
    r_eff = rng.uniform(1.5, 3.0)
    ellip = rng.uniform(0.0, 0.5)
    theta = rng.uniform(0, np.pi)
    model = Sersic2D(amplitude=1.0, r_eff=r_eff, n=n, x_0=xc, y_0=yc, ellip=ellip, theta=theta)
    img = model(xx, yy)
    img = ndimage.gaussian_filter(img, SIGMA, mode="constant")
    return img / img.sum()


def _emission(rng, kind, xc, yc, cont, extent):
    """Unit-flux emission map of the given kind whose r90 is ``extent`` x the continuum's."""
    yy, xx = np.mgrid[:STAMP, :STAMP]
    r90_c = _r90(cont, xc, yc)
    if kind == "compact":
        return cont.copy()
    target = extent * r90_c
    angle = rng.uniform(0, np.pi)
    opening = np.deg2rad(rng.uniform(30, 60))

    def make(scale):
        if kind == "halo":
            img = np.exp(-np.hypot(xx - xc, yy - yc) / scale)
        else:  # bicone: Gaussian radial profile in two opposite wedges, Gaussian edges
            r = np.hypot(xx - xc, yy - yc)
            phi = np.arctan2(yy - yc, xx - xc) - angle
            dphi = np.abs((phi + np.pi / 2) % np.pi - np.pi / 2)
            img = np.exp(-0.5 * (dphi / (opening / 2)) ** 2) * np.exp(-0.5 * (r / scale) ** 2)
            img *= r / (r + 1.0)
        img = ndimage.gaussian_filter(img, SIGMA, mode="constant")
        return img / img.sum()

    # r90 grows monotonically with scale: bisection
    lo, hi = 0.2, 40.0
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        if _r90(make(mid), xc, yc) < target:
            lo = mid
        else:
            hi = mid
    return make(0.5 * (lo + hi))


def make_set(cells, per_cell, seed, grid=10):
    """Tile simulated stamps into mosaics; return images, rms, positions and truth rows."""
    rng = np.random.default_rng(seed)
    specs = [c for c in cells for _ in range(per_cell)]
    n = len(specs)
    ncol = grid
    nrow = math.ceil(n / ncol)
    shape = (nrow * STAMP, ncol * STAMP)
    med = np.zeros(shape)
    ref = np.zeros(shape)
    rms_m = np.zeros(shape)
    rms_r = np.zeros(shape)
    truth = []
    for i, (kind, lc, extent, snr) in enumerate(specs):
        r, c = divmod(i, ncol)
        xc = STAMP / 2 + rng.uniform(-0.5, 0.5)
        yc = STAMP / 2 + rng.uniform(-0.5, 0.5)
        cont = _continuum(rng, xc, yc)
        r90c = _r90(cont, xc, yc)
        if kind == "none":
            em = np.zeros_like(cont)
            area = math.pi * r90c**2
        else:
            em = _emission(rng, kind, xc, yc, cont, extent)
            area = math.pi * _r90(em, xc, yc) ** 2
        sig_m = 1.0
        if kind == "none":
            # "snr" is then the medium-band continuum's integrated S/N
            f_cont = snr * sig_m * math.sqrt(area)
            f_line = 0.0
        else:
            f_line = snr * sig_m * math.sqrt(area)
            f_cont = f_line / lc
        snr_cont_m = f_cont / (sig_m * math.sqrt(math.pi * r90c**2))
        snr_ref = max(50.0, 2.0 * snr_cont_m)
        f_ref = 1000.0
        sig_r = f_ref / (snr_ref * math.sqrt(math.pi * r90c**2))
        m_img = f_cont * cont + f_line * em + rng.normal(0, sig_m, cont.shape)
        r_img = f_ref * cont + rng.normal(0, sig_r, cont.shape)
        sl = (slice(r * STAMP, (r + 1) * STAMP), slice(c * STAMP, (c + 1) * STAMP))
        med[sl] = m_img
        ref[sl] = r_img
        rms_m[sl] = sig_m
        rms_r[sl] = sig_r
        truth.append(
            {
                "kind": kind,
                "lc": lc,
                "extent": extent,
                "snr": snr,
                "x": c * STAMP + xc,
                "y": r * STAMP + yc,
                "extended": kind in ("halo", "bicone") and extent >= 1.5,
            }
        )
    # empty stamps beyond n: fill with noise so the images are valid everywhere
    filled = np.zeros(shape, bool)
    for i in range(n):
        r, c = divmod(i, ncol)
        filled[r * STAMP : (r + 1) * STAMP, c * STAMP : (c + 1) * STAMP] = True
    med[~filled] = rng.normal(0, 1.0, int((~filled).sum()))
    ref[~filled] = rng.normal(0, 1.0, int((~filled).sum()))
    rms_m[~filled] = 1.0
    rms_r[~filled] = 1.0
    return med, ref, rms_m, rms_r, truth


def _run_chunk(args):
    from morphoscope.emission import search

    med, ref, rms_m, rms_r, pos, params = args
    return search(med, ref, rms_medium=rms_m, rms_reference=rms_r, positions=pos, **params)


def run_search(med, ref, rms_m, rms_r, truth, params, n_jobs=1):
    from astropy.table import vstack

    from morphoscope.emission import search

    pos = np.array([[t["x"], t["y"]] for t in truth])
    c0 = time.process_time()
    t0 = time.perf_counter()
    if n_jobs == 1:
        table = search(med, ref, rms_medium=rms_m, rms_reference=rms_r, positions=pos, **params)
    else:
        # split the mosaic by rows of stamps so each process gets its own strip
        chunks = np.array_split(np.arange(len(pos)), n_jobs)
        jobs = []
        for idx in chunks:
            rows = (pos[idx, 1] // STAMP).astype(int)
            r0, r1 = rows.min() * STAMP, (rows.max() + 1) * STAMP
            sub = pos[idx] - [0, r0]
            jobs.append((med[r0:r1], ref[r0:r1], rms_m[r0:r1], rms_r[r0:r1], sub, params))
        with ProcessPoolExecutor(n_jobs) as ex:
            table = vstack(list(ex.map(_run_chunk, jobs)))
    dt = time.perf_counter() - t0
    table.meta["cpu_s"] = time.process_time() - c0 if n_jobs == 1 else float("nan")
    return table, dt


def summarise(table, truth):
    cand = np.asarray(table["candidate"], bool)
    comp, fpr = {}, {}
    for i, t in enumerate(truth):
        if t["kind"] in ("halo", "bicone"):
            key = f"{t['kind']} L/C={t['lc']:g} ext={t['extent']:g} S/N={t['snr']:g}"
            comp.setdefault(key, []).append(cand[i])
        else:
            key = f"{t['kind']} L/C={t['lc']:g} S/N={t['snr']:g}"
            fpr.setdefault(key, []).append(cand[i])
    comp = {k: (float(np.mean(v)), len(v)) for k, v in comp.items()}
    fpr = {k: (float(np.mean(v)), len(v)) for k, v in fpr.items()}
    return comp, fpr


def target_summary(table, truth, min_snr=20.0, min_ext=1.5):
    cand = np.asarray(table["candidate"], bool)
    sel_pos = np.array(
        [t["extended"] and t["snr"] >= min_snr and t["extent"] >= min_ext for t in truth]
    )
    sel_null = np.array([t["kind"] in ("none", "compact") for t in truth])
    return {
        "completeness(ext>=1.5, S/N>=20)": float(cand[sel_pos].mean()) if sel_pos.any() else None,
        "n_positive": int(sel_pos.sum()),
        "false_positive_rate(nulls)": float(cand[sel_null].mean()) if sel_null.any() else None,
        "n_null": int(sel_null.sum()),
    }


def scene_benchmark(seed, n_scenes, params):
    """Run on morphoscope.simulate scenes with extended emission, if available."""
    try:
        from morphoscope.simulate import simulate_scene
    except ImportError:
        return None
    from morphoscope.emission import search

    cand, ext, kinds, snr_em, flags = [], [], [], [], []
    t_total, n_total = 0.0, 0
    for k in range(n_scenes):
        try:
            scene = simulate_scene(
                shape=(256, 256), n_sources=20, seed=seed + k, emission_band="F335M",
                emission_fraction=0.3,
            )  # fmt: skip
        except TypeError as exc:
            return {"error": f"simulate_scene does not support emission: {exc}"}
        bands = list(scene.images)
        refs = [b for b in bands if b != "F335M"]
        truth = scene.truth
        pos = np.column_stack([truth["x"], truth["y"]])
        psfs = getattr(scene, "psf", None) or getattr(scene, "psfs", None)
        kwargs = {}
        if isinstance(psfs, dict) and all(b in psfs for b in ["F335M", *refs]):
            kwargs = {"psf_medium": psfs["F335M"], "psf_reference": [psfs[b] for b in refs]}
        t0 = time.perf_counter()
        table = search(
            scene.images["F335M"], [scene.images[b] for b in refs],
            rms_medium=scene.rms["F335M"], rms_reference=[scene.rms[b] for b in refs],
            positions=pos, **kwargs, **params,
        )  # fmt: skip
        t_total += time.perf_counter() - t0
        n_total += len(table)
        cand.extend(np.asarray(table["candidate"], bool))
        flags.extend(np.asarray(table["flag"], int))
        # integrated S/N of the line emission over a disc of its extent
        extent = np.asarray(truth["emission_extent"], float)
        extent = np.where(np.isfinite(extent), extent, 1.0)
        noise = float(np.median(scene.rms["F335M"])) * np.sqrt(np.pi * extent**2)
        snr_em.extend(np.asarray(truth["emission_flux"], float) / noise)
        ext.extend(np.asarray(truth["has_extended_emission"], bool))
        kinds.extend(str(s) for s in truth["emission_kind"])
    cand = np.array(cand)
    ext = np.array(ext)
    snr_em = np.array(snr_em)
    bright = ext & (snr_em >= 20)
    clean = np.array(flags) == 0
    return {
        "false_positive_rate_flag0": float(cand[~ext & clean].mean())
        if (~ext & clean).any()
        else None,
        "n_null_flag0": int((~ext & clean).sum()),
        "n_extended_snr20": int(bright.sum()),
        "completeness_snr20": float(cand[bright].mean()) if bright.any() else None,
        "bands": refs,
        "n_sources": int(cand.size),
        "n_extended": int(ext.sum()),
        "completeness": float(cand[ext].mean()) if ext.any() else None,
        "false_positive_rate": float(cand[~ext].mean()) if (~ext).any() else None,
        "sources_per_s": n_total / t_total if t_total else None,
        "by_kind": {k: float(cand[np.array(kinds) == k].mean()) for k in sorted(set(kinds))},
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-cell", type=int, default=25)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scenes", type=int, default=20)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)

    lcs = (0.3, 1.0, 3.0)
    extents = (1.5, 2.0, 3.0)
    snrs = (10.0, 20.0, 40.0, 80.0)
    cells = [(k, lc, e, s) for k in ("halo", "bicone") for lc in lcs for e in extents for s in snrs]
    cells += [("compact", lc, 1.0, s) for lc in lcs for s in snrs]
    cells += [("none", 0.0, 1.0, s) for s in snrs]
    t0 = time.perf_counter()
    med, ref, rms_m, rms_r, truth = make_set(cells, args.per_cell, args.seed)
    print(f"simulated {len(truth)} galaxies in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    results = {"n_sources": len(truth), "guards": {}, "guards_no_excess_test": {}}
    for key, extra in (("guards", {}), ("guards_no_excess_test", {"min_excess_snr": 0.0})):
        for guard in ("matched", "none", "peak_fraction"):
            params = {"brightness_guard": guard, **extra}
            table, dt = run_search(med, ref, rms_m, rms_r, truth, params)
            comp, fpr = summarise(table, truth)
            results[key][guard] = {
                "targets": target_summary(table, truth),
                "completeness": comp,
                "false_positive_rate": fpr,
                "sources_per_s_1proc": len(truth) / dt,
                "sources_per_cpu_s": len(truth) / table.meta["cpu_s"],
            }
            print(
                f"\n== {key} brightness_guard={guard}: {len(truth) / dt:.0f} sources/s "
                f"(1 process, wall), {len(truth) / table.meta['cpu_s']:.0f} per CPU second"
            )
            print(json.dumps(results[key][guard]["targets"]))
    # throughput on 2 processes with the default parameters
    _, dt2 = run_search(med, ref, rms_m, rms_r, truth, {}, n_jobs=2)
    results["sources_per_s_2proc"] = len(truth) / dt2
    print(f"\nthroughput, 2 processes: {len(truth) / dt2:.0f} sources/s")

    g = results["guards"]["matched"]
    print("\nCompleteness (brightness_guard=matched), by cell:")
    for k, (v, n) in sorted(g["completeness"].items()):
        print(f"  {k:40s} {v:6.2f}  (n={n})")
    print("\nCompleteness (matched) as a grid: rows kind, L/C, extent; columns S/N")
    snr_cols = sorted({t["snr"] for t in truth if t["kind"] in ("halo", "bicone")})
    print("| kind | L/C | extent | " + " | ".join(f"S/N {s:g}" for s in snr_cols) + " |")
    print("|---|---|---|" + "---|" * len(snr_cols))
    for kind in ("halo", "bicone"):
        for lc in sorted({t["lc"] for t in truth if t["kind"] == kind}):
            for e in sorted({t["extent"] for t in truth if t["kind"] == kind}):
                vals = [
                    g["completeness"].get(f"{kind} L/C={lc:g} ext={e:g} S/N={s:g}", (np.nan,))[0]
                    for s in snr_cols
                ]
                print(f"| {kind} | {lc:g} | {e:g} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
    for key in ("guards", "guards_no_excess_test"):
        print(f"\nFalse-positive rate by guard ({key}; matched / none / peak_fraction):")
        print("| null galaxies | matched | none | peak_fraction |")
        print("|---|---|---|---|")
        for k in sorted(g["false_positive_rate"]):
            vals = [results[key][gg]["false_positive_rate"][k][0] for gg in results[key]]
            print(f"| {k} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
        for gg in results[key]:
            print(f"  {gg}: {json.dumps(results[key][gg]['targets'])}")

    scene = scene_benchmark(args.seed, args.scenes, {})
    results["scene"] = scene
    print("\nmorphoscope.simulate scenes:", json.dumps(scene, indent=1))
    if args.out:
        with open(args.out + ".tmp", "w") as fh:
            json.dump(results, fh, indent=1)
        os.replace(args.out + ".tmp", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
