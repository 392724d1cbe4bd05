"""``morphoscope demo``: every tier on a simulated JWST-like field, scored against its truth.

:func:`run_demo` simulates a six-band NIRCam-like field (F115W, F200W, F277W, F335M,
F356W, F444W at 0.03"/pixel; some galaxies have extended line emission in F335M),
writes it as FITS, runs :class:`~morphoscope.pipeline.Pipeline` on the files exactly as
``morphoscope run`` would, and scores every tier against the truth. A classifier of the
truth class, trained on a second simulated field, is applied by the classifier stage.
:func:`run_real_demo` runs the same pipeline on the Hubble Deep Field image that ships
with scikit-image.
"""

from __future__ import annotations

import html
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table

from .config import PipelineConfig
from .evaluate import detection_metrics, match_sources
from .pipeline import Pipeline, Result
from .run import BandInput

__all__ = [
    "DEMO_BANDS",
    "DemoResult",
    "demo_bands",
    "measurement_accuracy",
    "run_demo",
    "run_real_demo",
    "tier_accuracy",
]

#: Bands of the demo field, bluest first.
DEMO_BANDS = ("F115W", "F200W", "F277W", "F335M", "F356W", "F444W")
#: Noise of the JPEG Hubble Deep Field in units of its per-pixel MAD (correlated noise).
HDF_NOISE_FACTOR = 8.0
#: Catalog columns the demo's classifier is trained on.
CLASSIFIER_FEATURES = (
    "gini", "m20", "concentration", "asymmetry", "smoothness", "r50", "ellipticity_centroid",
    "sn_per_pixel", "nn_sersic_n", "nn_sersic_rhalf", "nn_sersic_q",
)  # fmt: skip


def demo_bands():
    """NIRCam-like bands on a 0.03"/pixel grid (Moffat PSFs; F335M the medium band).

    Examples
    --------
    >>> [b.name for b in demo_bands()]
    ['F115W', 'F200W', 'F277W', 'F335M', 'F356W', 'F444W']
    """
    from ..simulate import Band

    spec = [  # name, PSF FWHM (arcsec, pixel-convolved), sky rms, medium, wavelength
        ("F115W", 0.050, 1.2, False, 1.15),
        ("F200W", 0.066, 1.0, False, 1.99),
        ("F277W", 0.092, 0.9, False, 2.77),
        ("F335M", 0.111, 1.6, True, 3.36),
        ("F356W", 0.116, 1.0, False, 3.57),
        ("F444W", 0.145, 1.2, False, 4.42),
    ]
    return [
        Band(n, psf="moffat", fwhm=f, sky_rms=s, gain=5.0, medium=m, wavelength=w)
        for n, f, s, m, w in spec
    ]


@dataclass
class DemoResult:
    """The pipeline's result on the demo field, with its scores against the truth.

    ``scores`` holds the detection scores (``scores["saddle"]``), ``accuracy`` the
    measurement accuracy of the detection band, ``tiers`` the accuracy of every tier
    (:func:`tier_accuracy`).
    """

    pipeline: Result
    truth: Table
    scores: dict[str, dict[str, float]]
    accuracy: dict[str, float]
    tiers: dict[str, dict[str, float]] = field(default_factory=dict)
    data_files: dict[str, Path] = field(default_factory=dict)
    simulate_seconds: float = 0.0


