"""Single-Sérsic training stamps, normalisation and the network's shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from morphoscope.exceptions import ParameterError
from morphoscope.nn.sersic.model import TARGETS, SersicEncoderDecoder, normalise_stamps
from morphoscope.simulate import simulate_stamps


@pytest.fixture(scope="module")
def sersic_stamps():
    return simulate_stamps(
        30, seed=4, sersic_n_range=(0.5, 6.0), r_e_range=(1.0, 12.0), neighbours=0.0,
        class_fractions=[0.5, 0.5, 0.0, 0.0],
    )  # fmt: skip


def test_sersic_mode_truth(sersic_stamps):
    t = sersic_stamps.truth
    assert np.all((t["n"] >= 0.5) & (t["n"] <= 6.0))
    assert np.all((t["r_e"] >= 1.0) & (t["r_e"] <= 12.0))
    assert np.all((t["q"] >= 0.2) & (t["q"] <= 1.0))
    # The class follows the index, and n is spread over the whole range.
    assert set(t["class"][t["n"] >= 2.5]) <= {"spheroid"}
    assert set(t["class"][t["n"] < 2.5]) <= {"disk"}
    assert t["n"].min() < 1.0 and t["n"].max() > 3.0


def test_central_model_is_the_galaxy_alone():
    st = simulate_stamps(6, seed=5, neighbours=1.0, sersic_n_range=(1, 2),
                         class_fractions=[0, 1, 0, 0])  # fmt: skip
    assert st.central.shape == st.noiseless.shape
    # The neighbour is in the noiseless stamp but not in the central model.
    extra = (st.noiseless - st.central).sum(axis=(1, 2))
    assert np.all(extra > 0)
    # Small galaxies lie inside the stamp: the central model holds their flux.
    small = st.truth["r_e"] < 4
    if small.any():
        ratio = st.central.sum(axis=(1, 2))[small] / st.truth["flux"][small]
        assert np.all((ratio > 0.85) & (ratio < 1.01))


def test_default_mode_unchanged_by_sersic_option():
    a = simulate_stamps(3, size=32, seed=9)
    b = simulate_stamps(3, size=32, seed=9, sersic_n_range=None)
    np.testing.assert_array_equal(a.images, b.images)


def test_bad_sersic_range():
    with pytest.raises(ParameterError, match="sersic_n_range"):
        simulate_stamps(2, sersic_n_range=(3.0, 1.0))


def test_normalisation_is_unit_free(sersic_stamps):
    st = sersic_stamps
    x1, e1, s1 = normalise_stamps(st.images, st.rms, st.psf_fwhm)
    x2, e2, s2 = normalise_stamps(st.images * 1e4, st.rms * 1e4, st.psf_fwhm)
    np.testing.assert_allclose(x1, x2, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(e1, e2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s2 / s1, 1e4, rtol=1e-5)
    assert x1.shape == (30, 2, 64, 64) and e1.shape == (30, 2)


def test_network_shapes():
    net = SersicEncoderDecoder(size=32, width=8, latent=16)
    mu, logvar, rec = net(torch.zeros(3, 2, 32, 32), torch.zeros(3, 2))
    assert mu.shape == logvar.shape == (3, len(TARGETS))
    assert rec.shape == (3, 32, 32)
    _, _, none = net(torch.zeros(1, 2, 32, 32), torch.zeros(1, 2), reconstruct=False)
    assert none is None
    with pytest.raises(ValueError, match="multiple of 16"):
        SersicEncoderDecoder(size=40)
