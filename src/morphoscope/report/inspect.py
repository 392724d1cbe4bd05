"""The inspection page: look at every source of a catalog and decide by keyboard.

:func:`write_inspection_page` writes an HTML page with one card per catalog row: the
multi-band cutout with the segment outlines, the key numbers, and Accept / Reject /
Unsure buttons. The page works opened from disk, offline, in any current browser:

- keys ``a`` accept, ``r`` reject, ``u`` unsure (each moves to the next source),
  ``j`` / right / down / space next, ``k`` / left / up previous, ``c`` or Backspace
  clear, PageDown / PageUp change page, ``/`` jumps to the filter box;
- decisions are kept in the browser's ``localStorage`` (keyed by the source ids, so
  a rewritten page of the same catalog keeps them) and **Export CSV** downloads
  ``<id column>,decision`` for the decided sources, which
  ``morphoscope classify train --labels`` reads back as labels;
- a filter (``S_excess > 50, class = disk``) and a sort by any catalog column;
- cards are shown a page at a time and the thumbnails load lazily, so a catalog of
  thousands of sources opens at once.

Thumbnails are PNG files in a folder beside the page (``inspect_thumbs/``) or, for small
catalogs and when no file is written, embedded as data URIs. Nothing is fetched from the
network. :func:`inspection_html` builds the page from ready-made thumbnails (the
emission-line search uses it with its three-panel figures).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import os
import shutil
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from astropy.table import Table
from PIL import Image
from scipy import ndimage

from ..exceptions import InputError, ParameterError
from ..flags import Flag
from ..io.write import atomic_write
from . import figures as F

__all__ = [
    "DECISIONS",
    "inspection_html",
    "source_ids",
    "source_positions",
    "source_thumbnails",
    "write_inspection_page",
]

#: The decisions a page records, in the order of its buttons.
DECISIONS: tuple[str, ...] = ("accept", "reject", "unsure")

_ID_COLUMNS = ("id", "label", "source_id", "objid", "object_id", "ID", "NUMBER", "number")
_X_COLUMNS = ("xc_centroid", "x", "xcentroid", "x_centroid", "xc", "X_IMAGE", "x_image")
_Y_COLUMNS = ("yc_centroid", "y", "ycentroid", "y_centroid", "yc", "Y_IMAGE", "y_image")
#: Columns shown on the cards when present (in this order), before ``pred_``/``prob_``.
_KEY_COLUMNS = (
    "class", "class_name", "predicted_class", "morph_class", "candidate", "reason",
    "flux", "mag", "snr", "sn_per_pixel", "area", "r50", "rhalf_circ", "sersic_n", "n",
    "gini", "m20", "concentration", "asymmetry", "S_excess", "R_medium", "R_reference",
    "q_medium", "q_reference", "d_H", "flag",
)  # fmt: skip
_MAX_KEY_COLUMNS = 10

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;
background:#111;color:#eee}
header{position:sticky;top:0;background:#222;padding:6px 12px;border-bottom:1px solid #444;
z-index:2;font-size:14px}
header .row{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:3px 0}
header input,header select,header button{font-size:13px}
#filter{width:22em}
.err{color:#ff7070}
.help{font-size:12px;color:#aaa}
#cards{display:flex;flex-wrap:wrap;gap:10px;padding:10px}
.card{display:none;padding:6px;border:2px solid #333;border-radius:6px;background:#1a1a1a;
max-width:100%}
.card.shown{display:block}
.card.current{border-color:#ffd400}
.card.accept{background:#13301a}.card.reject{background:#3a1515}.card.unsure{background:#35300f}
.card img{display:block;max-width:100%;height:auto;image-rendering:pixelated;background:#000}
.card img.cutout{height:var(--thumb-height);width:auto;max-width:none}
.card{min-width:240px;scroll-margin-top:110px;scroll-margin-bottom:10px}
.card .head{font-size:14px;margin-bottom:3px}
.card .bands{font-size:11px;color:#aaa;margin:2px 0}
.state{font-weight:bold;margin-left:8px;color:#ffd400}
table.kv{font-family:monospace;font-size:11px;border-collapse:collapse;margin:3px 0}
table.kv th{text-align:left;font-weight:normal;color:#aaa;padding:0 6px 0 0}
table.kv td{text-align:right;padding:0}
.card button{font-size:13px;padding:2px 8px;cursor:pointer}
.nothing{margin:14px}
"""

