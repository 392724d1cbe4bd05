"""Compiled (numba) kernels of the MID statistics (Freeman et al. 2013) of :mod:`.nonparametric`.

What is compiled:

* :func:`component_at` and :func:`top_two_sizes`: 8-connected components of
  ``values >= thr`` by flood fill, O(pixels), in place of ``scipy.ndimage.label``;
* :func:`multimode`: the whole multimode (M) statistic of ``_mid``: the quantile grid with
  its step halving, then ``scipy.optimize.basinhopping`` with the Nelder-Mead local
  minimiser over ``ratio(q)``. The port reproduces scipy 1.17's ``basinhopping`` (initial
  minimisation, ``AdaptiveStepsize`` with ``interval=2.5``, ``RandomDisplacement``,
  ``Metropolis``, storage of the lowest successful minimum, ``res.x``) and
  ``_minimize_neldermead`` (default options, one variable: simplex rules, tolerances,
  ``maxfev``/``maxiter`` with their aborted iteration, numpy's sort order) operation by
  operation, so the result is the same float as the scipy path. ``seed=0`` makes scipy
  draw from ``np.random.RandomState(0)`` (the ``_transition_to_rng`` decorator passes the
  old ``seed`` keyword through to ``check_random_state``), one displacement and then one
  Metropolis uniform per hop: those ``2 * niter`` draws are fixed and are taken once, in
  Python, with that generator (:data:`BASINHOPPING_UNIFORMS`). ``ratio`` is not
  evaluated by labelling at each call: one union-find sweep over the pixels from the
  brightest down gives the two largest component sizes at every threshold at once
  (exact integers, so the same ratios), and ``ratio`` becomes a table look-up;
* :func:`peak_basin_sums` / :func:`intensity_deviation`: ``skimage.feature.peak_local_max``
  with its defaults and ``skimage.segmentation.watershed(-smooth, markers,
  connectivity=2, mask=smooth > 0)`` (scikit-image 0.26: its binary heap ordered by value
  then age, neighbour order, costs clamped to the popped pixel's) followed by the
  per-basin sums; the Gaussian smoothing stays ``scipy.ndimage.gaussian_filter``.

The kernels are compiled on first use and cached on disk (``cache=True``). The tests
(``tests/measure/test_mid_kernels.py``) compare every kernel with the scipy /
scikit-image code it replaces, for exact equality.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy import ndimage as ndi

from ..segment._kernels import _find
from ._stamp import _fill

__all__ = [
    "BASINHOPPING_UNIFORMS",
    "NITER",
    "component_at",
    "intensity_deviation",
    "multimode",
    "peak_basin_sums",
    "top_two_sizes",
]

NITER = 5
"""Basin-hopping iterations of ``_mid`` (``niter``)."""

BASINHOPPING_UNIFORMS = np.random.RandomState(0).random_sample(2 * NITER)
"""The uniforms in [0, 1) that ``basinhopping(..., seed=0)`` draws, in order: for hop ``i``,
``[2 i]`` scales the displacement (``uniform(-s, s, (1,))`` is ``-s + (s - -s) * u``) and
``[2 i + 1]`` is the Metropolis ``uniform()``."""

# Status codes of the multimode kernel (errors are the exceptions scipy's path raises).
_OK = 0
_SINGLE = 1
_INDEX_ERROR = 2
_NAN_ERROR = 3
_OVERFLOW_ERROR = 4

# Nelder-Mead defaults of scipy (N = 1): xatol = fatol = 1e-4, maxiter = maxfev = 200 N.
_XATOL = 1e-4
_FATOL = 1e-4
_MAXFEV = 200
_MAXITER = 200


# --------------------------------------------------------------------------- labelling
@njit(cache=True, nogil=True)
def _top_two(flat, ny, nx, thr, mark, gen, stack):  # pragma: no cover - compiled
    """Sizes of the two largest 8-connected components of ``flat >= thr`` (0 if absent)
    and the number of components; ``mark`` must hold no ``gen`` on entry."""
    c0 = 0
    c1 = 0
    n = 0
    for p in range(ny * nx):
        if mark[p] != gen and flat[p] >= thr:
            size = _fill(flat, ny, nx, p, thr, mark, gen, stack)
            n += 1
            if size > c0:
                c1 = c0
                c0 = size
            elif size > c1:
                c1 = size
    return c0, c1, n


@njit(cache=True, nogil=True)
def _component_at(values, thr, i, j):  # pragma: no cover - compiled
    ny, nx = values.shape
    flat = values.ravel()
    out = np.zeros(ny * nx, np.bool_)
    if not flat[i * nx + j] >= thr:
        # label 0: every pixel that is not above the threshold
        for p in range(ny * nx):
            out[p] = not flat[p] >= thr
        return out.reshape((ny, nx))
    mark = np.zeros(ny * nx, np.int64)
    stack = np.empty(ny * nx, np.int64)
    _fill(flat, ny, nx, i * nx + j, thr, mark, 1, stack)
    for p in range(ny * nx):
        out[p] = mark[p] == 1
    return out.reshape((ny, nx))


def component_at(values: np.ndarray, thr: float, i: int, j: int) -> np.ndarray:
    """The 8-connected component of ``values >= thr`` that holds pixel ``(i, j)``.

    Parameters
    ----------
    values : ndarray, 2-D
        Image (any real dtype; NaN is below every threshold).
    thr : float
        Threshold.
    i, j : int
        Row and column of the pixel (negative indices count from the end, as numpy's).

    Returns
    -------
    ndarray of bool
        ``lab == lab[i, j]`` for ``lab, _ = ndi.label(values >= thr, 8-connectivity)``:
        the component of ``(i, j)``, or, when ``(i, j)`` is below the threshold (label 0),
        every pixel below it. One flood fill, O(pixels).
    """
    values = np.ascontiguousarray(values, dtype=float)
    ny, nx = values.shape
    i = int(i) + ny if i < 0 else int(i)
    j = int(j) + nx if j < 0 else int(j)
    if not (0 <= i < ny and 0 <= j < nx):
        raise IndexError(f"pixel ({i}, {j}) outside an image of shape {values.shape}")
    return _component_at(values, float(thr), i, j)


@njit(cache=True, nogil=True)
def _top_two_sizes(values, thr):  # pragma: no cover - compiled
    ny, nx = values.shape
    mark = np.zeros(ny * nx, np.int64)
    stack = np.empty(max(ny * nx, 1), np.int64)
    return _top_two(values.ravel(), ny, nx, thr, mark, 1, stack)


def top_two_sizes(values: np.ndarray, thr: float) -> tuple[int, int, int]:
    """Sizes of the two largest 8-connected components of ``values >= thr``.

    Parameters
    ----------
    values : ndarray, 2-D
        Image (NaN is below every threshold).
    thr : float
        Threshold.

    Returns
    -------
    first, second : int
        The two largest sizes, ``np.sort(np.bincount(lab)[1:])[::-1][:2]`` for the
        8-connected labels ``lab`` (0 where there are fewer components).
    n : int
        Number of components.
    """
    values = np.ascontiguousarray(values, dtype=float)
    c0, c1, n = _top_two_sizes(values, float(thr))
    return int(c0), int(c1), int(n)


# --------------------------------------------------------------------------- multimode
@njit(cache=True, nogil=True)
def _component_table(values):  # pragma: no cover - compiled
    """Component sizes of ``values >= thr`` for every threshold at once.

    One sweep over the positive pixels from the brightest down, joining 8-neighbours with
    union-find (by size). The largest component is tracked by its root; the sizes of the
    others are kept as a histogram, so the second largest only moves down by a scan when
    it is absorbed by the largest (amortised O(P log P), as it moves up by at most the
    smaller size of each merge). Returns ``levels`` (the positive values, descending) and
    ``table[m] = (largest, second, number of components)`` of the first ``m`` pixels,
    filled where ``levels[m - 1] > levels[m]`` (the ``m`` of every threshold) and at
    ``m = 0``. NaN pixels are below every threshold.
    """
    ny, nx = values.shape
    flat = values.ravel()
    npix = ny * nx
    cnt = 0
    for p in range(npix):
        if flat[p] > 0:
            cnt += 1
    pix = np.empty(cnt, np.int64)
    neg = np.empty(cnt, np.float64)
    c = 0
    for p in range(npix):
        if flat[p] > 0:
            pix[c] = p
            neg[c] = -flat[p]
            c += 1
    order = np.argsort(neg)
    levels = np.empty(cnt, np.float64)
    for m in range(cnt):
        levels[m] = -neg[order[m]]
    parent = np.full(npix, -1, np.int64)  # -1: not yet above the threshold
    size = np.zeros(npix, np.int64)
    hist = np.zeros(cnt + 1, np.int64)  # sizes of the components other than the largest
    table = np.zeros((cnt + 1, 3), np.int64)
    ncomp = 0
    r0 = -1  # root of the largest component
    c0 = 0
    c1 = 0
    for m in range(cnt):
        p = pix[order[m]]
        parent[p] = p
        size[p] = 1
        ncomp += 1
        if r0 < 0:
            r0 = p
            c0 = 1
        else:
            hist[1] += 1
            c1 = max(c1, 1)
        root = p
        y = p // nx
        x = p - y * nx
        for yy in range(max(y - 1, 0), min(y + 2, ny)):
            for xx in range(max(x - 1, 0), min(x + 2, nx)):
                q = yy * nx + xx
                if parent[q] < 0:
                    continue
                b = _find(parent, q)
                if b == root:
                    continue
                sa = size[root]
                sb = size[b]
                big, small = (b, root) if sb > sa else (root, b)
                parent[small] = big
                s_new = sa + sb
                size[big] = s_new
                ncomp -= 1
                if root == r0 or b == r0:
                    other = sb if root == r0 else sa
                    hist[other] -= 1
                    r0 = big
                    c0 = s_new
                    if other == c1 and hist[other] == 0:
                        while c1 > 0 and hist[c1] == 0:
                            c1 -= 1
                else:
                    hist[sa] -= 1
                    hist[sb] -= 1
                    if s_new > c0:
                        hist[c0] += 1
                        c1 = c0
                        r0 = big
                        c0 = s_new
                    else:
                        hist[s_new] += 1
                        c1 = max(c1, s_new)
                root = big
        if m + 1 < cnt and levels[m + 1] == levels[m]:
            continue
        table[m + 1, 0] = c0
        table[m + 1, 1] = c1
        table[m + 1, 2] = ncomp
    return levels, table


@njit(cache=True, nogil=True)
def _counts(thr, m, levels, table, n_cut):  # pragma: no cover - compiled
    """``counts`` of ``_mid`` at threshold ``thr``: (largest, second, number of components)
    of ``msub >= thr``; ``thr <= 0`` gives one component of ``n_cut`` pixels
    (``np.array([cut_mid.size])``). ``m`` is a guess of the number of ``levels >= thr``
    (any value in ``[0, levels.size]``; the search walks from it)."""
    if thr <= 0:
        return n_cut, 0, 1, m
    if thr != thr:  # msub >= nan: no pixel
        return 0, 0, 0, m
    # m = number of levels >= thr (levels descending)
    while m > 0 and not levels[m - 1] >= thr:
        m -= 1
    while m < levels.size and levels[m] >= thr:
        m += 1
    return table[m, 0], table[m, 1], table[m, 2], m


@njit(cache=True, nogil=True, inline="always")
def _ratio(q, invalid, ratios, errors, state):  # pragma: no cover - compiled
    """``ratio(q)`` of ``_mid``: ``-second**2 / first``, or ``invalid`` outside [0, 1] and
    for a single component, looked up in ``ratios`` (:func:`_context`). An error (that
    scipy's path raises) sets ``state[1]``.
    """
    if q < 0 or q > 1:
        return invalid
    if state[1] != _OK:
        return np.nan
    if q != q:
        state[1] = _NAN_ERROR  # int(nan): ValueError
        return np.nan
    n = ratios.size
    k = int(q * (n - 1))
    if k < 0 or k >= n:  # only for an empty sorted_mid: IndexError
        state[1] = _INDEX_ERROR
        return np.nan
    if errors[k]:  # no component: c[1] of an empty array, IndexError
        state[1] = _INDEX_ERROR
        return np.nan
    return ratios[k]


@njit(cache=True, nogil=True, inline="always")
def _less_nan_last(a, b):  # pragma: no cover - compiled
    """numpy's sort order: ``a < b`` with NaN after everything."""
    return a < b or (b != b and a == a)


@njit(cache=True, nogil=True)
def _neldermead(x0, invalid, ratios, errors, state, maxfev, maxiter):  # pragma: no cover
    """scipy's ``_minimize_neldermead`` for one variable: default options but ``maxfev`` and
    ``maxiter`` (``_mid`` uses the defaults, 200 each).

    Returns ``(x, fun, success, nfev, nit)``: ``res.x[0]``, ``res.fun``, ``res.success``,
    ``res.nfev`` and ``res.nit``.
    """
    rho = 1.0
    chi = 2.0
    psi = 0.5
    sigma = 0.5
    nonzdelt = 0.05
    zdelt = 0.00025
    s0 = x0
    s1 = (1 + nonzdelt) * x0 if x0 != 0 else zdelt
    # the initial simplex: a call past maxfev raises, leaving inf
    fcalls = 0
    f0 = np.inf
    f1 = np.inf
    if fcalls < maxfev:
        f0 = _ratio(s0, invalid, ratios, errors, state)
        fcalls += 1
    if fcalls < maxfev:
        f1 = _ratio(s1, invalid, ratios, errors, state)
        fcalls += 1
    if _less_nan_last(f1, f0):
        s0, s1 = s1, s0
        f0, f1 = f1, f0
    iterations = 1
    while fcalls < maxfev and iterations < maxiter:
        if state[1] != _OK:
            break
        if abs(s1 - s0) <= _XATOL and abs(f0 - f1) <= _FATOL:
            break
        # _MaxFuncCallError: a call with fcalls >= maxfev aborts the iteration
        aborted = False
        xbar = s0 / 1.0
        xr = (1 + rho) * xbar - rho * s1
        fxr = _ratio(xr, invalid, ratios, errors, state)
        fcalls += 1
        doshrink = False
        if fxr < f0:
            xe = (1 + rho * chi) * xbar - rho * chi * s1
            if fcalls >= maxfev:
                aborted = True
            else:
                fxe = _ratio(xe, invalid, ratios, errors, state)
                fcalls += 1
                if fxe < fxr:
                    s1 = xe
                    f1 = fxe
                else:
                    s1 = xr
                    f1 = fxr
        elif fxr < f0:  # fsim[-2] is fsim[0] for one variable
            s1 = xr
            f1 = fxr
        else:
            if fxr < f1:
                xc = (1 + psi * rho) * xbar - psi * rho * s1
                if fcalls >= maxfev:
                    aborted = True
                else:
                    fxc = _ratio(xc, invalid, ratios, errors, state)
                    fcalls += 1
                    if fxc <= fxr:
                        s1 = xc
                        f1 = fxc
                    else:
                        doshrink = True
            else:
                xcc = (1 - psi) * xbar + psi * s1
                if fcalls >= maxfev:
                    aborted = True
                else:
                    fxcc = _ratio(xcc, invalid, ratios, errors, state)
                    fcalls += 1
                    if fxcc < f1:
                        s1 = xcc
                        f1 = fxcc
                    else:
                        doshrink = True
            if doshrink:
                s1 = s0 + sigma * (s1 - s0)
                if fcalls >= maxfev:
                    aborted = True
                else:
                    f1 = _ratio(s1, invalid, ratios, errors, state)
                    fcalls += 1
        if not aborted:
            iterations += 1
        if _less_nan_last(f1, f0):
            s0, s1 = s1, s0
            f0, f1 = f1, f0
    fun = np.nan if (f0 != f0 or f1 != f1) else min(f0, f1)  # np.min(fsim)
    success = not (fcalls >= maxfev or iterations >= maxiter)
    return s0, fun, success, fcalls, iterations


@njit(cache=True, nogil=True)
def _context(msub, sorted_mid, n_cut, invalid):  # pragma: no cover - compiled
    """The state of the multimode search: ``(levels, table, sorted_mid, n_cut, invalid,
    state, ratios, errors)`` with the component table of ``msub``, the error status
    ``state[1]`` and ``ratio`` at every index ``k`` of ``sorted_mid`` (``errors[k]`` where
    ``counts`` is empty)."""
    levels, table = _component_table(msub)
    state = np.zeros(2, np.int64)
    n = sorted_mid.size
    ratios = np.empty(n, np.float64)
    errors = np.zeros(n, np.bool_)
    m = 0
    for k in range(n - 1, -1, -1):  # thresholds descending: the walk over levels is O(n + P)
        c0, c1, nc, m = _counts(sorted_mid[k], m, levels, table, n_cut)
        if nc == 1:
            ratios[k] = invalid
        elif nc == 0:
            ratios[k] = np.nan
            errors[k] = True
        else:
            ratios[k] = -1.0 * float(c1) ** 2 / float(c0)
    return (levels, table, sorted_mid, n_cut, invalid, state, ratios, errors)


@njit(cache=True, nogil=True)
def _neldermead_alone(msub, sorted_mid, n_cut, invalid, x0, maxfev, maxiter):  # pragma: no cover
    """:func:`_neldermead` from ``x0`` on a fresh context (for the tests)."""
    ctx = _context(msub, sorted_mid, n_cut, invalid)
    x, fun, ok, nfev, nit = _neldermead(x0, ctx[4], ctx[6], ctx[7], ctx[5], maxfev, maxiter)
    return x, fun, ok, nfev, nit, ctx[5][1]


@njit(cache=True, nogil=True)
def _grid(ctx):  # pragma: no cover - compiled
    """The quantile grid of ``_mid``, halving the step until a negative ratio.

    Returns ``(q0, rmin, step, status)`` (``_SINGLE`` when the step fell below 1e-3).
    """
    invalid, ratios, errors = ctx[4], ctx[6], ctx[7]
    n = ratios.size
    step = 0.02
    while True:
        qs = np.arange(0.0, 1.0, step)
        k = -1
        rmin = np.nan
        for i in range(qs.size):
            # ratio(qs[i]), as _ratio (qs[i] is in [0, 1))
            q = qs[i]
            if q < 0 or q > 1:
                r = invalid
            else:
                kq = int(q * (n - 1))
                if kq < 0 or kq >= n or errors[kq]:
                    return np.nan, np.nan, step, _INDEX_ERROR
                r = ratios[kq]
            if k < 0 or r < rmin or (r != r and rmin == rmin):  # np.argmin: first minimum
                k = i
                rmin = r
        q0 = qs[k]
        if rmin < 0:
            return q0, rmin, step, _OK
        if step < 1e-3:
            return q0, rmin, step, _SINGLE
        step /= 2.0


@njit(cache=True, nogil=True)
def _basinhopping(q0, rmin, step, uniforms, ctx, maxfev, maxiter):  # pragma: no cover
    """``basinhopping(ratio, q0, minimizer_kwargs={"method": "Nelder-Mead"}, niter,
    T=-0.5 * rmin, stepsize=step, interval=2.5, seed=0)`` with ``niter = uniforms.size // 2``.

    Returns ``(res.x[0], res.fun, res.success, res.nfev, res.minimization_failures)``.
    """
    invalid, state, ratios, errors = ctx[4], ctx[5], ctx[6], ctx[7]
    temp = -0.5 * rmin
    beta = 1.0 / temp if temp != 0 else np.inf
    # BasinHoppingRunner: the first minimisation is the incumbent and the stored minimum
    cur_x, cur_f, cur_ok, nfev, _ = _neldermead(q0, invalid, ratios, errors, state, maxfev, maxiter)
    failures = 0 if cur_ok else 1
    best_x, best_f, best_ok = cur_x, cur_f, cur_ok
    stepsize = step
    interval = 2.5
    nstep = 0
    naccept = 0
    for it in range(uniforms.size // 2):
        # AdaptiveStepsize.take_step, then RandomDisplacement: x + uniform(-s, s)
        nstep += 1
        if float(nstep) % interval == 0:
            if float(naccept) / nstep > 0.5:
                stepsize /= 0.9
            else:
                stepsize *= 0.9
        low = -stepsize
        x_step = cur_x + (low + (stepsize - low) * uniforms[2 * it])
        new_x, new_f, new_ok, fcalls, _ = _neldermead(
            x_step, invalid, ratios, errors, state, maxfev, maxiter
        )
        nfev += fcalls
        if not new_ok:
            failures += 1
        # Metropolis: w = exp(min(0, -(f_new - f_old) / T)) >= uniform()
        prod = -(new_f - cur_f) * beta
        w = math.exp(prod if prod < 0 else 0.0)
        accept = w >= uniforms[2 * it + 1] and (new_ok or not cur_ok)
        if accept:
            naccept += 1
            cur_x, cur_f, cur_ok = new_x, new_f, new_ok
            # Storage.update
            if new_ok and (new_f < best_f or not best_ok):
                best_x, best_f, best_ok = new_x, new_f, new_ok
    return best_x, best_f, best_ok, nfev, failures


@njit(cache=True, nogil=True)
def _multimode(msub, sorted_mid, n_cut, invalid, uniforms):  # pragma: no cover - compiled
    """The multimode statistic of ``_mid``.

    Returns ``(value, status, res.x[0], res.fun, res.nfev)`` (the last three NaN/0 when
    basinhopping does not run).
    """
    ctx = _context(msub, sorted_mid, n_cut, invalid)
    state = ctx[5]
    n = sorted_mid.size
    q0, rmin, step, status = _grid(ctx)
    if status == _SINGLE:
        return 0.0, _SINGLE, np.nan, np.nan, 0
    if status != _OK:
        return np.nan, status, np.nan, np.nan, 0
    best_x, best_f, _, nfev, _ = _basinhopping(q0, rmin, step, uniforms, ctx, _MAXFEV, _MAXITER)
    if state[1] != _OK:
        return np.nan, state[1], best_x, best_f, nfev
    # c = counts(res.x[0]); c[1] / c[0]  (with Python's indexing of sorted_mid[k])
    kf = best_x * (n - 1)
    if kf != kf:
        return np.nan, _NAN_ERROR, best_x, best_f, nfev
    if abs(kf) == np.inf:
        return np.nan, _OVERFLOW_ERROR, best_x, best_f, nfev
    if not abs(kf) < 2.0**62:
        return np.nan, _INDEX_ERROR, best_x, best_f, nfev
    k = int(kf)
    if k < 0:
        k += n
    if k < 0 or k >= n:
        return np.nan, _INDEX_ERROR, best_x, best_f, nfev
    c0, c1, nc, _ = _counts(sorted_mid[k], 0, ctx[0], ctx[1], n_cut)
    if nc < 2:
        return np.nan, _INDEX_ERROR, best_x, best_f, nfev
    return float(c1) / float(c0), _OK, best_x, best_f, nfev


def multimode(
    msub: np.ndarray, sorted_mid: np.ndarray, n_cut: int, invalid: float
) -> tuple[float, bool]:
    """The multimode statistic M of ``_mid``, compiled, with scipy's result.

    Parameters
    ----------
    msub : ndarray, 2-D
        The image whose 8-connected components above each threshold are counted: ``_mid``
        passes ``cut_mid`` on the bounding box of the MID segmap, one pixel wider.
    sorted_mid : ndarray, 1-D
        The sorted values of ``cut_mid`` on the unmasked pixels.
    n_cut : int
        ``cut_mid.size`` (the single "component" below a nonpositive threshold).
    invalid : float
        ``np.sum(cut_mid)``, the value of the ratio outside [0, 1] and for one component.

    Returns
    -------
    value : float
        ``c[1] / c[0]`` for the component sizes at the quantile that basinhopping returns,
        or 0.0 for a single clump.
    single_clump : bool
        True when no quantile of the grid (down to a step < 1e-3) gives two components
        (``_mid`` then warns "[M statistic] Single clump!").

    Raises
    ------
    IndexError, ValueError, OverflowError
        Where the scipy path raises them (an empty ``sorted_mid``, no component above a
        threshold, a lowest minimum at a single component or outside the array, a NaN or
        infinite quantile).
    """
    value, status, _, _, _ = _multimode(
        np.ascontiguousarray(msub, dtype=float),
        np.ascontiguousarray(sorted_mid, dtype=float),
        int(n_cut),
        float(invalid),
        BASINHOPPING_UNIFORMS,
    )
    if status == _INDEX_ERROR:
        raise IndexError("multimode: index out of range (as in the scipy path)")
    if status == _NAN_ERROR:
        raise ValueError("multimode: cannot convert float NaN to integer")
    if status == _OVERFLOW_ERROR:
        raise OverflowError("multimode: cannot convert float infinity to integer")
    return float(value), bool(status == _SINGLE)


# ------------------------------------------------------------- intensity and deviation
@njit(cache=True, nogil=True)
def _heap_push(hv, ha, hi, hs, size, value, age, index, source):  # pragma: no cover
    """scikit-image's ``heappush`` (heap ordered by value, then age)."""
    child = size
    hv[child] = value
    ha[child] = age
    hi[child] = index
    hs[child] = source
    size += 1
    while child > 0:
        parent = (child + 1) // 2 - 1
        if hv[child] != hv[parent]:
            smaller = hv[child] < hv[parent]
        else:
            smaller = ha[child] < ha[parent]
        if smaller:
            hv[child], hv[parent] = hv[parent], hv[child]
            ha[child], ha[parent] = ha[parent], ha[child]
            hi[child], hi[parent] = hi[parent], hi[child]
            hs[child], hs[parent] = hs[parent], hs[child]
            child = parent
        else:
            break
    return size


@njit(cache=True, nogil=True, inline="always")
def _heap_smaller(hv, ha, a, b):  # pragma: no cover - compiled
    if hv[a] != hv[b]:
        return hv[a] < hv[b]
    return ha[a] < ha[b]


@njit(cache=True, nogil=True)
def _heap_pop(hv, ha, hi, hs, size):  # pragma: no cover - compiled
    """scikit-image's ``heappop``; returns the popped item and the new size."""
    value, age, index, source = hv[0], ha[0], hi[0], hs[0]
    size -= 1
    if size == 0:
        return value, age, index, source, size
    hv[0], ha[0], hi[0], hs[0] = hv[size], ha[size], hi[size], hs[size]
    i = 0
    smallest = 0
    while True:
        left = i * 2 + 1
        right = i * 2 + 2
        if left < size:
            if _heap_smaller(hv, ha, left, i):
                smallest = left
            if right < size and _heap_smaller(hv, ha, right, smallest):
                smallest = right
        else:
            break
        if smallest == i:
            break
        hv[i], hv[smallest] = hv[smallest], hv[i]
        ha[i], ha[smallest] = ha[smallest], ha[i]
        hi[i], hi[smallest] = hi[smallest], hi[i]
        hs[i], hs[smallest] = hs[smallest], hs[i]
        i = smallest
    return value, age, index, source, size


@njit(cache=True, nogil=True)
def _peak_basin_sums(smooth):  # pragma: no cover - compiled
    ny, nx = smooth.shape
    flat = smooth.ravel()
    npix = ny * nx
    # peak_local_max: 3x3 maximum filter ('nearest' border), > image minimum, border
    # excluded, none at all when every pixel is a local maximum (a constant image).
    vmin = np.inf
    vmax = -np.inf
    for p in range(npix):
        vmin = min(vmin, flat[p])
        vmax = max(vmax, flat[p])
    cand = np.empty(npix, np.int64)
    ncand = 0
    if vmax != vmin:
        for y in range(1, ny - 1):
            for x in range(1, nx - 1):
                p = y * nx + x
                v = flat[p]
                if not v > vmin:
                    continue
                if (
                    flat[p - nx - 1] > v
                    or flat[p - nx] > v
                    or flat[p - nx + 1] > v
                    or flat[p - 1] > v
                    or flat[p + 1] > v
                    or flat[p + nx - 1] > v
                    or flat[p + nx] > v
                    or flat[p + nx + 1] > v
                ):
                    continue
                cand[ncand] = p
                ncand += 1
    cand = cand[:ncand]
    neg = np.empty(ncand, np.float64)
    for c in range(ncand):
        neg[c] = -flat[cand[c]]
    peaks = cand[np.argsort(neg, kind="mergesort")]
    # watershed(-smooth, markers, connectivity=2, mask=smooth > 0) on the padded image
    py, px = ny + 2, nx + 2
    img = np.zeros(py * px, np.float64)
    mask = np.zeros(py * px, np.bool_)
    out = np.zeros(py * px, np.int64)
    for y in range(ny):
        for x in range(nx):
            v = flat[y * nx + x]
            img[(y + 1) * px + x + 1] = -v
            mask[(y + 1) * px + x + 1] = v > 0
    for c in range(ncand):
        y = peaks[c] // nx
        x = peaks[c] - y * nx
        q = (y + 1) * px + x + 1
        if mask[q]:
            out[q] = c + 1
    offsets = np.array([-px, -1, 1, px, -px - 1, -px + 1, px - 1, px + 1], np.int64)
    cap = py * px + 1
    hv = np.empty(cap, np.float64)
    ha = np.empty(cap, np.int64)
    hi = np.empty(cap, np.int64)
    hs = np.empty(cap, np.int64)
    size = 0
    for q in range(py * px):  # markers in raster order (np.flatnonzero)
        if out[q] != 0:
            size = _heap_push(hv, ha, hi, hs, size, img[q], 0, q, q)
    age = 1
    while size > 0:
        value, _, index, source, size = _heap_pop(hv, ha, hi, hs, size)
        for o in offsets:
            nb = index + o
            if not mask[nb] or out[nb] != 0:
                continue
            age += 1
            nv = img[nb]
            out[nb] = out[index]
            if nv < value:
                nv = value
            size = _heap_push(hv, ha, hi, hs, size, nv, age, nb, source)
    # np.bincount(labels.ravel(), weights=smooth.ravel(), minlength=npk + 1)[1:]
    sums = np.zeros(ncand + 1, np.float64)
    for y in range(ny):
        for x in range(nx):
            sums[out[(y + 1) * px + x + 1]] += flat[y * nx + x]
    coords = np.empty((ncand, 2), np.int64)
    for c in range(ncand):
        coords[c, 0] = peaks[c] // nx
        coords[c, 1] = peaks[c] - coords[c, 0] * nx
    return coords, sums[1:]


def peak_basin_sums(smooth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of ``smooth`` and the sum of ``smooth`` over the watershed basin of each.

    Parameters
    ----------
    smooth : ndarray, 2-D
        Finite image (``_mid`` passes ``ndi.gaussian_filter(cut_mid, 1.0)``).

    Returns
    -------
    peaks : ndarray, shape (n, 2)
        ``skimage.feature.peak_local_max(smooth, num_peaks=np.inf)``: (row, column) of the
        local maxima (3x3), above the image minimum, off the border, highest first (ties in
        raster order).
    sums : ndarray, shape (n,)
        ``np.bincount(labels.ravel(), weights=smooth.ravel(), minlength=n + 1)[1:]`` for
        ``labels = skimage.segmentation.watershed(-smooth, markers, connectivity=2,
        mask=smooth > 0)`` with marker ``k + 1`` at ``peaks[k]``.
    """
    return _peak_basin_sums(np.ascontiguousarray(smooth, dtype=float))


def intensity_deviation(cut_mid: np.ndarray, seg_mid: np.ndarray) -> tuple[float, float, str]:
    """Intensity and deviation statistics of ``_mid`` (Freeman et al. 2013).

    Parameters
    ----------
    cut_mid : ndarray, 2-D
        Nonnegative image, zero outside the MID segmap.
    seg_mid : ndarray of bool
        The MID segmap.

    Returns
    -------
    intensity, deviation : float
        As ``_mid`` computes them (deviation NaN with a warning).
    warning : str
        ``_mid``'s warning message ("" when none; its flag is 2).
    """
    smooth = ndi.gaussian_filter(cut_mid, 1.0)
    peaks, sums = peak_basin_sums(smooth)
    npk = peaks.shape[0]
    order = np.argsort(sums)[::-1]
    sums = sums[order]
    intensity = 0.0 if len(sums) <= 1 else float(sums[1] / sums[0])
    if npk == 0:
        return intensity, np.nan, "[deviation] There are no peaks."
    yp, xp = peaks[order[0]]
    # _moments of nonparametric.py
    m00 = cut_mid.sum()
    mx = cut_mid.sum(axis=0) @ np.arange(cut_mid.shape[1], dtype=float)
    my = cut_mid.sum(axis=1) @ np.arange(cut_mid.shape[0], dtype=float)
    if m00 <= 0:
        return intensity, np.nan, "[deviation] Nonpositive flux within MID segmap."
    area = float(np.sum(seg_mid))
    deviation = float(np.sqrt(np.pi / area) * np.hypot(xp - mx / m00, yp - my / m00))
    return intensity, deviation, ""
