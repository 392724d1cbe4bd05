"""grid_dbscan must give scikit-learn's DBSCAN labels exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from sklearn.cluster import DBSCAN

from morphoscope.emission import grid_dbscan, grid_offsets
from morphoscope.exceptions import ParameterError


def _sk(mask, eps, min_samples, values=None):
    ys, xs = np.nonzero(mask)
    cols = [xs, ys] if values is None else [xs, ys, values[ys, xs]]
    points = np.column_stack(cols).astype(float)
    if len(points) == 0:
        return np.empty(0, dtype=np.intp), points
    return DBSCAN(eps=eps, min_samples=min_samples).fit_predict(points), points


def _random_mask(seed, shape=(40, 50), smooth=1.5, fill=0.4):
    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.normal(size=shape), smooth)
    return img > np.quantile(img, 1 - fill), img


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("eps", [0.7, 1.0, 1.5, 2.0, 2.5])
@pytest.mark.parametrize("min_samples", [1, 3, 4, 7])
def test_identical_to_sklearn_2d(seed, eps, min_samples):
    mask, _ = _random_mask(seed, smooth=0.5 + seed % 3, fill=0.2 + 0.1 * seed)
    expected, _ = _sk(mask, eps, min_samples)
    got = grid_dbscan(mask, eps=eps, min_samples=min_samples)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("eps", [1.0, 1.5, 2.5])
def test_identical_to_sklearn_with_flux(seed, eps):
    mask, img = _random_mask(seed + 10, smooth=1.0 + seed % 2)
    values = 2.0 * img / np.abs(img).max()
    expected, _ = _sk(mask, eps, 4, values)
    np.testing.assert_array_equal(grid_dbscan(mask, eps, 4, values=values), expected)


@pytest.mark.parametrize("seed", range(4))
def test_points_in_any_order(seed):
    mask, img = _random_mask(seed + 20)
    _, points = _sk(mask, 1.5, 4, img)
    perm = np.random.default_rng(seed).permutation(len(points))
    shuffled = points[perm]
    expected = DBSCAN(eps=1.5, min_samples=4).fit_predict(shuffled)
    np.testing.assert_array_equal(grid_dbscan(shuffled, 1.5, 4), expected)


def test_border_point_joins_the_first_cluster():
    # two 3x3 blocks two pixels apart with one pixel between them: the pixel is a
    # border point of both and must join the cluster found first (sklearn's rule)
    mask = np.zeros((5, 11), bool)
    mask[1:4, 1:4] = True
    mask[1:4, 6:9] = True
    mask[2, 5] = True
    for m in (mask, mask[:, ::-1]):
        expected, _ = _sk(m, 1.5, 5)
        got = grid_dbscan(m, 1.5, 5)
        np.testing.assert_array_equal(got, expected)
        assert set(got) == {0, 1}


def test_edge_cases():
    empty = np.zeros((8, 8), bool)
    assert grid_dbscan(empty).shape == (0,)
    full = np.ones((7, 9), bool)
    np.testing.assert_array_equal(grid_dbscan(full, 1.5, 4), np.zeros(63, np.intp))
    np.testing.assert_array_equal(grid_dbscan(full, 0.5, 1), np.arange(63))
    np.testing.assert_array_equal(grid_dbscan(full, 0.5, 2), np.full(63, -1))
    single = np.zeros((3, 3), bool)
    single[1, 1] = True
    np.testing.assert_array_equal(grid_dbscan(single, 1.5, 1), [0])
    np.testing.assert_array_equal(grid_dbscan(single, 1.5, 2), [-1])
    # tiny grids smaller than the offsets
    line = np.ones((1, 2), bool)
    np.testing.assert_array_equal(grid_dbscan(line, 2.5, 2), [0, 0])
    assert grid_dbscan(np.empty((0, 2))).shape == (0,)


def test_offsets():
    assert len(grid_offsets(1.0)) == 5
    assert len(grid_offsets(np.sqrt(2))) == 9
    assert len(grid_offsets(2.5, half=True)) == (21 - 1) // 2


def test_bad_parameters():
    mask = np.ones((3, 3), bool)
    with pytest.raises(ParameterError, match="eps"):
        grid_dbscan(mask, eps=0)
    with pytest.raises(ParameterError, match="min_samples"):
        grid_dbscan(mask, min_samples=0)
    with pytest.raises(ParameterError, match="values"):
        grid_dbscan(mask, values=np.ones((2, 2)))
    with pytest.raises(ParameterError, match="integer"):
        grid_dbscan(np.array([[0.5, 1.0]]))
    with pytest.raises(ParameterError, match="duplicate"):
        grid_dbscan(np.array([[1.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(ParameterError):
        grid_dbscan(np.zeros((3, 4)))


def test_input_not_modified():
    mask, img = _random_mask(3)
    m0, v0 = mask.copy(), img.copy()
    grid_dbscan(mask, 1.5, 4, values=img)
    np.testing.assert_array_equal(mask, m0)
    np.testing.assert_array_equal(img, v0)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    ny=st.integers(1, 25),
    nx=st.integers(1, 25),
    fill=st.floats(0.0, 1.0),
    eps=st.sampled_from([0.9, 1.0, 1.3, 1.5, 2.0, 2.3, 2.5, 3.0]),
    min_samples=st.integers(1, 9),
    with_values=st.booleans(),
)
def test_hypothesis_identical(seed, ny, nx, fill, eps, min_samples, with_values):
    rng = np.random.default_rng(seed)
    img = rng.normal(size=(ny, nx))
    mask = rng.random((ny, nx)) < fill
    values = img if with_values else None
    expected, _ = _sk(mask, eps, min_samples, values)
    np.testing.assert_array_equal(grid_dbscan(mask, eps, min_samples, values=values), expected)