_JS = r"""
(function(){
  var D = JSON.parse(document.getElementById('ms-data').textContent);
  var KEY = 'morphoscope-inspect-' + D.key;
  var box = document.getElementById('cards');
  var cards = Array.prototype.slice.call(box.querySelectorAll('.card'));
  var ids = D.ids, n = ids.length, PS = Math.max(1, D.page_size);
  var dec = {};
  try { dec = JSON.parse(localStorage.getItem(KEY) || '{}') || {}; } catch (e) { dec = {}; }
  var order = [], cur = 0, page = 0, shown = [], sortCol = D.sort || '', sortDir = 1;
  var $ = function(id){ return document.getElementById(id); };
  function save(){ try { localStorage.setItem(KEY, JSON.stringify(dec)); } catch (e) {} }
  function saveView(){
    var v = {sort: sortCol, dir: sortDir, filter: $('filter').value, show: $('show').value,
             id: order.length ? ids[order[cur]] : null};
    try { localStorage.setItem(KEY + '-view', JSON.stringify(v)); } catch (e) {}
  }
  function col(name){ return D.columns.indexOf(name); }
  function value(row, name){
    if (name === 'decision') return dec[ids[row]] || 'undecided';
    var j = col(name); return j < 0 ? null : D.values[j][row];
  }
  function parse(text){
    var out = [], parts = text.split(/,|&&|\band\b/);
    for (var i = 0; i < parts.length; i++){
      var p = parts[i].trim(); if (!p) continue;
      var m = /^([^<>=!~\s]+)\s*(>=|<=|!=|==|=|>|<|~)\s*(.*)$/.exec(p);
      if (!m) throw 'cannot read "' + p + '" (use: column > value)';
      if (m[1] !== 'decision' && col(m[1]) < 0) throw 'no column "' + m[1] + '"';
      out.push({c: m[1], op: m[2], v: m[3].trim().replace(/^["']|["']$/g, '')});
    }
    return out;
  }
  function ok(q, row){
    var v = value(row, q.c), x = parseFloat(q.v);
    var numeric = typeof v === 'number' && q.v !== '' && !isNaN(x);
    if (v === null || v === undefined) return q.op === '!=';
    if (q.op === '~') return String(v).toLowerCase().indexOf(q.v.toLowerCase()) >= 0;
    if (!numeric){
      var a = String(v).toLowerCase(), b = q.v.toLowerCase();
      if (q.op === '=' || q.op === '==') return a === b;
      if (q.op === '!=') return a !== b;
      return q.op === '>' ? a > b : q.op === '<' ? a < b : q.op === '>=' ? a >= b : a <= b;
    }
    switch (q.op){
      case '>': return v > x; case '<': return v < x; case '>=': return v >= x;
      case '<=': return v <= x; case '!=': return v !== x; default: return v === x;
    }
  }
  function cmp(a, b){
    var x = value(a, sortCol), y = value(b, sortCol);
    var nx = x === null || x === '' , ny = y === null || y === '';
    if (nx || ny) return nx && ny ? a - b : nx ? 1 : -1;
    var r = (typeof x === 'number' && typeof y === 'number') ? x - y
      : String(x).localeCompare(String(y), undefined, {numeric: true});
    return r ? sortDir * r : a - b;
  }
  function apply(keepRow){
    var qs;
    try { qs = parse($('filter').value); $('ferr').textContent = ''; }
    catch (e) { $('ferr').textContent = e; return; }
    var want = $('show').value;
    order = [];
    for (var r = 0; r < n; r++){
      var d = dec[ids[r]] || '';
      if (want === 'undecided' ? d !== '' : (want !== 'all' && d !== want)) continue;
      var good = true;
      for (var i = 0; i < qs.length && good; i++) good = ok(qs[i], r);
      if (good) order.push(r);
    }
    if (sortCol) order.sort(cmp);
    var at = keepRow === undefined ? -1 : order.indexOf(keepRow);
    cur = at >= 0 ? at : 0;
    page = Math.floor(cur / PS);
    render();
  }
  function paint(row){
    var c = cards[row], d = dec[ids[row]] || '';
    for (var i = 0; i < D.decisions.length; i++)
      c.classList.toggle(D.decisions[i], d === D.decisions[i]);
    c.querySelector('.state').textContent = d ? d.toUpperCase() : '';
  }
  function counts(){
    var k = {}, t = 0;
    for (var r = 0; r < n; r++){ var d = dec[ids[r]]; if (d){ k[d] = (k[d] || 0) + 1; t++; } }
    $('counts').textContent = D.decisions.map(function(d){ return (k[d] || 0) + ' ' + d; })
      .join(', ') + ', ' + (n - t) + ' undecided';
  }
  function render(){
    for (var i = 0; i < shown.length; i++) shown[i].classList.remove('shown', 'current');
    var pages = Math.max(1, Math.ceil(order.length / PS));
    page = Math.max(0, Math.min(pages - 1, page));
    var rows = order.slice(page * PS, (page + 1) * PS);
    shown = rows.map(function(r){ return cards[r]; });
    for (i = 0; i < shown.length; i++){
      paint(rows[i]); shown[i].classList.add('shown'); box.appendChild(shown[i]);
    }
    $('page').textContent = 'page ' + (page + 1) + ' / ' + pages + ' (' + order.length +
      ' of ' + n + ' sources)';
    $('none').style.display = order.length ? 'none' : 'block';
    mark_current(false); counts(); saveView();
  }
  function mark_current(scroll){
    for (var i = 0; i < shown.length; i++) shown[i].classList.remove('current');
    if (!order.length) return;
    var c = cards[order[cur]]; c.classList.add('current');
    if (scroll) c.scrollIntoView({block: 'nearest'});
  }
  function go(i){
    if (!order.length) return;
    cur = Math.max(0, Math.min(order.length - 1, i));
    var p = Math.floor(cur / PS);
    if (p !== page){ page = p; render(); }
    mark_current(true); saveView();
  }
  function set(row, d){
    if (d) dec[ids[row]] = d; else delete dec[ids[row]];
    save(); paint(row); counts();
  }
  cards.forEach(function(c, row){
    c.addEventListener('click', function(ev){
      var i = order.indexOf(row); if (i >= 0){ cur = i; mark_current(false); }
      var d = ev.target.getAttribute && ev.target.getAttribute('data-d');
      if (d !== null && d !== undefined) set(row, d);
    });
  });
  var KEYS = {a: 'accept', y: 'accept', r: 'reject', n: 'reject', u: 'unsure'};
  document.addEventListener('keydown', function(ev){
    var t = ev.target.tagName;
    if (t === 'INPUT' || t === 'SELECT' || t === 'TEXTAREA'){
      if (ev.key === 'Enter' && ev.target.id === 'filter'){ apply(); ev.target.blur(); }
      else if (ev.key === 'Escape') ev.target.blur();
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var k = ev.key;
    if (KEYS[k] && order.length){ set(order[cur], KEYS[k]); go(cur + 1); }
    else if (k === 'c' || k === 'Backspace' || k === 'Delete'){
      if (order.length) set(order[cur], '');
    }
    else if (k === 'j' || k === 'ArrowRight' || k === 'ArrowDown' || k === ' ') go(cur + 1);
    else if (k === 'k' || k === 'ArrowLeft' || k === 'ArrowUp') go(cur - 1);
    else if (k === 'PageDown') go((page + 1) * PS);
    else if (k === 'PageUp') go((page - 1) * PS);
    else if (k === 'Home') go(0);
    else if (k === 'End') go(order.length - 1);
    else if (k === '/') $('filter').focus();
    else return;
    ev.preventDefault();
  });
  function csvField(s){
    s = String(s); return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  $('export').onclick = function(){
    var lines = [csvField(D.id_column) + ',decision'];
    for (var r = 0; r < n; r++){
      var d = dec[ids[r]]; if (d) lines.push(csvField(ids[r]) + ',' + d);
    }
    var url = URL.createObjectURL(new Blob([lines.join('\n') + '\n'], {type: 'text/csv'}));
    var a = document.createElement('a'); a.href = url; a.download = D.download;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(function(){ URL.revokeObjectURL(url); }, 2000);
  };
  $('reset').onclick = function(){
    if (confirm('Forget every decision on this page?')){ dec = {}; save(); render(); }
  };
  $('prev').onclick = function(){ go((page - 1) * PS); };
  $('next').onclick = function(){ go((page + 1) * PS); };
  $('apply').onclick = function(){ apply(); };
  $('show').onchange = function(){ apply(); };
  $('sort').onchange = function(){ sortCol = this.value; apply(order[cur]); };
  $('dir').onclick = function(){
    sortDir = -sortDir; this.textContent = sortDir > 0 ? 'ascending' : 'descending';
    apply(order[cur]);
  };
  window.morphoscopeInspect = {
    decisions: function(){ return JSON.parse(JSON.stringify(dec)); },
    order: function(){ return order.slice(); },
    current: function(){ return order.length ? ids[order[cur]] : null; }
  };
  for (var r0 = 0; r0 < n; r0++) if (dec[ids[r0]]) paint(r0);
  var view = null;
  try { view = JSON.parse(localStorage.getItem(KEY + '-view') || 'null'); } catch (e) {}
  if (view && typeof view === 'object'){
    if (typeof view.sort === 'string' && (view.sort === '' || col(view.sort) >= 0)){
      sortCol = view.sort; $('sort').value = view.sort;
    }
    if (view.dir === -1){ sortDir = -1; $('dir').textContent = 'descending'; }
    if (typeof view.filter === 'string') $('filter').value = view.filter;
    if (typeof view.show === 'string') $('show').value = view.show;
  }
  var start = view && view.id !== null ? ids.indexOf(String(view.id)) : -1;
  apply(start >= 0 ? start : undefined);
})();
"""


