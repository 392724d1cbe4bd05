"""Single-galaxy stamps with truth, for training and testing networks."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import galsim
import numpy as np
from astropy import units as u
from astropy.table import Table

from ..exceptions import ParameterError
from ._checks import check_fraction, check_positive, check_range, check_seed
from .bands import GSPARAMS, Band
from .scene import class_probabilities
from .sources import CLASS_NAMES, make_source

__all__ = ["Stamps", "simulate_stamps"]


@dataclass
class Stamps:
    """A batch of single-galaxy stamps with their truth.

    Attributes
    ----------
    images : numpy.ndarray
        ``(n, size, size)`` float32 noisy stamps (zero-mean background).
    noiseless : numpy.ndarray
        ``(n, size, size)`` float32 PSF-convolved models (central galaxy + neighbour).
    rms : numpy.ndarray
        ``(n,)`` standard deviation of the Gaussian noise of each stamp.
    psf_fwhm : numpy.ndarray
        ``(n,)`` FWHM of each stamp's effective PSF in pixels.
    truth : astropy.table.Table
        One row per stamp, describing the central galaxy (see :func:`simulate_stamps`).
    segmaps : numpy.ndarray
        ``(n, size, size)`` int32: 1 = central galaxy, 2 = neighbour, 0 = background.
    classmaps : numpy.ndarray
        ``(n, size, size)`` uint8 class ids of the same pixels.
    psfs : numpy.ndarray
        ``(n, k, k)`` float32 effective PSF images (odd size, unit sum).
    central : numpy.ndarray or None
        ``(n, size, size)`` float32 PSF-convolved model of the central source alone.
    """

    images: np.ndarray
    noiseless: np.ndarray
    rms: np.ndarray
    psf_fwhm: np.ndarray
    truth: Table
    segmaps: np.ndarray
    classmaps: np.ndarray
    psfs: np.ndarray
    central: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _check_count(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ParameterError("n", n, "a non-negative integer")
    return int(n)


def simulate_stamps(
    n: int,
    *,
    size: int = 64,
    band: Band | None = None,
    pixel_scale: float = 0.03,
    psf_fwhm_range: tuple[float, float] = (1.5, 6.0),
    snr_range: tuple[float, float] = (5.0, 500.0),
    class_fractions: Mapping[str, float] | Sequence[float] | None = None,
    neighbours: float = 0.3,
    seed: int = 0,
    r_e_range: tuple[float, float] | None = None,
    truth_threshold: float = 1.0,
    max_offset: float = 1.0,
    sersic_n_range: tuple[float, float] | None = None,
) -> Stamps:
    """Simulate ``n`` stamps of single galaxies (or stars), centred, with truth.

    Each stamp holds one source of a random class drawn from the same models as
    :func:`~morphoscope.simulate.simulate_scene`, placed at the stamp centre
    ``((size - 1) / 2, (size - 1) / 2)`` plus a random offset of up to ``max_offset``
    pixels, convolved with a PSF of random FWHM, scaled to a random matched-filter S/N,
    with white Gaussian noise. A fraction ``neighbours`` of stamps also hold a second
    galaxy 25-45 % of the stamp size away.

    Parameters
    ----------
    n : int
        Number of stamps.
    size : int
        Side of the square stamps in pixels (>= 16).
    band : Band, optional
        PSF model. An analytic band keeps its profile (``"moffat"``/``"gaussian"``, Moffat
        beta) with a random FWHM; a band with a PSF image uses that image for all stamps.
        Default: Moffat (beta = 3) for half the stamps and Gaussian for the others.
    pixel_scale : float
        Arcsec per pixel (sets the default size distribution, median r_e ~ 0.25").
    psf_fwhm_range : (float, float)
        Range of PSF FWHM in pixels (log-uniform).
    snr_range : (float, float)
        Range of the matched-filter S/N of the central source (log-uniform).
    class_fractions : mapping or sequence of 4 floats, optional
        As in :func:`~morphoscope.simulate.simulate_scene`.
    neighbours : float
        Probability that a stamp also holds a neighbouring galaxy.
    seed : int
        Random seed (bit-identical output for the same seed).
    r_e_range : (float, float), optional
        Half-light radii limits in pixels; default ``(1.5, size / 6)``.
    truth_threshold : float
        Segmentation threshold in units of the stamp's noise rms.
    max_offset : float
        Largest offset of the centre from the stamp centre, in pixels, per axis.
    sersic_n_range : (float, float), optional
        If given, every central galaxy is one Sérsic profile (no bulge, knots or clumps)
        with index log-uniform in this range (quantised to 0.05), half-light radius
        log-uniform in ``r_e_range`` and axis ratio uniform in [0.2, 1]; its class is
        ``spheroid`` for ``n >= 2.5`` and ``disk`` otherwise. Point sources keep their
        class fraction. This is the training set of a Sérsic estimator.

    Returns
    -------
    stamps : Stamps
        Truth columns: ``class``, ``class_id``, ``n``, ``bulge_fraction``, ``r_e`` [pix,
        semi-major half-light radius before PSF], ``q``, ``pa`` [rad], ``flux``,
        ``x``, ``y`` [pix, centre of light], ``x_offset``, ``y_offset`` [pix, from the
        stamp centre], ``snr`` (``sqrt(sum(model**2)) / rms`` of the central source),
        ``psf_fwhm`` [pix], ``has_neighbour``.

    Notes
    -----
    One GalSim draw per source: roughly 1-5 ms per 64x64 stamp; noise is vectorised.
    Memory ~ 4 float32 arrays of ``n * size * size``.

    Examples
    --------
    >>> from morphoscope.simulate import simulate_stamps
    >>> st = simulate_stamps(4, size=32, seed=2)
    >>> st.images.shape, len(st.truth)
    ((4, 32, 32), 4)
    """
    n = _check_count(n)
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 16:
        raise ParameterError("size", size, "an integer >= 16")
    size = int(size)
    if band is not None and not isinstance(band, Band):
        raise ParameterError("band", band, "a Band or None")
    pixel_scale = check_positive("pixel_scale", pixel_scale)
    fwhm_lo, fwhm_hi = check_range("psf_fwhm_range", psf_fwhm_range)
    snr_lo, snr_hi = check_range("snr_range", snr_range)
    probs = class_probabilities(class_fractions)
    neighbours = check_fraction("neighbours", neighbours)
    seed = check_seed(seed)
    truth_threshold = check_positive("truth_threshold", truth_threshold)
    max_offset = float(check_positive("max_offset", max_offset)) if max_offset else 0.0
    if r_e_range is None:
        r_e_range = (1.5, size / 6.0)
    r_lo, r_hi = check_range("r_e_range", r_e_range)

    rng = np.random.default_rng(seed)
    ps = pixel_scale
    cls = rng.choice(np.arange(1, 5), size=n, p=probs)
    snr = np.exp(rng.uniform(np.log(snr_lo), np.log(snr_hi), n))
    flux = np.exp(rng.uniform(np.log(100.0), np.log(10000.0), n))
    fwhm = np.exp(rng.uniform(np.log(fwhm_lo), np.log(fwhm_hi), n))
    size_factor = np.select([cls == 1, cls == 3], [0.7, 1.2], 1.0)
    r_e = np.clip(0.25 / ps * size_factor * np.exp(rng.normal(0, 0.5, n)), r_lo, r_hi)
    q_draw = rng.uniform(0.2, 1.0, n)
    q = np.where(
        cls == 1, 0.45 + 0.55 * q_draw**0.5, np.where(cls == 3, 0.3 + 0.7 * q_draw, q_draw)
    )
    pa = rng.uniform(0, np.pi, n)
    off = rng.uniform(-max_offset, max_offset, (n, 2)) if max_offset else np.zeros((n, 2))
    has_nb = rng.random(n) < neighbours
    moffat = rng.random(n) < 0.5
    if sersic_n_range is not None:  # extra draws only in this mode: default output unchanged
        n_lo, n_hi = check_range("sersic_n_range", sersic_n_range)
        sersic_n = np.exp(rng.uniform(np.log(n_lo), np.log(n_hi), n))
        r_e = np.exp(rng.uniform(np.log(r_lo), np.log(r_hi), n))
        q = rng.uniform(0.2, 1.0, n)

    centre = (size - 1) / 2.0
    noiseless = np.zeros((n, size, size), dtype=np.float64)
    segmaps = np.zeros((n, size, size), dtype=np.int32)
    classmaps = np.zeros((n, size, size), dtype=np.uint8)
    psf_half = max(12, int(np.ceil(3 * fwhm_hi)))
    if band is not None and isinstance(band.psf, np.ndarray):
        psf_half = max(band.psf.shape) // 2
    psfs = np.zeros((n, 2 * psf_half + 1, 2 * psf_half + 1), dtype=np.float32)
    rms = np.zeros(n)
    centrals = np.zeros((n, size, size), dtype=np.float32)
    rows = []
    for i in range(n):
        psf = _stamp_psf(band, bool(moffat[i]), float(fwhm[i]), ps)
        if band is not None and isinstance(band.psf, np.ndarray):
            fwhm[i] = band.fwhm_pixels(ps)
        if sersic_n_range is not None and cls[i] != 4:
            src = _single_sersic(
                float(sersic_n[i]), float(flux[i]), float(r_e[i]), float(q[i]), float(pa[i]),
                centre + off[i, 0], centre + off[i, 1], ps,
            )  # fmt: skip
        else:
            src = make_source(
                rng, int(cls[i]), float(flux[i]), float(r_e[i]), float(q[i]), float(pa[i]),
                centre + off[i, 0], centre + off[i, 1], ps,
            )  # fmt: skip
        main = _draw(src, psf, size, ps)
        centrals[i] = main
        sig = np.sqrt(np.sum(main * main)) / snr[i]
        rms[i] = sig
        pim = galsim.ImageD(psfs.shape[2], psfs.shape[1], scale=ps)
        psf.drawImage(image=pim, method="no_pixel")
        psfs[i] = (pim.array / pim.array.sum()).astype(np.float32)
        models = [main]
        nb_cls = 0
        if has_nb[i]:
            nb_cls = int(rng.choice(np.arange(1, 4), p=_renorm(probs[:3])))
            dist = rng.uniform(0.25, 0.45) * size
            ang = rng.uniform(0, 2 * np.pi)
            nb_re = float(np.clip(r_e[i] * np.exp(rng.normal(0, 0.5)), r_lo, r_hi))
            nb = make_source(
                rng, nb_cls, float(flux[i] * np.exp(rng.uniform(np.log(0.1), np.log(3.0)))),
                nb_re, float(rng.uniform(0.3, 1.0)), float(rng.uniform(0, np.pi)),
                centre + dist * np.cos(ang), centre + dist * np.sin(ang), ps,
            )  # fmt: skip
            models.append(_draw(nb, psf, size, ps))
        total = np.sum(models, axis=0)
        noiseless[i] = total
        thr = truth_threshold * sig
        stack = np.stack(models)
        best = np.argmax(stack, axis=0)
        inside = stack.max(axis=0) > thr
        segmaps[i] = np.where(inside, best + 1, 0)
        classmaps[i] = np.where(inside, np.array([src.class_id, nb_cls])[best], 0)
        rows.append(
            (
                CLASS_NAMES[src.class_id], src.class_id, src.n, src.bulge_fraction, src.r_e,
                src.q, src.pa, float(flux[i]), src.x0 + src.dx, src.y0 + src.dy,
                src.x0 + src.dx - centre, src.y0 + src.dy - centre, float(snr[i]),
                float(fwhm[i]), bool(has_nb[i]),
            )
        )  # fmt: skip
    noise = rng.standard_normal((n, size, size)) * rms[:, None, None]
    names = (
        "class", "class_id", "n", "bulge_fraction", "r_e", "q", "pa", "flux", "x", "y",
        "x_offset", "y_offset", "snr", "psf_fwhm", "has_neighbour",
    )  # fmt: skip
    dtypes = ("U12", "i2", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8",
              "f8", "?")  # fmt: skip
    truth = Table(rows=rows or None, names=names, dtype=dtypes)
    for col, unit in (("r_e", u.pix), ("pa", u.rad), ("x", u.pix), ("y", u.pix),
                      ("x_offset", u.pix), ("y_offset", u.pix), ("psf_fwhm", u.pix)):  # fmt: skip
        truth[col].unit = unit
    truth.meta["class_names"] = list(CLASS_NAMES)
    return Stamps(
        images=(noiseless + noise).astype(np.float32),
        noiseless=noiseless.astype(np.float32),
        rms=rms.astype(np.float32),
        psf_fwhm=fwhm.astype(np.float32),
        truth=truth,
        segmaps=segmaps,
        classmaps=classmaps,
        psfs=psfs,
        central=centrals,
    )


def _single_sersic(n_sersic, flux, r_e, q, pa, x0, y0, ps):
    """One Sérsic source (class ``spheroid`` for ``n >= 2.5``, else ``disk``)."""
    from .sources import TRUNC, Component, SourceModel, _ellipse_half_widths, _quantise_n, _sersic

    n_q = _quantise_n(n_sersic)
    shear = galsim.Shear(q=q, beta=pa * galsim.radians)
    prof = _sersic(n_q, r_e * np.sqrt(q), ps).shear(shear)
    half = _ellipse_half_widths(TRUNC * r_e, q, pa)
    cls = 1 if n_q >= 2.5 else 2
    comp = Component(prof, flux, 0.0)
    bf = 1.0 if cls == 1 else 0.0
    return SourceModel(cls, x0, y0, float(r_e), float(q), float(pa), n_q, bf, [comp], half)


def _renorm(p: np.ndarray) -> np.ndarray:
    s = p.sum()
    return p / s if s > 0 else np.full(p.size, 1.0 / p.size)


_STAMP_PSFS: dict[float, galsim.Moffat] = {}


def _stamp_psf(band: Band | None, moffat: bool, fwhm_pix: float, ps: float) -> galsim.GSObject:
    if band is not None and isinstance(band.psf, np.ndarray):
        from .bands import psf_object

        return psf_object(band, ps)
    fwhm = fwhm_pix * ps
    if band is not None:
        moffat = band.psf == "moffat"
    beta = band.moffat_beta if band is not None else 3.0
    if moffat:  # one unit-FWHM Moffat per beta, dilated: GalSim solves maxk/stepk once
        base = _STAMP_PSFS.get(beta)
        if base is None:
            base = _STAMP_PSFS[beta] = galsim.Moffat(beta=beta, fwhm=1.0, gsparams=GSPARAMS)
        return base.dilate(fwhm)
    return galsim.Gaussian(fwhm=fwhm, gsparams=GSPARAMS)


def _draw(src, psf: galsim.GSObject, size: int, ps: float) -> np.ndarray:
    """Noiseless PSF-convolved source on a ``size x size`` stamp (0-based positions)."""
    if src.class_id == 4:
        obj = psf * src.flux(1.0)
    else:
        obj = galsim.Convolve(src.profile(1.0), psf, gsparams=GSPARAMS)
    img = galsim.ImageD(size, size, scale=ps)
    obj.drawImage(image=img, method="no_pixel", center=galsim.PositionD(src.x0 + 1, src.y0 + 1))
    return img.array.copy()
