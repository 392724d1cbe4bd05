"""Brent's root finder (scipy's ``brentq``) as a compiled, reverse-communication solver.

:func:`scipy.optimize.brentq` calls a Python function at every step; inside compiled
(numba) code there is no cheap way to pass the objective around (first-class functions
cannot be cached on disk, and recursion/closures are brittle). So the solver is written the
other way round: the caller owns the loop and evaluates its own objective, the solver only
says where to evaluate next::

    state = brentq_state()
    x = brentq_start(state, a, b, xtol, RTOL, MAXITER)
    while True:
        x, status = brentq_step(state, objective(x, ...))
        if status != CONTINUE:
            break
    # status == CONVERGED: x is the root

The arithmetic is a line-by-line port of scipy's C ``brentq`` (``scipy/optimize/Zeros/
brentq.c``, by Charles Harris, BSD-3 licensed) with the checks of the Python wrapper
(``scipy.optimize.brentq``): the objective is evaluated at the same points in the same
order and the same root comes back, bit for bit. Defaults are scipy's: ``xtol = 2e-12``,
``rtol = 4 * eps``, ``maxiter = 100``.

Status codes (what scipy would do instead of returning):

==========  ====  ===============================================================
CONTINUE     1    evaluate the objective at the returned ``x`` and call again
CONVERGED    0    ``x`` is the root
SIGNERR     -1    ``ValueError("f(a) and f(b) must have different signs")``
CONVERR     -2    ``RuntimeError("Failed to converge after {maxiter} iterations.")``
                  (``x`` is the last iterate, scipy's ``disp=False`` result)
NANERR      -3    ``ValueError(f"The function value at x={x} is NaN; solver cannot
                  continue.")`` (``x`` is where the objective gave NaN)
==========  ====  ===============================================================

The kernels are compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "CONTINUE",
    "CONVERGED",
    "CONVERR",
    "MAXITER",
    "NANERR",
    "RTOL",
    "SIGNERR",
    "XTOL",
    "brentq",
    "brentq_start",
    "brentq_state",
    "brentq_step",
    "error_message",
]

CONTINUE = 1
CONVERGED = 0
SIGNERR = -1
CONVERR = -2
NANERR = -3

XTOL = 2e-12
RTOL = 4 * np.finfo(float).eps
MAXITER = 100

# layout of the state vector
_XPRE, _XCUR, _XBLK, _FPRE, _FCUR, _FBLK, _SPRE, _SCUR = 0, 1, 2, 3, 4, 5, 6, 7
_XTOL, _RTOL, _MAXITER, _ITER, _PHASE, _CALLS, _XEVAL = 8, 9, 10, 11, 12, 13, 14
_NSTATE = 15


@njit(cache=True, nogil=True)
def brentq_state():  # pragma: no cover - compiled
    """A fresh solver state (a small float64 vector, reusable for successive solves)."""
    return np.zeros(_NSTATE, np.float64)


@njit(cache=True, nogil=True)
def brentq_start(state, xa, xb, xtol, rtol, maxiter):  # pragma: no cover - compiled
    """Start a Brent search on the bracket ``[xa, xb]``.

    Parameters
    ----------
    state : ndarray
        From :func:`brentq_state`; overwritten.
    xa, xb : float
        Bracket (the objective must change sign between them).
    xtol, rtol : float
        Absolute and relative tolerances, as in :func:`scipy.optimize.brentq`
        (``rtol`` >= 4 eps, ``xtol`` > 0; not checked).
    maxiter : int
        Maximum number of iterations.

    Returns
    -------
    float
        The first point at which to evaluate the objective (``xa``).
    """
    state[_XPRE] = xa
    state[_XCUR] = xb
    state[_XBLK] = 0.0
    state[_FBLK] = 0.0
    state[_SPRE] = 0.0
    state[_SCUR] = 0.0
    state[_XTOL] = xtol
    state[_RTOL] = rtol
    state[_MAXITER] = maxiter
    state[_ITER] = 0
    state[_PHASE] = 0
    state[_CALLS] = 1
    state[_XEVAL] = xa
    return xa


@njit(cache=True, nogil=True)
def _iterate(state):  # pragma: no cover - compiled
    """The body of brentq.c's loop, up to the next function evaluation."""
    xpre = state[_XPRE]
    xcur = state[_XCUR]
    xblk = state[_XBLK]
    fpre = state[_FPRE]
    fcur = state[_FCUR]
    fblk = state[_FBLK]
    spre = state[_SPRE]
    scur = state[_SCUR]
    xtol = state[_XTOL]
    rtol = state[_RTOL]

    if fpre * fcur < 0:
        xblk = xpre
        fblk = fpre
        spre = scur = xcur - xpre
    if abs(fblk) < abs(fcur):
        xpre = xcur
        xcur = xblk
        xblk = xpre

        fpre = fcur
        fcur = fblk
        fblk = fpre

    delta = (xtol + rtol * abs(xcur)) / 2
    sbis = (xblk - xcur) / 2
    if fcur == 0 or abs(sbis) < delta:
        return xcur, CONVERGED

    if abs(spre) > delta and abs(fcur) < abs(fpre):
        if xpre == xblk:
            # interpolate
            stry = -fcur * (xcur - xpre) / (fcur - fpre)
        else:
            # extrapolate
            dpre = (fpre - fcur) / (xpre - xcur)
            dblk = (fblk - fcur) / (xblk - xcur)
            stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
        if 2 * abs(stry) < min(abs(spre), 3 * abs(sbis) - delta):
            # good short step
            spre = scur
            scur = stry
        else:
            # bisect
            spre = sbis
            scur = sbis
    else:
        # bisect
        spre = sbis
        scur = sbis

    xpre = xcur
    fpre = fcur
    if abs(scur) > delta:
        xcur += scur
    else:
        xcur += delta if sbis > 0 else -delta

    state[_XPRE] = xpre
    state[_XCUR] = xcur
    state[_XBLK] = xblk
    state[_FPRE] = fpre
    state[_FCUR] = fcur
    state[_FBLK] = fblk
    state[_SPRE] = spre
    state[_SCUR] = scur
    state[_CALLS] += 1
    state[_XEVAL] = xcur
    return xcur, CONTINUE