# --------------------------------------------------------------------------- helpers
def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _one_d(catalog: Table) -> list[str]:
    return [c for c in catalog.colnames if getattr(catalog[c], "ndim", 1) == 1]


def _json_values(col) -> tuple[list, bool]:
    """JSON-ready values of a column (masked, NaN, inf -> None) and whether it is numeric."""
    data = np.ma.getdata(col)
    data = getattr(data, "value", data)  # Quantity
    mask = np.ma.getmaskarray(col) if hasattr(col, "mask") else np.zeros(len(col), bool)
    arr = np.asarray(data)
    if arr.dtype.kind == "b":
        return [None if m else bool(v) for v, m in zip(arr.tolist(), mask, strict=True)], False
    if arr.dtype.kind in "iu":
        return [None if m else int(v) for v, m in zip(arr.tolist(), mask, strict=True)], True
    if arr.dtype.kind == "f":
        vals = arr.astype(float).tolist()
        out = [None if m or not math.isfinite(v) else v for v, m in zip(vals, mask, strict=True)]
        return out, True
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8", "replace")
    return [None if m else str(v) for v, m in zip(arr.tolist(), mask, strict=True)], False


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    return str(value)


def source_ids(catalog: Table, id_column: str | None = None) -> tuple[str, list[str]]:
    """The identifier column of a catalog and its values as strings.

    ``id_column`` when given, else the first of ``id``, ``label``, ``source_id``,
    ``objid``, ``object_id``, ``ID``, ``NUMBER`` present, else ``"row"`` (the row
    numbers 0, 1, ...).

    Raises
    ------
    InputError
        ``id_column`` is not a column, or the identifiers are not unique.

    Examples
    --------
    >>> from astropy.table import Table
    >>> source_ids(Table({"label": [3, 7], "flux": [1.0, 2.0]}))
    ('label', ['3', '7'])
    """
    n = len(catalog)
    if id_column is None:
        id_column = next((c for c in _ID_COLUMNS if c in catalog.colnames), None)
        if id_column is None:
            return "row", [str(i) for i in range(n)]
    elif id_column not in catalog.colnames:
        if id_column == "row":
            return "row", [str(i) for i in range(n)]
        raise InputError(
            "id_column", f"no column {id_column!r} (columns: {', '.join(catalog.colnames)})"
        )
    vals, _ = _json_values(catalog[id_column])
    ids = ["" if v is None else str(v) for v in vals]
    if len(set(ids)) != len(ids):
        raise InputError(id_column, "the source identifiers are not unique")
    return id_column, ids


