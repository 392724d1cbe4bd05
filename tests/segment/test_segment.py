import numpy as np
import pytest
from helpers import gaussian_source
from photutils.segmentation import SegmentationImage
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

from morphoscope import segment
from morphoscope.exceptions import InputError, ParameterError
from morphoscope.flags import Flag
from morphoscope.pipeline.evaluate import match_sources, segment_positions
from morphoscope.segment import estimate_background, psf_fwhm, segment_image, segment_zhu


def test_recovers_isolated_sources(random_field):
    img, truth_xy, _, _ = random_field
    seg = segment(img, rms=1.0, background=None)
    labels, x, y = segment_positions(seg, img)
    d, t = match_sources(x, y, truth_xy[:, 0], truth_xy[:, 1], 1.0)
    assert t.size == len(truth_xy)  # every source found
    assert labels.size == len(truth_xy)  # nothing else
    err = np.hypot(x[d] - truth_xy[t, 0], y[d] - truth_xy[t, 1])
    assert np.median(err) < 0.15
    SegmentationImage(seg)  # usable by photutils


def test_pure_noise_gives_almost_no_detections(rng):
    img = rng.normal(0, 1, (1024, 1024))
    seg = segment(img, rms=1.0, background=None)
    assert seg.max() <= 3  # about one per 10^6 pixels


def test_splits_touching_pair_but_not_a_single_disk(rng):
    shape = (96, 96)
    pair = gaussian_source(shape, 40, 48, 3000, 3.0) + gaussian_source(shape, 52, 48, 1500, 3.0)
    img = pair + rng.normal(0, 1, shape)
    seg = segment(img, rms=1.0, background=None)
    assert seg.max() == 2
    assert seg[48, 40] != seg[48, 52] and seg[48, 40] > 0 and seg[48, 52] > 0
    # A bright exponential disk with faint knots stays one source.
    y, x = np.mgrid[:96, :96]
    r = np.hypot(x - 48, y - 48)
    disk = 200 * np.exp(-r / 6.0)
    for kx, ky in [(56, 50), (42, 41), (50, 38)]:
        disk += gaussian_source(shape, kx, ky, 300, 1.2)
    seg = segment(disk + rng.normal(0, 1, shape), rms=1.0, background=None)
    assert seg.max() == 1


def test_flags_deblended_edge_and_masked(rng):
    shape = (80, 80)
    img = rng.normal(0, 1, shape)
    img += gaussian_source(shape, 30, 40, 3000, 2.5) + gaussian_source(shape, 40, 40, 3000, 2.5)
    img += gaussian_source(shape, 2, 70, 2000, 2.5)
    img[40, 66:70] = np.nan
    img += gaussian_source(shape, 68, 40, 3000, 2.5)
    res = segment_image(img, rms=1.0, background=None)
    flags = res.flags
    lab_pair = res.segmap[40, 30], res.segmap[40, 40]
    assert all(flags[lab] & Flag.DEBLENDED for lab in lab_pair)
    assert flags[res.segmap[70, 2]] & Flag.EDGE
    masked = res.segmap[40, 64]
    assert masked > 0 and flags[masked] & Flag.MASKED_PIXELS
    assert res.bad[40, 66:70].all() and (res.segmap[40, 66:70] == 0).all()


def test_dtype_and_byte_order_do_not_change_the_result(random_field):
    img = random_field[0]
    ref = segment(img, rms=1.0, background=None)
    for arr in (img.astype(np.float32), img.astype(">f4"), img.astype(">f8")):
        np.testing.assert_array_equal(segment(arr, rms=1.0, background=None), ref)


def test_input_not_modified(random_field):
    img = random_field[0].copy()
    img[10, 10] = np.nan
    before = img.copy()
    segment(img)
    assert np.array_equal(img, before, equal_nan=True)


def test_background_is_estimated_and_removed(random_field):
    sky = 50.0 + np.linspace(0, 0.5, 256)[None, :]  # a gradient of 0.5 sigma across the field
    res = segment_image(random_field[0] + sky)
    error = (res.background - sky)[32:-32, 32:-32]
    assert np.median(np.abs(error)) < 0.1
    assert abs(np.median(res.rms) - 1.0) < 0.05
    assert res.nlabels == 25


def test_zhu_method_reproduces_the_reference_recipe(random_field):
    img = random_field[0]
    rms = np.ones_like(img)
    mask = img > 3 * rms
    distance = ndimage.distance_transform_edt(mask)
    coords = peak_local_max(
        distance, footprint=np.ones((3, 3)), labels=ndimage.label(mask)[0], min_distance=5
    )
    markers = np.zeros(img.shape, int)
    markers[tuple(coords.T)] = np.arange(1, len(coords) + 1)
    expected = watershed(-distance, markers, mask=mask)
    got = segment(img, rms=rms, method="zhu", background=None)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(segment_zhu(img, rms), expected)


def test_psf_sets_the_kernel():
    y, x = np.mgrid[-12:13, -12:13]
    psf = np.exp(-(x**2 + y**2) / (2 * 1.5**2))
    assert abs(psf_fwhm(psf) - 1.5 * 2.3548) < 0.1
    img = gaussian_source((64, 64), 30, 30, 500, 1.5) + np.random.default_rng(1).normal(
        0, 1, (64, 64)
    )
    res = segment_image(img, rms=1.0, psf=psf, background=None)
    assert abs(res.params["kernel_fwhm"] - 3.53) < 0.1 and res.nlabels == 1


def test_estimate_background_masks_sources(random_field):
    img = random_field[0] + 10.0
    bkg, rms = estimate_background(img)
    assert abs(np.median(bkg) - 10.0) < 0.05
    assert abs(np.median(rms) - 1.0) < 0.05


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"method": "sextractor"}, "method"),
        ({"npixels": 0}, "npixels"),
        ({"npixels": 2.5}, "npixels"),
        ({"contrast": -1}, "contrast"),
        ({"background": "median"}, "background"),
    ],
)
def test_parameter_errors(random_field, kwargs, name):
    with pytest.raises(ParameterError, match=f"The '{name}' parameter must be"):
        segment(random_field[0], rms=1.0, **kwargs)


def test_bad_inputs_raise_input_error(random_field):
    img = random_field[0]
    with pytest.raises(InputError, match="rms: shape"):
        segment(img, rms=np.ones((5, 5)))
    with pytest.raises(InputError, match="mask: shape"):
        segment(img, mask=np.ones((5, 5), bool))
    with pytest.raises(InputError, match="image: expected a 2-D image"):
        segment(img[0])


@pytest.mark.parametrize("profile", ["moffat", "gaussian"])
@pytest.mark.parametrize("fwhm", [1.5, 2.2, 3.0, 6.0])
def test_psf_fwhm_of_sampled_profiles(profile, fwhm):
    # PSF images as the simulator draws them (centred, sampled without a pixel response):
    # the FWHM is the continuous profile's, which SersicNet was trained with, also for
    # undersampled PSFs where interpolating the samples linearly reads it 10-18 % small.
    galsim = pytest.importorskip("galsim")
    obj = galsim.Moffat(beta=3.0, fwhm=fwhm) if profile == "moffat" else galsim.Gaussian(fwhm=fwhm)
    img = obj.drawImage(nx=41, ny=41, scale=1.0, method="no_pixel").array
    assert psf_fwhm(img) == pytest.approx(fwhm, rel=0.04)
