"""The self-contained HTML report (``report.html``) of a morphoscope run.

One file, no external resources: every image is an embedded base64 PNG, the styles
and the few lines of table-sorting JavaScript are inline, so the report opens from
disk in any browser, can be e-mailed and archived next to the catalog.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy.table import Table
from scipy import ndimage

from ..exceptions import InputError, ParameterError
from ..flags import Flag
from ..io.write import atomic_write
from . import figures as F

__all__ = ["write_report"]

#: Catalog columns shown first in the table (the rest follow in catalog order).
_FIRST_COLUMNS = (
    "label",
    "xc_centroid",
    "yc_centroid",
    "ra",
    "dec",
    "flux",
    "area",
    "r50",
    "rhalf_circ",
    "ellipticity_centroid",
    "orientation_centroid",
    "gini",
    "m20",
    "concentration",
    "asymmetry",
    "sn_per_pixel",
    "flag",
)
_CLASS_COLUMNS = ("class", "class_name", "predicted_class", "morph_class")

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#222;
background:#fafafa}
header,section,footer{max-width:1500px;margin:0 auto;padding:0.6em 1.2em}
header{border-bottom:2px solid #1f77b4}
h1{font-size:1.6em;margin:0.3em 0}h2{font-size:1.25em;border-bottom:1px solid #ccc;
padding-bottom:0.2em}
table{border-collapse:collapse;font-size:0.85em}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:right;white-space:nowrap}
th{background:#eef3f8;position:sticky;top:0}
table.summary td:first-child,table.summary th{text-align:left;font-weight:600}
table.summary td{text-align:left;white-space:normal}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th.asc::after{content:" \\25B2"}table.sortable th.desc::after{content:" \\25BC"}
.pager{margin:4px 0}.pager button{font-size:0.85em}
.tablewrap{max-height:640px;overflow:auto;border:1px solid #ccc;background:#fff}
.gallery{display:flex;flex-wrap:wrap;gap:10px}
.gallery-item{margin:0;width:156px;background:#fff;border:1px solid #ddd;padding:4px;
font-size:0.78em}
.gallery-item img{width:148px;height:148px;image-rendering:pixelated;display:block}
.gallery-item .flags{color:#b00;font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:12px}
.plots img,.overview img{max-width:100%;height:auto;border:1px solid #ddd;background:#fff}
.note{color:#666;font-style:italic}
footer{color:#666;font-size:0.8em;border-top:1px solid #ccc;margin-top:2em}
"""

_JS = """
(function(){
 function key(td){var v=td.getAttribute('data-v');
  if(v!==null){if(v==='')return null;return parseFloat(v);}return td.textContent;}
 document.querySelectorAll('table.sortable').forEach(function(t){
  var ths=t.querySelectorAll('thead th');
  ths.forEach(function(th,i){th.addEventListener('click',function(){
   var asc=!th.classList.contains('asc');
   ths.forEach(function(h){h.classList.remove('asc','desc');});
   th.classList.add(asc?'asc':'desc');
   var tb=t.tBodies[0],rows=Array.prototype.slice.call(tb.rows);
   rows.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);
    if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;
    var r=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));
    return asc?r:-r;});
   rows.forEach(function(r){tb.appendChild(r);});page(t,0);});});
  page(t,0);});
 // Long tables are shown a page of rows at a time (rows stay in the document).
 function page(t,p){
  var size=parseInt(t.getAttribute('data-page-size')||'0',10),rows=t.tBodies[0].rows;
  var nav=document.getElementById(t.id+'-pages');
  if(!size||rows.length<=size){if(nav)nav.style.display='none';return;}
  var pages=Math.ceil(rows.length/size);p=Math.max(0,Math.min(pages-1,p));t._page=p;
  for(var i=0;i<rows.length;i++){var on=i>=p*size&&i<(p+1)*size;
   rows[i].style.display=on?'':'none';}
  if(nav){nav.querySelector('.pageno').textContent='rows '+(p*size+1)+'-'+
   Math.min(rows.length,(p+1)*size)+' of '+rows.length+' (page '+(p+1)+' / '+pages+')';}
 }
 document.querySelectorAll('.pager').forEach(function(nav){
  var t=document.getElementById(nav.getAttribute('data-table'));
  nav.querySelector('.prev').addEventListener('click',function(){page(t,(t._page||0)-1);});
  nav.querySelector('.next').addEventListener('click',function(){page(t,(t._page||0)+1);});
 });
})();
"""


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _img_tag(png: bytes, alt: str, css_class: str | None = None) -> str:
    data = base64.b64encode(png).decode("ascii")
    cls = f' class="{_esc(css_class)}"' if css_class else ""
    size = ""
    if png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) >= 24:
        w, h = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        size = f' width="{w}" height="{h}"'
    return (
        f'<img{cls} alt="{_esc(alt)}"{size} loading="lazy" decoding="async" '
        f'src="data:image/png;base64,{data}">'
    )