def source_positions(catalog: Table, wcs=None) -> tuple[np.ndarray, np.ndarray] | None:
    """Pixel positions ``(x, y)`` (0-based) of the catalog rows, or None.

    From the first pixel-coordinate columns present (``xc_centroid``/``yc_centroid``,
    ``x``/``y``, ``xcentroid``/``ycentroid``, ...), else from ``ra``/``dec`` (degrees)
    through ``wcs``.
    """
    xname = next((c for c in _X_COLUMNS if c in catalog.colnames), None)
    yname = next((c for c in _Y_COLUMNS if c in catalog.colnames), None)
    if xname and yname:
        x, y = F.catalog_column(catalog, xname), F.catalog_column(catalog, yname)
        if x is not None and y is not None:
            return x, y
    if wcs is not None and "ra" in catalog.colnames and "dec" in catalog.colnames:
        ra, dec = F.catalog_column(catalog, "ra"), F.catalog_column(catalog, "dec")
        if ra is not None and dec is not None:
            cel = wcs.celestial if getattr(wcs, "has_celestial", False) else wcs
            x, y = cel.world_to_pixel_values(ra, dec)
            return np.asarray(x, float), np.asarray(y, float)
    return None


def _key_columns(catalog: Table, columns: Sequence[str] | None) -> list[str]:
    names = _one_d(catalog)
    if columns is not None:
        missing = [c for c in columns if c not in catalog.colnames]
        if missing:
            raise InputError("columns", "not in the catalog: " + ", ".join(missing))
        return list(columns)
    keys = [c for c in _KEY_COLUMNS if c in names]
    keys += [c for c in names if c.startswith(("pred_", "prob_")) and c not in keys]
    if not keys:
        skip = set(_ID_COLUMNS) | set(_X_COLUMNS) | set(_Y_COLUMNS)
        keys = [c for c in names if c not in skip]
    return keys[:_MAX_KEY_COLUMNS]


