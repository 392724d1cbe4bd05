"""Validation of images, rms/weight maps, masks and PSFs.

Each function returns a clean, native-endian float64 (or bool) copy and never
modifies its input. Problems with the whole input raise
:class:`~morphoscope.exceptions.InputError` naming the input (a file name or an
argument name) and the problem.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import InputError

__all__ = [
    "as_image",
    "as_mask",
    "as_psf",
    "as_rms",
    "rms_from_weight",
]


def as_image(
    data, name: str = "image", *, allow_nonfinite: bool = True, dtype=np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a 2-D image; return a floating-point copy and the mask of its non-finite pixels.

    Parameters
    ----------
    data : array_like
        The image. Integer, boolean, float32/64 and big-endian arrays are accepted.
        Length-1 leading axes (``(1, ny, nx)`` cubes) are squeezed.
    name : str
        How the input is named in error messages (a file name or an argument).
    allow_nonfinite : bool
        If False, NaN or infinite pixels raise; otherwise they are returned in the mask
        and replaced by 0 in the copy.
    dtype : {numpy.float64, numpy.float32}
        Type of the copy (float32 halves memory and time of the detection stage).

    Returns
    -------
    image : ndarray of ``dtype``
        A new array (the caller's array is never modified); non-finite pixels set to 0.
    bad : ndarray of bool
        True where the input was NaN or infinite.

    Raises
    ------
    InputError
        If the data are not numeric, not 2-D, smaller than 3x3, entirely non-finite,
        all zero or constant.

    Examples
    --------
    >>> import numpy as np
    >>> img, bad = as_image(np.array([[1, 2, 3], [4, np.nan, 6], [7, 8, 9]]))
    >>> bad.sum(), img[1, 1]
    (np.int64(1), np.float64(0.0))
    """
    if data is None:
        raise InputError(name, "no data (the HDU is empty)")
    arr = np.asarray(data)
    if arr.dtype.kind not in "biuf":
        raise InputError(name, f"expected a numeric image, got dtype {arr.dtype}")
    if arr.ndim > 2:
        squeezed = arr.reshape([s for s in arr.shape if s != 1] or [1])
        if squeezed.ndim == 2:
            arr = squeezed
    if arr.ndim != 2:
        raise InputError(
            name,
            f"expected a 2-D image, got {arr.ndim}-D data of shape {arr.shape}"
            + ("; pick one plane of the cube" if arr.ndim == 3 else ""),
        )
    if min(arr.shape) < 3:
        raise InputError(name, f"image of shape {arr.shape} is too small (at least 3x3)")
    if np.dtype(dtype) not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise InputError("dtype", f"expected float32 or float64, got {np.dtype(dtype)}")
    image = arr.astype(dtype, copy=True)  # native byte order, new memory
    bad = ~np.isfinite(image)
    nbad = int(np.count_nonzero(bad))
    if nbad == bad.size:
        raise InputError(name, "every pixel is NaN or infinite")
    if nbad:
        if not allow_nonfinite:
            raise InputError(name, f"{nbad} pixels are NaN or infinite")
        image[bad] = 0.0
    good = image[~bad] if nbad else image
    lo, hi = float(good.min()), float(good.max())
    if lo == hi == 0.0:
        raise InputError(name, "every pixel is zero (empty or blank image)")
    if lo == hi:
        raise InputError(name, f"the image is constant (every pixel is {lo:g})")
    return image, bad


