"""Report sections for the tiers of a :class:`morphoscope.Pipeline` run.

:func:`write_pipeline_report` writes ``report.html`` with the sections of
:func:`morphoscope.report.write_report` plus, for each tier that ran: the stage log with
timings, the field coloured by PixelClassifier class, the SersicNet gallery (data,
reconstruction, residual), the SersicNet-vs-fitter comparison, the concentration-
asymmetry diagram, the emission candidates (three-panel figures and a link to the
inspection page) and the classifier's predictions.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from . import figures as F
from .page import _img_tag, write_report

__all__ = [
    "CLASS_COLOURS",
    "class_field_figure",
    "concentration_asymmetry_figure",
    "sersic_comparison_figure",
    "write_pipeline_report",
]

#: RGB colours of the PixelClassifier classes (index = class id; 0 = background).
CLASS_COLOURS = np.array(
    [
        [0.0, 0.0, 0.0],
        [0.90, 0.25, 0.20],  # spheroid
        [0.20, 0.55, 0.95],  # disk
        [0.95, 0.80, 0.15],  # irregular
        [0.85, 0.30, 0.90],  # point_source
    ]
)
_CLASS_NAMES = ("background", "spheroid", "disk", "irregular", "point_source")


def _esc(v) -> str:
    return html.escape(str(v), quote=True)


def class_field_figure(image, segmap, classmap, *, max_pixels: int = 1000) -> Figure:
    """The field (asinh stretch) with every segment's pixels tinted by their class."""
    rgb, factor = F.overview_rgb(image, segmap, max_pixels=max_pixels)
    cls = F.downsample(np.asarray(classmap), factor, reduce="first")[: rgb.shape[0],
                                                                     : rgb.shape[1]]  # fmt: skip
    rgb = rgb[: cls.shape[0], : cls.shape[1]].copy()
    on = cls > 0
    rgb[on] = 0.45 * rgb[on] + 0.55 * CLASS_COLOURS[np.clip(cls[on], 0, 4)]
    h, w = rgb.shape[:2]
    fig = Figure(figsize=(min(9.0, 9.0 * w / max(h, w)) + 0.1, 9.0 * h / max(h, w) + 0.4))
    ax = fig.add_axes((0, 0, 1, 0.95))
    ax.imshow(rgb, origin="lower", interpolation="nearest")
    ax.set_axis_off()
    handles = [Patch(color=CLASS_COLOURS[i], label=_CLASS_NAMES[i]) for i in range(1, 5)]
    fig.legend(handles=handles, loc="upper center", ncol=4, fontsize=8, frameon=False)
    return fig


def concentration_asymmetry_figure(catalog) -> Figure:
    """Concentration against asymmetry (Conselice 2003: A > 0.35 marks mergers)."""
    fig, ax = F._plot_figure()
    c = F.catalog_column(catalog, "concentration")
    a = F.catalog_column(catalog, "asymmetry")
    if c is None or a is None or c.size == 0:
        F._empty_axes_note(ax, "no concentration / asymmetry columns")
        return fig
    ok = np.isfinite(c) & np.isfinite(a)
    _scatter_by_class(ax, a, c, ok, catalog)
    ax.axvline(0.35, color="k", lw=0.8, ls="--", label="A = 0.35 (mergers)")
    ax.set_xlabel("asymmetry A", fontsize=8)
    ax.set_ylabel("concentration C", fontsize=8)
    ax.set_title(f"C-A ({int(ok.sum())} sources)", fontsize=9)
    ax.legend(fontsize=6.5, loc="best")
    ax.tick_params(labelsize=7)
    return fig


def _scatter_by_class(ax, x, y, ok, catalog) -> None:
    cls = F.catalog_column(catalog, "pixel_class") if "pixel_class" in catalog.colnames \
        else None  # fmt: skip
    if "pixel_class" not in catalog.colnames:
        ax.scatter(x[ok], y[ok], s=8, color="#1f77b4", alpha=0.7, lw=0)
        return
    cls = np.asarray(catalog["pixel_class"]).astype(str)
    for i, name in enumerate(_CLASS_NAMES[1:], start=1):
        sel = ok & (cls == name)
        if sel.any():
            ax.scatter(x[sel], y[sel], s=9, color=CLASS_COLOURS[i], alpha=0.8, lw=0, label=name)
    rest = ok & ~np.isin(cls, _CLASS_NAMES[1:])
    if rest.any():
        ax.scatter(x[rest], y[rest], s=8, color="grey", alpha=0.6, lw=0, label="no class")