# --------------------------------------------------------------------------- thumbnails
def source_thumbnails(
    catalog: Table,
    images: Mapping[str, np.ndarray] | np.ndarray,
    segmap: np.ndarray | None = None,
    *,
    positions: tuple[np.ndarray, np.ndarray] | None = None,
    factor: float = 3.0,
    min_size: int = 32,
    max_size: int = 96,
) -> list[bytes]:
    """One PNG per catalog row: the source's cutout in every band, side by side.

    Each panel is :func:`~morphoscope.report.figures.cutout_rgb` of one band: the same
    square box in every band (``factor`` times the segment's size, at least
    ``min_size`` pixels, reduced to at most ``max_size``), stretched per band, with the
    source's segment outlined in cyan and its neighbours in amber. The source's segment
    is the catalog ``label`` when the catalog has one, else the segment under its
    position; without ``segmap`` there are no outlines.

    Parameters
    ----------
    catalog : Table
        With pixel positions (see :func:`source_positions`) or ``positions``.
    images : dict of str to ndarray, or ndarray
        2-D images of the same shape, bluest first (panels left to right).
    segmap : ndarray, optional
        Integer segmentation map of the images' shape.
    positions : (x, y) arrays, optional
        Pixel positions; default: from the catalog columns.
    factor, min_size, max_size : float, int, int
        Box size rules.

    Returns
    -------
    list of bytes
        PNG data, one per row.

    Raises
    ------
    InputError
        The images differ in shape, the segmentation map has another shape, or the
        catalog has no positions and no ``label`` in the map.

    Notes
    -----
    Cost O(n_rows * n_bands * box pixels) plus one pass over ``segmap``: about 2 ms per
    source and band.
    """
    bands = dict(images) if isinstance(images, Mapping) else {"image": images}
    if not bands:
        raise InputError("images", "no image given")
    arrays = {str(k): np.asarray(v, dtype=float) for k, v in bands.items()}
    shape = next(iter(arrays.values())).shape
    for name, arr in arrays.items():
        if arr.ndim != 2 or arr.shape != shape:
            raise InputError(name, f"shape {arr.shape} differs from {shape} (or is not 2-D)")
    if segmap is None:
        seg = np.zeros(shape, dtype=np.int32)
    else:
        seg = np.asarray(segmap)
        if seg.shape != shape:
            raise InputError("segmap", f"shape {seg.shape} differs from the image shape {shape}")
        if seg.dtype.kind == "f":
            seg = np.nan_to_num(seg, nan=0.0).astype(np.int64)
        elif seg.dtype.kind not in "iu":
            seg = seg.astype(np.int64)
    slices = ndimage.find_objects(seg) if seg.any() else []
    pos = positions if positions is not None else source_positions(catalog)
    labels = F.catalog_column(catalog, "label") if segmap is not None else None
    if pos is None and labels is None:
        raise InputError("catalog", "no pixel positions (x, y or xc_centroid, yc_centroid)")
    bands_list = list(arrays.values())
    out = []
    for i in range(len(catalog)):
        x = float(pos[0][i]) if pos is not None else float("nan")
        y = float(pos[1][i]) if pos is not None else float("nan")
        label = F._int_or(labels, i, 0)
        if labels is None and segmap is not None and np.isfinite(x) and np.isfinite(y):
            ix, iy = round(x), round(y)
            if 0 <= iy < shape[0] and 0 <= ix < shape[1]:
                label = int(seg[iy, ix])
        panels = F.cutout_rgb_bands(
            bands_list,
            seg,
            label,
            centre=(x, y),
            slices=slices,
            factor=factor,
            min_size=min_size,
            max_size=max_size,
        )
        gap = np.full((panels[0].shape[0], 2, 3), 0.07)
        row = [panels[0]]
        for p in panels[1:]:
            row += [gap, p]
        out.append(_png(np.concatenate(row, axis=1)))
    return out


