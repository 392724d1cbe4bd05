"""The self-contained HTML report and its figures.

:func:`write_report` writes ``report.html``: summary, field overview with segment
outlines, a gallery of the brightest sources, diagnostic plots and a sortable
catalog table, all in one file with embedded PNG images (no external resources).
:func:`write_inspection_page` (:mod:`morphoscope.report.inspect`) writes the page to
accept, reject or mark as unsure every source of a catalog by keyboard, with cutouts,
filters, sorting, ``localStorage`` persistence and a CSV export.
The figures are plain functions in :mod:`morphoscope.report.figures` returning
matplotlib Figures, reusable in notebooks and docs.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> from astropy.table import Table
>>> from morphoscope.report import write_report
>>> img = np.zeros((48, 48)); img[10:16, 20:26] = 3.0
>>> seg = (img > 0).astype(int)
>>> cat = Table({"label": [1], "flux": [108.0]})
>>> out = write_report(pathlib.Path(tempfile.mkdtemp()) / "report.html",
...                    image=img, segmap=seg, catalog=cat)
>>> out.name
'report.html'
"""

from __future__ import annotations

from . import figures
from .figures import stretch
from .inspect import write_inspection_page
from .page import write_report

__all__ = ["figures", "stretch", "write_inspection_page", "write_report"]
