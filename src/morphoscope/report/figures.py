"""Figures of the HTML report, as plain functions returning matplotlib Figures.

Every function builds a :class:`matplotlib.figure.Figure` directly (Agg canvas, no
``pyplot`` state), so they are safe in scripts, notebooks and worker processes alike.
Image functions (:func:`stretch`, :func:`overview_rgb`, :func:`cutout_rgb`,
:func:`colour_composite`) return plain ``uint8``/``float`` arrays that can be saved
or shown with any library; :func:`png_bytes` encodes arrays and figures as PNG.

Examples
--------
>>> import numpy as np
>>> from astropy.table import Table
>>> from morphoscope.report import figures
>>> img = np.zeros((64, 64)); img[30:34, 30:34] = 10.0
>>> seg = (img > 0).astype(int)
>>> cat = Table({"label": [1], "flux": [160.0], "r50": [1.5], "gini": [0.2]})
>>> fig = figures.overview_figure(img, seg)
>>> png = figures.png_bytes(fig)
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogFormatter
from PIL import Image
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.segmentation import find_boundaries

__all__ = [
    "catalog_column",
    "colour_composite",
    "colour_composite_figure",
    "cutout_box",
    "cutout_gallery",
    "cutout_rgb",
    "cutout_rgb_bands",
    "downsample",
    "flux_recovery_figure",
    "gallery_order",
    "gini_histogram",
    "gini_m20_figure",
    "match_truth",
    "overview_figure",
    "overview_rgb",
    "png_bytes",
    "size_flux_figure",
    "stretch",
    "truth_flux_column",
]

# Outline colours of segments (label -> colour cycles through this list).
_PALETTE = np.array(
    [to_rgb(c) for c in ("#00e5ff", "#ffb000", "#ff4fd8", "#4f9dff", "#ff6b4f", "#b18cff")]
)
_TARGET = "#00e5ff"
_NEIGHBOUR = "#ffb000"
_OUTSIDE = (0.16, 0.18, 0.3)  # pixels of a cutout beyond the image border
_MAX_STAT_VALUES = 1_000_000


# --------------------------------------------------------------------------- utilities
def catalog_column(catalog, name: str) -> np.ndarray | None:
    """Column ``name`` of ``catalog`` as a float array (masked -> NaN), or None.

    None is returned when the column is missing, non-numeric or not one value per row,
    so callers can skip a plot instead of failing.
    """
    if catalog is None or name not in getattr(catalog, "colnames", ()):
        return None
    col = catalog[name]
    try:
        data = getattr(col, "value", col)  # Quantity / Column -> ndarray
        arr = np.ma.filled(np.ma.asarray(data).astype(float), np.nan)
    except (TypeError, ValueError):
        return None
    if arr.ndim != 1:
        return None
    return np.asarray(arr, dtype=float)


def _finite_sample(values: np.ndarray) -> np.ndarray:
    """Finite values of ``values``, subsampled on a regular stride above ~1e6 elements."""
    flat = np.asarray(values, dtype=float).ravel()
    if flat.size > _MAX_STAT_VALUES:
        flat = flat[:: math.ceil(flat.size / _MAX_STAT_VALUES)]
    return flat[np.isfinite(flat)]


def stretch(
    image: np.ndarray,
    *,
    lower_percentile: float = 5.0,
    upper_percentile: float = 99.7,
    softening: float | None = None,
    limits: tuple[float, float] | None = None,
) -> np.ndarray:
    """asinh stretch of ``image`` to [0, 1] with percentile clipping.

    ``out = asinh((x - lo) / a) / asinh((hi - lo) / a)`` clipped to [0, 1], where
    ``lo`` and ``hi`` are percentiles of the finite pixels and ``a`` the softening
    (linear below ``a``, logarithmic above).

    Parameters
    ----------
    image : array_like
        2-D (or any shape) float array; NaN and infinite pixels map to 0.
    lower_percentile, upper_percentile : float
        Percentiles of the finite pixels mapped to 0 and 1.
    softening : float, optional
        Softening ``a`` in data units. Default: three times the robust noise
        (1.4826 x MAD) of the finite pixels, kept between 0.1% and 100% of ``hi - lo``:
        the noise stays visible but subdued, faint outskirts stay distinguishable.
    limits : (float, float), optional
        Explicit ``(lo, hi)`` instead of the percentiles.

    Returns
    -------
    out : ndarray
        Float array of the same shape with values in [0, 1]. An all-NaN or constant
        image gives zeros. The input is not modified.

    Notes
    -----
    Percentiles are computed on at most ~1e6 pixels (regular stride), so the cost is
    O(N) with a small constant even for very large images.

    Examples
    --------
    >>> import numpy as np
    >>> s = stretch(np.array([[0.0, 1.0], [10.0, np.nan]]), lower_percentile=0,
    ...             upper_percentile=100)
    >>> float(s.min()), float(s.max()), float(s[1, 1])
    (0.0, 1.0, 0.0)
    """
    arr = np.asarray(image, dtype=float)
    out = np.zeros(arr.shape, dtype=float)
    sample = _finite_sample(arr)
    if sample.size == 0:
        return out
    if limits is not None:
        lo, hi = float(limits[0]), float(limits[1])
    else:
        lo, hi = (float(v) for v in np.percentile(sample, [lower_percentile, upper_percentile]))
    span = hi - lo
    if not (np.isfinite(span) and span > 0):
        return out
    if softening is None:
        med = np.median(sample)
        a = 3.0 * 1.4826 * float(np.median(np.abs(sample - med)))
    else:
        a = float(softening)
    if not (np.isfinite(a) and a > 0):
        a = 0.1 * span
    a = min(max(a, 1e-3 * span), span)
    finite = np.isfinite(arr)
    with np.errstate(invalid="ignore", over="ignore"):
        vals = np.arcsinh((arr[finite] - lo) / a) / np.arcsinh(span / a)
    out[finite] = np.clip(vals, 0.0, 1.0)
    return out


def downsample(image: np.ndarray, factor: int, *, reduce: str = "mean") -> np.ndarray:
    """Block-reduce a 2-D array by an integer ``factor`` (edges cropped).

    ``reduce="mean"`` averages finite pixels (NaN where a block has none);
    ``reduce="max"`` takes the block maximum (for boolean masks);
    ``reduce="first"`` keeps the first pixel of each block (for label maps).
    O(N) time, one extra copy.
    """
    arr = np.asarray(image)
    factor = int(factor)
    if factor <= 1:
        return arr
    if reduce == "first":
        return arr[::factor, ::factor]
    ny, nx = (arr.shape[0] // factor) * factor, (arr.shape[1] // factor) * factor
    if ny == 0 or nx == 0:
        return arr[::factor, ::factor]
    blocks = arr[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor)
    if reduce == "max":
        return blocks.max(axis=(1, 3))
    if arr.dtype.kind in "iub":
        return blocks.mean(axis=(1, 3), dtype=float)
    finite = np.isfinite(blocks)
    if finite.all():
        return blocks.mean(axis=(1, 3), dtype=float)
    total = np.where(finite, blocks, 0.0).sum(axis=(1, 3), dtype=float)
    count = finite.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _factor(shape: Sequence[int], max_pixels: int) -> int:
    return max(1, math.ceil(max(shape) / max(int(max_pixels), 1)))


def _label_colours(labels: np.ndarray) -> np.ndarray:
    return _PALETTE[np.asarray(labels, dtype=np.int64) % len(_PALETTE)]


def png_bytes(obj, *, dpi: float | None = None, palette: bool = False) -> bytes:
    """Encode a Figure, an (H, W) float array in [0, 1] or an (H, W, 3) array as PNG.

    Figures are drawn on an Agg canvas and stored as RGB (no alpha channel), which
    keeps embedded images smaller. Float arrays are taken as [0, 1]; ``uint8``
    arrays as is. The PNG rows run top to bottom, like the array rows.
    ``palette=True`` stores 256 adaptive colours (8 bits per pixel): about 4 times
    smaller for noisy field images, at the cost of slight colour banding.
    """
    if isinstance(obj, Figure):
        canvas = FigureCanvasAgg(obj)
        if dpi is not None:
            obj.set_dpi(dpi)
        canvas.draw()
        rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    else:
        arr = np.asarray(obj)
        if arr.dtype != np.uint8:
            arr = np.round(np.clip(np.nan_to_num(arr.astype(float)), 0, 1) * 255).astype(np.uint8)
        rgb = arr
    buf = io.BytesIO()
    pil = Image.fromarray(np.ascontiguousarray(rgb))
    if palette:
        pil = pil.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    pil.save(buf, format="png", compress_level=6)
    return buf.getvalue()


def _grey_rgb(values01: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(values01, dtype=float)[..., None], 3, axis=2)


def _empty_axes_note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


# --------------------------------------------------------------------------- overview
def overview_rgb(
    image: np.ndarray,
    segmap: np.ndarray | None = None,
    *,
    max_pixels: int = 1400,
    background: np.ndarray | None = None,
    background_factor: int = 1,
    outline_alpha: float = 0.85,
) -> tuple[np.ndarray, int]:
    """Stretched image with coloured segment outlines, downsampled to ``max_pixels``.

    Parameters
    ----------
    image : ndarray
        2-D detection image.
    segmap : ndarray, optional
        Integer segmentation map of the same shape (0 = background).
    max_pixels : int
        Largest side of the result; the image is block-averaged by an integer factor.
    background : ndarray, optional
        (H, W, 3) array in [0, 1] of the same shape as ``image`` to draw the outlines
        on instead of the stretched ``image`` (a colour composite).
    background_factor : int
        ``background`` is already block-averaged by this factor.
    outline_alpha : float
        Opacity of the outlines.

    Returns
    -------
    rgb : ndarray
        (h, w, 3) float array in [0, 1], rows in numpy order (row 0 = y 0).
    factor : int
        The downsampling factor (1 = full resolution).

    Notes
    -----
    O(N) in the number of pixels; outlines are found on the (strided) downsampled
    segmentation map, so a 10k x 10k image costs about as much as its 1.4k preview.
    """
    img = np.asarray(image, dtype=float)
    factor = _factor(img.shape, max_pixels)
    if background is not None:
        bg = np.asarray(background, dtype=float)
        rest = max(1, factor // max(int(background_factor), 1))
        rgb = np.stack([downsample(bg[..., k], rest) for k in range(3)], axis=-1)
        rgb = np.nan_to_num(rgb)
    else:
        rgb = _grey_rgb(stretch(downsample(img, factor)))
    if segmap is not None:
        small = downsample(np.asarray(segmap), factor, reduce="first")
        small = small[: rgb.shape[0], : rgb.shape[1]]
        rgb = rgb[: small.shape[0], : small.shape[1]]
        edges = find_boundaries(small, mode="inner") & (small > 0)
        if edges.any():
            colours = _label_colours(small[edges])
            rgb = rgb.copy()
            rgb[edges] = (1 - outline_alpha) * rgb[edges] + outline_alpha * colours
    return np.clip(rgb, 0.0, 1.0), factor


def overview_figure(
    image: np.ndarray,
    segmap: np.ndarray | None = None,
    *,
    truth_xy: tuple[np.ndarray, np.ndarray] | None = None,
    truth_detected: np.ndarray | None = None,
    background: np.ndarray | None = None,
    background_factor: int = 1,
    max_pixels: int = 1400,
    title: str | None = None,
    dpi: float = 100.0,
) -> Figure:
    """The whole field, asinh-stretched, with segment outlines and truth markers.

    Parameters
    ----------
    image, segmap : ndarray
        Detection image and its segmentation map (same shape).
    truth_xy : (x, y) arrays, optional
        Pixel positions of simulated sources, drawn as small circles.
    truth_detected : bool array, optional
        Which truth sources were recovered: green circles; the others red crosses.
    background : ndarray, optional
        (H, W, 3) colour composite in [0, 1] to draw instead of the grey image.
    background_factor : int
        ``background`` is already block-averaged by this factor.
    max_pixels : int
        Largest side of the embedded raster (the figure is sized to show it about 1:1).
    title : str, optional
        Axes title.
    dpi : float
        Figure resolution.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).normal(size=(50, 80))
    >>> fig = overview_figure(img, (img > 2).astype(int))
    >>> [float(v) for v in fig.axes[0].get_xlim()]
    [-0.5, 79.5]
    """
    img = np.asarray(image, dtype=float)
    rgb, factor = overview_rgb(
        img,
        segmap,
        max_pixels=max_pixels,
        background=background,
        background_factor=background_factor,
    )
    h, w = rgb.shape[:2]
    # Size the axes so one raster pixel is about one screen pixel (at least 4 inches).
    scale = max(1.0, 400.0 / max(h, w, 1))
    ax_w, ax_h = w * scale / dpi, h * scale / dpi
    fig = Figure(figsize=(ax_w + 0.9, ax_h + (0.75 if title else 0.5)), dpi=dpi)
    FigureCanvasAgg(fig)
    left, bottom = 0.7 / fig.get_figwidth(), 0.4 / fig.get_figheight()
    ax = fig.add_axes((left, bottom, ax_w / fig.get_figwidth(), ax_h / fig.get_figheight()))
    extent = (-0.5, w * factor - 0.5, -0.5, h * factor - 0.5)
    ax.imshow(rgb, origin="lower", extent=extent, interpolation="nearest", aspect="equal")
    if truth_xy is not None:
        tx, ty = (np.asarray(v, dtype=float) for v in truth_xy)
        det = (
            np.ones(tx.size, bool)
            if truth_detected is None
            else np.asarray(truth_detected, dtype=bool)
        )
        size = 16 if tx.size < 500 else 8
        ax.scatter(
            tx[det],
            ty[det],
            s=size,
            marker="+",
            color="#39ff14",
            linewidths=0.7,
            label=f"truth, detected ({int(det.sum())})",
        )
        if (~det).any():
            ax.scatter(
                tx[~det],
                ty[~det],
                s=size,
                marker="x",
                color="#ff3030",
                linewidths=0.8,
                label=f"truth, missed ({int((~det).sum())})",
            )
        ax.legend(loc="upper right", fontsize=7, framealpha=0.6)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("x [pixel]", fontsize=8)
    ax.set_ylabel("y [pixel]", fontsize=8)
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def colour_composite(
    band_images: Mapping[str, np.ndarray], *, max_bands: int = 3, factor: int = 1
) -> tuple[np.ndarray, list[str]]:
    """RGB composite in [0, 1] of the last (reddest) ``max_bands`` bands.

    Bands are taken in the given order, bluest first: with three or more bands the
    last three become blue, green and red; two bands give blue = first, red = second
    and green = their mean; one band gives grey. All bands share one asinh stretch
    (black at the median of the band mean, white at its 99.7th percentile, softening
    twice its robust noise) after subtracting each band's median, so colours reflect
    flux ratios.

    ``factor`` > 1 block-averages every band by that factor first (cheaper for large
    images).

    Returns
    -------
    rgb : ndarray
        (H, W, 3) float array in [0, 1] (``(H // factor, W // factor, 3)``).
    used : list of str
        The band names used, in (blue, [green,] red) order.
    """
    names = list(band_images)[-max_bands:]
    if not names:
        raise ValueError("no band images")
    stack = []
    for n in names:
        band = downsample(np.asarray(band_images[n], dtype=float), factor)
        finite = _finite_sample(band)
        # Remove each band's sky pedestal so that an unsubtracted background is not a colour.
        stack.append(band - float(np.median(finite)) if finite.size else band)
    total = np.nansum(np.stack(stack), axis=0) / len(stack)
    sample = _finite_sample(total)
    if sample.size:
        # Black at the sky level and a softening of ~2 sigma keep per-band noise from
        # turning the background into coloured speckle.
        med, hi = np.percentile(sample, [50.0, 99.7])
        noise = 1.4826 * float(np.median(np.abs(sample - med)))
        lo = med
    else:
        lo, hi, noise = 0.0, 1.0, 0.0
    soft = 2.0 * noise if noise > 0 else None
    planes = [stretch(b, limits=(lo, hi), softening=soft) for b in stack]
    if len(planes) == 1:
        rgb = np.stack([planes[0]] * 3, axis=-1)
    elif len(planes) == 2:
        rgb = np.stack([planes[1], 0.5 * (planes[0] + planes[1]), planes[0]], axis=-1)
    else:
        rgb = np.stack([planes[2], planes[1], planes[0]], axis=-1)
    return rgb, names


def colour_composite_figure(
    band_images: Mapping[str, np.ndarray], *, max_pixels: int = 1400, dpi: float = 100.0
) -> Figure:
    """Figure of :func:`colour_composite`, titled with the bands used."""
    shape = np.shape(next(iter(band_images.values())))[:2]
    factor = _factor(shape, max_pixels)
    rgb, names = colour_composite(band_images, factor=factor)
    title = " / ".join(reversed(names)) + (" (R / G / B)" if len(names) == 3 else "")
    return overview_figure(
        np.broadcast_to(0.0, shape),  # only the shape is used under a background
        None,
        background=rgb,
        background_factor=factor,
        max_pixels=max_pixels,
        title=title,
        dpi=dpi,
    )


# --------------------------------------------------------------------------- cutouts
def cutout_box(
    segmap: np.ndarray,
    label: int,
    *,
    centre: tuple[float, float] | None = None,
    slices: Sequence | None = None,
    factor: float = 3.0,
    min_size: int = 24,
) -> tuple[int, int, int]:
    """Square box around a source: ``(x0, y0, size)`` of the lower-left corner.

    The side is ``factor`` times the larger side of the segment's bounding box (at
    least ``min_size``), centred on ``centre`` (x, y) when finite, otherwise on the
    bounding box. A label absent from ``segmap`` gives a ``min_size`` box around
    ``centre`` (or the image centre). The box may extend past the image.
    """
    seg = np.asarray(segmap)
    sl = None
    if slices is not None and 0 < label <= len(slices):
        sl = slices[label - 1]
    elif slices is None and label > 0:
        found = ndimage.find_objects((seg == label).astype(np.int8))
        sl = found[0] if found else None
    if sl is not None:
        extent = max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start)
        cx = 0.5 * (sl[1].start + sl[1].stop - 1)
        cy = 0.5 * (sl[0].start + sl[0].stop - 1)
    else:
        extent = 0
        cx, cy = 0.5 * (seg.shape[1] - 1), 0.5 * (seg.shape[0] - 1)
    if centre is not None and np.all(np.isfinite(centre)):
        cx, cy = float(centre[0]), float(centre[1])
    size = int(max(min_size, math.ceil(factor * extent)))
    x0 = round(cx - 0.5 * (size - 1))
    y0 = round(cy - 0.5 * (size - 1))
    return x0, y0, size


def _cutout_geometry(seg, label, centre, slices, factor, min_size, max_size):
    """Box, reduction block, segment cutout, inside mask, own mask and outline pixels."""
    x0, y0, size = cutout_box(
        seg, label, centre=centre, slices=slices, factor=factor, min_size=min_size
    )
    block = max(1, math.ceil(size / max(int(max_size), 1)))
    if block > 1:  # grow the box to a multiple of the block, keeping its centre
        grown = block * math.ceil(size / block)
        x0 -= (grown - size) // 2
        y0 -= (grown - size) // 2
        size = grown
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + size, seg.shape[0]), min(x0 + size, seg.shape[1])
    inside = np.zeros((size, size), bool)
    cseg = np.zeros((size, size), dtype=seg.dtype)
    src = dst = None
    if ye > ys and xe > xs:
        src = (slice(ys, ye), slice(xs, xe))
        dst = (slice(ys - y0, ye - y0), slice(xs - x0, xe - x0))
        cseg[dst] = seg[src]
        inside[dst] = True
    if block > 1:
        cseg = downsample(cseg, block, reduce="first")
        inside = downsample(inside, block, reduce="max")
    own = cseg == label
    edges = find_boundaries(cseg, mode="inner") & (cseg > 0)
    return size, block, src, dst, inside, own, edges


def _cutout_paint(img, geometry) -> np.ndarray:
    size, block, src, dst, inside, own, edges = geometry
    cut = np.full((size, size), np.nan)
    if src is not None:
        cut[dst] = img[src]
    if block > 1:
        cut = downsample(cut, block)
    vals = cut[own & np.isfinite(cut)]
    hi = float(np.max(vals)) if vals.size else None
    lo = float(np.nanpercentile(cut, 5.0)) if np.isfinite(cut).any() else 0.0
    if hi is not None and hi > lo:  # white at the source's peak
        s = stretch(cut, limits=(lo, hi))
    else:
        s = stretch(cut, lower_percentile=5.0, upper_percentile=99.8)
    rgb = _grey_rgb(s)
    rgb[~inside] = _OUTSIDE
    rgb[edges & ~own] = 0.4 * rgb[edges & ~own] + 0.6 * np.array(to_rgb(_NEIGHBOUR))
    rgb[edges & own] = np.array(to_rgb(_TARGET))
    return rgb[::-1]


def cutout_rgb(
    image: np.ndarray,
    segmap: np.ndarray,
    label: int,
    *,
    centre: tuple[float, float] | None = None,
    slices: Sequence | None = None,
    factor: float = 3.0,
    min_size: int = 24,
    max_size: int = 128,
) -> np.ndarray:
    """Stretched cutout of one source with its segment outline (cyan) and neighbours' (amber).

    The box is :func:`cutout_box`; boxes larger than ``max_size`` pixels are
    block-averaged by an integer factor so that the result is at most ``max_size``
    pixels on a side (the outlines are drawn on the reduced map).

    Returns an (n, n, 3) float array in [0, 1] with row 0 at the top (display order,
    y up); ``n`` is the box size (or its reduced size). Pixels outside the image are
    dark blue-grey.
    """
    return cutout_rgb_bands(
        [image],
        segmap,
        label,
        centre=centre,
        slices=slices,
        factor=factor,
        min_size=min_size,
        max_size=max_size,
    )[0]


def cutout_rgb_bands(
    images: Sequence[np.ndarray],
    segmap: np.ndarray,
    label: int,
    *,
    centre: tuple[float, float] | None = None,
    slices: Sequence | None = None,
    factor: float = 3.0,
    min_size: int = 24,
    max_size: int = 128,
) -> list[np.ndarray]:
    """:func:`cutout_rgb` of one source in several images of the same shape.

    The box and the outlines are computed once and shared; each image gets its own
    stretch. Returns one (n, n, 3) array per image.
    """
    seg = np.asarray(segmap)
    geometry = _cutout_geometry(seg, label, centre, slices, factor, min_size, max_size)
    return [_cutout_paint(np.asarray(img, dtype=float), geometry) for img in images]


def gallery_order(catalog, n: int) -> np.ndarray:
    """Row indices of the ``n`` brightest sources (by ``flux``, NaN last; catalog order
    without a ``flux`` column)."""
    nrows = 0 if catalog is None else len(catalog)
    flux = catalog_column(catalog, "flux")
    if flux is None:
        order = np.arange(nrows)
    else:
        key = np.where(np.isfinite(flux), -flux, np.inf)
        order = np.argsort(key, kind="stable")
    return order[: max(int(n), 0)]


def cutout_gallery(
    image: np.ndarray,
    segmap: np.ndarray,
    catalog,
    *,
    n: int = 24,
    ncols: int = 6,
    panel_size: float = 1.6,
    dpi: float = 100.0,
) -> Figure:
    """Grid of cutouts of the ``n`` brightest sources, titled with label, flux, r50, Gini.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> img = np.zeros((40, 40)); img[10:14, 10:14] = 1; img[25:30, 25:30] = 2
    >>> from scipy import ndimage
    >>> seg = ndimage.label(img > 0)[0]
    >>> cat = Table({"label": [1, 2], "flux": [16.0, 50.0]})
    >>> len(cutout_gallery(img, seg, cat).axes)
    2
    """
    rows = gallery_order(catalog, n)
    count = len(rows)
    ncols = max(1, min(int(ncols), count)) if count else 1
    nrows = max(1, math.ceil(count / ncols))
    fig = Figure(figsize=(panel_size * ncols, (panel_size + 0.35) * nrows), dpi=dpi)
    FigureCanvasAgg(fig)
    if not count:
        _empty_axes_note(fig.add_subplot(1, 1, 1), "no sources")
        return fig
    seg = np.asarray(segmap)
    slices = ndimage.find_objects(seg.astype(np.int64, copy=False)) if seg.size else []
    labels = catalog_column(catalog, "label")
    xc = catalog_column(catalog, "xc_centroid")
    yc = catalog_column(catalog, "yc_centroid")
    flux = catalog_column(catalog, "flux")
    r50 = catalog_column(catalog, "r50")
    gini = catalog_column(catalog, "gini")
    for k, i in enumerate(rows):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        label = _int_or(labels, i, -1)
        centre = (_val(xc, i), _val(yc, i))
        ax.imshow(
            cutout_rgb(image, seg, label, centre=centre, slices=slices), interpolation="nearest"
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(
            f"#{label}  F={_fmt(_val(flux, i))}\nr50={_fmt(_val(r50, i))}  "
            f"G={_fmt(_val(gini, i), 2)}",
            fontsize=6.5,
        )
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.92, wspace=0.05, hspace=0.35)
    return fig


def _val(arr: np.ndarray | None, i: int) -> float:
    return float(arr[i]) if arr is not None else float("nan")


def _int_or(arr: np.ndarray | None, i: int, default: int) -> int:
    if arr is None or not np.isfinite(arr[i]):
        return default
    return int(arr[i])


def _fmt(value: float, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "nan"
    return f"{value:.{digits}g}"


# --------------------------------------------------------------------------- plots
def _plot_figure(figsize=(4.6, 3.6), dpi: float = 100.0) -> tuple[Figure, object]:
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.13, top=0.91)
    return fig, fig.add_subplot(1, 1, 1)


def _scatter_flagged(ax, x: np.ndarray, y: np.ndarray, ok: np.ndarray, bad: np.ndarray) -> None:
    """Unflagged sources as filled dots, flagged ones as open grey circles."""
    ax.scatter(x[ok & ~bad], y[ok & ~bad], s=9, color="#1f77b4", alpha=0.8, label="unflagged")
    if (ok & bad).any():
        ax.scatter(
            x[ok & bad],
            y[ok & bad],
            s=11,
            facecolors="none",
            edgecolors="0.5",
            linewidths=0.7,
            label="flagged",
        )


def _flagged(catalog, n: int) -> np.ndarray:
    flag = catalog_column(catalog, "flag")
    if flag is None:
        return np.zeros(n, bool)
    return np.nan_to_num(flag, nan=0.0) != 0


def size_flux_figure(catalog, *, size_column: str | None = None) -> Figure:
    """Half-light radius versus flux, log-log; flagged sources drawn hollow.

    Uses ``r50`` (or ``rhalf_circ`` when ``r50`` is missing, or ``size_column``).
    Sources with non-positive or NaN values are left out and counted in the title.
    """
    fig, ax = _plot_figure()
    flux = catalog_column(catalog, "flux")
    name = size_column or next(
        (c for c in ("r50", "rhalf_circ") if catalog_column(catalog, c) is not None), None
    )
    size = catalog_column(catalog, name) if name else None
    if flux is None or size is None or flux.size == 0:
        _empty_axes_note(ax, "no flux / size columns")
        return fig
    ok = np.isfinite(flux) & np.isfinite(size) & (flux > 0) & (size > 0)
    bad = _flagged(catalog, flux.size)
    _scatter_flagged(ax, flux, size, ok, bad)
    if ok.any():
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=7, loc="upper left")
    else:
        _empty_axes_note(ax, "no positive, finite values")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1.5, 0.5)))
    ax.set_xlabel("flux", fontsize=8)
    ax.set_ylabel(f"{name} [pixel]", fontsize=8)
    ax.set_title(f"size vs flux ({int(ok.sum())} of {flux.size} sources)", fontsize=9)
    ax.tick_params(labelsize=7)
    return fig


def gini_histogram(catalog, *, bins: int = 30) -> Figure:
    """Histogram of the Gini coefficient, unflagged and all sources."""
    fig, ax = _plot_figure()
    gini = catalog_column(catalog, "gini")
    if gini is None or gini.size == 0:
        _empty_axes_note(ax, "no gini column")
        return fig
    ok = np.isfinite(gini)
    if not ok.any():
        _empty_axes_note(ax, "no finite Gini values")
        return fig
    bad = _flagged(catalog, gini.size)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ax.hist(gini[ok], bins=edges, color="0.75", label="all")
    if (ok & ~bad).any():
        ax.hist(
            gini[ok & ~bad],
            bins=edges,
            histtype="step",
            color="#1f77b4",
            linewidth=1.5,
            label="unflagged",
        )
    ax.set_xlim(0, 1)
    ax.set_xlabel("Gini", fontsize=8)
    ax.set_ylabel("sources", fontsize=8)
    ax.set_title(f"Gini distribution ({int(ok.sum())} sources)", fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)
    return fig


def gini_m20_figure(catalog) -> Figure:
    """The Gini-M20 plane with the Lotz et al. (2008) dividing lines."""
    fig, ax = _plot_figure()
    gini = catalog_column(catalog, "gini")
    m20 = catalog_column(catalog, "m20")
    if gini is None or m20 is None or gini.size == 0:
        _empty_axes_note(ax, "no gini / m20 columns")
        return fig
    ok = np.isfinite(gini) & np.isfinite(m20)
    bad = _flagged(catalog, gini.size)
    _scatter_flagged(ax, m20, gini, ok, bad)
    x = np.linspace(-3.0, 0.0, 50)
    ax.plot(x, -0.14 * x + 0.33, color="k", lw=0.8, ls="--", label="merger line")
    xs = x[x <= -1.68]
    ax.plot(xs, 0.14 * xs + 0.80, color="k", lw=0.8, ls=":", label="E/S0/Sa | Sb/Irr")
    gl = (0.2, 0.8) if not ok.any() else (float(gini[ok].min()), float(gini[ok].max()))
    ml = (-3.0, 0.0) if not ok.any() else (float(m20[ok].min()), float(m20[ok].max()))
    ax.set_xlim(max(0.0, ml[1] + 0.1), min(-3.0, ml[0] - 0.1))
    ax.set_ylim(max(0.0, min(0.2, gl[0] - 0.03)), min(1.0, max(0.8, gl[1] + 0.03)))
    ax.set_xlabel("M20", fontsize=8)
    ax.set_ylabel("Gini", fontsize=8)
    ax.set_title(f"Gini-M20 ({int(ok.sum())} sources; Lotz et al. 2008 lines)", fontsize=9)
    ax.legend(fontsize=6.5, loc="lower left")
    ax.tick_params(labelsize=7)
    return fig


# --------------------------------------------------------------------------- truth
def truth_flux_column(catalog, truth, column: str | None = None) -> tuple[str, str] | None:
    """``(catalog column, truth column)`` of fluxes to compare, or None.

    ``column`` names the truth column explicitly. Otherwise a band measured in both
    (``flux_<band>`` in catalog and truth) whose values equal the catalog's ``flux``
    is preferred (the detection band), then any shared band, then the only truth
    ``flux_*`` column against ``flux``.
    """
    if truth is None or catalog is None:
        return None
    tcols = [c for c in truth.colnames if c.startswith("flux_")]
    if column is not None:
        return ("flux", column) if column in truth.colnames and "flux" in catalog.colnames else None
    flux = catalog_column(catalog, "flux")
    shared = [c for c in tcols if c in catalog.colnames]
    if flux is not None:
        for c in shared:
            v = catalog_column(catalog, c)
            if v is not None and np.array_equal(v, flux, equal_nan=True):
                return "flux", c
    if shared:
        return shared[0], shared[0]
    if flux is not None and len(tcols) == 1:
        return "flux", tcols[0]
    if flux is not None and "flux" in truth.colnames:
        return "flux", "flux"
    return None


def match_truth(
    catalog,
    truth,
    *,
    radius: float = 2.0,
    r_e_factor: float = 1.0,
    segmap: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Match truth sources to catalog rows by position (one-to-one, nearest first).

    A truth source matches a catalog centroid within ``max(radius, r_e_factor * r_e)``
    pixels. Without catalog centroids, a truth source counts as detected when its
    position falls on a segment of ``segmap`` (no catalog row is matched then).

    Returns
    -------
    cat_index : ndarray of int
        For each truth source the matched catalog row, or -1.
    detected : ndarray of bool
        Truth sources that were recovered.
    """
    tx = catalog_column(truth, "x")
    ty = catalog_column(truth, "y")
    if tx is None or ty is None:
        return np.zeros(0, int), np.zeros(0, bool)
    n_t = tx.size
    cat_index = np.full(n_t, -1, dtype=int)
    xc = catalog_column(catalog, "xc_centroid")
    yc = catalog_column(catalog, "yc_centroid")
    if xc is not None and yc is not None and xc.size:
        r_e = catalog_column(truth, "r_e")
        rad = np.full(n_t, float(radius))
        if r_e is not None:
            rad = np.maximum(rad, r_e_factor * np.nan_to_num(r_e))
        good_c = np.flatnonzero(np.isfinite(xc) & np.isfinite(yc))
        good_t = np.flatnonzero(np.isfinite(tx) & np.isfinite(ty))
        if good_c.size and good_t.size:
            tree = cKDTree(np.column_stack([xc[good_c], yc[good_c]]))
            pts = np.column_stack([tx[good_t], ty[good_t]])
            k = min(8, good_c.size)
            dist, idx = tree.query(pts, k=k, distance_upper_bound=float(rad.max()))
            dist = np.asarray(dist).reshape(len(good_t), k)
            idx = np.asarray(idx).reshape(len(good_t), k)
            ti, kk = np.nonzero(np.isfinite(dist) & (dist <= rad[good_t][:, None]))
            order = np.argsort(dist[ti, kk], kind="stable")
            used = set()
            for o in order:
                t = good_t[ti[o]]
                c = good_c[idx[ti[o], kk[o]]]
                if cat_index[t] < 0 and c not in used:
                    cat_index[t] = c
                    used.add(c)
        return cat_index, cat_index >= 0
    if segmap is not None:
        seg = np.asarray(segmap)
        ok = np.isfinite(tx) & np.isfinite(ty)
        ix = np.clip(np.round(np.nan_to_num(tx)).astype(int), 0, seg.shape[1] - 1)
        iy = np.clip(np.round(np.nan_to_num(ty)).astype(int), 0, seg.shape[0] - 1)
        inside = ok & (tx > -0.5) & (ty > -0.5) & (tx < seg.shape[1] - 0.5)
        inside &= ty < seg.shape[0] - 0.5
        return cat_index, inside & (seg[iy, ix] > 0)
    return cat_index, np.zeros(n_t, bool)


def flux_recovery_figure(
    catalog, truth, *, truth_column: str | None = None, cat_index: np.ndarray | None = None
) -> Figure:
    """Measured versus true flux of matched sources, log-log with the 1:1 line.

    Parameters
    ----------
    catalog, truth : astropy.table.Table
        Measured catalog (``flux``, ``xc_centroid``, ``yc_centroid``) and the simulated
        truth (``x``, ``y``, ``flux_<band>``, optional ``r_e``).
    truth_column : str, optional
        Truth flux column; chosen by :func:`truth_flux_column` when omitted.
    cat_index : ndarray, optional
        Matches from :func:`match_truth` (computed when omitted).
    """
    fig, ax = _plot_figure()
    cols = truth_flux_column(catalog, truth, truth_column)
    if cols is None:
        _empty_axes_note(ax, "no matching flux columns")
        return fig
    if cat_index is None:
        cat_index, _ = match_truth(catalog, truth)
    ccol, tcol = cols
    measured = catalog_column(catalog, ccol)
    true = catalog_column(truth, tcol)
    m = cat_index >= 0
    if not m.any() or measured is None or true is None:
        _empty_axes_note(ax, "no matched sources")
        return fig
    x = true[m]
    y = measured[cat_index[m]]
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if not ok.any():
        _empty_axes_note(ax, "no positive fluxes")
        return fig
    ax.scatter(x[ok], y[ok], s=9, color="#1f77b4", alpha=0.8)
    lo = float(min(x[ok].min(), y[ok].min())) / 1.5
    hi = float(max(x[ok].max(), y[ok].max())) * 1.5
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, ls="--", label="1:1")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ratio = np.median(y[ok] / x[ok])
    ax.set_xlabel(f"true {tcol}", fontsize=8)
    ax.set_ylabel(f"measured {ccol}", fontsize=8)
    ax.set_title(
        f"isophotal flux recovery ({int(ok.sum())} matched, all S/N; median ratio {ratio:.3f})",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="upper left")
    ax.tick_params(labelsize=7)
    return fig
