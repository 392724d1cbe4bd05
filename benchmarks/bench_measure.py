"""Measurement benchmark: morphoscope.measure against photutils and statmorph, same inputs.

One simulated field (``morphoscope.simulate``), measured on its TRUTH segmentation map so that
every code sees exactly the same pixels. Prints, in one run:

* wall time of ``morphoscope.measure`` on all sources, of photutils ``SourceCatalog`` for the
  same columns, and of statmorph on a random subset (per galaxy; statmorph is ~1 s/galaxy),
  with the ratios;
* agreement per quantity (median and 95th percentile of |difference|) with each peer;
* accuracy against the truth for isolated bright sources (flux, centroid).

Usage::

    python benchmarks/bench_measure.py [--size 2048] [--n 1500] [--statmorph 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def _row(name, a, b, *, relative=False):
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = np.abs(a[ok] - b[ok])
    if relative:
        d = d / np.maximum(np.abs(b[ok]), 1e-12)
    if d.size == 0:
        return f"  {name:<22} n=0"
    kind = "rel" if relative else "abs"
    return (
        f"  {name:<22} n={d.size:<5} median {kind} diff {np.median(d):9.4g}   "
        f"95% {np.percentile(d, 95):9.4g}"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--statmorph", type=int, default=40, help="sources given to statmorph")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import morphoscope as ms
    from morphoscope.simulate import simulate_scene

    t0 = time.perf_counter()
    scene = simulate_scene(shape=(args.size, args.size), n_sources=args.n, seed=args.seed)
    band = scene.detection_band
    img, rms, seg = scene.images[band], scene.rms[band], scene.segmap
    truth = scene.truth
    print(
        f"field {args.size}x{args.size}, {len(truth)} sources, band {band} "
        f"(simulated in {time.perf_counter() - t0:.1f}s)"
    )

    t0 = time.perf_counter()
    ours = ms.measure(img, seg, rms=rms)
    t_ours = time.perf_counter() - t0
    n = len(ours)

    from photutils.segmentation import SegmentationImage, SourceCatalog

    t0 = time.perf_counter()
    pc = SourceCatalog(img, SegmentationImage(seg), error=rms)
    ptab = pc.to_table(
        columns=[
            "label",
            "x_centroid",
            "y_centroid",
            "segment_flux",
            "segment_flux_err",
            "area",
            "ellipticity",
            "orientation",
            "gini",
        ]
    )
    pr50 = pc.flux_radius(0.5)
    t_phot = time.perf_counter() - t0

    print("\ntime (all sources)")
    print(f"  morphoscope.measure   {t_ours:8.3f} s  ({1e3 * t_ours / n:.3f} ms/source)")
    print(
        f"  photutils SourceCat.  {t_phot:8.3f} s  ({1e3 * t_phot / n:.3f} ms/source)  "
        f"photutils/morphoscope = {t_phot / t_ours:.1f}x"
    )

    print("\nagreement with photutils SourceCatalog (same segmap)")
    print(_row("xc_centroid [px]", ours["xc_centroid"], ptab["x_centroid"]))
    print(_row("yc_centroid [px]", ours["yc_centroid"], ptab["y_centroid"]))
    print(_row("flux", ours["flux"], ptab["segment_flux"], relative=True))
    print(_row("ellipticity", ours["ellipticity_centroid"], np.asarray(ptab["ellipticity"])))
    print(_row("gini", ours["gini"], ptab["gini"]))
    print(_row("r50 vs flux_radius", ours["r50"], np.asarray(pr50.value), relative=True))
    print(
        "  (photutils flux_radius is relative to the Kron flux in circular apertures;\n"
        "   r50 to the segment's own positive flux: another definition, for scale only)"
    )

    if args.statmorph > 0:
        try:
            import statmorph
        except ImportError:
            print("\nstatmorph not installed (pip install morphoscope[bench]); skipped")
        else:
            rng = np.random.default_rng(args.seed)
            bright = np.flatnonzero(np.asarray(truth[f"snr_{band}"]) > 30)
            pick = rng.choice(bright, size=min(args.statmorph, bright.size), replace=False)
            labels = np.asarray(truth["id"])[pick]
            cols = [
                "xc_centroid",
                "yc_centroid",
                "ellipticity_centroid",
                "gini",
                "m20",
                "concentration",
                "asymmetry",
                "r20",
                "r50",
                "r80",
            ]
            vals = {c: [] for c in cols}
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for lab in labels:
                    m = statmorph.SourceMorphology(img, seg, int(lab), weightmap=rms)
                    for c in cols:
                        vals[c].append(getattr(m, c))
            t_sm = (time.perf_counter() - t0) / labels.size
            t0 = time.perf_counter()
            sub = ms.measure(img, seg, rms=rms, labels=labels)
            t_sub = (time.perf_counter() - t0) / labels.size
            print(f"\nstatmorph 0.7 on {labels.size} sources with S/N > 30 (no Sersic fit)")
            print(f"  statmorph            {1e3 * t_sm:9.1f} ms/source")
            print(
                f"  morphoscope (subset) {1e3 * t_sub:9.3f} ms/source; on the whole catalog "
                f"{1e3 * t_ours / n:.3f} ms/source"
            )
            print(
                f"  statmorph/morphoscope per source = {t_sm / (t_ours / n):.0f}x "
                "(whole-catalog rate)"
            )
            for c in cols:
                print(_row(c, sub[c], vals[c], relative=c in {"r20", "r50", "r80"}))
            print(
                "  (radii, concentration, Gini and asymmetry differ by definition in this "
                "version: see docs/measure.md)"
            )

    iso = ~np.asarray(truth["blended"], bool) & (np.asarray(truth[f"snr_{band}"]) > 50)
    ids = np.asarray(truth["id"])[iso]
    lut = {int(lab): i for i, lab in enumerate(ours["label"])}
    rows = [lut[i] for i in ids if i in lut]
    tr = truth[iso][[int(i) in lut for i in ids]]
    ratio = np.asarray(ours["flux"][rows]) / np.asarray(tr[f"flux_{band}"])
    dpos = np.hypot(
        np.asarray(ours["xc_centroid"][rows]) - tr["x"],
        np.asarray(ours["yc_centroid"][rows]) - tr["y"],
    )
    print(f"\naccuracy against truth ({len(rows)} isolated sources, S/N > 50, truth segmap)")
    print(
        f"  flux / true flux      median {np.median(ratio):.3f}, 16-84% "
        f"{np.percentile(ratio, 16):.3f}-{np.percentile(ratio, 84):.3f} "
        "(light outside the 1-sigma truth footprint is not counted)"
    )
    print(
        f"  centroid error        median {np.median(dpos):.3f} px, 95% "
        f"{np.percentile(dpos, 95):.3f} px"
    )


if __name__ == "__main__":
    main()