def _fmt_value(value) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        return "nan" if not np.isfinite(value) else f"{float(value):.6g}"
    return str(value)


def _fmt_cell(value) -> tuple[str, str | None]:
    """Text of a table cell and its numeric sort key (None: sort as text)."""
    if np.ma.is_masked(value):
        return "", ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value)), str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value)), str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        if not math.isfinite(v):
            return "nan", ""
        text = f"{v:.5g}" if abs(v) < 1e5 else f"{v:.4e}"
        return text, f"{v:.10g}"
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value), None


def _validate(image, segmap) -> tuple[np.ndarray, np.ndarray]:
    img = np.asarray(image, dtype=float)
    if img.ndim != 2:
        raise InputError("image", f"must be a 2-D array, got {img.ndim} dimensions")
    seg = np.zeros(img.shape, dtype=np.int64) if segmap is None else np.asarray(segmap)
    if seg.shape != img.shape:
        raise InputError("segmap", f"shape {seg.shape} differs from the image shape {img.shape}")
    if seg.dtype.kind == "f":
        seg = np.nan_to_num(seg, nan=0.0).astype(np.int64)
    elif seg.dtype.kind == "b":
        seg = seg.astype(np.int64)
    elif seg.dtype.kind not in "iu":
        raise InputError("segmap", f"must be an integer label map, got dtype {seg.dtype}")
    return img, seg


def _rms_value(rms) -> float | None:
    if rms is None:
        return None
    try:
        arr = np.asarray(rms, dtype=float)
    except (TypeError, ValueError):
        return None
    vals = F._finite_sample(arr)
    vals = vals[vals > 0]
    return float(np.median(vals)) if vals.size else None


