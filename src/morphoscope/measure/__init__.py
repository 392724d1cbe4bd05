"""Per-source morphology measurements: segmentation map in, astropy Table out.

``measure(image, segmap, rms=..., mask=...)`` gives centroids, fluxes, second-moment
shapes, growth radii (r20, r50, r80), concentration, Gini, M20 and asymmetry, with the
column names statmorph uses for the same quantities and per-source ``flag`` bits.
"""

from .core import COLUMNS, measure, validate_segmap
from .pixels import PixelGroups, group_pixels

__all__ = ["COLUMNS", "PixelGroups", "group_pixels", "measure", "validate_segmap"]
