"""Reading FITS images with their rms/weight maps, masks, PSFs and WCS."""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS, FITSFixedWarning

from ..exceptions import InputError
from .validate import as_image, as_mask, as_psf, as_rms, rms_from_weight

__all__ = ["ImageData", "load_image", "read_fits_array", "read_image"]

_EXT_RE = re.compile(r"^(?P<path>.+?)\[(?P<ext>[^\]]+)\]$")


@dataclass
class ImageData:
    """A validated image with everything that travels with it.

    Attributes
    ----------
    data : ndarray of float64
        The image, native byte order; non-finite pixels replaced by 0 (see ``bad``).
    bad : ndarray of bool
        Pixels to ignore: NaN/inf in the image, masked by the user, or with no valid rms.
    rms : ndarray of float64 or None
        Per-pixel 1-sigma noise, +inf on bad pixels, or None when not given.
    psf : ndarray of float64 or None
        Unit-sum PSF image with odd sides, or None.
    wcs : astropy.wcs.WCS or None
        Celestial WCS of the image, when the header has one.
    header : astropy.io.fits.Header
        The image header.
    name : str
        File name with extension (``"f200w.fits[SCI]"``) or ``"image"`` for arrays.
    """

    data: np.ndarray
    bad: np.ndarray
    rms: np.ndarray | None = None
    psf: np.ndarray | None = None
    wcs: WCS | None = None
    header: fits.Header = field(default_factory=fits.Header)
    name: str = "image"

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape ``(ny, nx)``."""
        return self.data.shape  # type: ignore[return-value]


def _split_ext(path: str | os.PathLike) -> tuple[Path, str | int | None]:
    text = os.fspath(path)
    match = _EXT_RE.match(text)
    if match and not Path(text).exists():
        ext: str | int = match.group("ext")
        if isinstance(ext, str) and ext.isdigit():
            ext = int(ext)
        return Path(match.group("path")), ext
    return Path(text), None


def read_fits_array(
    path: str | os.PathLike, ext: str | int | None = None
) -> tuple[np.ndarray, fits.Header, str]:
    """Read the data and header of one HDU; the first HDU with data if ``ext`` is None.

    ``path`` may carry the extension in brackets: ``"mosaic.fits[SCI]"`` or ``"cube.fits[2]"``.

    Returns
    -------
    data : ndarray
        The HDU's data, as stored (any dtype or byte order).
    header : Header
    name : str
        ``"file.fits[EXT]"``, for messages.

    Raises
    ------
    InputError
        If the file is missing, unreadable, not FITS, truncated, or has no such
        extension or no image data.
    """
    fpath, bracket = _split_ext(path)
    if ext is None:
        ext = bracket
    label = fpath.name
    if not fpath.exists():
        raise InputError(str(fpath), "file not found")
    if fpath.is_dir():
        raise InputError(str(fpath), "is a folder, not a FITS file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(fpath, memmap=False, lazy_load_hdus=False) as hdul:
                if ext is None:
                    idx = next(
                        (
                            i
                            for i, h in enumerate(hdul)
                            if h.is_image and h.data is not None and h.data.size > 1
                        ),
                        None,
                    )
                    if idx is None:
                        raise InputError(label, "no HDU with image data")
                    hdu = hdul[idx]
                    name = label if idx == 0 else f"{label}[{hdu.name or idx}]"
                else:
                    try:
                        hdu = hdul[ext]
                    except (KeyError, IndexError):
                        names = [h.name or str(i) for i, h in enumerate(hdul)]
                        raise InputError(
                            label, f"no extension {ext!r} (extensions: {', '.join(names)})"
                        ) from None
                    name = f"{label}[{ext}]"
                    if not hdu.is_image:
                        raise InputError(name, "extension holds a table, not an image")
                data = hdu.data
                if data is None:
                    raise InputError(name, "extension has no data")
                data = np.array(data)  # read fully before the file is closed
                header = hdu.header.copy()
    except InputError:
        raise
    except (OSError, TypeError, ValueError, IndexError, EOFError) as exc:
        text = str(exc)
        if any(word in text for word in ("reshape", "buffer", "truncated", "EOF")):
            raise InputError(label, f"truncated or corrupted FITS file ({text})") from None
        raise InputError(label, f"not a readable FITS file ({text})") from None
    return data, header, name


def _celestial_wcs(header: fits.Header) -> WCS | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            wcs = WCS(header, naxis=2)
        except Exception:
            return None
    return wcs if wcs.has_celestial else None


def _as_array(value, ext=None) -> tuple[np.ndarray, str | None]:
    if isinstance(value, str | os.PathLike):
        data, _, name = read_fits_array(value, ext)
        return data, name
    return value, None


def read_image(
    path: str | os.PathLike,
    *,
    ext: str | int | None = None,
    rms: str | os.PathLike | np.ndarray | float | None = None,
    weight: str | os.PathLike | np.ndarray | None = None,
    mask: str | os.PathLike | np.ndarray | None = None,
    psf: str | os.PathLike | np.ndarray | None = None,
) -> ImageData:
    """Read and validate a FITS image with its optional rms or weight map, mask and PSF.

    Parameters
    ----------
    path : str or path-like
        FITS file; ``"file.fits[SCI]"`` selects an extension by name or number.
    ext : str or int, optional
        Extension to read (overrides the bracket form). Default: first HDU with data.
    rms : path, array or float, optional
        1-sigma noise map (same shape) or a scalar.
    weight : path or array, optional
        Inverse-variance weight map, converted to rms. Give ``rms`` or ``weight``, not both.
    mask : path or array, optional
        Non-zero = pixel to ignore.
    psf : path or array, optional
        PSF image on the same pixel grid; normalised to unit sum.

    Returns
    -------
    ImageData

    Raises
    ------
    InputError
        Naming the file and the problem: missing file, not FITS, truncated, no such
        extension, not 2-D, all NaN, all zero, constant, shape mismatch between the
        image and its maps, PSF with no positive flux.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from astropy.io import fits
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "img.fits"
    >>> fits.writeto(p, np.arange(25.0).reshape(5, 5))
    >>> im = read_image(p, rms=1.0)
    >>> im.shape, im.name
    ((5, 5), 'img.fits')
    """
    raw, header, name = read_fits_array(path, ext)
    return load_image(raw, header=header, name=name, rms=rms, weight=weight, mask=mask, psf=psf)


def load_image(
    data: np.ndarray,
    *,
    header: fits.Header | None = None,
    name: str = "image",
    rms=None,
    weight=None,
    mask=None,
    psf=None,
) -> ImageData:
    """Validate an in-memory image and its companions; the array twin of :func:`read_image`."""
    image, bad = as_image(data, name)
    header = fits.Header() if header is None else header
    if rms is not None and weight is not None:
        raise InputError(name, "give an rms map or a weight map, not both")
    rms_map = None
    if rms is not None:
        arr, rname = _as_array(rms)
        rms_map, rbad = as_rms(arr, image.shape, rname or "rms")
        bad |= rbad
    elif weight is not None:
        arr, wname = _as_array(weight)
        rms_map, wbad = rms_from_weight(arr, image.shape, wname or "weight")
        bad |= wbad
    if mask is not None:
        arr, mname = _as_array(mask)
        bad |= as_mask(arr, image.shape, mname or "mask")
    psf_img = None
    if psf is not None:
        arr, pname = _as_array(psf)
        psf_img = as_psf(arr, pname or "psf")
    if bad.all():
        raise InputError(name, "every pixel is masked or has no valid rms")
    if rms_map is not None:
        image[bad] = 0.0
    return ImageData(
        data=image,
        bad=bad,
        rms=rms_map,
        psf=psf_img,
        wcs=_celestial_wcs(header),
        header=header,
        name=name,
    )