def gini_m20_class_figure(catalog) -> Figure:
    """Gini-M20 plane coloured by PixelClassifier class, with the Lotz et al. lines."""
    fig, ax = F._plot_figure()
    g = F.catalog_column(catalog, "gini")
    m = F.catalog_column(catalog, "m20")
    if g is None or m is None or g.size == 0:
        F._empty_axes_note(ax, "no gini / m20 columns")
        return fig
    ok = np.isfinite(g) & np.isfinite(m)
    _scatter_by_class(ax, m, g, ok, catalog)
    x = np.linspace(-3.0, 0.0, 50)
    ax.plot(x, -0.14 * x + 0.33, color="k", lw=0.8, ls="--")
    xs = x[x <= -1.68]
    ax.plot(xs, 0.14 * xs + 0.80, color="k", lw=0.8, ls=":")
    ax.invert_xaxis()
    ax.set_xlabel("M20", fontsize=8)
    ax.set_ylabel("Gini", fontsize=8)
    ax.set_title("Gini-M20 by pixel class (Lotz et al. 2008 lines)", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6.5, loc="lower left")
    ax.tick_params(labelsize=7)
    return fig


def sersic_comparison_figure(catalog, truth_pairs=None) -> Figure | None:
    """SersicNet against the catalog's Sérsic fit: index and half-light radius."""
    pairs = [("sersic_n", "nn_sersic_n", "Sérsic n", True),
             ("sersic_rhalf", "nn_sersic_rhalf", "half-light radius [px]", True)]  # fmt: skip
    pairs = [p for p in pairs if p[0] in catalog.colnames and p[1] in catalog.colnames]
    if not pairs:
        return None
    fig = Figure(figsize=(4.2 * len(pairs), 3.8), dpi=100)
    for k, (fit, nn, label, log) in enumerate(pairs):
        ax = fig.add_subplot(1, len(pairs), k + 1)
        a = np.asarray(catalog[fit], float)
        b = np.asarray(catalog[nn], float)
        ok = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
        if "flag_sersic" in catalog.colnames:
            ok &= np.asarray(catalog["flag_sersic"]) < 2
        # fits that ran away (n at the bounds, radii beyond any stamp) say nothing here
        ok &= (a < 20.0) if fit == "sersic_n" else (a < 10.0 * np.nanmax(b, initial=1.0))
        ax.scatter(a[ok], b[ok], s=8, alpha=0.7, lw=0)
        if ok.any():
            lo, hi = min(a[ok].min(), b[ok].min()), max(a[ok].max(), b[ok].max())
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            med = float(np.median(np.log10(b[ok] / a[ok])))
            ax.set_title(f"{label}: median log10(nn/fit) = {med:+.2f} (n={int(ok.sum())})",
                         fontsize=8)  # fmt: skip
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(f"fitter ({fit})", fontsize=8)
        ax.set_ylabel(f"SersicNet ({nn})", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def _sersicnet_gallery(result, n: int = 12) -> str:
    """Data | SersicNet reconstruction | residual for the brightest sources."""
    from ..nn import SersicNet
    from ..nn.sersic.catalog import cut_stamps

    cat = result.catalog
    if "nn_sersic_n" not in cat.colnames or not len(cat) or result.psf_fwhm is None:
        return ""
    order = F.gallery_order(cat, len(cat))
    order = [i for i in order if np.isfinite(float(cat["nn_sersic_n"][i]))][:n]
    if not order:
        return ""
    net = SersicNet.pretrained()
    seg = result.segmentation
    img = np.where(seg.bad, np.nan, seg.image)
    bins = cat["nn_sersic_bin_factor"] if "nn_sersic_bin_factor" in cat.colnames else None
    stamps, noise, binf = [], [], []
    for i in order:
        b = int(bins[i]) if bins is not None and np.isfinite(bins[i]) else 1
        st = cut_stamps(img, float(cat["xc_centroid"][i]), float(cat["yc_centroid"][i]),
                        net.size, b)[0]  # fmt: skip
        r = cut_stamps(np.asarray(seg.rms, float) ** 2 if np.ndim(seg.rms) else
                       np.full(img.shape, float(seg.rms) ** 2),
                       float(cat["xc_centroid"][i]), float(cat["yc_centroid"][i]),
                       net.size, b)[0]  # fmt: skip
        stamps.append(np.nan_to_num(st))
        noise.append(float(np.sqrt(np.nanmedian(r))))
        binf.append(b)
    stamps = np.asarray(stamps, np.float32)
    _, rec = net.predict(stamps, psf_fwhm=float(result.psf_fwhm) / np.asarray(binf, float),
                         rms=np.asarray(noise), reconstruct=True)  # fmt: skip
    cells = []
    for k, i in enumerate(order):
        d, m = stamps[k], rec[k]
        lim = np.nanpercentile(d, 99.5) or 1.0
        fig = Figure(figsize=(4.5, 1.6), dpi=80)
        for j, (im, title) in enumerate(((d, "data"), (m, "SersicNet"), (d - m, "residual"))):
            ax = fig.add_axes((j / 3, 0, 1 / 3 - 0.01, 0.86))
            if j < 2:
                ax.imshow(np.arcsinh(im / (0.05 * lim)), origin="lower", cmap="gray_r",
                          vmin=0, vmax=np.arcsinh(20))  # fmt: skip
            else:
                fin = d[np.isfinite(d)]
                s = 3 * 1.4826 * float(np.median(np.abs(fin - np.median(fin)))) if fin.size \
                    else 0.0  # fmt: skip
                s = s if s > 0 else lim / 10
                ax.imshow(im, origin="lower", cmap="RdBu_r", vmin=-s, vmax=s)
            ax.set_title(title, fontsize=7)
            ax.set_axis_off()
        row = cat[i]
        alt = f"SersicNet source {int(row['label'])}"
        cap = (f"#{int(row['label'])}: n = {float(row['nn_sersic_n']):.2f} "
               f"± {float(row['nn_sersic_n_err']):.2f}, r_e = "
               f"{float(row['nn_sersic_rhalf']):.2f} px")  # fmt: skip
        cells.append(
            '<figure style="margin:0;background:#fff;border:1px solid #ddd;padding:4px;'
            'font-size:0.78em">'
            f"{_img_tag(F.png_bytes(fig), alt)}"
            f"<figcaption>{_esc(cap)}</figcaption></figure>"
        )
    return (
        '<p class="note">Data, SersicNet reconstruction (same stretch) and residual '
        "(±3 sigma) for the brightest sources.</p>"
        f'<div class="gallery">{"".join(cells)}</div>'
    )


def _stage_table(result) -> str:
    rows = "".join(
        f"<tr><td>{_esc(k)}</td><td>{_esc(v.status)}</td><td>{v.seconds:.2f}</td>"
        f'<td style="text-align:left;white-space:normal">{_esc(v.message)}</td></tr>'
        for k, v in result.log.items()
    )
    flags = [c for c in result.catalog.colnames if c.startswith("flag_")]
    counts = ", ".join(
        f"{c}: {int(np.count_nonzero(np.asarray(result.catalog[c])))}" for c in flags
    )
    return (
        "<table><thead><tr><th>stage</th><th>status</th><th>seconds</th><th>message</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
        f'<p class="note">Sources flagged per stage: {_esc(counts or "none")}</p>'
    )


def _emission_section(result, link: str | None, n: int = 8) -> str:
    from ..emission import candidate_figure

    cfg = result.config
    t = result.emission
    if t is None:
        return ""
    cand = t[np.asarray(t["candidate"], bool)]
    parts = [
        f"<p>{len(cand)} candidates of {len(t)} sources: {_esc(cfg.emission_medium)} against "
        f"{_esc(', '.join(cfg.emission_reference))}."
        + (f' Accept or reject them on the <a href="{_esc(link)}">inspection page</a>.'
           if link else "")
        + "</p>"
    ]
    if len(cand):
        cols = [c for c in ("id", "x", "y", "reason", "R_medium", "R_reference", "S_excess",
                            "snr_excess") if c in cand.colnames]  # fmt: skip
        head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(
                f"<td>{_esc(f'{v:.4g}' if isinstance(v, float | np.floating) else v)}</td>"
                for v in (r[c] for c in cols)) + "</tr>"
            for r in cand
        )  # fmt: skip
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    figs = []
    for c in result.emission_cutouts[:n]:
        fig = candidate_figure(c, medium_name=cfg.emission_medium or "medium",
                               reference_names=list(cfg.emission_reference))  # fmt: skip
        fig.set_dpi(60)
        figs.append(f"<div>{_img_tag(F.png_bytes(fig), 'emission candidate')}</div>")
    if figs:
        parts.append(f'<div class="plots">{"".join(figs)}</div>')
    return "".join(parts)


