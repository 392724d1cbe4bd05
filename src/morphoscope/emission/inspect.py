"""Self-contained HTML page to accept or reject emission candidates by eye."""

from __future__ import annotations

import base64
import hashlib
import html
import os
from collections.abc import Sequence

from .core import SourceCutouts
from .figures import candidate_figure, figure_png

__all__ = ["inspection_page"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#111;color:#eee}
header{position:sticky;top:0;background:#222;padding:8px 14px;
border-bottom:1px solid #444;z-index:2}
header button{margin-left:6px}
.help{font-size:12px;color:#aaa}
.card{margin:12px;padding:8px;border:2px solid #333;border-radius:6px;background:#1a1a1a}
.card.current{border-color:#ffd400}
.card.accept{background:#13301a}
.card.reject{background:#3a1515}
.card img{max-width:100%;display:block}
.meta{font-family:monospace;font-size:12px;margin:4px 0}
.state{font-weight:bold;margin-left:8px}
button{font-size:14px;padding:3px 10px;cursor:pointer}
"""

_JS = """
(function(){
  var KEY = 'morphoscope-emission-' + document.body.dataset.key;
  var cards = Array.prototype.slice.call(document.querySelectorAll('.card'));
  var dec = {};
  try { dec = JSON.parse(localStorage.getItem(KEY) || '{}'); } catch (e) { dec = {}; }
  var cur = 0;
  function save(){ try { localStorage.setItem(KEY, JSON.stringify(dec)); } catch (e) {} }
  function paint(){
    var na = 0, nr = 0;
    cards.forEach(function(c, i){
      var d = dec[c.dataset.id] || '';
      c.classList.toggle('accept', d === 'accept');
      c.classList.toggle('reject', d === 'reject');
      c.classList.toggle('current', i === cur);
      c.querySelector('.state').textContent = d ? d.toUpperCase() : 'undecided';
      if (d === 'accept') na++; if (d === 'reject') nr++;
    });
    document.getElementById('counts').textContent =
      na + ' accepted, ' + nr + ' rejected, ' + (cards.length - na - nr) + ' undecided';
  }
  function go(i){
    if (!cards.length) return;
    cur = Math.max(0, Math.min(cards.length - 1, i));
    paint(); cards[cur].scrollIntoView({block: 'center'});
  }
  function mark(i, d){
    var id = cards[i].dataset.id;
    if (d) dec[id] = d; else delete dec[id];
    save(); paint();
  }
  cards.forEach(function(c, i){
    c.querySelector('.acc').onclick = function(){ cur = i; mark(i, 'accept'); };
    c.querySelector('.rej').onclick = function(){ cur = i; mark(i, 'reject'); };
    c.querySelector('.clr').onclick = function(){ cur = i; mark(i, ''); };
    c.onclick = function(ev){ if (ev.target.tagName !== 'BUTTON') { cur = i; paint(); } };
  });
  document.addEventListener('keydown', function(ev){
    if (!cards.length || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var k = ev.key;
    if (k === 'a' || k === 'y') { mark(cur, 'accept'); go(cur + 1); }
    else if (k === 'r' || k === 'n') { mark(cur, 'reject'); go(cur + 1); }
    else if (k === 'u' || k === 'Backspace') { mark(cur, ''); }
    else if (k === 'j' || k === 'ArrowDown' || k === 'ArrowRight') { go(cur + 1); }
    else if (k === 'k' || k === 'ArrowUp' || k === 'ArrowLeft') { go(cur - 1); }
    else return;
    ev.preventDefault();
  });
  document.getElementById('export').onclick = function(){
    var lines = ['id,decision'];
    cards.forEach(function(c){ lines.push(c.dataset.id + ',' + (dec[c.dataset.id] || '')); });
    var a = document.createElement('a');
    a.download = 'emission_decisions.csv';
    a.href = 'data:text/csv;charset=utf-8,' + encodeURIComponent(lines.join('\\n') + '\\n');
    document.body.appendChild(a); a.click(); a.remove();
  };
  document.getElementById('reset').onclick = function(){
    if (confirm('Forget every decision on this page?')) { dec = {}; save(); paint(); }
  };
  paint();
})();
"""


def _fmt(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return html.escape(str(v))
    return f"{f:.2f}" if f == f else "nan"


def inspection_page(
    cutouts: Sequence[SourceCutouts],
    path: str | os.PathLike | None = None,
    *,
    title: str = "Emission-line candidates",
    medium_name: str = "medium",
    reference_names: list[str] | None = None,
    dpi: int = 80,
) -> str:
    """An HTML page with one card per candidate, to accept or reject them by eye.

    The page is self-contained: the figures (:func:`candidate_figure`) are embedded as
    base64 PNGs, the style and script are inline, nothing is fetched, and it works
    opened from disk. Each card has Accept / Reject / Clear buttons; keys: ``a`` (or
    ``y``) accept and move on, ``r`` (or ``n``) reject and move on, ``u`` clear,
    ``j``/``k`` or arrows move. Decisions persist in the browser's ``localStorage``
    (keyed by the page's title and ids) and **Export CSV** downloads ``id,decision``.

    Parameters
    ----------
    cutouts : sequence of SourceCutouts
        One per candidate, from :func:`~morphoscope.emission.search` with
        ``keep_cutouts="candidates"``.
    path : path-like, optional
        If given, the page is written there atomically.
    title, medium_name, reference_names : str
        Labels.
    dpi : int
        Resolution of the embedded figures.

    Returns
    -------
    str
        The HTML text.

    Examples
    --------
    >>> page = inspection_page([], title="none yet")
    >>> "Export CSV" in page and "http" not in page
    True
    """
    cards = []
    for c in cutouts:
        fig = candidate_figure(c, medium_name=medium_name, reference_names=reference_names)
        png = base64.b64encode(figure_png(fig, dpi=dpi)).decode("ascii")
        row = c.row or {}
        meta = " ".join(
            f"{k}={_fmt(row.get(k))}"
            for k in ("R_medium", "R_reference", "q_medium", "q_reference", "S_excess", "d_H")
        )
        sid = html.escape(str(c.id), quote=True)
        cards.append(
            f'<div class="card" data-id="{sid}">'
            f"<div><b>source {sid}</b> at x={_fmt(c.origin[0] + c.xc)}, "
            f"y={_fmt(c.origin[1] + c.yc)} &mdash; reason: {html.escape(row.get('reason', ''))}"
            f'<span class="state"></span></div>'
            f'<div class="meta">{meta}</div>'
            f'<img alt="source {sid}" src="data:image/png;base64,{png}">'
            f'<div><button class="acc">Accept (a)</button><button class="rej">Reject (r)'
            f'</button><button class="clr">Clear (u)</button></div></div>'
        )
    key = hashlib.sha1(
        (title + "|" + ",".join(str(c.id) for c in cutouts)).encode(), usedforsecurity=False
    ).hexdigest()[:12]
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body data-key='{key}'><header><b>{html.escape(title)}</b> &mdash; "
        f"{len(cards)} candidates. <span id='counts'></span>"
        "<button id='export'>Export CSV</button><button id='reset'>Reset</button>"
        "<div class='help'>keys: a/y accept, r/n reject, u clear, j/k or arrows move; "
        "decisions are kept in this browser (localStorage)</div></header>"
        + ("".join(cards) if cards else "<p style='margin:14px'>No candidates.</p>")
        + f"<script>{_JS}</script></body></html>\n"
    )
    if path is not None:
        from ..io.write import atomic_write

        with atomic_write(path) as tmp:
            tmp.write_text(page, encoding="utf-8")
    return page
