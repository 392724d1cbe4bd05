"""Compiled (numba) helpers for the per-stamp steps of :mod:`.nonparametric`.

Each kernel does in one pass over the stamp what the Python code did with several numpy
and scipy calls (masks, outlier test, sky box, smoothing residuals, Gini segmap, Gini, M20
sums, MID segmap search, shape-asymmetry segmap, ``rmax``). They return the same floats as
the code they replace: the same operations in the same order, scipy's ``convolve`` and
``uniform_filter`` summation orders, numpy's pairwise sums (:mod:`._npsum`) wherever the
Python code summed with ``np.sum`` / ``np.mean``, scipy's ``brentq`` (:mod:`._roots`).
``tests/measure/test_stamp_kernels.py`` checks every kernel against the numpy/scipy code
bit for bit.

Sums through BLAS (``@``), ``np.linalg`` and numpy's own transcendental functions stay in
the Python code: their rounding depends on the BLAS / SIMD kernel of the machine.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import _roots
from ._npsum import np_sum

__all__ = [
    "GINI_EMPTY",
    "GINI_FULL",
    "GINI_MULTI",
    "GINI_OUTSIDE",
    "GINI_SINGLE",
    "gini",
    "gini_segmap",
    "group_order",
    "m20_sums",
    "mid_cut",
    "mid_segmap",
    "prepare",
    "rmax",
    "second_moments",
    "shape_annulus_values",
    "shape_segmap",
    "sky_smoothness",
    "sky_stats",
    "skybox",
    "smooth_residual",
    "sn_per_pixel",
    "uniform_filter",
    "weighted_sums",
]

GINI_SINGLE = 0
GINI_MULTI = 1
GINI_EMPTY = 2
GINI_FULL = 3
GINI_OUTSIDE = 4


# ----------------------------------------------------------------------------- labelling
@njit(nogil=True, inline="always")
def _fill(flat, ny, nx, start, thr, mark, gen, stack):  # pragma: no cover - compiled
    """Mark (``mark[p] = gen``) the 8-connected component of ``flat >= thr`` holding
    ``start`` (which must be above and unmarked); returns its size. Used here and by
    :mod:`._mid`.

    Inlined into its callers: no separately compiled (and cached) specialisations, whose
    disk cache numba can mix up when callers pass literal arguments.
    """
    mark[start] = gen
    stack[0] = start
    top = 1
    size = 0
    while top > 0:
        top -= 1
        p = stack[top]
        size += 1
        y = p // nx
        x = p - y * nx
        for yy in range(max(y - 1, 0), min(y + 2, ny)):
            for xx in range(max(x - 1, 0), min(x + 2, nx)):
                q = yy * nx + xx
                if mark[q] != gen and flat[q] >= thr:
                    mark[q] = gen
                    stack[top] = q
                    top += 1
    return size


# ----------------------------------------------------------------------------- the stamp
@njit(nogil=True, inline="always")
def _ring_mean(up, mid, dn, jl, j, jr):  # pragma: no cover - compiled
    """Mean of the 8 neighbours of ``mid[j]`` in ``ndi.convolve``'s order (weights 1/8)."""
    m = 0.0
    m += 0.125 * up[jl]
    m += 0.125 * up[j]
    m += 0.125 * up[jr]
    m += 0.125 * mid[jl]
    m += 0.125 * mid[jr]
    m += 0.125 * dn[jl]
    m += 0.125 * dn[j]
    m += 0.125 * dn[jr]
    return m


