"""De-blending by watershed basins merged across shallow saddles.

Each local maximum of the smoothed image seeds a watershed basin inside the
detection footprint. Adjacent basins are then merged in order of decreasing saddle
height (the highest pixel pair along their common border), the way a persistence /
component tree is built: when two components meet at saddle ``s``, the one with the
lower peak survives as a separate source only if

* its prominence ``peak - s`` exceeds ``prominence`` times the smoothed noise at its peak, and
* its flux above the saddle level, sum(max(f - s, 0)) over its pixels, is at least ``contrast``
  times the flux of the whole detection (SExtractor's ``DEBLEND_MINCONT``, with its definition
  of a branch's flux: a knot on a galaxy's disk counts only its excess over the disk), and
* its saddle is at most ``max_saddle_ratio`` of its own peak (the dip between the two must be real
  relative to the peak, not only relative to the noise; this keeps bright knots on a galaxy's
  disk from being split off).

Otherwise it is merged into the other. Everything is vectorised except the loop over
border edges, whose number is proportional to the number of basins.
"""

from __future__ import annotations

import numpy as np

from ._kernels import (
    basin_values,
    border_saddles,
    bounding_boxes,
    flood_into,
    pack_fill,
    peak_pixels,
)

__all__ = ["deblend_saddle", "pack_detections"]


def _shelf_pack(heights: np.ndarray, widths: np.ndarray, gap: int = 1):
    """Place boxes on shelves (tallest first); return their origins and the canvas shape."""
    order = np.argsort(-heights, kind="stable")
    area = float(np.sum((heights + gap) * (widths + gap)))
    width = int(max(widths.max() + gap, np.sqrt(area) * 1.1))
    oy = np.zeros(heights.size, np.int64)
    ox = np.zeros(heights.size, np.int64)
    x = y = shelf = 0
    for i in order:
        h, w = int(heights[i]), int(widths[i])
        if x + w > width:
            y += shelf + gap
            x = shelf = 0
        oy[i], ox[i] = y, x
        x += w + gap
        shelf = max(shelf, h)
    return oy, ox, (y + shelf, width)


def _roots(parent: np.ndarray) -> np.ndarray:
    """Root of every node of a union-find forest (vectorised pointer jumping)."""
    roots = parent.copy()
    while True:
        nxt = roots[roots]
        if np.array_equal(nxt, roots):
            return roots
        roots = nxt


def _pack(detections: np.ndarray, n: int, smoothed: np.ndarray, snr: np.ndarray):
    """Packed labels, smoothed values, S/N and image index of every packed pixel."""
    y0, y1, x0, x1 = bounding_boxes(detections, n)
    oy, ox, shape = _shelf_pack(y1 - y0, x1 - x0)
    return pack_fill(detections, smoothed, snr, y0, y1, x0, x1, oy, ox, shape[0], shape[1])


def pack_detections(detections: np.ndarray, n: int):
    """Copy every detection's bounding box into a compact canvas, one pixel apart.

    Returns the packed labels (0 outside footprints) and, for every packed pixel, the flat
    index of the image pixel it came from (-1 outside footprints). Detections cover a few
    per cent of a typical field, so the de-blending works on a canvas ~10x smaller than
    the image; time is one pass over the image and one over the canvas (compiled).
    """
    detections = np.ascontiguousarray(detections, np.int32)
    zeros = np.zeros(detections.shape, np.float32)
    plab, _, _, pidx = _pack(detections, int(n), zeros, zeros)
    return plab, pidx


