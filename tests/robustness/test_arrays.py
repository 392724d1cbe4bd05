"""segment, segment_image and measure on bad arrays: a flagged result or a clear error."""

from __future__ import annotations

import numpy as np
import pytest
from robustness.bad_inputs import IMAGES, MASKS, PSFS, RMS, SEGMAPS, disc_segmap, galaxy
from robustness.checks import outcome

from morphoscope.flags import Flag
from morphoscope.measure import measure
from morphoscope.segment import segment, segment_image

METHODS = ["saddle", "zhu"]


def _nonfinite(value) -> np.ndarray | None:
    """Mask of the non-finite pixels of a numeric 2-D input (None if not applicable)."""
    try:
        arr = np.asarray(value)
    except Exception:
        return None
    if arr.dtype.kind not in "biuf":
        return None
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        return None
    with np.errstate(invalid="ignore"):
        values = arr.astype(float)
        return ~np.isfinite(values) | (np.abs(values) >= 1e30)  # NaN, inf and blank pixels


def check_segmentation(res, image) -> None:
    """Contract of a segmentation result; sources touching NaN/inf pixels are flagged."""
    seg = res.segmap
    bad = _nonfinite(image)
    assert seg.shape == bad.shape
    assert seg.dtype == np.int32 and seg.min() >= 0
    n = res.nlabels
    assert res.flags.shape == (n + 1,)
    present = np.unique(seg[seg > 0])
    assert np.array_equal(present, np.arange(1, n + 1)), "labels must be 1..N without gaps"
    if bad.any() and n:
        from scipy import ndimage

        near = ndimage.binary_dilation(bad, np.ones((3, 3), bool))
        for label in np.unique(seg[near & (seg > 0)]):
            assert res.flags[label] & Flag.MASKED_PIXELS, f"label {label} touches NaN, unflagged"


def check_catalog(cat, image, segmap) -> None:
    """Every row touching a NaN/inf pixel is flagged; unflagged rows have finite values."""
    bad = _nonfinite(image)
    seg = np.asarray(segmap).astype(np.int64)
    flags = np.asarray(cat["flag"], int)
    if bad is not None and bad.any():
        from scipy import ndimage

        near = ndimage.binary_dilation(bad, np.ones((3, 3), bool))
        touched = set(np.unique(seg[near & (seg > 0)]).tolist())
        for label, flag in zip(cat["label"], flags, strict=True):
            if int(label) in touched:
                assert flag & Flag.MASKED_PIXELS, f"label {label}: NaN pixels not flagged"
    clean = flags == 0
    for col in ("xc_centroid", "yc_centroid", "flux", "area"):
        assert np.all(np.isfinite(np.asarray(cat[col], float)[clean])), col


def _expect(expect, status):
    if expect == "ok":
        assert status[0] == "ok", status[1]
    elif expect == "error":
        assert status[0] == "error", "expected a MorphoscopeError"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("name", "build", "expect"), IMAGES, ids=[c[0] for c in IMAGES])
def test_segment_image_bad_images(name, build, expect, method):
    image = build()
    status = outcome(segment_image, image, method=method, names=("image",))
    _expect(expect, status)
    if status[0] == "ok":
        check_segmentation(status[1], image)


@pytest.mark.parametrize(("name", "build", "expect"), IMAGES, ids=[c[0] for c in IMAGES])
def test_measure_bad_images(name, build, expect):
    image = build()
    bad = _nonfinite(image)
    segmap = disc_segmap(bad.shape) if bad is not None else disc_segmap()
    status = outcome(measure, image, segmap, rms=1.0, names=("image", "segmap"))
    if expect == "ok":
        assert status[0] == "ok", status[1]
    if status[0] == "ok":
        check_catalog(status[1], image, segmap)


def test_nan_inside_segment_flags_and_excludes():
    """The flux of a source with NaN pixels is flagged, never silently low."""
    image = galaxy()
    image[24:28, 17:21] = np.nan
    cat = measure(image, disc_segmap(), rms=1.0)
    assert cat["flag"][0] & Flag.MASKED_PIXELS
    assert not cat["flag"][1] & Flag.MASKED_PIXELS
    # A hole cut out of the segment at the NaN pixels (as detection does) is flagged too.
    seg = disc_segmap()
    seg[24:28, 17:21] = 0
    cat = measure(image, seg, rms=1.0)
    assert cat["flag"][0] & Flag.MASKED_PIXELS


