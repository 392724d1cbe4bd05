"""Property-based fuzzing of segment, measure and read_image with hypothesis.

Small random images with random NaN/inf patches, dtypes, byte orders and shapes: every
call returns a flagged result or raises a MorphoscopeError, never anything else, and
never modifies its input.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from robustness.checks import outcome

from morphoscope.flags import Flag
from morphoscope.measure import measure
from morphoscope.segment import segment_image

FUZZ = settings(
    max_examples=80,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DTYPES = st.sampled_from(["<f8", ">f8", "<f4", ">f4", "<i2", ">i4", "u1", "bool", "<f2"])
SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1e30, -1e30])


@st.composite
def images(draw, min_side=1, max_side=40):
    """A small image: noise plus a blob, with random special-value patches and dtype."""
    ny = draw(st.integers(min_side, max_side))
    nx = draw(st.integers(min_side, max_side))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:ny, :nx]
    img = rng.normal(0, 1, (ny, nx))
    img += draw(st.floats(0, 500)) * np.exp(
        -((x - nx / 2) ** 2 + (y - ny / 2) ** 2) / (2 * draw(st.floats(0.5, 6)) ** 2)
    )
    for _ in range(draw(st.integers(0, 3))):
        y0, x0 = draw(st.integers(0, ny - 1)), draw(st.integers(0, nx - 1))
        h, w = draw(st.integers(1, ny)), draw(st.integers(1, nx))
        img[y0 : y0 + h, x0 : x0 + w] = draw(SPECIAL)
    dtype = np.dtype(draw(DTYPES))
    with np.errstate(invalid="ignore", over="ignore"):
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            img = np.clip(np.nan_to_num(img, nan=0.0), info.min, info.max)
        out = img.astype(dtype) if dtype.kind != "b" else img > 1
    if draw(st.booleans()):
        out = out[None]  # a one-plane cube
    return out


def _touching_bad(image, segmap):
    arr = np.squeeze(np.asarray(image, float))
    bad = ~np.isfinite(arr)
    if not bad.any():
        return set()
    from scipy import ndimage

    near = ndimage.binary_dilation(bad, np.ones((3, 3), bool))
    return set(np.unique(segmap[near & (segmap > 0)]).tolist())


@FUZZ
@given(image=images(), method=st.sampled_from(["saddle", "zhu"]))
def test_segment_fuzz(image, method):
    status = outcome(segment_image, image, method=method, npixels=3, names=("image",))
    if status[0] == "ok":
        res = status[1]
        assert res.segmap.shape == np.squeeze(image).shape
        for label in _touching_bad(image, res.segmap):
            assert res.flags[label] & Flag.MASKED_PIXELS


@FUZZ
@given(image=images(min_side=3), data=st.data())
def test_measure_fuzz(image, data):
    shape = np.squeeze(image).shape
    seg = data.draw(hnp.arrays(np.int16, shape, elements=st.integers(0, 4)))
    rms = data.draw(st.one_of(st.none(), st.floats(-1, 3), st.just(np.full(shape, 1.0))))
    status = outcome(measure, image, seg, rms=rms, names=("image", "segmap", "rms"))
    if status[0] == "ok":
        cat = status[1]
        assert len(cat) == len(np.unique(seg[seg > 0]))
        touched = _touching_bad(image, seg.astype(int))
        flags = dict(zip(np.asarray(cat["label"]).tolist(), np.asarray(cat["flag"]), strict=True))
        for label in touched:
            assert flags[label] & Flag.MASKED_PIXELS
        clean = np.asarray(cat["flag"]) == 0
        assert np.all(np.isfinite(np.asarray(cat["flux"], float)[clean]))


@FUZZ
@given(
    segmap=hnp.arrays(
        st.sampled_from([np.int32, np.int64, np.float64, np.int8, ">i4"]),
        st.tuples(st.integers(1, 12), st.integers(1, 12)),
        elements=st.integers(-3, 5),
    )
)
def test_measure_segmap_fuzz(segmap):
    image = np.random.default_rng(0).normal(0, 1, segmap.shape) + 10
    status = outcome(measure, image, segmap, rms=1.0, names=("segmap", "image"))
    if np.asarray(segmap).min() < 0 and min(segmap.shape) >= 3:
        assert status[0] == "error"


@FUZZ
@given(blob=st.binary(min_size=0, max_size=6000), keep=st.integers(0, 8640))
def test_read_image_fuzz_bytes(tmp_path_factory, blob, keep):
    """Random bytes, alone or after a valid FITS header, never crash the reader."""
    from astropy.io import fits

    from morphoscope.io import read_image

    folder = tmp_path_factory.mktemp("fuzz")
    good = folder / "good.fits"
    fits.writeto(good, np.random.default_rng(1).normal(size=(40, 40)).astype(np.float32))
    path = folder / "fuzz.fits"
    path.write_bytes(good.read_bytes()[:keep] + blob)
    status = outcome(read_image, path, names=("fuzz.fits",))
    if status[0] == "ok":
        assert status[1].data.ndim == 2