def deblend_saddle(
    smoothed: np.ndarray,
    snr: np.ndarray,
    detections: np.ndarray,
    *,
    prominence: float = 3.0,
    contrast: float = 0.0003,
    max_saddle_ratio: float = 1.0,
    threshold: float | None = None,
    knot_fraction: float = 0.05,
    min_knots: int = 6,
    knot_area: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split detections into sources at significant saddles of the smoothed image.

    Parameters
    ----------
    smoothed : ndarray
        Smoothed, background-subtracted image.
    snr : ndarray
        Smoothed S/N map (``smoothed`` divided by its noise).
    detections : ndarray of int
        Connected detections (0 = background).
    prominence : float
        Minimum ``peak - saddle`` in units of the smoothed noise at the peak.
    contrast : float
        Minimum flux of a child above its saddle, relative to its whole detection.
    max_saddle_ratio : float
        Maximum ``saddle / peak`` of the child.
    threshold : float, optional
        The detection threshold in ``snr`` units. Local maxima lower than
        ``threshold + prominence`` cannot pass the prominence test and are not used as
        watershed markers, which saves most of the watershed's work.
    knot_fraction, min_knots, knot_area : float, int, float
        Clumpy galaxies: when ``min_knots`` or more children would split from one component,
        each with a flux above its saddle below ``knot_fraction`` of the component's flux and
        at most ``knot_area`` pixels above its saddle (compact, like the PSF; ``None``: any
        size), they are star-forming knots of that galaxy and stay part of it
        (``min_knots=0`` turns this off). Resolved satellites larger than ``knot_area`` stay
        separate.

    Returns
    -------
    segmap : ndarray of int32
        De-blended labels 1..N, numbered in raster order of their peaks.
    parent : ndarray of int32
        For each new label ``i`` (index ``i``; index 0 unused), the detection it came from.

    Notes
    -----
    The detections are first packed into a compact canvas (:func:`pack_detections`), so
    that everything after that works on the footprint pixels and not on the image: time
    O(N) for the two image-sized passes (compiled) plus O(P) for the watershed of the P
    footprint pixels (a hierarchical queue, :func:`~morphoscope.segment._kernels.flood_into`)
    and the sorts of each basin's values; memory a few arrays of the canvas's size besides
    the output map.

    Examples
    --------
    Two touching Gaussian sources, one detection, split at their saddle:

    >>> import numpy as np
    >>> y, x = np.mgrid[:40, :60]
    >>> img = 50 * np.exp(-((x - 20) ** 2 + (y - 20) ** 2) / 18.0)
    >>> img += 30 * np.exp(-((x - 36) ** 2 + (y - 20) ** 2) / 18.0)
    >>> snr = img.astype(np.float32)  # noise 1
    >>> detections = (snr > 2).astype(np.int32)
    >>> segmap, parent = deblend_saddle(snr, snr, detections, threshold=2.0)
    >>> int(segmap.max()), parent.tolist(), int(segmap[20, 20]), int(segmap[20, 36])
    (2, [0, 1, 1], 1, 2)
    """
    n = int(detections.max(initial=0))
    if n == 0:
        return np.zeros(detections.shape, np.int32), np.zeros(1, np.int32)
    plab, psm, psnr, pidx = _pack(
        np.ascontiguousarray(detections, np.int32),
        n,
        np.ascontiguousarray(smoothed),
        np.ascontiguousarray(snr, smoothed.dtype),
    )
    inside = pidx >= 0
    src = pidx[inside]
    pseg, parent, peak_pix = _deblend_packed(
        psm,
        psnr,
        plab,
        prominence=prominence,
        contrast=contrast,
        max_saddle_ratio=max_saddle_ratio,
        threshold=-np.inf if threshold is None else float(threshold),
        knot_fraction=knot_fraction,
        min_knots=min_knots,
        knot_area=np.inf if knot_area is None else float(knot_area),
    )
    # Number the labels in raster order of their peaks in the image.
    rank = np.argsort(pidx.ravel()[peak_pix], kind="stable")
    lut = np.zeros(rank.size + 1, np.int32)
    lut[rank + 1] = np.arange(1, rank.size + 1, dtype=np.int32)
    segmap = np.zeros(detections.shape, np.int32)
    segmap.ravel()[src] = lut[pseg[inside]]
    new_parent = np.zeros_like(parent)
    new_parent[lut[1:]] = parent[1:]
    return segmap, new_parent


def _deblend_packed(
    smoothed,
    snr,
    detections,
    *,
    prominence,
    contrast,
    max_saddle_ratio,
    threshold,
    knot_fraction=0.05,
    min_knots=6,
    knot_area=np.inf,
):
    """De-blend on the packed canvas; return the labels, parents and peak pixel of each label."""
    footprint = detections > 0
    mpix = peak_pixels(smoothed, footprint)
    if mpix.size == 0:
        return np.zeros_like(detections, np.int32), np.zeros(1, np.int32), np.zeros(0, np.int64)
    mdet = detections.ravel()[mpix]
    msnr = snr.ravel()[mpix].astype(np.float64)
    mval = smoothed.ravel()[mpix].astype(np.float64)
    # A marker can only survive as a separate source if its peak rises ``prominence`` above
    # the lowest possible saddle (the detection threshold); the others are noise bumps that
    # the watershed floods from their neighbours. Every detection keeps its highest marker.
    order = np.lexsort((-mval, mdet))
    top = np.zeros(mpix.size, bool)
    top[order[np.r_[True, mdet[order][1:] != mdet[order][:-1]]]] = True
    keep = top | (msnr >= threshold + prominence)
    mpix, mdet, msnr, mval = mpix[keep], mdet[keep], msnr[keep], mval[keep]
    nb = mpix.size
    ndet = int(detections.max())
    per_det = np.bincount(mdet, minlength=ndet + 1)
    # Basins: a detection with one marker is one basin; the others go to the watershed.
    basin_of_det = np.zeros(ndet + 1, np.int32)
    single = per_det[mdet] == 1
    basin_of_det[mdet[single]] = np.flatnonzero(single).astype(np.int32) + 1
    basins = basin_of_det[detections]
    multi = per_det > 1
    if nb > int(single.sum()):
        # Pixels of multi-marker detections are 0 in ``basins``: flood them from their markers.
        seed_pix = mpix[~single]
        basins.ravel()[seed_pix] = np.flatnonzero(~single).astype(np.int32) + 1
        region = multi[detections]
        region.ravel()[seed_pix] = False
        flood_into(smoothed.astype(np.float32, copy=False), basins, region, seed_pix)
    peak = np.concatenate([[-np.inf], mval])
    with np.errstate(divide="ignore", invalid="ignore"):
        noise = np.where(msnr != 0, mval / msnr, np.inf)
    noise = np.concatenate([[np.inf], noise])
    parent_of_basin = np.concatenate([[0], mdet]).astype(np.int64)
    if not multi.any():
        parent = parent_of_basin.astype(np.int32)
        return basins, parent, mpix

    # Flux of every basin, and the pixel values of every basin of a multi-marker detection
    # sorted within the basin (for the flux above a saddle level), in one compiled pass.
    multi_basin = multi[parent_of_basin]
    multi_basin[0] = False
    flux, pv, count, start = basin_values(basins, smoothed, nb, multi_basin)
    parent_flux = np.bincount(parent_of_basin[1:], weights=flux[1:], minlength=ndet + 1)
    cum = np.concatenate([[0.0], np.cumsum(pv)])
    members: dict[int, list[int]] = {}

    def flux_above(comp: int, level: float) -> tuple[float, int]:
        total, area = 0.0, 0
        for k in members.get(comp, (comp,)):
            lo, hi = start[k], start[k] + count[k]
            i = lo + int(np.searchsorted(pv[lo:hi], level, side="right"))
            total += (cum[hi] - cum[i]) - level * (hi - i)
            area += hi - i
        return total, area

    a, b, saddle = border_saddles(basins, smoothed, nb)
    order = np.argsort(-saddle, kind="stable")
    root = np.arange(nb + 1)
    kept: list[tuple[int, int, float, int]] = []

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for e in order:
        ra, rb = find(int(a[e])), find(int(b[e]))
        if ra == rb:
            continue
        s = saddle[e]
        low, high = (ra, rb) if peak[ra] < peak[rb] else (rb, ra)
        total = parent_flux[parent_of_basin[low]]
        if (peak[low] - s) >= prominence * noise[low] and s <= max_saddle_ratio * peak[low]:
            excess, area = flux_above(low, s)
            if excess >= contrast * total:
                kept.append((low, high, excess, area))
                continue
        root[low] = high
        members.setdefault(high, [high]).extend(members.pop(low, [low]))
    if kept and min_knots > 0:
        # Knots: when a galaxy would shed ``min_knots`` or more pieces (directly, or through
        # pieces split from its pieces) whose flux above their saddle is each less than
        # ``knot_fraction`` of the galaxy's flux and compact (``knot_area``), it is one clumpy
        # galaxy (star-forming knots on a disk), not a group: the small pieces rejoin it.
        comp_flux = np.zeros(nb + 1)
        np.add.at(comp_flux, _roots(root)[1:], flux[1:])
        up, excess_of = {}, {}
        for low, high, excess, area in kept:  # in order of decreasing saddle: the first counts
            c = find(low)
            if c not in up:
                up[c] = find(high)
                excess_of[c] = excess if area <= knot_area else np.inf

        def top(c: int) -> int:
            seen = 0
            while c in up and seen <= len(up):
                c, seen = up[c], seen + 1
            return c

        small: dict[int, list[int]] = {}
        for c in up:
            t = top(c)
            if excess_of[c] < knot_fraction * comp_flux[t]:
                small.setdefault(t, []).append(c)
        for t, kids in small.items():
            if len(kids) >= min_knots:
                for c in kids:
                    root[c] = t
    roots = _roots(root)
    uniq, inverse = np.unique(roots[1:], return_inverse=True)
    lut = np.zeros(nb + 1, np.int32)
    lut[1:] = inverse.astype(np.int32) + 1
    segmap = lut[basins]
    parent = np.zeros(uniq.size + 1, np.int32)
    parent[lut[1:]] = parent_of_basin[1:]
    # The surviving root of each label is its highest basin: its marker is the label's peak.
    return segmap, parent, mpix[uniq - 1]
