"""The compiled loops of the de-blender checked against the scipy / scikit-image calls they
replace."""

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from morphoscope.segment._kernels import (
    border_saddles,
    bounding_boxes,
    peak_pixels,
    watershed_flood,
)

EIGHT = np.ones((3, 3), bool)


def _smooth_field(rng, shape=(160, 140), sigma=2.0):
    img = ndimage.gaussian_filter(rng.normal(size=shape), sigma).astype(np.float32)
    return img


def _seeded(rng, shape, sigma, percentile):
    """A smooth field, a mask above a percentile and one seed at every peak in the mask."""
    img = _smooth_field(rng, shape, sigma)
    mask = img > np.percentile(img, percentile)
    peaks = peak_pixels(np.where(mask, img, -np.inf).astype(np.float32), mask)
    seeds = np.zeros(img.shape, np.int32)
    seeds.ravel()[peaks] = np.arange(1, peaks.size + 1)
    return img, mask, seeds, peaks


def test_bounding_boxes_equal_find_objects(rng):
    lab, n = ndimage.label(rng.random((120, 90)) > 0.9, structure=EIGHT)
    y0, y1, x0, x1 = bounding_boxes(lab.astype(np.int32), n)
    for k, sl in enumerate(ndimage.find_objects(lab)):
        assert (y0[k], y1[k], x0[k], x1[k]) == (sl[0].start, sl[0].stop, sl[1].start, sl[1].stop)


def test_peak_pixels_equal_maximum_filter_and_label(rng):
    for quantum in (0.0, 0.5):  # continuous values, then plateaus
        img = _smooth_field(rng)
        if quantum:
            img = (np.round(img / quantum) * quantum).astype(np.float32)
        footprint = img > np.percentile(img, 30)
        values = np.where(footprint, img, -np.inf).astype(np.float32)
        peaks = ndimage.maximum_filter(values, size=3, mode="constant", cval=-np.inf) == values
        markers, nm = ndimage.label(peaks & footprint, structure=EIGHT)
        first = [np.flatnonzero(markers == k)[0] for k in range(1, nm + 1)]
        got = peak_pixels(values, footprint)
        assert nm > 10
        assert np.array_equal(got, np.sort(first))


def test_watershed_flood_equals_skimage(rng):
    img, mask, seeds, peaks = _seeded(rng, (300, 260), 3.0, 40)
    ours = watershed_flood(img, seeds, mask)
    ref = watershed(-img, seeds, mask=mask, connectivity=2)
    assert peaks.size > 20
    assert np.array_equal(ours == 0, ref == 0)
    # Only ties within the 0.05 % binning may be taken in another order.
    assert np.mean(ours[mask] != ref[mask]) < 1e-3
    # Exact on values that differ by more than the binning.
    coarse = np.round(img * 1000).astype(np.float32) + 10.0 * img.size
    order = np.argsort(coarse, axis=None)
    distinct = np.empty(img.size, np.float32)
    distinct[order] = 1.001 ** np.arange(img.size)  # 0.1 % apart: never in one bin
    ours = watershed_flood(distinct.reshape(img.shape), seeds, mask)
    ref = watershed(-distinct.reshape(img.shape), seeds, mask=mask, connectivity=2)
    assert np.array_equal(ours, ref)


def test_watershed_flood_does_not_modify_inputs(rng):
    img = _smooth_field(rng)
    seeds = np.zeros(img.shape, np.int32)
    seeds[80, 70] = 1
    mask = img > -np.inf
    before = (img.copy(), seeds.copy(), mask.copy())
    out = watershed_flood(img, seeds, mask)
    assert np.all(out == 1)
    for a, b in zip(before, (img, seeds, mask), strict=True):
        assert np.array_equal(a, b)


def _saddles_numpy(basins, values, n):
    """Reference: the highest min over adjacent border pixel pairs of every basin pair."""
    best = {}
    ny, nx = basins.shape
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        for y in range(ny):
            for x in range(nx):
                yy, xx = y + dy, x + dx
                if yy >= ny or not 0 <= xx < nx:
                    continue
                a, b = basins[y, x], basins[yy, xx]
                if a > 0 and b > 0 and a != b:
                    key = (min(a, b), max(a, b))
                    v = min(values[y, x], values[yy, xx])
                    best[key] = max(best.get(key, -np.inf), v)
    keys = sorted(best)
    return (
        np.array([k[0] for k in keys]),
        np.array([k[1] for k in keys]),
        np.array([best[k] for k in keys]),
    )


def test_border_saddles_equal_reference(rng):
    img, mask, seeds, _ = _seeded(rng, (60, 50), 2.0, 35)
    basins = watershed_flood(img, seeds, mask)
    a, b, s = border_saddles(basins, img, int(basins.max()))
    ra, rb, rs = _saddles_numpy(basins, img, int(basins.max()))
    assert a.size > 3
    assert np.array_equal(a, ra) and np.array_equal(b, rb) and np.allclose(s, rs)
