"""Input and output: read and validate FITS images and their maps; write results atomically.

Reading
    :func:`read_image` returns an :class:`ImageData` (image, bad-pixel mask, rms, PSF, WCS),
    having checked shapes, dtypes, NaN/inf, empty and constant images; a bad input
    raises one :class:`~morphoscope.exceptions.InputError` naming the file and the problem.
Validation of arrays
    :func:`as_image`, :func:`as_rms`, :func:`rms_from_weight`, :func:`as_mask`, :func:`as_psf`.
Writing
    :func:`write_segmap` (FITS with the input WCS), :func:`write_catalog` (ECSV, FITS, CSV),
    :func:`atomic_write` (temporary file, then rename).
"""

from .fits import ImageData, load_image, read_fits_array, read_image
from .validate import as_image, as_mask, as_psf, as_rms, rms_from_weight
from .write import atomic_write, write_catalog, write_fits_image, write_segmap

__all__ = [
    "ImageData",
    "as_image",
    "as_mask",
    "as_psf",
    "as_rms",
    "atomic_write",
    "load_image",
    "read_fits_array",
    "read_image",
    "rms_from_weight",
    "write_catalog",
    "write_fits_image",
    "write_segmap",
]