@njit(cache=True, nogil=True)
def prepare(
    image, segmap, label, usermask, use_mask, weightmap, use_wm, y0, y1, x0, x1, nsigma
):  # pragma: no cover - compiled
    """Masks and cut-outs of ``_Source`` for the stamp ``[y0:y1, x0:x1]`` of the full arrays.

    Parameters
    ----------
    image : ndarray of float64, 2-D
        Full image (may hold NaN / inf).
    segmap : ndarray of int64, 2-D
        Full segmentation map.
    label : int
        Label of the source.
    usermask : ndarray of bool, 2-D
        Full user mask (read only when ``use_mask``).
    use_mask : bool
        Whether ``usermask`` is given.
    weightmap : ndarray of float64, 2-D
        Full weight map (read only when ``use_wm``; non-finite pixels are masked).
    use_wm : bool
        Whether ``weightmap`` is given.
    y0, y1, x0, x1 : int
        The stamp.
    nsigma : float
        Outlier limit of ``_badpixels`` (<= 0: no test).

    Returns
    -------
    mask, mask_nobg : ndarray of bool
        ``_Source.mask`` and ``_Source.mask_nobg``.
    img_raw, cut, cut_nobg, omask : ndarray of float64
        ``_Source.img_raw``, ``cut``, ``cut_nobg`` and ``_omask``.
    box : ndarray of int64
        ``(y_start, y_stop, x_start, x_stop)`` of ``_Source.seg_box``.
    any_mask : bool
        ``mask.any()``.
    total : float
        ``np.sum(cut_nobg)``.
    imax, jmax : int
        First (raster order) pixel of ``cut_nobg`` equal to its maximum.

    Notes
    -----
    The outlier test is ``_badpixels``: ``ndi.convolve`` with the 3x3 kernel of weight 1/8
    and a zero centre (mode "nearest") adds the eight products ``weight * value`` in the
    kernel's raster order, starting from 0.0; the same order is used here.
    """
    ny = y1 - y0
    nx = x1 - x0
    raw = np.empty((ny, nx))
    bad = np.zeros((ny, nx), np.bool_)
    for i in range(ny):
        for j in range(nx):
            v = image[y0 + i, x0 + j]
            if np.isfinite(v):
                raw[i, j] = v
            else:
                raw[i, j] = 0.0
                bad[i, j] = True
            if use_wm and not np.isfinite(weightmap[y0 + i, x0 + j]):
                bad[i, j] = True
    if nsigma > 0:  # (a non-finite pixel is bad already, whatever the comparison says)
        sq = raw * raw
        for i in range(ny):
            up = raw[max(i - 1, 0)]
            mid = raw[i]
            dn = raw[min(i + 1, ny - 1)]
            up2 = sq[max(i - 1, 0)]
            mid2 = sq[i]
            dn2 = sq[min(i + 1, ny - 1)]
            for j in range(nx):
                jl = j - 1 if j > 0 else 0
                jr = j + 1 if j < nx - 1 else nx - 1
                m1 = _ring_mean(up, mid, dn, jl, j, jr)
                m2 = _ring_mean(up2, mid2, dn2, jl, j, jr)
                std = np.sqrt(m2 - m1 * m1)
                if abs(mid[j] - m1) > nsigma * std:
                    bad[i, j] = True
    mask = np.empty((ny, nx), np.bool_)
    mask_nobg = np.empty((ny, nx), np.bool_)
    cut = np.empty((ny, nx))
    cut_nobg = np.empty((ny, nx))
    omask = np.empty((ny, nx))
    any_mask = False
    rlo, rhi, clo, chi = ny, -1, nx, -1
    imax, jmax = -1, -1
    vmax = 0.0
    for i in range(ny):
        for j in range(nx):
            s = segmap[y0 + i, x0 + j]
            m = (s != 0 and s != label) or bad[i, j]
            if use_mask and usermask[y0 + i, x0 + j]:
                m = True
            mn = m or s == 0
            mask[i, j] = m
            mask_nobg[i, j] = mn
            any_mask = any_mask or m
            cut[i, j] = 0.0 if m else raw[i, j]
            omask[i, j] = 0.0 if m else 1.0
            v = 0.0 if mn else raw[i, j]
            cut_nobg[i, j] = v
            if imax < 0 or v > vmax:
                vmax = v
                imax, jmax = i, j
            if not mn:
                rlo = min(rlo, i)
                rhi = max(rhi, i)
                clo = min(clo, j)
                chi = max(chi, j)
    box = np.zeros(4, np.int64)
    if rhi >= 0:
        box[0] = max(rlo - 1, 0)
        box[1] = min(rhi + 2, ny)
        box[2] = max(clo - 1, 0)
        box[3] = min(chi + 2, nx)
    total = np_sum(cut_nobg.ravel(), ny * nx)
    return mask, mask_nobg, raw, cut, cut_nobg, omask, box, any_mask, total, imax, jmax


@njit(cache=True, nogil=True)
def skybox(segmap, usermask, use_mask, y0, y1, x0, x1, size):  # pragma: no cover - compiled
    """``_Source.skybox``: the first (raster order) ``size`` x ``size`` box free of segments
    and user-masked pixels, halving ``size`` down to 2.

    Returns ``(i, j, size)`` of the box, ``size = 0`` when none is found. As in statmorph,
    a box of side ``size`` may start at rows ``0 .. ny - size - 1`` only.
    """
    ny = y1 - y0
    nx = x1 - x0
    sat = np.zeros((ny + 1, nx + 1), np.int64)
    for i in range(ny):
        row = 0
        for j in range(nx):
            b = segmap[y0 + i, x0 + j] != 0 or (use_mask and usermask[y0 + i, x0 + j])
            row += 1 if b else 0
            sat[i + 1, j + 1] = sat[i, j + 1] + row
    while True:
        ni = ny - size
        nj = nx - size
        if ni > 0 and nj > 0:
            for i in range(ni):
                for j in range(nj):
                    c = sat[i + size, j + size] - sat[i, j + size] - sat[i + size, j] + sat[i, j]
                    if c == 0:
                        return i, j, size
        if size <= 2:
            return 0, 0, 0
        size //= 2


