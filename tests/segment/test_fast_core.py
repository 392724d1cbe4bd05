"""The fast core of the default method checked against the libraries it replaces."""

import warnings

import numpy as np
import pytest
from astropy.stats import SigmaClip
from helpers import gaussian_source
from scipy import ndimage

from morphoscope.segment import detect_sources, estimate_background, segment_image, smooth_image
from morphoscope.segment.background import background_mesh, interpolate_mesh
from morphoscope.segment.deblend import pack_detections


def test_smooth_image_equals_scipy_gaussian(rng):
    for shape in [(300, 280), (7, 5), (2, 40)]:
        img = rng.normal(size=shape).astype(np.float32)
        sm, gain = smooth_image(img, 2.5)
        sigma = 2.5 / (2 * np.sqrt(2 * np.log(2)))
        ref = ndimage.gaussian_filter(img.astype(float), sigma, mode="constant", truncate=3.0)
        assert sm.dtype == np.float32
        np.testing.assert_allclose(sm, ref, atol=1e-6)
        # The gain is the noise of smoothed unit white noise.
        if shape == (300, 280):
            assert abs(np.std(sm[10:-10, 10:-10]) / gain - 1) < 0.05


def test_background_mesh_matches_photutils(rng):
    """Box statistics equal photutils' Background2D (sigma-clipped median and std)."""
    from photutils.background import Background2D, MedianBackground, StdBackgroundRMS

    ny, nx = 256, 320
    y, x = np.mgrid[:ny, :nx]
    img = 10 + 0.01 * x - 0.02 * y + rng.normal(0, 2.0, (ny, nx))
    img += gaussian_source((ny, nx), 100, 100, 5e4, 3.0)
    ours = background_mesh(img, box_size=32, filter_size=1, step=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = Background2D(
            img,
            32,
            filter_size=1,
            sigma_clip=SigmaClip(sigma=3.0, maxiters=10),
            bkg_estimator=MedianBackground(),
            bkg_rms_estimator=StdBackgroundRMS(),
        )
    # Each box holds 1024 pixels: the median is known to ~0.08, the std to ~0.05. The box
    # holding the galaxy may converge to a slightly different clipped set.
    dbkg = np.abs(ours[0] - ref.background_mesh)
    drms = np.abs(ours[1] - ref.background_rms_mesh)
    assert np.median(dbkg) < 0.01 and np.max(dbkg) < 0.2
    assert np.median(drms) < 0.01 and np.max(drms) < 0.2


def test_interpolate_mesh_is_an_interpolating_spline():
    mesh = np.add.outer(np.arange(5.0), 2 * np.arange(6.0))  # a plane
    out = interpolate_mesh(mesh, (5 * 16, 6 * 16), 16)
    y, x = np.mgrid[: 5 * 16, : 6 * 16]
    plane = (y + 0.5) / 16 - 0.5 + 2 * ((x + 0.5) / 16 - 0.5)
    inside = (plane >= 0) & (plane <= mesh.max())
    np.testing.assert_allclose(out[inside], plane[inside], atol=1e-4)


def test_estimate_background_recovers_gradient_under_galaxies(rng):
    ny, nx = 512, 512
    y, x = np.mgrid[:ny, :nx]
    sky = 5.0 + 0.004 * x + 0.002 * y
    img = sky + rng.normal(0, 1.0, (ny, nx))
    for _ in range(30):
        img += gaussian_source((ny, nx), *rng.uniform(20, 490, 2), 3e3, rng.uniform(2, 6))
    bkg, rms = estimate_background(img, box_size=64)
    assert np.median(np.abs(bkg - sky)) < 0.05
    assert abs(np.median(rms) - 1.0) < 0.03
    bkg_only, none = estimate_background(img, box_size=64, rms=False)
    assert none is None and np.array_equal(bkg_only, bkg)


def test_detect_sources_min_snr_and_npixels(rng):
    shape = (128, 128)
    img = rng.normal(0, 1, shape).astype(np.float32)
    img += gaussian_source(shape, 30, 30, 400, 2.0)  # S/N ~ 50
    img += gaussian_source(shape, 90, 90, 40, 2.0)  # S/N ~ 5
    rms = np.ones(shape, np.float32)
    _, snr, lab, n = detect_sources(img, rms, fwhm=2.5, nsigma=3.0, npixels=5, min_snr=0)
    assert lab[30, 30] > 0 and lab[90, 90] > 0
    _, snr, lab, n = detect_sources(img, rms, fwhm=2.5, nsigma=3.0, npixels=5, min_snr=10)
    assert n == 1 and lab[30, 30] == 1 and lab[90, 90] == 0
    assert snr[30, 30] > 20 and snr[0, 0] == 0


def test_pack_detections_round_trip(rng):
    det, n = ndimage.label(rng.random((200, 150)) > 0.97, structure=np.ones((3, 3)))
    plab, pidx = pack_detections(det, n)
    inside = pidx >= 0
    # Every detected pixel appears once, with its label; packed detections never touch.
    assert np.array_equal(np.sort(pidx[inside]), np.flatnonzero(det))
    assert np.array_equal(det.ravel()[pidx[inside]], plab[inside])
    _, npacked = ndimage.label(plab > 0, structure=np.ones((3, 3)))
    _, norig = ndimage.label(det > 0, structure=np.ones((3, 3)))
    assert npacked == norig


def test_float32_and_float64_give_the_same_map(random_field):
    img = random_field[0]
    a = segment_image(img, rms=1.0).segmap
    b = segment_image(img.astype(np.float32), rms=1.0).segmap
    c = segment_image(img.astype(">f8"), rms=1.0).segmap
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_many_knots_stay_one_galaxy_but_a_group_splits(rng):
    shape = (128, 128)
    y, x = np.mgrid[:128, :128]
    r = np.hypot(x - 64, y - 64)
    galaxy = 60 * np.exp(-r / 10.0)
    angles = rng.uniform(0, 2 * np.pi, 8)
    radii = rng.uniform(6, 20, 8)
    for a, rad in zip(angles, radii, strict=True):
        galaxy += gaussian_source(shape, 64 + rad * np.cos(a), 64 + rad * np.sin(a), 250, 1.0)
    noisy = galaxy + rng.normal(0, 1, shape)
    res = segment_image(noisy, rms=1.0, background=None)
    assert res.segmap.max() == 1
    split = segment_image(noisy, rms=1.0, background=None, min_knots=0)
    assert split.segmap.max() > 1  # without the knot rule the knots split off
    # Three comparable galaxies in contact are three sources.
    group = sum(
        gaussian_source(shape, gx, gy, f, 3.0)
        for gx, gy, f in [(50, 64, 4000), (64, 70, 3000), (76, 60, 3500)]
    )
    res = segment_image(group + rng.normal(0, 1, shape), rms=1.0, background=None)
    assert res.segmap.max() == 3


@pytest.mark.parametrize("method", ["saddle", "zhu"])
def test_nan_regions_are_excluded_and_reported(rng, method):
    shape = (96, 96)
    img = rng.normal(0, 1, shape) + gaussian_source(shape, 40, 40, 3000, 2.5)
    img[:, :10] = np.nan  # a drizzle border
    res = segment_image(img, rms=1.0, background=None, method=method)
    assert res.bad[:, :10].all() and (res.segmap[:, :10] == 0).all()
    assert res.segmap[40, 40] > 0