def _classifier_section(result) -> str:
    cat = result.catalog
    pred = [c for c in cat.colnames if c.startswith("pred_")]
    if not pred:
        return ""
    parts = []
    for c in pred:
        vals = np.asarray(cat[c])
        if vals.dtype.kind in "US" or vals.dtype.kind in "iub":
            names, counts = np.unique(vals.astype(str), return_counts=True)
            rows = "".join(f"<tr><td>{_esc(a)}</td><td>{b}</td></tr>"
                           for a, b in zip(names, counts, strict=True))  # fmt: skip
            parts.append(f"<h3>{_esc(c)}</h3><table><thead><tr><th>class</th><th>sources"
                         f"</th></tr></thead><tbody>{rows}</tbody></table>")  # fmt: skip
        else:
            fig, ax = F._plot_figure()
            ax.hist(vals[np.isfinite(vals)], bins=30)
            ax.set_xlabel(c, fontsize=8)
            parts.append(_img_tag(F.png_bytes(fig), c))
    probs = [c for c in cat.colnames if c.startswith("prob_")]
    if probs:
        p = np.column_stack([np.asarray(cat[c], float) for c in probs]).max(axis=1)
        fig, ax = F._plot_figure()
        ax.hist(p[np.isfinite(p)], bins=20, range=(0, 1))
        ax.set_xlabel("probability of the predicted class", fontsize=8)
        ax.set_ylabel("sources", fontsize=8)
        parts.append(f'<div class="plots">{_img_tag(F.png_bytes(fig), "classifier confidence")}'
                     "</div>")  # fmt: skip
    return "".join(parts)