def measurement_accuracy(
    catalog: Table, truth: Table, band: str, *, snr_min: float = 50.0
) -> dict[str, float]:
    """Position and flux accuracy on isolated truth galaxies brighter than ``snr_min``.

    Returns the number of sources used, the median and the 16-84% half-width of
    ``flux / true flux``, and the median position error in pixels.
    """
    empty = {
        "n": 0,
        "flux_ratio_median": float("nan"),
        "flux_ratio_scatter": float("nan"),
        "position_error_median": float("nan"),
    }
    if len(catalog) == 0:
        return empty
    x = np.asarray(catalog["xc_centroid"], float)
    y = np.asarray(catalog["yc_centroid"], float)
    r_e = np.asarray(truth["r_e"], float)
    d, t = match_sources(x, y, truth["x"], truth["y"], np.maximum(2.0, 0.5 * r_e))
    snr = np.asarray(truth[f"snr_{band}"], float)[t]
    isolated = ~np.asarray(truth["blended"], bool)[t] if "blended" in truth.colnames else True
    keep = (snr > snr_min) & isolated
    d, t = d[keep], t[keep]
    if d.size == 0:
        return empty
    ratio = np.asarray(catalog["flux"], float)[d] / np.asarray(truth[f"flux_{band}"], float)[t]
    err = np.hypot(x[d] - np.asarray(truth["x"], float)[t], y[d] - np.asarray(truth["y"], float)[t])
    lo, med, hi = np.nanpercentile(ratio, [16, 50, 84])
    return {
        "n": int(d.size),
        "flux_ratio_median": float(med),
        "flux_ratio_scatter": float(0.5 * (hi - lo)),
        "position_error_median": float(np.nanmedian(err)),
    }


def _log_ratio_stats(pred, true) -> dict[str, float]:
    ok = np.isfinite(pred) & np.isfinite(true) & (pred > 0) & (true > 0)
    if not ok.any():
        return {"n": 0, "bias_dex": float("nan"), "scatter_dex": float("nan")}
    r = np.log10(pred[ok] / true[ok])
    lo, med, hi = np.percentile(r, [16, 50, 84])
    return {"n": int(ok.sum()), "bias_dex": float(med), "scatter_dex": float(0.5 * (hi - lo))}


def tier_accuracy(
    result: Result,
    truth: Table,
    *,
    truth_segmap: np.ndarray | None = None,
    truth_classmap: np.ndarray | None = None,
    band: str | None = None,
    snr_min: float = 30.0,
) -> dict[str, dict[str, float]]:
    """Accuracy of every tier of a run against a simulated truth.

    Detected sources are matched to truth sources by position (within
    ``max(2, r_e / 2)`` pixels); the scores use isolated matched sources with truth S/N
    above ``snr_min`` in ``band`` (default: the detection band).

    Returns
    -------
    dict
        ``measure``: Sérsic fit index and radius against the truth (bias and 16-84%
        scatter of log10(fit / true), single-component galaxies); ``sersicnet``: the same
        for SersicNet; ``pixel``: per-object class accuracy and pixel accuracy of the
        class map inside the truth footprints; ``emission``: completeness (truth emitters
        found) and false-positive rate (non-emitters flagged); ``classifier``: accuracy
        of the classifier's ``pred_class`` where present.
    """
    cat = result.catalog
    band = band or (result.detection if result.detection in truth.colnames or
                    f"snr_{result.detection}" in truth.colnames else None)  # fmt: skip
    snr_col = f"snr_{band}" if band and f"snr_{band}" in truth.colnames else next(
        c for c in truth.colnames if c.startswith("snr_"))  # fmt: skip
    out: dict[str, dict[str, float]] = {}
    if not len(cat):
        return out
    x = np.asarray(cat["xc_centroid"], float)
    y = np.asarray(cat["yc_centroid"], float)
    r_e = np.asarray(truth["r_e"], float)
    d, t = match_sources(x, y, truth["x"], truth["y"], np.maximum(2.0, 0.5 * r_e))
    snr = np.asarray(truth[snr_col], float)[t]
    isolated = ~np.asarray(truth["blended"], bool)[t]
    keep = (snr > snr_min) & isolated
    d, t = d[keep], t[keep]
    tcls = np.asarray(truth["class"]).astype(str)[t]
    single = (np.asarray(truth["bulge_fraction"], float)[t] % 1.0 == 0.0) & np.isin(
        tcls, ["spheroid", "disk"]
    )
    true_n = np.asarray(truth["n"], float)[t]
    true_r = np.asarray(truth["r_e"], float)[t]
    for tier, prefix in (("measure", ""), ("sersicnet", "nn_")):
        ncol, rcol = f"{prefix}sersic_n", f"{prefix}sersic_rhalf"
        if ncol in cat.colnames:
            pn = np.asarray(cat[ncol], float)[d]
            pr = np.asarray(cat[rcol], float)[d]
            n_stats = _log_ratio_stats(pn[single], true_n[single])
            r_stats = _log_ratio_stats(pr[single], true_r[single])
            out[tier] = {
                "n": n_stats["n"],
                "sersic_n_bias_dex": n_stats["bias_dex"],
                "sersic_n_scatter_dex": n_stats["scatter_dex"],
                "rhalf_bias_dex": r_stats["bias_dex"],
                "rhalf_scatter_dex": r_stats["scatter_dex"],
            }
    if "pixel_class" in cat.colnames:
        pc = np.asarray(cat["pixel_class"]).astype(str)[d]
        acc = float(np.mean(pc == tcls)) if d.size else float("nan")
        out["pixel"] = {"n": int(d.size), "object_accuracy": acc}
        if result.classmap is not None and truth_classmap is not None:
            foot = truth_classmap > 0
            if truth_segmap is not None:
                foot &= result.segmap > 0
            if foot.any():
                out["pixel"]["pixel_accuracy_in_footprints"] = float(
                    np.mean(result.classmap[foot] == truth_classmap[foot])
                )
        # chance level: the most common class among the scored objects
        if d.size:
            _, counts = np.unique(tcls, return_counts=True)
            out["pixel"]["majority_class_rate"] = float(counts.max() / d.size)
    if "emission_candidate" in cat.colnames and "has_extended_emission" in truth.colnames:
        dd, tt = match_sources(x, y, truth["x"], truth["y"], np.maximum(2.0, 0.5 * r_e))
        em_snr = np.asarray(truth[snr_col], float)[tt]
        bright = em_snr > snr_min
        dd, tt = dd[bright], tt[bright]
        has = np.asarray(truth["has_extended_emission"], bool)[tt]
        cand = np.asarray(cat["emission_candidate"], bool)[dd]
        out["emission"] = {
            "n_emitters": int(has.sum()),
            "n_found": int((has & cand).sum()),
            "completeness": float(np.mean(cand[has])) if has.any() else float("nan"),
            "n_false_positives": int((~has & cand).sum()),
            "false_positive_rate": float(np.mean(cand[~has])) if (~has).any() else float("nan"),
        }
    pred = [c for c in cat.colnames if c == "pred_class"]
    if pred:
        pc = np.asarray(cat["pred_class"]).astype(str)[d]
        out["classifier"] = {"n": int(d.size), "accuracy": float(np.mean(pc == tcls))}
    return out


