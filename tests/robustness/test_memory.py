"""Documented memory per pixel of segment and measure, and the check before allocating."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from helpers import gaussian_source

from morphoscope.exceptions import InputError
from morphoscope.measure import measure
from morphoscope.resources import (
    MEASURE_BYTES_PER_PIXEL,
    MEASURE_BYTES_PER_SEGMENT_PIXEL,
    MEASURE_FIXED_BYTES,
    SEGMENT_BYTES_PER_PIXEL,
    available_memory,
)
from morphoscope.segment import segment_image


def _field(n: int, n_sources: int = 150, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.normal(0, 1, (n, n)).astype(np.float32)
    s = 20
    for _ in range(n_sources):
        x, y = rng.uniform(s + 1, n - s - 1, 2)
        xi, yi = int(x), int(y)
        stamp = gaussian_source((2 * s + 1, 2 * s + 1), x - xi + s, y - yi + s,
                                rng.uniform(500, 5000), rng.uniform(1.5, 4))  # fmt: skip
        img[yi - s : yi + s + 1, xi - s : xi + s + 1] += stamp
    return img


def _peak(func, *args, **kwargs):
    tracemalloc.start()
    try:
        result = func(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.fixture(scope="module")
def big_field():
    return _field(2048)


def test_segment_memory_per_pixel(big_field):
    res, peak = _peak(segment_image, big_field)
    assert res.nlabels > 100
    per_pixel = peak / big_field.size
    assert per_pixel < SEGMENT_BYTES_PER_PIXEL["saddle"], per_pixel


def test_measure_memory_per_pixel(big_field):
    res = segment_image(big_field)
    # The vectorised first-order columns: the part of measure that scales with the image
    # (the statmorph set and the Sersic fits work on per-source cutouts).
    cat, peak = _peak(
        measure, res.image, res.segmap, rms=res.rms, nonparametric=False, sersic=False
    )
    assert len(cat) == res.nlabels
    n_seg = np.count_nonzero(res.segmap)
    bound = MEASURE_BYTES_PER_PIXEL * big_field.size + MEASURE_BYTES_PER_SEGMENT_PIXEL * n_seg
    assert peak < bound, (peak / big_field.size, bound / big_field.size)


def test_measure_memory_worst_case():
    """Every pixel in one segment: the per-segment-pixel term dominates."""
    n = 384
    img = np.random.default_rng(1).normal(0, 1, (n, n)) + 5
    seg = np.ones((n, n), np.int32)
    with pytest.warns(UserWarning):  # the statmorph set has no sky box: flagged, as it should
        cat, peak = _peak(measure, img, seg, rms=1.0)
    assert len(cat) == 1
    bound = (MEASURE_BYTES_PER_PIXEL + MEASURE_BYTES_PER_SEGMENT_PIXEL) * img.size
    assert peak < bound + MEASURE_FIXED_BYTES, peak / img.size


def test_available_memory_is_known():
    avail = available_memory()
    assert avail is None or avail > 0


def _huge():
    # A 100000 x 100000 image that occupies no memory (a zero-stride view).
    return np.broadcast_to(np.float32(1.0), (100_000, 100_000))


@pytest.mark.parametrize("method", ["saddle", "zhu"])
def test_segment_refuses_before_allocating(method):
    huge = _huge()
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=r"image: segment needs about .* GiB"):
            segment_image(huge, method=method)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20  # refused before any image-sized allocation


def test_measure_refuses_before_allocating():
    huge = _huge()
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=r"image: measure needs about .* GiB"):
            measure(huge, np.broadcast_to(np.int32(1), huge.shape))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


def test_memory_limit_from_environment(monkeypatch):
    monkeypatch.setenv("MORPHOSCOPE_MAX_MEMORY", "100K")
    img = _field(64, 2)
    with pytest.raises(InputError, match="segment needs about"):
        segment_image(img)
    seg = np.zeros((64, 64), int)
    seg[10:60, 10:60] = 1
    monkeypatch.setenv("MORPHOSCOPE_MAX_MEMORY", "1000K")  # the image fits, its segments not
    with pytest.raises(InputError, match="segmap: measure needs about"):
        measure(img[:, :], seg)
    monkeypatch.setenv("MORPHOSCOPE_MAX_MEMORY", "lots")
    with pytest.raises(InputError, match="MORPHOSCOPE_MAX_MEMORY"):
        segment_image(img)
