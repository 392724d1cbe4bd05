"""``morphoscope inspect``: a page to look at every source of a catalog and decide by eye.

::

    morphoscope inspect CATALOG [--image F115W.fits F200W.fits ...] [--segmap segmap.fits]
                        --out DIR [--id-column COL] [--columns COL ...] [--sort COL]
                        [--page-size 50] [--title TEXT] [--embed]

Writes ``DIR/inspect.html`` and its thumbnails in ``DIR/inspect_thumbs/``. The exported
decisions (``decisions.csv``) are labels for ``morphoscope classify train --labels``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..exceptions import InputError

__all__ = ["add_parser", "handle"]


def add_parser(subparsers) -> None:
    """Register ``morphoscope inspect``."""
    p = subparsers.add_parser(
        "inspect",
        help="write a page to inspect every source of a catalog by eye",
        description="Write DIR/inspect.html: one card per catalog row with the cutout in "
        "every band, the segment outlines and the key numbers; accept/reject/unsure by "
        "keyboard, filter and sort by any column, export the decisions as CSV (labels for "
        "'morphoscope classify train --labels'). Opens from disk, offline.",
    )
    p.add_argument("catalog", help="catalog (.ecsv, .fits, .csv) with x, y (or xc_centroid, "
                   "yc_centroid, or ra, dec and an image with a WCS)")  # fmt: skip
    p.add_argument(
        "--image",
        nargs="+",
        default=None,
        metavar="FITS",
        help="band image(s), bluest first (file.fits[EXT] ok); cutouts are drawn from them",
    )
    p.add_argument(
        "--segmap", default=None, metavar="FITS", help="segmentation map (FITS): outlines"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--id-column", default=None, help="identifier column (default: id or label)")
    p.add_argument(
        "--columns", nargs="+", default=None, metavar="COL", help="key numbers on each card"
    )
    p.add_argument("--sort", default=None, metavar="COL", help="sort the page by this column")
    p.add_argument("--page-size", type=int, default=50, help="cards per page (default: 50)")
    p.add_argument("--title", default=None, help="page title (default: the catalog name)")
    p.add_argument(
        "--embed", action="store_true", help="embed the thumbnails in the page (one file)"
    )
    p.set_defaults(func=handle)


def _columns(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [c.strip() for v in values for c in v.split(",") if c.strip()]


def handle(args: argparse.Namespace) -> int:
    """Read the catalog and images, write the page, print where it is."""
    import numpy as np

    from ..classify.tables import read_table
    from ..io import read_fits_array, read_image
    from ..report.inspect import write_inspection_page

    catalog = read_table(args.catalog)
    images: dict[str, np.ndarray] = {}
    wcs = None
    for path in args.image or []:
        im = read_image(path)
        data = im.data.copy()
        data[im.bad] = np.nan
        name = Path(str(path).split("[")[0]).stem
        while name in images:
            name += "'"
        if images and data.shape != next(iter(images.values())).shape:
            raise InputError(im.name, f"shape {data.shape} differs from the first image")
        images[name] = data
        wcs = wcs if wcs is not None else im.wcs
    segmap = None
    if args.segmap:
        raw, _, name = read_fits_array(args.segmap)
        segmap = np.asarray(raw)
        if segmap.ndim != 2:
            raise InputError(name, f"must be a 2-D label map, got {segmap.ndim} dimensions")
        if images and segmap.shape != next(iter(images.values())).shape:
            raise InputError(name, f"shape {segmap.shape} differs from the images")
        if not images:
            raise InputError("--segmap", "needs --image (the outlines are drawn on cutouts)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    page = write_inspection_page(
        out / "inspect.html",
        catalog,
        images=images or None,
        segmap=segmap,
        id_column=args.id_column,
        columns=_columns(args.columns),
        title=args.title or f"Inspection: {Path(args.catalog).name}",
        page_size=args.page_size,
        sort=args.sort,
        embed=True if args.embed else (False if images else None),
        wcs=wcs,
    )
    print(f"{len(catalog)} sources -> {os.fspath(page)}", file=sys.stderr)
    return 0
