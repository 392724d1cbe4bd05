"""Benchmark of SersicNet against Sérsic fitting, on simulations and on real galaxies.

1. ``simulated``: an independent set of single-Sérsic stamps (its own seed, never used
   in training); SersicNet's per-parameter median bias, robust scatter (1.4826 MAD; dex
   for n and r_e) and the coverage of its 68 % intervals, per S/N bin and for S/N > 30.
2. ``fitters``: a subset of the same stamps through the Sérsic fitter of
   ``morphoscope.measure`` when it provides ``sersic_*`` columns, otherwise a
   PSF-convolved ``astropy.modeling.models.Sersic2D`` least-squares fit (scipy), and
   through statmorph (when installed), with the same truth metrics and the time per
   galaxy; the speed ratio.
3. ``throughput``: stamps per second of ``SersicNet.predict`` on 64x64 inputs.
4. ``real``: real galaxies from ``../shared/data`` (HST AEGIS/COSMOS, KiDS, SDSS, HSC)
   with their PSFs: SersicNet (``predict_catalog``, automatic binning) beside the fit
   of the same binned stamp, and the published fit where one is given.

Usage::

    python benchmarks/bench_sersicnet.py [--n-sim 3000] [--n-fit 30] [--threads 2]
        [--fitters measure astropy+scipy statmorph] [--data ../shared/data] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from scipy import ndimage, optimize, signal

from morphoscope.nn import SersicNet, predict_catalog
from morphoscope.nn.sersic import sersic_metrics
from morphoscope.nn.sersic.catalog import cut_stamps
from morphoscope.nn.sersic.metrics import residual_stats
from morphoscope.simulate import simulate_stamps

SEED = 424242  # not a training seed


# --------------------------------------------------------------------------- fitters
def _sersic_image(p, shape, oversample=2):
    from astropy.modeling.models import Sersic2D

    amp, r_e, n, x0, y0, q, theta = p
    ny, nx = shape
    o = oversample
    yy, xx = np.mgrid[0 : ny * o, 0 : nx * o]
    xx = (xx + 0.5) / o - 0.5
    yy = (yy + 0.5) / o - 0.5
    m = Sersic2D(amplitude=amp, r_eff=r_e, n=n, x_0=x0, y_0=y0, ellip=1 - q, theta=theta)
    return m(xx, yy).reshape(ny, o, nx, o).mean(axis=(1, 3))


def fit_sersic(image, rms, psf, x0=None, y0=None):
    """PSF-convolved Sérsic least-squares fit; returns (n, r_e, q, theta, flux, x, y)."""
    ny, nx = image.shape
    cy, cx = (ny - 1) / 2, (nx - 1) / 2
    x0 = cx if x0 is None else x0
    y0 = cy if y0 is None else y0
    w = np.clip(np.nan_to_num(image), 0, None)
    r_guess = max(np.sqrt((w > 0.5 * w.max()).sum() / np.pi) * 1.5, 1.0)
    p0 = [np.nanmax(image) * 0.1, r_guess, 2.0, x0, y0, 0.7, 0.1]
    lo = [0, 0.3, 0.3, x0 - 5, y0 - 5, 0.1, -10]
    hi = [np.inf, max(nx, ny), 8.0, x0 + 5, y0 + 5, 1.0, 10]
    good = np.isfinite(image) & np.isfinite(rms) & (rms > 0)

    def resid(p):
        model = signal.fftconvolve(_sersic_image(p, image.shape), psf, mode="same")
        return ((model - image) / rms)[good]

    res = optimize.least_squares(resid, p0, bounds=(lo, hi), x_scale="jac", max_nfev=400)
    _, r_e, n, xf, yf, q, th = res.x
    flux = _sersic_image(res.x, image.shape).sum()
    return n, r_e, q, np.mod(th, np.pi), flux, xf, yf


def fit_measure(image, rms, psf, seg):
    """morphoscope.measure's Sérsic columns, or None when it has none."""
    from morphoscope.measure import measure

    t = measure(image, seg, rms=rms, psf=psf, asymmetry=False)
    if "sersic_n" not in t.colnames:
        return None
    row = t[0]
    q = row["sersic_q"] if "sersic_q" in t.colnames else 1 - row["sersic_ellip"]
    flux = row["sersic_flux"] if "sersic_flux" in t.colnames else np.nan
    return (float(row["sersic_n"]), float(row["sersic_rhalf"]), float(q),
            float(row["sersic_theta"]) if "sersic_theta" in t.colnames else np.nan,
            float(flux), np.nan, np.nan)  # fmt: skip


