"""Pure-Python reference of the statmorph asymmetry function (the code that the compiled
:mod:`morphoscope.measure._asym` replaced), kept for the tests only.

Functions take the :class:`~morphoscope.measure.nonparametric._Source` as ``self``:
``asym_fn(s, c, image, kind)`` is the former ``s.asym_fn(c, image, kind)``.
"""

from __future__ import annotations

import numpy as np

from morphoscope.measure.apertures import circle_weights, ellipse_weights
from morphoscope.measure.nonparametric import EXTENT_CAS, _Invalid


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
