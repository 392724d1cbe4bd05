"""SersicNet with the shipped weights: accuracy on simulated truth, inputs, catalogs."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from morphoscope.exceptions import InputError, ParameterError
from morphoscope.flags import Flag
from morphoscope.nn import SersicNet, predict_catalog
from morphoscope.nn.sersic import sersic_metrics
from morphoscope.nn.sersic.catalog import cut_stamps
from morphoscope.simulate import simulate_stamps


@pytest.fixture(scope="module")
def net():
    return SersicNet.pretrained()


@pytest.fixture(scope="module")
def bright():
    """High-S/N single-Sérsic galaxies, independent of the training seeds."""
    return simulate_stamps(
        200, seed=20251, snr_range=(60.0, 600.0), sersic_n_range=(0.6, 5.0),
        r_e_range=(1.5, 10.0), neighbours=0.0, class_fractions=[0.5, 0.5, 0, 0],
        max_offset=1.0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def bright_pred(net, bright):
    return net.predict(bright.images, psf_fwhm=bright.psf_fwhm, rms=bright.rms)


def test_pretrained_loads(net):
    assert net.size == 64
    assert net.info["targets"][0] == "log_n"
    assert len(net.info["sigma_scale"]) == 8
    assert np.all(np.isfinite(net.sigma_scale.numpy()))
    assert sum(p.numel() for p in net.parameters()) < 2_000_000  # a few MB


def test_recovers_known_parameters(bright, bright_pred):
    t, p = bright.truth, bright_pred
    dn = np.log10(p["sersic_n"]) - np.log10(t["n"])
    dr = np.log10(p["sersic_rhalf"]) - np.log10(t["r_e"])
    dq = p["sersic_q"] - t["q"]
    assert abs(np.median(dn)) < 0.05 and np.median(np.abs(dn)) < 0.12
    assert abs(np.median(dr)) < 0.03 and np.median(np.abs(dr)) < 0.05
    assert abs(np.median(dq)) < 0.03 and np.median(np.abs(dq)) < 0.06
    # Indices are ranked: the predictions separate discs from spheroids.
    assert np.corrcoef(np.log10(p["sersic_n"]), np.log10(t["n"]))[0, 1] > 0.8
    dflux = np.log10(p["sersic_flux"] / t["flux"])
    assert abs(np.median(dflux)) < 0.03
    c = 31.5
    assert np.median(np.abs(p["sersic_xc"] - c - t["x_offset"])) < 0.2
    assert np.all(p["flag"] == 0)


def test_uncertainties_are_calibrated(bright, bright_pred):
    m = sersic_metrics(bright_pred, bright.truth, snr_min=0.0)["summary"]
    for key in ("n", "r_e", "q"):
        assert 0.5 < m[key]["coverage"] < 0.9, (key, m[key])
    # Larger predicted errors go with larger actual errors.
    err = bright_pred["sersic_n_err_dex"]
    dn = np.abs(np.log10(bright_pred["sersic_n"]) - np.log10(bright.truth["n"]))
    lo = err < np.median(err)
    assert np.median(dn[lo]) < np.median(dn[~lo])


def test_flux_units_do_not_matter(net, bright):
    a = net.predict(bright.images[:20], psf_fwhm=bright.psf_fwhm[:20], rms=bright.rms[:20])
    b = net.predict(bright.images[:20] * 1e3, psf_fwhm=bright.psf_fwhm[:20],
                    rms=bright.rms[:20] * 1e3)  # fmt: skip
    np.testing.assert_allclose(a["sersic_n"], b["sersic_n"], rtol=1e-3)
    np.testing.assert_allclose(b["sersic_flux"] / a["sersic_flux"], 1e3, rtol=1e-3)


def test_rms_estimated_when_missing(net, bright):
    t = net.predict(bright.images[:30], psf_fwhm=bright.psf_fwhm[:30])
    ratio = np.asarray(t["rms"]) / bright.rms[:30]
    assert np.all((ratio > 0.85) & (ratio < 1.15))


def test_reconstruction_matches_noiseless_galaxy(net, bright):
    k = 40
    _, rec = net.predict(bright.images[:k], psf_fwhm=bright.psf_fwhm[:k], rms=bright.rms[:k],
                         reconstruct=True)  # fmt: skip
    assert rec.shape == (k, 64, 64) and rec.dtype == np.float32
    true = bright.central[:k]
    resid = np.sqrt(((rec - true) ** 2).sum(axis=(1, 2)) / (true**2).sum(axis=(1, 2)))
    assert np.median(resid) < 0.3
    # Much better than the noisy stamp itself at the same pixels.
    noisy = np.sqrt(((bright.images[:k] - true) ** 2).sum(axis=(1, 2)) / (true**2).sum(axis=(1, 2)))
    assert np.median(resid) < np.median(noisy)


def test_single_stamp_and_bad_shapes(net, bright):
    t = net.predict(bright.images[0], psf_fwhm=2.0, rms=float(bright.rms[0]))
    assert len(t) == 1
    with pytest.raises(InputError, match="stamps"):
        net.predict(np.zeros((2, 32, 32)), psf_fwhm=2.0, rms=1.0)
    with pytest.raises(InputError, match="stamps"):
        net.predict(np.zeros((1, 1, 64, 64)), psf_fwhm=2.0, rms=1.0)
    with pytest.raises(ParameterError, match="psf_fwhm"):
        net.predict(bright.images[:2], psf_fwhm=-1.0, rms=1.0)
    with pytest.raises(ParameterError, match="rms"):
        net.predict(bright.images[:2], psf_fwhm=2.0, rms=[1.0, 2.0, 3.0])
    with pytest.raises(ParameterError, match="batch_size"):
        net.predict(bright.images[:2], psf_fwhm=2.0, rms=1.0, batch_size=0)


def test_nan_pixels_are_flagged(net, bright):
    imgs = bright.images[:3].copy()
    imgs[0, :3, :] = np.nan  # a few masked rows: filled and flagged
    imgs[1] = np.nan  # nothing usable: NaN results
    before = imgs.copy()
    t = net.predict(imgs, psf_fwhm=bright.psf_fwhm[:3], rms=bright.rms[:3])
    np.testing.assert_array_equal(np.isnan(imgs), np.isnan(before))  # input untouched
    assert t["flag"][0] == Flag.MASKED_PIXELS and np.isfinite(t["sersic_n"][0])
    assert t["flag"][1] & Flag.MEASURE_FAILED and np.isnan(t["sersic_n"][1])
    assert t["flag"][2] == 0


def test_cut_stamps_geometry():
    img = np.arange(200 * 200, dtype=float).reshape(200, 200)
    st, x0, y0, edge = cut_stamps(img, 100.2, 80.7, 64, 1)
    assert st.shape == (64, 64) and not edge
    assert st[0, 0] == img[round(80.7 - 31.5), round(100.2 - 31.5)]
    st2, x0b, y0b, _ = cut_stamps(img, 100.0, 100.0, 32, 2)
    assert (x0b, y0b) == (68.5, 68.5)  # centre of the first 2x2 block, in image pixels
    assert st2[0, 0] == img[68:70, 68:70].sum()
    assert np.isclose(st2.sum(), img[68:132, 68:132].sum())
    _, _, _, edge = cut_stamps(img, 5.0, 100.0, 64, 1)
    assert edge


def test_predict_catalog_from_segmap_and_catalog(net, bright):
    shape = (150, 220)
    img = np.random.default_rng(0).normal(0, 1, shape)
    seg = np.zeros(shape, int)
    truth = []
    for k, (ox, oy) in enumerate([(10, 20), (80, 60), (150, 10)]):
        i = k + 3
        scale = 1.0 / bright.rms[i]
        img[oy : oy + 64, ox : ox + 64] += bright.central[i] * scale
        seg[oy : oy + 64, ox : ox + 64][bright.central[i] * scale > 2] = k + 1
        truth.append((i, ox, oy))
    cat = predict_catalog(img, seg, psf_fwhm=float(bright.psf_fwhm[3]), rms=1.0,
                          net=net, bin_factor=1)  # fmt: skip
    assert len(cat) == 3 and list(cat["id"]) == [1, 2, 3]
    for row, (i, ox, oy) in zip(cat, truth, strict=True):
        assert abs(row["sersic_xc"] - (ox + 31.5 + bright.truth["x_offset"][i])) < 0.5
        assert abs(row["sersic_yc"] - (oy + 31.5 + bright.truth["y_offset"][i])) < 0.5
    table = Table({"id": cat["id"], "x": cat["x"], "y": cat["y"]})
    cat2 = predict_catalog(img, table, psf_fwhm=float(bright.psf_fwhm[3]), rms=1.0, net=net)
    np.testing.assert_allclose(cat2["sersic_n"], cat["sersic_n"], rtol=1e-5)
    # A galaxy cut by the image border: measured, flagged EDGE, not failed.
    edge = predict_catalog(img[:, :200], seg[:, :200], psf_fwhm=float(bright.psf_fwhm[3]),
                           rms=1.0, net=net, bin_factor=1)  # fmt: skip
    assert edge["flag"][2] & Flag.EDGE and not edge["flag"][2] & Flag.MEASURE_FAILED
    assert np.isfinite(edge["sersic_n"][2]) and edge["flag"][0] == 0
    with pytest.raises(InputError, match="segmap"):
        predict_catalog(img, seg[:10], psf_fwhm=2.0, net=net)
    with pytest.raises(ParameterError, match="bin_factor"):
        predict_catalog(img, seg, psf_fwhm=2.0, net=net, bin_factor=0)


def test_binning_recovers_large_galaxies(net):
    """A galaxy drawn at twice the scale is binned 2x2 and measured in original pixels."""
    st = simulate_stamps(1, size=128, seed=77, sersic_n_range=(1.5, 1.6), r_e_range=(12, 13),
                         psf_fwhm_range=(5.0, 5.2), neighbours=0, max_offset=0,
                         snr_range=(300, 301), class_fractions=[0, 1, 0, 0])  # fmt: skip
    img = st.images[0]
    seg = (st.segmaps[0] == 1).astype(int)
    cat = predict_catalog(img, seg, psf_fwhm=float(st.psf_fwhm[0]), rms=float(st.rms[0]),
                          net=net)  # fmt: skip
    assert cat["bin_factor"][0] >= 2
    assert abs(np.log10(cat["sersic_rhalf"][0] / st.truth["r_e"][0])) < 0.1
    assert abs(cat["sersic_xc"][0] - 63.5) < 1.0
