"""SersicNet and PixelClassifier on bad stamps, images and catalogs.

These tests skip until ``morphoscope.nn.SersicNet`` / ``PixelClassifier`` are importable.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from robustness.bad_inputs import galaxy
from robustness.checks import outcome


def _nn_attr(name: str):
    nn = pytest.importorskip("morphoscope.nn")
    try:
        return getattr(nn, name)
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"morphoscope.nn.{name} is not available ({exc})")


@pytest.fixture(scope="module")
def sersic_net():
    cls = _nn_attr("SersicNet")
    return cls.pretrained()


@pytest.fixture(scope="module")
def pixel_classifier():
    cls = _nn_attr("PixelClassifier")
    return cls.pretrained()


def _stamps(n=3, size=64):
    return np.stack([galaxy((size, size), seed=s) for s in range(n)])


def _with_nan(frac):
    def build():
        s = _stamps()
        k = int(64 * frac)
        s[1, :k, :] = np.nan
        return s

    return build


STAMPS = [
    ("good", _stamps, "ok"),
    ("single_2d_stamp", lambda: _stamps(1)[0], "ok"),
    ("one_d", lambda: np.ones(64), "error"),
    ("four_d", lambda: _stamps()[None], "error"),
    ("wrong_size_32", lambda: _stamps(size=32), "either"),
    ("non_square", lambda: _stamps()[:, :, :40], "error"),
    ("empty_batch", lambda: np.zeros((0, 64, 64)), "ok"),
    ("all_nan_stamp", _with_nan(1.0), "ok"),
    ("half_nan_stamp", _with_nan(0.5), "ok"),
    ("few_nan_pixels", _with_nan(0.05), "ok"),
    ("inf_stamp", lambda: np.where(_stamps() > 50, np.inf, _stamps()), "ok"),
    ("int_stamps", lambda: np.round(_stamps()).astype(np.int16), "ok"),
    ("big_endian", lambda: _stamps().astype(">f4"), "ok"),
    ("all_zero", lambda: np.zeros((2, 64, 64)), "ok"),
    ("strings", lambda: np.full((1, 64, 64), "x"), "error"),
]


@pytest.mark.parametrize(("name", "build", "expect"), STAMPS, ids=[c[0] for c in STAMPS])
def test_sersicnet_predict_bad_stamps(sersic_net, name, build, expect):
    stamps = build()
    status = outcome(sersic_net.predict, stamps, 2.0, names=("stamps",))
    if expect == "ok":
        assert status[0] == "ok", status[1]
    elif expect == "error":
        assert status[0] == "error"
    if status[0] == "ok":
        table = status[1]
        arr = np.asarray(stamps, float).reshape(-1, *np.shape(stamps)[-2:])
        assert len(table) == arr.shape[0]
        for i in range(arr.shape[0]):
            frac_bad = np.mean(~np.isfinite(arr[i]))
            if frac_bad > 0:
                assert table["flag"][i] != 0, f"stamp {i} with NaN pixels is not flagged"


@pytest.mark.parametrize(
    ("psf_fwhm", "rms"),
    [(-1.0, None), (float("nan"), None), (0.0, None), ([2.0, 2.0], None), (2.0, -1.0),
     (2.0, 0.0), (2.0, [1.0, 1.0]), ("wide", None)],
)  # fmt: skip
def test_sersicnet_predict_bad_parameters(sersic_net, psf_fwhm, rms):
    status = outcome(sersic_net.predict, _stamps(), psf_fwhm, rms, names=("psf_fwhm", "rms"))
    assert status[0] == "error"


CATALOGS = [
    ("empty_catalog", Table({"x": np.zeros(0), "y": np.zeros(0)}), "ok"),
    ("outside_image", Table({"x": [-40.0, 500.0], "y": [10.0, 10.0]}), "ok"),
    ("nan_position", Table({"x": [np.nan, 19.0], "y": [25.0, 25.0]}), "ok"),
    ("no_xy_columns", Table({"flux": [1.0]}), "error"),
    ("empty_segmap", np.zeros((64, 64), int), "ok"),
    ("segmap_wrong_shape", np.ones((32, 32), int), "error"),
    ("segmap_negative", np.full((64, 64), -1), "error"),
]


@pytest.mark.parametrize(("name", "sources", "expect"), CATALOGS, ids=[c[0] for c in CATALOGS])
def test_predict_catalog_bad_sources(sersic_net, name, sources, expect):
    predict_catalog = _nn_attr("predict_catalog")
    status = outcome(
        predict_catalog, galaxy(), sources, psf_fwhm=2.0, net=sersic_net,
        names=("sources", "catalog", "segmap"),
    )
    if expect == "ok":
        assert status[0] == "ok", status[1]
        table = status[1]
        if name in ("outside_image", "nan_position"):
            assert table["flag"][0] != 0, "a source outside the image is not flagged"
    else:
        assert status[0] == "error"


IMAGES = [
    ("good", galaxy, "ok"),
    ("nan_region", lambda: np.where(galaxy() > 50, np.nan, galaxy()), "ok"),
    ("all_nan", lambda: np.full((64, 64), np.nan), "either"),
    ("one_d", lambda: np.ones(64), "error"),
    ("four_d", lambda: galaxy()[None, None, None], "error"),
    ("too_many_bands", lambda: np.stack([galaxy()] * 7), "error"),
    ("tiny_2x2", lambda: np.ones((2, 2)), "either"),
    ("big_endian", lambda: galaxy().astype(">f8"), "ok"),
    ("bool", lambda: galaxy() > 5, "either"),
    ("strings", lambda: np.full((8, 8), "x"), "error"),
]


@pytest.mark.parametrize(("name", "build", "expect"), IMAGES, ids=[c[0] for c in IMAGES])
def test_pixel_classifier_bad_images(pixel_classifier, name, build, expect):
    image = build()
    status = outcome(pixel_classifier.predict_proba, image, names=("image", "images"))
    if expect == "ok":
        assert status[0] == "ok", status[1]
    elif expect == "error":
        assert status[0] == "error"
    if status[0] == "ok":
        proba = status[1]
        assert np.all(np.isfinite(proba))
        np.testing.assert_allclose(proba.sum(axis=0), 1.0, atol=1e-4)


@pytest.mark.parametrize(("key", "value"), [("tile", 8), ("tile", 0), ("batch_size", 0),
                                            ("overlap", -1), ("overlap", 10_000)])  # fmt: skip
def test_pixel_classifier_bad_parameters(pixel_classifier, key, value):
    status = outcome(pixel_classifier.predict_proba, galaxy(), **{key: value}, names=(key,))
    assert status[0] == "error"
