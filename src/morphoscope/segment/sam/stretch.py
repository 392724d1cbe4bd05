"""Astronomical images to the 8-bit RGB pictures Segment Anything was trained on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...exceptions import InputError, ParameterError

__all__ = ["STRETCHES", "band_limits", "stretch_to_rgb"]

STRETCHES = ("asinh", "zscale")


def band_limits(values: np.ndarray) -> tuple[float, float, float]:
    """Return the zscale limits and the 99.9th percentile of the finite values of one band.

    The zscale limits are those of IRAF/DS9 (:class:`astropy.visualization.ZScaleInterval`
    with its defaults): a linear fit to the sorted central sample of the pixels, which brackets
    the sky and its noise whatever the bright sources.

    Examples
    --------
    >>> import numpy as np
    >>> lo, hi, top = band_limits(np.random.default_rng(0).normal(0, 1, (64, 64)))
    >>> bool(lo < 0 < hi <= top)
    True
    """
    from astropy.visualization import ZScaleInterval

    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0, 1.0
    lo, hi = (float(t) for t in ZScaleInterval().get_limits(v))
    top = float(np.percentile(v, 99.9))
    if not hi > lo:
        hi = lo + max(float(np.std(v)), 1e-12)
    return lo, hi, max(top, hi)


def stretch_to_rgb(
    bands,
    *,
    stretch: str = "asinh",
    bad: np.ndarray | None = None,
) -> np.ndarray:
    """Stretch one or three bands to an 8-bit RGB image of shape ``(ny, nx, 3)``.

    Each band is scaled on its own, from its zscale limits ``lo, hi`` and the 99.9th
    percentile ``top`` of its valid pixels (:func:`band_limits`):

    * ``"asinh"`` (default): ``v = asinh((x - lo) / (hi - lo)) / asinh((top - lo) / (hi - lo))``,
      linear over the sky noise and logarithmic over bright sources, so that faint outskirts and
      bright cores are both visible (Lupton et al. 2004, with the softening set to the zscale
      range);
    * ``"zscale"``: ``v = (x - lo) / (hi - lo)``, the DS9 display (bright cores saturate).

    ``v`` is clipped to [0, 1] and written as ``round(255 v)``. One band fills the three
    channels (grey); three bands fill red, green and blue in the order given (pass the reddest
    band first). Excluded pixels (``bad``, NaN, inf) are black.

    Parameters
    ----------
    bands : array_like or sequence of array_like
        A 2-D image, a sequence of one or three 2-D images of the same shape, or an array of
        shape ``(1, ny, nx)`` or ``(3, ny, nx)``.
    stretch : {"asinh", "zscale"}
    bad : ndarray of bool, optional
        True = excluded pixel.

    Returns
    -------
    rgb : ndarray of uint8, shape (ny, nx, 3)

    Notes
    -----
    Linear in the number of pixels (the zscale fit samples at most 1000 of them); memory of a
    few band-sized arrays.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(1).normal(0, 1, (32, 48))
    >>> img[10:14, 20:24] += 100
    >>> rgb = stretch_to_rgb(img)
    >>> rgb.shape, rgb.dtype, bool((rgb[..., 0] == rgb[..., 2]).all())
    ((32, 48, 3), dtype('uint8'), True)
    >>> int(np.median(rgb[..., 0])) < 40 < 250 < int(rgb[12, 22, 0])
    True
    """
    if stretch not in STRETCHES:
        raise ParameterError("stretch", stretch, f"one of {', '.join(map(repr, STRETCHES))}")
    if isinstance(bands, np.ndarray) and bands.ndim == 2:
        planes = [bands]
    elif isinstance(bands, np.ndarray) and bands.ndim == 3:
        planes = list(bands)
    elif isinstance(bands, Sequence) and not isinstance(bands, str):
        planes = [np.asarray(b) for b in bands]
    else:
        planes = [np.asarray(bands)]
    if len(planes) not in (1, 3) or any(np.ndim(p) != 2 for p in planes):
        raise InputError("bands", "expected one 2-D image or a sequence of one or three 2-D images")
    shape = np.shape(planes[0])
    if any(np.shape(p) != shape for p in planes):
        raise InputError("bands", f"the bands differ in shape: {[np.shape(p) for p in planes]}")
    excluded = np.zeros(shape, bool) if bad is None else np.asarray(bad, bool).copy()
    out = np.zeros((*shape, 3), np.uint8)
    channels = []
    for plane in planes:
        x = np.asarray(plane, float)
        invalid = excluded | ~np.isfinite(x)
        lo, hi, top = band_limits(x[~invalid])
        soft = hi - lo
        with np.errstate(invalid="ignore", over="ignore"):
            if stretch == "asinh":
                v = np.arcsinh((x - lo) / soft) / np.arcsinh((top - lo) / soft)
            else:
                v = (x - lo) / soft
        v = np.clip(np.nan_to_num(v, nan=0.0), 0.0, 1.0)
        v[invalid] = 0.0
        channels.append(np.round(255.0 * v).astype(np.uint8))
    for c in range(3):
        out[..., c] = channels[c if len(channels) == 3 else 0]
    return out