def _png(rgb: np.ndarray) -> bytes:
    """Fast PNG of an RGB float array in [0, 1] (light compression: cutouts are small)."""
    arr = np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="png", compress_level=1)
    return buf.getvalue()


def _png_size(png: bytes) -> tuple[int, int] | None:
    if len(png) >= 24 and png[:8] == b"\x89PNG\r\n\x1a\n":
        return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return None


# --------------------------------------------------------------------------- page
def inspection_html(
    catalog: Table,
    thumbnails: Sequence[bytes | str | None] | None = None,
    *,
    id_column: str | None = None,
    columns: Sequence[str] | None = None,
    title: str = "Source inspection",
    band_names: Sequence[str] | None = None,
    page_size: int = 50,
    sort: str | None = None,
    note: str = "",
    storage_key: str | None = None,
    download_name: str = "decisions.csv",
    thumb_height: int | None = None,
) -> str:
    """The HTML text of an inspection page for ``catalog``.

    Parameters
    ----------
    catalog : Table
        One card per row; every one-dimensional column can be filtered and sorted on.
    thumbnails : sequence, optional
        One per row: PNG bytes (embedded as a data URI), a URL relative to the page
        (a file beside it), or None (no picture).
    id_column : str, optional
        Identifier column (see :func:`source_ids`); its name heads the exported CSV.
    columns : sequence of str, optional
        The key numbers shown on each card (default: the usual morphology, class and
        emission columns present, at most 10).
    title : str
        Page title.
    band_names : sequence of str, optional
        Captions of the thumbnail panels, left to right.
    page_size : int
        Cards per page.
    sort : str, optional
        Column the page is first sorted by (ascending).
    note : str
        A line of text under the title (HTML-escaped).
    storage_key : str, optional
        Key of the decisions in ``localStorage``; default: a hash of the identifiers, so
        pages of the same catalog share their decisions.
    download_name : str
        File name of the exported CSV.
    thumb_height : int, optional
        Displayed height of the thumbnails in CSS pixels (scaled without smoothing);
        default: their natural size.

    Returns
    -------
    str

    Raises
    ------
    InputError
        Duplicate identifiers, unknown ``columns``, or ``thumbnails`` of the wrong length.
    ParameterError
        ``page_size`` is not a positive integer, ``sort`` is not a column.

    Notes
    -----
    The page holds the catalog's one-dimensional columns as JSON (for filtering and
    sorting) and one card per row; only ``page_size`` cards are displayed and their
    images carry ``loading="lazy"``, so the browser decodes only what is on screen.
    Size: about 1 kB per source plus the columns, plus embedded thumbnails.

    Examples
    --------
    >>> from astropy.table import Table
    >>> page = inspection_html(Table({"id": [1, 2], "flux": [10.0, 20.0]}))
    >>> page.count('class="card"'), "localStorage" in page, "http" in page
    (2, True, False)
    """
    if isinstance(page_size, bool) or not isinstance(page_size, int | np.integer) or page_size < 1:
        raise ParameterError("page_size", page_size, "a positive integer")
    n = len(catalog) if catalog.colnames else 0
    id_name, ids = source_ids(catalog, id_column) if n else (id_column or "id", [])
    keys = _key_columns(catalog, columns) if n else []
    if thumbnails is not None and len(thumbnails) != n:
        raise InputError("thumbnails", f"{len(thumbnails)} thumbnails for {n} catalog rows")
    names = _one_d(catalog) if n else []
    if sort is not None and sort not in names:
        raise ParameterError("sort", sort, "a one-dimensional catalog column")
    values, numeric = [], []
    for c in names:
        v, num = _json_values(catalog[c])
        values.append(v)
        numeric.append(num)
    index = {c: j for j, c in enumerate(names)}
    caption = " | ".join(str(b) for b in band_names) if band_names else ""
    cards = []
    for i in range(n):
        sid = ids[i]
        img = ""
        thumb = None if thumbnails is None else thumbnails[i]
        cls = ' class="cutout"' if thumb_height else ""
        if isinstance(thumb, bytes | bytearray):
            size = _png_size(bytes(thumb))
            wh = f' width="{size[0]}" height="{size[1]}"' if size else ""
            data = base64.b64encode(bytes(thumb)).decode("ascii")
            img = (
                f'<img{cls} loading="lazy" decoding="async" alt="source {_esc(sid)}"{wh} '
                f'src="data:image/png;base64,{data}">'
            )
        elif isinstance(thumb, str):
            img = (
                f'<img{cls} loading="lazy" decoding="async" alt="source {_esc(sid)}" '
                f'src="{_esc(thumb)}">'
            )
        rows = []
        for c in keys:
            v = values[index[c]][i] if c in index else None
            text = _fmt(v)
            if c == "flag" and isinstance(v, int) and v > 0:
                text = f"{v} ({', '.join(Flag.describe(v)) or '?'})"
            rows.append(f"<tr><th>{_esc(c)}</th><td>{_esc(text)}</td></tr>")
        buttons = "".join(
            f'<button data-d="{d}">{d.capitalize()} ({d[0]})</button>' for d in DECISIONS
        )
        cards.append(
            f'<div class="card" data-id="{_esc(sid)}">'
            f'<div class="head"><b>{_esc(id_name)} {_esc(sid)}</b><span class="state"></span></div>'
            f"{img}"
            + (f'<div class="bands">{_esc(caption)}</div>' if img and caption else "")
            + (f'<table class="kv">{"".join(rows)}</table>' if rows else "")
            + f'<div>{buttons}<button data-d="">Clear (c)</button></div></div>'
        )
    key = (
        storage_key
        or hashlib.sha1(
            (id_name + "|" + "\x1f".join(ids)).encode(), usedforsecurity=False
        ).hexdigest()[:16]
    )
    data = {
        "key": key,
        "ids": ids,
        "id_column": id_name,
        "columns": names,
        "numeric": numeric,
        "values": values,
        "page_size": int(page_size),
        "sort": sort or "",
        "decisions": list(DECISIONS),
        "download": download_name,
    }
    blob = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    options = "".join(f'<option value="{_esc(c)}">{_esc(c)}</option>' for c in names)
    example = "flux > 100, class = disk"
    for c in keys:
        vals = [v for v in values[index[c]] if isinstance(v, int | float)] if c in index else []
        if vals and c != "flag" and numeric[index[c]]:
            med = float(np.median(vals))
            if med != 0 and math.isfinite(med):
                med = round(med, 1 - math.floor(math.log10(abs(med))))
            example = f"{c} > {med:g}, decision = undecided"
            break
    sort_opts = (
        '<option value="">catalog order</option>'
        + options.replace(
            f'<option value="{_esc(sort)}">', f'<option value="{_esc(sort)}" selected>'
        )
        if sort
        else '<option value="">catalog order</option>' + options
    )
    show = "".join(f'<option value="{v}">{v}</option>' for v in ("all", "undecided", *DECISIONS))
    from .. import __version__

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="morphoscope {_esc(__version__)}">
<title>{_esc(title)}</title>
<style>{_CSS}:root{{--thumb-height:{int(thumb_height or 0)}px}}</style>
<noscript><style>.card{{display:block}}</style></noscript>
</head>
<body>
<header>
<div class="row"><b>{_esc(title)}</b> &mdash; {n} sources. <span id="counts"></span>
<button id="export">Export CSV</button><button id="reset">Reset</button></div>
<div class="row"><label>filter <input id="filter" placeholder="e.g. {_esc(example)}"
list="colnames"></label><button id="apply">Apply</button><span id="ferr" class="err"></span>
<label>show <select id="show">{show}</select></label>
<label>sort by <select id="sort">{sort_opts}</select></label><button id="dir">ascending</button>
<button id="prev">&larr; page</button><span id="page"></span><button id="next">page &rarr;</button>
</div>
<div class="help">keys: a accept, r reject, u unsure (then next); j/&rarr;/space next,
k/&larr; previous; c clear; PageDown/PageUp page; / filter. Filter: <i>column op value</i>
(op: &gt; &lt; &gt;= &lt;= = != ~contains), several joined by commas; the column
<i>decision</i> is your decision. Decisions stay in this browser (localStorage);
Export CSV saves them.{(" " + _esc(note)) if note else ""}</div>
</header>
<datalist id="colnames">{options}<option value="decision"></option></datalist>
<main id="cards">{"".join(cards)}</main>
<p id="none" class="nothing" style="display:none">No source matches.</p>
<script type="application/json" id="ms-data">{blob}</script>
<script>{_JS}</script>
</body>
</html>
"""


def write_inspection_page(
    path: str | os.PathLike,
    catalog: Table,
    *,
    images: Mapping[str, np.ndarray] | np.ndarray | None = None,
    segmap: np.ndarray | None = None,
    id_column: str | None = None,
    columns: Sequence[str] | None = None,
    title: str = "Source inspection",
    page_size: int = 50,
    sort: str | None = None,
    embed: bool | None = None,
    wcs=None,
    max_size: int = 96,
    thumb_height: int = 128,
    thumbnails: Sequence[bytes] | None = None,
) -> Path:
    """Write an inspection page for any catalog, with its thumbnails beside it.

    Parameters
    ----------
    path : str or path-like
        The HTML file (e.g. ``out/inspect.html``), written atomically. Thumbnails go
        to the folder ``<stem>_thumbs`` beside it (replaced when it exists), unless
        embedded.
    catalog : Table
        The sources; positions from ``xc_centroid``/``yc_centroid``, ``x``/``y`` (or
        ``ra``/``dec`` with ``wcs``), segments from ``label``.
    images : dict of str to ndarray, or ndarray, optional
        Band images (bluest first) for the cutouts; without them (and without
        ``thumbnails``) the cards show numbers only.
    segmap : ndarray, optional
        Segmentation map: its outlines are drawn on the cutouts.
    id_column, columns, title, page_size, sort
        See :func:`inspection_html`.
    embed : bool, optional
        Embed the thumbnails in the page as data URIs instead of files beside it.
        Default: embed up to 100 sources.
    wcs : astropy.wcs.WCS, optional
        Converts ``ra``/``dec`` to pixels when the catalog has no pixel positions.
    max_size : int
        Largest side of a cutout panel, in pixels.
    thumb_height : int
        Displayed height of the cutouts, in CSS pixels (small cutouts are enlarged
        without smoothing, so every source is shown at the same size).
    thumbnails : sequence of bytes, optional
        Ready-made PNGs, one per row, instead of cutouts from ``images``.

    Returns
    -------
    pathlib.Path
        The page.

    Notes
    -----
    Cost: :func:`source_thumbnails` (about 2 ms per source and band) plus writing one
    small PNG per source; the page itself opens at once for thousands of sources
    (only one page of cards is displayed, images load lazily).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from astropy.table import Table
    >>> img = np.zeros((64, 64)); img[20:26, 30:36] = 5.0
    >>> seg = (img > 0).astype(int)
    >>> cat = Table({"label": [1], "xc_centroid": [32.5], "yc_centroid": [22.5],
    ...              "flux": [180.0]})
    >>> out = write_inspection_page(pathlib.Path(tempfile.mkdtemp()) / "inspect.html",
    ...                             cat, images={"F200W": img}, segmap=seg)
    >>> 'class="card"' in out.read_text()
    True
    """
    out = Path(path)
    n = len(catalog) if catalog.colnames else 0
    pngs: Sequence[bytes] | None = thumbnails
    band_names = None
    made = pngs is None and images is not None and n > 0
    if made:
        positions = source_positions(catalog, wcs)
        pngs = source_thumbnails(catalog, images, segmap, positions=positions, max_size=max_size)
        band_names = list(images) if isinstance(images, Mapping) else None
    if pngs is not None and len(pngs) != n:
        raise InputError("thumbnails", f"{len(pngs)} thumbnails for {n} catalog rows")
    if embed is None:
        embed = n <= 100
    thumbs: list | None = None
    folder = out.parent / f"{out.stem}_thumbs"
    if pngs is not None and not embed:
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        thumbs = []
        for i, png in enumerate(pngs):
            name = f"{i:06d}.png"
            (folder / name).write_bytes(png)
            thumbs.append(urllib.parse.quote(f"{folder.name}/{name}"))
    elif pngs is not None:
        thumbs = list(pngs)
    page = inspection_html(
        catalog,
        thumbs,
        id_column=id_column,
        columns=columns,
        title=title,
        band_names=band_names,
        page_size=page_size,
        sort=sort,
        thumb_height=thumb_height if made else None,
    )
    with atomic_write(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
        os.chmod(tmp, 0o644)
    return out
