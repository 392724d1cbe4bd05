"""numpy's pairwise summation, compiled (numba), for sums that must equal ``np.sum`` bit for bit.

``np.sum`` of a contiguous float64 array adds blocks of up to 128 elements with eight
accumulators, and above that the sums of two halves (the first a multiple of 8 long),
recursively; the reduction adds the result to an initial 0.0. Kernels that replace a
``float(np.sum(image[box] * weights))`` of the Python code use :func:`np_sum` /
:func:`np_sums` on the same elements in the same order, so their results are the same floats.
The recursion is walked on an explicit stack (numba's disk cache does not reload recursive
functions safely).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["np_sum", "np_sums"]

_BLOCK = 128


@njit(cache=True, nogil=True)
def _leaf(a, lo, n):  # pragma: no cover - compiled
    """numpy's ``pairwise_sum_DOUBLE`` for ``n <= 128``: 8 accumulators, then the rest."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0 = a[lo]
    r1 = a[lo + 1]
    r2 = a[lo + 2]
    r3 = a[lo + 3]
    r4 = a[lo + 4]
    r5 = a[lo + 5]
    r6 = a[lo + 6]
    r7 = a[lo + 7]
    m = n - n % 8
    i = 8
    while i < m:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True, nogil=True)
def np_sums(a, nrows, n):  # pragma: no cover - compiled
    """``np.sum(a[r, :n])`` for the rows ``r < nrows`` of the C-contiguous 2-d ``a``, bit for bit.

    numpy sums a contiguous float64 array pairwise (``pairwise_sum_DOUBLE``): blocks of up to
    128 elements with 8 accumulators; above that the sums of two halves (the first a
    multiple of 8 long), recursively; the reduction adds the result to an initial 0.0. The
    recursion, the same for all rows, is walked once on an explicit stack (numba's disk
    cache does not reload recursive functions safely).
    """
    out = np.empty(nrows)
    if n <= _BLOCK:
        for r in range(nrows):
            out[r] = 0.0 + _leaf(a[r], 0, n)
        return out
    frame = np.empty((64, 4), np.int64)  # lo, n, size of the left half, stage
    left = np.empty((64, nrows))
    ret = np.empty(nrows)
    depth = 0
    frame[0, 0] = 0
    frame[0, 1] = n
    while True:
        m = frame[depth, 1]
        if m > _BLOCK:  # descend into the left half
            n2 = m // 2
            n2 -= n2 % 8
            frame[depth, 2] = n2
            frame[depth, 3] = 1
            frame[depth + 1, 0] = frame[depth, 0]
            frame[depth + 1, 1] = n2
            depth += 1
            continue
        for r in range(nrows):
            ret[r] = _leaf(a[r], frame[depth, 0], m)
        depth -= 1
        while depth >= 0 and frame[depth, 3] == 2:  # right half done: left + right
            for r in range(nrows):
                ret[r] = left[depth, r] + ret[r]
            depth -= 1
        if depth < 0:
            for r in range(nrows):
                out[r] = 0.0 + ret[r]
            return out
        for r in range(nrows):  # left half done: now the right half
            left[depth, r] = ret[r]
        frame[depth, 3] = 2
        frame[depth + 1, 0] = frame[depth, 0] + frame[depth, 2]
        frame[depth + 1, 1] = frame[depth, 1] - frame[depth, 2]
        depth += 1


@njit(cache=True, nogil=True)
def np_sum(a, n):  # pragma: no cover - compiled
    """``np.sum`` of the contiguous 1-d array ``a[:n]``, bit for bit."""
    return np_sums(a.reshape((1, a.size)), 1, n)[0]