@njit(cache=True, nogil=True)
def sky_stats(cut, by, bx, size):  # pragma: no cover - compiled
    """``(np.mean(bkg), np.median(bkg), np.std(bkg), sky_asym)`` of the sky box
    ``bkg = cut[by:by+size, bx:bx+size]``, bit for bit.

    numpy sums a strided view like its contiguous copy (pairwise); the median is the mean of
    the middle order statistic(s) (``np.partition``); ``np.std`` subtracts the mean, squares
    and sums; ``sky_asym = np.sum(np.abs(bkg[::-1, ::-1] - bkg)) / bkg.size``.
    """
    n = size * size
    c = np.empty(n)
    for i in range(size):
        for j in range(size):
            c[i * size + j] = cut[by + i, bx + j]
    mean = np_sum(c, n) / n
    d = np.empty(n)
    for k in range(n):
        x = c[k] - mean
        d[k] = x * x
    std = np.sqrt(np_sum(d, n) / n)
    for i in range(size):
        for j in range(size):
            d[i * size + j] = abs(c[(size - 1 - i) * size + (size - 1 - j)] - c[i * size + j])
    asym = np_sum(d, n) / n
    half = n // 2
    part = np.partition(c, half)
    mid = np.empty(2)
    if n % 2:
        mid[0] = part[half]
        median = np_sum(mid, 1) / 1
    else:
        lo = part[0]
        for k in range(1, half):
            if part[k] > lo:
                lo = part[k]
        mid[0] = lo
        mid[1] = part[half]
        median = np_sum(mid, 2) / 2
    return mean, median, std, asym


# ----------------------------------------------------------------------------- filters
@njit(cache=True, nogil=True)
def _reflect_index(n, size):  # pragma: no cover - compiled
    """Source index of every position of a line of ``n`` values extended for a filter of
    ``size`` (``size // 2`` before): scipy's "reflect" mode (d c b a | a b c d | d c b a)."""
    s1 = size // 2
    idx = np.empty(n + size - 1, np.int64)
    p = 2 * n
    for t in range(n + size - 1):
        k = (t - s1) % p
        idx[t] = k if k < n else p - 1 - k
    return idx


@njit(cache=True, nogil=True)
def uniform_filter(img, size):  # pragma: no cover - compiled
    """``ndi.uniform_filter(img, size)`` (mode "reflect") of a 2-D float64 image, bit for bit.

    scipy filters axis 0, then axis 1 of that result; along each line it keeps a running sum
    (the sum of the first window, then ``+= entering - leaving``) and outputs ``sum / size``.
    Here every line of an axis advances together (same operations per element).

    Parameters
    ----------
    img : ndarray of float64, 2-D
        Image.
    size : int
        Filter size along both axes; below 2 the image is copied (as scipy does).

    Returns
    -------
    ndarray of float64
        New C-contiguous array.
    """
    ny, nx = img.shape
    if size <= 1:
        out = np.empty((ny, nx))
        for i in range(ny):
            for j in range(nx):
                out[i, j] = img[i, j]
        return out
    # axis 0, stored transposed; then axis 0 of that, i.e. axis 1, transposed back
    return _uniform_axis0_transposed(_uniform_axis0_transposed(img, size), size)


@njit(cache=True, nogil=True)
def _uniform_axis0_transposed(img, size):  # pragma: no cover - compiled
    """One axis of :func:`uniform_filter`: ``uniform_filter1d(img, size, axis=0).T`` (copy)."""
    ny, nx = img.shape
    iy = _reflect_index(ny, size)
    tmp = np.zeros(nx)
    out = np.empty((nx, ny))
    for ll in range(size):
        r = iy[ll]
        for j in range(nx):
            tmp[j] += img[r, j]
    for j in range(nx):
        out[j, 0] = tmp[j] / size
    for ll in range(1, ny):
        a = iy[ll - 1 + size]
        b = iy[ll - 1]
        for j in range(nx):
            tmp[j] += img[a, j] - img[b, j]
            out[j, ll] = tmp[j] / size
    return out


