import numpy as np
import pytest
from helpers import gaussian_source
from photutils.segmentation import SegmentationImage, SourceCatalog

from morphoscope import measure
from morphoscope.exceptions import InputError
from morphoscope.flags import Flag


@pytest.fixture
def two_sources():
    shape = (96, 128)
    img = gaussian_source(shape, 40.3, 50.7, 5000, 4.0, q=0.5, theta=0.6)
    img += gaussian_source(shape, 95.0, 40.0, 2000, 2.0)
    seg = np.zeros(shape, int)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    seg[np.hypot(xx - 40.3, yy - 50.7) < 24] = 1
    seg[np.hypot(xx - 95.0, yy - 40.0) < 14] = 2
    return img, seg


def test_noiseless_gaussians_match_analytic_truth(two_sources):
    img, seg = two_sources
    cat = measure(img, seg)
    a, b = cat[0], cat[1]
    assert a["xc_centroid"] == pytest.approx(40.3, abs=0.01)
    assert a["yc_centroid"] == pytest.approx(50.7, abs=0.01)
    assert a["flux"] == pytest.approx(5000, rel=0.01)
    assert a["ellipticity_centroid"] == pytest.approx(0.5, abs=0.01)
    assert a["elongation_centroid"] == pytest.approx(2.0, rel=0.02)
    assert a["orientation_centroid"] == pytest.approx(0.6, abs=0.01)
    assert a["semimajor_sigma"] == pytest.approx(4.0, rel=0.02)
    # Circular Gaussian: r50 = sigma sqrt(2 ln 2), r20 = sigma sqrt(-2 ln 0.8),
    # r80 = sigma sqrt(2 ln 5),
    # with sigma**2 = 2**2 + 1/12 for the pixelated image (sampling convolves with the pixel).
    s = np.sqrt(2.0**2 + 1 / 12)
    assert b["r50"] == pytest.approx(s * np.sqrt(2 * np.log(2)), rel=0.02)
    assert b["r20"] == pytest.approx(s * np.sqrt(-2 * np.log(0.8)), rel=0.05)
    assert b["r80"] == pytest.approx(s * np.sqrt(2 * np.log(5)), rel=0.02)
    assert b["concentration"] == pytest.approx(
        5 * np.log10(np.sqrt(2 * np.log(5)) / np.sqrt(-2 * np.log(0.8))), abs=0.1
    )
    assert b["asymmetry"] == pytest.approx(0.0, abs=0.01)
    assert list(cat["flag"]) == [0, 0]
    assert cat["xc_centroid"].unit == "pix" and cat["orientation_centroid"].unit == "rad"


def test_agrees_with_photutils_source_catalog(two_sources, rng):
    img, seg = two_sources
    noisy = img + rng.normal(0, 0.01, img.shape)
    ours = measure(noisy, seg, nonparametric=False)  # photutils' first-order definitions
    ref = SourceCatalog(noisy, SegmentationImage(seg))
    np.testing.assert_allclose(ours["xc_centroid"], ref.x_centroid, atol=1e-3)
    np.testing.assert_allclose(ours["yc_centroid"], ref.y_centroid, atol=1e-3)
    np.testing.assert_allclose(ours["flux"], ref.segment_flux, rtol=1e-6)
    np.testing.assert_allclose(ours["ellipticity_centroid"], ref.ellipticity.value, atol=2e-3)
    np.testing.assert_allclose(ours["gini"], ref.gini, rtol=1e-6)
    np.testing.assert_allclose(ours["area"], ref.area.value)


def test_gini_extremes():
    img = np.full((20, 20), 1e-3)
    img[5:10, 5:10] = 1.0
    seg = np.zeros((20, 20), int)
    seg[5:10, 5:10] = 1
    seg[12:17, 12:17] = 2
    img[12:17, 12:17] = 0.0
    img[14, 14] = 10.0
    cat = measure(img, seg, nonparametric=False)  # Gini over the whole segment
    assert cat["gini"][0] == pytest.approx(0.0, abs=1e-12)  # uniform light
    assert cat["gini"][1] == pytest.approx(1.0, abs=1e-12)  # all light in one pixel


def test_m20_more_negative_for_concentrated_light():
    shape = (80, 80)
    y, x = np.mgrid[:80, :80]
    r = np.hypot(x - 40, y - 40)
    seg = (r < 30).astype(int)
    concentrated = np.exp(-7.67 * ((r / 6.0) ** 0.25 - 1))  # de Vaucouleurs
    flat = np.exp(-r / 6.0)  # exponential disk
    m_dev = measure(concentrated, seg)["m20"][0]
    m_exp = measure(flat, seg)["m20"][0]
    assert m_dev < m_exp < -1.0
    del shape


def test_asymmetry_detects_an_offset_clump(rng):
    shape = (64, 64)
    sym = gaussian_source(shape, 32, 32, 4000, 4.0)
    lop = sym + gaussian_source(shape, 38, 32, 800, 1.5)
    seg = np.zeros(shape, int)
    seg[8:56, 8:56] = 1
    rms = 0.5
    a_sym = measure(sym + rng.normal(0, rms, shape), seg, rms=rms)["asymmetry"][0]
    a_lop = measure(lop + rng.normal(0, rms, shape), seg, rms=rms)["asymmetry"][0]
    assert abs(a_sym) < 0.05 < a_lop


def test_flags_and_nans_instead_of_exceptions(two_sources):
    img, seg = two_sources
    img = img.copy()
    seg = seg.copy()
    img[50, 40] = np.nan
    seg[0, 0:2] = 3  # tiny source on the edge with negative flux
    img[0, 0:2] = -1.0
    before_img, before_seg = img.copy(), seg.copy()
    cat = measure(img, seg, rms=1.0, labels=[1, 2, 3, 7])
    assert list(cat["label"]) == [1, 2, 3, 7]
    assert cat["flag"][0] & Flag.MASKED_PIXELS
    assert np.isfinite(cat["flux"][0])
    assert cat["flag"][2] & Flag.EDGE and cat["flag"][2] & Flag.NONPOSITIVE_FLUX
    assert cat["flag"][2] & Flag.SMALL and np.isnan(cat["gini"][2])
    assert np.isnan(cat["flux"][3]) and cat["flag"][3] & Flag.SMALL  # absent label
    assert np.array_equal(img, before_img, equal_nan=True) and np.array_equal(seg, before_seg)


def test_errors_and_sn(two_sources):
    img, seg = two_sources
    cat = measure(img, seg, rms=2.0, nonparametric=False)  # S/N over the whole segment
    assert cat["flux_err"][1] == pytest.approx(2.0 * np.sqrt(cat["area"][1]))
    assert cat["sn_per_pixel"][0] == pytest.approx(np.mean(img[seg == 1] / 2.0))


@pytest.mark.parametrize(
    ("seg", "message"),
    [
        (np.full((96, 128), -1), "must be >= 0"),
        (np.full((96, 128), 0.5), "whole numbers"),
        (np.zeros((10, 10), int), "does not match"),
    ],
)
def test_bad_segmaps(two_sources, seg, message):
    with pytest.raises(InputError, match=f"segmap: .*{message}"):
        measure(two_sources[0], seg)


def test_empty_segmap_gives_empty_table(two_sources):
    cat = measure(two_sources[0], np.zeros((96, 128), int))
    assert len(cat) == 0 and "gini" in cat.colnames
