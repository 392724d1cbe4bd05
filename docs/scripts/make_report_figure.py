"""Render the pictures of docs/report.md from a synthetic field of Gaussian blobs.

Usage::

    python docs/scripts/make_report_figure.py [OUTPUT_DIR]

Writes ``report_overview.png``, ``report_gallery.png`` and ``report_plots.png``
(default folder: ``docs/images``) and a full ``report_example.html`` next to them
when ``--html`` is given. Only :mod:`morphoscope.report`, numpy, scipy and astropy
are used: the blobs, segmentation and catalog are built here.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from astropy.table import Table
from PIL import Image
from scipy import ndimage

from morphoscope.report import figures, write_report


def synthetic_field(shape=(384, 512), n=60, seed=7):
    """Noisy image with ``n`` elliptical Gaussian blobs, a threshold segmap and a catalog."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]].astype(float)
    tx = rng.uniform(10, shape[1] - 10, n)
    ty = rng.uniform(10, shape[0] - 10, n)
    tflux = 10 ** rng.uniform(2.3, 4.3, n)
    sigma = rng.uniform(0.7, 1.3, n) * (1.0 + 1.2 * np.log10(tflux / 200.0))
    q = rng.uniform(0.4, 1.0, n)
    theta = rng.uniform(0, np.pi, n)
    img = rng.normal(0.0, 1.0, shape)
    for x0, y0, f, s, qq, th in zip(tx, ty, tflux, sigma, q, theta, strict=True):
        c, sn = np.cos(th), np.sin(th)
        u = c * (x - x0) + sn * (y - y0)
        v = -sn * (x - x0) + c * (y - y0)
        img += f / (2 * np.pi * s * s * qq) * np.exp(-0.5 * ((u / s) ** 2 + (v / (s * qq)) ** 2))
    smooth = ndimage.gaussian_filter(img, 1.0)
    seg, nlab = ndimage.label(smooth > 1.2)
    labels = np.arange(1, nlab + 1)
    area = np.asarray(ndimage.sum(np.ones(shape), seg, labels))
    keep = np.flatnonzero(area >= 8) + 1
    seg = np.where(np.isin(seg, keep), np.searchsorted(keep, seg) + 1, 0)
    labels = np.arange(1, keep.size + 1)
    flux = np.asarray(ndimage.sum(img, seg, labels))
    area = np.asarray(ndimage.sum(np.ones(shape), seg, labels))
    pos = np.clip(img, 0, None)
    cy, cx = np.asarray(ndimage.center_of_mass(pos, seg, labels)).T
    # Simple pixel statistics so that every panel has something to show.
    gini = np.empty(labels.size)
    m20 = np.empty(labels.size)
    r50 = np.empty(labels.size)
    for i, sl in enumerate(ndimage.find_objects(seg)):
        m = seg[sl] == i + 1
        v = np.sort(np.abs(img[sl][m]))
        k = np.arange(1, v.size + 1)
        gini[i] = np.sum((2 * k - v.size - 1) * v) / (v.mean() * v.size * (v.size - 1))
        yy, xx = np.nonzero(m)
        w = img[sl][m]
        d2 = (xx + sl[1].start - cx[i]) ** 2 + (yy + sl[0].start - cy[i]) ** 2
        order = np.argsort(w)[::-1]
        cum = np.cumsum(w[order])
        top = order[: max(1, np.searchsorted(cum, 0.2 * cum[-1]) + 1)]
        m20[i] = np.log10(np.sum(w[top] * d2[top]) / max(np.sum(w * d2), 1e-9))
        by_r = np.argsort(d2)
        cum_r = np.cumsum(w[by_r])
        half = min(d2.size - 1, np.searchsorted(cum_r, 0.5 * cum_r[-1]))
        r50[i] = np.sqrt(d2[by_r][half])
    edge = np.zeros(labels.size, int)
    for i, sl in enumerate(ndimage.find_objects(seg)):
        if sl[0].start == 0 or sl[1].start == 0 or sl[0].stop == shape[0]:
            edge[i] = 2
        elif sl[1].stop == shape[1]:
            edge[i] = 2
    catalog = Table(
        {
            "label": labels,
            "xc_centroid": cx,
            "yc_centroid": cy,
            "flux": flux,
            "area": area,
            "r50": r50,
            "gini": gini,
            "m20": m20,
            "flag": edge,
        }
    )
    truth = Table({"x": tx, "y": ty, "flux_F200W": tflux, "r_e": 1.18 * sigma})
    return img, seg, catalog, truth


def _png(fig) -> Image.Image:
    return Image.open(io.BytesIO(figures.png_bytes(fig))).convert("RGB")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=Path(__file__).parents[1] / "images")
    parser.add_argument("--html", action="store_true", help="also write report_example.html")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    img, seg, catalog, truth = synthetic_field()
    idx, detected = figures.match_truth(catalog, truth)
    figures.overview_figure(
        img,
        seg,
        truth_xy=(truth["x"], truth["y"]),
        truth_detected=detected,
        title="detection image, segment outlines and simulated sources",
    ).savefig(out / "report_overview.png", dpi=100)
    figures.cutout_gallery(img, seg, catalog, n=12, ncols=6).savefig(
        out / "report_gallery.png", dpi=100
    )
    panels = [
        _png(figures.size_flux_figure(catalog)),
        _png(figures.gini_m20_figure(catalog)),
        _png(figures.flux_recovery_figure(catalog, truth, cat_index=idx)),
    ]
    sheet = Image.new("RGB", (sum(p.width for p in panels), max(p.height for p in panels)), "white")
    x = 0
    for p in panels:
        sheet.paste(p, (x, 0))
        x += p.width
    sheet.save(out / "report_plots.png", optimize=True)
    if args.html:
        write_report(
            out / "report_example.html",
            image=img,
            segmap=seg,
            catalog=catalog,
            truth=truth,
            summary={"image": "synthetic blobs", "seed": 7},
        )
    print(f"wrote pictures to {out}")


if __name__ == "__main__":
    main()
