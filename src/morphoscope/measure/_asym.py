"""Compiled (numba) asymmetry function and asymmetry-centre search of the statmorph set.

:func:`asymmetry_value` is :meth:`~morphoscope.measure.nonparametric._Source.asym_fn` for
the four kinds ('cas', 'rms', 'outer', 'shape'): exact aperture weights on the aperture's
bounding box (:mod:`._overlap`), the 180-degree bilinear rotation and the nearest-pixel
rotated mask of that box, and the terms of the sums, in one pass over the box. The sums
use numpy's pairwise summation (:func:`._npsum.np_sums`, the algorithm of ``np.sum`` on a
contiguous float64 array) over the same elements in the same order, so the values are
bit-identical to the Python function's (the image must be finite, as ``s.cut`` is).

:func:`nelder_mead` reproduces ``scipy.optimize.fmin(func, x0, xtol=xtol, disp=False)``
(scipy 1.17: ``_minimize_neldermead`` with ``xatol=xtol``, ``fatol=1e-4``, ``maxiter = maxfev
= 200 * N``, the default initial simplex, ``adaptive=False``) step by step for two
parameters: the same initial simplex, the same reflection / expansion / contraction /
shrink arithmetic (same operations in the same order), the same stable sort of the
vertices, the same convergence test, and the same handling of the evaluation budget (an
evaluation past ``maxfev`` aborts the iteration, as scipy's ``_MaxFuncCallError``). Given a
bit-identical objective it returns a bit-identical minimum. It takes the objective as a
compiled function (numba cannot call Python closures) and is inlined into its caller
(a function passed to a compiled function that is not inlined becomes a run-time pointer,
which numba refuses to cache): :func:`fmin` specialises it to the 'cas' asymmetry and
:func:`asymmetry_center` is the whole asymmetry-centre step of
:func:`~morphoscope.measure.nonparametric.morphology_one` (first search from the centroid,
retry from the brightest pixel, fall back to the centroid).

Warnings are returned as integer codes (``CODE_*``; :data:`MESSAGES` gives statmorph's
message and flag of those that warn, :data:`ERRORS` the text of the exception of those that
make the quantity invalid) instead of being written into a
:class:`~morphoscope.measure.nonparametric.MorphologyState`: ``codes`` is the OR of all codes
seen, and the ``events`` arrays list one code per ``st.warn`` call of the Python path, in
order, so that the caller can reproduce the messages exactly.

The kernels are compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._npsum import np_sum as _np_sum
from ._npsum import np_sums as _np_sums
from ._overlap import circle_box_weights, ellipse_box_weights

__all__ = [
    "CODE_BOUNDS",
    "CODE_DRIFT",
    "CODE_INVALID_OUTER",
    "CODE_INVALID_RMAX_CIRC",
    "CODE_NONFINITE",
    "CODE_USE_CENTROID",
    "CODE_ZERO_FLUX",
    "ERRORS",
    "KINDS",
    "KIND_CAS",
    "KIND_OUTER",
    "KIND_RMS",
    "KIND_SHAPE",
    "MESSAGES",
    "asymmetry_center",
    "asymmetry_value",
    "fmin",
    "nelder_mead",
]

KIND_CAS = 0
KIND_RMS = 1
KIND_OUTER = 2
KIND_SHAPE = 3
#: ``asym_fn``'s ``kind`` strings to the integer kinds of :func:`asymmetry_value`.
KINDS = {"cas": KIND_CAS, "rms": KIND_RMS, "outer": KIND_OUTER, "shape": KIND_SHAPE}

#: The centre is outside the stamp: value 100.
CODE_BOUNDS = 1
#: The aperture misses the image or the absolute flux sum is 0: value 100.
CODE_ZERO_FLUX = 2
#: 'shape' with ``rmax_circ <= 0`` (statmorph warns, then the quantity is invalid): NaN.
CODE_INVALID_RMAX_CIRC = 4
#: 'outer' with ``rhalf_ellip`` or ``rmax_ellip`` not > 0 (the quantity is invalid): NaN.
CODE_INVALID_OUTER = 8
#: The first minimum drifted more than ``PETRO_CAS * rpetro_centroid`` from the centroid.
CODE_DRIFT = 16
#: The retry from the brightest pixel drifted too: the centroid is used.
CODE_USE_CENTROID = 32
#: The centre is NaN (the Python function raises ``ValueError`` there): NaN.
CODE_NONFINITE = 64

#: statmorph's warning message and flag for the codes that warn (one ``st.warn`` each).
MESSAGES = {
    CODE_BOUNDS: ("[asym_center] Minimizer tried to exit bounds.", 1),
    CODE_ZERO_FLUX: ("[asymmetry_function] Zero flux sum.", 1),
    CODE_INVALID_RMAX_CIRC: ("[shape_asym] Invalid rmax_circ value.", 2),
    CODE_DRIFT: (
        "Asymmetry center drifted too far away from the centroid. "
        "Trying again with the brightest pixel.",
        1,
    ),
    CODE_USE_CENTROID: ("Using centroid instead of asymmetry center.", 2),
}
#: The text of the exception the Python function raises after (or instead of) its warning
#: for the codes that make the quantity invalid (``_Invalid``; ``ValueError`` for NaN).
ERRORS = {
    CODE_INVALID_RMAX_CIRC: "[shape_asym] invalid rmax_circ",
    CODE_INVALID_OUTER: "[outer_asym] invalid rhalf_ellip or rmax_ellip",
    CODE_NONFINITE: "cannot convert float NaN to integer",
}

#: As in :mod:`.nonparametric` (which cannot be imported here: it will import this module).
PETRO_CAS = 0.25
EXTENT_CAS = 1.5
#: scipy.optimize.fmin's defaults for two parameters.
FTOL = 1e-4
MAXFUN = 400
MAXITER = 400


# ----------------------------------------------------------------------- asymmetry
@njit(cache=True, nogil=True)
def _pixel(image, y, x):  # pragma: no cover - compiled
    if y < 0 or x < 0 or y >= image.shape[0] or x >= image.shape[1]:
        return 0.0
    return image[y, x]


@njit(cache=True, nogil=True)
def asymmetry_value(
    image,
    mask,
    any_mask,
    xc,
    yc,
    kind,
    r_circ,
    a_in,
    a_out,
    elong,
    theta,
    sky_asym,
    sky_sigma2,
    have_sky,
):  # pragma: no cover - compiled
    """statmorph's asymmetry function at the centre ``(xc, yc)``, as ``_Source.asym_fn``.

    Parameters
    ----------
    image : ndarray of float64, shape (ny, nx)
        The image to rotate (``s.cut``; the binary shape-asymmetry map for 'shape').
    mask : ndarray of bool, shape (ny, nx)
        ``s.mask`` (pixels excluded together with their rotated counterparts).
    any_mask : bool
        ``s.any_mask`` (``mask.any()``); False skips the mask.
    xc, yc : float
        Centre (0-based pixel coordinates, x = column).
    kind : int
        :data:`KIND_CAS`, :data:`KIND_RMS`, :data:`KIND_OUTER` or :data:`KIND_SHAPE`.
    r_circ : float
        Radius of the circular aperture: ``EXTENT_CAS * rpetro_centroid`` for 'cas' and
        'rms', ``rmax_circ`` for 'shape' (unused for 'outer').
    a_in, a_out, elong, theta : float
        'outer' only: ``rhalf_ellip``, ``rmax_ellip``, the elongation and orientation of the
        elliptical annulus (semi-minor axes ``a / elong``).
    sky_asym : float
        The sky's asymmetry per pixel ('cas', 'outer').
    sky_sigma2 : float
        The square of the sky's standard deviation, ``sky_sigma ** 2`` computed by the
        caller ('rms').
    have_sky : bool
        False where the sky box was not found (``sky_asym`` / ``sky_sigma`` None).

    Returns
    -------
    value : float
        The asymmetry (100.0 on the bounds and zero-flux paths, NaN when invalid).
    code : int
        0, or the ``CODE_*`` of the warning / error path taken.
    """
    ny, nx = image.shape
    if np.isnan(xc) or np.isnan(yc):
        return np.nan, CODE_NONFINITE
    if xc < 0 or xc >= nx or yc < 0 or yc >= ny:
        return 100.0, CODE_BOUNDS
    if kind == KIND_OUTER:
        if not (a_in > 0 and a_out > 0):
            return np.nan, CODE_INVALID_OUTER
        b_out = a_out / elong
        y0, y1, x0, x1, w = ellipse_box_weights(ny, nx, xc, yc, a_out, b_out, theta)
        iy0, iy1, ix0, ix1, wi = ellipse_box_weights(ny, nx, xc, yc, a_in, a_in / elong, theta)
        if wi.size:
            oy = iy0 - y0
            ox = ix0 - x0
            if oy < 0 or ox < 0 or iy1 > y1 or ix1 > x1:  # Python: broadcast error
                return np.nan, CODE_INVALID_OUTER
            for i in range(iy1 - iy0):
                for j in range(ix1 - ix0):
                    w[oy + i, ox + j] -= wi[i, j]
    elif kind == KIND_SHAPE:
        if not r_circ > 0:
            return np.nan, CODE_INVALID_RMAX_CIRC
        y0, y1, x0, x1, w = circle_box_weights(ny, nx, xc, yc, r_circ)
    else:
        y0, y1, x0, x1, w = circle_box_weights(ny, nx, xc, yc, r_circ)
    if w.size == 0:
        return 100.0, CODE_ZERO_FLUX

    h = y1 - y0
    wd = x1 - x0
    n = h * wd
    tx = 2.0 * xc
    ty = 2.0 * yc
    kx = int(np.floor(tx))
    ky = int(np.floor(ty))
    fx = tx - kx
    fy = ty - ky
    gx = 1 - fx
    gy = 1 - fy
    # nearest source pixel of the rotated mask
    sx = kx + (1 if tx - kx >= 0.5 else 0)
    sy = ky + (1 if ty - ky >= 0.5 else 0)
    rms = kind == KIND_RMS
    # Terms of the sums, one row each (the Python's arrays, in raster order): |im| w,
    # |rot - im| w, for 'rms' im^2 w and (rot - im)^2 w, and last the area's weights (all of
    # w, or those of the unmasked pixels only).
    nrows = 5 if rms else 3
    ia = nrows - 1
    buf = np.empty((nrows, n))
    na = 0
    k = 0
    for i in range(h):
        y = y0 + i
        # the output pixel (y, x) interpolates rows ky - y, ky + 1 - y and columns kx - x,
        # kx + 1 - x; [xa, xb) is where all four are inside the image
        r0 = ky - y
        xa = max(x0, kx + 2 - nx)
        xb = min(x1, kx + 1)
        if r0 < 0 or r0 + 1 >= ny:
            xa = xb = x1
        for j in range(wd):
            x = x0 + j
            wv = w[i, j]
            masked = False
            if any_mask:
                masked = mask[y, x]
                yy = sy - y
                xx = sx - x
                if not masked and yy >= 0 and xx >= 0 and yy < ny and xx < nx:
                    masked = mask[yy, xx]
                if not masked:
                    buf[ia, na] = wv
                    na += 1
            else:
                buf[ia, k] = wv
            if wv == 0.0 or masked:  # every term is 0 (the image is finite)
                buf[0, k] = 0.0
                buf[1, k] = 0.0
                if rms:
                    buf[2, k] = 0.0
                    buf[3, k] = 0.0
                k += 1
                continue
            im = image[y, x]
            c0 = kx - x
            if xa <= x < xb:
                a00 = image[r0, c0]
                a01 = image[r0, c0 + 1]
                a10 = image[r0 + 1, c0]
                a11 = image[r0 + 1, c0 + 1]
            else:
                a00 = _pixel(image, r0, c0)
                a01 = _pixel(image, r0, c0 + 1)
                a10 = _pixel(image, r0 + 1, c0)
                a11 = _pixel(image, r0 + 1, c0 + 1)
            rot = gy * (gx * a00 + fx * a01) + fy * (gx * a10 + fx * a11)
            d = rot - im
            buf[0, k] = np.abs(im) * wv
            buf[1, k] = np.abs(d) * wv
            if rms:
                buf[2, k] = im * im * wv
                buf[3, k] = d * d * wv
            k += 1
    if any_mask:
        sums = _np_sums(buf, nrows - 1, n)
        area = _np_sum(buf[ia], na)
    else:
        sums = _np_sums(buf, nrows, n)
        area = sums[ia]
    abs_sum = sums[0]
    abs_diff = sums[1]
    if abs_sum == 0.0:
        return 100.0, CODE_ZERO_FLUX
    if kind == KIND_SHAPE:
        return abs_diff / abs_sum, 0
    if rms:
        sq_sum = sums[2]
        sq_diff = sums[3]
        if not have_sky:
            return sq_diff / sq_sum, 0
        return (sq_diff - 2 * area * sky_sigma2) / (sq_sum - area * sky_sigma2), 0
    if not have_sky:
        return abs_diff / abs_sum, 0
    return (abs_diff - area * sky_asym) / abs_sum, 0


@njit(cache=True, nogil=True)
def _cas_objective(x, y, args):  # pragma: no cover - compiled
    """The 'cas' asymmetry at ``(x, y)``; ``args = (image, mask, any_mask, r, sky, have)``."""
    image, mask, any_mask, r, sky_asym, have_sky = args
    return asymmetry_value(
        image, mask, any_mask, x, y, KIND_CAS, r, 0.0, 0.0, 1.0, 0.0, sky_asym, 0.0, have_sky
    )


# --------------------------------------------------------------------- Nelder-Mead
@njit(cache=True, nogil=True)
def _before(a, b):  # pragma: no cover - compiled
    """numpy's sort order of floats: ``a < b``, NaN after everything."""
    return a < b or (np.isnan(b) and not np.isnan(a))


