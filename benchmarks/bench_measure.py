"""Measurement benchmark: morphoscope.measure against statmorph on the same inputs, one run.

The same simulated single-galaxy stamps (``morphoscope.simulate.simulate_stamps``: Sersic
bulges, disks, irregulars and stars over a range of n, size, S/N and ellipticity, each with
its own PSF and noise) go through ``statmorph.SourceMorphology`` (weight map = the noise
rms, PSF given) and through ``morphoscope.measure.measure_stamps`` (same weight map and
PSF; Sersic fits batched). Prints:

* time per galaxy of each code, with and without the Sersic fit, and the speed ratios;
* how often the two codes give the same ``flag`` and ``flag_sersic``;
* per quantity, the median and 95th-percentile relative difference (absolute difference for
  the asymmetry-type quantities and the Gini-M20 statistics, which can be ~0) and the
  fraction of galaxies within the tolerance (1%, 0.005 absolute, 3% for Sersic
  parameters), over galaxies that both codes flag 0;
* accuracy of both Sersic fits against the simulated truth for single-component galaxies
  with S/N > 50: median relative error of n, r_e, q and the fraction of galaxies whose
  truth lies within 2 sigma of the fit;
* the same on 100 galaxies drawn from the fitted model itself (the simulated stamps are
  truncated, pixel-integrated GalSim profiles, which the model is not): median errors and the
  fraction of truths within 1 and 2 sigma;
* with ``--double N``, the double-Sersic fits of the first N stamps (statmorph's
  ``include_doublesersic=True`` against ``doublesersic=True``): time per galaxy, flags, chi^2
  and parameters;
* with ``--slice``, statmorph's own test galaxy against its published reference values.

Usage::

    python benchmarks/bench_measure.py [--n 500] [--size 64] [--seed 0]
        [--slice /path/to/statmorph_slice] [--json out.json] [--device cuda] [--double 100]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

NONPARAM = (
    "xc_centroid", "yc_centroid", "ellipticity_centroid", "elongation_centroid",
    "orientation_centroid", "xc_asymmetry", "yc_asymmetry", "ellipticity_asymmetry",
    "elongation_asymmetry", "orientation_asymmetry", "flux_circ", "flux_ellip", "rpetro_circ",
    "rpetro_ellip", "rmax_circ", "rmax_ellip", "rhalf_circ", "rhalf_ellip", "r20", "r50", "r80",
    "gini", "m20", "gini_m20_bulge", "gini_m20_merger", "sn_per_pixel", "concentration",
    "asymmetry", "smoothness", "multimode", "intensity", "deviation", "rms_asymmetry2",
    "outer_asymmetry", "shape_asymmetry", "sky_mean", "sky_median", "sky_sigma",
)  # fmt: skip
SERSIC = ("sersic_amplitude", "sersic_rhalf", "sersic_n", "sersic_xc", "sersic_yc",
          "sersic_ellip", "sersic_theta", "sersic_chi2_dof")  # fmt: skip
ABSOLUTE = ("asymmetry", "outer_asymmetry", "shape_asymmetry", "rms_asymmetry2",
            "gini_m20_bulge", "gini_m20_merger", "orientation_centroid",
            "orientation_asymmetry", "sky_mean", "sky_median", "deviation", "multimode",
            "intensity", "smoothness")  # fmt: skip


def tolerance(q):
    if q in ABSOLUTE:
        return 0.005
    return 0.03 if q.startswith("sersic") else 0.01


def difference(q, a, b):
    d = np.abs(a - b)
    if q not in ABSOLUTE:
        d = d / np.maximum(np.abs(b), 1e-12)
    if q in ("sersic_theta", "orientation_centroid", "orientation_asymmetry"):
        per = np.pi
        d = np.abs((a - b + per / 2) % per - per / 2)
    return d


def run_statmorph(st, n, with_psf=True):
    import statmorph

    rows, t_all, t_sersic = [], 0.0, 0.0
    for i in range(n):
        img = st.images[i].astype(float)
        seg = st.segmaps[i].astype(int)
        rms = np.full(img.shape, float(st.rms[i]))
        psf = st.psfs[i].astype(float) if with_psf else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            try:
                m = statmorph.SourceMorphology(img, seg, 1, weightmap=rms, psf=psf)
            except Exception as exc:  # statmorph raises on e.g. an empty segmentation map
                t_all += time.perf_counter() - t0
                row = dict.fromkeys(NONPARAM + SERSIC, np.nan)
                row.update(flag=4, flag_sersic=4, exception=f"{type(exc).__name__}: {exc}")
                rows.append(row)
                continue
            t_all += time.perf_counter() - t0
        if m.flag < 4:
            t_sersic += m.sersic_runtime
        row = {q: (np.nan if m[q] == -99.0 else float(m[q])) for q in NONPARAM + SERSIC}
        row["flag"], row["flag_sersic"] = int(m.flag), int(m.flag_sersic)
        rows.append(row)
    return rows, t_all, t_sersic


def agreement(ours, theirs, sel, names):
    print(f"  {'quantity':<24}{'n':>5}{'median':>11}{'95%':>11}{'within tol':>12}")
    out = {}
    for q in names:
        a = np.array([float(ours[q][i]) for i in sel])
        b = np.array([theirs[i][q] for i in sel])
        both = np.isfinite(a) & np.isfinite(b)
        d = difference(q, a[both], b[both])
        if d.size == 0:
            continue
        ok = np.mean(d <= tolerance(q))
        kind = "abs" if q in ABSOLUTE else "rel"
        out[q] = dict(median=float(np.median(d)), p95=float(np.percentile(d, 95)), ok=float(ok))
        print(
            f"  {q:<24}{d.size:>5}{np.median(d):>11.2e}{np.percentile(d, 95):>11.2e}"
            f"{100 * ok:>10.1f}% ({kind}, tol {tolerance(q)})"
        )
    return out


def truth_check(label, n_fit, re_fit, e_fit, n_err, re_err, e_err, truth, sel):
    t_n = np.asarray(truth["n"], float)[sel]
    t_re = np.asarray(truth["r_e"], float)[sel]
    t_q = np.asarray(truth["q"], float)[sel]
    line = f"  {label:<10}"
    for name, fit, err, true in (
        ("n", n_fit[sel], None if n_err is None else n_err[sel], t_n),
        ("r_e", re_fit[sel], None if re_err is None else re_err[sel], t_re),
        ("q", 1 - e_fit[sel], None if e_err is None else e_err[sel], t_q),
    ):
        ok = np.isfinite(fit)
        rel = np.abs(fit[ok] - true[ok]) / true[ok]
        line += f" {name}: median rel err {np.median(rel):.3f}"
        if err is not None:
            within = np.abs(fit[ok] - true[ok]) <= 2 * err[ok]
            line += f" ({100 * np.mean(within):.0f}% within 2 sigma)"
        line += ";"
    print(line)


def check_slice(path: Path):
    from astropy.io import fits

    from morphoscope import measure

    with fits.open(path / "slice.fits") as h:
        image, segmap, mask = h[0].data, h[1].data, h[2].data.astype(bool)
    ref = json.loads((path / "reference_values.json").read_text())["values"]
    import statmorph

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        statmorph.SourceMorphology(image, segmap, 1, mask=mask, gain=1.0)
        dt_sm = time.perf_counter() - t0
        t0 = time.perf_counter()
        cat = measure(image, segmap, mask=mask, gain=1.0)
        dt = time.perf_counter() - t0
    worst = []
    for q in NONPARAM + SERSIC:
        a, b = float(cat[q][0]), ref[q]
        d = float(difference(q, np.array([a]), np.array([b]))[0])
        worst.append((d / tolerance(q), q, d))
    worst.sort(reverse=True)
    n_ok = sum(r <= 1 for r, _, _ in worst)
    print(f"\nstatmorph test galaxy (162x162): morphoscope {dt:.2f} s, statmorph {dt_sm:.2f} s "
          f"({dt_sm / dt:.1f}x); {n_ok}/{len(worst)} quantities within tolerance of statmorph's "
          "reference values")
    for _, q, d in worst[:6]:
        print(f"  largest: {q:<24} {'abs' if q in ABSOLUTE else 'rel'} diff {d:.2e}")
    print(f"  flag {int(cat['flag_statmorph'][0])} (ref {ref['flag']}), "
          f"flag_sersic {int(cat['flag_sersic'][0])} (ref {ref['flag_sersic']})")


DOUBLE = ("xc", "yc", "amplitude1", "rhalf1", "n1", "ellip1", "theta1", "amplitude2", "rhalf2",
          "n2", "ellip2", "theta2", "chi2_dof", "aic", "bic")  # fmt: skip


def check_double(st, n):
    """Double-Sersic fits of both codes on the first ``n`` stamps, one run."""
    import statmorph

    from morphoscope.measure import measure_stamps

    theirs, t_sm = [], 0.0
    for i in range(n):
        img = st.images[i].astype(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            try:
                m = statmorph.SourceMorphology(
                    img, st.segmaps[i].astype(int), 1,
                    weightmap=np.full(img.shape, float(st.rms[i])),
                    psf=st.psfs[i].astype(float), include_doublesersic=True)  # fmt: skip
                row = {q: float(m[f"doublesersic_{q}"]) for q in DOUBLE}
                row["flag"] = int(m.flag_doublesersic)
            except Exception:  # statmorph raises on e.g. an empty segmentation map
                row = {"flag": 4}
            t_sm += time.perf_counter() - t0
        theirs.append(row)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        measure_stamps(st.images[:3], st.segmaps[:3], rms=st.rms[:3], psfs=st.psfs[:3],
                       doublesersic=True)
        t0 = time.perf_counter()
        ours = measure_stamps(st.images[:n], st.segmaps[:n], rms=st.rms[:n], psfs=st.psfs[:n],
                              doublesersic=True)
        t_ms = time.perf_counter() - t0
    print(f"\nDouble-Sersic fits, {n} stamps (everything measured, one process each):")
    print(f"  statmorph {1e3 * t_sm / n:.1f} ms, morphoscope {1e3 * t_ms / n:.1f} ms per galaxy "
          f"({t_sm / t_ms:.1f}x)")
    fs = np.array([r["flag"] for r in theirs])
    fo = np.asarray(ours["flag_doublesersic"])
    print(f"  flag_doublesersic: statmorph {np.bincount(fs, minlength=5)[[0, 1, 2, 4]]}, ours "
          f"{np.bincount(fo, minlength=5)[[0, 1, 2, 4]]} for 0/1/2/4")
    ok = np.flatnonzero((fs <= 1) & (fo <= 1))
    if ok.size:
        a = np.asarray(ours["doublesersic_chi2_dof"])[ok]
        b = np.array([theirs[i]["chi2_dof"] for i in ok])
        print(f"  chi^2 where both flag <= 1 ({ok.size}): median ratio ours/statmorph "
              f"{np.median(a / b):.6f}; ours lower or equal for {100 * np.mean(a <= b):.0f}%")
    good = np.flatnonzero((fs == 0) & (fo == 0))
    print(f"  parameters where both flag 0 ({good.size}): fraction within 3% (abs. 0.03 rad for "
          "the angles)")
    for q in DOUBLE:
        a = np.asarray(ours[f"doublesersic_{q}"])[good]
        b = np.array([theirs[i][q] for i in good])
        if q.startswith("theta"):
            d = np.abs((a - b + np.pi / 2) % np.pi - np.pi / 2)
        else:
            d = np.abs(a - b) / np.maximum(np.abs(b), 1e-12)
        print(f"    {q:<12} {100 * np.mean(d <= 0.03):5.0f}%  (median {np.median(d):.1e})")


def check_model_truth(n, seed):
    """Both fits against the truth on galaxies drawn from the fitted model itself.

    The simulated stamps above are GalSim profiles, truncated at 5 r_e and integrated over
    the pixels, which the fitted model (statmorph's: untruncated, sampled at pixel centres)
    is not; their truth comparison mixes fit error with model mismatch. Here each galaxy is
    that model (astropy's ``Sersic2D`` at pixel centres, convolved with a Gaussian PSF) plus
    Gaussian noise, S/N 50-500, so the truth is within reach of the fit and its uncertainties.
    """
    import statmorph
    from astropy.modeling.models import Sersic2D
    from scipy.signal import fftconvolve

    from morphoscope.measure import measure_stamps

    rng = np.random.default_rng(seed)
    size = 64
    y, x = np.mgrid[:size, :size].astype(float)
    images, segmaps, rmss, psfs, truth = [], [], [], [], []
    for _ in range(n):
        nn, re = rng.uniform(0.5, 6.0), rng.uniform(2.0, 8.0)
        ellip, theta = rng.uniform(0.0, 0.6), rng.uniform(0.0, np.pi)
        xc, yc = size / 2 + rng.uniform(-1, 1, 2)
        fwhm = rng.uniform(2.0, 4.0)
        k = np.exp(-(np.mgrid[-12:13, -12:13] ** 2).sum(0) / (2 * (fwhm / 2.3548) ** 2))
        psf = k / k.sum()
        model = fftconvolve(Sersic2D(1.0, re, nn, xc, yc, ellip, theta)(x, y), psf, mode="same")
        seg = model > 0.02 * model.max()
        sigma = np.sqrt(np.sum(model[seg] ** 2)) / rng.uniform(50.0, 500.0)  # S/N in the segment
        images.append(model + rng.normal(0.0, sigma, model.shape))
        segmaps.append(seg.astype(int))
        rmss.append(sigma)
        psfs.append(psf)
        truth.append((nn, re, 1.0 - ellip))
    truth = np.array(truth)
    theirs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for img, seg, sigma, psf in zip(images, segmaps, rmss, psfs, strict=True):
            m = statmorph.SourceMorphology(img, seg, 1, weightmap=np.full(img.shape, sigma),
                                           psf=psf)
            theirs.append((m.sersic_n, m.sersic_rhalf, 1.0 - m.sersic_ellip, m.flag_sersic))
        ours = measure_stamps(images, segmaps, rms=rmss, psfs=psfs)
    theirs = np.array(theirs, float)
    ok = (np.asarray(ours["flag_sersic"]) == 0) & (theirs[:, 3] == 0)
    print(f"\nSersic fits against the truth, {n} galaxies drawn from the fitted model (S/N "
          f"50-500; {ok.sum()} flagged 0 by both):")
    fit = np.stack([np.asarray(ours["sersic_n"]), np.asarray(ours["sersic_rhalf"]),
                    1.0 - np.asarray(ours["sersic_ellip"])], axis=1)[ok]
    err = np.stack([np.asarray(ours["sersic_n_err"]), np.asarray(ours["sersic_rhalf_err"]),
                    np.asarray(ours["sersic_ellip_err"])], axis=1)[ok]
    for j, name in enumerate(("n", "r_e", "q")):
        t = truth[ok, j]
        pull = (fit[:, j] - t) / err[:, j]
        print(f"  {name:<4} morphoscope median rel err {np.median(np.abs(fit[:, j] - t) / t):.4f}, "
              f"{100 * np.mean(np.abs(pull) <= 1):.0f}% within 1 sigma, "
              f"{100 * np.mean(np.abs(pull) <= 2):.0f}% within 2 sigma (pull width "
              f"{np.std(pull):.2f}); statmorph median rel err "
              f"{np.median(np.abs(theirs[ok, j] - t) / t):.4f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slice", type=Path, default=None, help="statmorph_slice folder")
    parser.add_argument("--json", type=Path, default=None, help="write the paired values")
    parser.add_argument("--double", type=int, default=0, metavar="N",
                        help="also compare the double-Sersic fits on the first N stamps")
    parser.add_argument("--device", default=None,
                        help="also time the Sersic fits on this PyTorch device (e.g. cuda)")
    args = parser.parse_args(argv)

    from morphoscope.measure import measure_stamps
    from morphoscope.simulate import simulate_stamps

    st = simulate_stamps(args.n, size=args.size, seed=args.seed, snr_range=(10.0, 1000.0))
    n = args.n
    print(f"{n} stamps {args.size}x{args.size} (classes: "
          f"{dict(zip(*np.unique(st.truth['class'], return_counts=True), strict=True))})")

    theirs, t_sm, t_sm_sersic = run_statmorph(st, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # warm-up: loads the compiled kernels from numba's on-disk cache (compiles them on
        # a machine's first run)
        measure_stamps(st.images[:3], st.segmaps[:3], rms=st.rms[:3], psfs=st.psfs[:3])
        t0 = time.perf_counter()
        ours = measure_stamps(st.images, st.segmaps, rms=st.rms, psfs=st.psfs)
        t_ms = time.perf_counter() - t0
        t0 = time.perf_counter()
        measure_stamps(st.images, st.segmaps, rms=st.rms, psfs=st.psfs, sersic=False)
        t_ms_np = time.perf_counter() - t0
        cores = os.cpu_count() or 1
        t0 = time.perf_counter()
        measure_stamps(st.images, st.segmaps, rms=st.rms, psfs=st.psfs, n_jobs=cores)
        t_ms_all = time.perf_counter() - t0
        t0 = time.perf_counter()
        measure_stamps(st.images, st.segmaps, rms=st.rms, psfs=st.psfs, sersic=False,
                       n_jobs=cores)
        t_ms_np_all = time.perf_counter() - t0
        if args.device:
            measure_stamps(st.images[:3], st.segmaps[:3], rms=st.rms[:3], psfs=st.psfs[:3],
                           device=args.device)
            t0 = time.perf_counter()
            on_dev = measure_stamps(st.images, st.segmaps, rms=st.rms, psfs=st.psfs,
                                    n_jobs=cores, device=args.device)
            t_ms_dev = time.perf_counter() - t0
    print("\nTime per galaxy (same machine, same run, one process each):")
    t_np = 1e3 * (t_sm - t_sm_sersic) / n
    print(f"  statmorph   {1e3 * t_sm / n:8.2f} ms  (without Sersic {t_np:.2f})")
    print(f"  morphoscope {1e3 * t_ms / n:8.2f} ms  (without Sersic {1e3 * t_ms_np / n:.2f})")
    print(f"  speed ratio {t_sm / t_ms:8.1f} x  with the Sersic fit, "
          f"{(t_sm - t_sm_sersic) / t_ms_np:.1f} x without")
    print(f"morphoscope with n_jobs={cores} (all cores; statmorph has no parallel mode):")
    print(f"  morphoscope {1e3 * t_ms_all / n:8.2f} ms  (without Sersic "
          f"{1e3 * t_ms_np_all / n:.2f})")
    print(f"  speed ratio {t_sm / t_ms_all:8.1f} x  with the Sersic fit, "
          f"{(t_sm - t_sm_sersic) / t_ms_np_all:.1f} x without")
    if args.device:
        print(f"morphoscope with n_jobs={cores} and the Sersic fits on {args.device}:")
        print(f"  morphoscope {1e3 * t_ms_dev / n:8.2f} ms, speed ratio {t_sm / t_ms_dev:.1f} x "
              "with the Sersic fit")
        ok = (np.asarray(ours["flag_sersic"]) == 0) & (np.asarray(on_dev["flag_sersic"]) == 0)
        for q in ("sersic_rhalf", "sersic_n", "sersic_ellip"):
            d = difference(q, np.asarray(on_dev[q])[ok], np.asarray(ours[q])[ok])
            print(f"  {q} on {args.device} vs the numpy path: {100 * np.mean(d <= 0.03):.1f}% "
                  f"within 3% ({ok.sum()} fits flagged 0 by both)")

    raised = [i for i, r in enumerate(theirs) if "exception" in r]
    if raised:
        print(f"\nstatmorph raised on {len(raised)} stamps (morphoscope flags them, "
              f"flag_statmorph {sorted(set(np.asarray(ours['flag_statmorph'])[raised]))}): "
              f"{theirs[raised[0]]['exception']}")
    fs = np.array([r["flag"] for r in theirs])
    fo = np.asarray(ours["flag_statmorph"])
    print(f"\nflag agreement: {100 * np.mean(fs == fo):.1f}% "
          f"(statmorph flags {np.bincount(fs, minlength=5)[[0, 1, 2, 4]]}, "
          f"ours {np.bincount(fo, minlength=5)[[0, 1, 2, 4]]} for 0/1/2/4)")
    good = np.flatnonzero((fs <= 1) & (fo <= 1))
    print(f"\nAgreement with statmorph, non-parametric ({good.size} galaxies flagged <= 1):")
    res = {"nonparametric": agreement(ours, theirs, good, NONPARAM)}
    fss = np.array([r["flag_sersic"] for r in theirs])
    fso = np.asarray(ours["flag_sersic"])
    print(f"\nflag_sersic agreement: {100 * np.mean(fss == fso):.1f}% (statmorph "
          f"{np.bincount(fss, minlength=5)[[0, 1, 2, 4]]}, ours "
          f"{np.bincount(fso, minlength=5)[[0, 1, 2, 4]]} for 0/1/2/4; rows: statmorph's flag, "
          "columns: ours)")
    for f in (0, 1, 2):
        print(f"  {f}: {np.bincount(fso[fss == f], minlength=5)[[0, 1, 2, 4]]}")
    good_s = np.flatnonzero((fss == 0) & (np.asarray(ours["flag_sersic"]) == 0))
    print(f"\nAgreement with statmorph, Sersic fit ({good_s.size} galaxies with flag_sersic 0 "
          f"in both):")
    res["sersic"] = agreement(ours, theirs, good_s, SERSIC)

    tr = st.truth
    cls = np.asarray(tr["class"])
    single = (cls == "spheroid") | ((cls == "disk") & (np.asarray(tr["bulge_fraction"]) == 0))
    sel = single & (np.asarray(tr["snr"]) > 50)
    sel &= (fss == 0) & (np.asarray(ours["flag_sersic"]) == 0)
    print(f"\nSersic fits against the truth ({sel.sum()} single-component galaxies, S/N > 50, "
          f"both fits flag 0):")
    truth_check(
        "morphoscope",
        np.asarray(ours["sersic_n"]), np.asarray(ours["sersic_rhalf"]),
        np.asarray(ours["sersic_ellip"]), np.asarray(ours["sersic_n_err"]),
        np.asarray(ours["sersic_rhalf_err"]), np.asarray(ours["sersic_ellip_err"]), tr, sel,
    )  # fmt: skip
    truth_check(
        "statmorph",
        np.array([r["sersic_n"] for r in theirs]), np.array([r["sersic_rhalf"] for r in theirs]),
        np.array([r["sersic_ellip"] for r in theirs]), None, None, None, tr, sel,
    )  # fmt: skip
    check_model_truth(min(n, 100), args.seed)
    if args.double:
        check_double(st, min(args.double, n))
    if args.slice is not None:
        check_slice(args.slice)
    if args.json is not None:
        payload = {
            "ours": {q: np.asarray(ours[q], float).tolist() for q in NONPARAM + SERSIC},
            "statmorph": {q: [r[q] for r in theirs] for q in NONPARAM + SERSIC},
            "flag_ours": fo.tolist(),
            "flag_statmorph": fs.tolist(),
            "summary": res,
            "time_per_galaxy": {"statmorph": t_sm / n, "morphoscope": t_ms / n,
                                "statmorph_nonparametric": (t_sm - t_sm_sersic) / n,
                                "morphoscope_nonparametric": t_ms_np / n,
                                "morphoscope_all_cores": t_ms_all / n,
                                "morphoscope_nonparametric_all_cores": t_ms_np_all / n},
        }  # fmt: skip
        args.json.write_text(json.dumps(payload))


if __name__ == "__main__":
    main()