def fit_statmorph(image, rms, psf, seg):
    try:
        import statmorph
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = statmorph.source_morphology(image, seg, weightmap=rms, psf=psf)[0]
    return (m.sersic_n, m.sersic_rhalf, 1 - m.sersic_ellip, np.mod(m.sersic_theta, np.pi),
            np.nan, m.sersic_xc, m.sersic_yc)  # fmt: skip


# ----------------------------------------------------------------------- simulated
def simulated(net, n_sim, n_fit, use=("measure", "astropy+scipy", "statmorph")):
    st = simulate_stamps(
        n_sim, seed=SEED, snr_range=(8.0, 1000.0), sersic_n_range=(0.5, 6.0),
        r_e_range=(1.0, 12.0), neighbours=0.3, max_offset=1.5,
        class_fractions=[0.5, 0.5, 0.0, 0.0],
    )  # fmt: skip
    t0 = time.perf_counter()
    pred = net.predict(st.images, psf_fwhm=st.psf_fwhm, rms=st.rms)
    t_nn = (time.perf_counter() - t0) / n_sim
    truth = {c: np.asarray(st.truth[c]) for c in st.truth.colnames}
    m = sersic_metrics(pred, truth, snr_min=30.0)
    print(f"\n== simulated: {n_sim} independent stamps (seed {SEED}) ==")
    print(f"SersicNet, S/N > 30 ({m['count']} stamps): bias / scatter(1.4826 MAD) / coverage68")
    for k, v in m["summary"].items():
        print(f"  {k:7s} {v['bias']:+.4f} {v['scatter']:.4f} {v['coverage']:.3f}  "
              f"(std {v['std']:.4f})")  # fmt: skip
    print("per S/N bin: n [dex] bias/scatter/cov | r_e [dex] | q")
    for b in m["by_snr"]:
        s = " | ".join(f"{b[k]['bias']:+.3f} {b[k]['scatter']:.3f} {b[k]['coverage']:.2f}"
                       for k in ("n", "r_e", "q"))  # fmt: skip
        print(f"  S/N {b['snr'][0]:5.0f}-{b['snr'][1]:5.0f} ({b['n']['count']:4d}): {s}")
    print("S/N > 30 per resolution r_e/FWHM: n [dex] bias/scatter/cov | r_e [dex] | q")
    for b in m["by_resolution"]:
        s = " | ".join(f"{b[k]['bias']:+.3f} {b[k]['scatter']:.3f} {b[k]['coverage']:.2f}"
                       for k in ("n", "r_e", "q"))  # fmt: skip
        lo, hi = b["r_e_over_fwhm"]
        print(f"  r_e/FWHM {lo:4.1f}-{hi:5.1f} ({b['n']['count']:4d}): {s}")

    # Fitters on the first n_fit stamps with S/N > 30 and no neighbour (a fair fit).
    sel = np.flatnonzero((truth["snr"] > 30) & ~truth["has_neighbour"])[:n_fit]
    results = {"sersicnet": {"seconds_per_galaxy": t_nn}}
    fitters = {k: None for k in ("measure", "astropy+scipy", "statmorph") if k in use}
    rows = {k: [] for k in fitters}
    times = {k: 0.0 for k in fitters}
    measure_has_sersic = None
    for i in sel:
        img = st.images[i].astype(float)
        rms_map = np.full(img.shape, float(st.rms[i]))
        seg = (st.segmaps[i] == 1).astype(int)
        psf = st.psfs[i].astype(float)
        for name in fitters:
            if name == "measure" and measure_has_sersic is False:
                continue
            t0 = time.perf_counter()
            try:
                if name == "measure":
                    out = fit_measure(img, rms_map, psf, seg)
                    measure_has_sersic = out is not None
                elif name == "statmorph":
                    out = fit_statmorph(img, rms_map, psf, seg)
                else:
                    out = fit_sersic(img, rms_map, psf)
            except Exception as exc:  # a failed fit is a result, not a crash
                print(f"  {name} failed on stamp {i}: {exc}")
                out = (np.nan,) * 7
            times[name] += time.perf_counter() - t0
            if out is not None:
                rows[name].append(out)
    print(f"\n== fitters on {len(sel)} stamps with S/N > 30 and no neighbour ==")
    sub = {k: truth[k][sel] for k in ("n", "r_e", "q")}
    p_nn = pred[sel]
    print(f"{'method':14s} {'s/galaxy':>9s}  n bias/scatter [dex]  r_e bias/scatter [dex]"
          "  q bias/scatter  n-cov")  # fmt: skip

    def show(name, n, r, q, sec, cov=np.nan):
        sn = residual_stats(np.log10(n) - np.log10(sub["n"]))
        sr = residual_stats(np.log10(r) - np.log10(sub["r_e"]))
        sq = residual_stats(q - sub["q"])
        print(f"{name:14s} {sec:9.4f}  {sn['bias']:+.3f} {sn['scatter']:.3f}            "
              f"{sr['bias']:+.3f} {sr['scatter']:.3f}              {sq['bias']:+.3f} "
              f"{sq['scatter']:.3f}   {cov:.2f}")  # fmt: skip
        results[name] = {"seconds_per_galaxy": sec, "n": sn, "r_e": sr, "q": sq}

    cov = residual_stats(np.log10(p_nn["sersic_n"]) - np.log10(sub["n"]),
                         p_nn["sersic_n_err_dex"])["coverage"]  # fmt: skip
    show("SersicNet", np.asarray(p_nn["sersic_n"]), np.asarray(p_nn["sersic_rhalf"]),
         np.asarray(p_nn["sersic_q"]), t_nn, cov)  # fmt: skip
    cols = ("sersic_n", "sersic_rhalf", "sersic_q")
    fitted = {"SersicNet": np.stack([np.asarray(p_nn[c], float) for c in cols], axis=1)}
    for name, r in rows.items():
        if not r:
            if name == "measure":
                print("measure        (no sersic_* columns in morphoscope.measure: skipped)")
            continue
        a = np.array(r, dtype=float)
        fitted[name] = a[:, :3]
        show(name, a[:, 0], a[:, 1], a[:, 2], times[name] / len(r))
        print(f"{'':14s} SersicNet is {times[name] / len(r) / t_nn:,.0f}x faster")
    results["by_resolution"] = by_resolution(fitted, sub, truth["psf_fwhm"][sel])
    return results, m


