"""Detection and de-blending benchmark: morphoscope.segment against photutils and SEP.

Every method runs on the same image, rms map and PSF, each in a fresh process (so that its
peak memory is its own), and is scored against the truth with the same code: detections are
the windowed centroids of the segments on one common background-subtracted image
(:func:`morphoscope.pipeline.evaluate.segment_positions`), matched one-to-one to the truth
catalog within ``max(2, 0.5 r_e)`` pixels (:func:`morphoscope.pipeline.evaluate.match_sources`).
Completeness and purity are also printed for larger radii and for plain flux-weighted segment
centroids.

Methods

* ``morphoscope``: ``morphoscope.segment(image, rms=rms, psf=psf)`` (default method);
* ``morphoscope zhu``: ``morphoscope.segment(image, rms=rms, method="zhu")``;
* ``photutils c=...``: the photutils documentation recipe -- ``Background2D`` (64 px boxes,
  median), Gaussian kernel of the PSF FWHM, ``detect_sources`` at 1.5 x rms on the
  convolved image with ``n_pixels=10``, ``deblend_sources(n_levels=32, contrast=c)``;
* ``sep``: ``sep.Background`` (64 px boxes) then ``sep.extract(thresh=1.5, err=rms,
  minarea=5, deblend_nthresh=32, deblend_cont=0.005)`` with the same Gaussian kernel
  (``filter_type="conv"``, so the threshold means the same as photutils').

Columns

* ``time``: wall time of the call (background estimation included), ``peak MB``: peak
  resident memory of the process running it, ``+MB``: its increase during the call;
* ``compl``: fraction of truth sources with S/N > 20 matched to a detection; ``c5-20``:
  the same for 5 < S/N < 20;
* ``purity`` = 1 - ``spur``: detections matched to no truth source at all (a second
  detection on an already matched source's truth footprint is spurious too; ``frag``
  counts those fragments); ``F1`` of ``compl`` and ``purity``;
* ``oversplit``: truth galaxies with S/N > 20 whose truth footprint holds the centroids of
  more than one detection;
* ``pairs``: truth pairs whose truth footprints touch (both S/N > 20) whose two centres lie
  in two different detected segments;
* ``IoU``: mean intersection over union of matched segments (S/N > 20) with their truth
  footprints (the truth footprint goes down to 1 sigma of the noiseless model, deeper than
  any detection threshold, so 1 is out of reach).

Usage::

    python benchmarks/bench_segmentation.py                       # 2048^2, 1500 galaxies
    python benchmarks/bench_segmentation.py --field morphoscope   # GalSim scene instead
    python benchmarks/bench_segmentation.py --size 1024 --densities 200,400,800 --depths 0.25,1
    python benchmarks/bench_segmentation.py --real image.fits [--real-rms rms.fits]
        [--real-psf psf.fits] --out benchmarks/output

``--zoom FILE`` saves a truth / morphoscope / photutils / SEP overlay of the most crowded
region of the (first) simulated field.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

METHOD_NAMES = ("morphoscope", "morphoscope zhu", "photutils c=0.001", "photutils c=0.005", "sep")
SNR_MIN = 20.0


# ----------------------------------------------------------------------------------------
# The methods (each runs in its own process).
# ----------------------------------------------------------------------------------------
def _fwhm(psf: np.ndarray) -> float:
    """FWHM of a PSF image from the area above half maximum."""
    p = np.asarray(psf, float)
    return float(2.0 * np.sqrt(np.count_nonzero(p >= 0.5 * p.max()) / np.pi))


def _box(shape) -> int:
    return int(min(64, max(16, min(shape) // 4)))


def _gauss_kernel(fwhm: float) -> np.ndarray:
    from photutils.segmentation import make_2dgaussian_kernel

    size = 2 * int(np.ceil(fwhm)) + 1
    return make_2dgaussian_kernel(fwhm, size=size).array


def _run_morphoscope(image, rms, psf):
    import morphoscope

    return morphoscope.segment(image, rms=rms, psf=psf)


def _run_zhu(image, rms, psf):
    import morphoscope

    return morphoscope.segment(image, rms=rms, method="zhu")


def _run_photutils(image, rms, psf, contrast, timings=None):
    from astropy.convolution import convolve
    from photutils.background import Background2D, MedianBackground
    from photutils.segmentation import deblend_sources, detect_sources

    bkg = Background2D(
        image, _box(image.shape), filter_size=(3, 3), bkg_estimator=MedianBackground()
    )
    data = image - bkg.background
    convolved = convolve(data, _gauss_kernel(_fwhm(psf)))
    segm = detect_sources(convolved, 1.5 * rms, n_pixels=10)
    if segm is None:
        return np.zeros(image.shape, np.int32)
    t0 = time.process_time()
    segm = deblend_sources(
        convolved, segm, n_pixels=10, n_levels=32, contrast=contrast, progress_bar=False
    )
    if timings is not None:
        timings["deblend_sources"] = time.process_time() - t0
    return segm.data


def _run_sep(image, rms, psf):
    import sep

    data = np.ascontiguousarray(image, dtype=np.float64)
    err = np.ascontiguousarray(rms, dtype=np.float64)
    box = _box(image.shape)
    bkg = sep.Background(data, bw=box, bh=box, fw=3, fh=3)
    sub = data - bkg.back()
    kernel = _gauss_kernel(_fwhm(psf))
    # SEP's default buffers (300000 pixels, 1024 sub-objects); enlarged only when needed.
    pixstack, subobj = 300_000, 1024
    while True:
        sep.set_extract_pixstack(pixstack)
        sep.set_sub_object_limit(subobj)
        try:
            _, segmap = sep.extract(
                sub,
                1.5,
                err=err,
                minarea=5,
                filter_kernel=kernel,
                filter_type="conv",
                deblend_nthresh=32,
                deblend_cont=0.005,
                segmentation_map=True,
            )
            return segmap
        except Exception as exc:
            if pixstack > 4 * data.size:
                raise
            if "sub" in str(exc).lower() and "object" in str(exc).lower():
                subobj *= 4
            else:
                pixstack *= 4


def _call(name, image, rms, psf):
    if name == "morphoscope":
        return _run_morphoscope(image, rms, psf)
    if name == "morphoscope zhu":
        return _run_zhu(image, rms, psf)
    if name.startswith("photutils"):
        return _run_photutils(image, rms, psf, float(name.split("=")[1]))
    if name == "sep":
        return _run_sep(image, rms, psf)
    raise ValueError(name)


def _preload(name) -> None:
    """Import what a method needs before the clock starts."""
    import importlib

    mods = {
        "morphoscope": ["morphoscope", "morphoscope.segment"],
        "photutils": ["photutils.background", "photutils.segmentation"],
        "sep": ["sep", "photutils.segmentation"],
    }[name.split()[0].split("=")[0]]
    for mod in ["astropy.convolution", *mods]:
        importlib.import_module(mod)
    if name.startswith("morphoscope"):
        # Load the compiled kernels (numba's on-disk cache) once, as a session would have:
        # a one-off cost per process, like an import.
        from morphoscope.segment import segment

        warm = np.zeros((64, 64), np.float32)
        warm[28:36, 28:36] = 50.0
        warm[30:33, 40:43] = 30.0
        segment(warm, rms=1.0)


def _vm(key: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (current) resident memory of this process in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return float(line.split()[1]) / 1024.0
    return float("nan")


def _child(name: str, inputs: str, output: str, repeat: int = 1):
    import resource
    import warnings

    d = np.load(inputs)
    image, rms, psf = d["image"], d["rms"], d["psf"]
    _preload(name)
    try:
        # Reset the peak-RSS mark to the current RSS (Linux), so that the peak is the call's.
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        base = _vm("VmRSS")
    except OSError:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    times = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seg = _call(name, image, rms, psf)
        times.append(time.perf_counter() - t0)
    dt = min(times)
    try:
        peak = _vm("VmHWM")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    np.save(output, np.asarray(seg, np.int32))
    return dt, base, peak


def run_methods(image, rms, psf, names=METHOD_NAMES, repeat=1, workdir=None) -> dict:
    """Run every method in a fresh process (``repeat`` times; the fastest time is kept).

    Returns ``{name: (segmap, seconds, peak_mb, delta_mb)}``.
    """
    out = {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        inputs = os.path.join(tmp, "inputs.npz")
        np.savez(
            inputs,
            image=np.asarray(image, np.float32),
            rms=np.asarray(rms, np.float32),
            psf=np.asarray(psf, np.float64),
        )
        ctx = multiprocessing.get_context("spawn")
        for name in names:
            output = os.path.join(tmp, "seg.npy")
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
                try:
                    dt, base, peak = pool.submit(_child, name, inputs, output, repeat).result()
                except Exception as exc:  # a method that crashes is reported, not fatal
                    print(f"  {name}: FAILED ({type(exc).__name__}: {exc})", file=sys.stderr)
                    continue
            out[name] = (np.load(output), dt, peak, max(peak - base, 0.0))
            print(f"  ran {name:<18} {dt:8.2f} s", file=sys.stderr, flush=True)
    return out


# ----------------------------------------------------------------------------------------
# Scoring.
# ----------------------------------------------------------------------------------------
def touching_pairs(segmap: np.ndarray) -> np.ndarray:
    """Pairs ``(a, b)``, a < b, of labels whose footprints touch (8-connectivity)."""
    pairs = []
    s = segmap
    for a, b in (
        (s[:, :-1], s[:, 1:]),
        (s[:-1, :], s[1:, :]),
        (s[:-1, :-1], s[1:, 1:]),
        (s[:-1, 1:], s[1:, :-1]),
    ):
        m = (a > 0) & (b > 0) & (a != b)
        pairs.append(np.stack([np.minimum(a[m], b[m]), np.maximum(a[m], b[m])], axis=1))
    allp = np.concatenate(pairs) if pairs else np.empty((0, 2), int)
    return np.unique(allp, axis=0) if allp.size else np.empty((0, 2), int)


def positions(segmap, image, centroid: str = "window"):
    """Labels and positions of the segments, the same way for every method.

    ``"window"``: :func:`morphoscope.pipeline.evaluate.segment_positions` (a Gaussian-windowed
    centroid started at the segment's brightest smoothed pixel, like SExtractor's ``XWIN``);
    ``"segment"``: flux-weighted centroid of the segment's positive pixels.
    """
    from scipy import ndimage

    if centroid == "window":
        from morphoscope.pipeline.evaluate import segment_positions

        return segment_positions(segmap, image)
    labels = np.unique(segmap[segmap > 0])
    if labels.size == 0:
        return labels, np.empty(0), np.empty(0)
    w = np.clip(np.nan_to_num(np.asarray(image, float)), 0, None)
    com = np.asarray(ndimage.center_of_mass(w, segmap, labels), float).reshape(-1, 2)
    geo = np.asarray(ndimage.center_of_mass(np.ones(segmap.shape), segmap, labels))
    bad = ~np.isfinite(com).all(axis=1)
    com[bad] = geo.reshape(-1, 2)[bad]
    return labels, com[:, 1], com[:, 0]


def score(segmap, sim: dict, *, centroid: str = "window", radius: float = 2.0) -> dict:
    """Metrics of one segmentation map against a simulated field's truth.

    Detections are matched one to one to the whole truth catalog within
    ``max(radius, 0.5 r_e)`` (:func:`morphoscope.pipeline.evaluate.match_sources`). With the
    default centroids and radius, completeness, purity, F1, spurious fraction and fragments
    equal those of :func:`morphoscope.pipeline.evaluate.detection_metrics`.
    """
    from morphoscope.pipeline.evaluate import match_sources

    truth, tseg, sub = sim["truth"], sim["segmap"], sim["sub"]
    snr_col = sim["snr_column"]
    labels, x, y = positions(segmap, sub, centroid)
    tx, ty = np.asarray(truth["x"], float), np.asarray(truth["y"], float)
    r_e = np.nan_to_num(np.asarray(truth["r_e"], float))
    d_idx, t_idx = match_sources(x, y, tx, ty, np.maximum(radius, 0.5 * r_e))
    snr = np.asarray(truth[snr_col], float)
    ids = np.asarray(truth["id"], int)
    bright = snr > SNR_MIN
    mid = (snr > 5) & (snr <= SNR_MIN)
    matched = np.zeros(len(truth), bool)
    matched[t_idx] = True
    n_det = labels.size
    unmatched = np.ones(n_det, bool)
    unmatched[d_idx] = False
    ny, nx = segmap.shape
    xi = np.clip(np.round(x).astype(int), 0, nx - 1)
    yi = np.clip(np.round(y).astype(int), 0, ny - 1)
    owner = tseg[yi, xi]
    m = {"n_detected": int(n_det)}
    m["completeness"] = float(matched[bright].mean()) if bright.any() else float("nan")
    m["compl_5_20"] = float(matched[mid].mean()) if mid.any() else float("nan")
    m["spurious_fraction"] = float(unmatched.mean()) if n_det else 0.0
    m["purity"] = 1.0 - m["spurious_fraction"]
    c, p = m["completeness"], m["purity"]
    m["f1"] = 2 * c * p / (c + p) if (c + p) > 0 else float("nan")
    m["n_fragments"] = int(np.count_nonzero(unmatched & (owner > 0)))

    # Over-splitting of bright galaxies: more than one detection centroid in the footprint.
    counts = np.bincount(owner[owner > 0], minlength=int(ids.max()) + 1)
    gal = bright & sim["is_galaxy"]
    m["oversplit_gal"] = float(np.mean(counts[ids[gal]] > 1)) if gal.any() else float("nan")

    # Truly blended pairs: truth footprints touch, both bright; split = their centres lie
    # in two different (non-zero) detected segments.
    row = np.zeros(int(ids.max()) + 1, int)
    row[ids] = np.arange(len(truth))
    pairs = touching_pairs(tseg)
    if pairs.size:
        ra, rb = row[pairs[:, 0]], row[pairs[:, 1]]
        keep = bright[ra] & bright[rb]
        ra, rb = ra[keep], rb[keep]
    else:
        ra = rb = np.empty(0, int)
    if ra.size:

        def lab(r):
            return segmap[
                np.clip(np.round(ty[r]).astype(int), 0, ny - 1),
                np.clip(np.round(tx[r]).astype(int), 0, nx - 1),
            ]

        la, lb = lab(ra), lab(rb)
        m["pairs_split"] = float(np.mean((la > 0) & (lb > 0) & (la != lb)))
    else:
        m["pairs_split"] = float("nan")
    m["n_pairs"] = int(ra.size)

    # IoU of matched bright sources.
    sel = bright[t_idx]
    dl, tl = labels[d_idx[sel]], ids[t_idx[sel]]
    if dl.size:
        both = (segmap > 0) & (tseg > 0)
        nd = int(segmap.max()) + 1
        base = int(ids.max()) + 1
        keys, counts = np.unique(
            segmap[both].astype(np.int64) * base + tseg[both], return_counts=True
        )
        area_d = np.bincount(segmap.ravel(), minlength=nd)
        area_t = np.bincount(tseg.ravel(), minlength=base)
        want = dl.astype(np.int64) * base + tl
        if keys.size:
            pos = np.clip(np.searchsorted(keys, want), 0, keys.size - 1)
            i = np.where(keys[pos] == want, counts[pos], 0)
        else:
            i = np.zeros(want.size)
        m["iou"] = float(np.mean(i / (area_d[dl] + area_t[tl] - i)))
    else:
        m["iou"] = float("nan")
    return m


def _cross_check(segmap, sim, m, name) -> None:
    """Warn if the table disagrees with ``morphoscope.pipeline.evaluate.detection_metrics``."""
    from morphoscope.pipeline.evaluate import detection_metrics

    ref = detection_metrics(
        segmap, sim["truth"], image=sim["sub"], truth_segmap=sim["segmap"],
        snr_column=sim["snr_column"], snr_min=SNR_MIN, match_radius=2.0, r_e_factor=0.5,
    )  # fmt: skip
    for key in ("completeness", "purity", "n_fragments"):
        if not np.isclose(ref[key], m[key], equal_nan=True):
            print(f"  note: {name}: {key} {m[key]:.4g} here, {ref[key]:.4g} from "
                  "detection_metrics", file=sys.stderr)  # fmt: skip


def _sensitivity(results, sim) -> None:
    """Completeness and purity under other matching radii and centroid definitions."""
    cases = [("window", 3.0), ("window", 4.0), ("segment", 2.0), ("segment", 3.0)]
    print(
        "matching: radius max(R, 0.5 r_e); centroid 'window' (table above) or 'segment'"
        " (flux-weighted over the whole segment)"
    )
    print(f"  {'compl / purity':<18}" + "".join(f"{f'{c} R={r:g}':>17}" for c, r in cases))
    for name, res in results.items():
        cells = []
        for c, r in cases:
            m = score(res[0], sim, centroid=c, radius=r)
            cells.append(f"{m['completeness']:.3f} / {m['purity']:.3f}")
        print(f"  {name:<18}" + "".join(f"{cell:>17}" for cell in cells))


HEADER = (
    f"{'method':<18} {'time s':>7} {'peak MB':>8} {'+MB':>6} {'n det':>6} {'compl':>6} "
    f"{'c5-20':>6} {'purity':>6} {'F1':>6} {'spur':>6} {'frag':>5} {'oversplit':>9} "
    f"{'pairs':>6} {'IoU':>6}"
)


def format_row(name, res, m) -> str:
    _, dt, peak, delta = res
    return (
        f"{name:<18} {dt:7.2f} {peak:8.0f} {delta:6.0f} {m['n_detected']:6d} "
        f"{m['completeness']:6.3f} {m['compl_5_20']:6.3f} {m['purity']:6.3f} {m['f1']:6.3f} "
        f"{m['spurious_fraction']:6.3f} {m['n_fragments']:5d} {m['oversplit_gal']:9.3f} "
        f"{m['pairs_split']:6.3f} {m['iou']:6.3f}"
    )


# ----------------------------------------------------------------------------------------
# Inputs.
# ----------------------------------------------------------------------------------------
def independent_sim(size, n, seed, depth=1.0, gradient=False) -> dict:
    sys.path.insert(0, str(HERE))
    from independent_field import make_field

    f = make_field(size=size, n=n, seed=seed, depth=depth, gradient=gradient)
    t = f["truth"]
    return {
        "image": f["image"],
        "rms": f["rms"],
        "psf": f["psf"],
        "truth": t,
        "segmap": f["segmap"],
        "sub": f["image"] - f["background"],
        "snr_column": "snr",
        "is_galaxy": np.asarray(t["class"]) == "galaxy",
        "label": f"independent field {size}x{size}, {n} galaxies + {len(t) - n} stars, "
        f"seed {seed}, depth {depth:g}{', gradient' if gradient else ''}",
    }


def morphoscope_sim(size, n, seed) -> dict:
    from morphoscope.simulate import simulate_scene

    scene = simulate_scene(shape=(size, size), n_sources=n, seed=seed)
    band = next(b.name for b in scene.bands if not b.medium)
    t = scene.truth
    cls = np.asarray(t["class"]) if "class" in t.colnames else np.array(["?"] * len(t))
    return {
        "image": scene.images[band],
        "rms": scene.rms[band],
        "psf": scene.psfs[band],
        "truth": t,
        "segmap": scene.segmap,
        "sub": scene.images[band],
        "snr_column": f"snr_{band}",
        "is_galaxy": cls != "point_source",
        "label": f"morphoscope.simulate scene {size}x{size}, {n} sources, seed {seed}, band {band}",
    }


# ----------------------------------------------------------------------------------------
# Figures.
# ----------------------------------------------------------------------------------------
def _stretch(img, rms):
    s = float(np.nanmedian(rms)) if np.ndim(rms) else float(rms)
    return np.arcsinh(np.nan_to_num(img) / (2 * s))


def _overlay(ax, img_stretched, segmap, title, points=None):
    from skimage.segmentation import find_boundaries

    ax.imshow(
        img_stretched,
        origin="lower",
        cmap="gray",
        vmin=-1,
        vmax=np.percentile(img_stretched, 99.7),
        interpolation="nearest",
    )
    if segmap is not None:
        rng = np.random.default_rng(3)
        from matplotlib.colors import hsv_to_rgb

        k = int(segmap.max()) + 1
        hsv = np.column_stack(
            [rng.uniform(0, 1, k), rng.uniform(0.65, 1.0, k), rng.uniform(0.8, 1.0, k)]
        )
        colors = hsv_to_rgb(hsv)
        rgba = np.zeros((*segmap.shape, 4))
        rgba[..., :3] = colors[segmap]
        rgba[..., 3] = np.where(segmap > 0, 0.28, 0.0)
        edge = find_boundaries(segmap, mode="inner") & (segmap > 0)
        rgba[edge, 3] = 1.0
        ax.imshow(rgba, origin="lower", interpolation="nearest")
        title = f"{title} ({np.unique(segmap[segmap > 0]).size})"
    if points is not None:
        ax.plot(points[0], points[1], "+", color="cyan", ms=5, mew=0.8)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def _crowded_window(sim, half=112) -> tuple[slice, slice]:
    """A window centred on the densest group of touching truth pairs (both S/N > 10)."""
    from scipy import ndimage

    t = sim["truth"]
    snr = np.asarray(t[sim["snr_column"]], float)
    ny, nx = sim["segmap"].shape
    ids = np.asarray(t["id"], int)
    row = np.zeros(int(ids.max()) + 1, int)
    row[ids] = np.arange(len(t))
    dens = np.zeros((ny, nx))
    xi = np.clip(np.round(np.asarray(t["x"], float)).astype(int), 0, nx - 1)
    yi = np.clip(np.round(np.asarray(t["y"], float)).astype(int), 0, ny - 1)
    np.add.at(dens, (yi[snr > 10], xi[snr > 10]), 0.2)
    pairs = touching_pairs(sim["segmap"])
    for a, b in pairs:
        ra, rb = row[a], row[b]
        if snr[ra] > 10 and snr[rb] > 10:
            dens[yi[ra], xi[ra]] += 2.0
            dens[yi[rb], xi[rb]] += 2.0
    w = min(2 * half, ny, nx)
    h = w // 2
    box = ndimage.gaussian_filter(dens, w / 6.0, mode="constant")
    yc, xc = np.unravel_index(np.argmax(box), box.shape)
    ya = int(np.clip(yc - h, 0, ny - w))
    xa = int(np.clip(xc - h, 0, nx - w))
    return slice(ya, ya + w), slice(xa, xa + w)


def zoom_figure(
    sim, results, path, names=("morphoscope", "morphoscope zhu", "photutils c=0.005", "sep")
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sy, sx = _crowded_window(sim)
    img = _stretch(sim["sub"][sy, sx], sim["rms"])
    t = sim["truth"]
    snr = np.asarray(t[sim["snr_column"]], float)
    tx = np.asarray(t["x"], float) - sx.start
    ty = np.asarray(t["y"], float) - sy.start
    h, w = img.shape
    inside = (snr > 5) & (tx >= 0) & (tx < w) & (ty >= 0) & (ty < h)
    pts = (tx[inside], ty[inside])
    panels = [("image (+ truth S/N>5)", None), ("truth", sim["segmap"][sy, sx])]
    panels += [(nm, results[nm][0][sy, sx]) for nm in names if nm in results]
    ncol = 3
    nrow = int(np.ceil(len(panels) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 4.3 * nrow))
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    for ax, (title, seg) in zip(axes.ravel(), panels, strict=False):
        _overlay(ax, img, _relabel(seg), title, pts)
    fig.suptitle(
        f"{sim['label']}: region x {sx.start}-{sx.stop}, y {sy.start}-{sy.stop}", fontsize=10
    )
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)


def _relabel(seg):
    if seg is None:
        return None
    u, inv = np.unique(seg, return_inverse=True)
    out = inv.reshape(seg.shape).astype(np.int32)
    if u[0] != 0:
        out += 1
    return out


def _savefig(fig, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# ----------------------------------------------------------------------------------------
# Real images.
# ----------------------------------------------------------------------------------------
def _read_fits(path) -> np.ndarray:
    from astropy.io import fits

    with fits.open(path) as hdul:
        for hdu in hdul:
            if hdu.data is not None and hdu.data.ndim >= 2:
                return np.asarray(hdu.data, dtype=np.float64).squeeze()
    raise SystemExit(f"{path}: no image data")


def estimate_rms(image) -> tuple[float, float]:
    """Sky level and sigma by iterative sigma clipping after masking dilated 2-sigma pixels."""
    from astropy.stats import sigma_clipped_stats
    from scipy import ndimage

    data = np.asarray(image, float)
    mask = ~np.isfinite(data)
    for _ in range(3):
        _, med, std = sigma_clipped_stats(data, mask=mask, sigma=3.0, maxiters=10)
        src = ndimage.binary_dilation(data > med + 2 * std, iterations=2)
        src = ndimage.binary_opening(src, iterations=1) | (data > med + 3 * std)
        mask = ~np.isfinite(data) | src
    _, med, std = sigma_clipped_stats(data, mask=mask, sigma=3.0, maxiters=10)
    return float(med), float(std)


def run_real(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = _read_fits(args.real)
    sky, sigma = estimate_rms(image)
    if args.real_rms:
        rms = _read_fits(args.real_rms)
        rms_note = f"rms map {Path(args.real_rms).name}"
    else:
        rms = np.full(image.shape, sigma)
        rms_note = f"rms {sigma:.4g} (sigma-clipped, sky {sky:.3g})"
    if args.real_psf:
        psf = _read_fits(args.real_psf)
    else:
        sys.path.insert(0, str(HERE))
        from independent_field import moffat_psf

        psf = moffat_psf(3.0)
    print(
        f"{args.real}: {image.shape[1]}x{image.shape[0]}, {rms_note}, PSF FWHM {_fwhm(psf):.2f} px"
    )
    results = run_methods(image, rms, psf, repeat=args.repeat)
    base = results.get("morphoscope")
    print(f"{'method':<18} {'time s':>7} {'peak MB':>8} {'n det':>6}")
    for name, (seg, dt, peak, _) in results.items():
        print(f"{name:<18} {dt:7.3f} {peak:8.0f} {np.unique(seg[seg > 0]).size:6d}")
    if base:
        for name, (_, dt, _, _) in results.items():
            if name != "morphoscope":
                print(f"{name}/morphoscope = {dt / base[1]:.1f}x")
    img = _stretch(image - sky, rms)
    panels = [("image", None)] + [(nm, r[0]) for nm, r in results.items()]
    ncol = 3
    nrow = int(np.ceil(len(panels) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 4.3 * nrow))
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    for ax, (title, seg) in zip(axes.ravel(), panels, strict=False):
        _overlay(ax, img, _relabel(seg), title)
    fig.suptitle(f"{Path(args.real).name} ({rms_note})", fontsize=10)
    fig.tight_layout()
    out = (
        Path(args.figure)
        if args.figure
        else (Path(args.out) / f"bench_real_{Path(args.real).name.split('.')[0]}.png")
    )
    _savefig(fig, out)
    plt.close(fig)
    print(f"overlay: {out}")


# ----------------------------------------------------------------------------------------
def _floats(s):
    return [float(v) for v in s.split(",")] if s else None


def cpu_times(image, rms, psf, names, repeat: int = 3) -> dict[str, float]:
    """Fastest CPU time (``time.process_time``) of each method in this process, plus photutils'
    ``deblend_sources`` step alone and morphoscope's de-blending step (``deblend_saddle``)
    alone.

    Wall time in a subprocess (the main table) includes waiting for the CPU, so on a busy
    machine it mixes in the load; the CPU time of a single-threaded call does not. BLAS
    threads are limited to one by ``main`` so every method runs on one core.
    """
    import warnings

    out: dict[str, float] = {}
    for _ in range(max(1, repeat)):
        for name in names:
            if name.startswith("photutils"):
                step: dict[str, float] = {}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.process_time()
                    _run_photutils(image, rms, psf, float(name.split("=")[1]), step)
                    dt = time.process_time() - t0
                key = f"{name} deblend_sources"
                out[key] = min(out.get(key, np.inf), step.get("deblend_sources", np.inf))
            elif name == "morphoscope":
                # Time the de-blending step inside the call too (the peer of photutils'
                # deblend_sources): wrap the function segment_image calls.
                from morphoscope.segment import core

                step = {}
                inner = core.deblend_saddle

                def timed(*a, _inner=inner, _step=step, **k):
                    t = time.process_time()
                    try:
                        return _inner(*a, **k)
                    finally:
                        _step["deblend"] = time.process_time() - t

                core.deblend_saddle = timed
                try:
                    t0 = time.process_time()
                    _call(name, image, rms, psf)
                    dt = time.process_time() - t0
                finally:
                    core.deblend_saddle = inner
                key = "morphoscope de-blending step"
                out[key] = min(out.get(key, np.inf), step.get("deblend", np.inf))
            else:
                t0 = time.process_time()
                _call(name, image, rms, psf)
                dt = time.process_time() - t0
            out[name] = min(out.get(name, np.inf), dt)
    return out


def run_field(args, n, depth, zoom=None) -> None:
    if args.field == "independent":
        sim = independent_sim(args.size, n, args.seed, depth=depth, gradient=args.gradient)
    else:
        sim = morphoscope_sim(args.size, n, args.seed)
    truth = sim["truth"]
    snr = np.asarray(truth[sim["snr_column"]], float)
    print(f"\n{sim['label']}")
    print(
        f"truth: {len(truth)} sources, {int((snr > SNR_MIN).sum())} with S/N > {SNR_MIN:g}, "
        f"{int(((snr > 5) & (snr <= SNR_MIN)).sum())} with 5 < S/N <= {SNR_MIN:g}"
    )
    results = run_methods(
        sim["image"], sim["rms"], sim["psf"], names=args.methods, repeat=args.repeat
    )
    print(HEADER)
    scores = {}
    for name, res in results.items():
        scores[name] = score(res[0], sim)
        _cross_check(res[0], sim, scores[name], name)
        print(format_row(name, res, scores[name]))
    first = next(iter(scores.values()), None)
    if first is not None:
        print(f"(truth pairs with touching footprints, both S/N > {SNR_MIN:g}: {first['n_pairs']})")
    if scores:
        _sensitivity(results, sim)
    if "morphoscope" in results:
        t0 = results["morphoscope"][1]
        print(
            "time ratios: "
            + ", ".join(
                f"{nm}/morphoscope = {r[1] / t0:.1f}x"
                for nm, r in results.items()
                if nm != "morphoscope"
            )
        )
    if args.cpu_repeat > 0:
        names = [m for m in args.methods if m != "morphoscope zhu"]
        cpu = cpu_times(sim["image"], sim["rms"], sim["psf"], names, args.cpu_repeat)
        print(f"CPU time, fastest of {args.cpu_repeat}, one core, in this process:")
        t0 = cpu.get("morphoscope")
        step = cpu.get("morphoscope de-blending step")
        for nm, t in cpu.items():
            if nm.startswith("morphoscope"):
                ratio = ""
            elif nm.endswith("deblend_sources") and step:
                ratio = f"  (morphoscope de-blending step / this = {step / t:.3f})"
            else:
                ratio = f"  (morphoscope / this = {t0 / t:.2f})" if t0 else ""
            print(f"  {nm:32s} {t:7.3f} s{ratio}")
    if zoom:
        zoom_figure(sim, results, zoom)
        print(f"zoom overlay: {zoom}")
    return {name: (results[name][1], scores[name]) for name in scores}


def _print_summary(rows) -> None:
    print("\nsummary (n = galaxies in the field, depth: sky sigma = 1/sqrt(depth))")
    print(
        f"{'n':>5} {'depth':>5}  {'method':<18} {'time s':>7} {'compl':>6} {'c5-20':>6} "
        f"{'purity':>6} {'F1':>6} {'oversplit':>9} {'pairs':>6} {'IoU':>6}"
    )
    for n, depth, name, dt, m in rows:
        print(
            f"{n:5d} {depth:5g}  {name:<18} {dt:7.2f} {m['completeness']:6.3f} "
            f"{m['compl_5_20']:6.3f} {m['purity']:6.3f} {m['f1']:6.3f} "
            f"{m['oversplit_gal']:9.3f} {m['pairs_split']:6.3f} {m['iou']:6.3f}"
        )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--field", choices=("independent", "morphoscope"), default="independent")
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--n", type=int, default=1500, help="galaxies (sources for --field morphoscope)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--gradient", action="store_true", help="add a smooth background (independent field)"
    )
    p.add_argument("--densities", help="comma-separated numbers of galaxies (a grid)")
    p.add_argument(
        "--depths", help="comma-separated depths (independent field: sky sigma 1/sqrt(depth))"
    )
    p.add_argument(
        "--methods",
        default=",".join(METHOD_NAMES),
        help="comma-separated subset of: " + ", ".join(METHOD_NAMES),
    )
    p.add_argument("--repeat", type=int, default=3, help="runs per method (fastest kept)")
    p.add_argument(
        "--cpu-repeat",
        type=int,
        default=3,
        help="in-process CPU-time runs per method (0 = skip); robust to a busy machine",
    )
    p.add_argument("--zoom", help="save a crowded-region overlay PNG here (first field)")
    p.add_argument("--real", help="a FITS image: run every method, save an overlay PNG")
    p.add_argument("--real-rms", help="rms map of --real (default: sigma-clipped estimate)")
    p.add_argument("--real-psf", help="PSF of --real (default: Moffat FWHM 3 px)")
    p.add_argument("--figure", help="PNG path of the --real overlay")
    p.add_argument("--out", default=str(HERE / "output"), help="folder for figures")
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in args.methods if m not in METHOD_NAMES]
    if bad:
        p.error(f"unknown method(s) {bad}")

    t_start = time.perf_counter()
    print(
        f"bench_segmentation: {_cpu()}, "
        f"{os.cpu_count()} cores, python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(
        "command: python benchmarks/bench_segmentation.py "
        + " ".join(sys.argv[1:] if argv is None else argv)
    )
    _versions()
    if args.real:
        run_real(args)
    else:
        densities = _floats(args.densities) or [args.n]
        depths = _floats(args.depths) or [1.0]
        if args.field == "morphoscope" and depths != [1.0]:
            p.error("--depths applies to --field independent only")
        zoom = args.zoom
        summary = []
        for n in densities:
            for depth in depths:
                out = run_field(args, int(n), depth, zoom=zoom)
                summary += [(int(n), depth, name, dt, m) for name, (dt, m) in out.items()]
                zoom = None
        if len(densities) * len(depths) > 1:
            _print_summary(summary)
    print(f"\nbenchmark wall time: {time.perf_counter() - t_start:.0f} s")


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _versions() -> None:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for pkg in ("morphoscope", "photutils", "sep", "numpy", "scipy"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            parts.append(f"{pkg} ?")
    print("versions: " + ", ".join(parts))


if __name__ == "__main__":
    main()