@njit(cache=True, nogil=True)
def _sort_simplex(sim, fsim):  # pragma: no cover - compiled
    """``ind = np.argsort(fsim); sim = sim[ind]; fsim = fsim[ind]`` (stable, in place)."""
    for i in range(1, fsim.size):
        f = fsim[i]
        s0 = sim[i, 0]
        s1 = sim[i, 1]
        j = i - 1
        while j >= 0 and _before(f, fsim[j]):
            fsim[j + 1] = fsim[j]
            sim[j + 1, 0] = sim[j, 0]
            sim[j + 1, 1] = sim[j, 1]
            j -= 1
        fsim[j + 1] = f
        sim[j + 1, 0] = s0
        sim[j + 1, 1] = s1


@njit(cache=True, nogil=True)
def _converged(sim, fsim, xatol, fatol):  # pragma: no cover - compiled
    """``max(|sim[1:] - sim[0]|) <= xatol and max(|fsim[0] - fsim[1:]|) <= fatol`` (a NaN
    makes ``np.max`` NaN, hence the test False)."""
    mx = 0.0
    for j in range(1, 3):
        for k in range(2):
            d = np.abs(sim[j, k] - sim[0, k])
            if np.isnan(d):
                return False
            mx = max(mx, d)
    if not mx <= xatol:
        return False
    mf = 0.0
    for j in range(1, 3):
        d = np.abs(fsim[0] - fsim[j])
        if np.isnan(d):
            return False
        mf = max(mf, d)
    return mf <= fatol


