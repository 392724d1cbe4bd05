"""Self-contained HTML page to accept or reject emission candidates by eye.

A thin layer over the general inspection page
(:func:`morphoscope.report.inspect.inspection_html`): the candidates' three-panel
figures are its thumbnails, their search results its catalog.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from astropy.table import Table

from .core import SourceCutouts
from .figures import candidate_figure, figure_png

__all__ = ["inspection_page"]

#: Columns of the search result shown on each card.
_KEY_COLUMNS = (
    "reason", "S_excess", "R_medium", "R_reference", "q_medium", "q_reference", "d_H",
    "n_pix_medium", "n_pix_reference",
)  # fmt: skip


def _candidate_table(cutouts: Sequence[SourceCutouts]) -> Table:
    names: list[str] = []
    for c in cutouts:
        names += [k for k in (c.row or {}) if k not in names and k not in ("id", "x", "y")]
    cols: dict[str, list] = {
        "id": [c.id for c in cutouts],
        "x": [float(c.origin[0] + c.xc) for c in cutouts],
        "y": [float(c.origin[1] + c.yc) for c in cutouts],
    }
    for k in names:
        vals = [(c.row or {}).get(k) for c in cutouts]
        if any(isinstance(v, list | tuple | np.ndarray) for v in vals):
            continue
        if all(isinstance(v, bool | np.bool_) for v in vals):
            cols[k] = [bool(v) for v in vals]
        elif all(isinstance(v, int | float | np.number) or v is None for v in vals):
            cols[k] = [np.nan if v is None else float(v) for v in vals]
        else:
            cols[k] = ["" if v is None else str(v) for v in vals]
    return Table(cols)


def inspection_page(
    cutouts: Sequence[SourceCutouts],
    path: str | os.PathLike | None = None,
    *,
    title: str = "Emission-line candidates",
    medium_name: str = "medium",
    reference_names: list[str] | None = None,
    dpi: int = 80,
    page_size: int = 50,
) -> str:
    """An HTML page with one card per candidate, to accept or reject them by eye.

    The page is self-contained: the figures (:func:`candidate_figure`) are embedded as
    base64 PNGs, the style and script are inline, nothing is fetched, and it works
    opened from disk. It is the general inspection page
    (:mod:`morphoscope.report.inspect`): keys ``a`` accept, ``r`` reject, ``u`` unsure
    (each moves on), ``j``/``k`` or arrows move, ``c`` clears; filter and sort by any
    column of the search result (``S_excess > 50``); decisions persist in the
    browser's ``localStorage`` and **Export CSV** downloads ``id,decision``.

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
    page_size : int
        Candidates per page.

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
    from ..report.inspect import inspection_html

    pngs = [
        figure_png(
            candidate_figure(c, medium_name=medium_name, reference_names=reference_names),
            dpi=dpi,
        )
        for c in cutouts
    ]
    table = _candidate_table(cutouts)
    keys = [k for k in _KEY_COLUMNS if k in table.colnames] or None
    page = inspection_html(
        table,
        pngs,
        id_column="id",
        columns=keys,
        title=title,
        page_size=page_size,
        download_name="emission_decisions.csv",
        note="Panels: RGB composite, medium band with cluster outlines, cluster membership.",
    )
    if path is not None:
        from ..io.write import atomic_write

        with atomic_write(path) as tmp:
            tmp.write_text(page, encoding="utf-8")
            os.chmod(tmp, 0o644)
    return page
