"""Scoring detections against a truth catalog: matching, completeness, purity, over-splitting.

Used by ``morphoscope demo`` to report its accuracy and by the benchmarks to compare
detectors on the same inputs.
"""

from __future__ import annotations

import numpy as np
from astropy.table import Table
from scipy import ndimage
from scipy.spatial import cKDTree

__all__ = ["detection_metrics", "match_sources", "segment_positions"]


def match_sources(
    det_x, det_y, truth_x, truth_y, radius, *, alt_x=None, alt_y=None
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of detections to truth positions, greedy by increasing distance.

    Parameters
    ----------
    det_x, det_y : array_like
        Detected positions (pixels).
    truth_x, truth_y : array_like
        True positions.
    radius : float or array_like
        Largest separation of a match: a scalar, or one value per truth source.
    alt_x, alt_y : array_like, optional
        A second position per detection (e.g. the isophotal centroid besides the windowed
        one); the separation of a pair is then the smaller of the two.

    Returns
    -------
    det_idx, truth_idx : ndarray of int
        Indices of the matched pairs.

    Examples
    --------
    >>> d, t = match_sources([0, 10], [0, 0], [10.5, 0.4, 50], [0, 0, 0], 2.0)
    >>> d.tolist(), t.tolist()
    ([0, 1], [1, 0])
    """
    dx = np.asarray(det_x, float)
    dy = np.asarray(det_y, float)
    tx = np.asarray(truth_x, float)
    ty = np.asarray(truth_y, float)
    rad = np.broadcast_to(np.asarray(radius, float), tx.shape)
    good_d = np.isfinite(dx) & np.isfinite(dy)
    if tx.size == 0 or not good_d.any():
        return np.empty(0, int), np.empty(0, int)
    sets = [(dx, dy)]
    if alt_x is not None and alt_y is not None:
        sets.append((np.asarray(alt_x, float), np.asarray(alt_y, float)))
    best: dict[tuple[int, int], float] = {}
    for px, py in sets:
        ok = np.isfinite(px) & np.isfinite(py)
        if not ok.any():
            continue
        tree = cKDTree(np.column_stack([px[ok], py[ok]]))
        dmap = np.flatnonzero(ok)
        for j, found in enumerate(tree.query_ball_point(np.column_stack([tx, ty]), rad)):
            for i in found:
                key = (int(dmap[i]), j)
                sep = float(np.hypot(px[dmap[i]] - tx[j], py[dmap[i]] - ty[j]))
                best[key] = min(sep, best.get(key, np.inf))
    if not best:
        return np.empty(0, int), np.empty(0, int)
    pairs_d = [k[0] for k in best]
    pairs_t = [k[1] for k in best]
    dist = list(best.values())
    order = np.argsort(dist, kind="stable")
    used_d, used_t = set(), set()
    out_d, out_t = [], []
    for k in order:
        i, j = pairs_d[k], pairs_t[k]
        if i in used_d or j in used_t:
            continue
        used_d.add(i)
        used_t.add(j)
        out_d.append(i)
        out_t.append(j)
    return np.asarray(out_d, int), np.asarray(out_t, int)


def segment_positions(
    segmap: np.ndarray, image: np.ndarray | None = None, *, window: float = 2.0, iterations: int = 3
):
    """Labels and positions of every segment.

    With an image: a Gaussian-windowed centroid (as SExtractor's ``XWIN``), started at the
    segment's brightest pixel of the lightly smoothed image and iterated ``iterations`` times
    with a window of ``window`` pixels (sigma) over the segment's positive pixels. Unlike a
    centroid over the whole segment, it is not pulled by the noise of a large footprint or by
    a neighbour's light inside the segment. Without an image, the geometric centre.

    Returns
    -------
    labels, x, y : ndarray
    """
    labels = np.unique(segmap[segmap > 0])
    if labels.size == 0:
        return labels, np.empty(0), np.empty(0)
    geo = np.asarray(ndimage.center_of_mass(np.ones(segmap.shape), segmap, labels)).reshape(-1, 2)
    if image is None:
        return labels, geo[:, 1], geo[:, 0]
    img = np.nan_to_num(np.asarray(image, float))
    peaks = ndimage.maximum_position(ndimage.gaussian_filter(img, 1.0), segmap, labels)
    cy, cx = (np.asarray(peaks, float).reshape(-1, 2) + 0.0).T
    lut = np.full(int(segmap.max()) + 1, -1)
    lut[labels] = np.arange(labels.size)
    flat = np.flatnonzero(segmap > 0)
    idx = lut[segmap.ravel()[flat]]
    py, px = np.divmod(flat, segmap.shape[1])
    f = np.clip(img.ravel()[flat], 0, None)
    for _ in range(iterations):
        w = f * np.exp(-((px - cx[idx]) ** 2 + (py - cy[idx]) ** 2) / (2 * window**2))
        wsum = np.bincount(idx, weights=w, minlength=labels.size)
        ok = wsum > 0
        cx = np.where(
            ok, np.bincount(idx, weights=w * px, minlength=labels.size) / np.where(ok, wsum, 1), cx
        )
        cy = np.where(
            ok, np.bincount(idx, weights=w * py, minlength=labels.size) / np.where(ok, wsum, 1), cy
        )
    return labels, cx, cy


def detection_metrics(
    segmap: np.ndarray,
    truth: Table,
    *,
    image: np.ndarray | None = None,
    truth_segmap: np.ndarray | None = None,
    snr_column: str = "snr",
    snr_min: float = 20.0,
    match_radius: float = 2.0,
    r_e_factor: float = 0.5,
    centroid: str = "window",
) -> dict[str, float]:
    """Completeness, purity and over-splitting of a segmentation map against truth.

    A detection matches a truth source within ``max(match_radius, r_e_factor * r_e)``
    pixels (one-to-one, nearest first), against the WHOLE truth catalog, so that faint real
    sources found are not counted as false. Its position is, by ``centroid``: ``"window"``,
    the Gaussian-windowed centroid (:func:`segment_positions`; steady for faint sources in
    big footprints); ``"segment"``, the flux-weighted centroid of the segment's positive
    pixels; ``"either"``, whichever of the two is closer (a clumpy galaxy's windowed
    centroid sits on its brightest knot, its segment centroid near its centre of light).

    * ``completeness``: matched / all truth sources with ``snr_column > snr_min``.
    * ``spurious_fraction``: detections matched to no truth source, over all detections.
      A detection lying on an already matched source's truth footprint (a fragment of a
      shredded galaxy) counts as spurious too; ``n_fragments`` counts those apart.
    * ``purity`` = 1 - spurious_fraction; ``f1`` = harmonic mean of completeness and purity.
    * ``over_split_rate``: truth sources (S/N > snr_min) whose truth footprint holds the
      centroids of more than one detection (needs ``truth_segmap``, labels = truth ``id``).

    Returns
    -------
    dict
        completeness, purity, f1, spurious_fraction, n_detected, n_truth_bright,
        n_matched_bright, n_spurious, n_fragments, over_split_rate.
    """
    if centroid not in ("window", "segment", "either"):
        raise ValueError(f"centroid must be 'window', 'segment' or 'either', got {centroid!r}")
    labels, x, y = segment_positions(segmap, image)
    ax = ay = None
    if centroid != "window" and labels.size:
        w = np.ones(segmap.shape) if image is None else np.clip(np.nan_to_num(image), 0, None)
        com = np.asarray(ndimage.center_of_mass(w, segmap, labels), float).reshape(-1, 2)
        com[~np.isfinite(com).all(axis=1)] = np.column_stack([y, x])[~np.isfinite(com).all(axis=1)]
        if centroid == "segment":
            x, y = com[:, 1], com[:, 0]
        else:
            ax, ay = com[:, 1], com[:, 0]
    tx = np.asarray(truth["x"], float)
    ty = np.asarray(truth["y"], float)
    r_e = np.asarray(truth["r_e"], float) if "r_e" in truth.colnames else np.zeros(tx.size)
    radius = np.maximum(match_radius, r_e_factor * np.nan_to_num(r_e))
    d_idx, t_idx = match_sources(x, y, tx, ty, radius, alt_x=ax, alt_y=ay)
    snr = np.asarray(truth[snr_column], float)
    bright = snr > snr_min
    matched_t = np.zeros(tx.size, bool)
    matched_t[t_idx] = True
    n_bright = int(bright.sum())
    n_matched_bright = int((matched_t & bright).sum())
    completeness = n_matched_bright / n_bright if n_bright else float("nan")
    n_det = labels.size
    unmatched = np.ones(n_det, bool)
    unmatched[d_idx] = False
    n_fragments = 0
    over_split = float("nan")
    if truth_segmap is not None and n_det:
        xi = np.clip(np.round(x).astype(int), 0, segmap.shape[1] - 1)
        yi = np.clip(np.round(y).astype(int), 0, segmap.shape[0] - 1)
        owner = truth_segmap[yi, xi]
        n_fragments = int(np.count_nonzero(unmatched & (owner > 0)))
        ids = np.asarray(truth["id"]) if "id" in truth.colnames else np.arange(1, tx.size + 1)
        counts = np.bincount(owner[owner > 0], minlength=int(ids.max(initial=0)) + 1)
        bright_ids = ids[bright]
        if bright_ids.size:
            over_split = float(np.mean(counts[bright_ids] > 1))
    n_spurious = int(unmatched.sum())
    spurious = n_spurious / n_det if n_det else 0.0
    purity = 1.0 - spurious
    f1 = (
        2 * completeness * purity / (completeness + purity)
        if n_bright and (completeness + purity) > 0
        else float("nan")
    )
    return {
        "completeness": completeness,
        "purity": purity,
        "f1": f1,
        "spurious_fraction": spurious,
        "n_detected": n_det,
        "n_truth_bright": n_bright,
        "n_matched_bright": n_matched_bright,
        "n_spurious": n_spurious,
        "n_fragments": n_fragments,
        "over_split_rate": over_split,
    }
