"""Simulated multi-band scenes with a complete truth: catalog, segmentation and class maps."""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import galsim
import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Column, Table
from astropy.wcs import WCS
from scipy import ndimage

from ..exceptions import ParameterError
from ..io.write import write_catalog, write_fits_image, write_segmap
from ._checks import check_fraction, check_positive, check_range, check_seed, check_shape
from .bands import GSPARAMS, Band, default_bands, psf_image, psf_object
from .sources import (
    CLASS_NAMES,
    DEFAULT_CLASS_FRACTIONS,
    EMISSION_KINDS,
    SourceModel,
    draw_population,
    make_source,
)

__all__ = ["Scene", "class_probabilities", "simulate_scene", "tan_wcs"]

#: Default number of sources per square arcminute when neither ``n_sources`` nor
#: ``density`` is given (a deep JWST field has a few hundred detections per arcmin^2).
DEFAULT_DENSITY = 400.0
#: Centre of the default WCS (GOODS-South / HUDF area).
DEFAULT_CRVAL = (53.16, -27.78)
#: Extent of the PSF wings kept around every source, in PSF FWHM.
PSF_REACH = 6.0
#: Smallest FWHM (pixels) of an analytic effective PSF: below it, sampling at pixel
#: centres no longer conserves flux to better than 0.2 %.
MIN_FWHM_PIX = 1.5


@dataclass
class Scene:
    """A simulated multi-band image with its truth.

    Attributes
    ----------
    images : dict of str to numpy.ndarray
        Noisy, background-subtracted (zero-mean sky) float32 images, one per band.
    rms : dict of str to numpy.ndarray
        Per-pixel noise standard deviation (float32): ``sqrt(sky_rms**2 + model/gain)``
        where ``model`` is the noiseless image (clipped at 0) -- the exact standard
        deviation of the noise that was added. Without a gain it is the constant sky rms.
    psfs : dict of str to numpy.ndarray
        Effective PSF of every band on the scene grid: odd size, centred, unit sum.
    noiseless : dict of str to numpy.ndarray
        The PSF-convolved sources without noise (float32).
    truth : astropy.table.Table
        One row per source (``id`` = 1..N); see :func:`simulate_scene` for the columns.
    segmap : numpy.ndarray
        Truth segmentation (int32, 0 = background, labels = truth ``id``).
    classmap : numpy.ndarray
        Truth class of every pixel (uint8 class ids, 0 = background).
    bands : list of Band
        The bands, in order.
    pixel_scale : float
        Arcsec per pixel.
    seed : int
        Seed the scene was made with.
    wcs : astropy.wcs.WCS
        Celestial TAN WCS of the pixel grid (north up, east left).
    """

    images: dict[str, np.ndarray]
    rms: dict[str, np.ndarray]
    psfs: dict[str, np.ndarray]
    noiseless: dict[str, np.ndarray]
    truth: Table
    segmap: np.ndarray
    classmap: np.ndarray
    bands: list[Band]
    pixel_scale: float
    seed: int
    wcs: WCS

    @property
    def band_names(self) -> list[str]:
        """Names of the bands, in order."""
        return [b.name for b in self.bands]

    @property
    def detection_band(self) -> str:
        """Name of the first broad band (the first band if all are medium)."""
        return _detection_band(self.bands).name

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape ``(ny, nx)``."""
        return tuple(self.segmap.shape)  # type: ignore[return-value]

    def write(self, directory: str | os.PathLike) -> dict[str, Path]:
        """Write the scene as FITS images and an ECSV truth catalog, atomically.

        Files: ``<band>_sci.fits``, ``<band>_rms.fits``, ``<band>_psf.fits`` for every band
        (images carry the WCS; all carry ``BUNIT``, ``PIXSCALE`` and ``FILTER``),
        ``truth.ecsv``, ``truth_segmap.fits`` and ``truth_classmap.fits``.

        Parameters
        ----------
        directory : str or path-like
            Output folder (created if missing). Existing files are replaced.

        Returns
        -------
        paths : dict of str to pathlib.Path
            Keys ``"<band>_sci"``, ``"<band>_rms"``, ``"<band>_psf"``, ``"truth"``,
            ``"segmap"``, ``"classmap"``.

        Examples
        --------
        >>> import tempfile
        >>> from morphoscope.simulate import simulate_scene
        >>> scene = simulate_scene((64, 64), n_sources=2, seed=3)
        >>> paths = scene.write(tempfile.mkdtemp())
        >>> sorted(paths)[:3]
        ['F200W_psf', 'F200W_rms', 'F200W_sci']
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for band in self.bands:
            name = band.name
            hdr = fits.Header()
            hdr["FILTER"] = (name, "filter name")
            hdr["PIXSCALE"] = (self.pixel_scale, "arcsec / pixel")
            hdr["SKYRMS"] = (band.sky_rms, "background noise sigma per pixel")
            if band.gain is not None:
                hdr["GAIN"] = (band.gain, "electrons per image unit")
            hdr["SIMSEED"] = (self.seed, "morphoscope.simulate seed")
            sci, rms, psf = hdr.copy(), hdr.copy(), hdr.copy()
            sci["BUNIT"] = ("adu", "sky-subtracted simulated flux")
            rms["BUNIT"] = ("adu", "1-sigma noise per pixel")
            psf["BUNIT"] = ("", "normalised to unit sum")
            paths[f"{name}_sci"] = write_fits_image(
                out / f"{name}_sci.fits", self.images[name], wcs=self.wcs, header=sci,
                extname="SCI",
            )  # fmt: skip
            paths[f"{name}_rms"] = write_fits_image(
                out / f"{name}_rms.fits", self.rms[name], wcs=self.wcs, header=rms, extname="ERR"
            )
            paths[f"{name}_psf"] = write_fits_image(
                out / f"{name}_psf.fits", self.psfs[name], header=psf, extname="PSF"
            )
        paths["truth"] = write_catalog(out / "truth.ecsv", self.truth)
        paths["segmap"] = write_segmap(out / "truth_segmap.fits", self.segmap, wcs=self.wcs)
        chdr = fits.Header()
        chdr["BUNIT"] = ("class", "class id")
        for i, cname in enumerate(CLASS_NAMES):
            chdr[f"CLASS{i}"] = cname
        paths["classmap"] = write_fits_image(
            out / "truth_classmap.fits", self.classmap, wcs=self.wcs, header=chdr,
            extname="CLASSMAP",
        )  # fmt: skip
        return paths


