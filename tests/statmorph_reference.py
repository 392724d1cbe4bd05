"""Pure-Python reference of the statmorph asymmetry function (the code that the compiled
:mod:`morphoscope.measure._asym` replaced), kept for the tests only.

Functions take the :class:`~morphoscope.measure.nonparametric._Source` as ``self``:
``asym_fn(s, c, image, kind)`` is the former ``s.asym_fn(c, image, kind)``.
:func:`python_radii` gives a source the former Python Petrosian and fraction-radius methods
(the code that :mod:`morphoscope.measure._radii` replaced).
"""

from __future__ import annotations

import numpy as np
import scipy.optimize as opt
from photutils_apertures import (
    circle_weights,
    ellipse_annulus_sum,
    ellipse_sum,
    ellipse_weights,
)

from morphoscope.measure.nonparametric import ANNULUS, ETA, EXTENT_CAS, _Invalid, _Source


def rotate_box(self, image, c, box):
    """Image rotated by 180 deg about c (bilinear, 0 outside), on box (y0, y1, x0, x1)."""
    y0, y1, x0, x1 = box
    tx, ty = 2.0 * c[0], 2.0 * c[1]
    kx, ky = int(np.floor(tx)), int(np.floor(ty))
    fx, fy = tx - kx, ty - ky
    # source rows ky - y (and +1) for y in [y0, y1): from ky - y1 + 1 to ky - y0 + 1
    ny, nx = image.shape
    r_lo, r_hi = ky - y1 + 1, ky - y0 + 2
    c_lo, c_hi = kx - x1 + 1, kx - x0 + 2
    sub = np.zeros((r_hi - r_lo, c_hi - c_lo))
    ry0, ry1 = max(r_lo, 0), min(r_hi, ny)
    rx0, rx1 = max(c_lo, 0), min(c_hi, nx)
    if ry1 > ry0 and rx1 > rx0:
        sub[ry0 - r_lo : ry1 - r_lo, rx0 - c_lo : rx1 - c_lo] = image[ry0:ry1, rx0:rx1]
    f = sub[::-1, ::-1]  # f[i, j] = image[ky+1 - (y0+i) ... ] arranged so:
    # f[i, j] corresponds to source row r_hi - 1 - i = ky + 1 - y0 - i, col kx + 1 - x0 - j
    # output (y0 + i) needs rows ky - y0 - i (=f[i+1]) and +1 (=f[i]).
    h, w = y1 - y0, x1 - x0
    a00 = f[1 : h + 1, 1 : w + 1]
    a01 = f[1 : h + 1, 0:w]
    a10 = f[0:h, 1 : w + 1]
    a11 = f[0:h, 0:w]
    return (1 - fy) * ((1 - fx) * a00 + fx * a01) + fy * ((1 - fx) * a10 + fx * a11)


def rotate_mask_box(self, mask, c, box):
    """Mask rotated by 180 deg about c (nearest pixel, False outside), on box."""
    if not self.any_mask:
        return np.zeros((box[1] - box[0], box[3] - box[2]), bool)
    y0, y1, x0, x1 = box
    tx, ty = 2.0 * c[0], 2.0 * c[1]
    kx, ky = int(np.floor(tx)), int(np.floor(ty))
    sx = kx + (1 if tx - kx >= 0.5 else 0)
    sy = ky + (1 if ty - ky >= 0.5 else 0)
    ny, nx = mask.shape
    r_lo, r_hi = sy - y1 + 1, sy - y0 + 1
    c_lo, c_hi = sx - x1 + 1, sx - x0 + 1
    sub = np.zeros((r_hi - r_lo, c_hi - c_lo), bool)
    ry0, ry1 = max(r_lo, 0), min(r_hi, ny)
    rx0, rx1 = max(c_lo, 0), min(c_hi, nx)
    if ry1 > ry0 and rx1 > rx0:
        sub[ry0 - r_lo : ry1 - r_lo, rx0 - c_lo : rx1 - c_lo] = mask[ry0:ry1, rx0:rx1]
    return sub[::-1, ::-1]


