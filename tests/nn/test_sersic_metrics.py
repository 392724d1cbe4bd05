"""Accuracy metrics of Sérsic predictions: bins in S/N and in resolution."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from astropy.table import Table

from morphoscope.nn.sersic import sersic_metrics
from morphoscope.nn.sersic.metrics import RESOLUTION_BINS


def _fake(offsets, rng):
    """Predictions whose log n is off by a known amount in each resolution bin."""
    ratio = np.repeat([0.3, 0.7, 1.5, 4.0], 50)  # one group per bin of r_e / FWHM
    fwhm = np.full(ratio.size, 3.0)
    r_e = ratio * fwhm
    n = rng.uniform(0.5, 6.0, ratio.size)
    snr = np.where(np.arange(ratio.size) % 5 == 0, 10.0, 100.0)  # 1 in 5 faint
    dn = np.repeat(offsets, 50) + rng.normal(0, 0.01, ratio.size)
    truth = {"n": n, "r_e": r_e, "q": np.full(ratio.size, 0.5), "snr": snr, "psf_fwhm": fwhm}
    pred = Table({
        "sersic_n": n * 10**dn, "sersic_n_err_dex": np.full(ratio.size, 0.05),
        "sersic_rhalf": r_e, "sersic_rhalf_err_dex": np.full(ratio.size, 0.05),
        "sersic_q": np.full(ratio.size, 0.5), "sersic_q_err": np.full(ratio.size, 0.05),
        "psf_fwhm": fwhm,
    })  # fmt: skip
    return pred, truth


def test_metrics_by_resolution(rng):
    offsets = [0.3, 0.1, 0.0, -0.05]
    pred, truth = _fake(offsets, rng)
    m = sersic_metrics(pred, truth, snr_min=30.0)
    bins = m["by_resolution"]
    assert [b["r_e_over_fwhm"] for b in bins] == [list(p) for p in pairwise(RESOLUTION_BINS)]
    for b, off in zip(bins, offsets, strict=True):
        assert b["n"]["count"] == 40  # the faint stamps are left out
        assert abs(b["n"]["bias"] - off) < 0.01
        assert b["n"]["scatter"] < 0.02
        assert b["r_e"]["bias"] == 0.0
        # the 0.05 dex sigmas cover the residuals only where the offset is small
        assert (b["n"]["coverage"] > 0.9) == (abs(off) < 0.05)
    # The summary mixes the bins: its scatter is much larger than any bin's.
    assert m["summary"]["n"]["scatter"] > 0.05


def test_metrics_resolution_from_prediction_psf(rng):
    pred, truth = _fake([0.0, 0.0, 0.0, 0.0], rng)
    del truth["psf_fwhm"]
    m = sersic_metrics(pred, truth, snr_min=0.0)
    assert sum(b["n"]["count"] for b in m["by_resolution"]) == len(pred)
