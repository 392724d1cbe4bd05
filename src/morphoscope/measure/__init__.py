"""Per-source morphology measurements: segmentation map in, astropy Table out.

``measure(image, segmap, rms=..., psf=...)`` gives first-order quantities (fluxes,
centroids, second-moment shapes), statmorph's non-parametric set (Petrosian radii, CAS,
Gini-M20, MID, outer and shape asymmetry) computed with statmorph's algorithms, and a
PSF-convolved single-Sersic fit (optionally also a double-Sersic fit) with uncertainties,
batched over sources (on a GPU with ``device="cuda"``); the column names
are statmorph's where the quantity is the same, with per-source ``flag`` bits.
``measure_stamps`` does the same for a stack of single-source stamps, ``measure_bands`` (or
``measure`` given a mapping of bands) for several bands: per-band columns and colours.
"""

from .bands import BAND_COLUMNS, add_colours, measure_bands
from .core import (
    COLUMNS,
    DOUBLESERSIC_COLUMNS,
    NONPARAMETRIC_COLUMNS,
    SERSIC_COLUMNS,
    measure,
    measure_stamps,
    validate_segmap,
)
from .pixels import PixelGroups, group_pixels

__all__ = [
    "BAND_COLUMNS",
    "COLUMNS",
    "DOUBLESERSIC_COLUMNS",
    "NONPARAMETRIC_COLUMNS",
    "SERSIC_COLUMNS",
    "PixelGroups",
    "add_colours",
    "group_pixels",
    "measure",
    "measure_bands",
    "measure_stamps",
    "validate_segmap",
]