@njit(cache=True, nogil=True, inline="always")
def nelder_mead(
    func, args, x0, y0, xatol, fatol, maxfun, maxiter, events, nev
):  # pragma: no cover - compiled
    """``scipy.optimize.fmin(f, [x0, y0], xtol=xatol, ftol=fatol, maxiter=maxiter,
    maxfun=maxfun, disp=False)`` for a compiled objective of two parameters.

    Parameters
    ----------
    func : numba-compiled function
        ``func(x, y, args) -> (value, code)``; a nonzero ``code`` is recorded as an event
        (the Python objective's warning).
    args : tuple
        Passed to ``func``.
    x0, y0 : float
        Starting point.
    xatol, fatol : float
        scipy's absolute tolerances on the simplex's extent and on its function values.
    maxfun, maxiter : int
        Evaluation and iteration budgets (``200 * N = 400`` in ``fmin`` by default).
    events : ndarray of int64
        Receives the nonzero codes from ``events[nev]`` on, in evaluation order (size at
        least ``nev + maxfun``).
    nev : int
        Number of events already in ``events``.

    Returns
    -------
    x, y : float
        The best vertex (scipy's ``res.x``).
    codes : int
        OR of the codes returned by ``func``.
    nfev : int
        Number of evaluations.
    nev : int
        Number of events in ``events`` after the search.
    """
    rho = 1
    chi = 2
    psi = 0.5
    sigma = 0.5
    nonzdelt = 0.05
    zdelt = 0.00025
    sim = np.empty((3, 2))
    fsim = np.full(3, np.inf)
    xbar = np.empty(2)
    pt = np.empty(2)
    sim[0, 0] = x0
    sim[0, 1] = y0
    for k in range(2):
        sim[k + 1, 0] = x0
        sim[k + 1, 1] = y0
        if sim[0, k] != 0:
            sim[k + 1, k] = (1 + nonzdelt) * sim[0, k]
        else:
            sim[k + 1, k] = zdelt
    codes = 0
    fcalls = 0
    for k in range(3):
        if fcalls >= maxfun:
            break
        fcalls += 1
        v, c = func(sim[k, 0], sim[k, 1], args)
        if c:
            codes |= c
            events[nev] = c
            nev += 1
        fsim[k] = v
    _sort_simplex(sim, fsim)

    iterations = 1
    while fcalls < maxfun and iterations < maxiter:
        if _converged(sim, fsim, xatol, fatol):
            break
        # Every evaluation below first checks the budget: scipy's wrapper raises
        # _MaxFuncCallError, which abandons the rest of the iteration (``iterations`` is not
        # incremented) but still sorts the simplex.
        for k in range(2):
            xbar[k] = (sim[0, k] + sim[1, k]) / 2
        xr0 = (1 + rho) * xbar[0] - rho * sim[2, 0]
        xr1 = (1 + rho) * xbar[1] - rho * sim[2, 1]
        aborted = False
        if fcalls >= maxfun:
            aborted = True
        else:
            fcalls += 1
            fxr, c = func(xr0, xr1, args)
            if c:
                codes |= c
                events[nev] = c
                nev += 1
            doshrink = False
            if fxr < fsim[0]:
                xe0 = (1 + rho * chi) * xbar[0] - rho * chi * sim[2, 0]
                xe1 = (1 + rho * chi) * xbar[1] - rho * chi * sim[2, 1]
                if fcalls >= maxfun:
                    aborted = True
                else:
                    fcalls += 1
                    fxe, c = func(xe0, xe1, args)
                    if c:
                        codes |= c
                        events[nev] = c
                        nev += 1
                    if fxe < fxr:
                        sim[2, 0] = xe0
                        sim[2, 1] = xe1
                        fsim[2] = fxe
                    else:
                        sim[2, 0] = xr0
                        sim[2, 1] = xr1
                        fsim[2] = fxr
            elif fxr < fsim[1]:
                sim[2, 0] = xr0
                sim[2, 1] = xr1
                fsim[2] = fxr
            else:
                if fxr < fsim[2]:  # outside contraction
                    pt[0] = (1 + psi * rho) * xbar[0] - psi * rho * sim[2, 0]
                    pt[1] = (1 + psi * rho) * xbar[1] - psi * rho * sim[2, 1]
                    if fcalls >= maxfun:
                        aborted = True
                    else:
                        fcalls += 1
                        fxc, c = func(pt[0], pt[1], args)
                        if c:
                            codes |= c
                            events[nev] = c
                            nev += 1
                        if fxc <= fxr:
                            sim[2, 0] = pt[0]
                            sim[2, 1] = pt[1]
                            fsim[2] = fxc
                        else:
                            doshrink = True
                else:  # inside contraction
                    pt[0] = (1 - psi) * xbar[0] + psi * sim[2, 0]
                    pt[1] = (1 - psi) * xbar[1] + psi * sim[2, 1]
                    if fcalls >= maxfun:
                        aborted = True
                    else:
                        fcalls += 1
                        fxcc, c = func(pt[0], pt[1], args)
                        if c:
                            codes |= c
                            events[nev] = c
                            nev += 1
                        if fxcc < fsim[2]:
                            sim[2, 0] = pt[0]
                            sim[2, 1] = pt[1]
                            fsim[2] = fxcc
                        else:
                            doshrink = True
                if doshrink:
                    for j in range(1, 3):
                        sim[j, 0] = sim[0, 0] + sigma * (sim[j, 0] - sim[0, 0])
                        sim[j, 1] = sim[0, 1] + sigma * (sim[j, 1] - sim[0, 1])
                        if fcalls >= maxfun:
                            aborted = True
                            break
                        fcalls += 1
                        v, c = func(sim[j, 0], sim[j, 1], args)
                        if c:
                            codes |= c
                            events[nev] = c
                            nev += 1
                        fsim[j] = v
        if not aborted:
            iterations += 1
        _sort_simplex(sim, fsim)
    return sim[0, 0], sim[0, 1], codes, fcalls, nev


