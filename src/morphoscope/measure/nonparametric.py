"""The non-parametric morphology set of statmorph, for one source on its postage stamp.

:func:`morphology_one` reproduces the algorithms of statmorph 0.7 (Rodriguez-Gomez et al.
2019) step by step (same stamps, masks, apertures, root finders, minimisers and
segmentation maps) in compiled code: photutils' exact aperture overlaps evaluated only on
the aperture's bounding box (:mod:`._overlap`), scipy's Brent root finder, Nelder-Mead and
basin-hopping ported step by step (:mod:`._roots`, :mod:`._asym`, :mod:`._mid`), the Petrosian
and light-fraction radii (:mod:`._radii`), the asymmetry (:mod:`._asym`), flood-fill and
union-find labelling (:mod:`._mid`) and the mode-centred sigma clipping
(:mod:`._sigma_clip`), and the per-stamp masks, filters and segmaps (:mod:`._stamp`).
This module keeps the order of the steps, the flags and the messages;
the compiled kernels return the same floating-point numbers as the Python, scipy,
scikit-image, photutils and astropy code they replace (tested bit for bit).

Problems never raise: they set ``flag`` (statmorph's scale: 0 good, 1 suspect, 2 bad,
4 catastrophic), leave NaN values and add a message to ``warnings``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from . import _asym, _radii, _roots, _stamp
from . import _mid as _mid_kernels
from ._sigma_clip import mode_clipped_stats

__all__ = ["QUANTITIES", "MorphologyState", "morphology_one", "stamp_slice"]

QUANTITIES = (
    "xc_centroid",
    "yc_centroid",
    "ellipticity_centroid",
    "elongation_centroid",
    "orientation_centroid",
    "xc_asymmetry",
    "yc_asymmetry",
    "ellipticity_asymmetry",
    "elongation_asymmetry",
    "orientation_asymmetry",
    "flux_circ",
    "flux_ellip",
    "rpetro_circ",
    "rpetro_ellip",
    "rmax_circ",
    "rmax_ellip",
    "rhalf_circ",
    "rhalf_ellip",
    "r20",
    "r50",
    "r80",
    "gini",
    "m20",
    "gini_m20_bulge",
    "gini_m20_merger",
    "sn_per_pixel",
    "concentration",
    "asymmetry",
    "smoothness",
    "multimode",
    "intensity",
    "deviation",
    "rms_asymmetry2",
    "outer_asymmetry",
    "shape_asymmetry",
    "sky_mean",
    "sky_median",
    "sky_sigma",
)

_NO_MASK = np.zeros((1, 1), bool)
_NO_WEIGHTS = np.zeros((1, 1))
ETA = 0.2
ANNULUS = 1.0
SKYBOX = 32
PETRO_GINI = 0.2
PETRO_CAS = 0.25
EXTENT_CAS = 1.5
EXTENT_FLUX = 2.0
#: Nelder-Mead position tolerance of the asymmetry centre (statmorph: 1e-6); 1e-3 pixel
#: changes the asymmetry by ~1e-5 and needs about half the evaluations.
XTOL_CENTER = 1e-3


class _Invalid(Exception):
    """A quantity cannot be computed (caught per quantity; value becomes NaN)."""


class MorphologyState:
    """Flags and warning messages collected while measuring one source."""

    def __init__(self) -> None:
        self.flag = 0
        self.messages: list[str] = []

    def warn(self, msg: str, flag: int | None = None) -> None:
        self.messages.append(msg)
        if flag is not None:
            self.flag = max(self.flag, flag)


def stamp_slice(bbox: tuple[slice, slice], shape, extent=2.5, min_size=48):
    """statmorph's postage stamp: ``extent`` times the segment's bounding box, >= ``min_size``."""
    xmin, xmax = bbox[1].start, bbox[1].stop - 1
    ymin, ymax = bbox[0].start, bbox[0].stop - 1
    dx, dy = xmax + 1 - xmin, ymax + 1 - ymin
    xc, yc = xmin + dx // 2, ymin + dy // 2
    dist = int(max(dx, dy) * extent / 2.0)
    dist = max(dist, (min_size - min_size % 2) // 2)
    ny, nx = shape
    return (
        slice(max(0, yc - dist), min(ny, yc + dist)),
        slice(max(0, xc - dist), min(nx, xc + dist)),
    )


def _moments(image: np.ndarray):
    y = np.arange(image.shape[0], dtype=float)
    x = np.arange(image.shape[1], dtype=float)
    m00 = image.sum()
    col = image.sum(axis=0)
    row = image.sum(axis=1)
    return m00, (col @ x), (row @ y)


def _covariance(image, xc, yc, st: MorphologyState):
    y = np.arange(image.shape[0], dtype=float) - yc
    x = np.arange(image.shape[1], dtype=float) - xc
    m00 = image.sum()
    if not m00 > 0:
        raise _Invalid("nonpositive flux for the second moments")
    x2 = (image.sum(axis=0) @ (x * x)) / m00
    y2 = (image.sum(axis=1) @ (y * y)) / m00
    xy = (y @ image @ x) / m00
    if x2 <= 0 or y2 <= 0:
        st.warn("Nonpositive second moment.", 2)
    rho = 1.0 / 12.0
    while np.abs(x2 * y2 - xy**2) < rho**2:
        x2 += rho if x2 >= 0 else -rho
        y2 += rho if y2 >= 0 else -rho
    return x2, xy, y2


def _shape(cov):
    x2, xy, y2 = cov
    ev = np.linalg.eigvals(np.array([[x2, xy], [xy, y2]]))
    ev = np.sort(np.abs(ev))[::-1]
    a, b = np.sqrt(ev[0]), np.sqrt(ev[1])
    return 1.0 - b / a, a / b, 0.5 * np.arctan2(2.0 * xy, x2 - y2)


class _Source:
    """Everything statmorph computes lazily for one source, computed eagerly in order."""

    def __init__(self, image, segmap, label, mask, weightmap, gain, bbox, nsigma):
        self.st = MorphologyState()
        sl = stamp_slice(bbox, image.shape)
        self.sl = sl
        y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
        self.ymin, self.xmin = y0, x0
        image = np.asarray(image, dtype=np.float64)
        segmap = np.asarray(segmap)
        if segmap.dtype != np.int64:
            segmap = segmap.astype(np.int64)
        self.seg_stamp = segmap[sl]
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            self.usermask = mask[sl]
        else:
            self.usermask = None
        if weightmap is not None:
            weightmap = np.asarray(weightmap, dtype=np.float64)
            self.wm_in = weightmap[sl]
        else:
            self.wm_in = None
        self._full = (segmap, mask, (y0, y1, x0, x1))
        # one compiled pass: outlier test, masks, cut-outs, segment box, flux, brightest pixel
        (
            self.mask,
            self.mask_nobg,
            self.img_raw,
            self.cut,
            self.cut_nobg,
            self._omask,
            box,
            any_mask,
            self.total_flux,
            self.ymax_pix,
            self.xmax_pix,
        ) = _stamp.prepare(
            image,
            segmap,
            int(label),
            _NO_MASK if mask is None else mask,
            mask is not None,
            _NO_WEIGHTS if weightmap is None else weightmap,
            weightmap is not None,
            y0,
            y1,
            x0,
            x1,
            float(nsigma),
        )
        self.gain = gain
        self.ny, self.nx = self.cut.shape
        self.diag = float(np.hypot(self.nx, self.ny))
        self.seg_box = (slice(int(box[0]), int(box[1])), slice(int(box[2]), int(box[3])))
        self.seg_box_arr = box
        self.any_mask = bool(any_mask)

    # ------------------------------------------------------------------ basics
    def centroid(self):
        m00, mx, my = _moments(self.cut_nobg)
        xc, yc = mx / m00, my / m00
        if yc < 0 or yc >= self.ny or xc < 0 or xc >= self.nx:
            self.st.warn("Centroid is out-of-range. Fixing at center of postage stamp (bad!).", 2)
            xc, yc = self.nx / 2.0, self.ny / 2.0
        return xc, yc

    # ------------------------------------------------- Petrosian and fraction radii
    # statmorph's bracket scans and brentq refinements, compiled (:mod:`._radii`); the
    # warnings come back as codes and are replayed here in statmorph's order.
    def _radius(self, value, code, name, nzero=0):
        msgs, error = _radii.describe(code, name, nzero, value)
        for msg, flag in msgs:
            self.st.warn(msg, flag)
        if error is not None:
            raise (_Invalid if code & _radii.E_NOT_FOUND else ValueError)(error)
        return float(value)

    def rpetro_circ(self, c):
        r, code, nzero = _radii.rpetro_circ(self.cut, self._omask, float(c[0]), float(c[1]))
        return self._radius(r, code, "rpetro_circ", nzero)

    def rpetro_ellip(self, c, elong, theta):
        r, code, nzero = _radii.rpetro_ellip(
            self.cut, self._omask, float(c[0]), float(c[1]), float(elong), float(theta)
        )
        return self._radius(r, code, "rpetro_ellip", nzero)

    def frac_circ(self, c, r_total, fraction):
        r, code = _radii.frac_circ(self.cut, float(c[0]), float(c[1]), r_total, fraction)
        return self._radius(r, code, "r_circ")

    def frac_ellip(self, c, elong, theta, a_total, fraction):
        r, code = _radii.frac_ellip(
            self.cut, float(c[0]), float(c[1]), float(elong), float(theta), a_total, fraction
        )
        return self._radius(r, code, "r_ellip")

    # -------------------------------------------------------------- asymmetry
    def asym_fn(self, c, image, kind):
        """statmorph's ``_asymmetry_function`` (kinds 'cas', 'rms', 'outer', 'shape'), compiled
        (:func:`._asym.asymmetry_value`)."""
        have_sky = self.sky_asym is not None
        value, code = _asym.asymmetry_value(
            image,
            self.mask,
            self.any_mask,
            float(c[0]),
            float(c[1]),
            _asym.KINDS[kind],
            EXTENT_CAS * self.rpetro_centroid if kind in ("cas", "rms") else self.rmax_circ_v,
            self.rhalf_ellip_v if kind == "outer" else 0.0,
            self.rmax_ellip_v if kind == "outer" else 0.0,
            self.elong_a if kind == "outer" else 1.0,
            self.theta_a if kind == "outer" else 0.0,
            self.sky_asym if have_sky else 0.0,
            self.sky_sigma**2 if self.sky_sigma is not None else 0.0,
            have_sky,
        )
        self._replay(code)
        return value

    def _replay(self, code: int) -> None:
        """Turn the warning codes of a compiled asymmetry call into messages / exceptions."""
        if not code:
            return
        for bit, (msg, flag) in _asym.MESSAGES.items():
            if code & bit:
                self.st.warn(msg, flag)
        for bit, text in _asym.ERRORS.items():
            if code & bit:
                raise (ValueError if bit == _asym.CODE_NONFINITE else _Invalid)(text)

    # ----------------------------------------------------------------- skybox
    def skybox(self):
        segmap, mask, (y0, y1, x0, x1) = self._full
        bi, bj, size = _stamp.skybox(
            segmap,
            _NO_MASK if mask is None else mask,
            mask is not None,
            y0,
            y1,
            x0,
            x1,
            SKYBOX,
        )
        if size == 0:
            self.st.warn("[skybox] Skybox not found.", 2)
            return None
        return (slice(bi, bi + size), slice(bj, bj + size))


def morphology_one(
    image: np.ndarray,
    segmap: np.ndarray,
    label: int,
    bbox: tuple[slice, slice],
    *,
    mask: np.ndarray | None = None,
    weightmap: np.ndarray | None = None,
    gain: float | None = None,
    n_sigma_outlier: float = 10.0,
) -> tuple[dict, MorphologyState, _Source | None]:
    """statmorph's non-parametric quantities of one source.

    Parameters
    ----------
    image, segmap, mask, weightmap : ndarray
        Full images (never modified); ``bbox`` is the segment's bounding box.
    gain : float, optional
        Used with the sky noise to build the weight map when ``weightmap`` is None (as in
        statmorph); with neither, the weight map is the sky noise alone.
    n_sigma_outlier : float
        Pixels deviating from the mean of their 8 neighbours by more than this many standard
        deviations are masked (Lotz et al. 2004); <= 0 keeps every pixel.

    Returns
    -------
    values : dict
        :data:`QUANTITIES` (NaN where not computable), in full-image pixel coordinates.
    state : MorphologyState
        ``flag`` on statmorph's 0/1/2/4 scale and warning messages.
    source : object or None
        Internal state reused by the Sersic fit (stamp, weights, initial guess).

    Notes
    -----
    Time is dominated by the asymmetry-centre minimisation (Nelder-Mead, as statmorph) and
    the multimode threshold search; each step costs O(aperture area) instead of O(stamp).
    """
    values = dict.fromkeys(QUANTITIES, np.nan)
    s = _Source(image, segmap, label, mask, weightmap, gain, bbox, n_sigma_outlier)
    st = s.st
    if not s.total_flux > 0:
        st.warn("Total flux is nonpositive. Returning empty object.", 4)
        return values, st, None
    xmin, ymin = s.xmin, s.ymin
    xc, yc = s.centroid()
    values["xc_centroid"], values["yc_centroid"] = xc + xmin, yc + ymin
    if s.cut[int(yc), int(xc)] == 0:
        st.warn("Centroid is masked.", 2)
    xmax, ymax = s.xmax_pix, s.ymax_pix

    def guard(fn, *names):
        try:
            return fn()
        except _Invalid as exc:
            st.warn(str(exc), 2)
        except (ValueError, RuntimeError, FloatingPointError, IndexError, ZeroDivisionError) as exc:
            st.warn(f"{names[0] if names else 'measurement'} failed: {exc}", 2)
        return None

    cov = guard(lambda: _covariance(s.cut_nobg, xc, yc, st), "ellipticity_centroid")
    if cov is not None:
        e, el, th = _shape(cov)
        values.update(ellipticity_centroid=e, elongation_centroid=el, orientation_centroid=th)

    # sky
    box = s.skybox()
    s.sky_sigma = s.sky_asym = s.sky_smooth_box = None
    if box is not None:
        side = box[0].stop - box[0].start
        mean, median, std, asym = _stamp.sky_stats(s.cut, box[0].start, box[1].start, side)
        values["sky_mean"] = float(mean)
        values["sky_median"] = float(median)
        values["sky_sigma"] = float(std)
        s.sky_sigma = values["sky_sigma"]
        s.sky_asym = float(asym)
    s.box = box

    # weight map
    if s.wm_in is not None:
        wmap = s.wm_in.copy()
    else:
        sky = s.sky_sigma if s.sky_sigma is not None else -99.0
        g = gain if gain is not None and gain > 0 else np.inf
        wmap = np.sqrt(np.abs(s.img_raw) / g + sky**2)
    wmap[s.mask] = 0.0
    s.wmap = wmap

    # Petrosian radius about the centroid, then the asymmetry centre
    s.rpetro_centroid = guard(lambda: s.rpetro_circ((xc, yc)), "rpetro_circ")
    if s.rpetro_centroid is None:
        st.warn("Petrosian radius undefined.", 4)
        return values, st, None
    have_sky = s.sky_asym is not None
    xa, ya, codes, events, _ = _asym.asymmetry_center(
        s.cut,
        s.mask,
        s.any_mask,
        float(xc),
        float(yc),
        float(xmax),
        float(ymax),
        float(s.rpetro_centroid),
        s.sky_asym if have_sky else 0.0,
        have_sky,
        XTOL_CENTER,
    )
    for code in events:  # statmorph's warnings, in the order the search met them
        msg, flag = _asym.MESSAGES[int(code)]
        st.warn(msg, flag)
    if codes & _asym.CODE_NONFINITE:
        raise ValueError(_asym.ERRORS[_asym.CODE_NONFINITE])
    ca = np.array([xa, ya])
    iy, ix = int(ca[1]), int(ca[0])
    if not (0 <= iy < s.ny and 0 <= ix < s.nx) or s.cut[iy, ix] == 0:
        st.warn("[asym_center] Asymmetry center is masked.", 2)
    s.ca = ca
    values["xc_asymmetry"], values["yc_asymmetry"] = ca[0] + xmin, ca[1] + ymin
    cova = guard(lambda: _covariance(s.cut_nobg, ca[0], ca[1], st), "ellipticity_asymmetry")
    if cova is None:
        st.warn("Second moments undefined.", 4)
        return values, st, None
    e, el, th = _shape(cova)
    s.elong_a, s.theta_a, s.ellip_a = el, th, e
    values.update(ellipticity_asymmetry=e, elongation_asymmetry=el, orientation_asymmetry=th)

    rp = guard(lambda: s.rpetro_circ(ca), "rpetro_circ")
    values["rpetro_circ"] = rp
    if rp is not None:
        values["flux_circ"] = abs(_radii.circle_sum(s.cut, ca[0], ca[1], EXTENT_FLUX * rp))
    rpe = guard(lambda: s.rpetro_ellip(ca, el, th), "rpetro_ellip")
    values["rpetro_ellip"] = rpe
    if rpe is not None:
        a = EXTENT_FLUX * rpe
        values["flux_ellip"] = abs(_radii.ellipse_sum(s.cut, ca[0], ca[1], a, a / el, th))

    # Gini segmap, Gini, M20, S/N
    seg_gini = guard(lambda: _segmap_gini(s, rpe, xc, yc), "segmap_gini") if rpe else None
    s.seg_gini = seg_gini
    if seg_gini is not None:
        g = guard(lambda: _gini(s, seg_gini), "gini")
        m = guard(lambda: _m20(s, seg_gini), "m20")
        values["gini"], values["m20"] = g, m
        if g is not None and m is not None:
            values["gini_m20_bulge"] = -0.693 * m + 4.95 * g - 3.96
            values["gini_m20_merger"] = 0.139 * m + 0.990 * g - 0.327
        nsn, sn = _stamp.sn_per_pixel(s.cut, seg_gini, wmap)
        if nsn:
            values["sn_per_pixel"] = float(sn)
        else:
            st.warn("Invalid sn_per_pixel.", 2)

    # CAS
    if box is not None and rp is not None:
        bsize = int(PETRO_CAS * rp)
        side = box[0].stop - box[0].start
        s.sky_smooth = float(_stamp.sky_smoothness(s.cut, box[0].start, box[1].start, side, bsize))
    else:
        s.sky_smooth = None
    values["asymmetry"] = guard(lambda: s.asym_fn(ca, s.cut, "cas"), "asymmetry")
    values["rms_asymmetry2"] = guard(lambda: s.asym_fn(ca, s.cut, "rms"), "rms_asymmetry2")
    if rp is not None:
        for key, frac in (("r20", 0.2), ("r50", 0.5), ("r80", 0.8)):
            r = guard(lambda frac=frac: s.frac_circ(ca, EXTENT_CAS * rp, frac), key)
            if r is None or not np.isfinite(r) or r <= 0:
                st.warn("[CAS] Invalid radius_at_fraction_of_total.", 2)
                r = None
            values[key] = r
        if values["r20"] is not None and values["r80"] is not None:
            values["concentration"] = 5.0 * np.log10(values["r80"] / values["r20"])
        values["smoothness"] = guard(lambda: _smoothness(s, ca, rp), "smoothness")

    # MID
    if seg_gini is not None:
        mid = guard(lambda: _mid(s, seg_gini), "multimode")
        if mid is not None:
            values["multimode"], values["intensity"], values["deviation"] = mid[:3]
            s.seg_mid = mid[3]
    # shape asymmetry family
    if rpe is not None:
        seg_sa = guard(lambda: _segmap_shape_asym(s, ca, rpe), "shape_asymmetry")
        if seg_sa is not None:
            npix, rc, re = _stamp.rmax(
                seg_sa, float(ca[0]), float(ca[1]), float(np.cos(th)), float(np.sin(th)), float(el)
            )
            if npix == 0:
                raise ValueError(
                    "zero-size array to reduction operation maximum which has no identity"
                )
            rc, re = float(rc), float(re)
            if rc == 0:
                st.warn("[rmax_circ] rmax_circ = 0!", 2)
            if re == 0:
                st.warn("[rmax_ellip] rmax_ellip = 0!", 2)
            values["rmax_circ"], values["rmax_ellip"] = rc, re
            s.rmax_circ_v, s.rmax_ellip_v = rc, re
            values["rhalf_circ"] = (
                0.0 if rc == 0 else guard(lambda: s.frac_circ(ca, rc, 0.5), "rhalf_circ")
            )
            values["rhalf_ellip"] = (
                0.0 if re == 0 else guard(lambda: s.frac_ellip(ca, el, th, re, 0.5), "rhalf_ellip")
            )
            s.rhalf_ellip_v = values["rhalf_ellip"] if values["rhalf_ellip"] is not None else np.nan
            values["outer_asymmetry"] = guard(
                lambda: s.asym_fn(ca, s.cut, "outer"), "outer_asymmetry"
            )
            shape_img = seg_sa.astype(float)
            values["shape_asymmetry"] = guard(
                lambda: s.asym_fn(ca, shape_img, "shape"), "shape_asymmetry"
            )
    # final checks
    if values["sky_mean"] is not None and np.isfinite(values["sky_mean"]):
        if abs(values["sky_mean"]) > values["sky_sigma"]:
            st.warn("Image is not background-subtracted.", 2)
    if seg_gini is not None and getattr(s, "seg_mid", None) is not None:
        amax = max(int(seg_gini.sum()), int(s.seg_mid.sum()))
        if amax == 0:
            st.warn("Segmaps are empty!", 2)
        elif (seg_gini & s.seg_mid).sum() / amax < 0.25:
            st.warn("Gini and MID segmaps are quite different.", 1)
    for k, v in values.items():
        if v is None:
            values[k] = np.nan
        else:
            values[k] = float(v)
    return values, st, s


def _ellipse_annulus_sum(img, xc, yc, a_in, a_out, b_out, theta) -> float:
    """Exact sum over the elliptical annulus between semi-major axes ``a_in`` and ``a_out``
    (inner semi-minor axis ``b_out * a_in / a_out``, as photutils' ``EllipticalAnnulus``)."""
    args = (float(xc), float(yc))
    outer = _radii.ellipse_sum(img, *args, float(a_out), float(b_out), float(theta))
    inner = _radii.ellipse_sum(img, *args, float(a_in), float(b_out * a_in / a_out), float(theta))
    return outer - inner


def _segmap_gini(s: _Source, rpe, xc, yc):
    st = s.st
    sm = ndi.gaussian_filter(s.cut, PETRO_GINI * rpe, mode="constant", cval=0.0)
    a_in, a_out = rpe - 0.5 * ANNULUS, rpe + 0.5 * ANNULUS
    b_out = a_out / s.elong_a
    b_in = b_out * a_in / a_out
    tot = _ellipse_annulus_sum(sm, xc, yc, a_in, a_out, b_out, s.theta_a)
    area = np.pi * (a_out * b_out - a_in * b_in)
    seg, code = _stamp.gini_segmap(np.ascontiguousarray(sm), float(tot / area))
    if code == _stamp.GINI_EMPTY:
        st.warn("[segmap_gini] Empty Gini segmap!", 2)
    elif code == _stamp.GINI_FULL:
        st.warn("[segmap_gini] Full Gini segmap!", 2)
    elif code != _stamp.GINI_SINGLE:
        st.flag = max(st.flag, 1)
        if code == _stamp.GINI_OUTSIDE:
            raise _Invalid("[segmap_gini] brightest smoothed pixel outside the Gini segmap")
    return seg


def _gini(s: _Source, seg):
    n, total, weighted = _stamp.gini(s.cut, seg)
    if n <= 1 or total == 0:
        raise _Invalid("[gini] Not enough data for Gini calculation.")
    return float(weighted / (float(n - 1) * total))


def _m20(s: _Source, seg):
    if not seg.any():  # np.sum(seg) == 0
        raise _Invalid("[m20] empty Gini segmap")
    img = np.where(seg, s.cut, 0.0)
    m00, mx, my = _moments(img)
    if m00 <= 0:
        raise _Invalid("[m20] Nonpositive flux within Gini segmap.")
    xc, yc = mx / m00, my / m00
    mtot, m20v, found = _stamp.m20_sums(img, seg, float(xc), float(yc))
    if not found:
        raise _Invalid("[m20] Not enough data for M20 calculation.")
    mtot, m20v = float(mtot), float(m20v)
    if m20v <= 0 or mtot <= 0:
        raise _Invalid("[m20] Negative second moment(s).")
    return float(np.log10(m20v / mtot))


def _smoothness(s: _Source, ca, rp):
    r_in, r_out = PETRO_CAS * rp, EXTENT_CAS * rp
    bsize = int(PETRO_CAS * rp)  # 0 leaves the image unchanged (as in statmorph)
    d = _stamp.smooth_residual(s.cut, bsize)
    x, y = float(ca[0]), float(ca[1])
    flux = _radii.circle_sum(s.cut, x, y, r_out) - _radii.circle_sum(s.cut, x, y, r_in)
    diff = _radii.circle_sum(d, x, y, r_out) - _radii.circle_sum(d, x, y, r_in)
    if flux <= 0:
        raise _Invalid("[smoothness] Nonpositive total flux.")
    if s.sky_smooth is None:
        out = diff / flux
    else:
        out = (diff - np.pi * (r_out**2 - r_in**2) * s.sky_smooth) / flux
    if not np.isfinite(out):
        raise _Invalid("Invalid smoothness.")
    return out


def _mid(s: _Source, seg_gini):
    st = s.st
    status, nzero, added, seg_mid, nonneg, _, q = _stamp.mid_segmap(
        s.cut_nobg, s.mask_nobg, s.ymax_pix, s.xmax_pix, s.seg_box_arr, ETA
    )
    for _ in range(nzero):
        st.warn("[segmap_mid] Zero flux sum.", 2)
    if status == -1:
        seg_mid = seg_gini
    elif status != _roots.CONVERGED:  # the root search failed: scipy's exception
        raise (RuntimeError if status == _roots.CONVERR else ValueError)(
            _roots.error_message(status, q)
        )
    elif added:
        st.warn("[segmap_mid] Adding brightest pixel to segmap.", 2)
    seg_mid = np.ascontiguousarray(seg_mid, dtype=bool)
    cut_mid, sorted_mid, mb, invalid = _stamp.mid_cut(nonneg, seg_mid, s.mask_nobg)
    if mb[1] == 0:  # an empty segmap: the error of numpy's ys.min() in statmorph's code
        raise ValueError("zero-size array to reduction operation minimum which has no identity")
    # multimode: bounding box of the MID segmap (pixels outside are 0 there)
    msub = cut_mid[mb[0] : mb[1], mb[2] : mb[3]]
    multimode, single = _mid_kernels.multimode(msub, sorted_mid, cut_mid.size, float(invalid))
    if single:
        st.warn("[M statistic] Single clump!")
    intensity, deviation, msg = _mid_kernels.intensity_deviation(cut_mid, seg_mid)
    if msg:
        st.warn(msg, 2)
    return multimode, intensity, deviation, seg_mid


def _segmap_shape_asym(s: _Source, ca, rpe):
    st = s.st
    r_in, r_out = EXTENT_FLUX * rpe, 2.0 * EXTENT_FLUX * rpe
    vals = _stamp.shape_annulus_values(
        s.cut, s.mask, float(ca[0]), float(ca[1]), float(r_in), float(r_out)
    )
    if vals.size < SKYBOX**2:  # the sky box instead
        if s.box is None:
            st.warn("[shape_asym] Asymmetry segmap undefined.", 2)
            return ~s.mask_nobg
        vals = s.cut[s.box]
    mean, median, std = mode_clipped_stats(vals, sigma=3.0)
    thr = 2.5 * median - 1.5 * mean + std
    seg, added = _stamp.shape_segmap(s.cut, float(thr))
    if added:
        st.warn("[shape_asym] Adding brightest pixel to segmap.", 2)
    return seg


def sersic_start(s: _Source, values: dict):
    """statmorph's Sersic starting point and fit inputs for a measured source.

    Returns ``(image, weights, start, flag_sersic, messages)``; ``start`` in stamp coordinates
    (:data:`morphoscope.measure.sersic.PARAMS` order); ``None`` for the arrays when the fit
    cannot be set up.
    """
    msgs: list[str] = []
    flag = 0
    conc = values["concentration"]
    n0 = 10.0**-1.5 * conc**3.5 if np.isfinite(conc) else 1.0
    n0 = min(max(n0, 1.0), 3.5)
    reff = values["rhalf_ellip"]
    x0 = values["xc_asymmetry"] - s.xmin
    y0 = values["yc_asymmetry"] - s.ymin
    ellip = values["ellipticity_asymmetry"]
    theta = values["orientation_asymmetry"]
    if not all(np.isfinite(v) for v in (reff, x0, y0, ellip, theta)) or not reff > 0:
        return None, None, None, 4, ["[sersic] no valid starting point."]
    a_in, a_out = reff - 0.5 * ANNULUS, reff + 0.5 * ANNULUS
    if a_in < 0:
        msgs.append("[sersic] guess_r_eff < annulus_width.")
        flag = 2
        a_in = reff
    b_out = (1 - ellip) * a_out
    tot = _ellipse_annulus_sum(s.cut, x0, y0, a_in, a_out, b_out, theta)
    area = _ellipse_annulus_sum(s._omask, x0, y0, a_in, a_out, b_out, theta)
    amp = tot / area if area else 0.0
    if amp <= 0:
        msgs.append("[sersic] Nonpositive flux at r_e.")
        flag = 2
        amp = abs(amp)
    weights = np.zeros_like(s.cut)
    locs = (s.cut != 0) & (s.wmap != 0)
    weights[locs] = 1.0 / s.wmap[locs]
    if int(locs.sum()) - 7 <= 0:
        msgs.append("[sersic] Not enough data for fit.")
        return None, None, None, 2, msgs
    start = np.array([amp, reff, n0, x0, y0, ellip, theta])
    return s.cut, weights, start, flag, msgs
