"""Light-distribution statistics, vectorised over sources: radii, concentration, Gini, M20.

Definitions (Lotz, Primack & Madau 2004; Conselice 2003):

* ``r20``, ``r50``, ``r80``: radii about the centroid enclosing 20, 50 and 80% of the
  source's positive flux, from the curve of growth of its segment pixels, interpolated
  linearly between pixel radii.
* ``concentration`` C = 5 log10(r80 / r20).
* ``gini`` G = sum_i (2i - n - 1) |X_i| / (|mean X| n (n - 1)) over the segment pixels
  sorted by |X| (i = 1..n).
* ``m20`` = log10(sum_{brightest 20%} f_i r_i^2 / sum_all f_i r_i^2), r about the centroid
  (the point that minimises the total second moment), summing the brightest pixels while
  their cumulative flux stays within 20% of the total.
"""

from __future__ import annotations

import numpy as np

from .pixels import PixelGroups

__all__ = ["gini", "growth_radii", "m20"]


def _group_base(cum: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Cumulative sum just before each group's first element (0 for the first group)."""
    base = np.zeros(start.size)
    nz = (start > 0) & (start <= cum.size)
    base[nz] = cum[start[nz] - 1]
    return base


def _curve_radii(idx, r, f, n, start, count, fractions):
    """Radii where each group's curve of growth reaches ``fractions`` of its total.

    Pixels are sorted by (group, r); each pixel's flux is taken to be spread over the
    radii it covers, so the curve passes through ``cum - f/2`` at the pixel's radius and
    is interpolated linearly between pixels.
    """
    order = np.lexsort((r, idx))
    fs = f[order]
    rs = r[order]
    cum = np.cumsum(fs)
    base = _group_base(cum, start)
    total = np.bincount(idx, weights=f, minlength=n)
    mid = cum - 0.5 * fs
    end = start + count
    out = []
    for frac in fractions:
        rad = np.full(n, np.nan)
        valid = (count > 0) & (total > 0)
        if valid.any():
            target = base[valid] + frac * total[valid]
            pos = np.searchsorted(mid, target, side="left")
            pos = np.clip(pos, start[valid], end[valid] - 1)
            has_prev = pos > start[valid]
            prev = np.maximum(pos - 1, 0)
            r_hi, c_hi = rs[pos], mid[pos]
            r_lo = np.where(has_prev, rs[prev], 0.0)
            c_lo = np.where(has_prev, mid[prev], base[valid])
            with np.errstate(invalid="ignore", divide="ignore"):
                t = np.where(c_hi > c_lo, (target - c_lo) / (c_hi - c_lo), 1.0)
            rad[valid] = r_lo + np.clip(t, 0, 1) * (r_hi - r_lo)
        out.append(rad)
    return out


def growth_radii(
    groups: PixelGroups,
    xc: np.ndarray,
    yc: np.ndarray,
    fractions=(0.2, 0.5, 0.8),
    *,
    small_radius: float = 8.0,
    oversample: int = 5,
) -> list[np.ndarray]:
    """Radii enclosing ``fractions`` of each source's positive segment flux.

    Sources whose largest radius is below ``small_radius`` pixels are measured again
    with every pixel split into ``oversample**2`` sub-pixels, which removes the bias of
    pixel-centre radii for compact sources (better than 1% for a Gaussian of sigma 2 px).

    Time O(P log P) for P pixels (one sort), memory O(P).
    """
    f = np.clip(groups.flux, 0, None)
    r = np.hypot(groups.x - xc[groups.index], groups.y - yc[groups.index])
    r = np.where(np.isfinite(r), r, 0.0)
    radii = _curve_radii(groups.index, r, f, groups.n, groups.start, groups.count, fractions)
    small = np.flatnonzero((radii[-1] < small_radius) & (groups.count > 0))
    if small.size and oversample > 1:
        sel = np.isin(groups.index, small)
        k = int(oversample)
        off = (np.arange(k) + 0.5) / k - 0.5
        oy, ox = (a.ravel() for a in np.meshgrid(off, off, indexing="ij"))
        lut = np.full(groups.n, -1)
        lut[small] = np.arange(small.size)
        sidx = np.repeat(lut[groups.index[sel]], k * k)
        sx = (groups.x[sel][:, None] + ox[None, :]).ravel()
        sy = (groups.y[sel][:, None] + oy[None, :]).ravel()
        sf = np.repeat(f[sel] / (k * k), k * k)
        sr = np.hypot(sx - xc[small][sidx], sy - yc[small][sidx])
        count = np.bincount(sidx, minlength=small.size)
        start = np.concatenate([[0], np.cumsum(count)[:-1]])
        order = np.argsort(sidx, kind="stable")
        fine = _curve_radii(sidx[order], sr[order], sf[order], small.size, start, count, fractions)
        for full, part in zip(radii, fine, strict=True):
            full[small] = part
    return radii


def gini(groups: PixelGroups) -> np.ndarray:
    """Gini coefficient of the absolute pixel values of each source (NaN for < 2 pixels)."""
    a = np.abs(groups.flux)
    order = groups.sort_within(a)
    a = a[order]
    idx = groups.index[order]
    n = groups.count.astype(float)
    rank = np.arange(a.size) - groups.start[idx] + 1.0
    num = np.bincount(idx, weights=(2.0 * rank - n[idx] - 1.0) * a, minlength=groups.n)
    total = np.bincount(idx, weights=a, minlength=groups.n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        g = num / (mean * n * (n - 1.0))
    g[(n < 2) | ~(total > 0)] = np.nan
    return g


def m20(groups: PixelGroups, xc: np.ndarray, yc: np.ndarray) -> np.ndarray:
    """Normalised second moment of the brightest 20% of the flux (NaN if undefined)."""
    f = groups.flux
    r2 = (groups.x - xc[groups.index]) ** 2 + (groups.y - yc[groups.index]) ** 2
    mi = f * r2
    mtot = groups.sum(mi)
    order = groups.sort_within(-f)
    fs = f[order]
    idx = groups.index[order]
    cum = np.cumsum(fs)
    base = _group_base(cum, groups.start)
    within = cum - base[idx]
    total = groups.sum(f)
    rank = np.arange(fs.size) - groups.start[idx]
    take = (within <= 0.2 * total[idx]) | (rank == 0)
    msum = np.bincount(idx[take], weights=mi[order][take], minlength=groups.n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.log10(msum / mtot)
    out[~(total > 0) | ~(mtot > 0) | ~(msum > 0)] = np.nan
    return out
