"""Pixel clusters of one source in one band, and the quantities measured on them."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial.distance import directed_hausdorff

from .dbscan import grid_dbscan

__all__ = [
    "cluster_stats",
    "compare_clusters",
    "main_cluster",
    "pixel_clusters",
]


def pixel_clusters(
    image: np.ndarray,
    threshold: np.ndarray | float,
    good: np.ndarray,
    *,
    eps: float,
    min_samples: int,
    flux_scale: float,
    flux_norm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Threshold a cutout and cluster its pixels ``[x, y, flux_scale * f / flux_norm]``.

    Returns
    -------
    selected : ndarray of bool
        Pixels above ``threshold`` (and good).
    labels : ndarray of int
        Cutout-shaped labels: cluster number, ``-1`` for noise, ``-2`` for pixels not
        selected.
    """
    selected = good & (image > threshold)
    labels = np.full(image.shape, -2, dtype=np.int64)
    if not selected.any():
        return selected, labels
    if flux_scale > 0 and np.isfinite(flux_norm) and flux_norm > 0:
        values = image * (flux_scale / flux_norm)
        lab = grid_dbscan(selected, eps, min_samples, values=values)
    else:
        lab = grid_dbscan(selected, eps, min_samples)
    labels[selected] = lab
    return selected, labels


def main_cluster(labels: np.ndarray, xc: float, yc: float, center_radius: float) -> np.ndarray:
    """The cluster containing the centre pixel, else the one with the pixel nearest it.

    Only clusters with a pixel within ``center_radius`` pixels of ``(xc, yc)`` qualify;
    returns an all-False mask when there is none.
    """
    ny, nx = labels.shape
    ic, jc = int(np.rint(yc)), int(np.rint(xc))
    if 0 <= ic < ny and 0 <= jc < nx and labels[ic, jc] >= 0:
        return labels == labels[ic, jc]
    ys, xs = np.nonzero(labels >= 0)
    if ys.size == 0:
        return np.zeros(labels.shape, bool)
    d2 = (xs - xc) ** 2 + (ys - yc) ** 2
    i = int(np.argmin(d2))
    if d2[i] > center_radius**2:
        return np.zeros(labels.shape, bool)
    return labels == labels[ys[i], xs[i]]


def _axis_ratio(ys: np.ndarray, xs: np.ndarray) -> float:
    """major/minor (>= 1) from the unweighted second moments of pixel positions.

    Each pixel is a unit square, whose own variance 1/12 is added on both axes, so a
    single pixel or a line of pixels still has a finite ratio.
    """
    if ys.size == 0:
        return float("nan")
    x = xs - xs.mean()
    y = ys - ys.mean()
    cxx = np.mean(x * x) + 1.0 / 12.0
    cyy = np.mean(y * y) + 1.0 / 12.0
    cxy = np.mean(x * y)
    half_tr = 0.5 * (cxx + cyy)
    root = np.sqrt(max(0.25 * (cxx - cyy) ** 2 + cxy * cxy, 0.0))
    lam1, lam2 = half_tr + root, half_tr - root
    return float(np.sqrt(lam1 / lam2)) if lam2 > 0 else float("inf")


def _gini(values: np.ndarray) -> float:
    """Gini coefficient of |values| (Lotz et al. 2004)."""
    v = np.sort(np.abs(values))
    n = v.size
    if n < 2 or not v.sum() > 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(np.sum((2 * i - n - 1) * v) / (v.mean() * n * (n - 1)))


def _asymmetry(image: np.ndarray, member: np.ndarray, xc: float, yc: float) -> float:
    """sum|I - I_180| / sum|I| of the cluster's light, rotated about (xc, yc)."""
    light = np.where(member, image, 0.0)
    yy, xx = np.indices(image.shape, dtype=float)
    coords = np.array([2 * yc - yy, 2 * xc - xx])
    rot = ndimage.map_coordinates(light, coords, order=1, mode="constant", cval=0.0)
    region = member | (rot != 0)
    denom = np.abs(light[region]).sum()
    if not denom > 0:
        return float("nan")
    return float(np.abs(light[region] - rot[region]).sum() / denom)


def cluster_stats(
    member: np.ndarray, image: np.ndarray, xc: float, yc: float, *, shape_stats: bool = True
) -> dict[str, float]:
    """n_pix, flux, R (max distance from the centre), q (major/minor), Gini, asymmetry.

    All NaN (``n_pix`` 0) for an empty cluster. Gini and asymmetry only when
    ``shape_stats``.
    """
    ys, xs = np.nonzero(member)
    nan = float("nan")
    if ys.size == 0:
        return {"n_pix": 0, "flux": nan, "R": nan, "q": nan, "gini": nan, "asymmetry": nan}
    out = {
        "n_pix": int(ys.size),
        "flux": float(image[ys, xs].sum()),
        "R": float(np.sqrt(np.max((xs - xc) ** 2 + (ys - yc) ** 2))),
        "q": _axis_ratio(ys, xs),
        "gini": nan,
        "asymmetry": nan,
    }
    if shape_stats:
        out["gini"] = _gini(image[ys, xs])
        out["asymmetry"] = _asymmetry(image, member, xc, yc)
    return out


def compare_clusters(medium: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Excess area (medium pixels outside the reference cluster) and symmetric Hausdorff distance.

    ``d_H = max(h(M, R), h(R, M))``, the value of
    :func:`scipy.spatial.distance.directed_hausdorff` on pixel coordinates (computed
    with a distance transform, see :func:`hausdorff_pixels` for the direct version);
    NaN when either cluster is empty (``S_excess`` is then the medium cluster's size, or
    NaN if that is empty too).
    """
    n_m = int(medium.sum())
    if n_m == 0:
        return float("nan"), float("nan")
    s_excess = float(np.count_nonzero(medium & ~reference))
    if not reference.any():
        return s_excess, float("nan")
    # On a pixel grid the directed Hausdorff distance h(A, B) is the largest Euclidean
    # distance transform of "not B" over A's pixels: exact, and O(area) instead of
    # O(|A| |B|) in the worst case of directed_hausdorff.
    d_mr = ndimage.distance_transform_edt(~reference)[medium].max()
    d_rm = ndimage.distance_transform_edt(~medium)[reference].max()
    return s_excess, float(max(d_mr, d_rm))


def hausdorff_pixels(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Hausdorff distance of two pixel sets with scipy's ``directed_hausdorff``."""
    pa = np.argwhere(a).astype(float)
    pb = np.argwhere(b).astype(float)
    return float(max(directed_hausdorff(pa, pb, seed=0)[0], directed_hausdorff(pb, pa, seed=0)[0]))
