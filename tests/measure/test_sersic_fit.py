"""The batched Sersic fit: its convolution, its end point and its uncertainties."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import BULGE_DISK, bulge_disk_image, gaussian_psf, sersic_image
from scipy.signal import fftconvolve

from morphoscope.measure.sersic import (
    SersicProblem,
    _convolve_same,
    _psf_transform,
    fit_sersic_batch,
)


@pytest.mark.parametrize(
    ("shape", "ksize"), [((48, 48), 37), ((48, 64), 25), ((33, 20), 8), ((16, 16), 41)]
)
def test_convolution_is_fftconvolve_same(shape, ksize):
    rng = np.random.default_rng(ksize)
    imgs = rng.normal(size=(3, *shape))
    psfs = np.stack([gaussian_psf(ksize, f, dx=0.7) for f in (2.0, 3.5, 6.0)])
    kern, full, off = _psf_transform(psfs, shape)
    got = _convolve_same(imgs, kern, full, off)
    for b in range(3):
        want = fftconvolve(imgs[b], psfs[b], mode="same")
        np.testing.assert_allclose(got[b], want, rtol=0, atol=1e-12)
    # one derivative axis in the middle, single precision
    two = imgs[:, None].astype(np.float32).repeat(2, axis=1)
    got32 = _convolve_same(two, kern.astype(np.complex64)[:, None], full, off)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32[:, 1], got[:, :], rtol=0, atol=2e-5)


@pytest.mark.parametrize("n", [0.7, 1.0, 2.5, 4.0])
def test_noiseless_fit_reaches_the_truth(n):
    shape = (48, 48)
    psf = gaussian_psf(25, 3.0)
    truth = np.array([5.0, 6.0, n, 23.6, 24.3, 0.35, 0.6])
    img = fftconvolve(sersic_image(shape, *truth), psf, mode="same")
    start = truth * np.array([0.7, 1.3, 1.0, 1.0, 1.0, 0.6, 1.2])
    start[2] = 1.5
    start[3:5] += (1.2, -0.8)
    res = fit_sersic_batch([SersicProblem(img, np.full(shape, 10.0), start, psf)])
    assert res["converged"][0]
    np.testing.assert_allclose(res["params"][0], truth, rtol=2e-4)


def test_uncertainties_describe_the_scatter():
    """Pulls (fit - truth) / error of 60 noisy realisations have unit width."""
    rng = np.random.default_rng(7)
    shape = (48, 48)
    psf = gaussian_psf(25, 2.5)
    truth = np.array([2.0, 5.0, 1.8, 24.2, 23.7, 0.4, 1.0])
    model = fftconvolve(sersic_image(shape, *truth), psf, mode="same")
    sigma = 0.1
    weights = np.full(shape, 1 / sigma)
    noisy = [model + rng.normal(0, sigma, shape) for _ in range(60)]
    pbs = [SersicProblem(img, weights, truth * 1.1, psf) for img in noisy]
    res = fit_sersic_batch(pbs)
    assert res["converged"].all()
    pull = (res["params"] - truth) / res["errors"]
    width = np.std(pull, axis=0)
    assert np.all((width > 0.7) & (width < 1.4)), width
    assert np.all(np.abs(np.mean(pull, axis=0)) < 0.5)


def test_torch_path_gives_the_numpy_fits():
    """``device=``: the same algorithm on PyTorch tensors (here on the CPU) ends where the
    numpy path does, for noisy galaxies of several shapes, PSFs and a padded stamp."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    pbs = []
    for k, (shape, n) in enumerate([((48, 48), 1.0), ((48, 48), 3.0), ((40, 44), 1.5)] * 4):
        truth = np.array([3.0, 5.0 + k % 3, n, shape[1] / 2 - 0.3, shape[0] / 2 + 0.4, 0.3, 0.7])
        psf = gaussian_psf(21, 2.0 + 0.3 * k)
        img = fftconvolve(sersic_image(shape, *truth), psf, mode="same")
        img = img + rng.normal(0, 0.05, shape)
        pbs.append(SersicProblem(img, np.full(shape, 20.0), truth * 1.15, psf))
    ref = fit_sersic_batch(pbs)
    got = fit_sersic_batch(pbs, device="cpu")
    assert ref["converged"].all() and got["converged"].all()
    np.testing.assert_allclose(got["params"], ref["params"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got["errors"], ref["errors"], rtol=1e-3)
    np.testing.assert_allclose(got["chi2_dof"], ref["chi2_dof"], rtol=1e-7)
    # and the fits are right: the truth is within a few sigma
    truths = np.stack([pb.start / 1.15 for pb in pbs])
    assert np.all(np.abs(got["params"] - truths) < 5 * got["errors"])


def test_device_argument_is_checked():
    from morphoscope.exceptions import ParameterError
    from morphoscope.measure import measure

    img = np.zeros((20, 20))
    img[8:12, 8:12] = 1.0
    seg = (img > 0).astype(int)
    for bad in ("no-such-device", 3):
        with pytest.raises(ParameterError, match="device"):
            measure(img, seg, rms=0.1, device=bad)
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="PyTorch sees no cuda"):
            measure(img, seg, rms=0.1, device="cuda")
    # without the fit the device is not used, hence not checked
    measure(img, seg, rms=0.1, sersic=False, device="cuda")