def asym_fn(self, c, image, kind):
    """statmorph's ``_asymmetry_function`` (kinds 'cas', 'rms', 'outer', 'shape')."""
    xc, yc = c
    if xc < 0 or xc >= self.nx or yc < 0 or yc >= self.ny:
        self.st.warn("[asym_center] Minimizer tried to exit bounds.", 1)
        return 100.0
    sh = image.shape
    if kind in ("cas", "rms"):
        sl, w = circle_weights(sh, xc, yc, EXTENT_CAS * self.rpetro_centroid)
    elif kind == "outer":
        a_in, a_out = self.rhalf_ellip_v, self.rmax_ellip_v
        if not (a_in > 0 and a_out > 0):
            raise _Invalid("[outer_asym] invalid rhalf_ellip or rmax_ellip")
        b_out = a_out / self.elong_a
        sl, w = ellipse_weights(sh, xc, yc, a_out, b_out, self.theta_a)
        sl_i, w_i = ellipse_weights(sh, xc, yc, a_in, a_in / self.elong_a, self.theta_a)
        if w_i.size:
            w = w.copy()
            oy, ox = sl_i[0].start - sl[0].start, sl_i[1].start - sl[1].start
            w[oy : oy + w_i.shape[0], ox : ox + w_i.shape[1]] -= w_i
    else:  # shape
        r = self.rmax_circ_v
        if not r > 0:
            self.st.warn("[shape_asym] Invalid rmax_circ value.", 2)
            raise _Invalid("[shape_asym] invalid rmax_circ")
        sl, w = circle_weights(sh, xc, yc, r)
    if w.size == 0:
        self.st.warn("[asymmetry_function] Zero flux sum.", 1)
        return 100.0
    box = (sl[0].start, sl[0].stop, sl[1].start, sl[1].stop)
    im = image[sl]
    rot = rotate_box(self, image, c, box)
    if self.any_mask:
        msym = self.mask[sl] | rotate_mask_box(self, self.mask, c, box)
        im = np.where(msym, 0.0, im)
        rot = np.where(msym, 0.0, rot)
        area = float(np.sum(w[~msym]))
    else:
        area = float(w.sum())
    abs_sum = float(np.sum(np.abs(im) * w))
    diff = rot - im
    abs_diff = float(np.sum(np.abs(diff) * w))
    if abs_sum == 0.0:
        self.st.warn("[asymmetry_function] Zero flux sum.", 1)
        return 100.0
    if kind == "shape":
        return abs_diff / abs_sum
    if kind == "rms":
        sq_sum = float(np.sum(im * im * w))
        sq_diff = float(np.sum(diff * diff * w))
        if self.sky_sigma is None:
            return sq_diff / sq_sum
        s2 = self.sky_sigma**2
        return (sq_diff - 2 * area * s2) / (sq_sum - area * s2)
    if self.sky_asym is None:
        return abs_diff / abs_sum
    return (abs_diff - area * self.sky_asym) / abs_sum