@njit(cache=True, nogil=True)
def smooth_residual(cut, size):  # pragma: no cover - compiled
    """``d = cut - ndi.uniform_filter(cut, size); d[d < 0] = 0`` (``_smoothness``)."""
    sm = uniform_filter(cut, size)
    ny, nx = cut.shape
    for i in range(ny):
        for j in range(nx):
            d = cut[i, j] - sm[i, j]
            sm[i, j] = 0.0 if d < 0 else d
    return sm


@njit(cache=True, nogil=True)
def sky_smoothness(cut, by, bx, bsize, size):  # pragma: no cover - compiled
    """The sky term of the smoothness for the sky box ``cut[by:by+bsize, bx:bx+bsize]``.

    ``d = bkg - ndi.uniform_filter(bkg, size); d[d < 0] = 0; np.sum(d) / bkg.size``.
    """
    bkg = np.empty((bsize, bsize))
    for i in range(bsize):
        for j in range(bsize):
            bkg[i, j] = cut[by + i, bx + j]
    d = smooth_residual(bkg, size)
    return np_sum(d.ravel(), bsize * bsize) / (bsize * bsize)


# ----------------------------------------------------------------------- Gini and M20
@njit(cache=True, nogil=True)
def gini_segmap(sm, thr):  # pragma: no cover - compiled
    """The Gini segmap of ``_segmap_gini`` from the smoothed image and its threshold.

    Parameters
    ----------
    sm : ndarray of float64, 2-D, C-contiguous
        Smoothed image.
    thr : float
        Threshold (``above = sm >= thr``).

    Returns
    -------
    segmap : ndarray of bool
        ``above`` (codes ``GINI_SINGLE``, ``GINI_EMPTY``, ``GINI_FULL``, ``GINI_OUTSIDE``)
        or the 8-connected component of ``above`` holding the first brightest pixel of
        ``sm`` (``GINI_MULTI``).
    code : int
        ``GINI_SINGLE`` one component, ``GINI_EMPTY`` none, ``GINI_FULL`` every pixel,
        ``GINI_MULTI`` several, ``GINI_OUTSIDE`` several and the brightest pixel is below
        the threshold.
    """
    ny, nx = sm.shape
    n = ny * nx
    flat = sm.ravel()
    above = np.empty(n, np.bool_)
    count = 0
    first = -1
    best = 0
    for p in range(n):
        a = flat[p] >= thr
        above[p] = a
        if a:
            count += 1
            if first < 0:
                first = p
        if flat[p] > flat[best]:
            best = p
    if count == 0:
        return above.reshape((ny, nx)), GINI_EMPTY
    if count == n:
        return above.reshape((ny, nx)), GINI_FULL
    mark = np.zeros(n, np.int64)
    stack = np.empty(n, np.int64)
    if _fill(flat, ny, nx, first, thr, mark, 1, stack) == count:
        return above.reshape((ny, nx)), GINI_SINGLE
    if not above[best]:
        return above.reshape((ny, nx)), GINI_OUTSIDE
    gen = 1
    if mark[best] != 1:
        gen = 2
        _fill(flat, ny, nx, best, thr, mark, gen, stack)
    out = np.empty(n, np.bool_)
    for p in range(n):
        out[p] = mark[p] == gen
    return out.reshape((ny, nx)), GINI_MULTI


@njit(cache=True, nogil=True)
def gini(cut, seg):  # pragma: no cover - compiled
    """``_gini``'s sums: ``(n, total, weighted)`` of the sorted ``|cut[seg]|``.

    ``total = np.sum(v)`` and ``weighted = np.sum((2 * idx - n - 1) * v)`` for
    ``v = np.sort(np.abs(cut[seg]))``, ``idx = 1 .. n``.
    """
    ny, nx = cut.shape
    v = np.empty(ny * nx)
    n = 0
    for i in range(ny):
        for j in range(nx):
            if seg[i, j]:
                v[n] = abs(cut[i, j])
                n += 1
    v = np.sort(v[:n])
    total = np_sum(v, n)
    w = np.empty(n)
    for k in range(n):
        w[k] = float(2 * (k + 1) - n - 1) * v[k]
    return n, total, np_sum(w, n)


