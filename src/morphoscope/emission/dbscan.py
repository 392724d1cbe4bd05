"""DBSCAN on pixel grids: scikit-learn's labels without a KD-tree or neighbour lists.

Thresholded pixels sit on an integer grid, so the only candidate neighbours of a pixel
are the few integer offsets ``(dx, dy)`` with ``dx**2 + dy**2 <= eps**2``. Every
neighbour test is therefore a comparison between the grid and a shifted view of itself,
vectorised over the whole grid: no tree, no per-point neighbour arrays.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..exceptions import ParameterError

__all__ = ["grid_dbscan", "grid_offsets"]

#: Above this many half-plane offsets, edge masks are recomputed instead of cached.
_MAX_CACHED_OFFSETS = 24
#: Grids with at most this many (pixels x offsets) keep one boolean edge array per offset.
_SMALL_GRID_BYTES = 1 << 22


def grid_offsets(eps: float, half: bool = False) -> list[tuple[int, int]]:
    """Integer offsets ``(dy, dx)`` with ``dx**2 + dy**2 <= eps**2`` (``eps * eps`` in float64).

    Parameters
    ----------
    eps : float
        Neighbourhood radius in pixels.
    half : bool
        If True, return only one offset of each pair ``+-(dy, dx)`` (``dy > 0``, or
        ``dy == 0`` and ``dx > 0``) and leave out ``(0, 0)``.

    Examples
    --------
    >>> grid_offsets(1.5, half=True)
    [(0, 1), (1, -1), (1, 0), (1, 1)]
    >>> len(grid_offsets(1.0))
    5
    """
    eps2 = float(eps) * float(eps)
    r = math.floor(eps) if eps >= 0 else -1
    out = []
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if float(dx * dx + dy * dy) <= eps2:
                if half and not (dy > 0 or (dy == 0 and dx > 0)):
                    continue
                out.append((dy, dx))
    return out


def _parse_input(data, values):
    """Return (occ, val, pid, point_rc, n) on a grid padded later; see grid_dbscan."""
    arr = np.asarray(data)
    if arr.dtype == bool and arr.ndim == 2:
        mask = arr
        if values is not None:
            vals = np.asarray(values, dtype=np.float64)
            if vals.shape != mask.shape:
                raise ParameterError(
                    "values", f"array of shape {vals.shape}", f"an array of shape {mask.shape}"
                )
        else:
            vals = None
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            return None
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        occ = mask[y0:y1, x0:x1]
        val = None if vals is None else vals[y0:y1, x0:x1]
        return occ, val, None, None
    if values is not None:
        raise ParameterError("values", "an array", "None when points are given (use a 3rd column)")
    if arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise ParameterError(
            "data", f"array of shape {arr.shape}", "a 2-D boolean mask or an (N, 2) or (N, 3) array"
        )
    if arr.shape[0] == 0:
        return None
    pts = arr.astype(np.float64, copy=False)
    if not np.isfinite(pts).all():
        raise ParameterError("data", "points with NaN or inf", "finite coordinates")
    xy = pts[:, :2]
    ixy = np.rint(xy)
    if not np.array_equal(ixy, xy):
        raise ParameterError(
            "data", "non-integer x or y", "integer pixel coordinates in columns 0, 1"
        )
    ix = ixy[:, 0].astype(np.int64)
    iy = ixy[:, 1].astype(np.int64)
    x0, y0 = ix.min(), iy.min()
    ix -= x0
    iy -= y0
    shape = (int(iy.max()) + 1, int(ix.max()) + 1)
    n = arr.shape[0]
    pid = np.full(shape, -1, dtype=np.int64 if n >= 2**31 - 1 else np.int32)
    pid[iy, ix] = np.arange(n, dtype=pid.dtype)
    occ = pid >= 0
    if int(np.count_nonzero(occ)) != n:
        raise ParameterError("data", "duplicate (x, y) pixels", "each pixel at most once")
    val = None
    if arr.shape[1] == 3:
        val = np.zeros(shape, dtype=np.float64)
        val[iy, ix] = pts[:, 2]
    return occ, val, pid, (iy, ix)


def grid_dbscan(
    data: np.ndarray,
    eps: float = 1.5,
    min_samples: int = 4,
    *,
    values: np.ndarray | None = None,
) -> np.ndarray:
    """DBSCAN of pixels on an integer grid, with labels identical to scikit-learn's.

    The points are pixels: either the True pixels of a boolean mask, as points
    ``[x, y]`` (or ``[x, y, values[y, x]]`` when ``values`` is given) in row-major order
    (the order of :func:`numpy.nonzero`), or an ``(N, 2)``/``(N, 3)`` array of points
    ``[x, y(, v)]`` with integer ``x, y`` and any order. The result equals
    ``sklearn.cluster.DBSCAN(eps=eps, min_samples=min_samples).fit_predict(points)``
    exactly, including the numbering of clusters, noise ``-1`` and the assignment of
    border points reachable from several clusters.

    Parameters
    ----------
    data : ndarray
        2-D boolean mask (True = point), or an ``(N, 2)`` or ``(N, 3)`` array of points
        whose first two columns are integer pixel coordinates ``x, y`` (no duplicates).
    eps : float
        Neighbourhood radius (Euclidean, inclusive: ``distance <= eps``), in pixels.
    min_samples : int
        Number of points within ``eps`` (the point itself included) that makes a core point.
    values : ndarray, optional
        With a mask only: an array of the mask's shape holding each pixel's third
        coordinate (for example its scaled flux).

    Returns
    -------
    labels : ndarray of intp, shape (N,)
        Cluster of each point, ``0..n_clusters-1``, or ``-1`` for noise. Clusters are
        numbered in the order of their first core point; a border point within ``eps``
        of core points of several clusters joins the lowest-numbered one, as scikit-learn's
        depth-first expansion does.

    Notes
    -----
    Let ``A`` be the area of the points' bounding box (padded by ``floor(eps)``) and
    ``K ~ pi eps**2`` the number of grid offsets within ``eps``. Neighbour counts and
    edges cost O(K A) vectorised operations on shifted views of the grid; core points
    are joined by ``scipy.ndimage.label`` when the connectivity is a 4- or
    8-neighbourhood (2-D points with ``1 <= eps < 2``), otherwise by a vectorised
    union-find (hooking to the smaller root, then pointer jumping) that converges in
    O(log N) rounds of O(K A). Memory is O(A): an occupancy grid, a point-index grid,
    a count grid, one boolean edge grid per half-plane offset (``K/2`` bytes per pixel,
    recomputed instead of cached when ``K/2 > 24``), a label grid and one float64 grid
    for the third coordinate -- about ``20 + K/2`` bytes per bounding-box pixel, against
    the ``~150`` bytes per neighbour list and point of scikit-learn's DBSCAN.

    To match scikit-learn to the last bit, squared distances are formed as
    ``(dx**2 + dy**2) + dv**2`` (its order for columns ``[x, y, v]``) and compared
    with ``eps * eps``.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((6, 8), bool)
    >>> mask[1:3, 1:3] = True        # a 2x2 block: each pixel has 4 neighbours
    >>> mask[4, 6] = True            # an isolated pixel: noise
    >>> grid_dbscan(mask, eps=1.5, min_samples=4)
    array([ 0,  0,  0,  0, -1])
    """
    if not (isinstance(eps, int | float | np.floating | np.integer) and eps > 0):
        raise ParameterError("eps", eps, "a float > 0")
    if not (
        isinstance(min_samples, int | np.integer)
        and not isinstance(min_samples, bool)
        and min_samples >= 1
    ):
        raise ParameterError("min_samples", min_samples, "an int >= 1")
    eps = float(eps)
    parsed = _parse_input(data, values)
    if parsed is None:
        return np.empty(0, dtype=np.intp)
    occ, val, pid, point_rc = parsed
    ny, nx = occ.shape
    n = int(np.count_nonzero(occ))
    itype = np.int64 if n >= 2**31 - 1 else np.int32
    if pid is None:
        pid = np.full(occ.shape, -1, dtype=itype)
        pid[occ] = np.arange(n, dtype=itype)  # row-major order = mask order

    eps2 = eps * eps
    offsets = grid_offsets(eps, half=True)
    pairs = [_pair_slices(dy, dx, ny, nx) for dy, dx in offsets]
    cache_edges = len(offsets) <= _MAX_CACHED_OFFSETS
    bits = None
    # small grids keep one boolean array per offset; large ones pack them into bits
    small = occ.size * max(1, len(offsets)) <= _SMALL_GRID_BYTES
    edge_list: list[np.ndarray] = []
    if cache_edges and offsets and not small:
        bdtype = next(
            t for t in (np.uint8, np.uint16, np.uint32) if np.iinfo(t).bits >= len(offsets)
        )
        bits = np.zeros(occ.shape, dtype=bdtype)

    dropped = [False]  # did the third coordinate cut any grid-neighbour pair?

    def edge(k: int) -> np.ndarray:
        """Point pairs (p, p + offset_k) within eps, indexed like the grid view ``pairs[k][0]``."""
        dy, dx = offsets[k]
        sa, sb = pairs[k]
        e = occ[sa] & occ[sb]
        if val is not None and not dropped[0]:
            n_before = int(np.count_nonzero(e))
        if val is not None:
            va, vb = val[sa], val[sb]
            base = float(dx * dx + dy * dy)
            step = max(1, (1 << 18) // max(1, e.shape[1]))  # bounded float temporaries
            for i in range(0, e.shape[0], step):
                d = va[i : i + step] - vb[i : i + step]
                d *= d
                d += base
                e[i : i + step] &= d <= eps2
            if not dropped[0] and int(np.count_nonzero(e)) != n_before:
                dropped[0] = True
        return e

    def get_edge(k: int) -> np.ndarray:
        if edge_list:
            return edge_list[k]
        if bits is None:
            return edge(k)
        sa = pairs[k][0]
        return ((bits[sa] >> k) & 1).astype(bool)

    # Neighbour counts, the point itself included.
    ctype = np.int16 if 2 * len(offsets) + 1 < 2**15 else np.int32
    count = occ.astype(ctype)
    for k, (sa, sb) in enumerate(pairs):
        e = edge(k)
        count[sa] += e
        count[sb] += e
        if bits is not None:
            bits[sa] |= e.astype(bits.dtype) << k
        elif small and cache_edges:
            edge_list.append(e)
        del e
    core = occ & (count >= min_samples)
    del count
    n_core = int(np.count_nonzero(core))
    if n_core == 0:
        return np.full(n, -1, dtype=np.intp)

    # Connected components of core points; lab = smallest point index of the component.
    if eps < 1.0:
        # no neighbour but the point itself: every core point is its own cluster
        lab = np.where(core, pid, -1).astype(itype, copy=False)
    elif val is None or (not dropped[0] and eps < 2.0):
        # In 2-D (or when the third coordinate cut no pair) the 4- (eps < sqrt 2) or
        # 8-neighbourhood edges are all valid: label them at C speed, then join longer
        # offsets (eps >= 2) by union-find.
        rank = 1 if eps * eps < 2.0 else 2
        comp, ncomp = ndimage.label(core, structure=ndimage.generate_binary_structure(2, rank))
        first = np.full(ncomp + 1, np.iinfo(itype).max, dtype=itype)
        np.minimum.at(first, comp[core], pid[core])
        first[0] = -1
        lab = first[comp]
        del comp, first
        if eps >= 2.0:  # (2-D only)
            _union_find(lab, core, pairs, get_edge, n)
    else:
        lab = np.where(core, pid, -1).astype(itype, copy=False)
        _union_find(lab, core, pairs, get_edge, n)
    del pid
    # Sorted roots give scikit-learn's cluster numbers (order of the first core point).
    roots = np.unique(lab[core])
    out = lab  # reuse the memory
    out[core] = np.searchsorted(roots, lab[core]).astype(itype)
    del roots

    # Border points: lowest cluster number among core neighbours within eps.
    border = occ & ~core
    if border.any():
        big = np.iinfo(itype).max
        out[border] = big
        for k, (sa, sb) in enumerate(pairs):
            e = get_edge(k)
            # p (view sa) is border, its neighbour p + offset (view sb) is core
            m = e & border[sa] & core[sb]
            if m.any():
                view = out[sa]
                np.minimum(view, out[sb], out=view, where=m)
            # p + offset is border, p is core
            m = e & core[sa] & border[sb]
            if m.any():
                view = out[sb]
                np.minimum(view, out[sa], out=view, where=m)
            del e, m
        out[border & (out == big)] = -1
    if point_rc is None:
        labels = out[occ]
    else:
        iy, ix = point_rc
        labels = out[iy, ix]
    return labels.astype(np.intp, copy=False)


def _pair_slices(dy: int, dx: int, ny: int, nx: int) -> tuple[tuple[slice, slice], ...]:
    """Views ``a`` and ``b`` of an (ny, nx) grid such that ``b[i, j]`` is ``a[i, j]`` + (dy, dx)."""
    ra = slice(min(ny, max(0, -dy)), max(0, ny - max(0, dy)))
    rb = slice(min(ny, max(0, dy)), max(0, ny - max(0, -dy)))
    ca = slice(min(nx, max(0, -dx)), max(0, nx - max(0, dx)))
    cb = slice(min(nx, max(0, dx)), max(0, nx - max(0, -dx)))
    return (ra, ca), (rb, cb)


def _union_find(lab, core, pairs, get_edge, n) -> None:
    """Vectorised union-find on the label grid ``lab`` (in place); roots = min point index."""
    parent = np.arange(n, dtype=lab.dtype)
    while True:
        merged = False
        for k, (sa, sb) in enumerate(pairs):
            m = get_edge(k) & core[sa]
            m &= core[sb]
            a = lab[sa][m]
            b = lab[sb][m]
            del m
            diff = a != b
            if not diff.any():
                continue
            a = a[diff]
            b = b[diff]
            np.minimum.at(parent, np.maximum(a, b), np.minimum(a, b))
            merged = True
        if not merged:
            return
        # Pointer jumping to the roots.
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        lab[core] = parent[lab[core]]
