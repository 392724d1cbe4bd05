"""The compiled overlap kernels against photutils.geometry, which they port."""

import numpy as np
import photutils_apertures as apertures
import pytest
from numba import njit
from photutils.geometry import circular_overlap_grid as pu_circular
from photutils.geometry import elliptical_overlap_grid as pu_elliptical

from morphoscope.measure import _overlap as ov

TOL = 1e-12


def _centres(rng, n, size):
    """Random centres, a third of them on pixel centres / edges / half pixels."""
    xc = rng.uniform(-3, size + 2, n)
    yc = rng.uniform(-3, size + 2, n)
    k = n // 3
    xc[:k] = np.round(xc[:k] * 2) / 2
    yc[:k] = np.round(yc[:k] * 2) / 2
    return xc, yc


def test_circular_grid_matches_photutils():
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(300):
        nx, ny = rng.integers(1, 30, 2)
        dx, dy = rng.uniform(0.3, 2.0, 2)
        xmin, ymin = rng.uniform(-25, 5, 2)
        r = rng.uniform(0.3, 20)
        args = (xmin, xmin + nx * dx, ymin, ymin + ny * dy, int(nx), int(ny), r)
        got = ov.circular_overlap_grid(*args)
        ref = pu_circular(*args, 1, 1)
        assert got.shape == ref.shape
        worst = max(worst, float(np.abs(got - ref).max()))
    assert worst <= TOL


def test_elliptical_grid_matches_photutils():
    rng = np.random.default_rng(2)
    worst = 0.0
    for _ in range(300):
        nx, ny = rng.integers(1, 30, 2)
        dx, dy = rng.uniform(0.3, 2.0, 2)
        xmin, ymin = rng.uniform(-25, 5, 2)
        rx = rng.uniform(0.3, 20)
        ry = rx * rng.uniform(0.05, 1.2)
        theta = rng.uniform(-4, 4)
        args = (xmin, xmin + nx * dx, ymin, ymin + ny * dy, int(nx), int(ny), rx, ry, theta)
        got = ov.elliptical_overlap_grid(*args)
        ref = pu_elliptical(*args, 1, 1)
        assert got.shape == ref.shape
        worst = max(worst, float(np.abs(got - ref).max()))
    assert worst <= TOL


@pytest.mark.parametrize("shape", [(64, 64), (37, 51)])
def test_circle_box_weights_match_apertures(shape):
    rng = np.random.default_rng(3)
    n = 400
    xc, yc = _centres(rng, n, shape[1])
    radii = np.exp(rng.uniform(np.log(0.3), np.log(40), n))
    radii[:20] = [0.5, 1.0, 1.5, 2.0, 0.7071067811865476, 2.5, 3.0, 10.0, 40.0, 0.3] * 2
    worst = 0.0
    for x, y, r in zip(xc, yc, radii, strict=True):
        (sy, sx), ref = apertures.circle_weights(shape, x, y, r)
        y0, y1, x0, x1, got = ov.circle_box_weights(shape[0], shape[1], x, y, r)
        assert (y0, y1, x0, x1) == (sy.start, sy.stop, sx.start, sx.stop)
        assert got.shape == ref.shape
        if ref.size:
            worst = max(worst, float(np.abs(got - ref).max()))
    assert worst <= TOL


@pytest.mark.parametrize("shape", [(64, 64), (37, 51)])
def test_ellipse_box_weights_match_apertures(shape):
    rng = np.random.default_rng(4)
    n = 300
    xc, yc = _centres(rng, n, shape[1])
    a = np.exp(rng.uniform(np.log(0.3), np.log(40), n))
    q = rng.uniform(0.05, 1.0, n)
    q[:10] = 1.0
    q[10:20] = 0.05
    theta = rng.uniform(-np.pi, np.pi, n)
    theta[20:40] = np.tile([0.0, np.pi / 2, np.pi, -np.pi / 2, np.pi / 4], 4)
    worst = 0.0
    for x, y, aa, qq, t in zip(xc, yc, a, q, theta, strict=True):
        b = aa * qq
        (sy, sx), ref = apertures.ellipse_weights(shape, x, y, aa, b, t)
        y0, y1, x0, x1, got = ov.ellipse_box_weights(shape[0], shape[1], x, y, aa, b, t)
        assert (y0, y1, x0, x1) == (sy.start, sy.stop, sx.start, sx.stop)
        assert got.shape == ref.shape
        if ref.size:
            worst = max(worst, float(np.abs(got - ref).max()))
    assert worst <= TOL


@pytest.mark.parametrize("r", [0.0, -1.0, np.nan])
def test_empty_boxes(r):
    y0, y1, x0, x1, w = ov.circle_box_weights(20, 20, 5.0, 5.0, r)
    assert (y0, y1, x0, x1) == (0, 0, 0, 0) and w.shape == (0, 0)
    y0, y1, x0, x1, w = ov.ellipse_box_weights(20, 20, 5.0, 5.0, 3.0, r, 0.3)
    assert (y0, y1, x0, x1) == (0, 0, 0, 0) and w.shape == (0, 0)
    y0, y1, x0, x1, w = ov.ellipse_box_weights(20, 20, 5.0, 5.0, r, 3.0, 0.3)
    assert (y0, y1, x0, x1) == (0, 0, 0, 0) and w.shape == (0, 0)


def test_aperture_off_image_is_empty():
    # centre far outside the image: the clipped box is empty, as in apertures
    for xc, yc in [(-30.0, 5.0), (5.0, 80.0)]:
        (sy, sx), ref = apertures.circle_weights((20, 20), xc, yc, 3.0)
        y0, y1, x0, x1, w = ov.circle_box_weights(20, 20, xc, yc, 3.0)
        assert ref.size == 0 and w.size == 0 and (y0, y1, x0, x1) == (0, 0, 0, 0)


def test_areas_add_up():
    # a circle / ellipse fully on the image: the weights sum to its area
    _, _, _, _, w = ov.circle_box_weights(64, 64, 31.3, 30.8, 12.7)
    assert w.sum() == pytest.approx(np.pi * 12.7**2, rel=1e-12)
    _, _, _, _, w = ov.ellipse_box_weights(64, 64, 31.3, 30.8, 20.0, 1.5, 0.4)
    assert w.sum() == pytest.approx(np.pi * 20.0 * 1.5, rel=1e-12)


@njit
def _sum_in_njit(img, xc, yc, r, a, b, theta):
    y0, y1, x0, x1, w = ov.circle_box_weights(img.shape[0], img.shape[1], xc, yc, r)
    s1 = np.sum(img[y0:y1, x0:x1] * w)
    y0, y1, x0, x1, w = ov.ellipse_box_weights(img.shape[0], img.shape[1], xc, yc, a, b, theta)
    s2 = np.sum(img[y0:y1, x0:x1] * w)
    return s1, s2


def test_callable_from_njit():
    img = np.random.default_rng(5).normal(size=(40, 40))
    s1, s2 = _sum_in_njit(img, 18.2, 21.7, 6.3, 9.0, 4.0, 2.0)
    (sy, sx), w = apertures.circle_weights(img.shape, 18.2, 21.7, 6.3)
    assert s1 == pytest.approx(np.sum(img[sy, sx] * w), rel=1e-12)
    (sy, sx), w = apertures.ellipse_weights(img.shape, 18.2, 21.7, 9.0, 4.0, 2.0)
    assert s2 == pytest.approx(np.sum(img[sy, sx] * w), rel=1e-12)