@njit(cache=True, nogil=True, error_model="numpy")
def m20_sums(img, seg, xc, yc):  # pragma: no cover - compiled
    """``_m20``'s sums after the centroid ``(xc, yc)``: ``(mtot, m20, found)``.

    ``img`` is ``np.where(seg, cut, 0.0)``. ``mtot = np.sum(vals * r2)`` over the segmap
    pixels (raster order), ``found`` whether some sorted pixel reaches 80 % of the
    cumulative flux, ``m20 = np.sum(vals[sel] * r2[sel])`` for ``sel = vals >= thr``.
    The sorted image is rebuilt from the sorted segmap values and the zeros around them.
    """
    ny, nx = img.shape
    n = ny * nx
    prod = np.empty(n)
    vals = np.empty(n)
    k = 0
    for i in range(ny):
        for j in range(nx):
            if seg[i, j]:
                v = img[i, j]
                dx = j - xc
                dy = i - yc
                vals[k] = v
                prod[k] = v * (dx * dx + dy * dy)
                k += 1
    mtot = np_sum(prod, k)
    # np.sort(img.ravel()): the sorted negative values, every zero, the sorted positive values
    sv_seg = np.sort(vals[:k])
    sv = np.zeros(n)
    nneg = 0
    while nneg < k and sv_seg[nneg] < 0:
        nneg += 1
    npos_start = nneg
    while npos_start < k and sv_seg[npos_start] == 0:
        npos_start += 1
    for t in range(nneg):
        sv[t] = sv_seg[t]
    npos = k - npos_start
    for t in range(npos_start - nneg):  # zeros of the segmap keep their sign
        sv[nneg + t] = sv_seg[nneg + t]
    for t in range(npos):
        sv[n - npos + t] = sv_seg[npos_start + t]
    total = np_sum(sv, n)
    c = 0.0
    thr = 0.0
    found = False
    for t in range(n):
        c = sv[t] if t == 0 else c + sv[t]
        if c / total >= 0.8:
            thr = sv[t]
            found = True
            break
    if not found:
        return mtot, 0.0, False
    m = 0
    for t in range(k):
        if vals[t] >= thr:
            prod[m] = prod[t]
            m += 1
    return mtot, np_sum(prod, m), True


@njit(cache=True, nogil=True)
def sn_per_pixel(cut, seg, wmap):  # pragma: no cover - compiled
    """``(n, np.mean(cut[locs] / wm[locs]))`` for ``locs = seg & (cut >= 0) & (wm > 0)``,
    ``wm = |wmap|`` (mean NaN when ``n == 0``)."""
    ny, nx = cut.shape
    buf = np.empty(ny * nx)
    n = 0
    for i in range(ny):
        for j in range(nx):
            w = abs(wmap[i, j])
            if seg[i, j] and cut[i, j] >= 0 and w > 0:
                buf[n] = cut[i, j] / w
                n += 1
    if n == 0:
        return 0, np.nan
    return n, np_sum(buf, n) / n


# -------------------------------------------------------------------------------- MID
@njit(cache=True, nogil=True, error_model="numpy")
def _clump_ratio(
    q, nonneg, sorted_nn, ny, nx, start, box, mark, gen, stack, buf, eta
):  # pragma: no cover - compiled
    """``seg_fn(q)`` of ``_mid``: ``(thr / mean - eta, zero_mean)``."""
    thr = sorted_nn[int(q * (sorted_nn.size - 1))]
    m = 0
    if thr <= 0 or not nonneg[start] >= thr:
        # thr <= 0: every pixel is above it (one component); else label 0: the pixels below
        for p in range(ny * nx):
            if (nonneg[p] >= thr) == (thr <= 0 or nonneg[start] >= thr):
                buf[m] = nonneg[p]
                m += 1
    else:
        _fill(nonneg, ny, nx, start, thr, mark, gen, stack)
        for i in range(box[0], box[1]):  # the component lies inside the segment's box
            for j in range(box[2], box[3]):
                p = i * nx + j
                if mark[p] == gen:
                    buf[m] = nonneg[p]
                    m += 1
    mean = np_sum(buf, m) / m if m else np.nan
    if mean == 0:
        return 1.0 - eta, True
    return thr / mean - eta, False


