"""Training stamps: shapes, truth and noise."""

from __future__ import annotations

import numpy as np
import pytest

from morphoscope.exceptions import ParameterError
from morphoscope.simulate import CLASS_NAMES, Band, simulate_stamps


@pytest.fixture(scope="module")
def stamps():
    return simulate_stamps(40, size=48, seed=3, neighbours=0.5)


def test_shapes_and_dtypes(stamps):
    n, size = 40, 48
    assert len(stamps) == n
    for arr in (stamps.images, stamps.noiseless):
        assert arr.shape == (n, size, size) and arr.dtype == np.float32
    assert stamps.segmaps.shape == (n, size, size) and stamps.segmaps.dtype == np.int32
    assert stamps.classmaps.shape == (n, size, size) and stamps.classmaps.dtype == np.uint8
    assert stamps.rms.shape == (n,) and stamps.psf_fwhm.shape == (n,)
    assert len(stamps.truth) == n
    expected = {"class", "class_id", "n", "r_e", "q", "pa", "flux", "x_offset", "y_offset", "snr",
                "has_neighbour"}  # fmt: skip
    assert expected <= set(stamps.truth.colnames)
    assert np.all((stamps.psf_fwhm >= 1.5) & (stamps.psf_fwhm <= 6.0))
    assert np.all((stamps.truth["snr"] >= 5) & (stamps.truth["snr"] <= 500))
    for row in stamps.truth:
        assert CLASS_NAMES[row["class_id"]] == row["class"]
    assert stamps.truth["has_neighbour"].any() and not stamps.truth["has_neighbour"].all()


def test_determinism():
    a = simulate_stamps(5, size=32, seed=9)
    b = simulate_stamps(5, size=32, seed=9)
    c = simulate_stamps(5, size=32, seed=10)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.segmaps, b.segmaps)
    assert not np.array_equal(a.images, c.images)


def test_noise_and_snr(stamps):
    resid = stamps.images - stamps.noiseless
    assert np.allclose(resid.std(axis=(1, 2)), stamps.rms, rtol=0.1)
    solo = ~stamps.truth["has_neighbour"]
    model = stamps.noiseless[solo].astype(float)
    snr = np.sqrt((model**2).sum(axis=(1, 2))) / stamps.rms[solo]
    assert np.allclose(snr, stamps.truth["snr"][solo], rtol=1e-4)


def test_truth_matches_pixels_of_isolated_stamps():
    st = simulate_stamps(
        12, size=64, seed=1, neighbours=0.0, r_e_range=(2.0, 5.0), psf_fwhm_range=(2.0, 3.0)
    )
    yy, xx = np.mgrid[0:64, 0:64]
    for i, row in enumerate(st.truth):
        img = st.noiseless[i].astype(float)
        assert img.sum() == pytest.approx(row["flux"], rel=0.02)
        xc, yc = (img * xx).sum() / img.sum(), (img * yy).sum() / img.sum()
        assert xc - 31.5 == pytest.approx(row["x_offset"], abs=0.2)
        assert yc - 31.5 == pytest.approx(row["y_offset"], abs=0.2)
        assert abs(row["x_offset"]) < 2 and abs(row["y_offset"]) < 2


def test_segmaps_and_classmaps(stamps):
    for i, row in enumerate(stamps.truth):
        seg, cmap = stamps.segmaps[i], stamps.classmaps[i]
        labels = set(np.unique(seg)) - {0}
        assert labels <= ({1, 2} if row["has_neighbour"] else {1})
        if stamps.noiseless[i].max() > 2 * stamps.rms[i] and not row["has_neighbour"]:
            assert 1 in labels
        assert np.all(cmap[seg == 1] == row["class_id"])
        assert np.array_equal(cmap == 0, seg == 0)
        if row["snr"] > 30 and not row["has_neighbour"]:
            assert np.all(seg[23:25, 23:25] == 1)  # the stamp centre belongs to the galaxy


def test_band_with_psf_image_and_gaussian():
    yy, xx = np.mgrid[-6:7, -6:7]
    psf = np.exp(-(xx**2 + yy**2) / 4.0)
    st = simulate_stamps(3, size=32, band=Band("U", psf=psf), seed=0, neighbours=0)
    assert np.allclose(st.psfs[0], psf / psf.sum(), atol=1e-6)
    g = simulate_stamps(3, size=32, band=Band("G", psf="gaussian"), seed=0)
    assert np.all((g.psf_fwhm >= 1.5) & (g.psf_fwhm <= 6))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n": -1}, "n"),
        ({"size": 8}, "size"),
        ({"snr_range": (0, 10)}, "snr_range"),
        ({"psf_fwhm_range": (3, 1)}, "psf_fwhm_range"),
        ({"neighbours": 2}, "neighbours"),
        ({"band": "F200W"}, "band"),
        ({"class_fractions": {"bar": 1}}, "class_fractions"),
    ],
)
def test_parameter_errors(kwargs, name):
    kwargs = {"n": 2, **kwargs}
    with pytest.raises(ParameterError, match=f"The '{name}' parameter must be"):
        simulate_stamps(**kwargs)