def by_resolution(fitted, sub, fwhm):
    """n, r_e [dex] and q bias/scatter of each method in bins of true r_e / PSF FWHM."""
    from morphoscope.nn.sersic.metrics import RESOLUTION_BINS

    res = sub["r_e"] / fwhm
    print("per resolution r_e/FWHM (same stamps): n bias/scatter [dex] | r_e [dex] | q")
    out = []
    for lo, hi in itertools.pairwise(RESOLUTION_BINS):
        b = (res > lo) & (res <= hi)
        row = {"r_e_over_fwhm": [lo, hi], "count": int(b.sum())}
        for name, a in fitted.items():
            sn = residual_stats(np.log10(a[b, 0]) - np.log10(sub["n"][b]))
            sr = residual_stats(np.log10(a[b, 1]) - np.log10(sub["r_e"][b]))
            sq = residual_stats(a[b, 2] - sub["q"][b])
            row[name] = {"n": sn, "r_e": sr, "q": sq}
            print(f"  {lo:4.1f}-{hi:5.1f} ({b.sum():4d}) {name:14s} {sn['bias']:+.3f} "
                  f"{sn['scatter']:.3f} | {sr['bias']:+.3f} {sr['scatter']:.3f} | "
                  f"{sq['bias']:+.3f} {sq['scatter']:.3f}")  # fmt: skip
        out.append(row)
    return out


# ---------------------------------------------------------------------- throughput
def throughput(net, n=8192, batch=1024, threads=2):
    """Stamps per second (wall clock) and per CPU-second x threads.

    On a machine shared with other jobs the wall-clock rate understates what 2 free cores
    do; ``cpu_rate`` = stamps / (process CPU seconds / threads) is what they would do
    with both threads busy all the time.
    """
    st = simulate_stamps(256, seed=SEED + 1, sersic_n_range=(0.5, 6), neighbours=0)
    imgs = np.resize(st.images, (n, 64, 64))
    fw, rms = np.resize(st.psf_fwhm, n), np.resize(st.rms, n)
    net.predict(imgs[:batch], psf_fwhm=fw[:batch], rms=rms[:batch], batch_size=batch)
    best = cpu_best = 0.0
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        net.predict(imgs, psf_fwhm=fw, rms=rms, batch_size=batch)
        best = max(best, n / (time.perf_counter() - t0))
        cpu_best = max(cpu_best, n / ((time.process_time() - c0) / threads))
    print(f"\n== throughput (64x64, batch {batch}, {threads} threads, best of 3): "
          f"{best:,.0f} stamps/s wall clock; {cpu_best:,.0f} stamps/s per {threads} busy "
          f"cores (CPU time) ==")  # fmt: skip
    return {"wall": best, "cpu": cpu_best, "threads": threads}


