"""``measure``: one catalog row per segment."""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
from astropy.table import Table
from scipy import ndimage

from ..exceptions import InputError, MorphoscopeWarning
from ..flags import Flag
from ..io.validate import as_image, as_mask, as_rms
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

__all__ = ["COLUMNS", "measure", "validate_segmap"]

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


def measure(
    image,
    segmap,
    *,
    rms=None,
    psf=None,
    mask=None,
    labels=None,
    asymmetry: bool = True,
) -> Table:
    """Measure every source of a segmentation map; return one catalog row per label.

    Parameters
    ----------
    image : array_like
        Background-subtracted 2-D image (never modified). NaN/inf pixels are excluded
        and flag their source with ``MASKED_PIXELS``.
    segmap : array_like of int
        Segmentation map (0 = background), same shape.
    rms : array_like or float, optional
        1-sigma noise per pixel; gives ``flux_err`` and ``sn_per_pixel`` and the noise
        correction of the asymmetry.
    psf : array_like, optional
        Accepted for interface stability; PSF-convolved model fitting uses it
        (not in this version).
    mask : array_like of bool, optional
        True = ignore this pixel.
    labels : sequence of int, optional
        Labels to measure, in this order (default: every label present, ascending).
        Labels absent from the map give rows of NaN with the ``SMALL`` flag.
    asymmetry : bool
        Compute the rotational asymmetry (a per-source loop; the other quantities are
        vectorised over all sources at once).

    Returns
    -------
    astropy.table.Table
        Columns :data:`COLUMNS`, named as statmorph where the quantity is the same.

    Notes
    -----
    Pixels of all sources are sorted once by label (O(P log P) time and O(P) memory for P
    segment pixels); every quantity except the asymmetry is then a vector operation.
    Per-source problems set ``flag`` bits (:class:`~morphoscope.flags.Flag`) and NaN values,
    they never raise. Peak memory: at most 64 bytes per image pixel plus 160 per segment
    pixel; an :class:`~morphoscope.exceptions.InputError` is raised before allocating
    more than is available (see :mod:`morphoscope.resources`).

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[:64, :64]
    >>> img = 100 * np.exp(-((x - 30.0) ** 2 + (y - 20.0) ** 2) / (2 * 3.0**2))
    >>> seg = (img > 1).astype(int)
    >>> cat = measure(img, seg, rms=1.0)
    >>> round(float(cat["xc_centroid"][0]), 2), round(float(cat["yc_centroid"][0]), 2)
    (30.0, 20.0)
    """
    check_memory(MEASURE_BYTES_PER_PIXEL * n_pixels(image), "measure", "image")
    data, bad = as_image(image, "image")
    seg = validate_segmap(segmap, data.shape)
    n_seg = int(np.count_nonzero(seg))
    check_memory(MEASURE_BYTES_PER_SEGMENT_PIXEL * n_seg + seg.nbytes * 8, "measure", "segmap")
    if mask is not None:
        bad |= as_mask(mask, data.shape, "mask")
    rms_map = None
    if rms is not None:
        rms_map, rbad = as_rms(rms, data.shape, "rms")
        bad |= rbad
    data[bad] = 0.0
    present = np.unique(seg[seg > 0])
    if labels is None:
        lab = present
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
    r20, r50, r80 = growth_radii(groups, xc, yc)
    with np.errstate(invalid="ignore", divide="ignore"):
        conc = 5.0 * np.log10(r80 / r20)
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
    if asymmetry and n:
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
                    f"label {lab[i]}: asymmetry failed ({exc})", MorphoscopeWarning, stacklevel=2
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
        "gini": gini(groups),
        "m20": m20(groups, xc, yc),
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
    table = Table()
    for name, (unit, desc) in COLUMNS.items():
        col = values[name]
        table[name] = col
        if unit is not None:
            table[name].unit = unit
        table[name].description = desc
    table.meta["morphoscope_measure"] = "v1: moments, growth radii, Gini, M20, C, A"
    return table
