"""Compiled (numba) Petrosian radii, light-fraction radii and aperture fluxes.

Number-for-number ports of the radius searches of :class:`.nonparametric._Source`
(``rpetro_circ``, ``rpetro_ellip``, ``frac_circ``, ``frac_ellip`` and the aperture sums
behind ``flux_circ`` / ``flux_ellip``). The Python versions build a slice, an overlap array
and several temporaries per evaluation of the objective and call scipy's ``brentq`` through
Python; here the whole search (the 100-step bracket scan, the pixel-centre pre-estimate that
skips steps, and the Brent refinement) runs in compiled code with the exact overlaps of
:mod:`._overlap` and the solver of :mod:`._roots`.

Same numbers: the aperture sums reproduce ``float(np.sum(image[box] * weights))`` bit for
bit (numpy's pairwise summation, :mod:`._npsum`), the objectives do the same operations in
the same order, and the root finder is a port of scipy's. The only difference is in the
pre-estimate that decides how many scan steps to skip: numpy sums the pixel-centre curve of
growth in the order of ``np.argsort`` (unstable, hardware dependent for tied radii), this
code bins the pixels per grid step, so the estimate may differ by rounding. That moves the
first scan step only if the estimate lies within rounding of its threshold, or if the
fluxes of tied pixels cancel exactly (a mean of 0 in one order, 1e-17 in the other; seen
only on contrived images), and a moved first step changes the result only if the
Petrosian function changes sign more than once or before the first step.
Elliptical sums follow photutils (as statmorph), not ``sep``.

Inputs are the stamp arrays of ``_Source``: ``cut`` (float64, masked pixels 0) and
``omask`` (float64, 1 where unmasked), C-contiguous; centres in 0-based pixel coordinates
(x = column), angles in radians.

Warnings and errors come back as a bit mask ``code`` (plus, for the Petrosian radii, the
number ``nzero`` of objective evaluations that met a zero mean flux, since the Python code
adds one message per evaluation); :func:`describe` turns them into statmorph's messages:

=====================  =====  ==========================================================
W_MEAN_ZERO               1   ``"[{name}] Mean flux is zero."`` (flag 2), ``nzero`` times
W_BELOW_ANNULUS           2   ``"{name} < annulus_width! Setting {name} = annulus_width."``
                              (flag 2); value = annulus width (1.0)
W_TOO_LARGE               4   ``"[{name}] rpetro too large. Setting it to the stamp
                              diagonal."`` (flag 2); value = upper end of the scan
W_TOTAL_ZERO              8   ``"[{name}] Total flux sum is zero."`` (flag 2); value =
                              the total radius
W_TOTAL_NEGATIVE         16   ``"[{name}] Total flux sum is negative."`` (flag 2); the
                              search goes on with the absolute total
E_SIGN                   32   brentq's ``ValueError("f(a) and f(b) must have different
                              signs")``; value NaN
E_CONVERGE               64   brentq's ``RuntimeError("Failed to converge after 100
                              iterations.")``; value NaN
E_NAN                   128   brentq's ``ValueError("The function value at x=... is NaN;
                              solver cannot continue.")``; value = that x
E_NOT_FOUND             256   ``_Invalid("[{name}] root not found within range")``;
                              value NaN
=====================  =====  ==========================================================

``code & E_ANY`` non-zero means the Python method would have raised (the value is not a
result). The kernels are compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._npsum import np_sum
from ._overlap import circle_box_weights, ellipse_box_weights
from ._roots import (
    CONTINUE,
    CONVERGED,
    CONVERR,
    MAXITER,
    NANERR,
    RTOL,
    SIGNERR,
    brentq_start,
    brentq_state,
    brentq_step,
)
from ._roots import error_message as _brent_message

__all__ = [
    "ANNULUS",
    "ETA",
    "E_ANY",
    "E_CONVERGE",
    "E_NAN",
    "E_NOT_FOUND",
    "E_SIGN",
    "W_BELOW_ANNULUS",
    "W_MEAN_ZERO",
    "W_TOO_LARGE",
    "W_TOTAL_NEGATIVE",
    "W_TOTAL_ZERO",
    "circle_sum",
    "circle_sums",
    "describe",
    "ellipse_sum",
    "ellipse_sums",
    "frac_circ",
    "frac_ellip",
    "petro_circ_fn",
    "petro_ellip_fn",
    "rpetro_circ",
    "rpetro_ellip",
]

ETA = 0.2
ANNULUS = 1.0
XTOL = 1e-6  # of the brentq refinements, as in the Python code
NGRID = 100

W_MEAN_ZERO = 1
W_BELOW_ANNULUS = 2
W_TOO_LARGE = 4
W_TOTAL_ZERO = 8
W_TOTAL_NEGATIVE = 16
E_SIGN = 32
E_CONVERGE = 64
E_NAN = 128
E_NOT_FOUND = 256
E_ANY = E_SIGN | E_CONVERGE | E_NAN | E_NOT_FOUND


@njit(cache=True, nogil=True)
def _box_sum(img, y0, y1, x0, x1, w, buf):  # pragma: no cover - compiled
    """``float(np.sum(img[y0:y1, x0:x1] * w))``, bit for bit (``buf``: scratch space)."""
    bw = x1 - x0
    k = 0
    for j in range(y1 - y0):
        for i in range(bw):
            buf[k] = img[y0 + j, x0 + i] * w[j, i]
            k += 1
    return np_sum(buf, k)


# ---------------------------------------------------------------------------------------------
# aperture sums (photutils' exact overlaps; tests/photutils_apertures.py is the reference)
# ---------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _sums(cut, omask, unmasked, y0, y1, x0, x1, w, buf):  # pragma: no cover - compiled
    """Sums of ``cut * w`` and ``omask * w`` on a box; with no masked pixel on the stamp
    (``unmasked``) the second is the sum of the weights (``1.0 * w == w``)."""
    s = _box_sum(cut, y0, y1, x0, x1, w, buf)
    if unmasked:
        return s, np_sum(w.reshape(w.size), w.size)
    return s, _box_sum(omask, y0, y1, x0, x1, w, buf)


@njit(cache=True, nogil=True)
def _circle_sums(cut, omask, unmasked, xc, yc, r, buf):  # pragma: no cover - compiled
    y0, y1, x0, x1, w = circle_box_weights(cut.shape[0], cut.shape[1], xc, yc, r)
    s, a = _sums(cut, omask, unmasked, y0, y1, x0, x1, w, buf)
    return s, a, w.size > 0


@njit(cache=True, nogil=True)
def _ellipse_sums(cut, omask, unmasked, xc, yc, a, b, theta, buf):  # pragma: no cover
    y0, y1, x0, x1, w = ellipse_box_weights(cut.shape[0], cut.shape[1], xc, yc, a, b, theta)
    return _sums(cut, omask, unmasked, y0, y1, x0, x1, w, buf)


@njit(cache=True, nogil=True)
def circle_sums(cut, omask, xc, yc, r, buf):  # pragma: no cover - compiled
    """Exact circular-aperture sums of ``cut`` and ``omask`` (photutils' overlaps).

    Parameters
    ----------
    cut, omask : ndarray, 2-D float64
        Images to sum (same shape).
    xc, yc, r : float
        Centre and radius.
    buf : ndarray, 1-D float64
        Scratch space of at least ``cut.size`` elements.

    Returns
    -------
    s_cut, s_omask : float
        The two sums (0.0 when the aperture is empty).
    nonempty : bool
        Whether the aperture's weight array is non-empty (``w.size`` in the Python code).
    """
    return _circle_sums(cut, omask, False, xc, yc, r, buf)


@njit(cache=True, nogil=True)
def ellipse_sums(cut, omask, xc, yc, a, b, theta, buf):  # pragma: no cover - compiled
    """Exact elliptical-aperture sums of ``cut`` and ``omask`` (photutils' overlaps);
    ``(0.0, 0.0)`` unless ``a > 0`` and ``b > 0``."""
    return _ellipse_sums(cut, omask, False, xc, yc, a, b, theta, buf)


@njit(cache=True, nogil=True)
def circle_sum(img, xc, yc, r):  # pragma: no cover - compiled
    """``float(np.sum(img[sl] * w))`` for the box ``sl`` and exact weights ``w`` of the circle.

    ``flux_circ`` is ``abs(circle_sum(cut, xc, yc, 2 * rpetro_circ))``.
    """
    y0, y1, x0, x1, w = circle_box_weights(img.shape[0], img.shape[1], xc, yc, r)
    buf = np.empty(w.size, np.float64)
    return _box_sum(img, y0, y1, x0, x1, w, buf)


@njit(cache=True, nogil=True)
def ellipse_sum(img, xc, yc, a, b, theta):  # pragma: no cover - compiled
    """``float(np.sum(img[sl] * w))`` for an ellipse's box ``sl`` and exact weights ``w``.

    ``flux_ellip`` is ``abs(ellipse_sum(cut, xc, yc, A, A / elong, theta))`` with
    ``A = 2 * rpetro_ellip``.
    """
    y0, y1, x0, x1, w = ellipse_box_weights(img.shape[0], img.shape[1], xc, yc, a, b, theta)
    buf = np.empty(w.size, np.float64)
    return _box_sum(img, y0, y1, x0, x1, w, buf)


# ---------------------------------------------------------------------------------------------
# Petrosian objectives (``_Source._petro_circ_fn`` / ``_petro_ellip_fn``)
# ---------------------------------------------------------------------------------------------
@njit(nogil=True, inline="always")
def _petro_ratio(s_ann, a_ann, s_ap, a_ap, counter):  # pragma: no cover - compiled
    """Petrosian function ``|annulus mean| / |aperture mean| - ETA`` from the sums and areas;
    a zero aperture mean counts in ``counter[0]`` ("Mean flux is zero.") and gives 1 or 0."""
    ann = abs(s_ann / a_ann) if a_ann != 0 else 0.0
    ap = abs(s_ap / a_ap) if a_ap != 0 else 0.0
    if ap == 0:
        counter[0] += 1
        ratio = 1.0 if ann != 0 else 0.0
    else:
        ratio = ann / ap
    return ratio - ETA


@njit(cache=True, nogil=True)
def _petro_circ(r, cut, omask, unmasked, xc, yc, counter, buf):  # pragma: no cover - compiled
    so, ao, _ = _circle_sums(cut, omask, unmasked, xc, yc, r + 0.5 * ANNULUS, buf)
    si, ai, ni = _circle_sums(cut, omask, unmasked, xc, yc, r - 0.5 * ANNULUS, buf)
    sa, aa, _ = _circle_sums(cut, omask, unmasked, xc, yc, r, buf)
    if ni:
        so -= si
        ao -= ai
    return _petro_ratio(so, ao, sa, aa, counter)


@njit(cache=True, nogil=True)
def _petro_ellip(a, cut, omask, unmasked, xc, yc, elong, theta, counter, buf):  # pragma: no cover
    a_out = a + 0.5 * ANNULUS
    a_in = a - 0.5 * ANNULUS
    b_out = a_out / elong
    so, mo = _ellipse_sums(cut, omask, unmasked, xc, yc, a_out, b_out, theta, buf)
    si, mi = _ellipse_sums(cut, omask, unmasked, xc, yc, a_in, b_out * a_in / a_out, theta, buf)
    s_ann = so - si
    m_ann = mo - mi
    s_ap, m_ap = _ellipse_sums(cut, omask, unmasked, xc, yc, a, a / elong, theta, buf)
    return _petro_ratio(s_ann, m_ann, s_ap, m_ap, counter)


@njit(cache=True, nogil=True)
def petro_circ_fn(r, cut, omask, xc, yc, counter, buf):  # pragma: no cover - compiled
    """Circular Petrosian function ``ratio - ETA`` at radius ``r`` (``_petro_circ_fn``).

    Parameters
    ----------
    r : float
        Radius.
    cut, omask : ndarray, 2-D float64
        Stamp (masked pixels 0) and unmasked-pixel indicator.
    xc, yc : float
        Centre.
    counter : ndarray, int64
        ``counter[0]`` is incremented when the mean flux inside ``r`` is zero (the Python
        code then adds a "[rpetro_circ] Mean flux is zero." warning).
    buf : ndarray, 1-D float64
        Scratch space of at least ``cut.size`` elements.
    """
    return _petro_circ(r, cut, omask, False, xc, yc, counter, buf)


@njit(cache=True, nogil=True)
def petro_ellip_fn(a, cut, omask, xc, yc, elong, theta, counter, buf):  # pragma: no cover
    """Elliptical Petrosian function ``ratio - ETA`` at semi-major axis ``a``
    (``_petro_ellip_fn``).

    Arguments as :func:`petro_circ_fn`, plus the elongation ``elong`` (a / b) and the
    angle ``theta`` of the ellipses.
    """
    return _petro_ellip(a, cut, omask, False, xc, yc, elong, theta, counter, buf)


@njit(cache=True, nogil=True)
def _petro_eval(x, cut, omask, unm, xc, yc, ell, elong, theta, counter, buf):  # pragma: no cover
    if ell:
        return _petro_ellip(x, cut, omask, unm, xc, yc, elong, theta, counter, buf)
    return _petro_circ(x, cut, omask, unm, xc, yc, counter, buf)


# ---------------------------------------------------------------------------------------------
# grids and pixel-centre pre-estimates
# ---------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _linspace(lo, hi):  # pragma: no cover - compiled
    """``np.linspace(lo, hi, 100)``, same values."""
    g = np.empty(NGRID, np.float64)
    div = NGRID - 1
    delta = hi - lo
    step = delta / div
    if step == 0:
        for k in range(NGRID):
            g[k] = k / div * delta + lo
    else:
        for k in range(NGRID):
            g[k] = k * step + lo
    g[NGRID - 1] = hi
    return g


@njit(cache=True, nogil=True, inline="always")
def _bin(grids, q, inv_step, rho):  # pragma: no cover - compiled
    """``np.searchsorted(grids[q], rho, side="right")`` for a uniform grid of spacing
    ``1 / inv_step``: a guess from the spacing, corrected against the grid values.
    (Rows are indexed, not sliced: array views in the pixel loop would cost refcounting.)"""
    n = grids.shape[1]
    t = (rho - grids[q, 0]) * inv_step
    if t >= n:
        k = n
    elif t >= 0:
        k = int(t) + 1
    else:
        k = 0
    while k > 0 and grids[q, k - 1] > rho:
        k -= 1
    while k < n and grids[q, k] <= rho:
        k += 1
    return k


@njit(cache=True, nogil=True, inline="always")
def _gap(grids, q, k, rho):  # pragma: no cover - compiled
    """Distance from ``rho`` to the values of ``grids[q]`` on either side of its bin ``k``."""
    n = grids.shape[1]
    lo = grids[q, k - 1] if k > 0 else -np.inf
    hi = grids[q, k] if k < n else np.inf
    return min(rho - lo, hi - rho)


@njit(cache=True, nogil=True, inline="always")
def _pixel_rho(x, y, xc, yc, elliptical, elong, cos_t, sin_t):  # pragma: no cover - compiled
    """``_Source._rho`` at pixel (x, y), and whether the value is exact.

    Ellipses: ``sqrt(xp**2 + (yp * elong)**2)`` as numpy computes it (exact). Circles:
    ``sqrt(dx * dx + dy * dy)``, within a few ulp of the ``np.hypot`` of the Python code
    (not exact: the caller switches to ``math.hypot`` when it is within rounding of a
    grid value, see :func:`_gap`).
    """
    dx = x - xc
    dy = y - yc
    if elliptical:
        xp = dx * cos_t + dy * sin_t
        yp = -dx * sin_t + dy * cos_t
        return math.sqrt(xp**2 + (yp * elong) ** 2), True
    return math.sqrt(dx * dx + dy * dy), False


@njit(cache=True, nogil=True)
def _petro_start(cut, omask, xc, yc, elliptical, elong, theta, grid):  # pragma: no cover
    """First scan step of ``_scan_root`` from ``_approx_petro`` (pixel-centre profile)."""
    ny, nx = cut.shape
    grids = np.empty((3, NGRID), np.float64)
    grids[0] = grid + 0.5 * ANNULUS
    grids[1] = grid - 0.5 * ANNULUS
    grids[2] = grid
    step = grid[1] - grid[0]
    inv_step = 1.0 / step if step > 0 else 0.0
    # h[q, k]: sums over pixels whose rho falls just below grid step k of grid q
    # (q = 0, 1, 2: outer, inner, aperture; rows 3-5: the same for omask)
    h = np.zeros((6, NGRID + 1), np.float64)
    cos_t = math.cos(theta)
    sin_t = math.sin(theta)
    for y in range(ny):
        for x in range(nx):
            rho, exact = _pixel_rho(x, y, xc, yc, elliptical, elong, cos_t, sin_t)
            k0 = _bin(grids, 0, inv_step, rho)
            k1 = _bin(grids, 1, inv_step, rho)
            k2 = _bin(grids, 2, inv_step, rho)
            gap = min(
                _gap(grids, 0, k0, rho), min(_gap(grids, 1, k1, rho), _gap(grids, 2, k2, rho))
            )
            if not exact and gap < 1e-12 * (rho + 1.0):
                rho = math.hypot(x - xc, y - yc)
                k0 = _bin(grids, 0, inv_step, rho)
                k1 = _bin(grids, 1, inv_step, rho)
                k2 = _bin(grids, 2, inv_step, rho)
            v = cut[y, x]
            m = omask[y, x]
            h[0, k0] += v
            h[3, k0] += m
            h[1, k1] += v
            h[4, k1] += m
            h[2, k2] += v
            h[5, k2] += m
    f_o = f_i = f_a = a_o = a_i = a_a = 0.0
    for k in range(NGRID):
        f_o += h[0, k]
        f_i += h[1, k]
        f_a += h[2, k]
        a_o += h[3, k]
        a_i += h[4, k]
        a_a += h[5, k]
        ann = abs((f_o - f_i) / (a_o - a_i) if a_o - a_i > 0 else 0.0)
        ap = abs(f_a / a_a if a_a > 0 else 0.0)
        approx = (ann / ap if ap > 0 else 1.0) - ETA
        if approx < 0.15:
            return max(k - 1, 0)
    return NGRID - 1


@njit(cache=True, nogil=True)
def _frac_start(cut, xc, yc, elliptical, elong, theta, grid, total, fraction):  # pragma: no cover
    """First scan step of ``_frac_radius`` from its pixel-centre curve of growth."""
    ny, nx = cut.shape
    grids = np.empty((1, NGRID), np.float64)
    grids[0] = grid
    step = grid[1] - grid[0]
    inv_step = 1.0 / step if step > 0 else 0.0
    h = np.zeros(NGRID + 1, np.float64)
    cos_t = math.cos(theta)
    sin_t = math.sin(theta)
    for y in range(ny):
        for x in range(nx):
            rho, exact = _pixel_rho(x, y, xc, yc, elliptical, elong, cos_t, sin_t)
            k = _bin(grids, 0, inv_step, rho)
            if not exact and _gap(grids, 0, k, rho) < 1e-12 * (rho + 1.0):
                k = _bin(grids, 0, inv_step, math.hypot(x - xc, y - yc))
            h[k] += cut[y, x]
    f = 0.0
    for k in range(NGRID):
        f += h[k]
        if abs(f) / total - fraction > -0.05:
            return max(k - 1, 0)
    return 0


# ---------------------------------------------------------------------------------------------
# Petrosian radii (``_Source._scan_root``)
# ---------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _brent_code(status):  # pragma: no cover - compiled
    if status == SIGNERR:
        return E_SIGN
    if status == CONVERR:
        return E_CONVERGE
    if status == NANERR:
        return E_NAN
    return 0


@njit(cache=True, nogil=True)
def _rpetro(cut, omask, xc, yc, elliptical, elong, theta):  # pragma: no cover - compiled
    ny, nx = cut.shape
    diag = math.hypot(nx, ny)
    lo = ANNULUS
    hi = diag * elong if elliptical else diag
    ell_rho = elliptical and elong != 1.0
    unmasked = True
    for v in omask.flat:
        if v != 1.0:
            unmasked = False
            break
    counter = np.zeros(1, np.int64)
    buf = np.empty(ny * nx, np.float64)
    grid = _linspace(lo, hi)
    start = _petro_start(cut, omask, xc, yc, ell_rho, elong, theta, grid)
    # value at the lower end of the bracket, when known, and its zero-mean-flux count
    # (brentq evaluates both ends again; the Python code warns again for them)
    f_lo = np.nan
    z_lo = 0
    have_f_lo = False
    if start > 1:
        n0 = counter[0]
        v = _petro_eval(
            grid[start - 1], cut, omask, unmasked, xc, yc, elliptical, elong, theta, counter, buf
        )
        if not v > 0:  # estimate too optimistic: full scan
            start = 0
        else:
            f_lo, z_lo, have_f_lo = v, counter[0] - n0, True
    have_rmin = start > 0
    rmin = grid[start - 1] if start > 0 else 0.0
    result = hi
    code = W_TOO_LARGE
    for k in range(start, NGRID):
        r = grid[k]
        n0 = counter[0]
        v = _petro_eval(r, cut, omask, unmasked, xc, yc, elliptical, elong, theta, counter, buf)
        z = counter[0] - n0
        if v == 0:
            result, code = r, 0
            break
        if v > 0:
            rmin = r
            have_rmin = True
            f_lo, z_lo, have_f_lo = v, z, True
            continue
        if not have_rmin:
            result, code = lo, W_BELOW_ANNULUS
            break
        state = brentq_state()
        x = brentq_start(state, rmin, r, XTOL, RTOL, MAXITER)
        calls = 0
        while True:
            if calls == 0 and have_f_lo:
                fx = f_lo
                counter[0] += z_lo
            elif calls == 1:
                fx = v
                counter[0] += z
            else:
                fx = _petro_eval(
                    x, cut, omask, unmasked, xc, yc, elliptical, elong, theta, counter, buf
                )
            calls += 1
            x, status = brentq_step(state, fx)
            if status != CONTINUE:
                break
        if status == CONVERGED or status == NANERR:
            result = x
        else:
            result = np.nan
        code = _brent_code(status)
        break
    if counter[0] > 0:
        code |= W_MEAN_ZERO
    return result, code, counter[0]


@njit(cache=True, nogil=True)
def rpetro_circ(cut, omask, xc, yc):  # pragma: no cover - compiled
    """Circular Petrosian radius about ``(xc, yc)``, as ``_Source.rpetro_circ((xc, yc))``.

    Parameters
    ----------
    cut, omask : ndarray, 2-D float64
        Stamp (masked pixels 0) and unmasked-pixel indicator (``_Source.cut``, ``._omask``).
    xc, yc : float
        Centre.

    Returns
    -------
    r : float
        The radius (see the module docstring for the values that come with warnings and
        errors).
    code : int
        Bit mask of warnings / errors (module docstring).
    nzero : int
        Number of evaluations with zero mean flux (one "Mean flux is zero." message each).
    """
    return _rpetro(cut, omask, float(xc), float(yc), False, 1.0, 0.0)


@njit(cache=True, nogil=True)
def rpetro_ellip(cut, omask, xc, yc, elong, theta):  # pragma: no cover - compiled
    """Elliptical Petrosian semi-major axis, as ``_Source.rpetro_ellip((xc, yc), elong,
    theta)``; returns ``(a, code, nzero)`` as :func:`rpetro_circ`."""
    return _rpetro(cut, omask, float(xc), float(yc), True, float(elong), float(theta))


# ---------------------------------------------------------------------------------------------
# radii containing a fraction of the light (``_Source._frac_radius``)
# ---------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _frac_sum(r, cut, xc, yc, elliptical, elong, theta, buf):  # pragma: no cover - compiled
    ny, nx = cut.shape
    if elliptical:
        y0, y1, x0, x1, w = ellipse_box_weights(ny, nx, xc, yc, r, r / elong, theta)
    else:
        y0, y1, x0, x1, w = circle_box_weights(ny, nx, xc, yc, r)
    return _box_sum(cut, y0, y1, x0, x1, w, buf)


@njit(cache=True, nogil=True)
def _frac_fn(r, cut, xc, yc, elliptical, elong, theta, total, fraction, buf):  # pragma: no cover
    if r == 0:
        return -fraction
    return abs(_frac_sum(r, cut, xc, yc, elliptical, elong, theta, buf)) / total - fraction


@njit(cache=True, nogil=True)
def _frac(cut, xc, yc, elliptical, elong, theta, r_total, fraction):  # pragma: no cover
    ny, nx = cut.shape
    buf = np.empty(ny * nx, np.float64)
    code = 0
    total = _frac_sum(r_total, cut, xc, yc, elliptical, elong, theta, buf)
    if total == 0:
        return r_total, W_TOTAL_ZERO
    if total < 0:
        code |= W_TOTAL_NEGATIVE
        total = abs(total)
    grid = _linspace(0.0, r_total)
    ell_rho = elliptical and elong != 1.0
    start = _frac_start(cut, xc, yc, ell_rho, elong, theta, grid, total, fraction)
    # objective at the lower end of the bracket, when known (brentq evaluates both ends
    # again; the objective has no side effects, so known values are reused)
    f_lo = 0.0
    have_f_lo = False
    if start > 1:
        v = _frac_fn(grid[start - 1], cut, xc, yc, elliptical, elong, theta, total, fraction, buf)
        if not v <= 0:  # estimate too optimistic: full scan
            start = 0
        else:
            f_lo, have_f_lo = v, True
    rmin = grid[start - 1] if start > 0 else 0.0
    for k in range(start, NGRID):
        r = grid[k]
        v = _frac_fn(r, cut, xc, yc, elliptical, elong, theta, total, fraction, buf)
        if v <= 0:
            rmin = r
            f_lo, have_f_lo = v, True
            continue
        state = brentq_state()
        x = brentq_start(state, rmin, r, XTOL, RTOL, MAXITER)
        if not have_f_lo:
            f_lo = _frac_fn(rmin, cut, xc, yc, elliptical, elong, theta, total, fraction, buf)
        x, status = brentq_step(state, f_lo)
        if status == CONTINUE:
            x, status = brentq_step(state, v)
        while status == CONTINUE:
            fx = _frac_fn(x, cut, xc, yc, elliptical, elong, theta, total, fraction, buf)
            x, status = brentq_step(state, fx)
        code |= _brent_code(status)
        if status == CONVERGED or status == NANERR:
            return x, code
        return np.nan, code
    return np.nan, code | E_NOT_FOUND


@njit(cache=True, nogil=True)
def frac_circ(cut, xc, yc, r_total, fraction):  # pragma: no cover - compiled
    """Radius of the circle about ``(xc, yc)`` holding ``fraction`` of the light within
    ``r_total``, as ``_Source.frac_circ((xc, yc), r_total, fraction)``.

    Parameters
    ----------
    cut : ndarray, 2-D float64
        Stamp (masked pixels 0).
    xc, yc : float
        Centre.
    r_total : float
        Radius of the total-light aperture.
    fraction : float
        Target fraction (0.2, 0.5, 0.8 for r20, r50, r80).

    Returns
    -------
    r : float
        The radius (NaN when an error bit is set, except ``E_NAN``).
    code : int
        Bit mask of warnings / errors (module docstring; names ``"r_circ"``).
    """
    return _frac(cut, float(xc), float(yc), False, 1.0, 0.0, float(r_total), float(fraction))


@njit(cache=True, nogil=True)
def frac_ellip(cut, xc, yc, elong, theta, a_total, fraction):  # pragma: no cover - compiled
    """Semi-major axis of the ellipse holding ``fraction`` of the light within ``a_total``,
    as ``_Source.frac_ellip((xc, yc), elong, theta, a_total, fraction)`` (photutils
    overlaps); returns ``(a, code)`` as :func:`frac_circ` (names ``"r_ellip"``)."""
    return _frac(
        cut,
        float(xc),
        float(yc),
        True,
        float(elong),
        float(theta),
        float(a_total),
        float(fraction),
    )


# ---------------------------------------------------------------------------------------------
# messages
# ---------------------------------------------------------------------------------------------
def describe(code: int, name: str, nzero: int = 0, value: float = float("nan")):
    """statmorph's messages for a kernel's ``code``.

    Parameters
    ----------
    code : int
        Bit mask returned by a kernel.
    name : str
        Quantity name used in the messages: ``"rpetro_circ"``, ``"rpetro_ellip"``,
        ``"r_circ"`` or ``"r_ellip"`` (as the Python methods).
    nzero : int
        Number of "Mean flux is zero." messages (Petrosian kernels).
    value : float
        The kernel's value (needed for the NaN message).

    Returns
    -------
    warnings : list of (str, int)
        ``(message, flag)`` pairs in the order the Python code emits them
        (``MorphologyState.warn``).
    error : str or None
        Message of the exception the Python method would raise (``ValueError`` /
        ``RuntimeError`` from brentq, to be reported as ``f"{key} failed: {error}"``, or
        ``_Invalid`` for ``E_NOT_FOUND``); None when it returns normally.
    """
    out = []
    if code & W_TOTAL_ZERO:
        out.append((f"[{name}] Total flux sum is zero.", 2))
    if code & W_TOTAL_NEGATIVE:
        out.append((f"[{name}] Total flux sum is negative.", 2))
    out.extend([(f"[{name}] Mean flux is zero.", 2)] * int(nzero))
    if code & W_BELOW_ANNULUS:
        out.append((f"{name} < annulus_width! Setting {name} = annulus_width.", 2))
    if code & W_TOO_LARGE:
        out.append((f"[{name}] rpetro too large. Setting it to the stamp diagonal.", 2))
    error = None
    if code & E_SIGN:
        error = _brent_message(SIGNERR)
    elif code & E_CONVERGE:
        error = _brent_message(CONVERR, maxiter=MAXITER)
    elif code & E_NAN:
        error = _brent_message(NANERR, value)
    elif code & E_NOT_FOUND:
        error = f"[{name}] root not found within range"
    return out, error