@pytest.mark.parametrize(("name", "build", "expect"), SEGMAPS, ids=[c[0] for c in SEGMAPS])
def test_measure_bad_segmaps(name, build, expect):
    image = galaxy()
    segmap = build()
    status = outcome(measure, image, segmap, rms=1.0, names=("segmap",))
    _expect(expect, status)
    if status[0] == "ok":
        cat = status[1]
        seg = np.asarray(segmap).astype(np.int64)
        assert sorted(np.asarray(cat["label"]).tolist()) == np.unique(seg[seg > 0]).tolist()
        check_catalog(cat, image, segmap)
        edge = np.unique(np.concatenate([seg[0], seg[-1], seg[:, 0], seg[:, -1]]))
        for label, flag in zip(cat["label"], cat["flag"], strict=True):
            if label in edge:
                assert flag & Flag.EDGE


@pytest.mark.parametrize("labels", [[], [5], [1, 99], [0], [-1], [[1, 2]], ["a"]])
def test_measure_labels(labels):
    status = outcome(measure, galaxy(), disc_segmap(), rms=1.0, labels=labels, names=("labels",))
    if status[0] == "ok":
        cat = status[1]
        assert len(cat) == np.asarray(labels).size
        present = {1, 2}
        for label, flag in zip(cat["label"], cat["flag"], strict=True):
            if label not in present:
                assert flag & Flag.SMALL and np.isnan(cat["flux"][list(cat["label"]).index(label)])


@pytest.mark.parametrize("func", ["segment", "measure"])
@pytest.mark.parametrize(("name", "build", "expect"), RMS, ids=[c[0] for c in RMS])
def test_bad_rms(name, build, expect, func):
    rms = build()
    if func == "segment":
        status = outcome(segment_image, galaxy(), rms=rms, names=("rms",))
    else:
        status = outcome(measure, galaxy(), disc_segmap(), rms=rms, names=("rms",))
    _expect(expect, status)
    if status[0] == "ok" and name in ("zero_region", "negative_region", "nan_region"):
        flags = status[1].flags[1:] if func == "segment" else np.asarray(status[1]["flag"])
        assert any(f & Flag.MASKED_PIXELS for f in flags), "source on bad rms not flagged"


@pytest.mark.parametrize("func", ["segment", "measure"])
@pytest.mark.parametrize(("name", "build", "expect"), MASKS, ids=[c[0] for c in MASKS])
def test_bad_masks(name, build, expect, func):
    mask = build()
    if func == "segment":
        status = outcome(segment_image, galaxy(), mask=mask, names=("mask", "image"))
    else:
        status = outcome(measure, galaxy(), disc_segmap(), mask=mask, names=("mask", "image"))
    _expect(expect, status)
    if status[0] == "ok" and name == "mask_on_source":
        flags = status[1].flags[1:] if func == "segment" else np.asarray(status[1]["flag"])
        assert any(f & Flag.MASKED_PIXELS for f in flags)


@pytest.mark.parametrize(("name", "build", "expect"), PSFS, ids=[c[0] for c in PSFS])
def test_bad_psfs(name, build, expect):
    psf = build()
    status = outcome(segment_image, galaxy(), psf=psf, names=("psf",))
    _expect(expect, status)
    if status[0] == "ok":
        assert status[1].nlabels >= 1


PARAMS = [
    ("method", "nope"),
    ("method", None),
    ("npixels", 0),
    ("npixels", -5),
    ("npixels", 2.5),
    ("npixels", float("nan")),
    ("nsigma", -1.0),
    ("nsigma", float("nan")),
    ("nsigma", "3"),
    ("box_size", 0),
    ("kernel_fwhm", -2.0),
    ("kernel_fwhm", float("inf")),
    ("prominence", -1.0),
    ("contrast", float("nan")),
    ("min_snr", float("nan")),
    ("min_snr", -3.0),
    ("background", "median"),
    ("background", np.ones((3, 3))),
    ("background", float("nan")),
    ("min_distance", 0),
    ("min_distance", -2),
]


@pytest.mark.parametrize(("key", "value"), PARAMS, ids=[f"{k}={v!r}" for k, v in PARAMS])
def test_bad_parameters(key, value):
    method = {"method": "zhu"} if key == "min_distance" else {}
    status = outcome(segment, galaxy(), **{key: value}, **method, names=(key, "image"))
    assert status[0] == "error", f"{key}={value!r} accepted"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("blank", [-1e30, 1e30, np.nan])
def test_blank_border_does_not_hide_sources(method, blank):
    """A mosaic border of blank values (-1e30, NaN) leaves detection and noise unchanged."""
    clean = segment_image(galaxy(), method=method)
    image = galaxy()
    image[:, :8] = blank
    res = segment_image(image, method=method)
    assert res.nlabels == clean.nlabels >= 2
    assert np.isfinite(np.median(res.rms))
    assert abs(np.median(res.rms[:, 8:]) / np.median(clean.rms) - 1) < 0.1