@njit(cache=True, nogil=True)
def mid_segmap(cut_nobg, mask_nobg, ic, jc, box, eta):  # pragma: no cover - compiled
    """The MID segmap search of ``_mid`` (threshold quantile by scipy's ``brentq``).

    Parameters
    ----------
    cut_nobg : ndarray of float64, 2-D, C-contiguous
        Stamp with every masked and background pixel at 0.
    mask_nobg : ndarray of bool, 2-D, C-contiguous
        Masked or background pixels.
    ic, jc : int
        Brightest pixel (row, column); it must be positive.
    box : ndarray of int64
        ``(y_start, y_stop, x_start, x_stop)``: bounding box of the unmasked segment pixels
        with a one-pixel margin (``_Source.seg_box``).
    eta : float
        Petrosian ratio.

    Returns
    -------
    status : int
        -1: ``seg_fn(0) > 0``, use the Gini segmap; otherwise the :mod:`._roots` status of
        the root search (``CONVERGED`` or an error, then ``seg_mid`` is meaningless).
    nzero : int
        Number of "[segmap_mid] Zero flux sum." warnings (evaluations with a zero mean).
    added : bool
        The brightest pixel was added to the smoothed segmap.
    seg_mid : ndarray of bool
        The MID segmap.
    nonneg : ndarray of float64
        ``np.where(cut_nobg > 0, cut_nobg, 0.0)``.
    sorted_nn : ndarray of float64
        ``np.sort(nonneg[~mask_nobg])``.
    q : float
        The quantile found (where the search failed, for its error message).
    """
    ny, nx = cut_nobg.shape
    n = ny * nx
    cflat = cut_nobg.ravel()
    mflat = mask_nobg.ravel()
    nonneg = np.empty(n)
    cnt = 0
    for p in range(n):
        v = cflat[p]
        nonneg[p] = v if v > 0 else 0.0
        if not mflat[p]:
            cnt += 1
    sorted_nn = np.empty(cnt)
    k = 0
    for p in range(n):
        if not mflat[p]:
            sorted_nn[k] = nonneg[p]
            k += 1
    sorted_nn = np.sort(sorted_nn)
    mark = np.zeros(n, np.int64)
    stack = np.empty(n, np.int64)
    buf = np.empty(n)
    start = ic * nx + jc
    gen = 1
    nzero = 0
    seg_mid = np.zeros((ny, nx), np.bool_)
    # seg_fn depends on q through k = int(q * (cnt - 1)) only: each k is evaluated once
    memo_f = np.empty(cnt)
    memo_z = np.zeros(cnt, np.bool_)
    done = np.zeros(cnt, np.bool_)
    f0, z = _clump_ratio(0.0, nonneg, sorted_nn, ny, nx, start, box, mark, gen, stack, buf, eta)
    memo_f[0] = f0
    memo_z[0] = z
    done[0] = True
    if z:
        nzero += 1
    if f0 > 0.0:
        return -1, nzero, False, seg_mid, nonneg.reshape((ny, nx)), sorted_nn, 0.0
    state = _roots.brentq_state()
    x = _roots.brentq_start(state, 0.0, 1.0, 1.0 / float(cnt), _roots.RTOL, _roots.MAXITER)
    while True:
        k = int(x * (cnt - 1))
        if 0 <= k < cnt and done[k]:
            fx = memo_f[k]
            z = memo_z[k]
        else:
            gen += 1
            fx, z = _clump_ratio(
                x, nonneg, sorted_nn, ny, nx, start, box, mark, gen, stack, buf, eta
            )
            if 0 <= k < cnt:
                memo_f[k] = fx
                memo_z[k] = z
                done[k] = True
        if z:
            nzero += 1
        x, status = _roots.brentq_step(state, fx)
        if status != _roots.CONTINUE:
            break
    if status != _roots.CONVERGED:
        return status, nzero, False, seg_mid, nonneg.reshape((ny, nx)), sorted_nn, x
    # main_clump(q) at the root, 3x3 mean > 0.5, the component of the brightest pixel
    gen += 1
    thr = sorted_nn[int(x * (sorted_nn.size - 1))]
    clump = np.zeros((ny, nx))
    cl = clump.ravel()
    if thr <= 0 or not nonneg[start] >= thr:
        inside = thr <= 0 or nonneg[start] >= thr
        for p in range(n):
            cl[p] = 1.0 if (nonneg[p] >= thr) == inside else 0.0
    else:
        _fill(nonneg, ny, nx, start, thr, mark, gen, stack)
        for p in range(n):
            cl[p] = 1.0 if mark[p] == gen else 0.0
    sm = uniform_filter(clump, 3)
    seg = sm.ravel()
    for p in range(n):
        seg[p] = 1.0 if seg[p] > 0.5 else 0.0
    added = False
    if seg[start] == 0.0:
        added = True
        seg[start] = 1.0
    gen += 1
    _fill(seg, ny, nx, start, 1.0, mark, gen, stack)
    sflat = seg_mid.ravel()
    for p in range(n):
        sflat[p] = mark[p] == gen
    return status, nzero, added, seg_mid, nonneg.reshape((ny, nx)), sorted_nn, x