def write_pipeline_report(
    result,
    path: str | os.PathLike,
    *,
    truth=None,
    extra: Mapping | None = None,
    accuracy_html: str | None = None,
    title: str = "morphoscope report",
) -> Path:
    """Write ``report.html`` of a :class:`~morphoscope.pipeline.Result` with every tier.

    Parameters
    ----------
    result : morphoscope.pipeline.Result
    path : path-like
        Output file, written atomically.
    truth : Table, optional
        Simulated truth (marks recovered / missed sources on the field).
    extra : dict, optional
        Extra summary lines (scores of the demo, input files, ...).
    accuracy_html : str, optional
        A prepared section (the demo's accuracy per tier), shown first.
    title : str
        Page title.
    """
    cat = result.catalog
    seg = result.segmentation
    summary = {
        "detection": result.detection,
        "bands": ", ".join(result.bands),
        "stages": ", ".join(f"{k}: {v.status}" for k, v in result.log.items()),
    }
    summary.update({str(k): str(v) for k, v in (extra or {}).items()})
    sections: list[tuple[str, str, str]] = []
    if accuracy_html:
        sections.append(("accuracy", "Accuracy per tier against the truth", accuracy_html))
    sections.append(("stages", "Stages", _stage_table(result)))
    if result.classmap is not None:
        fig = class_field_figure(seg.image, seg.segmap, result.classmap)
        sections.append(
            ("classes", "PixelClassifier classes",
             f'<div class="overview">{_img_tag(F.png_bytes(fig, palette=True), "class map")}'
             "</div>"),
        )  # fmt: skip
    plots = []
    if len(cat) and "gini" in cat.colnames and "m20" in cat.colnames:
        plots.append((gini_m20_class_figure(cat), "Gini-M20 by class"))
    if len(cat) and "concentration" in cat.colnames and "asymmetry" in cat.colnames:
        plots.append((concentration_asymmetry_figure(cat), "concentration-asymmetry"))
    if plots:
        sections.append(
            ("diagrams", "Morphology diagrams",
             '<div class="plots">' + "".join(_img_tag(F.png_bytes(f), a) for f, a in plots)
             + "</div>"),
        )  # fmt: skip
    if "nn_sersic_n" in cat.colnames:
        body = _sersicnet_gallery(result)
        comp = sersic_comparison_figure(cat)
        if comp is not None:
            body += '<div class="plots">' + _img_tag(F.png_bytes(comp), "SersicNet vs fit") \
                + "</div>"  # fmt: skip
        sections.append(("sersicnet", "SersicNet", body or '<p class="note">No sources.</p>'))
    if result.emission is not None:
        link = "emission_inspect.html" if "emission_inspect" in result.outputs else None
        sections.append(("emission", "Emission-line candidates",
                         _emission_section(result, link)))  # fmt: skip
    cls_html = _classifier_section(result)
    if cls_html:
        sections.append(("classifier", "Classifier predictions", cls_html))
    names = list(result.bands)
    return write_report(
        path,
        image=seg.image,
        segmap=seg.segmap,
        catalog=cat,
        rms=seg.rms,
        band_images={n: result.images[n] for n in names} if len(names) > 1 else None,
        title=title,
        summary=summary,
        truth=truth,
        wcs=result.wcs,
        sections=sections,
    )
