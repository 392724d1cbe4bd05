"""Grouping of segment pixels by label: the data structure every vectorised measurement uses.

All pixels of all requested sources are gathered once into flat arrays sorted by
label, so per-source sums, maxima and sorted profiles become ``np.bincount`` /
``np.cumsum`` operations over the whole catalog instead of a Python loop per source.
Memory is proportional to the number of segment pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._stamp import group_order

__all__ = ["PixelGroups", "group_pixels"]


@dataclass
class PixelGroups:
    """Pixels of each source, as flat arrays sorted by source index.

    Attributes
    ----------
    index : ndarray of int
        Source index 0..n-1 of every pixel (sorted ascending).
    y, x : ndarray of float
        Pixel coordinates.
    flux : ndarray of float
        Pixel values (background-subtracted; 0 on bad pixels).
    var : ndarray of float or None
        Pixel variances (``rms**2``), when an rms map was given.
    bad : ndarray of bool
        Bad (masked, NaN, no valid rms) pixels.
    start, count : ndarray of int
        Offset of each source's first pixel and its number of pixels.
    n : int
        Number of sources.
    """

    index: np.ndarray
    y: np.ndarray
    x: np.ndarray
    flux: np.ndarray
    var: np.ndarray | None
    bad: np.ndarray
    start: np.ndarray
    count: np.ndarray
    n: int

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Per-source sum of a per-pixel array."""
        return np.bincount(self.index, weights=values, minlength=self.n)

    def sort_within(self, key: np.ndarray) -> np.ndarray:
        """Permutation sorting pixels by source, then by ``key`` ascending."""
        return np.lexsort((key, self.index))


def group_pixels(
    image: np.ndarray,
    segmap: np.ndarray,
    labels: np.ndarray,
    *,
    rms: np.ndarray | None = None,
    bad: np.ndarray | None = None,
) -> PixelGroups:
    """Collect the pixels of ``labels`` from ``segmap`` into a :class:`PixelGroups`.

    Time O(P log P) for P segment pixels (one sort); memory O(P).
    """
    n = labels.size
    lut = np.full(int(max(segmap.max(initial=0), labels.max(initial=0))) + 1, -1, np.int64)
    lut[labels] = np.arange(n)
    flat = np.ascontiguousarray(segmap).ravel()
    if flat.dtype == np.int64:  # one compiled pass: the stable counting sort by source
        sel, idx, count = group_order(flat, lut, n)
    else:
        sel = np.flatnonzero(flat > 0)
        idx = lut[flat[sel]]
        keep = idx >= 0
        sel, idx = sel[keep], idx[keep]
        order = np.argsort(idx, kind="stable")
        sel, idx = sel[order], idx[order]
        count = np.bincount(idx, minlength=n)
    nx = segmap.shape[1]
    y, x = np.divmod(sel, nx)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    return PixelGroups(
        index=idx,
        y=y.astype(float),
        x=x.astype(float),
        flux=image.ravel()[sel],
        var=None if rms is None else rms.ravel()[sel] ** 2,
        bad=np.zeros(sel.size, bool) if bad is None else bad.ravel()[sel],
        start=start,
        count=count,
        n=n,
    )
