"""``segment``: background, detection and de-blending behind one function."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import ndimage

from ..exceptions import MorphoscopeWarning, ParameterError
from ..flags import Flag
from ..io.validate import as_image, as_mask, as_psf, as_rms
from ..resources import SEGMENT_BYTES_PER_PIXEL, check_memory, n_pixels
from .background import estimate_background
from .deblend import deblend_saddle
from .detect import detect_sources, psf_fwhm
from .zhu import segment_zhu

__all__ = ["METHODS", "SegmentationResult", "segment", "segment_image"]

METHODS = ("saddle", "zhu", "sam")


@dataclass
class SegmentationResult:
    """Everything :func:`segment_image` produces.

    Attributes
    ----------
    segmap : ndarray of int32
        0 = background, 1..N sources.
    background, rms : ndarray
        Background subtracted from the image and the 1-sigma noise map used.
    image : ndarray
        Background-subtracted image (NaN/masked pixels set to 0).
    bad : ndarray of bool
        Pixels excluded from detection (NaN, infinite, masked, no valid rms).
    flags : ndarray of int
        Per-label :class:`~morphoscope.flags.Flag` bits (index = label, index 0 unused).
    parent : ndarray of int
        Per-label id of the connected detection it was split from.
    method : str
    params : dict
        The parameters used, for the record.
    """

    segmap: np.ndarray
    background: np.ndarray
    rms: np.ndarray
    image: np.ndarray
    bad: np.ndarray
    flags: np.ndarray
    parent: np.ndarray
    method: str
    params: dict = field(default_factory=dict)

    @property
    def nlabels(self) -> int:
        """Number of sources."""
        return int(self.segmap.max(initial=0))


def _check_positive(name: str, value, integer: bool = False) -> None:
    ok = (
        isinstance(value, int | float | np.integer | np.floating)
        and np.isfinite(value)
        and value > 0
    )
    if integer:
        ok = ok and float(value) == int(value)
    if not ok:
        raise ParameterError(name, value, "a positive integer" if integer else "a positive number")


def segment_image(
    image,
    *,
    rms=None,
    psf=None,
    mask=None,
    method: Literal["saddle", "zhu", "sam"] = "saddle",
    background="auto",
    nsigma: float | None = None,
    npixels: int = 5,
    min_snr: float = 10.0,
    kernel_fwhm: float | None = None,
    prominence: float = 3.0,
    contrast: float = 0.0003,
    max_saddle_ratio: float = 1.0,
    knot_fraction: float = 0.05,
    min_knots: int = 6,
    knot_area: float | None = None,
    min_distance: int = 5,
    box_size: int = 64,
    checkpoint=None,
    sam_options: dict | None = None,
) -> SegmentationResult:
    """Detect and de-blend sources; return the segmentation map and its by-products.

    Parameters are those of :func:`segment`. Returns a :class:`SegmentationResult`.
    """
    if method not in METHODS:
        raise ParameterError("method", method, f"one of {', '.join(map(repr, METHODS))}")
    check_memory(SEGMENT_BYTES_PER_PIXEL[method] * n_pixels(image), "segment", "image")
    data, bad = as_image(image, "image", dtype=np.float32)
    if mask is not None:
        bad |= as_mask(mask, data.shape, "mask")
    _check_positive("npixels", npixels, integer=True)
    _check_positive("box_size", box_size, integer=True)
    for name, value in (
        ("prominence", prominence),
        ("contrast", contrast),
        ("max_saddle_ratio", max_saddle_ratio),
        ("knot_fraction", knot_fraction),
        ("min_knots", min_knots),
    ):
        if not (isinstance(value, int | float) and value >= 0 and np.isfinite(value)):
            raise ParameterError(name, value, "a non-negative number")

    if nsigma is not None:
        _check_positive("nsigma", nsigma)
    if not (isinstance(min_snr, int | float) and min_snr >= 0 and np.isfinite(min_snr)):
        raise ParameterError("min_snr", min_snr, "a non-negative number")
    if method == "zhu":
        _check_positive("min_distance", min_distance, integer=True)

    # Background.
    if isinstance(background, str):
        if background != "auto":
            raise ParameterError("background", background, "'auto', None, a number or an array")
        bkg, bkg_rms = estimate_background(data, mask=bad, box_size=int(box_size), rms=rms is None)
    elif background is None:
        bkg, bkg_rms = None, None
    else:
        try:
            bkg = np.broadcast_to(np.asarray(background, np.float32), data.shape)
        except (TypeError, ValueError):
            bkg = None
        if bkg is None or not np.all(np.isfinite(bkg)):
            shown = background if np.ndim(background) == 0 else f"array {np.shape(background)}"
            raise ParameterError(
                "background",
                shown,
                f"'auto', None, a finite number or a finite array of shape {data.shape}",
            )
        bkg_rms = None
    sub = data  # a private float32 copy: subtract in place
    if bkg is not None:
        sub -= bkg
    if rms is None:
        if bkg_rms is None:
            _, bkg_rms = estimate_background(sub, mask=bad, box_size=int(box_size))
        rms_map = np.array(bkg_rms, np.float32)
        rbad = ~(np.isfinite(rms_map) & (rms_map > 0))
        rms_map[rbad] = np.inf
    else:
        rms_map, rbad = as_rms(rms, data.shape, "rms", dtype=np.float32)
    if rbad.any():
        bad |= rbad
    if bad.any():
        sub[bad] = 0.0
    background_map = (
        np.zeros(data.shape, np.float32) if bkg is None else np.asarray(bkg, np.float32)
    )

    psf_img = as_psf(psf, "psf") if psf is not None else None
    params: dict = {"method": method, "npixels": int(npixels)}

    if method == "sam":
        import inspect

        from .sam import segment_sam

        options = dict(sam_options or {})
        allowed = set(inspect.signature(segment_sam).parameters) - {
            "image", "rms", "bad", "psf", "checkpoint"
        }  # fmt: skip
        if set(options) - allowed:
            raise ParameterError(
                "sam_options", sorted(set(options) - allowed), f"keys among {sorted(allowed)}"
            )
        # The detection parameters given to segment() choose the sources SAM is prompted at.
        options.setdefault(
            "detect_options",
            {
                "nsigma": nsigma,
                "npixels": npixels,
                "min_snr": min_snr,
                "kernel_fwhm": kernel_fwhm,
                "prominence": prominence,
                "contrast": contrast,
                "max_saddle_ratio": max_saddle_ratio,
            },
        )
        options.setdefault("npixels", int(npixels))
        options.setdefault("min_snr", float(min_snr))
        segmap, parent, sam_params = segment_sam(
            sub, rms_map, bad=bad, psf=psf_img, checkpoint=checkpoint, **options
        )
        n = int(segmap.max(initial=0))
        params.update(sam_params)
    elif method == "zhu":
        thr = 3.0 if nsigma is None else float(nsigma)
        segmap = segment_zhu(sub, rms_map, nsigma=thr, min_distance=int(min_distance), bad=bad)
        parent_map, _ = ndimage.label(segmap > 0, structure=np.ones((3, 3), bool))
        n = int(segmap.max(initial=0))
        parent = np.zeros(n + 1, np.int32)
        if n:
            parent[segmap.ravel()] = parent_map.ravel()
            parent[0] = 0
        params.update(nsigma=thr, min_distance=int(min_distance))
    else:
        thr = 3.5 if nsigma is None else float(nsigma)
        if kernel_fwhm is None:
            kernel_fwhm = psf_fwhm(psf_img) if psf_img is not None else 2.5
            if not np.isfinite(kernel_fwhm) or kernel_fwhm <= 0:
                kernel_fwhm = 2.5
        _check_positive("kernel_fwhm", kernel_fwhm)
        smoothed, snr, detections, ndet = detect_sources(
            sub,
            rms_map,
            fwhm=float(kernel_fwhm),
            nsigma=thr,
            npixels=int(npixels),
            min_snr=float(min_snr),
            bad=bad,
        )
        if knot_area is None:
            knot_area = np.pi * (2.0 * kernel_fwhm) ** 2
        _check_positive("knot_area", knot_area)
        deblend_options = dict(
            prominence=prominence,
            contrast=contrast,
            max_saddle_ratio=max_saddle_ratio,
            knot_fraction=float(knot_fraction),
            min_knots=int(min_knots),
            knot_area=float(knot_area),
        )
        try:
            segmap, parent = deblend_saddle(
                smoothed, snr, detections, threshold=thr, **deblend_options
            )
            failed = np.zeros(0, int)
        except Exception as exc:  # pragma: no cover - defensive: keep parents, flag them
            warnings.warn(
                f"de-blending failed ({exc}); parents kept whole", MorphoscopeWarning, stacklevel=2
            )
            segmap, parent = detections.astype(np.int32), np.arange(ndet + 1, dtype=np.int32)
            failed = np.arange(1, ndet + 1)
        params.update(
            nsigma=thr, min_snr=float(min_snr), kernel_fwhm=float(kernel_fwhm), **deblend_options
        )
        n = int(segmap.max(initial=0))
    flags = np.zeros(n + 1, np.int64)
    if n:
        children = np.bincount(parent[1:], minlength=int(parent.max(initial=0)) + 1)
        flags[1:][children[parent[1:]] > 1] |= int(Flag.DEBLENDED)
        if method == "saddle" and failed.size:
            flags[failed] |= int(Flag.DEBLEND_FAILED)
        # Sources touching bad pixels or the image border.
        if bad.any():
            near_bad = ndimage.maximum_filter(bad.view(np.uint8), size=3).view(bool)
            touched = np.unique(segmap[near_bad & (segmap > 0)])
            flags[touched[touched > 0]] |= int(Flag.MASKED_PIXELS)
        edge = np.unique(np.concatenate([segmap[0], segmap[-1], segmap[:, 0], segmap[:, -1]]))
        flags[edge[edge > 0]] |= int(Flag.EDGE)
    return SegmentationResult(
        segmap=segmap.astype(np.int32, copy=False),
        background=background_map,
        rms=rms_map,
        image=sub,
        bad=bad,
        flags=flags,
        parent=parent.astype(np.int32),
        method=method,
        params=params,
    )


def segment(
    image,
    *,
    rms=None,
    psf=None,
    mask=None,
    method: Literal["saddle", "zhu", "sam"] = "saddle",
    **options,
) -> np.ndarray:
    """Detect and de-blend sources; return an integer segmentation map (0 = background).

    Parameters
    ----------
    image : array_like
        2-D image (any numeric dtype, any byte order; never modified). NaN/inf pixels
        are excluded from detection.
    rms : array_like or float, optional
        1-sigma noise per pixel (or a scalar). Estimated from the image when omitted.
    psf : array_like, optional
        PSF image; its FWHM sets the smoothing kernel of the default method.
    mask : array_like of bool, optional
        True = ignore this pixel.
    method : {"saddle", "zhu", "sam"}
        ``"saddle"`` (default): Gaussian matched filter of the PSF's FWHM, threshold at
        ``nsigma`` (default 3.5) in smoothed S/N, connected regions of ``npixels`` (5)
        or more whose isophotal S/N, sum(f) / sqrt(sum(rms**2)), is at least
        ``min_snr`` (10: well under one false detection per 10^6 pixels of pure noise),
        watershed from the smoothed image's significant local maxima, and merging of
        basins across saddles that are not significant (see
        :func:`~morphoscope.segment.deblend.deblend_saddle`: ``prominence`` 3,
        ``contrast`` 0.0003, ``max_saddle_ratio`` 1, and the knot rule ``min_knots`` 6,
        ``knot_fraction`` 0.05, ``knot_area`` pi (2 FWHM)**2 for clumpy galaxies).
        ``"zhu"``: the reference recipe (threshold 3 x rms, distance transform, local
        maxima with a 3x3 footprint and ``min_distance`` 5, watershed of the negative
        distance), see :func:`~morphoscope.segment.zhu.segment_zhu`.
        ``"sam"``: Segment Anything on weights on disk (``checkpoint=``, optional extra
        ``morphoscope[sam]``), see :func:`morphoscope.segment.sam.segment_sam`.
    **options
        ``background`` (``"auto"``: sigma-clipped box statistics with source masking, see
        :func:`~morphoscope.segment.background.estimate_background`; ``None``: already
        subtracted; or a number/array), ``nsigma``, ``npixels``, ``min_snr``,
        ``kernel_fwhm``, ``prominence``, ``contrast``, ``max_saddle_ratio``,
        ``knot_fraction``, ``min_knots``, ``knot_area`` (default the area of a circle of
        radius 2 FWHM), ``min_distance``, ``box_size``; for ``"sam"``
        ``checkpoint`` and ``sam_options``.

    Returns
    -------
    segmap : ndarray of int32
        Labels 1..N; usable as ``photutils.segmentation.SegmentationImage(segmap)``.

    Notes
    -----
    Time is linear in the image size (background from sorted box samples, separable
    smoothing, labelling) plus O(P log P) for the watershed of the P footprint pixels,
    which runs on a packed canvas of the detections only; memory is a few float32
    image-sized arrays (at most 50 bytes per pixel at the peak, 70 for ``"zhu"``; an
    :class:`~morphoscope.exceptions.InputError` is raised before allocating more than is
    available, see :mod:`morphoscope.resources`).
    :func:`segment_image` returns the background, rms and per-source flags as well.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y, x = np.mgrid[:96, :96]
    >>> img = rng.normal(0, 1, (96, 96))
    >>> for x0, y0 in [(30, 40), (60, 50)]:
    ...     img += 50 * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / 18)
    >>> seg = segment(img, rms=1.0, background=None)
    >>> int(seg.max())
    2
    """
    return segment_image(image, rms=rms, psf=psf, mask=mask, method=method, **options).segmap
