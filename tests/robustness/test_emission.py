"""emission.search on bad images, positions, maps and parameters."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from robustness.bad_inputs import IMAGES, disc_segmap, galaxy
from robustness.checks import outcome

from morphoscope.emission import search
from morphoscope.flags import Flag

POS = np.array([[19.2, 25.6], [44.8, 38.4]])
# The subset of images that exercises emission's own code paths (the shared validation is
# covered once per image in test_arrays).
EMISSION_IMAGES = [
    c for c in IMAGES
    if c[0] in {
        "clean", "nan_in_source", "inf_in_source", "nan_border_drizzle", "all_nan", "all_zero",
        "constant", "shape_2x2", "one_d", "cube_3_planes", "cube_1_plane", "int16", "bool",
        "big_endian_f4", "complex", "none", "ragged_list", "pure_noise", "zero_weight_stripe",
    }
]  # fmt: skip


@pytest.mark.parametrize("band", ["medium", "reference"])
@pytest.mark.parametrize(
    ("name", "build", "expect"), EMISSION_IMAGES, ids=[c[0] for c in EMISSION_IMAGES]
)
def test_search_bad_images(name, build, expect, band):
    bad = build()
    medium, reference = (bad, galaxy(seed=8)) if band == "medium" else (galaxy(seed=8), bad)
    status = outcome(
        search, medium, reference, rms_medium=1.0, rms_reference=1.0, positions=POS, names=(band,)
    )
    if expect == "ok":
        assert status[0] == "ok", status[1]
    elif expect == "error":
        assert status[0] == "error"
    if status[0] == "ok":
        table = status[1]
        assert len(table) == 2
        if name in ("nan_in_source", "inf_in_source"):
            assert table["flag"][0] & Flag.MASKED_PIXELS, "NaN pixels in the source not flagged"


POSITIONS = [
    ("empty_array", np.zeros((0, 2)), "ok"),
    ("outside_image", np.array([[-50.0, 10.0], [500.0, 500.0]]), "ok"),
    ("on_corner", np.array([[0.0, 0.0], [63.0, 63.0]]), "ok"),
    ("nan_position", np.array([[np.nan, 10.0], [20.0, 25.0]]), "ok"),
    ("inf_position", np.array([[np.inf, 10.0]]), "ok"),
    ("three_columns", np.ones((3, 3)), "error"),
    ("one_d_pair", np.array([19.0, 25.0]), "ok"),
    ("strings", np.array([["a", "b"]]), "error"),
    ("table_without_xy", Table({"flux": [1.0]}), "error"),
    ("table_empty", Table({"x": np.zeros(0), "y": np.zeros(0)}), "ok"),
    ("table_radec_no_wcs", Table({"ra": [150.0], "dec": [2.0]}), "error"),
    ("table_masked_xy", Table({"x": [19.0, 44.0], "y": [25.0, 38.0]}, masked=True), "ok"),
    ("table_string_xy", Table({"x": ["a"], "y": ["b"]}), "error"),
    ("duplicate_positions", np.array([[19.0, 25.0], [19.0, 25.0]]), "ok"),
]


@pytest.mark.parametrize(("name", "positions", "expect"), POSITIONS, ids=[c[0] for c in POSITIONS])
def test_search_bad_positions(name, positions, expect):
    status = outcome(
        search, galaxy(), galaxy(seed=8), rms_medium=1.0, rms_reference=1.0,
        positions=positions, names=("positions",),
    )  # fmt: skip
    if expect == "ok":
        assert status[0] == "ok", status[1]
    else:
        assert status[0] == "error"
    if status[0] == "ok":
        table = status[1]
        x = np.asarray(table["x"], float)
        y = np.asarray(table["y"], float)
        outside = ~(np.isfinite(x) & np.isfinite(y)) | (x < 0) | (y < 0) | (x > 63) | (y > 63)
        for flag in np.asarray(table["flag"])[outside]:
            assert flag & Flag.MEASURE_FAILED, "a source outside the image has no flag"
        assert not np.any(np.asarray(table["candidate"])[outside])


MAPS = [
    ("rms_medium", 0.0, "error"),
    ("rms_medium", -1.0, "error"),
    ("rms_medium", np.ones((32, 32)), "error"),
    ("rms_medium", np.zeros((64, 64)), "error"),
    ("rms_reference", [1.0, 1.0], "error"),
    ("rms_reference", np.full((64, 64), np.nan), "error"),
    ("reference", [], "error"),
    ("reference", np.ones((32, 32)), "error"),
    ("segmap", np.ones((32, 32), int), "error"),
    ("segmap", disc_segmap(), "ok"),
    ("psf_medium", np.ones((5, 5)), "error"),
    ("keep_cutouts", "some", "error"),
    ("n_sigma", -1.0, "error"),
    ("eps", 0.0, "error"),
    ("min_samples", 0, "error"),
    ("cutout_size", 2, "error"),
    ("combine", "average", "error"),
    ("no_such_parameter", 1, "error"),
]


@pytest.mark.parametrize(("key", "value", "expect"), MAPS, ids=[f"{k}-{i}" for i, (k, _, _) in
                                                                  enumerate(MAPS)])
def test_search_bad_maps_and_parameters(key, value, expect):
    kwargs = {"rms_medium": 1.0, "rms_reference": 1.0, "positions": POS}
    args = [galaxy(), galaxy(seed=8)]
    if key == "reference":
        args[1] = value
    else:
        kwargs[key] = value
    names = (key, "psf_reference") if key == "psf_medium" else (key,)
    status = outcome(search, *args, **kwargs, names=names)
    if expect == "ok":
        assert status[0] == "ok", status[1]
    else:
        assert status[0] == "error", f"{key}={value!r} accepted"