def test_double_fit_recovers_bulge_and_disk():
    shape = (64, 64)
    psf = gaussian_psf(25, 3.0)
    img = bulge_disk_image(shape, BULGE_DISK, psf)
    start = BULGE_DISK * np.array([1.01, 0.99, 0.7, 1.3, 0.8, 1.5, 1.1, 1.2, 0.85, 1.3, 0.8, 1.1])
    rng = np.random.default_rng(11)
    pbs = [SersicProblem(img, np.full(shape, 100.0), start, psf)]
    pbs += [
        SersicProblem(img + rng.normal(0, 0.01, shape), np.full(shape, 100.0), start, psf)
        for _ in range(20)
    ]
    res = fit_sersic_batch(pbs, model="double")
    assert res["converged"].all() and not res["at_bound"].any()
    np.testing.assert_allclose(res["params"][0], BULGE_DISK, rtol=1e-5)
    assert res["chi2_dof"][0] < 1e-10
    pull = (res["params"][1:] - BULGE_DISK) / res["errors"][1:]
    assert np.all(np.std(pull, axis=0) < 1.6) and np.all(np.abs(pull.mean(axis=0)) < 1.0)
    np.testing.assert_allclose(res["chi2_dof"][1:], 1.0, atol=0.1)


def test_fixed_parameters_keep_their_start():
    shape = (48, 48)
    psf = gaussian_psf(25, 3.0)
    truth = np.array([5.0, 6.0, 1.5, 23.6, 24.3, 0.35, 0.6])
    img = fftconvolve(sersic_image(shape, *truth), psf, mode="same")
    fixed = np.zeros(7, bool)
    fixed[3:5] = True
    start = truth * np.array([0.7, 1.3, 1.5, 1.0, 1.0, 0.6, 1.2])
    shifted = start.copy()
    shifted[3] += 1.0  # the centre held one pixel off
    res = fit_sersic_batch(
        [
            SersicProblem(img, np.full(shape, 10.0), start, psf, fixed=fixed),
            SersicProblem(img, np.full(shape, 10.0), shifted, psf, fixed=fixed),
        ]
    )
    assert res["converged"].all()
    np.testing.assert_allclose(res["params"][0], truth, rtol=1e-4)  # right centre: the truth
    assert res["params"][1, 3] == shifted[3] and res["params"][1, 4] == shifted[4]
    assert res["chi2_dof"][1] > 1e3 * res["chi2_dof"][0]  # wrong centre: a worse fit
    assert np.all(res["errors"][:, 3:5] == 0)
    assert np.all(res["errors"][:, [0, 1, 2, 5, 6]] > 0)


def test_model_and_start_size_are_checked():
    from morphoscope.exceptions import ParameterError

    pb = SersicProblem(np.ones((20, 20)), np.ones((20, 20)), np.ones(7))
    with pytest.raises(ParameterError, match="model"):
        fit_sersic_batch([pb], model="triple")
    with pytest.raises(ParameterError, match="12 values"):
        fit_sersic_batch([pb], model="double")