def _fmt(v, digits: int = 3) -> str:
    if isinstance(v, float):
        return "nan" if not np.isfinite(v) else f"{v:.{digits}g}"
    return str(v)


def accuracy_lines(scores: dict, accuracy: dict, tiers: dict, snr_min: float) -> dict[str, str]:
    """One line per tier, in words (printed by the CLI and shown in the report)."""
    s = scores["saddle"]
    lines = {
        "detection": f"completeness {s['completeness']:.3f} ({s['n_matched_bright']}/"
        f"{s['n_truth_bright']} truth sources with S/N > {snr_min:g}), purity "
        f"{s['purity']:.3f} ({s['n_spurious']} of {s['n_detected']} detections match no "
        "truth source)",
        "measurement": f"flux/true {accuracy['flux_ratio_median']:.3f} ± "
        f"{accuracy['flux_ratio_scatter']:.3f}, position error "
        f"{accuracy['position_error_median']:.2f} px (n = {accuracy['n']}, isolated, S/N > 50)",
    }
    for tier, name in (("measure", "Sersic fit"), ("sersicnet", "SersicNet")):
        if tier in tiers:
            m = tiers[tier]
            lines[name] = (
                f"log10(n/n_true) {_fmt(m['sersic_n_bias_dex'], 2)} ± "
                f"{_fmt(m['sersic_n_scatter_dex'], 2)} dex, log10(r_e/r_e,true) "
                f"{_fmt(m['rhalf_bias_dex'], 2)} ± {_fmt(m['rhalf_scatter_dex'], 2)} dex "
                f"(n = {m['n']} single-Sersic galaxies)"
            )
    if "pixel" in tiers:
        p = tiers["pixel"]
        text = f"object class accuracy {p['object_accuracy']:.3f} (n = {p['n']}; the most " \
            f"common class is {p.get('majority_class_rate', float('nan')):.3f})"  # fmt: skip
        if "pixel_accuracy_in_footprints" in p:
            text += f", pixel accuracy in footprints {p['pixel_accuracy_in_footprints']:.3f}"
        lines["pixel classes"] = text
    if "emission" in tiers:
        e = tiers["emission"]
        lines["emission"] = (
            f"completeness {_fmt(e['completeness'])} ({e['n_found']}/{e['n_emitters']} truth "
            f"emitters), false positives {e['n_false_positives']} "
            f"(rate {_fmt(e['false_positive_rate'])})"
        )
    if "classifier" in tiers:
        c = tiers["classifier"]
        lines["classifier"] = f"accuracy {c['accuracy']:.3f} on {c['n']} sources"
    return lines


