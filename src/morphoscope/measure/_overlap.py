"""Compiled (numba) exact pixel-overlap fractions of circles and ellipses.

These are line-by-line ports of the Cython code behind ``photutils.geometry``
(``circular_overlap.pyx``, ``elliptical_overlap.pyx`` and ``core.pyx``, written by Thomas
Robitaille, BSD-3 licensed), which ``photutils.aperture`` uses with ``method='exact'``. They
give the same numbers (the same operations in the same order, so normally bit for bit) but
can be called from other compiled code: a root search over an aperture radius can then run
entirely in numba, without a Python call, an array allocation and a slice per step.

The grid functions keep photutils' shortcuts (pixels outside the bounding box of the bounding
circle are 0; for circles, pixels whose centre is well inside or well outside the circle are
1 or 0 without the exact computation). The ellipse grid, for which photutils has no such
shortcut, gets three that do not change any number: a pixel whose reprojected square is
separated from the unit circle by a margin of 1e-8 is given 0 directly (what the exact code
returns for it), rows and column ranges that only contain such pixels are skipped, and a
pixel whose four reprojected corners are inside the unit circle gets the area of its two
triangles directly (what the exact code computes for it, with the same vertex order). For
elongated ellipses most pixels of the bounding box are outside, and for large ones most
are inside.

Coordinates: 0-based pixel centres, x = column,
y = row, angles in radians counter-clockwise from +x. The kernels are compiled on first use
and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "area_arc",
    "area_triangle",
    "circle_box",
    "circle_box_weights",
    "circular_overlap_grid",
    "circular_overlap_single_exact",
    "ellipse_box",
    "ellipse_box_weights",
    "elliptical_overlap_grid",
    "elliptical_overlap_single_exact",
    "overlap_area_triangle_unit_circle",
]

_PI = np.pi
# Separation (in units of the ellipse's unit circle) beyond which a pixel is certainly outside.
_OUT_MARGIN = 1e-8


# ---------------------------------------------------------------------------------------------
# core.pyx
# ---------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _floor_sqrt(x):  # pragma: no cover - compiled
    if x > 0:
        return math.sqrt(x)
    return 0.0


@njit(cache=True, nogil=True)
def _distance(x1, y1, x2, y2):  # pragma: no cover - compiled
    return math.sqrt((x2 - x1) ** 2 + (y2 - y1) ** 2)


@njit(cache=True, nogil=True)
def area_arc(x1, y1, x2, y2, r):  # pragma: no cover - compiled
    """Area of the circular segment of radius ``r`` cut by the chord (x1, y1)-(x2, y2)."""
    a = _distance(x1, y1, x2, y2)
    theta = 2.0 * math.asin(0.5 * a / r)
    return 0.5 * r * r * (theta - math.sin(theta))


@njit(cache=True, nogil=True)
def area_triangle(x1, y1, x2, y2, x3, y3):  # pragma: no cover - compiled
    """Area of the triangle with vertices (x1, y1), (x2, y2), (x3, y3)."""
    return 0.5 * abs(x1 * (y2 - y3) + x2 * (y3 - y1) + x3 * (y1 - y2))


@njit(cache=True, nogil=True)
def _area_arc_unit(x1, y1, x2, y2):  # pragma: no cover - compiled
    a = _distance(x1, y1, x2, y2)
    theta = 2.0 * math.asin(0.5 * a)
    return 0.5 * (theta - math.sin(theta))


@njit(cache=True, nogil=True)
def _in_triangle(x, y, x1, y1, x2, y2, x3, y3):  # pragma: no cover - compiled
    c = 0
    if ((y1 > y) != (y2 > y)) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
        c += 1
    if ((y2 > y) != (y3 > y)) and x < (x3 - x2) * (y - y2) / (y3 - y2) + x2:
        c += 1
    if ((y3 > y) != (y1 > y)) and x < (x1 - x3) * (y - y3) / (y1 - y3) + x3:
        c += 1
    return c % 2 == 1


@njit(cache=True, nogil=True)
def _circle_line(x1, y1, x2, y2):  # pragma: no cover - compiled
    """Intersections (p1x, p1y, p2x, p2y) of a line with the unit circle; 2s when none."""
    tolerance = 1.0e-10
    dx = x2 - x1
    dy = y2 - y1
    if abs(dx) < tolerance and abs(dy) < tolerance:
        return 2.0, 2.0, 2.0, 2.0
    if abs(dx) > abs(dy):
        a = dy / dx
        b = y1 - a * x1
        delta = 1.0 + a * a - b * b
        if delta > 0.0:
            delta = math.sqrt(delta)
            p1x = (-a * b - delta) / (1.0 + a * a)
            p1y = a * p1x + b
            p2x = (-a * b + delta) / (1.0 + a * a)
            p2y = a * p2x + b
            return p1x, p1y, p2x, p2y
        return 2.0, 2.0, 2.0, 2.0
    a = dx / dy
    b = x1 - a * y1
    delta = 1.0 + a * a - b * b
    if delta > 0.0:
        delta = math.sqrt(delta)
        p1y = (-a * b - delta) / (1.0 + a * a)
        p1x = a * p1y + b
        p2y = (-a * b + delta) / (1.0 + a * a)
        p2x = a * p2y + b
        return p1x, p1y, p2x, p2y
    return 2.0, 2.0, 2.0, 2.0


@njit(cache=True, nogil=True)
def _circle_segment_single2(x1, y1, x2, y2):  # pragma: no cover - compiled
    """The intersection of a line with the unit circle closest to (x2, y2)."""
    p1x, p1y, p2x, p2y = _circle_line(x1, y1, x2, y2)
    dx1 = abs(p1x - x2)
    dy1 = abs(p1y - y2)
    dx2 = abs(p2x - x2)
    dy2 = abs(p2y - y2)
    if dx1 > dy1:
        if dx1 > dx2:
            return p2x, p2y
        return p1x, p1y
    if dy1 > dy2:
        return p2x, p2y
    return p1x, p1y


@njit(cache=True, nogil=True)
def _circle_segment(x1, y1, x2, y2):  # pragma: no cover - compiled
    """Intersections of a segment with the unit circle (2s for those not on the segment)."""
    p1x, p1y, p2x, p2y = _circle_line(x1, y1, x2, y2)
    if (
        (p1x > x1 and p1x > x2)
        or (p1x < x1 and p1x < x2)
        or (p1y > y1 and p1y > y2)
        or (p1y < y1 and p1y < y2)
    ):
        p1x, p1y = 2.0, 2.0
    if (
        (p2x > x1 and p2x > x2)
        or (p2x < x1 and p2x < x2)
        or (p2y > y1 and p2y > y2)
        or (p2y < y1 and p2y < y2)
    ):
        p2x, p2y = 2.0, 2.0
    if p1x > 1.0 and p2x < 2.0:
        return p1x, p1y, p2x, p2y
    return p2x, p2y, p1x, p1y


@njit(cache=True, nogil=True)
def _sort_vertices(x1, y1, x2, y2, x3, y3):  # pragma: no cover - compiled
    d1 = x1 * x1 + y1 * y1
    d2 = x2 * x2 + y2 * y2
    d3 = x3 * x3 + y3 * y3
    if d1 < d2:
        if d2 < d3:
            pass
        elif d1 < d3:
            x2, y2, d2, x3, y3, d3 = x3, y3, d3, x2, y2, d2
        else:
            x1, y1, d1, x2, y2, d2, x3, y3, d3 = x3, y3, d3, x1, y1, d1, x2, y2, d2
    else:
        if d1 < d3:
            x1, y1, d1, x2, y2, d2 = x2, y2, d2, x1, y1, d1
        elif d2 < d3:
            x1, y1, d1, x2, y2, d2, x3, y3, d3 = x2, y2, d2, x3, y3, d3, x1, y1, d1
        else:
            x1, y1, d1, x2, y2, d2, x3, y3, d3 = x3, y3, d3, x2, y2, d2, x1, y1, d1
    return x1, y1, d1, x2, y2, d2, x3, y3, d3


@njit(cache=True, nogil=True)
def _triangle_near(x1, y1, d1, x2, y2, d2, x3, y3, d3):  # pragma: no cover - compiled
    """``overlap_area_triangle_unit_circle`` for sorted vertices, all cases but the last.

    Returns ``(area, done)``; ``done`` is False when no vertex is inside or on the circle
    (the case that photutils splits into two triangles).
    """
    in1 = d1 < 1
    in2 = d2 < 1
    in3 = d3 < 1
    on1 = abs(d1 - 1) < 1.0e-10
    on2 = abs(d2 - 1) < 1.0e-10
    on3 = abs(d3 - 1) < 1.0e-10

    if on3 or in3:  # triangle is completely in circle
        return area_triangle(x1, y1, x2, y2, x3, y3), True
    if in2 or on2:
        intersect13 = (not on1) or x1 * (x3 - x1) + y1 * (y3 - y1) < 0.0
        intersect23 = (not on2) or x2 * (x3 - x2) + y2 * (y3 - y2) < 0.0
        if intersect13 and intersect23 and not on2:
            pt1x, pt1y = _circle_segment_single2(x1, y1, x3, y3)
            pt2x, pt2y = _circle_segment_single2(x2, y2, x3, y3)
            area = (
                area_triangle(x1, y1, x2, y2, pt1x, pt1y)
                + area_triangle(x2, y2, pt1x, pt1y, pt2x, pt2y)
                + _area_arc_unit(pt1x, pt1y, pt2x, pt2y)
            )
        elif intersect13:
            pt1x, pt1y = _circle_segment_single2(x1, y1, x3, y3)
            area = area_triangle(x1, y1, x2, y2, pt1x, pt1y) + _area_arc_unit(x2, y2, pt1x, pt1y)
        elif intersect23:
            pt2x, pt2y = _circle_segment_single2(x2, y2, x3, y3)
            area = area_triangle(x1, y1, x2, y2, pt2x, pt2y) + _area_arc_unit(x1, y1, pt2x, pt2y)
        else:
            area = _area_arc_unit(x1, y1, x2, y2)
        return area, True
    if on1:  # the triangle is outside the circle
        return 0.0, True
    if in1:
        pt1x, pt1y, pt2x, pt2y = _circle_segment(x2, y2, x3, y3)
        pt3x, pt3y = _circle_segment_single2(x1, y1, x2, y2)
        pt4x, pt4y = _circle_segment_single2(x1, y1, x3, y3)
        if pt1x > 1.0:  # no intersection of the far side
            if ((0.0 - pt3y) * (pt4x - pt3x) > (pt4y - pt3y) * (0.0 - pt3x)) != (
                (y1 - pt3y) * (pt4x - pt3x) > (pt4y - pt3y) * (x1 - pt3x)
            ):
                area = area_triangle(x1, y1, pt3x, pt3y, pt4x, pt4y) + (
                    _PI - _area_arc_unit(pt3x, pt3y, pt4x, pt4y)
                )
            else:
                area = area_triangle(x1, y1, pt3x, pt3y, pt4x, pt4y) + _area_arc_unit(
                    pt3x, pt3y, pt4x, pt4y
                )
        else:
            if (pt2x - x2) ** 2 + (pt2y - y2) ** 2 < (pt1x - x2) ** 2 + (pt1y - y2) ** 2:
                pt1x, pt1y, pt2x, pt2y = pt2x, pt2y, pt1x, pt1y
            area = (
                area_triangle(x1, y1, pt3x, pt3y, pt1x, pt1y)
                + area_triangle(x1, y1, pt1x, pt1y, pt2x, pt2y)
                + area_triangle(x1, y1, pt2x, pt2y, pt4x, pt4y)
                + _area_arc_unit(pt1x, pt1y, pt3x, pt3y)
                + _area_arc_unit(pt2x, pt2y, pt4x, pt4y)
            )
        return area, True
    return 0.0, False


@njit(cache=True, nogil=True)
def _triangle_level(x1, y1, x2, y2, x3, y3):  # pragma: no cover - compiled
    """Sort the vertices by distance from the origin and try the non-splitting cases.

    Returns ``(area, done, x1, y1, x2, y2, x3, y3)`` with the sorted vertices.
    """
    x1, y1, d1, x2, y2, d2, x3, y3, d3 = _sort_vertices(x1, y1, x2, y2, x3, y3)
    if d1 > d2 or d2 > d3 or d1 > d3:
        raise ValueError("ERROR: vertices did not sort correctly")
    area, done = _triangle_near(x1, y1, d1, x2, y2, d2, x3, y3, d3)
    return area, done, x1, y1, x2, y2, x3, y3


@njit(cache=True, nogil=True)
def _split(x1, y1, x2, y2, x3, y3):  # pragma: no cover - compiled
    """Sub-triangles of photutils' last case (sorted vertices all outside the circle).

    Returns ``(kind, xp, yp, ax, ay, bx, by, cx, cy)``: kind 0 = no side crosses the circle
    (area is pi if the origin is inside the triangle, else 0), kind 1 = area of
    (a, c, p) + (b, c, p).
    """
    pt1x, pt1y, pt2x, pt2y = _circle_segment(x1, y1, x2, y2)
    pt3x, pt3y, pt4x, pt4y = _circle_segment(x2, y2, x3, y3)
    pt5x, pt5y, pt6x, pt6y = _circle_segment(x3, y3, x1, y1)
    if pt1x <= 1.0:
        xp, yp = 0.5 * (pt1x + pt2x), 0.5 * (pt1y + pt2y)
        return 1, xp, yp, x1, y1, x2, y2, x3, y3
    if pt3x <= 1.0:
        xp, yp = 0.5 * (pt3x + pt4x), 0.5 * (pt3y + pt4y)
        return 1, xp, yp, x3, y3, x2, y2, x1, y1
    if pt5x <= 1.0:
        xp, yp = 0.5 * (pt5x + pt6x), 0.5 * (pt5y + pt6y)
        return 1, xp, yp, x1, y1, x3, y3, x2, y2
    return 0, 0.0, 0.0, x1, y1, x2, y2, x3, y3


@njit(cache=True, nogil=True)
def _overlap_tri_leaf(x1, y1, x2, y2, x3, y3):  # pragma: no cover - compiled
    """Third-level recursion of photutils (never reached in practice): split once more,
    counting sub-triangles that would need yet another split as 0."""
    area, done, x1, y1, x2, y2, x3, y3 = _triangle_level(x1, y1, x2, y2, x3, y3)
    if done:
        return area
    kind, xp, yp, ax, ay, bx, by, cx, cy = _split(x1, y1, x2, y2, x3, y3)
    if kind == 0:
        return _PI if _in_triangle(0.0, 0.0, x1, y1, x2, y2, x3, y3) else 0.0
    a1, _, _, _, _, _, _, _ = _triangle_level(ax, ay, cx, cy, xp, yp)
    a2, _, _, _, _, _, _, _ = _triangle_level(bx, by, cx, cy, xp, yp)
    return a1 + a2


@njit(cache=True, nogil=True)
def _overlap_tri_mid(x1, y1, x2, y2, x3, y3):  # pragma: no cover - compiled
    area, done, x1, y1, x2, y2, x3, y3 = _triangle_level(x1, y1, x2, y2, x3, y3)
    if done:
        return area
    kind, xp, yp, ax, ay, bx, by, cx, cy = _split(x1, y1, x2, y2, x3, y3)
    if kind == 0:
        return _PI if _in_triangle(0.0, 0.0, x1, y1, x2, y2, x3, y3) else 0.0
    return _overlap_tri_leaf(ax, ay, cx, cy, xp, yp) + _overlap_tri_leaf(bx, by, cx, cy, xp, yp)


@njit(cache=True, nogil=True)
def overlap_area_triangle_unit_circle(x1, y1, x2, y2, x3, y3):  # pragma: no cover - compiled
    """Area of overlap of the triangle (x1, y1), (x2, y2), (x3, y3) with the unit circle.

    Port of photutils' ``core.overlap_area_triangle_unit_circle``. Photutils recurses when
    all three vertices are outside the circle but a side crosses it; the sub-triangles then
    have a vertex inside the circle, so the recursion is unrolled here to fixed depth.
    """
    area, done, x1, y1, x2, y2, x3, y3 = _triangle_level(x1, y1, x2, y2, x3, y3)
    if done:
        return area
    kind, xp, yp, ax, ay, bx, by, cx, cy = _split(x1, y1, x2, y2, x3, y3)
    if kind == 0:
        return _PI if _in_triangle(0.0, 0.0, x1, y1, x2, y2, x3, y3) else 0.0
    return _overlap_tri_mid(ax, ay, cx, cy, xp, yp) + _overlap_tri_mid(bx, by, cx, cy, xp, yp)


# ---------------------------------------------------------------------------------------------
# circular_overlap.pyx
# ---------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _circular_overlap_core(xmin, ymin, xmax, ymax, r):  # pragma: no cover - compiled
    """Overlap of a rectangle with a circle at the origin, for 0 <= xmin, 0 <= ymin."""
    if xmin * xmin + ymin * ymin > r * r:
        return 0.0
    if xmax * xmax + ymax * ymax < r * r:
        return (xmax - xmin) * (ymax - ymin)
    d1 = _floor_sqrt(xmax * xmax + ymin * ymin)
    d2 = _floor_sqrt(xmin * xmin + ymax * ymax)
    if d1 < r and d2 < r:
        x1, y1 = _floor_sqrt(r * r - ymax * ymax), ymax
        x2, y2 = xmax, _floor_sqrt(r * r - xmax * xmax)
        return (
            (xmax - xmin) * (ymax - ymin)
            - area_triangle(x1, y1, x2, y2, xmax, ymax)
            + area_arc(x1, y1, x2, y2, r)
        )
    if d1 < r:
        x1, y1 = xmin, _floor_sqrt(r * r - xmin * xmin)
        x2, y2 = xmax, _floor_sqrt(r * r - xmax * xmax)
        return (
            area_arc(x1, y1, x2, y2, r)
            + area_triangle(x1, y1, x1, ymin, xmax, ymin)
            + area_triangle(x1, y1, x2, ymin, x2, y2)
        )
    if d2 < r:
        x1, y1 = _floor_sqrt(r * r - ymin * ymin), ymin
        x2, y2 = _floor_sqrt(r * r - ymax * ymax), ymax
        return (
            area_arc(x1, y1, x2, y2, r)
            + area_triangle(x1, y1, xmin, y1, xmin, ymax)
            + area_triangle(x1, y1, xmin, y2, x2, y2)
        )
    x1, y1 = _floor_sqrt(r * r - ymin * ymin), ymin
    x2, y2 = xmin, _floor_sqrt(r * r - xmin * xmin)
    return area_arc(x1, y1, x2, y2, r) + area_triangle(x1, y1, x2, y2, xmin, ymin)


@njit(cache=True, nogil=True)
def _circular_quadrant(xmin, ymin, xmax, ymax, r):  # pragma: no cover - compiled
    """The non-splitting cases of ``circular_overlap_single_exact`` (one quadrant)."""
    if 0.0 <= xmin:
        if 0.0 <= ymin:
            return _circular_overlap_core(xmin, ymin, xmax, ymax, r)
        return _circular_overlap_core(-ymax, xmin, -ymin, xmax, r)
    if 0.0 <= ymin:
        return _circular_overlap_core(-xmax, ymin, -xmin, ymax, r)
    return _circular_overlap_core(-xmax, -ymax, -xmin, -ymin, r)


@njit(cache=True, nogil=True)
def circular_overlap_single_exact(xmin, ymin, xmax, ymax, r):  # pragma: no cover - compiled
    """Exact area of overlap of the rectangle [xmin, xmax] x [ymin, ymax] with the circle
    of radius ``r`` centred on the origin (photutils' recursion over quadrants, unrolled)."""
    if 0.0 <= xmin:
        if 0.0 <= ymin or 0.0 >= ymax:
            return _circular_quadrant(xmin, ymin, xmax, ymax, r)
        return _circular_quadrant(xmin, ymin, xmax, 0.0, r) + _circular_quadrant(
            xmin, 0.0, xmax, ymax, r
        )
    if 0.0 >= xmax:
        if 0.0 <= ymin or 0.0 >= ymax:
            return _circular_quadrant(xmin, ymin, xmax, ymax, r)
        return _circular_quadrant(xmin, ymin, xmax, 0.0, r) + _circular_quadrant(
            xmin, 0.0, xmax, ymax, r
        )
    if 0.0 <= ymin or 0.0 >= ymax:
        return _circular_quadrant(xmin, ymin, 0.0, ymax, r) + _circular_quadrant(
            0.0, ymin, xmax, ymax, r
        )
    return (
        _circular_quadrant(xmin, ymin, 0.0, 0.0, r)
        + _circular_quadrant(0.0, ymin, xmax, 0.0, r)
        + _circular_quadrant(xmin, 0.0, 0.0, ymax, r)
        + _circular_quadrant(0.0, 0.0, xmax, ymax, r)
    )


@njit(cache=True, nogil=True, inline="always")
def _circle_pixel(
    frac, j, i, xmin, dx, pymin, pycen, pymax, r, prad, bxmin, bxmax, norm
):  # pragma: no cover
    """photutils' decision and value for pixel (j, i) (left at 0 when outside)."""
    pxmin = xmin + i * dx
    pxcen = pxmin + dx * 0.5
    pxmax = pxmin + dx
    if pxmax > bxmin and pxmin < bxmax:
        d = math.sqrt(pxcen * pxcen + pycen * pycen)
        if d < r - prad:
            frac[j, i] = 1.0
        elif d < r + prad:
            frac[j, i] = circular_overlap_single_exact(pxmin, pymin, pxmax, pymax, r) / norm


@njit(cache=True, nogil=True)
def _circular_fill(frac, xmin, xmax, ymin, ymax, r):  # pragma: no cover - compiled
    ny, nx = frac.shape
    dx = (xmax - xmin) / nx
    dy = (ymax - ymin) / ny
    pixel_radius = 0.5 * math.sqrt(dx * dx + dy * dy)
    bxmin = -r - 0.5 * dx
    bxmax = +r + 0.5 * dx
    bymin = -r - 0.5 * dy
    bymax = +r + 0.5 * dy
    norm = dx * dy
    # Per row, the columns whose centre is certainly farther than r + pixel_radius (0) or
    # certainly nearer than r - pixel_radius (1) are found from the row's chord, with a
    # margin of one column and eps; only the others go through photutils' per-pixel test.
    eps = 1e-9 * (r + pixel_radius + 1.0)
    r_out = r + pixel_radius
    r_in = r - pixel_radius
    for j in range(ny):
        pymin = ymin + j * dy
        pycen = pymin + dy * 0.5
        pymax = pymin + dy
        if not (pymax > bymin and pymin < bymax):
            continue
        ay = abs(pycen)
        if not (ay < r_out + eps and dx > 0):  # whole row outside, or odd input: generic loop
            if ay >= r_out + eps:
                continue
            for i in range(nx):
                _circle_pixel(
                    frac, j, i, xmin, dx, pymin, pycen, pymax, r, pixel_radius, bxmin, bxmax, norm
                )
            continue
        half = math.sqrt(max(r_out * r_out - ay * ay, 0.0)) + eps
        i0 = max(math.floor((-half - xmin) / dx - 0.5) - 1, 0)
        i1 = min(math.ceil((half - xmin) / dx - 0.5) + 2, nx)
        k0, k1 = i0, i0  # columns certainly inside: [k0, k1)
        if r_in > ay + eps:
            inner = math.sqrt(r_in * r_in - ay * ay) - eps
            k0 = max(math.ceil((-inner - xmin) / dx - 0.5) + 1, i0)
            k1 = min(math.floor((inner - xmin) / dx - 0.5), i1)
            if k1 < k0:
                k0, k1 = i0, i0
        for i in range(i0, k0):
            _circle_pixel(
                frac, j, i, xmin, dx, pymin, pycen, pymax, r, pixel_radius, bxmin, bxmax, norm
            )
        for i in range(k0, k1):
            frac[j, i] = 1.0
        for i in range(k1, i1):
            _circle_pixel(
                frac, j, i, xmin, dx, pymin, pycen, pymax, r, pixel_radius, bxmin, bxmax, norm
            )


@njit(cache=True, nogil=True)
def circular_overlap_grid(xmin, xmax, ymin, ymax, nx, ny, r):  # pragma: no cover - compiled
    """Exact overlap fractions of a circle centred on the origin with a pixel grid.

    Same as ``photutils.geometry.circular_overlap_grid(xmin, xmax, ymin, ymax, nx, ny, r,
    use_exact=1, subpixels=1)``.

    Parameters
    ----------
    xmin, xmax, ymin, ymax : float
        Extent of the grid (pixel edges) relative to the circle's centre.
    nx, ny : int
        Grid dimensions.
    r : float
        Radius of the circle.

    Returns
    -------
    ndarray of shape (ny, nx), float64
        Fraction of each pixel covered by the circle.
    """
    frac = np.zeros((ny, nx), np.float64)
    _circular_fill(frac, float(xmin), float(xmax), float(ymin), float(ymax), float(r))
    return frac


# ---------------------------------------------------------------------------------------------
# elliptical_overlap.pyx
# ---------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def elliptical_overlap_single_exact(xmin, ymin, xmax, ymax, rx, ry, theta):  # pragma: no cover
    """Exact area of overlap of the rectangle [xmin, xmax] x [ymin, ymax] with the ellipse
    of semi-axes ``rx``, ``ry`` at angle ``theta`` centred on the origin."""
    cos_m_theta = math.cos(-theta)
    sin_m_theta = math.sin(-theta)
    return _ellipse_pixel(xmin, ymin, xmax, ymax, rx, ry, cos_m_theta, sin_m_theta)


@njit(cache=True, nogil=True)
def _ellipse_pixel(xmin, ymin, xmax, ymax, rx, ry, cos_m_theta, sin_m_theta):  # pragma: no cover
    scale = rx * ry
    x1 = (xmin * cos_m_theta - ymin * sin_m_theta) / rx
    y1 = (xmin * sin_m_theta + ymin * cos_m_theta) / ry
    x2 = (xmax * cos_m_theta - ymin * sin_m_theta) / rx
    y2 = (xmax * sin_m_theta + ymin * cos_m_theta) / ry
    x3 = (xmax * cos_m_theta - ymax * sin_m_theta) / rx
    y3 = (xmax * sin_m_theta + ymax * cos_m_theta) / ry
    x4 = (xmin * cos_m_theta - ymax * sin_m_theta) / rx
    y4 = (xmin * sin_m_theta + ymax * cos_m_theta) / ry
    return (
        overlap_area_triangle_unit_circle(x1, y1, x2, y2, x3, y3)
        + overlap_area_triangle_unit_circle(x1, y1, x4, y4, x3, y3)
    ) * scale


@njit(cache=True, nogil=True, inline="always")
def _inside_triangle_area(x1, y1, x2, y2, x3, y3):  # pragma: no cover - compiled
    """``overlap_area_triangle_unit_circle`` for a triangle whose vertices are all inside
    the unit circle: the triangle's area with photutils' vertex order (sorted by distance
    from the origin), which fixes the rounding."""
    x1, y1, _, x2, y2, _, x3, y3, _ = _sort_vertices(x1, y1, x2, y2, x3, y3)
    return area_triangle(x1, y1, x2, y2, x3, y3)


@njit(cache=True, nogil=True)
def _ellipse_fill(frac, xmin, xmax, ymin, ymax, rx, ry, theta):  # pragma: no cover - compiled
    ny, nx = frac.shape
    dx = (xmax - xmin) / nx
    dy = (ymax - ymin) / ny
    norm = 1.0 / (dx * dy)
    scale = rx * ry
    r = max(rx, ry)
    bxmin = -r - 0.5 * dx
    bxmax = +r + 0.5 * dx
    bymin = -r - 0.5 * dy
    bymax = +r + 0.5 * dy
    cos_m_theta = math.cos(-theta)
    sin_m_theta = math.sin(-theta)
    # Quick rejection (separating axis test in the frame where the ellipse is the unit
    # circle): the pixel is the parallelogram c + s e1 + t e2 (|s|, |t| <= 1).
    e1x = 0.5 * dx * cos_m_theta / rx
    e1y = 0.5 * dx * sin_m_theta / ry
    e2x = -0.5 * dy * sin_m_theta / rx
    e2y = 0.5 * dy * cos_m_theta / ry
    l1 = math.sqrt(e1x * e1x + e1y * e1y)
    l2 = math.sqrt(e2x * e2x + e2y * e2y)
    n1x, n1y = -e1y / l1, e1x / l1  # unit normal to e1
    n2x, n2y = -e2y / l2, e2x / l2
    h1 = abs(e2x * n1x + e2y * n1y)  # half-width of the pixel along n1
    h2 = abs(e1x * n2x + e1y * n2y)
    lim = 1.0 + _OUT_MARGIN
    # Along a row the pixel centre moves by 2 e1 per pixel: the test along n1 (normal to
    # e1) is the same for the whole row and the test along n2 bounds the columns. Both are
    # taken with a slightly larger margin, so that only pixels the per-pixel test would
    # reject are skipped.
    b2 = 2.0 * (e1x * n2x + e1y * n2y)
    # reprojected corners of the pixels of a row (photutils' x1, y1, ..., x4, y4),
    # computed row by row in a loop the compiler can vectorise
    u = np.empty((8, nx), np.float64)
    for j in range(ny):
        pymin = ymin + j * dy
        pymax = pymin + dy
        if not (pymax > bymin and pymin < bymax):
            continue
        pyc = pymin + 0.5 * dy
        px0 = xmin + 0.5 * dx
        ax = (px0 * cos_m_theta - pyc * sin_m_theta) / rx
        ay = (px0 * sin_m_theta + pyc * cos_m_theta) / ry
        a1 = ax * n1x + ay * n1y
        if abs(a1) - h1 > lim + 1e-9 * (1.0 + abs(a1)):
            continue
        a2 = ax * n2x + ay * n2y
        i0, i1 = 0, nx
        if b2 != 0.0:
            span = h2 + lim + 1e-9 * (1.0 + abs(a2) + abs(b2) * nx)
            t0 = (-span - a2) / b2
            t1 = (span - a2) / b2
            if t0 > t1:
                t0, t1 = t1, t0
            if t0 == t0 and t1 == t1:  # not NaN
                i0 = max(i0, math.floor(max(t0, -1.0)) - 1)
                i1 = min(i1, math.ceil(min(t1, nx + 1.0)) + 2)
        bs = pymin * sin_m_theta
        bc = pymin * cos_m_theta
        ts = pymax * sin_m_theta
        tc = pymax * cos_m_theta
        for i in range(i0, i1):
            pxmin = xmin + i * dx
            pxmax = pxmin + dx
            u[0, i] = (pxmin * cos_m_theta - bs) / rx
            u[1, i] = (pxmin * sin_m_theta + bc) / ry
            u[2, i] = (pxmax * cos_m_theta - bs) / rx
            u[3, i] = (pxmax * sin_m_theta + bc) / ry
            u[4, i] = (pxmax * cos_m_theta - ts) / rx
            u[5, i] = (pxmax * sin_m_theta + tc) / ry
            u[6, i] = (pxmin * cos_m_theta - ts) / rx
            u[7, i] = (pxmin * sin_m_theta + tc) / ry
        for i in range(i0, i1):
            pxmin = xmin + i * dx
            pxmax = pxmin + dx
            if not (pxmax > bxmin and pxmin < bxmax):
                continue
            x1, y1, x2, y2 = u[0, i], u[1, i], u[2, i], u[3, i]
            x3, y3, x4, y4 = u[4, i], u[5, i], u[6, i], u[7, i]
            cx = 0.5 * (x1 + x3)  # pixel centre (only for the rejection test)
            cy = 0.5 * (y1 + y3)
            if abs(cx * n1x + cy * n1y) - h1 > lim or abs(cx * n2x + cy * n2y) - h2 > lim:
                continue
            dc = math.sqrt(cx * cx + cy * cy)
            if dc > 0.0:
                ux, uy = cx / dc, cy / dc
                if dc - abs(e1x * ux + e1y * uy) - abs(e2x * ux + e2y * uy) > lim:
                    continue
            if (
                max(
                    max(x1 * x1 + y1 * y1, x2 * x2 + y2 * y2),
                    max(x3 * x3 + y3 * y3, x4 * x4 + y4 * y4),
                )
                < 1.0
            ):
                # all corners inside: the triangles are inside the circle
                area = _inside_triangle_area(x1, y1, x2, y2, x3, y3) + _inside_triangle_area(
                    x1, y1, x4, y4, x3, y3
                )
            else:
                area = overlap_area_triangle_unit_circle(
                    x1, y1, x2, y2, x3, y3
                ) + overlap_area_triangle_unit_circle(x1, y1, x4, y4, x3, y3)
            frac[j, i] = area * scale * norm


@njit(cache=True, nogil=True)
def elliptical_overlap_grid(xmin, xmax, ymin, ymax, nx, ny, rx, ry, theta):  # pragma: no cover
    """Exact overlap fractions of an ellipse centred on the origin with a pixel grid.

    Same as ``photutils.geometry.elliptical_overlap_grid(xmin, xmax, ymin, ymax, nx, ny, rx,
    ry, theta, use_exact=1, subpixels=1)``.

    Parameters
    ----------
    xmin, xmax, ymin, ymax : float
        Extent of the grid (pixel edges) relative to the ellipse's centre.
    nx, ny : int
        Grid dimensions.
    rx, ry : float
        Semi-axes of the ellipse along its own x and y axes.
    theta : float
        Angle of the ``rx`` axis, radians counter-clockwise from +x.

    Returns
    -------
    ndarray of shape (ny, nx), float64
        Fraction of each pixel covered by the ellipse.
    """
    frac = np.zeros((ny, nx), np.float64)
    _ellipse_fill(
        frac,
        float(xmin),
        float(xmax),
        float(ymin),
        float(ymax),
        float(rx),
        float(ry),
        float(theta),
    )
    return frac


# ---------------------------------------------------------------------------------------------
# Bounding boxes on an image (the aperture's box, clipped to the image)
# ---------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _box(ny_img, nx_img, xc, yc, rx, ry):  # pragma: no cover - compiled
    x0 = max(math.floor(xc - rx - 0.5), 0)
    x1 = min(math.ceil(xc + rx + 0.5) + 1, nx_img)
    y0 = max(math.floor(yc - ry - 0.5), 0)
    y1 = min(math.ceil(yc + ry + 0.5) + 1, ny_img)
    return y0, y1, x0, x1


@njit(cache=True, nogil=True)
def circle_box(ny_img, nx_img, xc, yc, r):  # pragma: no cover - compiled
    """Clipped bounding box ``(y0, y1, x0, x1)`` of a circle's exact weights.

    ``(0, 0, 0, 0)`` when ``r <= 0`` (or NaN) or the circle misses the image.
    """
    if not r > 0:
        return 0, 0, 0, 0
    y0, y1, x0, x1 = _box(ny_img, nx_img, xc, yc, r, r)
    if y1 <= y0 or x1 <= x0:
        return 0, 0, 0, 0
    return y0, y1, x0, x1


@njit(cache=True, nogil=True)
def ellipse_box(ny_img, nx_img, xc, yc, a, b):  # pragma: no cover - compiled
    """Clipped bounding box ``(y0, y1, x0, x1)`` of an ellipse's exact weights.

    ``(0, 0, 0, 0)`` unless ``a > 0`` and ``b > 0``, or when the ellipse misses the image.
    """
    if not (a > 0 and b > 0):
        return 0, 0, 0, 0
    m = max(a, b)
    y0, y1, x0, x1 = _box(ny_img, nx_img, xc, yc, m, m)
    if y1 <= y0 or x1 <= x0:
        return 0, 0, 0, 0
    return y0, y1, x0, x1


@njit(cache=True, nogil=True)
def circle_box_weights(ny_img, nx_img, xc, yc, r):  # pragma: no cover - compiled
    """Exact overlap of a circle with the pixels of an ``(ny_img, nx_img)`` image.

    Parameters
    ----------
    ny_img, nx_img : int
        Image shape.
    xc, yc : float
        Centre (0-based pixel coordinates, x = column).
    r : float
        Radius.

    Returns
    -------
    y0, y1, x0, x1 : int
        Bounding box clipped to the image (as ``tests/photutils_apertures.py``)
        (``0, 0, 0, 0`` when ``r <= 0`` or the box is empty).
    w : ndarray of shape (y1 - y0, x1 - x0)
        Overlap fraction of every pixel in the box.
    """
    y0, y1, x0, x1 = circle_box(ny_img, nx_img, xc, yc, r)
    w = np.zeros((y1 - y0, x1 - x0), np.float64)
    if y1 > y0:
        _circular_fill(w, x0 - 0.5 - xc, x1 - 0.5 - xc, y0 - 0.5 - yc, y1 - 0.5 - yc, float(r))
    return y0, y1, x0, x1, w


@njit(cache=True, nogil=True)
def ellipse_box_weights(ny_img, nx_img, xc, yc, a, b, theta):  # pragma: no cover - compiled
    """Exact overlap of an ellipse with the pixels of an ``(ny_img, nx_img)`` image.

    Parameters
    ----------
    ny_img, nx_img : int
        Image shape.
    xc, yc : float
        Centre (0-based pixel coordinates, x = column).
    a, b : float
        Semi-axes (``a`` along ``theta``).
    theta : float
        Angle of ``a``, radians counter-clockwise from +x.

    Returns
    -------
    y0, y1, x0, x1 : int
        Bounding box clipped to the image, as
        ``ellipse_weights`` of ``tests/photutils_apertures.py`` (``0, 0, 0, 0`` unless
        ``a > 0`` and ``b > 0``, or when the box is empty).
    w : ndarray of shape (y1 - y0, x1 - x0)
        Overlap fraction of every pixel in the box.
    """
    y0, y1, x0, x1 = ellipse_box(ny_img, nx_img, xc, yc, a, b)
    w = np.zeros((y1 - y0, x1 - x0), np.float64)
    if y1 > y0:
        _ellipse_fill(
            w,
            x0 - 0.5 - xc,
            x1 - 0.5 - xc,
            y0 - 0.5 - yc,
            y1 - 0.5 - yc,
            float(a),
            float(b),
            float(theta),
        )
    return y0, y1, x0, x1, w