@njit(cache=True, nogil=True)
def brentq_step(state, fx):  # pragma: no cover - compiled
    """Give the solver the objective's value at the point it asked for.

    Parameters
    ----------
    state : ndarray
        The state passed to :func:`brentq_start`.
    fx : float
        Objective at the last returned point.

    Returns
    -------
    x : float
        Next point to evaluate (``status == CONTINUE``), the root (``CONVERGED``), the
        last iterate (``CONVERR``), where the objective was NaN (``NANERR``) or 0.0
        (``SIGNERR``).
    status : int
        See the module docstring.
    """
    if math.isnan(fx):
        return state[_XEVAL], NANERR
    phase = state[_PHASE]
    if phase == 0:
        state[_FPRE] = fx
        state[_PHASE] = 1
        state[_CALLS] += 1
        state[_XEVAL] = state[_XCUR]
        return state[_XCUR], CONTINUE
    if phase == 1:
        state[_FCUR] = fx
        fpre = state[_FPRE]
        if fpre * fx > 0:
            return 0.0, SIGNERR
        if fpre == 0:
            return state[_XPRE], CONVERGED
        if fx == 0:
            return state[_XCUR], CONVERGED
        state[_PHASE] = 2
    else:
        state[_FCUR] = fx
        state[_ITER] += 1
    if state[_ITER] >= state[_MAXITER]:
        return state[_XCUR], CONVERR
    return _iterate(state)


def brentq(f, a, b, args=(), xtol=XTOL, rtol=RTOL, maxiter=MAXITER):
    """Drive the compiled solver with a Python callable (reference and tests).

    Same root as ``scipy.optimize.brentq(f, a, b, args, xtol, rtol, maxiter)``; returns
    ``(root, status, function_calls)`` instead of raising (see the module docstring).
    """
    state = brentq_state()
    x = brentq_start(state, float(a), float(b), float(xtol), float(rtol), int(maxiter))
    calls = 0
    while True:
        fx = float(f(x, *args))
        calls += 1
        x, status = brentq_step(state, fx)
        if status != CONTINUE:
            return x, status, calls


def error_message(status: int, x: float = float("nan"), maxiter: int = MAXITER) -> str | None:
    """The message of the exception scipy's ``brentq`` raises for ``status`` (None if none)."""
    if status == SIGNERR:
        return "f(a) and f(b) must have different signs"
    if status == CONVERR:
        return f"Failed to converge after {maxiter} iterations."
    if status == NANERR:
        return f"The function value at x={x} is NaN; solver cannot continue."
    return None