@njit(cache=True, nogil=True)
def mid_cut(nonneg, seg_mid, mask_nobg):  # pragma: no cover - compiled
    """``cut_mid``, ``sorted_mid``, the segmap's box (with a one-pixel margin) and
    ``invalid = np.sum(cut_mid)`` of ``_mid``.

    ``cut_mid = np.where(seg_mid, nonneg, 0.0)``, ``sorted_mid = np.sort(cut_mid[~mask_nobg])``
    (rebuilt as zeros followed by the sorted positive values: ``nonneg`` is never negative).
    """
    ny, nx = nonneg.shape
    n = ny * nx
    cut_mid = np.zeros((ny, nx))
    cm = cut_mid.ravel()
    nf = nonneg.ravel()
    sf = seg_mid.ravel()
    mf = mask_nobg.ravel()
    pos = np.empty(n)
    npos = 0
    cnt = 0
    rlo, rhi, clo, chi = ny, -1, nx, -1
    for p in range(n):
        if sf[p]:
            cm[p] = nf[p]
            i = p // nx
            j = p - i * nx
            rlo = min(rlo, i)
            rhi = max(rhi, i)
            clo = min(clo, j)
            chi = max(chi, j)
        if not mf[p]:
            cnt += 1
            if cm[p] > 0:
                pos[npos] = cm[p]
                npos += 1
    sorted_mid = np.zeros(cnt)
    sp = np.sort(pos[:npos])
    for t in range(npos):
        sorted_mid[cnt - npos + t] = sp[t]
    box = np.zeros(4, np.int64)
    if rhi >= 0:
        box[0] = max(rlo - 1, 0)
        box[1] = min(rhi + 2, ny)
        box[2] = max(clo - 1, 0)
        box[3] = min(chi + 2, nx)
    return cut_mid, sorted_mid, box, np_sum(cm, n)


# ----------------------------------------------------------------------- shape asymmetry
@njit(cache=True, nogil=True)
def shape_annulus_values(cut, mask, xc, yc, r_in, r_out):  # pragma: no cover - compiled
    """``cut[~total_mask]`` of ``_segmap_shape_asym`` for ``total_mask = mask | ~ann``,
    ``ann = (d < r_out) & ~(d < r_in)``, ``d = np.hypot(x - xc, y - yc)`` (raster order)."""
    ny, nx = cut.shape
    out = np.empty(ny * nx)
    # squared distances well inside or outside a radius decide without np.hypot (both are
    # within a few ulp of the true distance); the pixels near a radius use np.hypot
    lo_in, hi_in = r_in * r_in * (1.0 - 1e-9), r_in * r_in * (1.0 + 1e-9)
    lo_out, hi_out = r_out * r_out * (1.0 - 1e-9), r_out * r_out * (1.0 + 1e-9)
    n = 0
    for i in range(ny):
        dy = i - yc
        for j in range(nx):
            if mask[i, j]:
                continue
            dx = j - xc
            d2 = dx * dx + dy * dy
            if d2 < lo_in or d2 > hi_out:
                continue
            if not (hi_in < d2 < lo_out):
                d = np.hypot(dx, dy)
                if not (d < r_out and not d < r_in):
                    continue
            out[n] = cut[i, j]
            n += 1
    return out[:n]


@njit(cache=True, nogil=True)
def shape_segmap(cut, thr):  # pragma: no cover - compiled
    """The shape-asymmetry segmap of ``_segmap_shape_asym`` from its threshold.

    ``sm = ndi.uniform_filter(cut, 3)``; the 8-connected component of ``sm >= thr`` holding
    the first brightest pixel of ``sm`` (added to the segmap when below ``thr``).
    Returns ``(segmap, added)``.
    """
    ny, nx = cut.shape
    n = ny * nx
    sm = uniform_filter(cut, 3)
    flat = sm.ravel()
    best = 0
    for p in range(n):
        if flat[p] > flat[best]:
            best = p
    vals = np.empty(n)
    for p in range(n):
        vals[p] = 1.0 if flat[p] >= thr else 0.0
    added = vals[best] == 0.0
    vals[best] = 1.0
    mark = np.zeros(n, np.int64)
    stack = np.empty(n, np.int64)
    _fill(vals, ny, nx, best, 1.0, mark, 1, stack)
    out = np.empty(n, np.bool_)
    for p in range(n):
        out[p] = mark[p] == 1
    return out.reshape((ny, nx)), added


