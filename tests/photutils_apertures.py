"""Exact-overlap aperture sums with ``photutils.geometry``: the reference of the compiled
overlaps and sums (``morphoscope.measure._overlap``, ``_radii``), which replaced this module.

Circles, ellipses and their annuli are summed with the exact pixel-overlap fractions of
``photutils.geometry`` (the code behind ``photutils.aperture`` with ``method='exact'``),
evaluated only on the aperture's bounding box.

Coordinates are 0-based pixel centres (x = column, y = row); angles are radians CCW from +x.
"""

from __future__ import annotations

import numpy as np
from photutils.geometry import circular_overlap_grid, elliptical_overlap_grid

__all__ = [
    "circle_sum",
    "circle_weights",
    "ellipse_annulus_sum",
    "ellipse_sum",
    "ellipse_weights",
]


def _box(shape, xc, yc, rx, ry):
    ny, nx = shape
    x0 = max(int(np.floor(xc - rx - 0.5)), 0)
    x1 = min(int(np.ceil(xc + rx + 0.5)) + 1, nx)
    y0 = max(int(np.floor(yc - ry - 0.5)), 0)
    y1 = min(int(np.ceil(yc + ry + 0.5)) + 1, ny)
    return y0, y1, x0, x1


def circle_weights(shape, xc: float, yc: float, r: float):
    """Exact overlap of a circle with the pixels of an image of ``shape``.

    Returns ``(slices, weights)``: the bounding box (clipped to the image) and the overlap
    fraction of every pixel in it. Empty box when the circle misses the image or ``r <= 0``.
    """
    if not r > 0:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0))
    y0, y1, x0, x1 = _box(shape, xc, yc, r, r)
    if y1 <= y0 or x1 <= x0:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0))
    w = circular_overlap_grid(
        x0 - 0.5 - xc, x1 - 0.5 - xc, y0 - 0.5 - yc, y1 - 0.5 - yc, x1 - x0, y1 - y0, r, 1, 1
    )
    return (slice(y0, y1), slice(x0, x1)), w


def ellipse_weights(shape, xc: float, yc: float, a: float, b: float, theta: float):
    """Exact overlap of an ellipse (semi-axes ``a``, ``b``, angle ``theta``) with the pixels."""
    if not (a > 0 and b > 0):
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0))
    y0, y1, x0, x1 = _box(shape, xc, yc, max(a, b), max(a, b))
    if y1 <= y0 or x1 <= x0:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0))
    w = elliptical_overlap_grid(
        x0 - 0.5 - xc,
        x1 - 0.5 - xc,
        y0 - 0.5 - yc,
        y1 - 0.5 - yc,
        x1 - x0,
        y1 - y0,
        a,
        b,
        theta,
        1,
        1,
    )
    return (slice(y0, y1), slice(x0, x1)), w


def circle_sum(images, xc: float, yc: float, r: float) -> np.ndarray:
    """Exact circular-aperture sums of one or several same-shape images (a list).

    Returns one value per image; 0 where the circle misses the image.
    """
    sl, w = circle_weights(images[0].shape, xc, yc, r)
    return np.array([float(np.sum(img[sl] * w)) for img in images])


def ellipse_sum(images, xc: float, yc: float, a: float, b: float, theta: float) -> np.ndarray:
    """Exact elliptical-aperture sums of one or several same-shape images (a list)."""
    if not (a > 0 and b > 0):
        return np.zeros(len(images))
    sl, w = ellipse_weights(images[0].shape, xc, yc, a, b, theta)
    return np.array([float(np.sum(img[sl] * w)) for img in images])


def ellipse_annulus_sum(images, xc, yc, a_in, a_out, b_out, theta) -> np.ndarray:
    """Exact sums over the elliptical annulus between semi-major axes ``a_in`` and ``a_out``
    (inner semi-minor axis ``b_out * a_in / a_out``, as ``photutils.aperture.EllipticalAnnulus``).
    """
    outer = ellipse_sum(images, xc, yc, a_out, b_out, theta)
    return outer - ellipse_sum(images, xc, yc, a_in, b_out * a_in / a_out, theta)
