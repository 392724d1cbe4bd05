"""Analytic sources whose parameters are known exactly (used by several test folders)."""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve
from scipy.special import gammaincinv


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


def sersic_image(shape, amp, reff, n, x0, y0, ellip, theta):
    """statmorph's (astropy's ``Sersic2D``) profile sampled at pixel centres."""
    y, x = np.mgrid[: shape[0], : shape[1]].astype(float)
    ct, st = np.cos(theta), np.sin(theta)
    xmaj = (x - x0) * ct + (y - y0) * st
    xmin = -(x - x0) * st + (y - y0) * ct
    z = np.hypot(xmaj, xmin / (1 - ellip)) / reff
    return amp * np.exp(-gammaincinv(2.0 * n, 0.5) * (z ** (1 / n) - 1))


def gaussian_psf(size, fwhm, dx=0.0):
    """A normalised Gaussian PSF on a ``size`` x ``size`` grid (centre shifted by ``dx``)."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2.0
    s = fwhm / 2.3548
    k = np.exp(-((x - dx) ** 2 + y**2) / (2 * s * s))
    return k / k.sum()


def bulge_disk_image(shape, truth, psf):
    """A PSF-convolved double-Sersic image; ``truth`` in DOUBLE_PARAMS order."""
    first = sersic_image(shape, *truth[[2, 3, 4, 0, 1, 5, 6]])
    second = sersic_image(shape, *truth[[7, 8, 9, 0, 1, 10, 11]])
    return fftconvolve(first + second, psf, mode="same")


#: A bulge (component 1) and disk (component 2) in DOUBLE_PARAMS order.
BULGE_DISK = np.array([31.6, 32.3, 8.0, 2.5, 4.0, 0.2, 0.4, 1.0, 9.0, 1.0, 0.55, 0.9])