class _PythonRadii(_Source):
    """A source whose radius methods are the former pure-Python ones."""

    # -------------------------------------------------------------- petrosian
    def _ap_mean(self, sl, w):
        area = float(np.sum(self._omask[sl] * w))
        if not area:
            return 0.0
        return float(np.sum(self.cut[sl] * w)) / area

    def _petro_circ_fn(self, r, c):
        sh = self.cut.shape
        sl_o, w_o = circle_weights(sh, c[0], c[1], r + 0.5 * ANNULUS)
        sl_i, w_i = circle_weights(sh, c[0], c[1], r - 0.5 * ANNULUS)
        sl_a, w_a = circle_weights(sh, c[0], c[1], r)
        ann = self._ann_mean(sl_o, w_o, sl_i, w_i)
        ap = abs(self._ap_mean(sl_a, w_a))
        if ap == 0:
            self.st.warn("[rpetro_circ] Mean flux is zero.", 2)
            ratio = float(ann != 0)
        else:
            ratio = ann / ap
        return ratio - ETA

    def _ann_mean(self, sl_o, w_o, sl_i, w_i):
        so = float(np.sum(self.cut[sl_o] * w_o))
        ao = float(np.sum(self._omask[sl_o] * w_o))
        if w_i.size:
            so -= float(np.sum(self.cut[sl_i] * w_i))
            ao -= float(np.sum(self._omask[sl_i] * w_i))
        return abs(so / ao) if ao else 0.0

    def _petro_ellip_fn(self, a, c, elong, theta):
        ao, ai = a + 0.5 * ANNULUS, a - 0.5 * ANNULUS
        imgs = [self.cut, self._omask]
        s_ann, a_ann = ellipse_annulus_sum(imgs, c[0], c[1], ai, ao, ao / elong, theta)
        s_ap, a_ap = ellipse_sum(imgs, c[0], c[1], a, a / elong, theta)
        ann = abs(s_ann / a_ann) if a_ann else 0.0
        ap = abs(s_ap / a_ap) if a_ap else 0.0
        if ap == 0:
            self.st.warn("[rpetro_ellip] Mean flux is zero.", 2)
            ratio = float(ann != 0)
        else:
            ratio = ann / ap
        return ratio - ETA

    def _approx_petro(self, rho, grid):
        """Petrosian function on ``grid`` from pixel-centre sampling (for the coarse scan)."""
        order = np.argsort(rho, axis=None)
        rs = rho.ravel()[order]
        cf = np.concatenate([[0.0], np.cumsum(self.cut.ravel()[order])])
        ca = np.concatenate([[0.0], np.cumsum(self._omask.ravel()[order])])

        def upto(r):
            k = np.searchsorted(rs, r)
            return cf[k], ca[k]

        f_o, a_o = upto(grid + 0.5 * ANNULUS)
        f_i, a_i = upto(grid - 0.5 * ANNULUS)
        f_a, a_a = upto(grid)
        with np.errstate(invalid="ignore", divide="ignore"):
            ann = np.abs(np.where(a_o - a_i > 0, (f_o - f_i) / (a_o - a_i), 0.0))
            ap = np.abs(np.where(a_a > 0, f_a / a_a, 0.0))
            return np.where(ap > 0, ann / ap, 1.0) - ETA

    def _scan_root(self, fn, lo, hi, name, rho=None):
        """statmorph's bracket scan (100 steps) + brentq, skipping steps that are clearly
        before the root according to a pixel-centre estimate ``rho`` of the profile."""
        grid = np.linspace(lo, hi, 100)
        start = 0
        if rho is not None:
            approx = self._approx_petro(rho, grid)
            below = np.flatnonzero(approx < 0.15)
            start = max(int(below[0]) - 1, 0) if below.size else 99
        if start > 1 and not fn(grid[start - 1]) > 0:  # estimate too optimistic: full scan
            start = 0
        rmin = grid[start - 1] if start > 0 else None
        for r in grid[start:]:
            v = fn(r)
            if v == 0:
                return r
            if v > 0:
                rmin = r
            else:
                if rmin is None:
                    self.st.warn(f"{name} < annulus_width! Setting {name} = annulus_width.", 2)
                    return lo
                return opt.brentq(fn, rmin, r, xtol=1e-6)
        self.st.warn(f"[{name}] rpetro too large. Setting it to the stamp diagonal.", 2)
        return hi

    def _rho(self, c, elong=1.0, theta=0.0):
        yy, xx = np.mgrid[0 : self.ny, 0 : self.nx]
        dx, dy = xx - c[0], yy - c[1]
        if elong == 1.0:
            return np.hypot(dx, dy)
        xp = dx * np.cos(theta) + dy * np.sin(theta)
        yp = -dx * np.sin(theta) + dy * np.cos(theta)
        return np.sqrt(xp**2 + (yp * elong) ** 2)

    def rpetro_circ(self, c):
        return self._scan_root(
            lambda r: self._petro_circ_fn(r, c), ANNULUS, self.diag, "rpetro_circ", self._rho(c)
        )

    def rpetro_ellip(self, c, elong, theta):
        return self._scan_root(
            lambda a: self._petro_ellip_fn(a, c, elong, theta),
            ANNULUS,
            self.diag * elong,
            "rpetro_ellip",
            self._rho(c, elong, theta),
        )

    # ------------------------------------------------------- radius fractions
    def _frac_radius(self, sum_fn, r_total, fraction, name, rho):
        total = sum_fn(r_total)
        if total == 0:
            self.st.warn(f"[{name}] Total flux sum is zero.", 2)
            return r_total
        if total < 0:
            self.st.warn(f"[{name}] Total flux sum is negative.", 2)
            total = abs(total)

        def fn(r):
            if r == 0:
                return -fraction
            return abs(sum_fn(r)) / total - fraction

        grid = np.linspace(0.0, r_total, 100)
        # Skip the grid steps that a pixel-centre curve of growth puts clearly below the
        # target (same bracket as the full scan, fewer exact evaluations).
        order = np.argsort(rho, axis=None)
        cf = np.concatenate([[0.0], np.cumsum(self.cut.ravel()[order])])
        approx = np.abs(cf[np.searchsorted(rho.ravel()[order], grid)]) / total - fraction
        above = np.flatnonzero(approx > -0.05)
        start = max(int(above[0]) - 1, 0) if above.size else 0
        if start > 1 and not fn(grid[start - 1]) <= 0:  # estimate too optimistic: full scan
            start = 0
        rmin = grid[start - 1] if start > 0 else 0.0
        for r in grid[start:]:
            v = fn(r)
            if v <= 0:
                rmin = r
            else:
                return opt.brentq(fn, rmin, r, xtol=1e-6)
        raise _Invalid(f"[{name}] root not found within range")

    def frac_circ(self, c, r_total, fraction):
        sh = self.cut.shape

        def sum_fn(r):
            sl, w = circle_weights(sh, c[0], c[1], r)
            return float(np.sum(self.cut[sl] * w))

        return self._frac_radius(sum_fn, r_total, fraction, "r_circ", self._rho(c))

    def frac_ellip(self, c, elong, theta, a_total, fraction):
        return self._frac_radius(
            lambda a: float(ellipse_sum([self.cut], c[0], c[1], a, a / elong, theta)[0]),
            a_total,
            fraction,
            "r_ellip",
            self._rho(c, elong, theta),
        )


def python_radii(s: _Source) -> _Source:
    """Switch the source ``s`` (in place) to the Python radius methods; returns it."""
    s.__class__ = _PythonRadii
    return s