# ---------------------------------------------------------------------- real data
def psf_fwhm(psf):
    """FWHM (pixels) from the area above half maximum of a PSF image."""
    p = ndimage.zoom(np.asarray(psf, float), 4, order=3)  # sub-pixel area
    p = p / p.max()
    return 2.0 * np.sqrt((p >= 0.5).sum() / 16.0 / np.pi)


def bin_psf(psf, b):
    if b == 1:
        return psf / psf.sum()
    ny, nx = psf.shape
    py, px = (-ny) % b, (-nx) % b
    p = np.pad(psf, ((py // 2, py - py // 2), (px // 2, px - px // 2)))
    p = p.reshape(p.shape[0] // b, b, p.shape[1] // b, b).sum(axis=(1, 3))
    return p / p.sum()


def central_segment(img, rms, bad=None):
    sm = ndimage.gaussian_filter(np.where(np.isfinite(img), img, 0), 1.5)
    det = sm > 2.0 * np.nanmedian(rms) / (2 * np.sqrt(np.pi) * 1.5)  # 2 sigma of smoothed noise
    lab, _ = ndimage.label(det)
    cy, cx = (np.array(img.shape) - 1) // 2
    win = lab[max(cy - 5, 0) : cy + 6, max(cx - 5, 0) : cx + 6]
    ids, counts = np.unique(win[win > 0], return_counts=True)
    if len(ids) == 0:
        return np.zeros(img.shape, int)
    return (lab == ids[np.argmax(counts)]).astype(int)


def real_galaxies(root):
    """(name, image, rms map, psf, mask, reference dict) for each usable real galaxy."""
    root = Path(root)
    out = []
    aegis = root / "galsim_hst" / "aegis"
    if aegis.exists():
        for band in ("F606w", "F814w"):
            cat = Table.read(aegis / f"AEGIS_{band}_catalog.fits")
            for row in cat:
                img = fits.getdata(aegis / row["GAL_FILENAME"].strip(), row["GAL_HDU"])
                psf = fits.getdata(aegis / row["PSF_FILENAME"].strip(), row["PSF_HDU"])
                rms = np.full(img.shape, np.sqrt(row["NOISE_VARIANCE"]))
                out.append((f"AEGIS {row['IDENT']} {band}", img, rms, psf, None, {}))
    cos = root / "galsim_hst" / "cosmos"
    if cos.exists():
        img = fits.getdata(cos / "test_images.fits", 0).astype(float)
        psf = fits.getdata(cos / "test_images.fits", 2).astype(float)
        edge = np.concatenate([img[:5].ravel(), img[-5:].ravel()])
        rms = np.full(img.shape, 1.4826 * np.median(np.abs(edge - np.median(edge))))
        ref = {"n": 1.28, "r_e": 0.601 / 0.03 / np.sqrt(0.297), "q": 0.297}
        out.append(("COSMOS 100533 F814W", img - np.median(edge), rms, psf, None, ref))
    for survey in ("KiDS", "SDSS"):
        d = root / "profit_gama_kids_sdss" / survey
        for f in sorted(d.glob("G*fitim.fits")) if d.exists() else []:
            gid = f.name[:-len("fitim.fits")]
            img = fits.getdata(f).astype(float)
            sig = fits.getdata(d / f"{gid}sigma.fits").astype(float)
            psf = fits.getdata(d / f"{gid}psfim.fits").astype(float)
            seg = fits.getdata(d / f"{gid}segim.fits")
            msk = fits.getdata(d / f"{gid}mskim.fits") != 0
            cy, cx = (np.array(seg.shape) - 1) // 2
            other = (seg > 0) & (seg != seg[cy, cx])
            out.append((f"{survey} {gid}", img, sig, psf, msk | other, {}))
    hsc = root / "pysersic_hsc_decals"
    for k in (1, 2, 3):
        if (hsc / f"gal{k}_im.npy").exists():
            im, mask, sig, psf = (np.load(hsc / f"gal{k}_{s}.npy").astype(float)
                                  for s in ("im", "mask", "sig", "psf"))  # fmt: skip
            out.append((f"HSC gal{k}", im, sig, psf, mask > 0, {}))
    return out


def real(net, root):
    print(f"\n== real galaxies ({root}) : SersicNet | Sérsic fit of the same binned stamp ==")
    print(f"{'galaxy':24s} {'bin':>3s} {'fwhm':>5s}   {'n_nn':>12s} {'n_fit':>6s}   "
          f"{'re_nn':>14s} {'re_fit':>7s}   {'q_nn':>11s} {'q_fit':>5s}  "
          f"{'s_nn':>6s} {'s_fit':>6s}")  # fmt: skip
    rows = []
    for name, img, rms, psf, mask, ref in real_galaxies(root):
        img = np.asarray(img, float)
        bad = ~np.isfinite(img) if mask is None else (mask | ~np.isfinite(img))
        seg = central_segment(np.where(bad, 0, img), rms)
        if seg.sum() < 5:
            print(f"{name:24s} no central detection")
            continue
        fw = psf_fwhm(psf)
        t0 = time.perf_counter()
        cat = predict_catalog(img, seg, psf_fwhm=fw, rms=rms, mask=bad, net=net)
        t_nn = time.perf_counter() - t0
        r = cat[0]
        b = int(r["bin_factor"])
        stamp, _, _, _ = cut_stamps(np.where(bad, np.nan, img), r["x"], r["y"], 64, b)
        noise, _, _, _ = cut_stamps(rms**2, r["x"], r["y"], 64, b)
        t0 = time.perf_counter()
        try:
            fn, fr, fq, _, _, _, _ = fit_sersic(stamp, np.sqrt(noise), bin_psf(psf, b))
            fr *= b
        except Exception as exc:
            print(f"  fit failed: {exc}")
            fn = fr = fq = np.nan
        t_fit = time.perf_counter() - t0
        print(f"{name:24s} {b:3d} {fw:5.2f}   {r['sersic_n']:5.2f}±{r['sersic_n_err']:5.2f} "
              f"{fn:6.2f}   {r['sersic_rhalf']:6.2f}±{r['sersic_rhalf_err']:6.2f} {fr:7.2f}   "
              f"{r['sersic_q']:4.2f}±{r['sersic_q_err']:4.2f} {fq:5.2f}  {t_nn:6.3f} {t_fit:6.2f}"
              f"  flag {int(r['flag'])}")  # fmt: skip
        if ref:
            print(f"{'  published fit':24s}          {ref['n']:12.2f}          "
                  f"{ref['r_e']:14.2f}           {ref['q']:11.2f}")  # fmt: skip
        rows.append({"galaxy": name, "bin": b, "psf_fwhm": fw, "n_nn": float(r["sersic_n"]),
                     "n_nn_err": float(r["sersic_n_err"]), "n_fit": float(fn),
                     "re_nn": float(r["sersic_rhalf"]), "re_fit": float(fr),
                     "q_nn": float(r["sersic_q"]), "q_fit": float(fq), "reference": ref,
                     "seconds_nn": t_nn, "seconds_fit": t_fit})  # fmt: skip
    if rows:
        dn = np.array([np.log10(x["n_nn"] / x["n_fit"]) for x in rows])
        dr = np.array([np.log10(x["re_nn"] / x["re_fit"]) for x in rows])
        ok = np.isfinite(dn) & np.isfinite(dr)
        print(f"SersicNet vs fit over {ok.sum()} galaxies: n median {np.median(dn[ok]):+.3f} dex "
              f"(scatter {1.4826 * np.median(np.abs(dn[ok] - np.median(dn[ok]))):.3f}); r_e "
              f"median {np.median(dr[ok]):+.3f} dex (scatter "
              f"{1.4826 * np.median(np.abs(dr[ok] - np.median(dr[ok]))):.3f})")  # fmt: skip
    return rows


def main(argv=None):
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-sim", type=int, default=3000)
    ap.add_argument("--n-fit", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fitters", nargs="*", default=["measure", "astropy+scipy", "statmorph"],
                    choices=["measure", "astropy+scipy", "statmorph"])  # fmt: skip
    repo = Path(__file__).resolve().parents[1]
    data = [p / "shared" / "data" for p in (repo.parent, repo.parent.parent)]
    ap.add_argument("--data", default=str(next((d for d in data if d.exists()), data[0])))
    ap.add_argument("--out", help="write all numbers to this JSON file")
    ap.add_argument("--skip", nargs="*", default=[], choices=["simulated", "throughput", "real"])
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    net = SersicNet.pretrained()
    res = {}
    if "throughput" not in args.skip:
        res["throughput"] = throughput(net, threads=args.threads)
    if "simulated" not in args.skip:
        res["fitters"], res["simulated"] = simulated(net, args.n_sim, args.n_fit, args.fitters)
    if "real" not in args.skip and Path(args.data).exists():
        res["real"] = real(net, args.data)
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()
