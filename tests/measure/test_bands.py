"""Several bands on one segmentation map: ``measure_bands`` and ``measure({band: image})``."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import gaussian_source

from morphoscope import measure
from morphoscope.exceptions import InputError, ParameterError
from morphoscope.measure import BAND_COLUMNS, measure_bands


@pytest.fixture
def three_bands():
    """One disk-like and one compact source; the compact one is redder by a known amount."""
    shape = (80, 96)
    seg = np.zeros(shape, int)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    seg[np.hypot(xx - 30.4, yy - 40.2) < 20] = 1
    seg[np.hypot(xx - 72.0, yy - 35.0) < 12] = 2
    images = {}
    for k, name in enumerate(("g", "r", "i")):
        images[name] = gaussian_source(shape, 30.4, 40.2, 4000.0, 4.0, q=0.6, theta=0.3)
        images[name] += gaussian_source(shape, 72.0, 35.0, 1000.0 * 2.0**k, 1.8)
    return images, seg


def test_per_band_columns_and_colours(three_bands):
    images, seg = three_bands
    before = {k: v.copy() for k, v in images.items()}
    cat = measure_bands(images, seg, rms=0.01, nonparametric=False)
    for k, v in images.items():
        assert np.array_equal(v, before[k])
    # the reference band (the first) under plain names, every band with a suffix
    single = measure(images["g"], seg, rms=0.01, nonparametric=False)
    for col in single.colnames:
        np.testing.assert_array_equal(cat[col], single[col])
    for name in images:
        alone = measure(images[name], seg, rms=0.01, nonparametric=False)
        for col in BAND_COLUMNS:
            np.testing.assert_array_equal(cat[f"{col}_{name}"], alone[col])
        np.testing.assert_array_equal(cat[f"flag_{name}"], alone["flag"])
    # colours: the first source has the same flux in every band, the second doubles per band
    np.testing.assert_allclose(cat["color_g_r"], [0.0, 2.5 * np.log10(2.0)], atol=1e-6)
    np.testing.assert_allclose(cat["color_r_i"], [0.0, 2.5 * np.log10(2.0)], atol=1e-6)
    assert cat["color_g_r"].unit == "mag"
    assert "color_g_i" not in cat.colnames  # consecutive bands only


def test_measure_with_a_mapping_is_measure_bands(three_bands):
    images, seg = three_bands
    rms = {"g": 0.01, "r": 0.02, "i": 0.03}
    a = measure(images, seg, rms=rms, sersic=False)
    b = measure_bands(images, seg, rms=rms, sersic=False)
    assert a.colnames == b.colnames
    for col in a.colnames:
        np.testing.assert_array_equal(a[col], b[col])
    # the statmorph set per band: each band's flux_err follows its own rms
    assert np.all(a["flux_err_i"] > a["flux_err_r"]) and np.all(a["flux_err_r"] > a["flux_err_g"])
    assert np.all(np.isfinite(a["gini_r"])) and np.all(np.isfinite(a["asymmetry_i"]))


def test_reference_band_and_columns(three_bands):
    images, seg = three_bands
    cat = measure_bands(
        images, seg, rms=0.01, nonparametric=False, reference="i", band_columns=("flux", "m20")
    )
    alone = measure(images["i"], seg, rms=0.01, nonparametric=False)
    np.testing.assert_array_equal(cat["flux"], alone["flux"])
    assert {"m20_g", "m20_r", "m20_i"} <= set(cat.colnames)
    assert "gini_g" not in cat.colnames


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rms": {"g": 0.01, "r": 0.01}}, InputError, "missing \\['i'\\]"),
        ({"rms": {"g": 0.01, "r": 0.01, "i": 0.01, "z": 0.01}}, InputError, "unknown \\['z'\\]"),
        ({"reference": "z"}, ParameterError, "reference"),
        ({"band_columns": ("flux", "no_such_column")}, ParameterError, "band_columns"),
        ({"band_columns": "flux"}, ParameterError, "band_columns"),
    ],
)
def test_bad_arguments(three_bands, kwargs, error, match):
    images, seg = three_bands
    kwargs = {"rms": 0.01, **kwargs}
    with pytest.raises(error, match=match):
        measure_bands(images, seg, nonparametric=False, **kwargs)
    with pytest.raises(InputError, match="mapping"):
        measure_bands({}, seg)
