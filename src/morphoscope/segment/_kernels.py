"""Compiled (numba) loops of the de-blender: packing, peaks, watershed and saddles.

Each kernel is one pass over its pixels in compiled code, replacing a chain of whole-array
numpy/scipy/scikit-image calls (each of which makes its own pass and its own temporaries).
They are private: :mod:`morphoscope.segment.deblend` calls them, and the tests compare them
with the scipy / scikit-image functions they replace.

The kernels are compiled on first use and cached on disk (``cache=True``), so only the
first run on a machine pays the compilation (a few seconds).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.typed import Dict

__all__ = [
    "basin_values",
    "border_saddles",
    "bounding_boxes",
    "flood_into",
    "pack_fill",
    "peak_pixels",
    "watershed_flood",
]


@njit(cache=True, nogil=True)
def bounding_boxes(labels, n):  # pragma: no cover - compiled
    """Bounding box ``[y0, y1) x [x0, x1)`` of labels 1..n in one pass over the image."""
    ny, nx = labels.shape
    y0 = np.full(n, ny, np.int64)
    y1 = np.zeros(n, np.int64)
    x0 = np.full(n, nx, np.int64)
    x1 = np.zeros(n, np.int64)
    for y in range(ny):
        for x in range(nx):
            k = labels[y, x]
            if k > 0:
                k -= 1
                if y < y0[k]:
                    y0[k] = y
                y1[k] = y + 1
                if x < x0[k]:
                    x0[k] = x
                if x + 1 > x1[k]:
                    x1[k] = x + 1
    return y0, y1, x0, x1


@njit(cache=True, nogil=True)
def pack_fill(labels, smoothed, snr, y0, y1, x0, x1, oy, ox, height, width):  # pragma: no cover
    """Copy every detection's pixels (and their smoothed value and S/N) into the canvas.

    Returns the packed labels, smoothed values (-inf outside footprints), S/N and the flat
    image index of every packed pixel (-1 outside footprints).
    """
    nx_img = labels.shape[1]
    plab = np.zeros((height, width), np.int32)
    psm = np.full((height, width), -np.inf, smoothed.dtype)
    psnr = np.zeros((height, width), snr.dtype)
    pidx = np.full((height, width), -1, np.int64)
    for k in range(y0.size):
        lab = k + 1
        dy = oy[k] - y0[k]
        dx = ox[k] - x0[k]
        for y in range(y0[k], y1[k]):
            for x in range(x0[k], x1[k]):
                if labels[y, x] == lab:
                    py = y + dy
                    px = x + dx
                    plab[py, px] = lab
                    psm[py, px] = smoothed[y, x]
                    psnr[py, px] = snr[y, x]
                    pidx[py, px] = y * nx_img + x
    return plab, psm, psnr, pidx


@njit(cache=True, nogil=True)
def _find(root, i):  # pragma: no cover - compiled
    while root[i] != i:
        root[i] = root[root[i]]
        i = root[i]
    return i


@njit(cache=True, nogil=True)
def peak_pixels(values, footprint):  # pragma: no cover - compiled
    """Local maxima (8 neighbours, ``>=``) inside ``footprint``, plateaus as one peak.

    Returns the flat index of each peak's first pixel in raster order, sorted; this is
    ``scipy.ndimage.maximum_filter(values, 3, mode="constant", cval=-inf) == values``
    restricted to the footprint and labelled 8-connected, one pixel per label.
    """
    ny, nx = values.shape
    is_peak = np.zeros(ny * nx, np.bool_)
    count = 0
    for y in range(ny):
        for x in range(nx):
            if not footprint[y, x]:
                continue
            v = values[y, x]
            ok = True
            for dy in range(-1, 2):
                yy = y + dy
                if yy < 0 or yy >= ny:
                    continue
                for dx in range(-1, 2):
                    xx = x + dx
                    if xx < 0 or xx >= nx:
                        continue
                    if values[yy, xx] > v:
                        ok = False
            if ok:
                is_peak[y * nx + x] = True
                count += 1
    # Plateau peaks: union adjacent peak pixels (they have equal values); keep the first.
    idx = np.empty(count, np.int64)
    root = np.empty(ny * nx, np.int64) if count else np.empty(0, np.int64)
    c = 0
    for i in range(ny * nx):
        if is_peak[i]:
            idx[c] = i
            c += 1
            root[i] = i
    merged = False
    for i in idx:
        y = i // nx
        x = i - y * nx
        # Neighbours already visited in raster order: left, and the three above.
        for dy, dx in ((0, -1), (-1, -1), (-1, 0), (-1, 1)):
            yy = y + dy
            xx = x + dx
            if yy < 0 or xx < 0 or xx >= nx:
                continue
            j = yy * nx + xx
            if is_peak[j]:
                a = _find(root, i)
                b = _find(root, j)
                if a != b:
                    merged = True
                    if a < b:
                        root[b] = a
                    else:
                        root[a] = b
    if not merged:
        return idx
    keep = np.zeros(count, np.bool_)
    for c in range(count):
        keep[c] = _find(root, idx[c]) == idx[c]
    return idx[keep]


_SHIFT = 12  # bins: the top 20 bits of the order-preserving key, 11 mantissa bits (0.05 %)


@njit(cache=True, nogil=True, inline="always")
def _bin(bits):  # pragma: no cover - compiled
    """Bin of a float32 ``v`` (given its bits) that increases as ``v`` decreases: the top
    bits of ``-v`` mapped to an unsigned integer of the same order (IEEE 754)."""
    x = np.int64(bits) ^ 0x80000000  # the bits of -v
    if x & 0x80000000:
        x = 0xFFFFFFFF - x
    else:
        x |= 0x80000000
    return x >> _SHIFT


@njit(cache=True, nogil=True, inline="always")
def _push(head, tail, nxt, b, i):  # pragma: no cover - compiled
    """Append pixel ``i`` to bin ``b`` of the queue (linked lists ``head``/``tail``/``nxt``)."""
    nxt[i] = -1
    if tail[b] < 0:
        head[b] = i
    else:
        nxt[tail[b]] = i
    tail[b] = i


def watershed_flood(values: np.ndarray, seeds: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Marker watershed flooding from the highest ``values`` down, 8-connected, in ``mask``.

    The algorithm of :func:`skimage.segmentation.watershed` applied to ``-values`` (a pixel
    takes the label of the neighbour that reached it first; pixels are reached in order of
    decreasing value, then in order of arrival), with a hierarchical queue (Meyer 1991) in
    place of a heap: values are binned to 11 mantissa bits (0.05 %), pixels in one bin are
    taken in order of arrival, and a pixel reached from a lower one joins the bin being
    flooded. Push and pop are O(1) instead of O(log Q). The labels equal scikit-image's
    except at the border between two basins, where values within 0.05 % of each other
    can be taken in a different order (a few pixels in a million).
    Returns the labels (int32; 0 outside ``mask`` and in parts no seed reaches).
    Time O(P + B) for P pixels in ``mask`` and B bins between the lowest and highest value
    (about 2000 per factor of two in value); memory two int64 per pixel.
    """
    out = np.array(seeds, np.int32, order="C")
    flood_into(
        np.ascontiguousarray(values, np.float32),
        out,
        np.ascontiguousarray(mask, bool),
        np.flatnonzero(out),
    )
    return out


