"""``measure(..., doublesersic=True)``: statmorph's double-Sersic fit on catalog sources."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import BULGE_DISK, bulge_disk_image, gaussian_psf

from morphoscope import measure
from morphoscope.exceptions import ParameterError
from morphoscope.measure import DOUBLESERSIC_COLUMNS, measure_stamps
from morphoscope.simulate import simulate_stamps


@pytest.fixture(scope="module")
def bulge_disk():
    shape = (64, 64)
    psf = gaussian_psf(25, 3.0)
    model = bulge_disk_image(shape, BULGE_DISK, psf)
    sigma = 0.005
    img = model + np.random.default_rng(5).normal(0, sigma, shape)
    seg = (model > 3 * sigma).astype(int)
    return img, seg, sigma, psf


def test_bulge_and_disk_recovered(bulge_disk):
    img, seg, sigma, psf = bulge_disk
    before = img.copy()
    cat = measure(img, seg, rms=sigma, psf=psf, doublesersic=True)
    assert np.array_equal(img, before)
    assert set(DOUBLESERSIC_COLUMNS) <= set(cat.colnames)
    row = cat[0]
    assert row["flag_doublesersic"] == 0
    # the inner starting fit makes component 1 the bulge, the outer one component 2 the disk
    got = np.array([row[f"doublesersic_{q}"] for q in ("rhalf1", "n1", "rhalf2", "n2")])
    err = np.array([row[f"doublesersic_{q}_err"] for q in ("rhalf1", "n1", "rhalf2", "n2")])
    truth = BULGE_DISK[[3, 4, 8, 9]]
    assert np.all(np.abs(got - truth) < 5 * err + 0.02 * truth), (got, err)
    assert abs(row["doublesersic_xc"] - BULGE_DISK[0]) < 0.05
    assert abs(row["doublesersic_chi2_dof"] - 1) < 0.1
    # two components describe this galaxy better than one, by every criterion
    assert row["doublesersic_chi2_dof"] < row["sersic_chi2_dof"]
    assert row["doublesersic_aic"] < row["sersic_aic"]
    assert row["doublesersic_bic"] < row["sersic_bic"]


def test_information_criteria_follow_chi2(bulge_disk):
    """AIC and BIC are astropy's least-squares forms of the fit's chi^2: recover chi^2 and
    the number of fitted pixels from them and compare with ``chi2_dof``."""
    img, seg, sigma, psf = bulge_disk
    cat = measure(img, seg, rms=sigma, psf=psf, doublesersic=True)
    for prefix, k in (("sersic", 7), ("doublesersic", 12)):
        aic, bic = float(cat[f"{prefix}_aic"][0]), float(cat[f"{prefix}_bic"][0])
        n_valid = np.exp((2 * k - (aic - bic)) / k)  # aic - bic = 2k - k ln(n) for n > 40 k
        assert abs(n_valid - round(n_valid)) < 1e-6
        chi2 = n_valid * np.exp((aic - 2 * k) / n_valid)
        np.testing.assert_allclose(chi2 / (n_valid - k), cat[f"{prefix}_chi2_dof"][0], rtol=1e-9)


def test_needs_the_single_fit(bulge_disk):
    img, seg, sigma, psf = bulge_disk
    with pytest.raises(ParameterError, match="doublesersic"):
        measure(img, seg, rms=sigma, psf=psf, sersic=False, doublesersic=True)
    with pytest.raises(ParameterError, match="doublesersic"):
        measure_stamps([img], [seg], rms=sigma, psfs=psf, sersic=False, doublesersic=True)
    # off by default: no double-Sersic columns
    assert "flag_doublesersic" not in measure(img, seg, rms=sigma, psf=psf).colnames


def test_every_stamp_gets_a_flag_never_an_exception():
    st = simulate_stamps(12, size=48, seed=4)
    images = list(st.images)
    segmaps = list(st.segmaps)
    segmaps[3] = np.zeros_like(segmaps[3])  # nothing to measure
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cat = measure_stamps(images, segmaps, rms=st.rms, psfs=st.psfs, doublesersic=True)
    flags = np.asarray(cat["flag_doublesersic"])
    assert set(flags) <= {0, 1, 2, 4}
    assert flags[3] == 4 and np.isnan(cat["doublesersic_n1"][3])
    # a double fit runs wherever the single fit gave parameters to start from
    ran = np.isfinite(np.asarray(cat["sersic_n"]))
    assert np.all(flags[ran] < 4) and np.all(flags[~ran] == 4)
    good = flags <= 1
    assert good.sum() >= 6
    assert np.all(np.isfinite(np.asarray(cat["doublesersic_rhalf2_err"])[good]))


def test_torch_device_gives_the_same_catalog(bulge_disk):
    """``device="cpu"`` runs the single and double fits on PyTorch tensors: same results."""
    pytest.importorskip("torch")
    img, seg, sigma, psf = bulge_disk
    ref = measure(img, seg, rms=sigma, psf=psf, doublesersic=True)
    got = measure(img, seg, rms=sigma, psf=psf, doublesersic=True, device="cpu")
    assert ref.colnames == got.colnames
    for col in ref.colnames:
        a, b = np.asarray(ref[col], float), np.asarray(got[col], float)
        if col.startswith(("sersic_", "doublesersic_")):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-8, err_msg=col)
        else:
            np.testing.assert_array_equal(b, a, err_msg=col)


def test_tied_ellipticity_and_angle():
    """``doublesersic_tied_ellip``: one ellipticity and angle for both components, recovered
    from a bulge and disk that share them; 10 free parameters."""
    shape = (64, 64)
    psf = gaussian_psf(25, 3.0)
    truth = BULGE_DISK.copy()
    truth[10:12] = truth[5:7]  # the disk shares the bulge's shape
    model = bulge_disk_image(shape, truth, psf)
    sigma = 0.005
    img = model + np.random.default_rng(8).normal(0, sigma, shape)
    seg = (model > 3 * sigma).astype(int)
    row = measure(img, seg, rms=sigma, psf=psf, doublesersic=True, doublesersic_tied_ellip=True)[0]
    assert row["flag_doublesersic"] == 0
    assert row["doublesersic_ellip2"] == row["doublesersic_ellip1"]
    assert row["doublesersic_theta2"] == row["doublesersic_theta1"]
    assert row["doublesersic_ellip2_err"] == row["doublesersic_ellip1_err"]
    for q, k in (("rhalf1", 3), ("n1", 4), ("ellip1", 5), ("rhalf2", 8), ("n2", 9)):
        err = row[f"doublesersic_{q}_err"]
        assert abs(row[f"doublesersic_{q}"] - truth[k]) < 5 * err + 0.02 * truth[k], q
    # the information criteria count 10 free parameters
    aic, bic = float(row["doublesersic_aic"]), float(row["doublesersic_bic"])
    n_valid = np.exp((20 - (aic - bic)) / 10)
    assert abs(n_valid - round(n_valid)) < 1e-6


@pytest.mark.parametrize(
    ("ellip", "theta", "r_bulge", "amp_bulge"), [(0.3, 0.6, 2.5, 8.0), (0.35, 0.5, 2.0, 12.0)]
)
def test_bright_compact_bulge(ellip, theta, r_bulge, amp_bulge):
    """A bright compact bulge: from statmorph's start the fit ends with n1 at its limit (the
    inner starting fit runs toward n = 20); the bulge + disk restart finds the truth."""
    shape = (64, 64)
    psf = gaussian_psf(25, 3.0)
    truth = BULGE_DISK.copy()
    truth[[5, 10]], truth[[6, 11]] = ellip, theta
    truth[2], truth[3] = amp_bulge, r_bulge
    model = bulge_disk_image(shape, truth, psf)
    sigma = 0.005
    img = model + np.random.default_rng(8).normal(0, sigma, shape)
    seg = (model > 3 * sigma).astype(int)
    row = measure(img, seg, rms=sigma, psf=psf, doublesersic=True)[0]
    assert row["flag_doublesersic"] == 0
    assert abs(row["doublesersic_chi2_dof"] - 1) < 0.1
    for q, k in (("rhalf1", 3), ("n1", 4), ("rhalf2", 8), ("n2", 9)):
        err = row[f"doublesersic_{q}_err"]
        assert abs(row[f"doublesersic_{q}"] - truth[k]) < 5 * err + 0.03 * truth[k], q