def as_rms(
    rms, shape: tuple[int, int], name: str = "rms", *, dtype=np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """Validate an rms (1-sigma noise) map or scalar; return a float64 map and its bad-pixel mask.

    A scalar is broadcast to ``shape``. Pixels that are NaN, infinite, zero or negative
    are returned in the mask (and set to +inf in the map, so they carry no weight).

    Raises
    ------
    InputError
        On a shape mismatch, a non-numeric map, or a map with no positive finite pixel.

    Examples
    --------
    >>> rms, bad = as_rms(2.0, (3, 3))
    >>> float(rms[0, 0]), bool(bad.any())
    (2.0, False)
    """
    arr = np.asarray(rms)
    if arr.dtype.kind not in "biuf":
        raise InputError(name, f"expected a numeric rms map, got dtype {arr.dtype}")
    if arr.ndim == 0:
        value = float(arr)
        if not np.isfinite(value) or value <= 0:
            raise InputError(name, f"the rms must be positive and finite, got {value}")
        return np.full(shape, value, dtype), np.zeros(shape, bool)
    if arr.ndim > 2:
        arr = arr.reshape([s for s in arr.shape if s != 1] or [1])
    if arr.shape != tuple(shape):
        raise InputError(name, f"shape {arr.shape} does not match the image shape {tuple(shape)}")
    out = arr.astype(dtype, copy=True)
    bad = ~(out > 0)  # NaN, zero and negative
    bad |= np.isinf(out)
    nbad = int(np.count_nonzero(bad))
    if nbad == bad.size:
        raise InputError(name, "no pixel has a positive, finite rms")
    if nbad:
        out[bad] = np.inf
    return out, bad


def rms_from_weight(
    weight, shape: tuple[int, int], name: str = "weight"
) -> tuple[np.ndarray, np.ndarray]:
    """Convert an inverse-variance weight map to an rms map (``rms = 1 / sqrt(weight)``).

    Zero, negative or non-finite weights become bad pixels (rms = +inf).

    Examples
    --------
    >>> import numpy as np
    >>> rms, bad = rms_from_weight(np.array([[4.0, 0.0, 1.0]] * 3), (3, 3))
    >>> rms[0].tolist(), bad[0].tolist()
    ([0.5, inf, 1.0], [False, True, False])
    """
    arr = np.asarray(weight)
    if arr.dtype.kind not in "biuf":
        raise InputError(name, f"expected a numeric weight map, got dtype {arr.dtype}")
    if arr.ndim > 2:
        arr = arr.reshape([s for s in arr.shape if s != 1] or [1])
    if arr.shape != tuple(shape):
        raise InputError(name, f"shape {arr.shape} does not match the image shape {tuple(shape)}")
    w = arr.astype(np.float64, copy=True)
    bad = ~np.isfinite(w) | (w <= 0)
    if bad.all():
        raise InputError(name, "no pixel has a positive, finite weight")
    rms = np.full(w.shape, np.inf)
    rms[~bad] = 1.0 / np.sqrt(w[~bad])
    return rms, bad


def as_mask(mask, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    """Validate a mask (True or non-zero = masked); return a new boolean array.

    Examples
    --------
    >>> as_mask([[0, 1, 0]] * 3, (3, 3)).sum()
    np.int64(3)
    """
    if mask is None:
        return np.zeros(shape, bool)
    arr = np.asarray(mask)
    if arr.dtype.kind not in "biuf":
        raise InputError(name, f"expected a boolean or integer mask, got dtype {arr.dtype}")
    if arr.ndim > 2:
        arr = arr.reshape([s for s in arr.shape if s != 1] or [1])
    if arr.shape != tuple(shape):
        raise InputError(name, f"shape {arr.shape} does not match the image shape {tuple(shape)}")
    out = np.array(arr != 0, dtype=bool)  # NaN != 0, so NaN counts as masked
    return out


def as_psf(psf, name: str = "psf") -> np.ndarray:
    """Validate a PSF image: 2-D, finite, positive sum; return it normalised to unit sum.

    The PSF is re-centred on its central pixel if its size is even (by padding one row
    and/or column), so that convolutions do not shift the image.

    Examples
    --------
    >>> import numpy as np
    >>> p = as_psf(np.ones((3, 3)))
    >>> float(p.sum()), p.shape
    (1.0, (3, 3))
    """
    arr = np.asarray(psf)
    if arr.dtype.kind not in "biuf":
        raise InputError(name, f"expected a numeric PSF image, got dtype {arr.dtype}")
    if arr.ndim > 2:
        arr = arr.reshape([s for s in arr.shape if s != 1] or [1])
    if arr.ndim != 2:
        raise InputError(name, f"expected a 2-D PSF image, got shape {arr.shape}")
    out = arr.astype(np.float64, copy=True)
    if not np.all(np.isfinite(out)):
        raise InputError(name, "the PSF has NaN or infinite pixels")
    total = out.sum()
    if not total > 0:
        raise InputError(name, f"the PSF sums to {total:g}; it must have positive total flux")
    out /= total
    pad = [(0, 1 - s % 2) for s in out.shape]
    if any(p[1] for p in pad):
        out = np.pad(out, pad)
    return out