def _accuracy_html(lines: dict[str, str]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in lines.items()
    )
    return f'<table class="summary"><tbody>{rows}</tbody></table>'


def _band_inputs(data: Path, names) -> list[BandInput]:
    return [
        BandInput(
            name=b,
            image=data / f"{b}_sci.fits",
            rms=data / f"{b}_rms.fits",
            psf=data / f"{b}_psf.fits",
        )
        for b in names
    ]


def _train_classifier(path: Path, *, seed: int, shape, n_sources: int) -> Path:
    """Train a random forest of the truth class on a second simulated field."""
    from ..classify import train
    from ..simulate import simulate_scene

    scene = simulate_scene(shape=shape, bands=demo_bands(), n_sources=n_sources, seed=seed)
    cfg = PipelineConfig(detection="F200W", stages={"pixel": False, "emission": False},
                         measure={"sersic": False})  # fmt: skip
    res = Pipeline(cfg).run(scene)
    cat = res.catalog
    truth = scene.truth
    d, t = match_sources(cat["xc_centroid"], cat["yc_centroid"], truth["x"], truth["y"],
                         np.maximum(2.0, 0.5 * np.asarray(truth["r_e"], float)))  # fmt: skip
    table = cat[d]
    table["class"] = np.asarray(truth["class"]).astype(str)[t]
    feats = [c for c in CLASSIFIER_FEATURES if c in table.colnames]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = train(table, "class", features=feats, model="rf", cv=3, repeats=1, seed=seed,
                      importance=False)  # fmt: skip
    model.save(path)
    return path


