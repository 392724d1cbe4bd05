"""Photometric bands of a simulated scene: PSF, noise and wavelength.

A :class:`Band` says how one filter image is rendered: its point-spread function
(analytic Gaussian or Moffat, or a user PSF image), its background noise, its gain
(Poisson noise of the sources) and its pivot wavelength, which sets the colours of
the simulated sources through their spectral slopes (see :mod:`.sources`).

The PSF of a band is the *effective* PSF (optics convolved with the pixel response):
every source is rendered as ``galaxy * PSF`` sampled at pixel centres (GalSim's
``method='no_pixel'``), so :attr:`Scene.psfs <morphoscope.simulate.Scene.psfs>` is
exactly the kernel that relates the noiseless image to the intrinsic light.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import galsim
import numpy as np

from ..exceptions import ParameterError

__all__ = ["GSPARAMS", "Band", "default_bands", "psf_image", "psf_object"]

#: GalSim accuracy settings used for every profile: slightly relaxed folding and
#: k-space thresholds (sub-percent effect far below the noise) and a generous FFT
#: limit so that very extended, high-index profiles never abort a scene.
GSPARAMS = galsim.GSParams(
    folding_threshold=1e-2,
    maxk_threshold=2e-3,
    maximum_fft_size=16384,
)


@dataclass(frozen=True, eq=False)
class Band:
    """One filter of a simulated scene.

    Parameters
    ----------
    name : str
        Filter name, e.g. ``"F200W"``; used as the key of every per-band output.
    psf : {"moffat", "gaussian"} or numpy.ndarray
        Analytic effective PSF, or a user PSF image (2-D, any normalisation, sampled on
        the scene's pixel grid, centred on its central pixel). The image is copied and
        normalised to unit sum; the caller's array is never modified.
    fwhm : float
        FWHM of the analytic PSF in arcsec (ignored for a PSF image).
    moffat_beta : float
        Moffat index (> 1.1) of the ``"moffat"`` PSF.
    sky_rms : float
        Standard deviation of the Gaussian background noise per pixel (image units).
    gain : float or None
        Electrons per image unit for the Poisson noise of the sources; ``None`` adds
        no source noise (background noise only).
    medium : bool
        True for a medium band (typically the band with an emission line).
    wavelength : float
        Pivot wavelength in micron. A source with spectral slope ``beta`` has
        ``flux_band = flux_ref * (wavelength / wavelength_ref) ** beta``, where the
        reference is the detection band (``beta > 0``: red, ``beta < 0``: blue).

    Examples
    --------
    >>> from morphoscope.simulate import Band
    >>> Band("F150W", psf="gaussian", fwhm=0.05, sky_rms=0.8, wavelength=1.5).name
    'F150W'
    """

    name: str
    psf: str | np.ndarray = "moffat"
    fwhm: float = 0.1
    moffat_beta: float = 3.0
    sky_rms: float = 1.0
    gain: float | None = 5.0
    medium: bool = False
    wavelength: float = 2.0
    _psf_key: tuple = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ParameterError("name", self.name, "a non-empty string")
        if isinstance(self.psf, str):
            if self.psf not in ("moffat", "gaussian"):
                raise ParameterError("psf", self.psf, "'moffat', 'gaussian' or a 2-D array")
        else:
            arr = np.array(self.psf, dtype=float, copy=True)
            if arr.ndim != 2 or min(arr.shape) < 3:
                raise ParameterError("psf", f"array of shape {arr.shape}", "a 2-D array >= 3x3")
            if not np.all(np.isfinite(arr)) or arr.sum() <= 0:
                raise ParameterError("psf", "array", "finite with a positive sum")
            arr /= arr.sum()
            arr.flags.writeable = False
            object.__setattr__(self, "psf", arr)
        for name in ("fwhm", "sky_rms", "wavelength"):
            if not _positive(getattr(self, name)):
                raise ParameterError(name, getattr(self, name), "a finite positive number")
        if not (_positive(self.moffat_beta) and self.moffat_beta > 1.1):
            raise ParameterError("moffat_beta", self.moffat_beta, "a number > 1.1")
        if self.gain is not None and not _positive(self.gain):
            raise ParameterError("gain", self.gain, "a finite positive number or None")
        key = (
            ("image", self.psf.shape, self.psf.tobytes())
            if isinstance(self.psf, np.ndarray)
            else (self.psf, float(self.fwhm), float(self.moffat_beta))
        )
        object.__setattr__(self, "_psf_key", key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Band):
            return NotImplemented
        return (
            self.name == other.name
            and self._psf_key == other._psf_key
            and self.sky_rms == other.sky_rms
            and self.gain == other.gain
            and self.medium == other.medium
            and self.wavelength == other.wavelength
        )

    def __hash__(self) -> int:
        return hash((self.name, self._psf_key, self.sky_rms, self.gain, self.medium))

    def fwhm_pixels(self, pixel_scale: float) -> float:
        """PSF FWHM in pixels (measured on the PSF image for a user PSF)."""
        if isinstance(self.psf, np.ndarray):
            return _image_fwhm(self.psf)
        return float(self.fwhm) / pixel_scale


def _positive(value: object) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and bool(np.isfinite(value))
        and value > 0
    )


def _image_fwhm(img: np.ndarray) -> float:
    """FWHM (pixels) of a PSF image from the area above half maximum."""
    area = float(np.count_nonzero(img >= 0.5 * img.max()))
    return max(2.0 * np.sqrt(area / np.pi), 1.0)


def default_bands() -> list[Band]:
    """Three JWST/NIRCam-like bands registered on one 0.03"/pixel grid.

    ``F200W`` (broad, FWHM 0.066"), ``F335M`` (medium, FWHM 0.111") and ``F356W``
    (broad, FWHM 0.116"), all with Moffat (beta = 3) effective PSFs. The noise levels
    make typical simulated galaxies S/N ~ 5-500 with the default ``flux_range`` of
    :func:`~morphoscope.simulate.simulate_scene`; the medium band is noisier.

    Returns
    -------
    bands : list of Band
        The detection band (first broad band) is ``F200W``.

    Examples
    --------
    >>> from morphoscope.simulate import default_bands
    >>> [b.name for b in default_bands()]
    ['F200W', 'F335M', 'F356W']
    """
    return [
        Band("F200W", psf="moffat", fwhm=0.066, sky_rms=1.0, gain=5.0, wavelength=1.99),
        Band("F335M", psf="moffat", fwhm=0.111, sky_rms=1.6, gain=5.0, medium=True,
             wavelength=3.36),
        Band("F356W", psf="moffat", fwhm=0.116, sky_rms=1.0, gain=5.0, wavelength=3.57),
    ]  # fmt: skip


_PSF_CACHE: dict[tuple, galsim.GSObject] = {}


def psf_object(band: Band, pixel_scale: float) -> galsim.GSObject:
    """GalSim profile (arcsec units, unit flux) of the effective PSF of ``band``."""
    key = (band._psf_key, float(pixel_scale))
    obj = _PSF_CACHE.get(key)
    if obj is None:
        if isinstance(band.psf, np.ndarray):
            image = galsim.ImageD(np.ascontiguousarray(band.psf), scale=pixel_scale)
            obj = galsim.InterpolatedImage(
                image, x_interpolant="lanczos5", normalization="flux", gsparams=GSPARAMS
            )
        elif band.psf == "gaussian":
            obj = galsim.Gaussian(fwhm=band.fwhm, gsparams=GSPARAMS)
        else:
            obj = galsim.Moffat(beta=band.moffat_beta, fwhm=band.fwhm, gsparams=GSPARAMS)
        if len(_PSF_CACHE) > 64:
            _PSF_CACHE.clear()
        _PSF_CACHE[key] = obj
    return obj


def psf_image(band: Band, pixel_scale: float) -> np.ndarray:
    """Effective PSF of ``band`` on the pixel grid: odd size, centred, unit sum (float32).

    An analytic PSF is sampled on a square of side ~ 8 FWHM (at least 25 pixels); a
    user PSF image is returned as given (normalised), padded by one pixel to an odd
    size when needed.
    """
    if isinstance(band.psf, np.ndarray):
        img = np.asarray(band.psf, dtype=float)
        ny, nx = img.shape
        if ny % 2 == 0 or nx % 2 == 0:
            ny2, nx2 = ny | 1, nx | 1
            out = galsim.ImageD(nx2, ny2, scale=pixel_scale)
            psf_object(band, pixel_scale).drawImage(image=out, method="no_pixel")
            img = out.array
    else:
        half = max(12, int(np.ceil(4.0 * band.fwhm / pixel_scale)))
        if band.psf == "moffat":
            half = max(half, int(np.ceil(6.0 * band.fwhm / pixel_scale)))
        out = galsim.ImageD(2 * half + 1, 2 * half + 1, scale=pixel_scale)
        psf_object(band, pixel_scale).drawImage(image=out, method="no_pixel")
        img = out.array
    img = np.clip(img, 0.0, None)
    return (img / img.sum()).astype(np.float32)
