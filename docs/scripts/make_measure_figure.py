"""Make docs/images/measure_statmorph.png: morphoscope.measure against statmorph, same stamps.

Needs statmorph (``pip install morphoscope[bench]``). Each panel plots a quantity measured by
morphoscope against statmorph's value for the same simulated stamp (weight map and PSF given
to both); the Sersic-index panel also shows the simulated truth.

Usage: python docs/scripts/make_measure_figure.py [--n 80] [--seed 3]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from morphoscope.measure import measure_stamps
from morphoscope.simulate import simulate_stamps

PANELS = (
    ("rpetro_circ", "Petrosian radius [pix]"),
    ("concentration", "concentration C"),
    ("asymmetry", "asymmetry A"),
    ("gini", "Gini"),
    ("m20", "M20"),
    ("multimode", "multimode M"),
    ("shape_asymmetry", "shape asymmetry"),
    ("sersic_n", "Sersic n"),
)


def main() -> None:
    import statmorph

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=80)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parents[1] / "images"))
    args = parser.parse_args()
    st = simulate_stamps(args.n, size=64, seed=args.seed, snr_range=(10.0, 1000.0))
    ref = {q: [] for q, _ in PANELS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = measure_stamps(st.images, st.segmaps, rms=st.rms, psfs=st.psfs)
        for i in range(args.n):
            img = st.images[i].astype(float)
            m = statmorph.SourceMorphology(
                img,
                st.segmaps[i].astype(int),
                1,
                weightmap=np.full(img.shape, float(st.rms[i])),
                psf=st.psfs[i].astype(float),
            )
            for q, _ in PANELS:
                v = float(m[q]) if m.flag < 4 else np.nan
                ref[q].append(np.nan if v == -99.0 else v)
    fig = Figure(figsize=(12, 6), layout="constrained")
    axes = fig.subplots(2, 4)
    for ax, (q, title) in zip(axes.ravel(), PANELS, strict=True):
        a, b = np.asarray(ours[q], float), np.asarray(ref[q], float)
        ax.scatter(b, a, s=10, c="C0", label="morphoscope")
        if q == "sersic_n":
            cls = np.asarray(st.truth["class"])
            single = (cls == "spheroid") | (
                (cls == "disk") & (np.asarray(st.truth["bulge_fraction"]) == 0)
            )
            truth_n = np.where(single, np.asarray(st.truth["n"], float), np.nan)
            ax.scatter(b, truth_n, s=8, c="C3", marker="x", label="truth (single Sersic)")
            ax.legend(fontsize=7, loc="upper left")
        ok = np.isfinite(a) & np.isfinite(b)
        lo, hi = np.nanmin(np.r_[a[ok], b[ok]]), np.nanmax(np.r_[a[ok], b[ok]])
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.6)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("statmorph", fontsize=8)
        ax.set_ylabel("morphoscope", fontsize=8)
        if q == "sersic_n":
            ax.set_xscale("log")
            ax.set_yscale("log")
    fig.suptitle(f"{args.n} simulated stamps: morphoscope.measure vs statmorph 0.7 (same inputs)")
    out = Path(args.out) / "measure_statmorph.png"
    fig.savefig(out, dpi=90)
    print(out)


if __name__ == "__main__":
    main()