@njit(cache=True, nogil=True)
def flood_into(values, out, mask, seed_pix):  # pragma: no cover - compiled
    """:func:`watershed_flood` in place: ``out`` holds the seed labels at ``seed_pix`` and
    receives the labels of the flooded ``mask`` pixels (which must be 0 in ``out``)."""
    ny, nx = values.shape
    flat_out = out.ravel()
    flat_mask = mask.ravel()
    bits = values.ravel().view(np.uint32)
    npix = ny * nx
    lo = np.int64(1) << 40
    hi = np.int64(-1)
    for i in seed_pix:
        b = _bin(bits[i])
        lo = min(lo, b)
        hi = max(hi, b)
    for i in range(npix):
        if flat_mask[i]:
            b = _bin(bits[i])
            lo = min(lo, b)
            hi = max(hi, b)
    if hi < 0:
        return
    nbin = hi - lo + 1
    head = np.full(nbin, -1, np.int64)
    tail = np.full(nbin, -1, np.int64)
    nxt = np.empty(npix, np.int64)
    for i in seed_pix:
        _push(head, tail, nxt, _bin(bits[i]) - lo, i)
    cur = 0
    while cur < nbin:
        i = head[cur]
        if i < 0:
            cur += 1
            continue
        head[cur] = nxt[i]
        if head[cur] < 0:
            tail[cur] = -1
        cy = i // nx
        cx = i - cy * nx
        lab = flat_out[i]
        for dy in range(-1, 2):
            yy = cy + dy
            if yy < 0 or yy >= ny:
                continue
            for dx in range(-1, 2):
                xx = cx + dx
                if xx < 0 or xx >= nx:
                    continue
                j = yy * nx + xx
                if not flat_mask[j] or flat_out[j] != 0:
                    continue
                flat_out[j] = lab
                _push(head, tail, nxt, max(_bin(bits[j]) - lo, cur), j)