@njit(cache=True, nogil=True)
def _fmin_cas(
    image, mask, any_mask, x0, y0, r, sky_asym, have_sky, xtol, events, nev
):  # pragma: no cover - compiled
    """:func:`nelder_mead` on the 'cas' asymmetry (aperture radius ``r``)."""
    args = (image, mask, any_mask, r, sky_asym, have_sky)
    return nelder_mead(_cas_objective, args, x0, y0, xtol, FTOL, MAXFUN, MAXITER, events, nev)


@njit(cache=True, nogil=True)
def fmin(
    image, mask, any_mask, x0, y0, rpetro_centroid, sky_asym, have_sky, xtol
):  # pragma: no cover - compiled
    """``scipy.optimize.fmin(lambda c: s.asym_fn(c, s.cut, 'cas'), [x0, y0], xtol=xtol,
    disp=False)``, compiled.

    Parameters
    ----------
    image, mask, any_mask
        ``s.cut``, ``s.mask``, ``s.any_mask``.
    x0, y0 : float
        Starting point.
    rpetro_centroid : float
        Petrosian radius about the centroid (the aperture radius is ``EXTENT_CAS`` times it).
    sky_asym : float
        ``s.sky_asym``; ignored when ``have_sky`` is False (``s.sky_asym`` None).
    have_sky : bool
        Whether the sky box was found.
    xtol : float
        scipy's ``xtol`` (``XTOL_CENTER`` in morphology_one).

    Returns
    -------
    x, y : float
        The minimum found.
    codes : int
        OR of the warning codes of the evaluations (:data:`CODE_BOUNDS`,
        :data:`CODE_ZERO_FLUX`).
    nfev : int
        Number of evaluations of the asymmetry.
    """
    events = np.empty(MAXFUN, np.int64)
    r = EXTENT_CAS * rpetro_centroid
    x, y, codes, nfev, _ = _fmin_cas(
        image, mask, any_mask, x0, y0, r, sky_asym, have_sky, xtol, events, 0
    )
    return x, y, codes, nfev


