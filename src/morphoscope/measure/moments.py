"""Centroids and flux-weighted second moments: ellipticity, elongation, orientation."""

from __future__ import annotations

import numpy as np

from .pixels import PixelGroups

__all__ = ["centroids", "shape_from_moments"]


def centroids(groups: PixelGroups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flux-weighted centroid of each source, using positive pixel values.

    Returns ``(xc, yc, weight)``; NaN centroids where a source has no positive flux.
    """
    w = np.clip(groups.flux, 0, None)
    wsum = groups.sum(w)
    with np.errstate(invalid="ignore", divide="ignore"):
        xc = groups.sum(w * groups.x) / wsum
        yc = groups.sum(w * groups.y) / wsum
    return xc, yc, wsum


def shape_from_moments(
    groups: PixelGroups, xc: np.ndarray, yc: np.ndarray
) -> dict[str, np.ndarray]:
    """Second-moment ellipse of each source about ``(xc, yc)``.

    Returns
    -------
    dict
        ``ellipticity`` (1 - b/a), ``elongation`` (a/b), ``orientation`` (radians,
        counter-clockwise from +x, in (-pi/2, pi/2]), ``a``, ``b`` (rms semi-axes,
        pixels), as in statmorph and photutils.
    """
    w = np.clip(groups.flux, 0, None)
    dx = groups.x - xc[groups.index]
    dy = groups.y - yc[groups.index]
    wsum = groups.sum(w)
    with np.errstate(invalid="ignore", divide="ignore"):
        mxx = groups.sum(w * dx * dx) / wsum
        myy = groups.sum(w * dy * dy) / wsum
        mxy = groups.sum(w * dx * dy) / wsum
        half_sum = 0.5 * (mxx + myy)
        root = np.sqrt((0.5 * (mxx - myy)) ** 2 + mxy**2)
        a = np.sqrt(np.clip(half_sum + root, 0, None))
        b = np.sqrt(np.clip(half_sum - root, 0, None))
        ratio = np.where(a > 0, b / a, np.nan)
        elongation = np.where(b > 0, a / b, np.inf)
    orientation = 0.5 * np.arctan2(2.0 * mxy, mxx - myy)
    return {
        "ellipticity": 1.0 - ratio,
        "elongation": elongation,
        "orientation": orientation,
        "a": a,
        "b": b,
    }