@njit(cache=True, nogil=True)
def rmax(seg, xc, yc, cos_t, sin_t, elong):  # pragma: no cover - compiled
    """``(n, rmax_circ, rmax_ellip)`` of the segmap pixels about ``(xc, yc)``.

    ``rmax_circ = max(np.hypot(y - yc, x - xc))``; ``rmax_ellip = max(np.sqrt(xp**2 +
    (yp * elong)**2))`` with ``xp = (x - xc) * cos_t + (y - yc) * sin_t``,
    ``yp = -(x - xc) * sin_t + (y - yc) * cos_t`` (``cos_t``, ``sin_t`` from numpy).
    """
    ny, nx = seg.shape
    n = 0
    rc = 0.0
    re = 0.0
    for i in range(ny):
        for j in range(nx):
            if not seg[i, j]:
                continue
            dx = j - xc
            dy = i - yc
            h = np.hypot(dy, dx)
            xp = dx * cos_t + dy * sin_t
            yp = -dx * sin_t + dy * cos_t
            ye = yp * elong
            e = np.sqrt(xp * xp + ye * ye)
            if n == 0 or h > rc:
                rc = h
            if n == 0 or e > re:
                re = e
            n += 1
    return n, rc, re


# ------------------------------------------------------------------ first-order catalog
@njit(cache=True, nogil=True)
def group_order(flat_seg, lut, nlab):  # pragma: no cover - compiled
    """``sel`` and ``idx`` of :func:`.pixels.group_pixels`: the flat positions of the pixels
    whose label maps to a source (``lut[label] >= 0``), stably sorted by source index, and
    those indices; ``count``: pixels per source (``np.bincount(idx, minlength=nlab)``)."""
    count = np.zeros(nlab, np.int64)
    m = 0
    for p in range(flat_seg.size):
        v = flat_seg[p]
        if v > 0:
            k = lut[v]
            if k >= 0:
                count[k] += 1
                m += 1
    pos = np.empty(nlab, np.int64)
    c = 0
    for k in range(nlab):
        pos[k] = c
        c += count[k]
    sel = np.empty(m, np.int64)
    idx = np.empty(m, np.int64)
    for p in range(flat_seg.size):
        v = flat_seg[p]
        if v > 0:
            k = lut[v]
            if k >= 0:
                sel[pos[k]] = p
                idx[pos[k]] = k
                pos[k] += 1
    return sel, idx, count


@njit(cache=True, nogil=True)
def weighted_sums(index, x, y, flux, n):  # pragma: no cover - compiled
    """``np.bincount`` sums of :func:`.moments.centroids`: ``(wsum, sum(w x), sum(w y))`` per
    source, ``w = np.clip(flux, 0, None)`` (added in pixel order, as ``np.bincount``)."""
    wsum = np.zeros(n)
    sx = np.zeros(n)
    sy = np.zeros(n)
    for p in range(index.size):
        w = flux[p]
        if w < 0:
            w = 0.0
        k = index[p]
        wsum[k] += w
        sx[k] += w * x[p]
        sy[k] += w * y[p]
    return wsum, sx, sy


@njit(cache=True, nogil=True, error_model="numpy")
def second_moments(index, x, y, flux, xc, yc, n):  # pragma: no cover - compiled
    """:func:`.moments.shape_from_moments` but the orientation, bit for bit.

    Returns ``(mxx, myy, mxy, a, b, ratio, elongation)``: ``np.bincount`` sums of ``w dx dx``,
    ``w dy dy``, ``w dx dy`` over ``wsum``; the semi-axes; ``b / a`` (NaN unless ``a > 0``);
    ``a / b`` (inf unless ``b > 0``).
    """
    wsum = np.zeros(n)
    sxx = np.zeros(n)
    syy = np.zeros(n)
    sxy = np.zeros(n)
    for p in range(index.size):
        w = flux[p]
        if w < 0:
            w = 0.0
        k = index[p]
        dx = x[p] - xc[k]
        dy = y[p] - yc[k]
        wsum[k] += w
        sxx[k] += w * dx * dx
        syy[k] += w * dy * dy
        sxy[k] += w * dx * dy
    mxx = np.empty(n)
    myy = np.empty(n)
    mxy = np.empty(n)
    a = np.empty(n)
    b = np.empty(n)
    ratio = np.empty(n)
    elong = np.empty(n)
    for k in range(n):
        mxx[k] = sxx[k] / wsum[k]
        myy[k] = syy[k] / wsum[k]
        mxy[k] = sxy[k] / wsum[k]
        half = 0.5 * (mxx[k] + myy[k])
        t = 0.5 * (mxx[k] - myy[k])
        root = np.sqrt(t * t + mxy[k] * mxy[k])
        u = half + root
        v = half - root
        a[k] = np.sqrt(0.0 if u < 0 else u)
        b[k] = np.sqrt(0.0 if v < 0 else v)
        ratio[k] = b[k] / a[k] if a[k] > 0 else np.nan
        elong[k] = a[k] / b[k] if b[k] > 0 else np.inf
    return mxx, myy, mxy, a, b, ratio, elong
