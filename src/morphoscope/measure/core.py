"""``measure``: one catalog row per segment."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor

import astropy.units as u
import numpy as np
from astropy.table import Table
from scipy import ndimage

from ..exceptions import InputError, MorphoscopeWarning, ParameterError
from ..flags import Flag
from ..io.validate import as_image, as_mask, as_psf, as_rms
from ..resources import (
    MEASURE_BYTES_PER_PIXEL,
    MEASURE_BYTES_PER_SEGMENT_PIXEL,
    check_memory,
    n_pixels,
)
from .asymmetry import rotational_asymmetry
from .light import gini, growth_radii, m20
from .moments import centroids, shape_from_moments
from .pixels import group_pixels

__all__ = [
    "COLUMNS",
    "DOUBLESERSIC_COLUMNS",
    "NONPARAMETRIC_COLUMNS",
    "SERSIC_COLUMNS",
    "measure",
    "measure_stamps",
    "validate_segmap",
]

#: Columns of the catalog, with their units and meaning.
COLUMNS: dict[str, tuple[u.UnitBase | None, str]] = {
    "label": (None, "segment label"),
    "xc_centroid": (u.pix, "flux-weighted centroid, x (column), 0-based"),
    "yc_centroid": (u.pix, "flux-weighted centroid, y (row), 0-based"),
    "flux": (None, "sum of the segment's pixels (image units)"),
    "flux_err": (None, "1-sigma error of flux from the rms map"),
    "area": (u.pix**2, "number of segment pixels"),
    "max_value": (None, "brightest pixel"),
    "sn_per_pixel": (None, "mean of flux / rms over the segment's pixels"),
    "ellipticity_centroid": (None, "1 - b/a of the second-moment ellipse"),
    "elongation_centroid": (None, "a/b of the second-moment ellipse"),
    "orientation_centroid": (u.rad, "position angle of the major axis, CCW from +x"),
    "semimajor_sigma": (u.pix, "rms size along the major axis"),
    "semiminor_sigma": (u.pix, "rms size along the minor axis"),
    "r20": (u.pix, "radius enclosing 20% of the positive segment flux"),
    "r50": (u.pix, "radius enclosing 50% of the positive segment flux"),
    "r80": (u.pix, "radius enclosing 80% of the positive segment flux"),
    "rhalf_circ": (u.pix, "half-light radius (= r50 in this version)"),
    "concentration": (None, "5 log10(r80 / r20)"),
    "gini": (None, "Gini coefficient of the segment's pixels"),
    "m20": (None, "second moment of the brightest 20% of the flux"),
    "asymmetry": (None, "rotational asymmetry about the centroid, noise-corrected"),
    "flag": (None, "morphoscope.flags.Flag bits"),
}

#: Columns added by the statmorph set (``nonparametric=True``), which also redefines
#: ``xc_centroid`` ... ``asymmetry`` above as statmorph does (see docs/measure.md).
NONPARAMETRIC_COLUMNS: dict[str, tuple[u.UnitBase | None, str]] = {
    "xc_asymmetry": (u.pix, "x of the point that minimises the asymmetry"),
    "yc_asymmetry": (u.pix, "y of the point that minimises the asymmetry"),
    "ellipticity_asymmetry": (None, "1 - b/a of the second moments about the asymmetry centre"),
    "elongation_asymmetry": (None, "a/b of the second moments about the asymmetry centre"),
    "orientation_asymmetry": (u.rad, "major-axis angle about the asymmetry centre, CCW from +x"),
    "flux_circ": (None, "flux within 2 rpetro_circ"),
    "flux_ellip": (None, "flux within 2 rpetro_ellip"),
    "rpetro_circ": (u.pix, "circular Petrosian radius (eta = 0.2)"),
    "rpetro_ellip": (u.pix, "elliptical Petrosian semi-major axis"),
    "rmax_circ": (u.pix, "distance to the farthest pixel of the shape-asymmetry segmap"),
    "rmax_ellip": (u.pix, "semi-major axis of the ellipse holding that segmap"),
    "rhalf_ellip": (u.pix, "semi-major axis holding half the flux within rmax_ellip"),
    "gini_m20_bulge": (None, "F(G, M20) = -0.693 M20 + 4.95 G - 3.96"),
    "gini_m20_merger": (None, "S(G, M20) = 0.139 M20 + 0.990 G - 0.327"),
    "smoothness": (None, "smoothness (clumpiness) S, background-corrected"),
    "multimode": (None, "multimode statistic M (Freeman et al. 2013)"),
    "intensity": (None, "intensity statistic I"),
    "deviation": (None, "deviation statistic D"),
    "rms_asymmetry2": (None, "square of the rms asymmetry (Sazonova et al. 2024)"),
    "outer_asymmetry": (None, "asymmetry between rhalf_ellip and rmax_ellip"),
    "shape_asymmetry": (None, "asymmetry of the binary shape-asymmetry segmap"),
    "sky_mean": (None, "mean of the sky box"),
    "sky_median": (None, "median of the sky box"),
    "sky_sigma": (None, "standard deviation of the sky box"),
    "flag_statmorph": (None, "statmorph's flag: 0 good, 1 suspect, 2 bad, 4 catastrophic"),
}

#: Columns of the single-Sersic fit (``sersic=True``).
SERSIC_COLUMNS: dict[str, tuple[u.UnitBase | None, str]] = {}
for _name, _unit, _desc in (
    ("amplitude", None, "surface brightness at the effective radius"),
    ("rhalf", u.pix, "effective (half-light) semi-major axis"),
    ("n", None, "Sersic index"),
    ("xc", u.pix, "x of the centre"),
    ("yc", u.pix, "y of the centre"),
    ("ellip", None, "ellipticity 1 - b/a"),
    ("theta", u.rad, "major-axis angle, CCW from +x, in [0, pi)"),
):
    SERSIC_COLUMNS[f"sersic_{_name}"] = (_unit, f"single Sersic fit: {_desc}")
    SERSIC_COLUMNS[f"sersic_{_name}_err"] = (_unit, f"1-sigma uncertainty of sersic_{_name}")
SERSIC_COLUMNS["sersic_chi2_dof"] = (None, "reduced chi^2 of the Sersic fit")
SERSIC_COLUMNS["sersic_aic"] = (None, "Akaike information criterion of the Sersic fit")
SERSIC_COLUMNS["sersic_bic"] = (None, "Bayesian information criterion of the Sersic fit")
SERSIC_COLUMNS["flag_sersic"] = (None, "0 good, 1 n at its limit, 2 failed or suspect, 4 not run")

#: Columns of the double-Sersic fit (``doublesersic=True``), statmorph's names.
DOUBLESERSIC_COLUMNS: dict[str, tuple[u.UnitBase | None, str]] = {}
for _name, _unit, _desc in (
    ("xc", u.pix, "x of the shared centre"),
    ("yc", u.pix, "y of the shared centre"),
    ("amplitude1", None, "first component: surface brightness at its effective radius"),
    ("rhalf1", u.pix, "first component: effective (half-light) semi-major axis"),
    ("n1", None, "first component: Sersic index"),
    ("ellip1", None, "first component: ellipticity 1 - b/a"),
    ("theta1", u.rad, "first component: major-axis angle, CCW from +x, in [0, pi)"),
    ("amplitude2", None, "second component: surface brightness at its effective radius"),
    ("rhalf2", u.pix, "second component: effective (half-light) semi-major axis"),
    ("n2", None, "second component: Sersic index"),
    ("ellip2", None, "second component: ellipticity 1 - b/a"),
    ("theta2", u.rad, "second component: major-axis angle, CCW from +x, in [0, pi)"),
):
    DOUBLESERSIC_COLUMNS[f"doublesersic_{_name}"] = (_unit, f"double Sersic fit: {_desc}")
    DOUBLESERSIC_COLUMNS[f"doublesersic_{_name}_err"] = (
        _unit,
        f"1-sigma uncertainty of doublesersic_{_name}",
    )
DOUBLESERSIC_COLUMNS["doublesersic_chi2_dof"] = (None, "reduced chi^2 of the double Sersic fit")
DOUBLESERSIC_COLUMNS["doublesersic_aic"] = (None, "Akaike information criterion, double fit")
DOUBLESERSIC_COLUMNS["doublesersic_bic"] = (None, "Bayesian information criterion, double fit")
DOUBLESERSIC_COLUMNS["flag_doublesersic"] = (
    None,
    "0 good, 1 an n at its limit, 2 failed or suspect, 4 not run",
)


def validate_segmap(segmap, shape: tuple[int, int], name: str = "segmap") -> np.ndarray:
    """Check a segmentation map: 2-D, integer-valued, non-negative, image-shaped.

    Returns a native int64 copy.
    """
    arr = np.asarray(segmap)
    if arr.dtype.kind not in "biuf":
        raise InputError(name, f"expected an integer label image, got dtype {arr.dtype}")
    if arr.shape != tuple(shape):
        raise InputError(name, f"shape {arr.shape} does not match the image shape {tuple(shape)}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise InputError(name, "labels must be whole numbers (found fractions, NaN or inf)")
    out = arr.astype(np.int64)
    if out.size and out.min() < 0:
        raise InputError(name, f"labels must be >= 0 (found {int(out.min())})")
    return out


def _measure_core(
    image,
    segmap,
    *,
    rms,
    gain,
    psf,
    mask,
    labels,
    nonparametric,
    sersic,
    asymmetry,
    n_sigma_outlier,
    n_jobs,
    defer_sersic=False,
    device=None,
    doublesersic=False,
    doublesersic_tied_ellip=False,
):
    """Everything of :func:`measure` but the Table: (values, columns, deferred Sersic inputs)."""
    check_memory(MEASURE_BYTES_PER_PIXEL * n_pixels(image), "measure", "image")
    data, bad = as_image(image, "image")
    seg = validate_segmap(segmap, data.shape)
    n_seg = int(np.count_nonzero(seg))
    check_memory(MEASURE_BYTES_PER_SEGMENT_PIXEL * n_seg + seg.nbytes * 20, "measure", "segmap")
    if mask is not None:
        bad |= as_mask(mask, data.shape, "mask")
    rms_map = None
    if rms is not None:
        rms_map, rbad = as_rms(rms, data.shape, "rms")
        bad |= rbad
    if gain is not None and not (np.isfinite(gain) and gain > 0):
        raise ParameterError("gain", gain, "a positive number")
    psf_arr = None
    if psf is not None and sersic:
        psf_arr = np.asarray(as_psf(psf, "psf"), float)
    if not isinstance(n_jobs, int | np.integer):
        raise ParameterError("n_jobs", n_jobs, "an integer (-1 or 0: all cores)")
    if sersic:
        _check_device(device)
    if doublesersic and not (sersic and nonparametric):
        raise ParameterError(
            "doublesersic", doublesersic, "False unless sersic and nonparametric are True"
        )
    data[bad] = 0.0
    if labels is None:
        lab = np.unique(seg[seg > 0])
    else:
        try:
            lab = np.asarray(labels, dtype=np.int64).ravel()
        except (TypeError, ValueError, OverflowError):
            raise InputError("labels", f"expected a sequence of integers, got {labels!r}") from None
        if lab.size and lab.min() <= 0:
            raise InputError("labels", "labels must be positive integers")
    n = lab.size
    groups = group_pixels(data, seg, lab, rms=rms_map, bad=bad)

    flags = np.zeros(n, np.int64)
    area = groups.count.astype(float)
    flux = groups.sum(groups.flux)
    nbad = groups.sum(groups.bad.astype(float))
    flags[nbad > 0] |= int(Flag.MASKED_PIXELS)
    if bad.any() and n:
        # A bad pixel next to a footprint (a hole cut at NaN pixels) hides flux as well.
        near_bad = ndimage.maximum_filter(bad.view(np.uint8), size=3).view(bool)
        touched = np.unique(seg[near_bad & (seg > 0)])
        flags[np.isin(lab, touched)] |= int(Flag.MASKED_PIXELS)
    flags[area < 7] |= int(Flag.SMALL)
    flags[~(flux > 0)] |= int(Flag.NONPOSITIVE_FLUX)
    ny, nx = data.shape
    on_edge = (groups.x == 0) | (groups.y == 0) | (groups.x == nx - 1) | (groups.y == ny - 1)
    flags[groups.sum(on_edge.astype(float)) > 0] |= int(Flag.EDGE)

    xc, yc, _ = centroids(groups)
    with np.errstate(invalid="ignore"):
        xi = np.round(xc)
        yi = np.round(yc)
    inside = np.zeros(n, bool)
    ok = np.isfinite(xi) & np.isfinite(yi)
    inside[ok] = seg[yi[ok].astype(int), xi[ok].astype(int)] == lab[ok]
    flags[ok & ~inside] |= int(Flag.CENTROID_OUTSIDE)

    shape = shape_from_moments(groups, xc, yc)
    if nonparametric:  # the statmorph set replaces the light-profile columns below
        r20 = r50 = r80 = conc = g = m = np.full(n, np.nan)
    else:
        r20, r50, r80 = growth_radii(groups, xc, yc)
        with np.errstate(invalid="ignore", divide="ignore"):
            conc = 5.0 * np.log10(r80 / r20)
        g, m = gini(groups), m20(groups, xc, yc)
    max_value = np.full(n, np.nan)
    if groups.flux.size:
        mx = np.full(n, -np.inf)
        np.maximum.at(mx, groups.index, groups.flux)
        max_value = np.where(groups.count > 0, mx, np.nan)

    if rms_map is not None:
        var = np.where(groups.bad, 0.0, groups.var)
        flux_err = np.sqrt(groups.sum(var))
        with np.errstate(invalid="ignore", divide="ignore"):
            snpix = groups.sum(np.where(groups.bad, 0.0, groups.flux / np.sqrt(groups.var)))
            snpix = snpix / np.maximum(area - nbad, 1)
        flags[snpix < 1.0] |= int(Flag.LOW_SN)
    else:
        flux_err = np.full(n, np.nan)
        snpix = np.full(n, np.nan)

    asym = np.full(n, np.nan)
    if asymmetry and n and not nonparametric:
        boxes = ndimage.find_objects(seg, max_label=int(lab.max(initial=0)))
        for i in range(n):
            if groups.count[i] < 3 or not flux[i] > 0:
                continue
            try:
                asym[i] = rotational_asymmetry(
                    data, seg, int(lab[i]), xc[i], yc[i], rms_map, bbox=boxes[int(lab[i]) - 1]
                )
            except Exception as exc:  # pragma: no cover - defensive
                flags[i] |= int(Flag.MEASURE_FAILED)
                warnings.warn(
                    f"label {lab[i]}: asymmetry failed ({exc})", MorphoscopeWarning, stacklevel=3
                )

    empty = groups.count == 0
    values = {
        "label": lab,
        "xc_centroid": xc,
        "yc_centroid": yc,
        "flux": np.where(empty, np.nan, flux),
        "flux_err": flux_err,
        "area": area,
        "max_value": max_value,
        "sn_per_pixel": snpix,
        "ellipticity_centroid": shape["ellipticity"],
        "elongation_centroid": shape["elongation"],
        "orientation_centroid": shape["orientation"],
        "semimajor_sigma": shape["a"],
        "semiminor_sigma": shape["b"],
        "r20": r20,
        "r50": r50,
        "r80": r80,
        "rhalf_circ": r50,
        "concentration": conc,
        "gini": g,
        "m20": m,
        "asymmetry": asym,
        "flag": flags,
    }
    # Sources with too few pixels: shape statistics are not meaningful.
    small = area < 3
    for key in (
        "ellipticity_centroid",
        "elongation_centroid",
        "orientation_centroid",
        "concentration",
        "gini",
        "m20",
        "r20",
        "r50",
        "r80",
        "rhalf_circ",
    ):
        values[key] = np.where(small, np.nan, values[key]).astype(float)
    columns = dict(COLUMNS)
    pending = None
    if nonparametric:
        pending = _add_statmorph_set(
            values,
            flags,
            data,
            seg,
            lab,
            bad,
            rms_map,
            gain,
            psf_arr,
            sersic,
            n_sigma_outlier,
            int(n_jobs),
            defer_sersic,
            device,
            doublesersic,
            doublesersic_tied_ellip,
        )
        columns.update(NONPARAMETRIC_COLUMNS)
        if sersic:
            columns.update(SERSIC_COLUMNS)
        if doublesersic:
            columns.update(DOUBLESERSIC_COLUMNS)
    return values, columns, pending


def _to_table(values, columns, nonparametric) -> Table:
    table = Table()
    for name, (unit, desc) in columns.items():
        col = values[name]
        table[name] = col
        if unit is not None:
            table[name].unit = unit
        table[name].description = desc
    table.meta["morphoscope_measure"] = (
        "v2: statmorph 0.7 non-parametric set + PSF-convolved Sersic fit"
        if nonparametric
        else "v1: moments, growth radii, Gini, M20, C, A"
    )
    return table


def measure(
    image,
    segmap,
    *,
    rms=None,
    gain: float | None = None,
    psf=None,
    mask=None,
    labels=None,
    nonparametric: bool = True,
    sersic: bool = True,
    asymmetry: bool = True,
    n_sigma_outlier: float = 10.0,
    n_jobs: int = 1,
    device: str | None = None,
    doublesersic: bool = False,
    doublesersic_tied_ellip: bool = False,
) -> Table:
    """Measure every source of a segmentation map; return one catalog row per label.

    Parameters
    ----------
    image : array_like or mapping of str to array_like
        Background-subtracted 2-D image (never modified). NaN/inf pixels are excluded
        and flag their source with ``MASKED_PIXELS``. Several bands (a mapping of band name
        to image, bluest first): the first band is measured in full and every band gives
        per-band columns and colours, as :func:`~morphoscope.measure.bands.measure_bands`
        with its defaults (``rms``, ``psf`` and ``mask`` may then be mappings too).
    segmap : array_like of int
        Segmentation map (0 = background), same shape.
    rms : array_like or float, optional
        1-sigma noise per pixel (statmorph's ``weightmap``); gives ``flux_err`` and
        ``sn_per_pixel`` and the weights of the Sersic fit.
    gain : float, optional
        Electrons per image unit; without ``rms`` the noise is built from it and the sky
        noise as statmorph does, ``sqrt(|image| / gain + sky_sigma**2)``.
    psf : array_like, optional
        PSF image (odd size, centred) convolved with the Sersic model.
    mask : array_like of bool, optional
        True = ignore this pixel.
    labels : sequence of int, optional
        Labels to measure, in this order (default: every label present, ascending).
        Labels absent from the map give rows of NaN with the ``SMALL`` flag.
    nonparametric : bool
        Compute statmorph's non-parametric set (:data:`NONPARAMETRIC_COLUMNS`) and use its
        definitions for the shared columns. False gives the fast vectorised first-order
        columns only (:data:`COLUMNS`, about 1 microsecond per pixel).
    sersic : bool
        Fit a PSF-convolved single Sersic profile (:data:`SERSIC_COLUMNS`); needs
        ``nonparametric`` for its starting point.
    asymmetry : bool
        With ``nonparametric=False``: compute the rotational asymmetry about the centroid.
    n_sigma_outlier : float
        Outlier rejection of statmorph (pixels this many sigma from their neighbours' mean
        are masked); <= 0 disables it.
    n_jobs : int
        Processes for the per-source statmorph set and threads for the batched Sersic fits
        (-1 or 0: all cores).
    device : str, optional
        PyTorch device for the batched Sersic fits (``"cuda"``; see
        :func:`~morphoscope.measure.sersic.fit_sersic_batch`). None (default): numpy and
        scipy on the CPU.
    doublesersic : bool
        Also fit two PSF-convolved Sersic components sharing one centre
        (:data:`DOUBLESERSIC_COLUMNS`, statmorph's ``include_doublesersic=True``); needs
        ``sersic``.
    doublesersic_tied_ellip : bool
        Give the two components one ellipticity and angle (statmorph's option of this name).

    Returns
    -------
    astropy.table.Table
        Columns named as statmorph where the quantity is the same. ``flag`` holds
        :class:`~morphoscope.flags.Flag` bits; ``flag_statmorph`` and ``flag_sersic`` use
        statmorph's scale (0 good, 1 suspect, 2 bad, 4 not measured).

    Warns
    -----
    MorphoscopeWarning
        One warning per call naming the sources whose measurement is bad
        (``flag_statmorph >= 2``) and why.

    Notes
    -----
    The first-order columns are vector operations over all sources (O(P log P) for P
    segment pixels). The statmorph set is a loop over sources on postage stamps of 2.5 times
    the segment's bounding box; see docs/measure.md for each definition. The Sersic fits of
    all sources are batched (:func:`morphoscope.measure.sersic.fit_sersic_batch`).
    Per-source problems set flags and NaN values, they never raise. Peak memory: at most
    160 bytes per image pixel + 160 per segment pixel + 64 MiB; an InputError is raised
    before allocating more than is available (:mod:`morphoscope.resources`).

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[:64, :64]
    >>> img = 100 * np.exp(-((x - 30.0) ** 2 + (y - 20.0) ** 2) / (2 * 3.0**2))
    >>> seg = (img > 1).astype(int)
    >>> cat = measure(img, seg, rms=1.0, nonparametric=False)
    >>> round(float(cat["xc_centroid"][0]), 2), round(float(cat["yc_centroid"][0]), 2)
    (30.0, 20.0)
    """
    opts = dict(
        rms=rms,
        gain=gain,
        psf=psf,
        mask=mask,
        labels=labels,
        nonparametric=nonparametric,
        sersic=sersic,
        asymmetry=asymmetry,
        n_sigma_outlier=n_sigma_outlier,
        n_jobs=n_jobs,
        device=device,
        doublesersic=doublesersic,
        doublesersic_tied_ellip=doublesersic_tied_ellip,
    )
    if isinstance(image, Mapping):
        from .bands import measure_bands

        return measure_bands(image, segmap, **opts)
    values, columns, _ = _measure_core(image, segmap, **opts)
    return _to_table(values, columns, nonparametric)


#: Columns of the first-order set that the statmorph set redefines.
_OVERRIDDEN = (
    "xc_centroid",
    "yc_centroid",
    "ellipticity_centroid",
    "elongation_centroid",
    "orientation_centroid",
    "sn_per_pixel",
    "r20",
    "r50",
    "r80",
    "rhalf_circ",
    "concentration",
    "gini",
    "m20",
    "asymmetry",
)


def _add_statmorph_set(
    values,
    flags,
    data,
    seg,
    lab,
    bad,
    rms_map,
    gain,
    psf,
    sersic,
    nsig,
    n_jobs,
    defer=False,
    device=None,
    doublesersic=False,
    tied=False,
):
    """Fill ``values`` with statmorph's quantities (and the Sersic fit); update ``flags``."""
    from .runner import run_nonparametric

    clean = data  # its bad pixels are already 0.0 (np.where(bad, 0.0, data) is a copy of it)
    sm, fm, msgs, fits, failed = run_nonparametric(
        clean,
        seg,
        [int(v) for v in lab],
        mask=bad if bad.any() else None,
        weightmap=rms_map,
        gain=gain,
        n_sigma_outlier=nsig,
        sersic=sersic,
        n_jobs=n_jobs,
    )
    for key, arr in sm.items():
        values[key] = arr
    values["flag_statmorph"] = fm
    flags[failed | (fm >= 4)] |= int(Flag.MEASURE_FAILED)
    if defer:
        return {"fits": fits, "msgs": msgs}
    names = [f"label {int(v)}" for v in lab]
    _finish(
        values,
        fits,
        msgs,
        psf,
        sersic,
        names,
        n_jobs=n_jobs,
        device=device,
        double=doublesersic,
        tied=tied,
    )
    return None


def _check_device(device) -> None:
    """Check a ``device`` argument: None, or a PyTorch device available on this machine."""
    if device is None:
        return
    if not isinstance(device, str):
        raise ParameterError("device", device, "None or a PyTorch device name such as 'cuda'")
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ParameterError(
            "device", device, "None or a PyTorch device name such as 'cuda'"
        ) from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }.get(dev.type, True)
    if not available:
        raise ParameterError(
            "device", device, f"a device available on this machine (PyTorch sees no {dev.type})"
        )


def _finish(
    values,
    fits,
    msgs,
    psf,
    sersic,
    names,
    stacklevel=5,
    n_jobs=1,
    device=None,
    double=False,
    tied=False,
) -> None:
    """Run the (batched) Sersic fits, fill their columns and warn about bad rows."""
    from .runner import run_doublesersic, run_sersic

    fm = values["flag_statmorph"]
    if sersic:
        cols, fs, smsgs = run_sersic(fits, psf, n_jobs, device)
        values.update(cols)
        values["flag_sersic"] = fs
        for i, m in enumerate(smsgs):
            if fs[i] >= 2 and fm[i] < 4:
                msgs[i] = msgs[i] + m
    if sersic and double:
        dcols, fd, dmsgs = run_doublesersic(fits, psf, cols, values, n_jobs, device, tied)
        values.update(dcols)
        values["flag_doublesersic"] = fd
        for i, m in enumerate(dmsgs):
            if fd[i] == 2 and fm[i] < 4:
                msgs[i] = msgs[i] + m
    n = len(names)
    bad_rows = [
        i
        for i in range(n)
        if fm[i] >= 2
        or (sersic and values["flag_sersic"][i] >= 2)
        or (sersic and double and values["flag_doublesersic"][i] == 2)
    ]
    if bad_rows:
        shown = "; ".join(f"{names[i]}: " + (" ".join(msgs[i]) or "flagged") for i in bad_rows[:20])
        more = f" (and {len(bad_rows) - 20} more)" if len(bad_rows) > 20 else ""
        warnings.warn(
            f"{len(bad_rows)} of {n} sources have bad morphology measurements "
            f"(flag_statmorph or flag_sersic >= 2"
            f"{', or flag_doublesersic 2' if sersic and double else ''}): {shown}{more}",
            MorphoscopeWarning,
            stacklevel=stacklevel,
        )


def measure_stamps(
    images,
    segmaps,
    *,
    rms=None,
    gain: float | None = None,
    psfs=None,
    label: int = 1,
    sersic: bool = True,
    n_sigma_outlier: float = 10.0,
    n_jobs: int = 1,
    device: str | None = None,
    doublesersic: bool = False,
    doublesersic_tied_ellip: bool = False,
) -> Table:
    """Measure one source per stamp of a stack (e.g. :func:`morphoscope.simulate.simulate_stamps`).

    Each stamp is measured on its own (exactly as :func:`measure` on that image), and the
    Sersic fits of all stamps are batched, each with its own PSF.

    Parameters
    ----------
    images, segmaps : sequence of 2-D arrays
        Stamps and their segmentation maps (one image each; never modified).
    rms : sequence of arrays or floats, or float, optional
        Noise per stamp.
    gain : float, optional
        As in :func:`measure`.
    psfs : sequence of 2-D arrays or a 2-D array, optional
        PSF per stamp, or one PSF for all.
    label : int
        Label of the source to measure in every segmentation map.
    sersic, n_sigma_outlier
        As in :func:`measure`.
    n_jobs : int
        Processes for the non-parametric part and threads for the batched Sersic fits
        (-1 or 0: all cores).
    device, doublesersic, doublesersic_tied_ellip
        As in :func:`measure`.

    Returns
    -------
    astropy.table.Table
        One row per stamp (column ``stamp``), with the columns of :func:`measure`.

    Examples
    --------
    >>> from morphoscope.simulate import simulate_stamps
    >>> st = simulate_stamps(2, size=48, seed=1)
    >>> cat = measure_stamps(st.images, st.segmaps, rms=st.rms, psfs=st.psfs)  # doctest: +SKIP
    """
    if sersic:
        _check_device(device)
    if doublesersic and not sersic:
        raise ParameterError("doublesersic", doublesersic, "False unless sersic is True")
    n = len(images)
    if len(segmaps) != n:
        raise InputError("segmaps", f"{len(segmaps)} segmentation maps for {n} images")
    if rms is None or np.ndim(rms) == 0:
        rms_list = [rms] * n
    else:
        rms_list = list(rms)
    if psfs is None:
        psf_list = [None] * n
    elif np.ndim(psfs) == 2:
        psf_list = [psfs] * n
    else:
        psf_list = list(psfs)
    tasks = [
        (images[i], segmaps[i], rms_list[i], gain, label, sersic, n_sigma_outlier) for i in range(n)
    ]
    if n_jobs is None or n_jobs < 1:
        n_jobs = os.cpu_count() or 1
    if n_jobs > 1 and n > 1:
        with ProcessPoolExecutor(max_workers=n_jobs) as ex:
            done = list(ex.map(_one_stamp, tasks, chunksize=max(1, n // (4 * n_jobs))))
    else:
        done = [_one_stamp(t) for t in tasks]
    rows = [d[0] for d in done]
    columns: dict = done[0][1] if done else {}
    fits = [d[2]["fits"][0] for d in done]
    msgs = [d[2]["msgs"][0] for d in done]
    if n == 0:
        return _to_table(
            {k: np.zeros(0) for k in {**COLUMNS, **NONPARAMETRIC_COLUMNS, **SERSIC_COLUMNS}},
            {**COLUMNS, **NONPARAMETRIC_COLUMNS, **(SERSIC_COLUMNS if sersic else {})},
            True,
        )
    values = {k: np.concatenate([np.atleast_1d(r[k]) for r in rows]) for k in rows[0]}
    psf_arrs = [None if p is None else np.asarray(as_psf(p, "psfs"), float) for p in psf_list]
    names = [f"stamp {i}" for i in range(n)]
    _finish(
        values,
        fits,
        msgs,
        psf_arrs,
        sersic,
        names,
        3,
        n_jobs,
        device,
        doublesersic,
        doublesersic_tied_ellip,
    )
    if doublesersic:
        columns = {**columns, **DOUBLESERSIC_COLUMNS}
    table = _to_table(values, columns, True)
    table.add_column(np.arange(n), name="stamp", index=0)
    return table


def _one_stamp(task):
    image, segmap, rms, gain, label, sersic, nsig = task
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MorphoscopeWarning)
        return _measure_core(
            image,
            segmap,
            rms=rms,
            gain=gain,
            psf=None,
            mask=None,
            labels=[label],
            nonparametric=True,
            sersic=sersic,
            asymmetry=True,
            n_sigma_outlier=nsig,
            n_jobs=1,
            defer_sersic=True,
        )
