"""Search for extended line emission: medium-band pixel clusters larger than the continuum's."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from astropy.table import Table
from scipy import ndimage

from ..exceptions import InputError, ParameterError
from ..flags import Flag
from ..io.validate import as_image, as_rms
from .clusters import cluster_stats, compare_clusters, main_cluster, pixel_clusters
from .psf import match_psfs

__all__ = ["DEFAULTS", "SourceCutouts", "search"]

#: Default parameters of :func:`search` (every one can be passed as a keyword).
DEFAULTS: dict[str, Any] = {
    "n_sigma": 3.0,
    "eps": 1.5,
    "min_samples": 4,
    "flux_scale": 1.0,
    "cutout_size": 31,
    "max_cutout_size": 201,
    "center_radius": 3.0,
    "norm_radius": 2.0,
    "combine": "union",
    "r_ratio": 1.5,
    "excess_fraction": 0.3,
    "dq": 0.3,
    "min_pix_q": 50,
    "min_snr": 25.0,
    "min_excess_snr": 6.0,
    "brightness_guard": "matched",
    "peak_fraction": 0.05,
    "window": "tukey",
    "regularization": 1e-4,
    "smooth_fwhm": 2.0,
    "equalize_noise": False,
    "seed": 0,
    "mask_neighbours": True,
}

_COMBINE = ("union", "max")
_GUARDS = ("matched", "none", "peak_fraction")
_XY_NAMES = (
    ("x", "y"),
    ("xcentroid", "ycentroid"),
    ("x_centroid", "y_centroid"),
    ("xc_centroid", "yc_centroid"),
    ("X_IMAGE", "Y_IMAGE"),
)
_ID_NAMES = ("id", "ID", "label", "NUMBER")


@dataclass
class SourceCutouts:
    """Cutouts and main-cluster masks of one source, for figures and inspection.

    Attributes
    ----------
    id : int or str
        Source identifier (as in the catalog's ``id`` column).
    xc, yc : float
        Source centre in cutout pixel coordinates.
    medium : ndarray
        Medium-band cutout (after PSF matching).
    references : list of ndarray
        Reference-band cutouts.
    medium_cluster : ndarray of bool
        Main cluster of the medium band.
    reference_clusters : list of ndarray of bool
        Main cluster of each reference band.
    reference_cluster : ndarray of bool
        The combined reference cluster the medium band was compared with.
    origin : tuple of int
        ``(x0, y0)`` of the cutout's first pixel in the image.
    """

    id: int | str
    xc: float
    yc: float
    medium: np.ndarray
    references: list[np.ndarray]
    medium_cluster: np.ndarray
    reference_clusters: list[np.ndarray]
    reference_cluster: np.ndarray
    origin: tuple[int, int]
    row: dict = field(default_factory=dict)


def _check_params(params: dict) -> dict:
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        name = sorted(unknown)[0]
        raise ParameterError(name, params[name], f"one of {', '.join(sorted(DEFAULTS))}")
    p = {**DEFAULTS, **params}
    for name in ("n_sigma", "eps", "r_ratio", "norm_radius", "center_radius"):
        v = p[name]
        if not (isinstance(v, int | float | np.number) and math.isfinite(v) and v > 0):
            raise ParameterError(name, v, "a finite number > 0")
    for name in (
        "flux_scale", "excess_fraction", "dq", "peak_fraction", "regularization", "smooth_fwhm",
        "min_snr", "min_excess_snr",
    ):  # fmt: skip
        v = p[name]
        if not (isinstance(v, int | float | np.number) and math.isfinite(v) and v >= 0):
            raise ParameterError(name, v, "a finite number >= 0")
    ms = p["min_samples"]
    if not (isinstance(ms, int | np.integer) and not isinstance(ms, bool) and ms >= 1):
        raise ParameterError("min_samples", ms, "an int >= 1")
    for name in ("cutout_size", "max_cutout_size", "min_pix_q", "seed"):
        v = p[name]
        low = 5 if name.endswith("cutout_size") else 0
        if not (isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= low):
            raise ParameterError(name, v, f"an int >= {low}")
    for name in ("equalize_noise", "mask_neighbours"):
        if not isinstance(p[name], bool | np.bool_):
            raise ParameterError(name, p[name], "True or False")
    if p["combine"] not in _COMBINE:
        raise ParameterError("combine", p["combine"], f"one of {_COMBINE}")
    if p["brightness_guard"] not in _GUARDS:
        raise ParameterError("brightness_guard", p["brightness_guard"], f"one of {_GUARDS}")
    return p


def _as_list(value, n: int | None = None) -> list:
    if isinstance(value, list | tuple):
        return list(value)
    if n is not None:
        return [value] * n
    return [value]


def _prepare_band(image, rms, name: str, rms_name: str, shape=None):
    img, bad = as_image(image, name)
    if shape is not None and img.shape != tuple(shape):
        raise InputError(name, f"shape {img.shape} does not match the medium image shape {shape}")
    if rms is None:
        from astropy.stats import mad_std

        sigma = float(mad_std(img[~bad]))
        if not sigma > 0:
            raise InputError(rms_name, "not given and cannot be estimated from the image")
        rms = sigma
    err, rbad = as_rms(rms, img.shape, rms_name)
    bad = bad | rbad
    err = err.copy()
    err[bad] = np.inf
    img[bad] = 0.0
    return img, err, bad


def _positions(
    positions, shape, wcs, bands, segmap=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y, id arrays from a table, an (N, 2) array, or detections when None."""
    if positions is None:
        return _detect(bands, segmap)
    if isinstance(positions, Table) or hasattr(positions, "colnames"):
        cols = positions.colnames
        ids = None
        for name in _ID_NAMES:
            if name in cols:
                ids = np.asarray(positions[name])
                break
        xy = next(((a, b) for a, b in _XY_NAMES if a in cols and b in cols), None)
        if xy is not None:
            try:
                x = np.asarray(positions[xy[0]], dtype=float)
                y = np.asarray(positions[xy[1]], dtype=float)
            except (TypeError, ValueError) as exc:
                raise InputError("positions", f"{xy[0]}, {xy[1]} are not numbers ({exc})") from None
        elif ("ra" in cols and "dec" in cols) or ("RA" in cols and "DEC" in cols):
            if wcs is None:
                raise InputError("positions", "has ra/dec columns but no WCS was given")
            ra_name, dec_name = ("ra", "dec") if "ra" in cols else ("RA", "DEC")
            ra = positions[ra_name]
            dec = positions[dec_name]
            ra = np.asarray(getattr(ra, "to_value", lambda u: ra)("deg"), dtype=float)
            dec = np.asarray(getattr(dec, "to_value", lambda u: dec)("deg"), dtype=float)
            x, y = wcs.all_world2pix(ra, dec, 0)
            x, y = np.asarray(x, float), np.asarray(y, float)
        else:
            raise InputError(
                "positions", f"needs x, y (or ra, dec) columns; has {', '.join(cols) or 'none'}"
            )
        if ids is None:
            ids = np.arange(1, len(x) + 1)
        return x, y, ids
    try:
        arr = np.asarray(positions, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError("positions", f"expected numbers x, y ({exc})") from None
    if arr.ndim == 1 and arr.size == 2:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputError(
            "positions", f"expected a table or an (N, 2) array of x, y, got {arr.shape}"
        )
    return arr[:, 0], arr[:, 1], np.arange(1, arr.shape[0] + 1)


def _snr_image(bands) -> np.ndarray:
    snr = np.zeros(bands[0][0].shape)
    for img, err, _ in bands:
        snr += np.where(np.isfinite(err), img / err, 0.0)
    return snr / math.sqrt(len(bands))


def _detection_segmap(bands) -> np.ndarray:
    """Segmentation of the mean S/N image of all bands (:func:`morphoscope.segment.segment`)."""
    from ..segment import segment

    return segment(_snr_image(bands), rms=1.0, background=None)


def _footprints(bands, nsigma: float = 2.0) -> np.ndarray:
    """Connected footprints of the mean S/N image, smoothed by a 3-pixel FWHM Gaussian.

    Light and fast; sources touching each other share a footprint, and are separated by
    the nearest-source rule of the neighbour masking.
    """
    snr = _snr_image(bands)
    g = _gauss_1d(3.0)
    smooth = _sep(snr, g) / float((g * g).sum())  # sqrt(sum k^2) of the 2-D kernel
    labels, _ = ndimage.label(smooth > nsigma, structure=np.ones((3, 3), bool))
    return labels


def _detect(bands, segmap=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sources of the detection segmentation, at their S/N-weighted centroids."""
    snr = _snr_image(bands)
    if segmap is None:
        segmap = _detection_segmap(bands)
    n = int(segmap.max())
    if n == 0:
        return np.empty(0), np.empty(0), np.empty(0, dtype=int)
    labels = np.unique(segmap[segmap > 0])
    weights = np.clip(snr, 0.0, None)
    com = ndimage.center_of_mass(weights, segmap, labels)
    yx = np.array(com, dtype=float).reshape(-1, 2)
    return yx[:, 1], yx[:, 0], labels


def _empty_row() -> dict:
    nan = float("nan")
    return {
        "flag": 0,
        "n_pix_medium": 0,
        "n_pix_reference": 0,
        "flux_medium": nan,
        "flux_reference": nan,
        "snr_medium": nan,
        "snr_excess": nan,
        "R_medium": nan,
        "R_reference": nan,
        "q_medium": nan,
        "q_reference": nan,
        "S_excess": nan,
        "d_H": nan,
        "gini_medium": nan,
        "asymmetry_medium": nan,
        "candidate": False,
        "reason": "",
    }


def _central_level(cut: np.ndarray, good: np.ndarray, xc: float, yc: float, radius: float) -> float:
    yy, xx = np.indices(cut.shape)
    near = good & ((xx - xc) ** 2 + (yy - yc) ** 2 <= radius * radius)
    if not near.any():
        return float("nan")
    return float(cut[near].mean())


def _equalize_noise(cuts, levels, seed, index):
    """Add white noise so every band has the same rms relative to its central level."""
    rel = [
        float(np.median(e[np.isfinite(e)])) / lv for (_, e, _), lv in zip(cuts, levels, strict=True)
    ]
    target = max(rel)
    rng = np.random.default_rng([int(seed), int(index)])
    out = []
    for (c, e, b), lv, r in zip(cuts, levels, rel, strict=True):
        extra = lv * math.sqrt(max(target * target - r * r, 0.0))
        if extra > 0:
            c = c + np.where(b, 0.0, rng.normal(0.0, extra, c.shape))
            e = np.sqrt(e * e + extra * extra)
        out.append((c, e, b))
    return out


def _gauss_1d(fwhm: float) -> np.ndarray:
    sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    half = max(1, math.ceil(3.5 * sigma))
    g = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    return g / g.sum()


def _sep(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    out = ndimage.correlate1d(img, g, axis=0, mode="constant")
    return ndimage.correlate1d(out, g, axis=1, mode="constant")


def _smooth(cut, err, bad, fwhm):
    """Gaussian smoothing that ignores bad pixels, with the rms propagated exactly.

    ``sm = conv(w f, k) / conv(w, k)`` (normalised convolution, ``w`` = good pixels) and
    ``rms_sm = sqrt(conv(w sigma^2, k^2)) / conv(w, k)``: near masked pixels, where
    fewer pixels are averaged, the noise of the smoothed image rises and so does its
    threshold. The kernel is separable, so each convolution is two 1-D passes.
    """
    g = _gauss_1d(fwhm)
    w = (~bad).astype(float)
    var = np.where(bad | ~np.isfinite(err), 0.0, err * err)
    num = _sep(np.where(bad, 0.0, cut), g)
    den = _sep(w, g)
    vsum = _sep(var, g * g)
    ok = den > 0.05
    with np.errstate(invalid="ignore", divide="ignore"):
        sm = np.where(ok, num / den, 0.0)
        rms = np.where(ok & (vsum > 0), np.sqrt(vsum) / den, np.inf)
    return sm, rms, bad | ~ok


def _excess_snr(raw, med, ref, refs) -> float:
    """S/N of the medium-band flux outside the reference cluster beyond the continuum's.

    Each reference band is scaled to the medium band by their flux ratio where both
    clusters overlap; the prediction is the mean of the scaled references. Returns
    ``sum(m - pred) / sqrt(sum(var))`` over the medium cluster's pixels outside the
    reference cluster (unsmoothed, PSF-matched images), NaN without such pixels.
    """
    excess = med & ~ref
    overlap = med & ref
    if not excess.any():
        return float("nan")
    m, em, _ = raw[0]
    if not overlap.any():  # nothing to scale the references by: the excess flux alone
        var = em[excess] ** 2
        ok = np.isfinite(var)
        return float(m[excess][ok].sum() / np.sqrt(var[ok].sum())) if ok.any() else float("nan")
    pred = np.zeros(int(excess.sum()))
    var_refs = np.zeros(int(excess.sum()))
    n = 0
    m_sum = float(m[overlap].sum())
    for r, er, _ in raw[1:]:
        r_sum = float(r[overlap].sum())
        if not (r_sum > 0 and m_sum > 0):
            continue
        scale = m_sum / r_sum
        pred += scale * r[excess]
        var_refs += (scale * er[excess]) ** 2
        n += 1
    if n == 0:
        return float("nan")
    pred /= n
    var = em[excess] ** 2 + var_refs / (n * n)
    var = var[np.isfinite(var)]
    if not var.size:
        return float("nan")
    return float((m[excess] - pred).sum() / np.sqrt(var.sum()))


def _touches_border(member: np.ndarray) -> bool:
    return bool(member[0].any() or member[-1].any() or member[:, 0].any() or member[:, -1].any())


def _clusters(x, y, bands, p, half, index, segmap=None, others=(), sharers=None, stronger=None):
    """Cutouts of size 2 half + 1 around (x, y), thresholds, and each band's main cluster."""
    ny, nx = bands[0][0].shape
    ic, jc = int(np.rint(y)), int(np.rint(x))
    y0, y1 = max(ic - half, 0), min(ic + half + 1, ny)
    x0, x1 = max(jc - half, 0), min(jc + half + 1, nx)
    xc, yc = x - x0, y - y0
    raw = [(img[y0:y1, x0:x1], err[y0:y1, x0:x1], bad[y0:y1, x0:x1]) for img, err, bad in bands]
    cuts = raw
    exclude = None
    if segmap is not None and (len(others) or sharers is not None):
        seg = segmap[y0:y1, x0:x1]
        # other catalog sources' segments are not part of this source
        exclude = np.isin(seg, others) if len(others) else np.zeros(seg.shape, bool)
        if sharers is not None and len(sharers):
            # pixels nearer to another catalog source than to this one belong to it;
            # only sources closer than the cutout's diagonal can claim one of its pixels
            d2 = (sharers[:, 0] - x) ** 2 + (sharers[:, 1] - y) ** 2
            close = sharers[d2 < 8.0 * (half + 1) ** 2]
            if len(close):
                yy, xx = np.indices(seg.shape)
                d_own = (xx - xc) ** 2 + (yy - yc) ** 2
                for sx, sy in close:
                    exclude |= (xx - (sx - x0)) ** 2 + (yy - (sy - y0)) ** 2 < d_own
        if exclude.any():
            cuts = [(c, e, b | exclude) for c, e, b in raw]
    n_sigma = p["n_sigma"]
    levels = [_central_level(c, ~b, xc, yc, p["norm_radius"]) for c, _, b in cuts]
    if p["equalize_noise"] and all(np.isfinite(lv) and lv > 0 for lv in levels):
        cuts = _equalize_noise(cuts, levels, p["seed"], index)
    if p["smooth_fwhm"] > 0:
        cuts = [_smooth(c, e, b, p["smooth_fwhm"]) for c, e, b in cuts]
        levels = [_central_level(c, ~b, xc, yc, p["norm_radius"]) for c, _, b in cuts]
    guard = p["brightness_guard"]
    if guard == "matched" and all(np.isfinite(lv) and lv > 0 for lv in levels):
        # the same isophote relative to each band's central level: the deepest one that
        # every band reaches at n_sigma
        rel = max(
            n_sigma * float(np.median(e[np.isfinite(e)])) / lv
            for (_, e, _), lv in zip(cuts, levels, strict=True)
        )
        thresholds = [
            np.maximum(n_sigma * e, rel * lv) for (_, e, _), lv in zip(cuts, levels, strict=True)
        ]
    elif guard == "peak_fraction":
        thresholds = [
            np.maximum(n_sigma * e, p["peak_fraction"] * lv if np.isfinite(lv) else 0.0)
            for (_, e, _), lv in zip(cuts, levels, strict=True)
        ]
    else:
        thresholds = [n_sigma * e for _, e, _ in cuts]
    members = []
    for (c, _, b), t, lv in zip(cuts, thresholds, levels, strict=True):
        _, labels = pixel_clusters(
            c,
            t,
            ~b,
            eps=p["eps"],
            min_samples=p["min_samples"],
            flux_scale=p["flux_scale"],
            flux_norm=lv,
        )
        members.append(main_cluster(labels, xc, yc, p["center_radius"]))
    if stronger is not None and len(stronger) and members[0].any():
        # medium-only pixels that run into the territory of a neighbour with a stronger
        # excess are more likely that neighbour's line light: drop those pieces
        yy, xx = np.indices(members[0].shape)
        d_own = (xx - xc) ** 2 + (yy - yc) ** 2
        claim = np.zeros(members[0].shape, bool)
        for sx, sy in stronger:
            claim |= (xx - (sx - x0)) ** 2 + (yy - (sy - y0)) ** 2 < d_own
        excess = members[0] & ~np.logical_or.reduce(members[1:])
        if excess.any() and claim.any():
            pieces, _ = ndimage.label(excess, structure=np.ones((3, 3), bool))
            touching = np.unique(pieces[ndimage.binary_dilation(claim) & (pieces > 0)])
            if touching.size:
                members[0] = members[0] & ~np.isin(pieces, touching)
    clipped = (y0, x0, y1, x1) != (ic - half, jc - half, ic + half + 1, jc + half + 1)
    return raw, cuts, members, xc, yc, (x0, y0), clipped


def _measure_source(
    x: float,
    y: float,
    bands,
    p: dict,
    keep: bool,
    index: int = 0,
    segmap=None,
    others=(),
    sharers=None,
    stronger=None,
):
    """One source: its catalog row and, if ``keep``, its :class:`SourceCutouts`."""
    row = _empty_row()
    ny, nx = bands[0][0].shape
    if not (np.isfinite(x) and np.isfinite(y)) or not (
        -0.5 <= x < nx - 0.5 and -0.5 <= y < ny - 0.5
    ):
        row["flag"] = int(Flag.EDGE | Flag.MEASURE_FAILED)
        return row, None
    half = int(p["cutout_size"]) // 2
    max_half = max(half, int(p["max_cutout_size"]) // 2)
    while True:
        raw, cuts, members, xc, yc, origin, clipped = _clusters(
            x, y, bands, p, half, index, segmap, others, sharers, stronger
        )
        on_border = any(_touches_border(m) for m in members)
        if not on_border or clipped or half >= max_half:
            break
        half = min(2 * half, max_half)  # a cluster reaches the cutout's border: grow it

    med = members[0]
    refs = members[1:]
    if p["combine"] == "union" or len(refs) == 1:
        ref = np.logical_or.reduce(refs)
    else:
        stats = [
            cluster_stats(m, cuts[i + 1][0], xc, yc, shape_stats=False) for i, m in enumerate(refs)
        ]
        best = max(
            range(len(refs)),
            key=lambda i: (np.nan_to_num(stats[i]["R"], nan=-1.0), stats[i]["n_pix"]),
        )
        ref = refs[best]
    sm = cluster_stats(med, cuts[0][0], xc, yc)
    # reference flux: the first reference band's flux inside the combined cluster
    sr = cluster_stats(ref, cuts[1][0], xc, yc, shape_stats=False)
    s_excess, d_h = compare_clusters(med, ref)
    snr_excess = _excess_snr(raw, med, ref, members[1:])
    snr = float("nan")
    if sm["n_pix"]:
        img0, err0, _ = raw[0]
        var = err0[med] ** 2
        var = var[np.isfinite(var)]
        if var.size and var.sum() > 0:
            snr = float(img0[med].sum() / np.sqrt(var.sum()))
    row.update(
        n_pix_medium=sm["n_pix"],
        n_pix_reference=sr["n_pix"],
        flux_medium=sm["flux"],
        flux_reference=sr["flux"],
        snr_medium=snr,
        snr_excess=snr_excess,
        R_medium=sm["R"],
        R_reference=sr["R"],
        q_medium=sm["q"],
        q_reference=sr["q"],
        S_excess=s_excess if sm["n_pix"] else float("nan"),
        d_H=d_h,
        gini_medium=sm["gini"],
        asymmetry_medium=sm["asymmetry"],
    )
    flag = 0
    if sm["n_pix"] == 0 or sr["n_pix"] == 0:
        flag |= Flag.SMALL
    if _touches_border(med) or _touches_border(ref):
        flag |= Flag.EDGE
    near = ndimage.binary_dilation(med | ref, structure=np.ones((3, 3), bool))
    if any((near & b).any() for _, _, b in raw):
        flag |= Flag.MASKED_PIXELS
    if sm["n_pix"] and sm["flux"] <= 0:
        flag |= Flag.NONPOSITIVE_FLUX
    low_sn = not (snr >= p["min_snr"])
    if sm["n_pix"] and low_sn:
        flag |= Flag.LOW_SN
    row["flag"] = int(flag)
    significant = not (snr_excess < p["min_excess_snr"])  # NaN (no excess) passes
    if sm["n_pix"] and sr["n_pix"] and not low_sn and significant:
        reasons = []
        if sm["R"] >= p["r_ratio"] * sr["R"]:
            reasons.append("R")
        if s_excess >= p["excess_fraction"] * sr["n_pix"]:
            reasons.append("S_excess")
        if min(sm["n_pix"], sr["n_pix"]) >= p["min_pix_q"] and abs(sm["q"] - sr["q"]) > p["dq"]:
            reasons.append("q")
        row["candidate"] = bool(reasons)
        row["reason"] = ",".join(reasons)
    details = None
    if keep:
        details = SourceCutouts(
            id=0,
            xc=xc,
            yc=yc,
            medium=cuts[0][0].copy(),
            references=[c[0].copy() for c in cuts[1:]],
            medium_cluster=med,
            reference_clusters=refs,
            reference_cluster=ref,
            origin=origin,
            row=row,
        )
    return row, details


def search(
    medium,
    reference,
    *,
    rms_medium=None,
    rms_reference=None,
    positions=None,
    psf_medium=None,
    psf_reference=None,
    wcs=None,
    segmap=None,
    keep_cutouts: Literal["none", "candidates", "all"] = "none",
    progress: bool = False,
    **params,
):
    """Find sources whose medium-band light extends beyond their continuum.

    Per source and band: a cutout around the source (grown while a cluster touches its
    border), bad pixels and other catalog sources' pixels masked, Gaussian smoothing
    (``smooth_fwhm``), the pixels above a threshold (``n_sigma`` x the smoothed rms, and
    the ``brightness_guard``), DBSCAN of the points ``[x, y, flux_scale * f / F_c]``
    (:func:`~morphoscope.emission.grid_dbscan`; ``F_c`` the band's mean within
    ``norm_radius`` of the centre), and the main cluster: the one containing the
    source's centre pixel, else the one with the pixel nearest the centre within
    ``center_radius``. The medium band's main cluster is compared with the reference
    bands' (combined by ``combine``), and the source is a candidate when any criterion
    holds (Zhu et al. 2025, ApJ 986, 162):

    - ``R_medium >= r_ratio * R_reference`` (reason ``"R"``),
    - ``S_excess >= excess_fraction * n_pix_reference`` (reason ``"S_excess"``),
    - ``|q_medium - q_reference| > dq`` with both clusters of at least ``min_pix_q``
      pixels (reason ``"q"``),

    provided the medium cluster is significant (``snr_medium >= min_snr``, else flag
    ``LOW_SN``) and so is its flux outside the reference cluster beyond the scaled
    continuum (``snr_excess >= min_excess_snr``; NaN, i.e. no excess pixel, passes).
    With ``mask_neighbours``, a candidate next to a candidate of larger ``snr_excess`` is
    measured again without the medium-only pixels that run into that neighbour's
    territory (line light spilling over from the neighbour).

    Parameters
    ----------
    medium : array_like
        Medium-band image (background-subtracted), registered with the references.
    reference : array_like or list of array_like
        One or more reference (continuum) images of the same shape.
    rms_medium, rms_reference : array_like or float, optional
        1-sigma noise maps or scalars (``rms_reference`` one per reference band or one
        for all). Estimated by the MAD of the image when omitted. Zero, negative or
        non-finite pixels are bad pixels (sources near them get ``MASKED_PIXELS``).
    positions : Table or array_like, optional
        Source positions: a table with ``x, y`` (or ``xcentroid, ycentroid``,
        ``xc_centroid, yc_centroid``, ...) or ``ra, dec`` (with ``wcs``) columns and an
        optional ``id``/``label`` column, or an ``(N, 2)`` array of ``x, y``. When None,
        sources are detected on the mean S/N image of all bands with
        :func:`morphoscope.segment.segment` and placed at their S/N-weighted centroids.
    psf_medium, psf_reference : array_like or list, optional
        PSF images (same pixel scale). When given for every band, all bands are
        convolved to the broadest PSF first (:func:`~morphoscope.emission.match_psfs`).
    wcs : astropy.wcs.WCS, optional
        To convert ``ra, dec`` positions to pixels.
    segmap : array_like of int, optional
        Segmentation map used to mask the other catalog sources. By default (with
        ``mask_neighbours``) the footprints of the mean S/N image of all bands (smoothed
        by a 3-pixel Gaussian, above 2 sigma, 8-connected) are used; pixels nearer to
        another catalog source than to the source itself are masked as well.
    keep_cutouts : {"none", "candidates", "all"}
        Also return :class:`SourceCutouts` (for figures) of these sources.
    progress : bool
        Show a progress bar (tqdm).
    **params
        Every entry of :data:`DEFAULTS`: ``n_sigma`` (3.0), ``eps`` (1.5 px),
        ``min_samples`` (4), ``flux_scale`` (1.0), ``smooth_fwhm`` (2.0 px; 0 = off),
        ``cutout_size`` (31 px), ``max_cutout_size`` (201 px), ``center_radius`` (3.0 px),
        ``norm_radius`` (2.0 px), ``combine`` (``"union"`` | ``"max"``), ``r_ratio``
        (1.5), ``excess_fraction`` (0.3), ``dq`` (0.3), ``min_pix_q`` (50), ``min_snr``
        (25), ``min_excess_snr`` (6), ``brightness_guard`` (``"matched"`` | ``"none"`` |
        ``"peak_fraction"``), ``peak_fraction`` (0.05), ``equalize_noise`` (False),
        ``seed`` (0), ``mask_neighbours`` (True), ``window`` (``"tukey"`` |
        ``"split_cosine_bell"`` | ``"top_hat"`` | ``"none"``), ``regularization``
        (1e-4). See ``docs/emission.md``.

    Returns
    -------
    table : astropy.table.Table
        One row per source: ``id, x, y, flag, n_pix_medium, n_pix_reference,
        flux_medium, flux_reference, snr_medium, snr_excess, R_medium, R_reference,
        q_medium, q_reference, S_excess, d_H, gini_medium, asymmetry_medium, candidate,
        reason``. A source that cannot be measured keeps its row with NaN values and
        bits in ``flag`` (outside the image: ``EDGE | MEASURE_FAILED``; no cluster near
        the centre in a band: ``SMALL``; a cluster on the cutout border: ``EDGE``;
        sharing its detection segment with another catalog source: ``DEBLENDED``).
    cutouts : list of SourceCutouts
        Only when ``keep_cutouts`` is not ``"none"``.

    Raises
    ------
    InputError
        An image or map is unusable (not 2-D, shape mismatch, no valid rms, ...).
    ParameterError
        A parameter is out of range or unknown.

    Notes
    -----
    Cost per source: one cutout per band, a separable smoothing, thresholding and a
    grid DBSCAN (linear in the cutout area), moments and a distance transform for the
    Hausdorff distance: a few hundred sources per second per core at the defaults,
    plus one smoothing and labelling of the whole image when ``mask_neighbours`` is on.

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[:64, :64]
    >>> rng = np.random.default_rng(0)
    >>> core = 40 * np.exp(-((x - 32) ** 2 + (y - 32) ** 2) / 8)
    >>> halo = 3 * np.exp(-np.hypot(x - 32, y - 32) / 5)
    >>> cont = core + rng.normal(0, 1, core.shape)
    >>> line = core + halo + rng.normal(0, 1, core.shape)
    >>> t = search(line, cont, rms_medium=1.0, rms_reference=1.0, positions=[[32, 32]])
    >>> bool(t["candidate"][0]), bool(t["R_medium"][0] > 1.5 * t["R_reference"][0])
    (True, True)
    """
    p = _check_params(params)
    if keep_cutouts not in ("none", "candidates", "all"):
        raise ParameterError("keep_cutouts", keep_cutouts, "one of 'none', 'candidates', 'all'")
    refs = _as_list(reference)
    if not refs:
        raise InputError("reference", "no reference band given")
    single = not isinstance(reference, list | tuple)
    ref_names = ["reference"] if single else [f"reference[{i}]" for i in range(len(refs))]
    rms_refs = _as_list(rms_reference, len(refs))
    if len(rms_refs) != len(refs):
        raise InputError(
            "rms_reference", f"{len(rms_refs)} rms maps for {len(refs)} reference bands"
        )
    img_m, err_m, bad_m = _prepare_band(medium, rms_medium, "medium", "rms_medium")
    bands = [(img_m, err_m, bad_m)]
    for i, (r, e) in enumerate(zip(refs, rms_refs, strict=True)):
        rms_name = (
            "rms_reference"
            if single or not isinstance(rms_reference, list | tuple)
            else f"rms_reference[{i}]"
        )
        bands.append(_prepare_band(r, e, ref_names[i], rms_name, shape=img_m.shape))

    if psf_medium is not None or psf_reference is not None:
        psf_refs = _as_list(psf_reference, None) if psf_reference is not None else []
        if psf_medium is None or len(psf_refs) != len(refs):
            raise InputError(
                "psf_reference" if psf_medium is not None else "psf_medium",
                "give a PSF for the medium band and for every reference band, or none",
            )
        images, rmss, _ = match_psfs(
            [b[0] for b in bands],
            [b[1] for b in bands],
            [psf_medium, *psf_refs],
            window=p["window"],
            regularization=p["regularization"],
        )
        bands = [
            (im, er, bd | ~np.isfinite(er))
            for im, er, (_, _, bd) in zip(images, rmss, bands, strict=True)
        ]

    if segmap is not None:
        segmap = np.asarray(segmap)
        if segmap.shape != img_m.shape:
            raise InputError(
                "segmap", f"shape {segmap.shape} does not match the medium image {img_m.shape}"
            )
    elif p["mask_neighbours"]:
        segmap = _detection_segmap(bands) if positions is None else _footprints(bands)
    x, y, ids = _positions(positions, img_m.shape, wcs, bands, segmap)
    own = np.zeros(len(x), dtype=np.int64)
    if segmap is not None:
        ny_, nx_ = img_m.shape
        ok = np.isfinite(x) & np.isfinite(y)
        ix = np.clip(np.rint(np.where(ok, x, 0)).astype(int), 0, nx_ - 1)
        iy = np.clip(np.rint(np.where(ok, y, 0)).astype(int), 0, ny_ - 1)
        own = np.where(ok, segmap[iy, ix], 0).astype(np.int64)
    catalog_labels = np.unique(own[own > 0])
    tree = None
    finite = np.isfinite(x) & np.isfinite(y)
    if segmap is not None and np.count_nonzero(finite) > 1:
        from scipy.spatial import cKDTree

        # catalog sources within reach of a source's largest cutout share its pixels
        tree = cKDTree(np.column_stack([np.where(finite, x, -1e9), np.where(finite, y, -1e9)]))
        reach = 0.75 * max(p["cutout_size"], p["max_cutout_size"])
    rows = []
    kept: list[SourceCutouts] = []
    iterator = range(len(x))
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="emission", unit="src")
    for i in iterator:
        keep = keep_cutouts != "none"
        try:
            others, sharers = (), None
            if segmap is not None:
                others = catalog_labels[catalog_labels != own[i]]
                if tree is not None and np.isfinite(x[i]) and np.isfinite(y[i]):
                    near = np.asarray(tree.query_ball_point([x[i], y[i]], reach), dtype=int)
                    near = near[near != i]
                    if near.size:
                        sharers = np.column_stack([x[near], y[near]])
            row, det = _measure_source(
                float(x[i]), float(y[i]), bands, p, keep, i, segmap, others, sharers
            )
            if own[i] > 0 and np.count_nonzero(own == own[i]) > 1:
                row["flag"] |= int(Flag.DEBLENDED)  # shares its detection segment
        except Exception:  # one bad source never stops the catalog
            row, det = _empty_row(), None
            row["flag"] = int(Flag.MEASURE_FAILED)
        rows.append(row)
        if det is not None and (keep_cutouts == "all" or row["candidate"]):
            sid = ids[i]
            det.id = int(sid) if isinstance(sid, int | np.integer) else str(sid)
            kept.append(det)

    if segmap is not None and tree is not None:
        _second_pass(rows, kept, x, y, own, catalog_labels, tree, reach, bands, segmap, p)
        if keep_cutouts == "candidates":
            kept[:] = [d for d in kept if d.row["candidate"]]
    table = _to_table(rows, x, y, ids)
    table.meta["emission_params"] = {k: p[k] for k in sorted(p)}
    table.meta["emission_n_reference"] = len(refs)
    if keep_cutouts != "none":
        return table, kept
    return table


def _second_pass(rows, kept, x, y, own, catalog_labels, tree, reach, bands, segmap, p):
    """Re-measure candidates next to a candidate with a stronger excess (in place).

    Line emission of one galaxy can spill into its neighbour's cutout; the pieces of a
    candidate's excess that run into the territory of a neighbouring candidate with a
    larger ``snr_excess`` are given to that neighbour.
    """
    strength = np.array(
        [
            r["snr_excess"] if r["candidate"] and np.isfinite(r["snr_excess"]) else -np.inf
            for r in rows
        ]
    )
    by_id = {id(d.row): d for d in kept}
    for i, row in enumerate(rows):
        if not row["candidate"]:
            continue
        near = np.asarray(tree.query_ball_point([x[i], y[i]], reach), dtype=int)
        near = near[(near != i) & (strength[near] > strength[i])]
        if not near.size:
            continue
        others = catalog_labels[catalog_labels != own[i]]
        sharers_idx = np.asarray(tree.query_ball_point([x[i], y[i]], reach), dtype=int)
        sharers_idx = sharers_idx[sharers_idx != i]
        sharers = np.column_stack([x[sharers_idx], y[sharers_idx]]) if sharers_idx.size else None
        keep = id(row) in by_id
        try:
            new, det = _measure_source(
                float(x[i]), float(y[i]), bands, p, keep, i, segmap, others, sharers,
                np.column_stack([x[near], y[near]]),
            )  # fmt: skip
        except Exception:  # keep the first measurement
            continue
        new["flag"] |= row["flag"] & int(Flag.DEBLENDED)
        if keep:
            old_det = by_id[id(row)]
            det.id = old_det.id
            kept[kept.index(old_det)] = det
        rows[i] = new


_FLOAT_COLS = (
    "flux_medium",
    "flux_reference",
    "snr_medium",
    "snr_excess",
    "R_medium",
    "R_reference",
    "q_medium",
    "q_reference",
    "S_excess",
    "d_H",
    "gini_medium",
    "asymmetry_medium",
)

_UNITS = {
    "R_medium": "pix",
    "R_reference": "pix",
    "d_H": "pix",
    "S_excess": "pix",
    "x": "pix",
    "y": "pix",
}


def _to_table(rows: list[dict], x, y, ids) -> Table:
    n = len(rows)
    cols: dict[str, Any] = {
        "id": np.asarray(ids) if n else np.empty(0, dtype=int),
        "x": np.asarray(x, dtype=float),
        "y": np.asarray(y, dtype=float),
        "flag": np.array([r["flag"] for r in rows], dtype=np.int32),
        "n_pix_medium": np.array([r["n_pix_medium"] for r in rows], dtype=np.int64),
        "n_pix_reference": np.array([r["n_pix_reference"] for r in rows], dtype=np.int64),
    }
    for name in _FLOAT_COLS:
        cols[name] = np.array([r[name] for r in rows], dtype=float)
    cols["candidate"] = np.array([r["candidate"] for r in rows], dtype=bool)
    cols["reason"] = np.array([r["reason"] for r in rows], dtype="U32") if n else np.empty(0, "U32")
    order = [
        "id", "x", "y", "flag", "n_pix_medium", "n_pix_reference", "flux_medium",
        "flux_reference", "snr_medium", "snr_excess", "R_medium", "R_reference", "q_medium",
        "q_reference", "S_excess", "d_H", "gini_medium", "asymmetry_medium", "candidate",
        "reason",
    ]  # fmt: skip
    table = Table([cols[c] for c in order], names=order)
    for name, unit in _UNITS.items():
        table[name].unit = unit
    return table