def _wcs_rows(wcs, shape) -> dict[str, str]:
    rows: dict[str, str] = {}
    if wcs is None:
        return rows
    try:
        cel = wcs.celestial if getattr(wcs, "has_celestial", False) else None
        if cel is None:
            return rows
        ra, dec = cel.pixel_to_world_values((shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0)
        rows["field centre (RA, Dec)"] = f"{float(ra):.6f}, {float(dec):+.6f} deg"
        from astropy.wcs.utils import proj_plane_pixel_scales

        scale = np.abs(proj_plane_pixel_scales(cel)) * 3600.0
        rows["pixel scale"] = f"{float(np.mean(scale)):.4g} arcsec"
    except Exception:
        return {}
    return rows


def _summary_table(rows: Mapping[str, object]) -> str:
    body = "".join(
        f"<tr><td>{_esc(k)}</td><td>{_esc(_fmt_value(v))}</td></tr>" for k, v in rows.items()
    )
    return f'<table class="summary"><tbody>{body}</tbody></table>'


def _flag_table(catalog) -> str:
    flag = F.catalog_column(catalog, "flag")
    if flag is None or flag.size == 0:
        return ""
    bits = np.nan_to_num(flag, nan=0.0).astype(np.int64)
    rows = []
    for f in Flag:
        count = int(np.count_nonzero(bits & int(f)))
        if count:
            rows.append(f"<tr><td>{_esc(f.name)}</td><td>{count}</td></tr>")
    if not rows:
        return '<p class="note">No source is flagged.</p>'
    return (
        '<table class="summary flags"><thead><tr><th>flag</th><th>sources</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _segments(seg: np.ndarray) -> tuple[list | None, set[int]]:
    """Bounding boxes by label (None when labels are too sparse) and the labels present."""
    top = int(seg.max()) if seg.size else 0
    if top <= 0:
        return [], set()
    if top <= 4 * seg.size + 1024:
        slices = ndimage.find_objects(seg)
        return slices, {i + 1 for i, sl in enumerate(slices) if sl is not None}
    return None, set(np.unique(seg[seg > 0]).tolist())


def _gallery(img, seg, catalog, n_gallery: int, slices, present: set[int]) -> str:
    rows = F.gallery_order(catalog, n_gallery)
    if not len(rows):
        return '<p class="note">No sources to show.</p>'
    labels = F.catalog_column(catalog, "label")
    xc = F.catalog_column(catalog, "xc_centroid")
    yc = F.catalog_column(catalog, "yc_centroid")
    flux = F.catalog_column(catalog, "flux")
    r50 = F.catalog_column(catalog, "r50")
    if r50 is None:
        r50 = F.catalog_column(catalog, "rhalf_circ")
    gini = F.catalog_column(catalog, "gini")
    flag = F.catalog_column(catalog, "flag")
    cls_col = next((c for c in _CLASS_COLUMNS if c in catalog.colnames), None)
    items = []
    for i in rows:
        label = F._int_or(labels, i, -1)
        centre = (F._val(xc, i), F._val(yc, i))
        rgb = F.cutout_rgb(img, seg, label, centre=centre, slices=slices)
        flux_i = F._val(flux, i)
        lines = [
            f"<b>#{_esc(label if label >= 0 else i)}</b> flux {_esc(F._fmt(flux_i, 4))}",
            f"r50 {_esc(F._fmt(F._val(r50, i)))} px &middot; Gini "
            f"{_esc(F._fmt(F._val(gini, i), 3))}",
        ]
        if cls_col is not None:
            lines.append(f"class {_esc(catalog[cls_col][i])}")
        if labels is not None and label not in present:
            lines.append('<span class="note">not in segmentation map</span>')
        bits = F._int_or(flag, i, 0)
        if bits:
            names = Flag.describe(bits) or [str(bits)]
            lines.append(f'<span class="flags">{_esc(", ".join(names))}</span>')
        flux_attr = repr(flux_i) if math.isfinite(flux_i) else ""
        items.append(
            f'<figure class="gallery-item" data-label="{_esc(label)}" '
            f'data-flux="{_esc(flux_attr)}">'
            f"{_img_tag(F.png_bytes(rgb, palette=True), f'source {label}')}"
            f"<figcaption>{'<br>'.join(lines)}</figcaption></figure>"
        )
    return f'<div class="gallery">{"".join(items)}</div>'


def _catalog_table(catalog, max_rows: int, page_size: int = 100) -> str:
    n = len(catalog)
    if n == 0:
        return '<p class="note">No sources.</p>'
    names = [c for c in _FIRST_COLUMNS if c in catalog.colnames]
    names += [c for c in catalog.colnames if c not in names]
    names = [c for c in names if getattr(catalog[c], "ndim", 1) == 1]
    head = []
    for c in names:
        unit = getattr(catalog[c], "unit", None)
        unit_txt = f" [{unit}]" if unit not in (None, "") and str(unit) != "" else ""
        head.append(f"<th>{_esc(c)}{_esc(unit_txt)}</th>")
    shown = min(n, int(max_rows))
    cols = [catalog[c][:shown] for c in names]
    body = []
    for i in range(shown):
        cells = []
        for col in cols:
            v = col[i]
            v = getattr(v, "value", v) if not isinstance(v, np.generic | str) else v
            text, key = _fmt_cell(v)
            attr = "" if key is None else f' data-v="{_esc(key)}"'
            cells.append(f"<td{attr}>{_esc(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    note = (
        f'<p class="note">Showing the first {shown} of {n} rows; the full catalog is in the '
        "catalog files.</p>"
        if shown < n
        else f'<p class="note">{n} rows. Click a column header to sort; long tables are '
        f"shown {int(page_size)} rows at a time.</p>"
    )
    pager = (
        '<div class="pager" id="catalog-table-pages" data-table="catalog-table">'
        '<button class="prev">&larr; previous</button> <span class="pageno"></span> '
        '<button class="next">next &rarr;</button></div>'
    )
    return (
        f'{note}{pager}<div class="tablewrap"><table class="sortable" id="catalog-table" '
        f'data-page-size="{int(page_size)}">'
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def write_report(
    path: str | os.PathLike,
    *,
    image: np.ndarray,
    segmap: np.ndarray,
    catalog: Table | None,
    rms: np.ndarray | float | None = None,
    band_images: Mapping[str, np.ndarray] | None = None,
    title: str = "morphoscope report",
    summary: Mapping[str, object] | None = None,
    truth: Table | None = None,
    n_gallery: int = 24,
    wcs=None,
    max_table_rows: int = 5000,
    max_pixels: int = 1400,
    truth_flux_column: str | None = None,
    sections: list[tuple[str, str, str]] | None = None,
) -> Path:
    """Write the self-contained HTML report of a catalog.

    The page shows, top to bottom: the title and a summary table; the whole field
    (asinh stretch, segment outlines, simulated sources marked when ``truth`` is
    given) and a colour composite of the reddest three bands; a gallery of the
    ``n_gallery`` brightest sources with their segment outlines, label, flux, r50, Gini
    and flag names; plots (size vs flux, Gini histogram, Gini-M20 plane, recovered vs
    true flux); a flag summary; a sortable table of the first ``max_table_rows`` rows,
    shown 100 rows at a time;
    a footer with the morphoscope version and creation time. Every image is an
    embedded PNG and there are no external resources: the file opens from disk.

    Parameters
    ----------
    path : str or path-like
        Output file (``report.html``); written atomically (temporary file + rename).
    image : ndarray
        2-D detection image, background-subtracted. NaN pixels are allowed.
    segmap : ndarray
        Integer segmentation map of the same shape (0 = background).
    catalog : astropy.table.Table or None
        Measured catalog. Any subset of the usual columns (``label``, ``xc_centroid``,
        ``yc_centroid``, ``flux``, ``r50``, ``gini``, ``m20``, ``flag``, ...) works;
        plots whose columns are missing are left out. An empty catalog gives a report
        that says so.
    rms : ndarray or float, optional
        Noise map or value; its median is shown in the summary.
    band_images : dict of str to ndarray, optional
        Images of each band, bluest first, for the colour composite (last three bands
        as B, G, R; two bands as a two-colour image; one band as grey). Bands whose
        shape differs from ``image`` are left out.
    title : str
        Page title.
    summary : dict, optional
        Extra ``name -> value`` rows at the top (input files, run time, scores, ...).
    truth : astropy.table.Table, optional
        Simulated truth (``x``, ``y``, ``flux_<band>``, ``r_e``): truth positions are
        marked on the field (recovered / missed) and a flux recovery plot is added.
    n_gallery : int
        Number of cutouts in the gallery (the brightest sources, by ``flux``).
    wcs : astropy.wcs.WCS, optional
        World coordinates of ``image``; the field centre and pixel scale are shown.
    max_table_rows : int
        Rows of the catalog table (the full catalog is in the catalog files); the
        page shows them 100 at a time, sorting applies to all of them.
    max_pixels : int
        Largest side of the embedded field images; larger images are block-averaged.
    truth_flux_column : str, optional
        Truth column to compare with the catalog ``flux`` (chosen automatically).
    sections : list of (id, heading, html), optional
        Further sections (trusted HTML, e.g. from :mod:`morphoscope.report.tiers`),
        placed after the plots.

    Returns
    -------
    path : pathlib.Path
        The written file.

    Raises
    ------
    InputError
        ``image`` is not 2-D, or ``segmap`` does not have the image's shape.
    ParameterError
        ``n_gallery`` or ``max_table_rows`` is negative.

    Notes
    -----
    Cost is O(N) in image pixels (the field is downsampled to ``max_pixels``) plus
    O(n_gallery) cutouts and O(max_table_rows) table rows: about a second for a
    1024 x 1024 image with a few hundred sources.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from astropy.table import Table
    >>> img = np.zeros((64, 64)); img[20:26, 30:36] = 5.0
    >>> seg = (img > 0).astype(int)
    >>> cat = Table({"label": [1], "flux": [180.0], "r50": [2.0], "gini": [0.1]})
    >>> out = write_report(pathlib.Path(tempfile.mkdtemp()) / "report.html",
    ...                    image=img, segmap=seg, catalog=cat, summary={"sources": 1})
    >>> out.read_text().startswith("<!DOCTYPE html>")
    True
    """
    t_start = time.perf_counter()
    img, seg = _validate(image, segmap)
    for name, value in (("n_gallery", n_gallery), ("max_table_rows", max_table_rows)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ParameterError(name, value, "a non-negative integer")
    if catalog is None:
        catalog = Table()
    n_src = len(catalog) if catalog.colnames else 0

    # ---- summary
    rows: dict[str, object] = {}
    for k, v in (summary or {}).items():
        rows[str(k)] = v
    lower = {k.lower() for k in rows}
    slices, present = _segments(seg)
    n_seg = len(present)
    auto: dict[str, object] = {
        "image size": f"{img.shape[1]} x {img.shape[0]} pixels",
        "sources": n_src,
        "segments in map": n_seg,
    }
    flag = F.catalog_column(catalog, "flag")
    if flag is not None:
        auto["flagged sources"] = int(np.count_nonzero(np.nan_to_num(flag, nan=0.0)))
    rms_med = _rms_value(rms)
    if rms_med is not None:
        auto["median rms"] = f"{rms_med:.4g}"
    if not np.isfinite(img).any():
        auto["warning"] = "the image has no finite pixels"
    auto.update(_wcs_rows(wcs, img.shape))
    cls_col = next((c for c in _CLASS_COLUMNS if c in catalog.colnames), None)
    if cls_col is not None and n_src and getattr(catalog[cls_col], "ndim", 1) == 1:
        names, counts = np.unique(np.asarray(catalog[cls_col]).astype(str), return_counts=True)
        pairs = zip(names, counts, strict=True)
        auto[f"{cls_col} counts"] = ", ".join(f"{a}: {b}" for a, b in pairs)

    cat_index = detected = None
    if truth is not None and len(truth):
        cat_index, detected = F.match_truth(catalog, truth, segmap=seg)
        if detected.size:
            auto["truth sources recovered"] = f"{int(detected.sum())} / {detected.size}"
    for k, v in auto.items():
        if k.lower() not in lower:
            rows[k] = v

    # ---- field images
    truth_xy = None
    if detected is not None and detected.size:
        truth_xy = (F.catalog_column(truth, "x"), F.catalog_column(truth, "y"))
    parts_overview = []
    fig = F.overview_figure(
        img,
        seg,
        truth_xy=truth_xy,
        truth_detected=detected,
        max_pixels=max_pixels,
        title="detection image and segments",
    )
    parts_overview.append(
        _img_tag(F.png_bytes(fig, palette=True), "detection image with segment outlines")
    )
    notes = []
    if band_images:
        usable = {str(k): v for k, v in band_images.items() if np.shape(v) == img.shape}
        skipped = [str(k) for k in band_images if str(k) not in usable]
        if skipped:
            notes.append(f"bands not shown (shape differs from the image): {', '.join(skipped)}")
        if usable:
            fig = F.colour_composite_figure(usable, max_pixels=max_pixels)
            parts_overview.append(_img_tag(F.png_bytes(fig, palette=True), "colour composite"))
    factor = F._factor(img.shape, max_pixels)
    if factor > 1:
        notes.append(f"field images block-averaged by {factor} x {factor} pixels")
    overview_html = "".join(f"<div>{p}</div>" for p in parts_overview) + "".join(
        f'<p class="note">{_esc(n)}</p>' for n in notes
    )

    # ---- gallery, plots, table
    gallery_html = (
        _gallery(img, seg, catalog, n_gallery, slices, present)
        if n_src
        else '<p class="note">No sources were detected.</p>'
    )
    plots = []
    if n_src:
        if F.catalog_column(catalog, "flux") is not None and any(
            F.catalog_column(catalog, c) is not None for c in ("r50", "rhalf_circ")
        ):
            plots.append((F.size_flux_figure(catalog), "size versus flux"))
        if F.catalog_column(catalog, "gini") is not None:
            plots.append((F.gini_histogram(catalog), "Gini histogram"))
            if F.catalog_column(catalog, "m20") is not None:
                plots.append((F.gini_m20_figure(catalog), "Gini-M20 plane"))
        if cat_index is not None and F.truth_flux_column(catalog, truth, truth_flux_column):
            plots.append(
                (
                    F.flux_recovery_figure(
                        catalog, truth, truth_column=truth_flux_column, cat_index=cat_index
                    ),
                    "recovered versus true flux",
                )
            )
    plots_html = (
        '<div class="plots">'
        + "".join(_img_tag(F.png_bytes(f), alt) for f, alt in plots)
        + "</div>"
        if plots
        else '<p class="note">No plots: the catalog has no sources or lacks the columns.</p>'
    )
    flags_html = _flag_table(catalog) if n_src else ""
    table_html = (
        _catalog_table(catalog, max_table_rows) if n_src else ('<p class="note">No sources.</p>')
    )

    extra_html = "".join(
        f'<section id="{_esc(sid)}"><h2>{_esc(head)}</h2>{body}</section>\n'
        for sid, head, body in (sections or [])
    )

    # ---- page
    from .. import __version__

    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    elapsed = time.perf_counter() - t_start
    n_shown = min(n_gallery, n_src)
    doc = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="morphoscope {_esc(__version__)}">
<title>{_esc(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header><h1>{_esc(title)}</h1></header>
<section id="summary"><h2>Summary</h2>{_summary_table(rows)}</section>
<section id="overview" class="overview"><h2>Field</h2>{overview_html}</section>
<section id="gallery"><h2>Brightest sources ({n_shown})</h2>
<p class="note">Cyan: the source's segment; amber: neighbouring segments.
Stretch: asinh, per cutout.</p>{gallery_html}</section>
<section id="plots"><h2>Plots</h2>{plots_html}</section>
{extra_html}
<section id="flags"><h2>Flags</h2>{flags_html or '<p class="note">No flag column.</p>'}</section>
<section id="catalog"><h2>Catalog</h2>{table_html}</section>
<footer>Written by morphoscope {_esc(__version__)} on {_esc(now)}
in {elapsed:.1f} s.</footer>
<script>{_JS}</script>
</body>
</html>
"""
    out = Path(path)
    with atomic_write(out) as tmp:
        tmp.write_text(doc, encoding="utf-8")
        # Temporary files are private (0600); a report is meant to be shared.
        os.chmod(tmp, 0o644)
    return out
