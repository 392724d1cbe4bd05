"""PSF matching of bands to the broadest PSF before their clusters are compared."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import signal

from ..exceptions import MorphoscopeWarning, ParameterError
from ..io.validate import as_psf
from ..segment.detect import psf_fwhm

__all__ = ["match_psfs", "matching_kernel"]


def _window(name: str):
    from photutils import psf_matching as pm

    if name == "tukey":
        return pm.TukeyWindow(alpha=0.25)
    if name == "split_cosine_bell":
        return pm.SplitCosineBellWindow(alpha=0.15, beta=0.3)
    if name == "top_hat":
        return pm.TopHatWindow(beta=0.4)
    if name == "none":
        return None
    raise ParameterError("window", name, "one of 'tukey', 'split_cosine_bell', 'top_hat', 'none'")


def _pad_to(psf: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    py = (shape[0] - psf.shape[0]) // 2
    px = (shape[1] - psf.shape[1]) // 2
    return np.pad(psf, ((py, shape[0] - psf.shape[0] - py), (px, shape[1] - psf.shape[1] - px)))


def matching_kernel(
    source_psf: np.ndarray,
    target_psf: np.ndarray,
    *,
    window: str = "tukey",
    regularization: float = 1e-4,
) -> np.ndarray:
    """Kernel that turns ``source_psf`` (narrower) into ``target_psf`` (broader).

    Both PSFs are normalised, padded to a common odd shape, and passed to
    :func:`photutils.psf_matching.make_kernel` (``create_matching_kernel`` in older
    photutils) with a taper against high-frequency noise: ``"tukey"``
    (:class:`~photutils.psf_matching.TukeyWindow`, ``alpha=0.25``, default),
    ``"split_cosine_bell"`` (``alpha=0.15, beta=0.3``), ``"top_hat"`` (``beta=0.4``) or
    ``"none"``. Windows that cut deep into the frequencies a PSF sampled near Nyquist
    still carries (split cosine bell, top hat) leave residuals of 10-20% of the peak
    for JWST-like PSFs; the Tukey window keeps them below 1%. A kernel whose
    ``source * kernel`` misses the target by more than 5% of its peak raises a
    :class:`~morphoscope.exceptions.MorphoscopeWarning`.

    Returns
    -------
    kernel : ndarray
        Unit-sum kernel with the PSFs' common shape.

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[-12:13, -12:13]
    >>> narrow = np.exp(-(x**2 + y**2) / (2 * 1.0**2))
    >>> broad = np.exp(-(x**2 + y**2) / (2 * 2.0**2))
    >>> k = matching_kernel(narrow, broad)
    >>> k.shape, round(float(k.sum()), 6)
    ((25, 25), 1.0)
    """
    src = as_psf(source_psf, "psf (source)")
    tgt = as_psf(target_psf, "psf (target)")
    side_y = max(src.shape[0], tgt.shape[0])
    side_x = max(src.shape[1], tgt.shape[1])
    side = max(side_y, side_x) | 1  # odd, square
    src = _pad_to(src, (side, side))
    tgt = _pad_to(tgt, (side, side))
    try:
        from photutils.psf_matching import make_kernel as _make
    except ImportError:  # photutils < 3
        from photutils.psf import create_matching_kernel as _make
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        kernel = _make(src, tgt, window=_window(window), regularization=regularization)
    kernel = np.asarray(kernel, dtype=np.float64)
    kernel /= kernel.sum()
    resid = np.abs(signal.fftconvolve(src, kernel, mode="same") - tgt).max() / tgt.max()
    if resid > 0.05:
        warnings.warn(
            f"PSF matching kernel reproduces the target PSF only to {resid:.0%} of its peak; "
            "try window='tukey' or 'none'",
            MorphoscopeWarning,
            stacklevel=2,
        )
    return kernel


def match_psfs(
    images: list[np.ndarray],
    rms: list[np.ndarray],
    psfs: list[np.ndarray],
    *,
    window: str = "tukey",
    regularization: float = 1e-4,
) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Convolve every band to the broadest PSF of the set.

    The broadest PSF is the one with the largest FWHM
    (:func:`morphoscope.segment.psf_fwhm`); each other band is convolved with its
    :func:`matching_kernel`. Its rms map becomes ``sqrt(conv(rms**2, k**2))``, the
    noise of convolved independent pixels (pixel-to-pixel correlations that the
    convolution introduces are not represented in an rms map).

    Parameters
    ----------
    images, rms, psfs : lists of ndarray
        One image, rms map (same shape, ``inf`` = bad pixel) and PSF per band.

    Returns
    -------
    images, rms : lists of ndarray
        New arrays (the inputs are never modified); the broadest band is returned as is.
    target : int
        Index of the band whose PSF was the target.

    Notes
    -----
    FFT convolution: O(P log P) for P image pixels per band, memory a few image copies.
    """
    fwhm = [psf_fwhm(as_psf(p, f"psf[{i}]")) for i, p in enumerate(psfs)]
    target = int(np.nanargmax(fwhm))
    out_img, out_rms = [], []
    for i, (img, err, psf) in enumerate(zip(images, rms, psfs, strict=True)):
        if i == target or np.isclose(fwhm[i], fwhm[target], rtol=1e-3):
            out_img.append(img)
            out_rms.append(err)
            continue
        k = matching_kernel(psf, psfs[target], window=window, regularization=regularization)
        bad = ~np.isfinite(err)
        clean = np.where(bad | ~np.isfinite(img), 0.0, img)
        conv = signal.fftconvolve(clean, k, mode="same")
        var = np.where(bad, 0.0, err * err)
        var_c = signal.fftconvolve(var, k * k, mode="same")
        new_rms = np.sqrt(np.clip(var_c, 0.0, None))
        # a pixel stays bad if it was bad; convolved values near bad pixels are still usable
        new_rms[bad | ~(new_rms > 0)] = np.inf
        out_img.append(conv)
        out_rms.append(new_rms)
    return out_img, out_rms, target