@njit(cache=True, nogil=True)
def asymmetry_center(
    image, mask, any_mask, xc, yc, xmax, ymax, rpetro_centroid, sky_asym, have_sky, xtol
):  # pragma: no cover - compiled
    """The asymmetry-centre step of ``morphology_one``.

    Minimises the 'cas' asymmetry from the centroid ``(xc, yc)``; if the minimum is more than
    ``PETRO_CAS * rpetro_centroid`` away, minimises again from the brightest pixel
    ``(xmax, ymax)``; if that drifts too, returns the centroid.

    Parameters
    ----------
    image, mask, any_mask
        ``s.cut``, ``s.mask``, ``s.any_mask``.
    xc, yc : float
        The centroid (stamp coordinates).
    xmax, ymax : int or float
        The brightest pixel of ``s.cut_nobg``.
    rpetro_centroid : float
        Petrosian radius about the centroid.
    sky_asym : float
        ``s.sky_asym``; ignored when ``have_sky`` is False.
    have_sky : bool
        Whether the sky box was found.
    xtol : float
        Nelder-Mead ``xtol`` (``XTOL_CENTER``).

    Returns
    -------
    x, y : float
        The asymmetry centre.
    codes : int
        OR of all warning codes (those of the evaluations, :data:`CODE_DRIFT`,
        :data:`CODE_USE_CENTROID`).
    events : ndarray of int64
        One code per warning of the Python path, in order (see :data:`MESSAGES`).
    nfev : int
        Evaluations of the asymmetry in both searches.
    """
    events = np.empty(2 * MAXFUN + 2, np.int64)
    r = EXTENT_CAS * rpetro_centroid
    dist = PETRO_CAS * rpetro_centroid
    x, y, codes, nfev, nev = _fmin_cas(
        image, mask, any_mask, xc, yc, r, sky_asym, have_sky, xtol, events, 0
    )
    dx = x - xc
    dy = y - yc
    if np.sqrt(dx * dx + dy * dy) > dist:
        codes |= CODE_DRIFT
        events[nev] = CODE_DRIFT
        nev += 1
        bx = float(xmax)
        by = float(ymax)
        x, y, c2, nf2, nev = _fmin_cas(
            image, mask, any_mask, bx, by, r, sky_asym, have_sky, xtol, events, nev
        )
        codes |= c2
        nfev += nf2
        dx = x - bx
        dy = y - by
        if np.sqrt(dx * dx + dy * dy) > dist:
            codes |= CODE_USE_CENTROID
            events[nev] = CODE_USE_CENTROID
            nev += 1
            x = xc
            y = yc
    return x, y, codes, events[:nev].copy(), nfev
