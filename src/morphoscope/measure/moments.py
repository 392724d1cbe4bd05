"""Centroids and flux-weighted second moments: ellipticity, elongation, orientation."""

from __future__ import annotations

import numpy as np

from ._stamp import second_moments, weighted_sums
from .pixels import PixelGroups

__all__ = ["centroids", "shape_from_moments"]


def centroids(groups: PixelGroups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flux-weighted centroid of each source, using positive pixel values.

    Returns ``(xc, yc, weight)``; NaN centroids where a source has no positive flux.
    """
    wsum, sx, sy = weighted_sums(
        groups.index, groups.x, groups.y, np.asarray(groups.flux, dtype=np.float64), groups.n
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        xc = sx / wsum
        yc = sy / wsum
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
    mxx, myy, mxy, a, b, ratio, elongation = second_moments(
        groups.index,
        groups.x,
        groups.y,
        np.asarray(groups.flux, dtype=np.float64),
        np.asarray(xc, dtype=np.float64),
        np.asarray(yc, dtype=np.float64),
        groups.n,
    )
    orientation = 0.5 * np.arctan2(2.0 * mxy, mxx - myy)
    return {
        "ellipticity": 1.0 - ratio,
        "elongation": elongation,
        "orientation": orientation,
        "a": a,
        "b": b,
    }