@njit(cache=True, nogil=True)
def border_saddles(basins, values, n):  # pragma: no cover - compiled
    """For every touching pair of basins, the highest ``min`` of two adjacent border pixels.

    Returns ``(a, b, saddle)`` with ``a < b``, one entry per pair, sorted by ``(a, b)``.
    8-connected pairs; one pass over the pixels with a hash table of the pairs.
    """
    ny, nx = basins.shape
    best = Dict.empty(key_type=types.int64, value_type=types.float64)
    for y in range(ny):
        for x in range(nx):
            a = basins[y, x]
            if a <= 0:
                continue
            for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
                yy = y + dy
                xx = x + dx
                if yy >= ny or xx < 0 or xx >= nx:
                    continue
                b = basins[yy, xx]
                if b <= 0 or b == a:
                    continue
                v = np.float64(min(values[y, x], values[yy, xx]))
                key = np.int64(min(a, b)) * (n + 1) + max(a, b)
                old = best.get(key, -np.inf)
                if v > old:
                    best[key] = v
    m = len(best)
    keys = np.empty(m, np.int64)
    c = 0
    for k in best.keys():
        keys[c] = k
        c += 1
    keys.sort()
    a_out = keys // (n + 1)
    b_out = keys % (n + 1)
    s_out = np.empty(m, np.float64)
    for i in range(m):
        s_out[i] = best[keys[i]]
    return a_out, b_out, s_out


@njit(cache=True, nogil=True)
def basin_values(basins, values, nb, grouped):  # pragma: no cover - compiled
    """Flux of every basin and the sorted pixel values of the ``grouped`` basins.

    Returns ``flux`` (sum of the positive values of each basin 0..nb), the values of the
    pixels of every basin ``k`` with ``grouped[k]``, grouped by basin and sorted within it,
    and each basin's ``count`` and ``start`` in that array (0 for the others).
    Time O(P) plus the sorts within basins; memory one float64 per grouped pixel.
    """
    flat_b = basins.ravel()
    flat_v = values.ravel()
    flux = np.zeros(nb + 1, np.float64)
    count = np.zeros(nb + 1, np.int64)
    for i in range(flat_b.size):
        k = flat_b[i]
        if k > 0:
            v = np.float64(flat_v[i])
            if v > 0:
                flux[k] += v
            if grouped[k]:
                count[k] += 1
    start = np.zeros(nb + 1, np.int64)
    total = 0
    for k in range(nb + 1):
        start[k] = total
        total += count[k]
    out = np.empty(total, np.float64)
    fill = start.copy()
    for i in range(flat_b.size):
        k = flat_b[i]
        if k > 0 and grouped[k]:
            out[fill[k]] = flat_v[i]
            fill[k] += 1
    for k in range(nb + 1):
        if count[k] > 1:
            out[start[k] : start[k] + count[k]].sort()
    return flux, out, count, start