def run_demo(
    out_dir: str | os.PathLike = "demo_output",
    *,
    seed: int = 42,
    shape: tuple[int, int] = (1024, 1024),
    n_sources: int = 300,
    snr_min: float = 20.0,
    classifier: bool = True,
    compare_zhu: bool = False,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Simulate the six-band field, run every tier on its FITS files, score each tier.

    The bands are written to ``out_dir/data`` (image, rms and PSF per band, truth
    catalog and maps) and read back by the same code as ``morphoscope run``.

    Parameters
    ----------
    out_dir : path
        Output folder: ``data/`` and the outputs of :meth:`Result.write`.
    seed : int
        Seed of the simulation (the pipeline itself is deterministic).
    shape, n_sources : tuple, int
        Size of the field and number of sources.
    snr_min : float
        Truth S/N above which detection completeness is scored.
    classifier : bool
        Train a classifier of the truth class on a second field (seed + 1, a quarter of
        the area) and apply it in the classifier stage.
    compare_zhu : bool
        Also score the reference ``zhu`` segmentation.

    Returns
    -------
    DemoResult
    """
    from ..simulate import simulate_scene

    step = progress or (lambda name: None)
    out = Path(out_dir)
    step("simulate")
    t0 = time.perf_counter()
    scene = simulate_scene(
        shape=shape, bands=demo_bands(), n_sources=n_sources, seed=seed,
        emission_band="F335M", emission_fraction=0.15,
    )  # fmt: skip
    files = scene.write(out / "data")
    model_path = None
    if classifier:
        step("train classifier")
        half = (max(128, shape[0] // 2), max(128, shape[1] // 2))
        model_path = _train_classifier(out / "data" / "classifier.zip", seed=seed + 1,
                                       shape=half, n_sources=max(40, n_sources // 2))  # fmt: skip
    sim_seconds = time.perf_counter() - t0
    det = "F200W"
    cfg = PipelineConfig(
        bands=_band_inputs(out / "data", scene.band_names),
        detection=det,
        emission_medium="F335M",
        emission_reference=["F277W", "F356W"],
        pixel={"bands": ["F200W", "F335M", "F356W"]},
        classifier={"model": str(model_path)} if model_path else {},
    )
    result = Pipeline(cfg).run(progress=step)
    truth = scene.truth
    seg = result.segmentation
    scores = {
        "saddle": detection_metrics(
            seg.segmap, truth, image=seg.image, truth_segmap=scene.segmap,
            snr_column=f"snr_{det}", snr_min=snr_min, centroid="either",
        ),
    }  # fmt: skip
    if compare_zhu:
        from ..segment.zhu import segment_zhu

        step("zhu")
        zhu = segment_zhu(seg.image, seg.rms, bad=seg.bad)
        scores["zhu"] = detection_metrics(
            zhu, truth, image=seg.image, truth_segmap=scene.segmap,
            snr_column=f"snr_{det}", snr_min=snr_min, centroid="either",
        )  # fmt: skip
    accuracy = measurement_accuracy(result.catalog, truth, det)
    tiers = tier_accuracy(result, truth, truth_segmap=scene.segmap,
                          truth_classmap=scene.classmap, band=det)  # fmt: skip
    lines = accuracy_lines(scores, accuracy, tiers, snr_min)
    result.write(
        out, truth=truth, progress=step, title="morphoscope demo: simulated JWST-like field",
        report_extra={"simulation": f"{len(truth)} sources, seed {seed}, bands "
                      f"{', '.join(scene.band_names)}, 0.03\"/px"},
        accuracy_html=_accuracy_html(lines),
    )  # fmt: skip
    return DemoResult(
        pipeline=result, truth=truth, scores=scores, accuracy=accuracy, tiers=tiers,
        data_files=dict(files), simulate_seconds=sim_seconds,
    )  # fmt: skip


def run_real_demo(
    out_dir: str | os.PathLike = "demo_output_hdf",
    *,
    progress: Callable[[str], None] | None = None,
) -> Result:
    """The pipeline on the Hubble Deep Field image bundled with scikit-image.

    The colour JPEG (``skimage.data.hubble_deep_field()``, WFPC2 F450W/F606W/F814W
    rendered as blue/green/red) is split into its three channels, used as three bands
    and detected on their stack. There is no PSF or noise map: the noise is estimated
    from the images (``HDF_NOISE_FACTOR`` times the per-pixel MAD, for the correlated
    JPEG noise) and SersicNet is told a PSF FWHM of 2.5 pixels. No truth exists,
    so nothing is scored; there is no medium band, so the emission search is skipped.
    """
    from skimage import data

    step = progress or (lambda name: None)
    rgb = np.asarray(data.hubble_deep_field(), dtype=float)
    img = rgb[::-1]  # JPEG rows run top-down; FITS convention is bottom-up
    bands = []
    for name, k in (("F450W", 2), ("F606W", 1), ("F814W", 0)):
        band = np.ascontiguousarray(img[..., k])
        sigma = 1.4826 * float(np.median(np.abs(band - np.median(band))))
        # JPEG compression and drizzling correlate the noise over several pixels: the
        # per-pixel MAD underestimates the noise of the smoothed detection image.
        bands.append(BandInput(name=name, image=band, rms=HDF_NOISE_FACTOR * sigma))
    cfg = PipelineConfig(bands=bands, detection="stack", sersicnet={"psf_fwhm": 2.5},
                         measure={"sersic": False})  # fmt: skip
    result = Pipeline(cfg).run(progress=step)
    result.write(out_dir, progress=step, title="morphoscope demo: Hubble Deep Field",
                 report_extra={"input": "skimage.data.hubble_deep_field() (8-bit JPEG: "
                               "saturated cores, no noise map or PSF)"})  # fmt: skip
    return result
