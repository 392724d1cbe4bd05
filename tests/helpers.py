"""Analytic sources whose parameters are known exactly (used by several test folders)."""

from __future__ import annotations

import numpy as np


def gaussian_source(shape, x0, y0, flux, sigma, q=1.0, theta=0.0):
    """Elliptical Gaussian of total ``flux``; ``sigma`` along the major axis, axis ratio q."""
    y, x = np.mgrid[: shape[0], : shape[1]].astype(float)
    dx, dy = x - x0, y - y0
    c, s = np.cos(theta), np.sin(theta)
    u = c * dx + s * dy
    v = -s * dx + c * dy
    sa, sb = sigma, sigma * q
    return flux / (2 * np.pi * sa * sb) * np.exp(-0.5 * ((u / sa) ** 2 + (v / sb) ** 2))


def halo_galaxy(shape=(64, 64), x0=32.0, y0=32.0, amp=40.0, sigma=2.0, halo=0.0, halo_scale=5.0):
    """Gaussian core plus an optional circular exponential halo (noise-free)."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    r2 = (x - x0) ** 2 + (y - y0) ** 2
    img = amp * np.exp(-r2 / (2 * sigma**2))
    if halo:
        img = img + halo * np.exp(-np.sqrt(r2) / halo_scale)
    return img
