"""Cut stamps from an image and run SersicNet on every source."""

from __future__ import annotations

import numbers

import numpy as np
from astropy import units as u
from astropy.table import Table

from ...exceptions import InputError, ParameterError
from ...flags import Flag
from ...io.validate import as_image, as_mask, as_rms
from .net import SersicNet

__all__ = ["cut_stamps", "predict_catalog"]

#: With ``bin_factor="auto"``, sources are binned so that their isophotal radius
#: ``sqrt(area / pi)`` is at most this many binned pixels (the training galaxies have
#: r_e <= 12 px, i.e. isophotal radii up to ~25 px).
AUTO_RADIUS = 20.0


def _sources(sources, image) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ids, x, y, isophotal radius (NaN when unknown) from a segmap or a catalog."""
    shape = image.shape
    if isinstance(sources, Table) or hasattr(sources, "colnames"):
        names = sources.colnames
        xcol = next((c for c in ("x", "xcentroid", "x_centroid", "X_IMAGE") if c in names), None)
        ycol = next((c for c in ("y", "ycentroid", "y_centroid", "Y_IMAGE") if c in names), None)
        if xcol is None or ycol is None:
            raise InputError("catalog", f"needs x and y columns (pixels); has {names}")
        x = np.asarray(sources[xcol], dtype=np.float64)
        y = np.asarray(sources[ycol], dtype=np.float64)
        ids = (np.asarray(sources["id"]) if "id" in names else np.arange(1, len(x) + 1))
        area_col = next((c for c in ("area", "segment_area") if c in names), None)
        radius = (
            np.sqrt(np.asarray(sources[area_col], dtype=np.float64) / np.pi)
            if area_col else np.full(len(x), np.nan)
        )  # fmt: skip
        return ids, x, y, radius
    seg = np.asarray(sources)
    if seg.ndim != 2 or seg.dtype.kind not in "iub":
        raise InputError("segmap", "expected a 2-D integer segmentation map or a catalog Table")
    if seg.shape != shape:
        raise InputError("segmap", f"shape {seg.shape} does not match the image shape {shape}")
    if seg.size and seg.min() < 0:
        raise InputError("segmap", f"labels must be >= 0 (found {int(seg.min())})")
    return _segmap_sources(seg, image)


def _segmap_sources(seg: np.ndarray, image: np.ndarray):
    """Labels, flux-weighted centroids (positive pixels) and isophotal radii of segments."""
    from scipy import ndimage

    ids = np.unique(seg[seg > 0])
    yy, xx = np.indices(seg.shape)
    area = np.asarray(ndimage.sum_labels(np.ones(seg.shape), seg, ids))
    w = np.clip(np.nan_to_num(image), 0, None)
    wsum = np.asarray(ndimage.sum_labels(w, seg, ids))
    safe = np.where(wsum > 0, wsum, 1.0)
    x = np.where(wsum > 0, np.asarray(ndimage.sum_labels(w * xx, seg, ids)) / safe,
                 np.asarray(ndimage.mean(xx, seg, ids)))  # fmt: skip
    y = np.where(wsum > 0, np.asarray(ndimage.sum_labels(w * yy, seg, ids)) / safe,
                 np.asarray(ndimage.mean(yy, seg, ids)))  # fmt: skip
    return ids, x, y, np.sqrt(area / np.pi)


def _mad_sigma(values: np.ndarray) -> float:
    v = values[np.isfinite(values)]
    return float(1.4826 * np.median(np.abs(v - np.median(v)))) if v.size > 10 else float("nan")


def cut_stamps(
    image: np.ndarray, x: float, y: float, size: int, bin_factor: int
) -> tuple[np.ndarray, float, float, bool]:
    """A ``size x size`` stamp of ``bin_factor``-binned pixels (sums) centred near ``(x, y)``.

    Pixels outside the image are NaN. Returns the stamp, the image coordinates of its
    pixel ``(0, 0)`` centre, and whether it touches the image border.

    Examples
    --------
    >>> import numpy as np
    >>> st, x0, y0, edge = cut_stamps(np.ones((100, 100)), 50.0, 50.0, 16, 2)
    >>> st.shape, float(st[0, 0]), edge
    ((16, 16), 4.0, False)
    """
    b = int(bin_factor)
    big = size * b
    x0 = round(x - (big - 1) / 2.0)
    y0 = round(y - (big - 1) / 2.0)
    out = np.full((big, big), np.nan)
    ny, nx = image.shape
    xa, xb = max(0, x0), min(nx, x0 + big)
    ya, yb = max(0, y0), min(ny, y0 + big)
    edge = xa > x0 or ya > y0 or xb < x0 + big or yb < y0 + big
    if xb > xa and yb > ya:
        out[ya - y0 : yb - y0, xa - x0 : xb - x0] = image[ya:yb, xa:xb]
    if b > 1:
        out = out.reshape(size, b, size, b).sum(axis=(1, 3))
    return out, x0 + (b - 1) / 2.0, y0 + (b - 1) / 2.0, bool(edge)


def predict_catalog(
    image,
    sources,
    *,
    psf_fwhm: float,
    rms=None,
    mask=None,
    net: SersicNet | None = None,
    bin_factor: int | str = "auto",
    batch_size: int = 1024,
    seed: int = 0,
) -> Table:
    """Sérsic parameters of every source of an image with :class:`SersicNet`.

    Parameters
    ----------
    image : array_like
        2-D background-subtracted image.
    sources : numpy.ndarray or astropy.table.Table
        A segmentation map (0 = background, labels 1..N: stamps are centred on each
        segment's centroid) or a catalog with ``x``/``y`` (or ``xcentroid``/
        ``ycentroid``) columns in 0-based pixels, and optionally ``id`` and ``area``.
    psf_fwhm : float
        PSF FWHM in pixels of ``image``.
    rms : float or array_like, optional
        Noise (1 sigma) per pixel, scalar or map; default: estimated per stamp.
    mask : array_like, optional
        True = bad pixel (treated like NaN: zero-filled and flagged).
    net : SersicNet, optional
        Default: :meth:`SersicNet.pretrained`.
    bin_factor : int or "auto"
        Sum ``b x b`` pixels before cutting a 64x64 stamp, for galaxies larger than the
        training set. ``"auto"``: per source, the smallest ``b`` that brings its
        isophotal radius ``sqrt(area / pi)`` below 20 binned pixels (1 when unknown).
    batch_size : int
        Stamps per forward pass.
    seed : int
        Seed of the noise that fills the parts of stamps beyond the image border.

    Returns
    -------
    table : astropy.table.Table
        ``id``, ``x``, ``y`` (stamp centres), ``bin_factor`` and the columns of
        :meth:`SersicNet.predict` converted back to image pixels (``sersic_rhalf``,
        ``sersic_xc``, ``sersic_yc`` and errors). ``flag`` adds ``EDGE`` for stamps that
        leave the image; their pixels beyond the border are filled with Gaussian noise of
        the stamp's rms (masked and NaN pixels inside the image stay masked).

    Notes
    -----
    Time O(N size^2) for N sources plus the network (~1 ms per source on 2 cores).

    Examples
    --------
    >>> import numpy as np
    >>> from morphoscope.simulate import simulate_stamps
    >>> st = simulate_stamps(1, seed=3, neighbours=0, sersic_n_range=(1, 2),
    ...                      r_e_range=(2, 4), class_fractions=[0, 1, 0, 0])
    >>> img = np.zeros((100, 120)); img[20:84, 40:104] = st.images[0]
    >>> seg = np.zeros(img.shape, int); seg[20:84, 40:104] = st.segmaps[0]
    >>> cat = predict_catalog(img, seg, psf_fwhm=float(st.psf_fwhm[0]), rms=float(st.rms[0]))
    >>> len(cat), int(cat["bin_factor"][0])
    (1, 1)
    """
    img, bad = as_image(image, "image")
    bad = bad | as_mask(mask, img.shape)
    work = np.where(bad, np.nan, img)
    if isinstance(psf_fwhm, bool) or not isinstance(psf_fwhm, numbers.Real) or psf_fwhm <= 0:
        raise ParameterError("psf_fwhm", psf_fwhm, "a positive number of pixels")
    rms_map = None if rms is None else as_rms(rms, img.shape)[0]
    net = SersicNet.pretrained() if net is None else net
    ids, xs, ys, radius = _sources(sources, work)
    if bin_factor == "auto":
        bins = np.where(np.isfinite(radius), np.ceil(radius / AUTO_RADIUS), 1).astype(int)
        bins = np.maximum(bins, 1)
    elif isinstance(bin_factor, numbers.Integral) and not isinstance(bin_factor, bool) \
            and bin_factor >= 1:  # fmt: skip
        bins = np.full(len(ids), int(bin_factor))
    else:
        raise ParameterError("bin_factor", bin_factor, "a positive integer or 'auto'")
    size = net.size
    n = len(ids)
    stamps = np.zeros((n, size, size), np.float32)
    origin = np.zeros((n, 2))
    flags = np.zeros(n, np.int32)
    noise = np.full(n, np.nan)
    inside = np.ones(img.shape)
    rng = np.random.default_rng(seed)
    nowhere = ~(np.isfinite(xs) & np.isfinite(ys))  # NaN positions: flagged rows of NaN
    for i in range(n):
        if nowhere[i]:
            flags[i] |= int(Flag.EDGE | Flag.MEASURE_FAILED)
            noise[i] = 1.0
            continue
        st, x0, y0, edge = cut_stamps(work, xs[i], ys[i], size, bins[i])
        origin[i] = x0, y0
        if rms_map is not None:
            r, _, _, _ = cut_stamps(np.where(np.isfinite(rms_map), rms_map, np.nan) ** 2,
                                    xs[i], ys[i], size, bins[i])  # fmt: skip
            noise[i] = np.sqrt(np.nanmedian(r)) if np.isfinite(r).any() else np.nan
        if edge:
            # Beyond the image border: noise like the training stamps (not masked pixels).
            flags[i] |= int(Flag.EDGE)
            out = np.isnan(cut_stamps(inside, xs[i], ys[i], size, bins[i])[0])
            sigma = noise[i] if np.isfinite(noise[i]) else _mad_sigma(st[~out])
            st[out] = rng.normal(0.0, sigma if np.isfinite(sigma) else 0.0, int(out.sum()))
        stamps[i] = st
    if rms_map is None:
        noise_arg = None
    else:
        noise_arg = np.where(np.isfinite(noise) & (noise > 0), noise, np.nan)
        if not np.all(np.isfinite(noise_arg)):
            raise InputError("rms", "no finite rms around some sources")
    table = Table()
    table["id"] = ids
    table["x"] = xs * u.pix
    table["y"] = ys * u.pix
    table["bin_factor"] = bins
    if n == 0:
        return table
    pred = net.predict(stamps, psf_fwhm=float(psf_fwhm) / bins, rms=noise_arg,
                       batch_size=batch_size)  # fmt: skip
    b = bins.astype(float)
    for name in pred.colnames:
        col = np.asarray(pred[name], dtype=np.float64) if name != "flag" else pred[name]
        if name in ("sersic_rhalf", "sersic_rhalf_err", "sersic_xc_err", "sersic_yc_err",
                    "psf_fwhm"):  # fmt: skip
            col = col * b
        elif name == "sersic_xc":
            col = origin[:, 0] + col * b
        elif name == "sersic_yc":
            col = origin[:, 1] + col * b
        elif name == "rms":
            col = col / b  # per original pixel
        if name != "flag":
            col = np.where(nowhere, np.nan, col)
        table[name] = col
        if name != "flag":
            table[name].unit = pred[name].unit
    table["flag"] = np.asarray(pred["flag"]) | flags
    return table