def tan_wcs(
    shape: tuple[int, int], pixel_scale: float, crval: tuple[float, float] = DEFAULT_CRVAL
) -> WCS:
    """Gnomonic (TAN) WCS centred on ``crval`` (deg), north up and east left."""
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.crval = list(crval)
    w.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
    w.wcs.cd = np.array([[-pixel_scale / 3600.0, 0.0], [0.0, pixel_scale / 3600.0]])
    return w


def _detection_band(bands: Sequence[Band]) -> Band:
    for b in bands:
        if not b.medium:
            return b
    return bands[0]


def class_probabilities(class_fractions: object) -> np.ndarray:
    """Normalised probabilities of (spheroid, disk, irregular, point_source).

    ``class_fractions`` is None (defaults), a mapping from class name to a weight
    (missing classes get 0), or a sequence of four weights.
    """
    if class_fractions is None:
        weights = [DEFAULT_CLASS_FRACTIONS[c] for c in CLASS_NAMES[1:]]
    elif isinstance(class_fractions, Mapping):
        unknown = set(class_fractions) - set(CLASS_NAMES[1:])
        if unknown:
            raise ParameterError(
                "class_fractions",
                class_fractions,
                f"a mapping with keys among {CLASS_NAMES[1:]} (unknown: {sorted(unknown)})",
            )
        weights = [class_fractions.get(c, 0.0) for c in CLASS_NAMES[1:]]
    else:
        try:
            weights = list(class_fractions)  # type: ignore[call-overload]
        except TypeError:
            weights = []
        if len(weights) != 4:
            raise ParameterError(
                "class_fractions", class_fractions, "a mapping or a sequence of 4 weights"
            )
    try:
        w = np.array(weights, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError("class_fractions", class_fractions, "numeric weights") from None
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ParameterError(
            "class_fractions", class_fractions, "non-negative weights with a positive sum"
        )
    return w / w.sum()


def _check_bands(bands: object) -> list[Band]:
    if bands is None:
        return default_bands()
    if isinstance(bands, Band):
        bands = [bands]
    try:
        blist = list(bands)  # type: ignore[call-overload]
    except TypeError:
        blist = []
    if not blist or not all(isinstance(b, Band) for b in blist):
        raise ParameterError("bands", bands, "a non-empty list of Band objects")
    names = [b.name for b in blist]
    if len(set(names)) != len(names):
        raise ParameterError("bands", names, "bands with unique names")
    return blist


def simulate_scene(
    shape: tuple[int, int] = (512, 512),
    *,
    bands: Sequence[Band] | None = None,
    pixel_scale: float = 0.03,
    n_sources: int | None = None,
    density: float | None = None,
    class_fractions: Mapping[str, float] | Sequence[float] | None = None,
    blend_fraction: float = 0.1,
    emission_band: str | None = None,
    emission_fraction: float = 0.0,
    emission_kind: str = "mixed",
    truth_threshold: float = 1.0,
    flux_range: tuple[float, float] = (100.0, 50000.0),
    seed: int = 0,
    flux_slope: float = 2.0,
    r_e_range: tuple[float, float] = (1.5, 40.0),
    emission_strength: tuple[float, float] = (0.5, 2.0),
    crval: tuple[float, float] = DEFAULT_CRVAL,
    positions: np.ndarray | Sequence[Sequence[float]] | None = None,
) -> Scene:
    """Simulate a multi-band image of galaxies and stars with GalSim, with its truth.

    Sources (classes ``spheroid``, ``disk``, ``irregular``, ``point_source``; see
    :mod:`morphoscope.simulate.sources`) get a power-law flux distribution, log-normal
    sizes that grow with flux, random shapes and orientations, class-dependent colours,
    optional close pairs (blends) and optional extended line emission in one band.
    Each source is rendered with GalSim into its own bounded stamp (``method='no_pixel'``:
    the band PSF is the effective, pixel-convolved PSF), convolved with the band's PSF;
    then Gaussian background noise and Poisson source noise are added.

    Parameters
    ----------
    shape : (int, int)
        Image shape ``(ny, nx)`` in pixels.
    bands : list of Band, optional
        Bands to render (default :func:`default_bands`). All share the pixel grid.
        The first broad (non-medium) band is the detection/reference band: fluxes in
        ``flux_range``, colours and the truth segmentation refer to it.
    pixel_scale : float
        Arcsec per pixel.
    n_sources : int, optional
        Number of sources. Give at most one of ``n_sources`` and ``density``.
    density : float, optional
        Sources per square arcminute (default 400 when neither is given).
    class_fractions : mapping or sequence of 4 floats, optional
        Relative weights of spheroid, disk, irregular, point_source (default
        0.25, 0.4, 0.2, 0.15); a mapping may omit classes (weight 0).
    blend_fraction : float
        Fraction of the galaxies placed 1-3 half-light radii from another galaxy.
    emission_band : str, optional
        Band holding the extended line emission. Default: the first medium band when
        ``emission_fraction > 0``.
    emission_fraction : float
        Fraction of the galaxies with extended line emission.
    emission_kind : {"mixed", "halo", "cone"}
        Geometry of the line emission: an exponential halo 2-4 times larger than the
        galaxy, a bi-conical outflow (two elongated lobes on opposite sides, 1.5-3
        half-light radii from the centre along a random axis), or either at random.
    truth_threshold : float
        A pixel belongs to a source's truth footprint where its noiseless model in the
        detection band exceeds ``truth_threshold * sky_rms``.
    flux_range : (float, float)
        Range of the total fluxes in the detection band (image units).
    seed : int
        Random seed; the same seed gives bit-identical arrays.
    flux_slope : float
        Slope ``a`` of the flux distribution ``dN/dF ~ F**-a`` (default 2: many faint).
    r_e_range : (float, float)
        Limits of the half-light radii in pixels (also limited to 1/8 of the image).
    emission_strength : (float, float)
        Range of the line flux as a fraction of the continuum flux in the emission band.
    crval : (float, float)
        RA, Dec (deg) of the image centre in the WCS.
    positions : array-like of shape (N, 2), optional
        Pixel positions ``(x, y)`` (0-based) where the sources are placed, instead of
        random ones; sets the number of sources (``n_sources`` must then be None or N,
        and ``blend_fraction`` is not applied).

    Returns
    -------
    scene : Scene
        Images, rms maps, PSFs, noiseless images, truth table, truth segmentation and
        class maps. Truth columns (units in brackets):

        - ``id``: 1..N, the labels of ``segmap``;
        - ``x``, ``y`` [pix]: 0-based centre of light of the continuum (before PSF);
        - ``ra``, ``dec`` [deg]: from the WCS;
        - ``class``, ``class_id``: class name and id (:data:`CLASS_NAMES`);
        - ``n``: Sérsic index of the single/dominant component (NaN for point sources);
        - ``bulge_fraction``: bulge-to-total flux in the detection band (1 for spheroids,
          0 for irregulars, NaN for point sources);
        - ``r_e`` [pix]: semi-major-axis half-light radius of the whole continuum light
          before PSF convolution (0 for point sources);
        - ``q``: axis ratio b/a; ``pa`` [rad]: position angle of the major axis,
          counter-clockwise from +x, in [0, pi);
        - ``flux_<band>``: total flux in every band (line emission included);
        - ``snr_<band>``: matched-filter S/N ``sqrt(sum(model**2) / sky_rms**2)`` of the
          noiseless PSF-convolved source within the image;
        - ``has_extended_emission``, ``emission_kind`` ("halo", "cone" or "none"),
          ``emission_flux`` (line flux in the emission band), ``emission_extent`` [pix]
          (radius of the circle about the centre holding half the line flux; NaN if none);
        - ``blended``: the truth footprint overlaps or touches another one;
        - ``segment_area`` [pix2]: pixels of the source in ``segmap`` (0 when it is below
          the threshold or hidden by brighter neighbours).

    Raises
    ------
    ParameterError
        For an invalid parameter.

    Notes
    -----
    Cost is dominated by one GalSim FFT draw per source and band: about
    ``n_sources * n_bands * 3-15 ms`` plus ``O(ny * nx * n_bands)`` for the noise.
    Memory is a few float arrays of the image size per band.

    Examples
    --------
    >>> from morphoscope.simulate import simulate_scene
    >>> scene = simulate_scene((128, 128), n_sources=5, seed=1)
    >>> scene.band_names, scene.detection_band
    (['F200W', 'F335M', 'F356W'], 'F200W')
    >>> len(scene.truth), scene.images["F200W"].dtype.name
    (5, 'float32')
    >>> set(scene.truth["id"]) >= set(int(v) for v in set(scene.segmap.ravel()) - {0})
    True
    """
    ny, nx = check_shape(shape)
    blist = _check_bands(bands)
    pixel_scale = check_positive("pixel_scale", pixel_scale)
    seed = check_seed(seed)
    blend_fraction = check_fraction("blend_fraction", blend_fraction)
    emission_fraction = check_fraction("emission_fraction", emission_fraction)
    truth_threshold = check_positive("truth_threshold", truth_threshold)
    flux_range = check_range("flux_range", flux_range)
    r_e_range = check_range("r_e_range", r_e_range)
    emission_strength = check_range("emission_strength", emission_strength)
    flux_slope = float(check_positive("flux_slope", flux_slope))
    probs = class_probabilities(class_fractions)
    for b in blist:
        if not isinstance(b.psf, np.ndarray) and b.fwhm_pixels(pixel_scale) < MIN_FWHM_PIX:
            raise ParameterError(
                "bands",
                f"{b.name} with fwhm={b.fwhm}",
                f"PSFs of FWHM >= {MIN_FWHM_PIX} pixels ({MIN_FWHM_PIX * pixel_scale:g} arcsec); "
                "the effective PSF includes the pixel response",
            )
    if emission_kind not in ("mixed", *EMISSION_KINDS):
        raise ParameterError("emission_kind", emission_kind, "'mixed', 'halo' or 'cone'")
    names = [b.name for b in blist]
    if emission_band is None and emission_fraction > 0:
        medium = [b.name for b in blist if b.medium]
        if not medium:
            raise ParameterError(
                "emission_band", None, f"one of {names} (no medium band to default to)"
            )
        emission_band = medium[0]
    if emission_band is not None and emission_band not in names:
        raise ParameterError("emission_band", emission_band, f"one of {names}")
    area = ny * nx * (pixel_scale / 60.0) ** 2
    pos = None
    if positions is not None:
        try:
            pos = np.array(positions, dtype=float).reshape(-1, 2)
        except (TypeError, ValueError):
            raise ParameterError("positions", positions, "an array of shape (N, 2)") from None
        if not np.all(np.isfinite(pos)):
            raise ParameterError("positions", positions, "finite (x, y) pairs")
        if n_sources is not None and n_sources != len(pos):
            raise ParameterError("n_sources", n_sources, f"None or {len(pos)} (len(positions))")
        n_sources = len(pos)
    if n_sources is not None and density is not None:
        raise ParameterError("n_sources", n_sources, "None when 'density' is given")
    if n_sources is not None:
        if (
            isinstance(n_sources, bool)
            or not isinstance(n_sources, numbers.Integral)
            or n_sources < 0
        ):
            raise ParameterError("n_sources", n_sources, "a non-negative integer or None")
        count = int(n_sources)
    else:
        density = DEFAULT_DENSITY if density is None else density
        density = check_positive("density", density)
        count = round(density * area)

    rng = np.random.default_rng(seed)
    det = _detection_band(blist)
    lam_ref = det.wavelength
    r_hi = min(r_e_range[1], min(ny, nx) / 8.0)
    r_lo = min(r_e_range[0], r_hi)
    pop = draw_population(rng, count, probs, flux_range, pixel_scale, (r_lo, r_hi), flux_slope)
    xs, ys = _positions(rng, pop, (ny, nx), 0.0 if pos is not None else blend_fraction)
    if pos is not None:
        xs, ys = pos[:, 0].copy(), pos[:, 1].copy()

    galaxies = np.flatnonzero(pop["class_id"] != 4)
    n_emit = round(emission_fraction * galaxies.size) if emission_band else 0
    emitters = set(rng.choice(galaxies, size=n_emit, replace=False).tolist()) if n_emit else set()
    em_ratio = (
        next(b for b in blist if b.name == emission_band).wavelength / lam_ref
        if emission_band
        else 1.0
    )
    sources: list[SourceModel] = []
    for i in range(count):
        kind = None
        if i in emitters:
            kind = emission_kind if emission_kind != "mixed" else EMISSION_KINDS[rng.integers(2)]
        src = make_source(
            rng, int(pop["class_id"][i]), float(pop["flux"][i]), float(pop["r_e"][i]),
            float(pop["q"][i]), float(pop["pa"][i]), float(xs[i]), float(ys[i]), pixel_scale,
            emission_kind=kind,
        )  # fmt: skip
        if kind is not None:
            src.emission_flux = rng.uniform(*emission_strength) * src.flux(em_ratio)
        sources.append(src)

    images: dict[str, np.ndarray] = {}
    noiseless: dict[str, np.ndarray] = {}
    rms_maps: dict[str, np.ndarray] = {}
    psfs: dict[str, np.ndarray] = {}
    fluxes: dict[str, np.ndarray] = {}
    snrs: dict[str, np.ndarray] = {}
    det_stamps: list[tuple[tuple[slice, slice], np.ndarray] | None] = []
    for band in blist:
        ratio = band.wavelength / lam_ref
        with_emission = band.name == emission_band
        model, stamps, snr = _render_band(
            sources, band, ratio, with_emission, (ny, nx), pixel_scale
        )
        noiseless[band.name] = model.astype(np.float32)
        psfs[band.name] = psf_image(band, pixel_scale)
        fluxes[band.name] = np.array(
            [
                s.flux(ratio) + (s.emission_flux if with_emission and s.emission else 0.0)
                for s in sources
            ]
        )
        snrs[band.name] = snr
        if band is det:
            det_stamps = stamps

    for band in blist:  # noise, after every random parameter draw (stable streams)
        model = noiseless[band.name].astype(np.float64)
        noise = rng.standard_normal((ny, nx)) * band.sky_rms
        var = np.full((ny, nx), band.sky_rms**2)
        if band.gain is not None:
            lam = np.clip(model, 0.0, None)
            noise += rng.poisson(lam * band.gain) / band.gain - lam
            var += lam / band.gain
        images[band.name] = (model + noise).astype(np.float32)
        rms_maps[band.name] = np.sqrt(var).astype(np.float32)

    segmap, blended, area_pix = _truth_segmap(det_stamps, (ny, nx), truth_threshold * det.sky_rms)
    class_ids = np.array([s.class_id for s in sources], dtype=np.uint8)
    lut = np.concatenate([[0], class_ids]).astype(np.uint8)
    classmap = lut[segmap]
    wcs = tan_wcs((ny, nx), pixel_scale, crval)
    truth = _truth_table(sources, blist, fluxes, snrs, blended, area_pix, wcs)
    return Scene(
        images=images,
        rms=rms_maps,
        psfs=psfs,
        noiseless=noiseless,
        truth=truth,
        segmap=segmap,
        classmap=classmap,
        bands=list(blist),
        pixel_scale=float(pixel_scale),
        seed=seed,
        wcs=wcs,
    )


def _positions(
    rng: np.random.Generator,
    pop: dict[str, np.ndarray],
    shape: tuple[int, int],
    blend_fraction: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform positions; a fraction of galaxies moved next to another galaxy."""
    ny, nx = shape
    count = pop["flux"].size
    margin = min(4.0, 0.1 * min(ny, nx))
    xs = rng.uniform(margin, nx - 1 - margin, count)
    ys = rng.uniform(margin, ny - 1 - margin, count)
    galaxies = np.flatnonzero(pop["class_id"] != 4)
    n_blend = min(round(blend_fraction * galaxies.size), galaxies.size // 2)
    if n_blend:
        movers = rng.choice(galaxies, size=n_blend, replace=False)
        anchors = np.setdiff1d(galaxies, movers)
        partners = rng.choice(anchors, size=n_blend)
        for m, p in zip(movers, partners, strict=True):
            sep = rng.uniform(1.0, 3.0) * max(pop["r_e"][m], pop["r_e"][p], 2.0)
            ang = rng.uniform(0, 2 * np.pi)
            xs[m] = np.clip(xs[p] + sep * np.cos(ang), margin, nx - 1 - margin)
            ys[m] = np.clip(ys[p] + sep * np.sin(ang), margin, ny - 1 - margin)
    return xs, ys


def _render_band(
    sources: list[SourceModel],
    band: Band,
    ratio: float,
    with_emission: bool,
    shape: tuple[int, int],
    pixel_scale: float,
) -> tuple[np.ndarray, list, np.ndarray]:
    """Draw every source of one band into its own stamp and add it to the image."""
    ny, nx = shape
    psf = psf_object(band, pixel_scale)
    reach = PSF_REACH * band.fwhm_pixels(pixel_scale) + 2.0
    if isinstance(band.psf, np.ndarray):
        reach = max(reach, max(band.psf.shape) / 2.0)
    model = np.zeros(shape, dtype=np.float64)
    stamps: list[tuple[tuple[slice, slice], np.ndarray] | None] = []
    snr = np.zeros(len(sources))
    full = galsim.BoundsI(1, nx, 1, ny)
    for k, src in enumerate(sources):
        line = with_emission and src.emission is not None and src.emission_flux > 0
        hx, hy = src.emission_half_width if line else src.half_width
        ix, iy = round(src.x0), round(src.y0)
        wx, wy = int(np.ceil(hx + reach)), int(np.ceil(hy + reach))
        bounds = galsim.BoundsI(ix - wx + 1, ix + wx + 1, iy - wy + 1, iy + wy + 1) & full
        if not bounds.isDefined():
            stamps.append(None)
            continue
        if src.class_id == 4:
            obj = psf * src.flux(ratio)
        else:
            obj = galsim.Convolve(
                src.profile(ratio, emission=with_emission), psf, gsparams=GSPARAMS
            )
        stamp = galsim.ImageD(bounds, scale=pixel_scale)
        obj.drawImage(
            image=stamp, method="no_pixel", center=galsim.PositionD(src.x0 + 1, src.y0 + 1)
        )
        arr = stamp.array
        sl = (slice(bounds.ymin - 1, bounds.ymax), slice(bounds.xmin - 1, bounds.xmax))
        model[sl] += arr
        snr[k] = np.sqrt(np.sum(arr * arr)) / band.sky_rms
        stamps.append((sl, arr))
    return model, stamps, snr


def _truth_segmap(
    stamps: list, shape: tuple[int, int], threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label every pixel with the source contributing most flux, where that exceeds threshold."""
    best = np.full(shape, threshold, dtype=np.float64)
    seg = np.zeros(shape, dtype=np.int32)
    cover = np.zeros(shape, dtype=np.int32)
    for k, item in enumerate(stamps):
        if item is None:
            continue
        sl, arr = item
        fp = arr > threshold
        cover[sl] += fp
        win = arr > best[sl]
        seg[sl][win] = k + 1
        best[sl][win] = arr[win]
    blended = np.zeros(len(stamps), dtype=bool)
    struct = np.ones((3, 3), dtype=bool)
    for k, item in enumerate(stamps):
        if item is None:
            continue
        sl, arr = item
        fp = arr > threshold
        if not fp.any():
            continue
        grown = ndimage.binary_dilation(fp, structure=struct)
        others = cover[sl] - fp
        blended[k] = bool(np.any(others[grown] > 0))
    area = np.bincount(seg.ravel(), minlength=len(stamps) + 1)[1:]
    return seg, blended, area


def _truth_table(
    sources: list[SourceModel],
    bands: list[Band],
    fluxes: dict[str, np.ndarray],
    snrs: dict[str, np.ndarray],
    blended: np.ndarray,
    area: np.ndarray,
    wcs: WCS,
) -> Table:
    count = len(sources)
    x = np.array([s.x0 + s.dx for s in sources], dtype=float)
    y = np.array([s.y0 + s.dy for s in sources], dtype=float)
    if count:
        ra, dec = wcs.wcs_pix2world(x, y, 0)
    else:
        ra = dec = np.zeros(0)
    t = Table()
    t["id"] = np.arange(1, count + 1, dtype=np.int32)
    t["x"] = x * u.pix
    t["y"] = y * u.pix
    t["ra"] = np.asarray(ra, dtype=float) * u.deg
    t["dec"] = np.asarray(dec, dtype=float) * u.deg
    t["class"] = np.array([s.class_name for s in sources], dtype="U12")
    t["class_id"] = np.array([s.class_id for s in sources], dtype=np.int16)
    t["n"] = np.array([s.n for s in sources], dtype=float)
    t["bulge_fraction"] = np.array([s.bulge_fraction for s in sources], dtype=float)
    t["r_e"] = np.array([s.r_e for s in sources], dtype=float) * u.pix
    t["q"] = np.array([s.q for s in sources], dtype=float)
    t["pa"] = np.array([s.pa for s in sources], dtype=float) * u.rad
    for b in bands:
        t[f"flux_{b.name}"] = fluxes[b.name]
    for b in bands:
        t[f"snr_{b.name}"] = snrs[b.name]
    t["has_extended_emission"] = np.array([s.emission is not None for s in sources], dtype=bool)
    t["emission_kind"] = np.array([s.emission_kind for s in sources], dtype="U8")
    t["emission_flux"] = np.array([s.emission_flux for s in sources], dtype=float)
    t["emission_extent"] = np.array([s.emission_extent for s in sources], dtype=float) * u.pix
    t["blended"] = np.asarray(blended, dtype=bool)
    t["segment_area"] = Column(np.asarray(area, dtype=np.int64), unit=u.pix**2)
    t.meta["class_names"] = list(CLASS_NAMES)
    t.meta["detection_band"] = _detection_band(bands).name
    return t
