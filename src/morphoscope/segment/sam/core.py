"""Segment Anything as a segmentation method: prompts, tiles, masks -> integer segmentation map."""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage

from ...exceptions import ParameterError
from ...io.validate import as_rms
from .checkpoint import load_sam, normalise
from .stretch import STRETCHES, stretch_to_rgb
from .tiles import Tile, assign_points, plan_tiles

__all__ = ["PROMPTS", "detection_peaks", "masks_to_segmap", "segment_sam"]

PROMPTS = ("peaks", "grid")

_EIGHT = np.ones((3, 3), bool)


def detection_peaks(
    image: np.ndarray,
    rms,
    *,
    bad: np.ndarray | None = None,
    psf=None,
    **detect_options,
) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of the sources that the default method detects, and its segmentation map.

    Runs :func:`~morphoscope.segment.segment_image` (``method="saddle"``, ``background=None``)
    on the background-subtracted ``image`` and returns, per label, the (x, y) of the brightest
    pixel of the image smoothed by a Gaussian of sigma 1 pixel, inside the segment.

    Returns
    -------
    xy : ndarray, shape (N, 2)
        0-based (x, y) of label ``i + 1`` in row ``i``.
    segmap : ndarray of int32

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[:64, :64]
    >>> img = np.random.default_rng(0).normal(0, 1, (64, 64))
    >>> img += 80 * np.exp(-((x - 40) ** 2 + (y - 20) ** 2) / 8)
    >>> xy, seg = detection_peaks(img, 1.0)
    >>> xy.tolist()
    [[40.0, 20.0]]
    """
    from ..core import segment_image

    opts = {k: v for k, v in detect_options.items() if v is not None}
    res = segment_image(image, rms=rms, psf=psf, mask=bad, method="saddle", background=None, **opts)
    seg = res.segmap
    n = int(seg.max(initial=0))
    if n == 0:
        return np.zeros((0, 2)), seg
    smooth = ndimage.gaussian_filter(res.image, 1.0)
    pos = ndimage.maximum_position(smooth, seg, np.arange(1, n + 1))
    yx = np.asarray(pos, float).reshape(n, 2)
    return yx[:, ::-1].copy(), seg


def masks_to_segmap(
    shape: tuple[int, int], masks: list[tuple[tuple[slice, slice], np.ndarray]], scores
) -> tuple[np.ndarray, np.ndarray]:
    """Paint masks into an integer map; a pixel claimed by several goes to the highest score.

    Parameters
    ----------
    shape : (ny, nx)
    masks : list of (slices, bool array)
        Each mask as the bounding-box slices of the image and the boolean cut-out.
    scores : array_like
        One score per mask (SAM's predicted IoU).

    Returns
    -------
    segmap : ndarray of int32
        Labels 1..N, consecutive, in the order of the masks (masks left with no pixel get
        none).
    kept : ndarray of int
        Index into ``masks`` of label ``i + 1``.

    Notes
    -----
    O(sum of the mask areas) time after an O(M log M) sort; one int32 map of memory.

    Examples
    --------
    >>> import numpy as np
    >>> a = (np.s_[0:2, 0:3], np.ones((2, 3), bool))
    >>> b = (np.s_[1:3, 1:3], np.ones((2, 2), bool))
    >>> seg, kept = masks_to_segmap((3, 3), [a, b], [0.9, 0.5])
    >>> seg.tolist(), kept.tolist()
    ([[1, 1, 1], [1, 1, 1], [0, 2, 2]], [0, 1])
    """
    scores = np.asarray(scores, float)
    work = np.zeros(shape, np.int64)
    for i in np.argsort(scores, kind="stable"):
        sl, m = masks[i]
        work[sl][m] = i + 1
    present = np.zeros(len(masks) + 1, bool)
    present[np.unique(work)] = True
    present[0] = False
    remap = np.zeros(len(masks) + 1, np.int32)
    remap[present] = np.arange(1, int(present.sum()) + 1, dtype=np.int32)
    return remap[work], np.flatnonzero(present[1:])


def _upsample(low, backend, valid: tuple[int, int], out_shape: tuple[int, int]):
    """Low-resolution logits (P, r, r) -> logits on the tile's pixel grid (P, h, w)."""
    import torch.nn.functional as F

    size = backend.image_size
    x = F.interpolate(low[:, None], size=(size, size), mode="bilinear", align_corners=False)
    x = x[..., : valid[0], : valid[1]]
    if tuple(valid) != tuple(out_shape):
        x = F.interpolate(x, size=out_shape, mode="bilinear", align_corners=False)
    return x[:, 0].numpy()


def _crop(mask: np.ndarray, tile: Tile):
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    sl = (slice(tile.y0 + r0, tile.y0 + r1), slice(tile.x0 + c0, tile.x0 + c1))
    return sl, mask[r0:r1, c0:c1].copy()


def _check_options(stretch, prompts, scale, overlap, points_per_side, batch_size) -> None:
    if stretch not in STRETCHES:
        raise ParameterError("stretch", stretch, f"one of {', '.join(map(repr, STRETCHES))}")
    if isinstance(prompts, str) and prompts not in PROMPTS:
        raise ParameterError("prompts", prompts, "'peaks', 'grid' or an (N, 2) array of (x, y)")
    if not (isinstance(scale, int | float) and np.isfinite(scale) and scale > 0):
        raise ParameterError("scale", scale, "a positive number")
    if not (isinstance(overlap, int | np.integer) and overlap >= 0):
        raise ParameterError("overlap", overlap, "a non-negative integer")
    for name, value in (("points_per_side", points_per_side), ("batch_size", batch_size)):
        if not (isinstance(value, int | np.integer) and value > 0):
            raise ParameterError(name, value, "a positive integer")


def segment_sam(
    image: np.ndarray,
    rms,
    *,
    bad: np.ndarray | None = None,
    psf=None,
    checkpoint=None,
    prompts="peaks",
    bands=None,
    stretch: str = "asinh",
    scale: float = 2.0,
    overlap: int = 128,
    negative_points: int = 4,
    points_per_side: int = 32,
    pred_iou_thresh: float = 0.88,
    stability_score_thresh: float = 0.95,
    dedupe_iou: float = 0.7,
    max_area_fraction: float = 0.25,
    min_snr: float = 8.0,
    npixels: int = 5,
    mask_threshold: float = 0.0,
    fallback: bool = True,
    detect_options: dict | None = None,
    device: str = "cpu",
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Segment a background-subtracted image with Segment Anything (SAM).

    ``segment(image, method="sam", checkpoint=PATH, sam_options={...})`` calls this function;
    the keywords after ``checkpoint`` are the ``sam_options``.

    1. **Picture**: ``image`` (or the ``bands``) stretched to 8-bit RGB
       (:func:`~morphoscope.segment.sam.stretch_to_rgb`, ``stretch``).
    2. **Tiles**: squares of ``image_size / scale`` image pixels (512 for the published weights
       at the default ``scale`` 2), overlapping by ``overlap`` pixels, each resized by ``scale``
       to SAM's input size (padded at the right and bottom when smaller), normalised as SAM's
       own processor does.
    3. **Prompts**: ``"peaks"`` (default): one positive point at the peak of every source the
       default method detects (:func:`detection_peaks`, with ``detect_options``), plus the
       peaks of up to ``negative_points`` nearest other sources in the same tile as negative
       points, so that SAM separates neighbours; each source is prompted in the tile where it
       lies farthest from a cut, and of SAM's three masks the one with the highest predicted
       IoU is kept, reduced to its connected part that contains the peak. A source whose mask
       is empty or misses its peak keeps the default method's segment when ``fallback``.
       An ``(N, 2)`` array prompts at those (x, y) instead.
       ``"grid"``: SAM's automatic mode, ``points_per_side`` x ``points_per_side`` points per
       tile; masks are kept when their predicted IoU >= ``pred_iou_thresh``, stability score
       >= ``stability_score_thresh``, area <= ``max_area_fraction`` of the tile and >=
       ``npixels``, isophotal S/N >= ``min_snr``, when they do not touch a cut between tiles,
       and when no better mask overlaps them with IoU > ``dedupe_iou``.
    4. **Map**: masks painted into an int32 map, a pixel shared by several masks going to the
       one with the highest predicted IoU; excluded pixels stay 0.

    Parameters
    ----------
    image : ndarray
        Background-subtracted image, excluded pixels set to 0.
    rms : ndarray or float
        1-sigma noise (+inf = no data).
    bad : ndarray of bool, optional
        Excluded pixels.
    psf : ndarray, optional
        PSF, for the detection of the peaks.
    checkpoint : str, path or model, optional
        See :func:`~morphoscope.segment.sam.load_sam`; default from
        ``morphoscope.segment.sam.config["checkpoint"]`` or ``$MORPHOSCOPE_SAM_CHECKPOINT``.
    prompts : {"peaks", "grid"} or array of shape (N, 2)
    bands : sequence of one or three 2-D arrays, optional
        Images for the RGB picture (reddest first) instead of ``image``; same shape.
    stretch : {"asinh", "zscale"}
    scale : float
        Magnification of the image before SAM (SAM's masks are computed on a grid 4 times
        coarser than its input, so small sources need ``scale`` >= 2).
    overlap : int
        Overlap of the tiles in image pixels.
    device : str
        torch device.
    batch_size : int
        Prompts decoded at once.

    Returns
    -------
    segmap : ndarray of int32
    parent : ndarray of int32
        Per label, the connected group of touching segments it belongs to (index 0 unused).
    params : dict
        Parameters and counts (tiles, prompts, fallbacks, seconds).

    Notes
    -----
    Time: SAM's image encoder once per tile (the number of tiles grows as ``scale**2``) and its
    mask decoder once per prompt; on CPU both take minutes per tile for ViT-B (see
    ``docs/sam.md``), on a GPU well under a second. Memory: the model (ViT-B 375 MB), the
    decoder's ``batch_size`` masks at SAM's input size, and a few image-sized arrays.

    Examples
    --------
    >>> from morphoscope import segment
    >>> seg = segment(img, rms=rms, method="sam", checkpoint="sam-vit-base")  # doctest: +SKIP
    """
    import torch

    t_start = time.perf_counter()
    _check_options(stretch, prompts, scale, overlap, points_per_side, batch_size)
    backend = load_sam(checkpoint, device=device)
    data = np.asarray(image, float)
    shape = data.shape
    rms_map, rbad = as_rms(rms, shape, "rms")
    bad = rbad | (np.zeros(shape, bool) if bad is None else np.asarray(bad, bool))
    rgb = stretch_to_rgb(data if bands is None else bands, stretch=stretch, bad=bad)
    if rgb.shape[:2] != shape:
        raise ParameterError("bands", f"shape {rgb.shape[:2]}", f"images of shape {shape}")

    size = backend.image_size
    footprint = max(int(size / scale), 1)
    overlap = int(min(overlap, footprint // 2))
    tiles = plan_tiles(shape, footprint, overlap)

    fallback_seg = None
    if isinstance(prompts, str) and prompts == "peaks":
        xy, fallback_seg = detection_peaks(
            data, rms_map, bad=bad, psf=psf, **(detect_options or {})
        )
        mode = "peaks"
    elif isinstance(prompts, str):
        xy = np.zeros((0, 2))
        mode = "grid"
    else:
        xy = np.asarray(prompts, float).reshape(-1, 2)
        outside = ~((xy >= -0.5) & (xy < np.array(shape[::-1]) - 0.5)).all(axis=1)
        if outside.any():
            raise ParameterError(
                "prompts", f"{int(outside.sum())} point(s) outside", "(x, y) inside the image"
            )
        mode = "points"

    masks: list = []
    scores: list[float] = []
    n_fallback = 0
    if mode != "grid" and len(xy):
        which = assign_points(tiles, shape, xy[:, 0], xy[:, 1])
        result: dict[int, tuple] = {}
        for ti, tile in enumerate(tiles):
            idx = np.flatnonzero(which == ti)
            if idx.size == 0:
                continue
            pix, valid = normalise(rgb[tile.slices], backend, scale)
            emb = backend.embed(pix)
            zoom = np.array(valid[::-1]) / np.array(tile.shape[::-1])
            local = (xy - [tile.x0, tile.y0] + 0.5) * zoom - 0.5
            inside = (
                (xy[:, 0] >= tile.x0)
                & (xy[:, 0] < tile.x1)
                & (xy[:, 1] >= tile.y0)
                & (xy[:, 1] < tile.y1)
            )
            k = int(negative_points)
            for start in range(0, idx.size, batch_size):
                chunk = idx[start : start + batch_size]
                pts = np.zeros((chunk.size, 1 + k, 2))
                lab = np.full((chunk.size, 1 + k), backend.pad_label, np.int64)
                pts[:, 0] = local[chunk]
                lab[:, 0] = 1
                if k:
                    others = np.flatnonzero(inside)
                    for j, i in enumerate(chunk):
                        cand = others[others != i]
                        if cand.size:
                            d = np.hypot(*(xy[cand] - xy[i]).T)
                            near = cand[np.argsort(d)[:k]]
                            pts[j, 1 : 1 + near.size] = local[near]
                            lab[j, 1 : 1 + near.size] = 0
                low, iou = backend.decode(
                    emb, torch.from_numpy(pts), torch.from_numpy(lab), multimask=True
                )
                best = iou.argmax(dim=1)
                sel = low[torch.arange(low.shape[0]), best]
                logits = _upsample(sel, backend, valid, tile.shape)
                for j, i in enumerate(chunk):
                    m = (logits[j] > mask_threshold) & ~bad[tile.slices]
                    px = round(xy[i, 0]) - tile.x0
                    py = round(xy[i, 1]) - tile.y0
                    if not m[py, px]:
                        continue
                    lab_cc, _ = ndimage.label(m, structure=_EIGHT)
                    m = lab_cc == lab_cc[py, px]
                    result[int(i)] = (_crop(m, tile), float(iou[j, best[j]]))
        for i in range(len(xy)):
            if i in result:
                masks.append(result[i][0])
                scores.append(result[i][1])
            elif fallback and fallback_seg is not None:
                m = fallback_seg == i + 1
                whole = Tile(0, shape[0], 0, shape[1])
                crop = _crop(m, whole)
                if crop is not None:
                    masks.append(crop)
                    scores.append(-1.0)  # SAM's masks take precedence
                    n_fallback += 1
    elif mode == "grid":
        masks, scores = _grid_masks(
            rgb,
            data,
            rms_map,
            bad,
            backend,
            tiles,
            scale,
            points_per_side=int(points_per_side),
            pred_iou_thresh=float(pred_iou_thresh),
            stability_score_thresh=float(stability_score_thresh),
            dedupe_iou=float(dedupe_iou),
            max_area_fraction=float(max_area_fraction),
            min_snr=float(min_snr),
            npixels=int(npixels),
            mask_threshold=float(mask_threshold),
            batch_size=int(batch_size),
        )

    segmap, _ = masks_to_segmap(shape, masks, scores)  # masks exclude bad pixels already
    n = int(segmap.max(initial=0))
    groups, _ = ndimage.label(segmap > 0, structure=_EIGHT)
    parent = np.zeros(n + 1, np.int32)
    if n:
        parent[segmap.ravel()] = groups.ravel()
        parent[0] = 0
    params = {
        "checkpoint": backend.name,
        "image_size": size,
        "prompts": mode,
        "stretch": stretch,
        "scale": float(scale),
        "overlap": overlap,
        "tiles": len(tiles),
        "n_prompts": len(xy) if mode != "grid" else int(points_per_side) ** 2 * len(tiles),
        "n_fallback": n_fallback,
        "seconds": round(time.perf_counter() - t_start, 3),
    }
    if mode == "grid":
        params.update(
            points_per_side=int(points_per_side),
            pred_iou_thresh=float(pred_iou_thresh),
            stability_score_thresh=float(stability_score_thresh),
            min_snr=float(min_snr),
        )
    return segmap.astype(np.int32), parent, params


def _grid_masks(
    rgb,
    data,
    rms,
    bad,
    backend,
    tiles,
    scale,
    *,
    points_per_side,
    pred_iou_thresh,
    stability_score_thresh,
    dedupe_iou,
    max_area_fraction,
    min_snr,
    npixels,
    mask_threshold,
    batch_size,
):
    """SAM's automatic mode on every tile; masks filtered and de-duplicated across tiles."""
    import torch

    shape = data.shape
    var = np.where(np.isfinite(rms), rms, 0.0) ** 2
    cand: list = []
    cand_scores: list[float] = []
    for tile in tiles:
        pix, valid = normalise(rgb[tile.slices], backend, scale)
        emb = backend.embed(pix)
        g = (np.arange(points_per_side) + 0.5) / points_per_side
        gx, gy = np.meshgrid(g * valid[1] - 0.5, g * valid[0] - 0.5)
        grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
        h, w = tile.shape
        cut = [tile.y0 > 0, tile.y1 < shape[0], tile.x0 > 0, tile.x1 < shape[1]]
        for start in range(0, len(grid), batch_size):
            pts = torch.from_numpy(grid[start : start + batch_size, None, :].copy())
            lab = torch.ones(pts.shape[:2], dtype=torch.long)
            low, iou = backend.decode(emb, pts, lab, multimask=True)
            flat_iou = iou.reshape(-1)
            good = torch.nonzero(flat_iou >= pred_iou_thresh).flatten()
            if good.numel() == 0:
                continue
            flat = low.reshape(-1, *low.shape[2:])[good]
            logits = _upsample(flat, backend, valid, tile.shape)
            for q in range(good.numel()):
                score = float(flat_iou[good[q]])
                lg = logits[q]
                hi = np.count_nonzero(lg > mask_threshold + 1.0)
                lo = np.count_nonzero(lg > mask_threshold - 1.0)
                if lo == 0 or hi / lo < stability_score_thresh:
                    continue
                m = (lg > mask_threshold) & ~bad[tile.slices]
                area = int(m.sum())
                if area < npixels or area > max_area_fraction * h * w:
                    continue
                if (
                    (cut[0] and m[0].any())
                    or (cut[1] and m[-1].any())
                    or (cut[2] and m[:, 0].any())
                    or (cut[3] and m[:, -1].any())
                ):
                    continue
                d = data[tile.slices][m]
                noise = np.sqrt(var[tile.slices][m].sum())
                if not noise > 0 or d.sum() / noise < min_snr:
                    continue
                cand.append(_crop(m, tile))
                cand_scores.append(score)
    # Greedy de-duplication by mask IoU, best first.
    order = np.argsort(cand_scores)[::-1]
    keep: list[int] = []
    owner = np.zeros(shape, np.int64) - 1
    for i in order:
        sl, m = cand[i]
        prev = owner[sl][m]
        dup = False
        for j in np.unique(prev[prev >= 0]):
            _, mj = cand[j]
            inter = np.count_nonzero(prev == j)
            union = m.sum() + mj.sum() - inter
            if inter / union > dedupe_iou:
                dup = True
                break
        if dup:
            continue
        keep.append(int(i))
        sub = owner[sl]
        sub[m & (sub < 0)] = i
    return [cand[i] for i in keep], [cand_scores[i] for i in keep]
