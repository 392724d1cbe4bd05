"""The medium-versus-reference search on small simulated galaxies."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from helpers import halo_galaxy as galaxy

from morphoscope.emission import match_psfs, search
from morphoscope.exceptions import InputError, ParameterError
from morphoscope.flags import Flag

REQUIRED = [
    "id", "x", "y", "flag", "n_pix_medium", "n_pix_reference", "flux_medium", "R_medium",
    "R_reference", "q_medium", "q_reference", "S_excess", "d_H", "gini_medium",
    "asymmetry_medium", "candidate", "reason",
]  # fmt: skip


def _pair(seed, halo):
    rng = np.random.default_rng(seed)
    cont = galaxy()
    med = galaxy(halo=halo) + rng.normal(0, 1, cont.shape)
    ref = cont + rng.normal(0, 1, cont.shape)
    return med, ref


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_halo_only_in_medium_band_is_a_candidate(seed):
    med, ref = _pair(seed, halo=6.0)
    t = search(med, ref, rms_medium=1.0, rms_reference=1.0, positions=[[32, 32]])
    assert set(REQUIRED) <= set(t.colnames)
    row = t[0]
    assert row["flag"] == 0
    assert row["candidate"]
    assert row["R_medium"] > 1.5 * row["R_reference"]
    assert "R" in row["reason"].split(",")
    assert row["S_excess"] > 0.3 * row["n_pix_reference"]
    assert row["d_H"] >= row["R_medium"] - row["R_reference"] - 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_galaxy_without_halo_is_not(seed):
    med, ref = _pair(seed, halo=0.0)
    row = search(med, ref, rms_medium=1.0, rms_reference=1.0, positions=[[32, 32]])[0]
    assert not row["candidate"]
    assert row["reason"] == ""
    assert row["R_medium"] < 1.5 * row["R_reference"]
    assert abs(row["q_medium"] - row["q_reference"]) <= 0.3


def test_brightness_guard():
    # the medium band is the same galaxy, 4x brighter: a fixed S/N cut passes more of
    # its pixels; the matched isophote removes that bias
    rng = np.random.default_rng(5)
    cont = galaxy(amp=15.0, sigma=2.5)
    med = 4 * cont + rng.normal(0, 1, cont.shape)
    ref = cont + rng.normal(0, 1, cont.shape)
    # (the excess-flux significance test alone would also reject it: switched off here)
    kw = {"rms_medium": 1.0, "rms_reference": 1.0, "positions": [[32, 32]], "min_excess_snr": 0}
    biased = search(med, ref, brightness_guard="none", **kw)[0]
    guarded = search(med, ref, brightness_guard="matched", **kw)[0]
    assert biased["n_pix_medium"] > 1.3 * biased["n_pix_reference"]
    assert biased["candidate"]
    assert not guarded["candidate"]
    assert (
        abs(guarded["n_pix_medium"] - guarded["n_pix_reference"]) < 0.2 * guarded["n_pix_reference"]
    )


def test_multiple_references_union_and_max():
    rng = np.random.default_rng(3)
    med = galaxy(halo=4.0) + rng.normal(0, 1, (64, 64))
    compact = galaxy() + rng.normal(0, 1, (64, 64))
    extended = galaxy(halo=4.0) + rng.normal(0, 1, (64, 64))
    kw = {"rms_medium": 1.0, "positions": [[32, 32]], "brightness_guard": "none"}
    alone = search(med, compact, rms_reference=1.0, **kw)[0]
    assert alone["candidate"]
    singles = [search(med, r, rms_reference=1.0, **kw)[0] for r in (compact, extended)]
    union = search(med, [compact, extended], rms_reference=[1.0, 1.0], **kw)[0]
    most = search(med, [compact, extended], rms_reference=1.0, combine="max", **kw)[0]
    # the union's extent is the larger one; its area at least each band's
    assert union["R_reference"] == pytest.approx(max(s["R_reference"] for s in singles))
    assert union["n_pix_reference"] >= max(s["n_pix_reference"] for s in singles)
    assert most["R_reference"] == pytest.approx(singles[1]["R_reference"])
    # an extended reference band explains the medium band's extent
    assert not union["candidate"]
    assert not most["candidate"]


def _gauss_psf(sigma, half=10):
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    p = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return p / p.sum()


def test_psf_matching_point_source():
    from scipy import signal

    narrow, broad = _gauss_psf(1.0), _gauss_psf(2.5)
    point = np.zeros((64, 64))
    point[32, 32] = 1000.0
    img_n = signal.fftconvolve(point, narrow, mode="same")
    img_b = signal.fftconvolve(point, broad, mode="same")
    rms = np.ones((64, 64))
    (out_n, out_b), (rms_n, _rms_b), target = match_psfs(
        [img_n, img_b], [rms, rms], [narrow, broad]
    )
    assert target == 1
    assert out_b is img_b
    peak = img_b.max()
    assert np.abs(out_n - img_b).max() < 0.04 * peak
    assert np.abs(img_n - img_b).max() > 0.5 * peak  # they did differ
    assert np.all(rms_n < 1.0)  # smoothing lowers the per-pixel noise
    # through the search: with matching, a point source is not a candidate
    rng = np.random.default_rng(0)
    med = img_b * 0 + img_n + rng.normal(0, 0.3, point.shape)
    ref = img_b + rng.normal(0, 0.3, point.shape)
    kw = {"rms_medium": 0.3, "rms_reference": 0.3, "positions": [[32, 32]]}
    matched = search(med, ref, psf_medium=narrow, psf_reference=broad, **kw)[0]
    assert not matched["candidate"]
    assert matched["R_medium"] == pytest.approx(matched["R_reference"], abs=1.5)
    # the reverse case, a broad medium band against a narrow reference, is the
    # spurious "extension" that PSF matching removes
    unmatched = search(ref, med, **kw)[0]
    assert unmatched["R_medium"] > unmatched["R_reference"]


def test_bad_inputs_raise_naming_the_input():
    med, ref = _pair(0, 0.0)
    with pytest.raises(InputError, match="reference"):
        search(med, ref[:40], rms_medium=1.0, rms_reference=1.0, positions=[[32, 32]])
    with pytest.raises(InputError, match="rms_medium"):
        search(med, ref, rms_medium=-1.0, rms_reference=1.0, positions=[[32, 32]])
    with pytest.raises(InputError, match=r"reference\[1\]"):
        search(med, [ref, ref[:, :50]], rms_medium=1.0, rms_reference=1.0, positions=[[32, 32]])
    with pytest.raises(InputError, match="rms_reference"):
        search(med, [ref, ref], rms_medium=1.0, rms_reference=[1.0], positions=[[32, 32]])
    with pytest.raises(InputError, match="positions"):
        search(med, ref, rms_medium=1.0, rms_reference=1.0, positions=Table({"a": [1]}))
    with pytest.raises(ParameterError, match="eps"):
        search(med, ref, rms_medium=1.0, rms_reference=1.0, positions=[[32, 32]], eps=-1)
    with pytest.raises(ParameterError, match="not_a_parameter"):
        search(med, ref, rms_medium=1.0, rms_reference=1.0, not_a_parameter=1)


def test_bad_sources_are_flagged_not_fatal():
    med, ref = _pair(1, 4.0)
    rms = np.ones_like(med)
    rms[30:34, 30:34] = -1.0  # negative rms on the source: bad pixels
    pos = [[32, 32], [500, 20], [np.nan, 3], [10, 10]]
    t = search(med, ref, rms_medium=rms, rms_reference=1.0, positions=pos)
    assert len(t) == 4
    assert t["flag"][0] & Flag.MASKED_PIXELS
    assert t["flag"][1] & Flag.MEASURE_FAILED and t["flag"][1] & Flag.EDGE
    assert np.isnan(t["R_medium"][1]) and not t["candidate"][1]
    assert t["flag"][2] & Flag.MEASURE_FAILED
    assert t["flag"][3] & Flag.SMALL  # nothing there: no cluster near the centre
    assert np.isnan(t["R_medium"][3])


def test_inputs_not_modified_and_table_positions():
    med, ref = _pair(2, 4.0)
    m0, r0 = med.copy(), ref.copy()
    cat = Table({"label": [11], "xcentroid": [32.0], "ycentroid": [32.0]})
    t = search(med, ref, rms_medium=1.0, rms_reference=1.0, positions=cat)
    np.testing.assert_array_equal(med, m0)
    np.testing.assert_array_equal(ref, r0)
    assert t["id"][0] == 11 and t["candidate"][0]


def test_detection_when_no_positions():
    rng = np.random.default_rng(4)
    cont = galaxy(x0=20, y0=20) + galaxy(x0=46, y0=44)
    med = cont + galaxy(x0=20, y0=20, amp=0, halo=4.0) + rng.normal(0, 1, cont.shape)
    ref = cont + rng.normal(0, 1, cont.shape)
    t = search(med, ref, rms_medium=1.0, rms_reference=1.0)
    assert len(t) == 2
    near = np.hypot(t["x"] - 20, t["y"] - 20) < 2
    assert near.sum() == 1
    assert bool(t["candidate"][near][0])
    assert not bool(t["candidate"][~near][0])


@pytest.mark.parametrize("seed", range(5))
def test_hausdorff_by_distance_transform_equals_scipy(seed):
    from morphoscope.emission.clusters import compare_clusters, hausdorff_pixels

    rng = np.random.default_rng(seed)
    a = rng.random((30, 40)) < 0.05
    b = rng.random((30, 40)) < 0.1
    a[3, 4] = b[20, 30] = True
    s_excess, d_h = compare_clusters(a, b)
    assert d_h == pytest.approx(hausdorff_pixels(a, b), abs=1e-12)
    assert s_excess == np.count_nonzero(a & ~b)


def test_faint_source_is_low_sn_not_candidate():
    rng = np.random.default_rng(7)
    med = galaxy(amp=3.0, halo=1.0) + rng.normal(0, 1, (64, 64))
    ref = galaxy(amp=3.0) + rng.normal(0, 1, (64, 64))
    row = search(med, ref, rms_medium=1.0, rms_reference=1.0, positions=[[32, 32]])[0]
    assert row["snr_medium"] < 25
    assert row["flag"] & Flag.LOW_SN
    assert not row["candidate"]


def test_neighbour_halo_is_not_given_to_a_null_source():
    # a galaxy with a halo in the medium band and a plain galaxy 14 px away: the halo
    # must not make the plain galaxy a candidate
    rng = np.random.default_rng(8)
    shape = (64, 80)
    cont = galaxy(shape, 30, 32) + galaxy(shape, 44, 32)
    med = cont + galaxy(shape, 30, 32, amp=0, halo=6.0) + rng.normal(0, 1, shape)
    ref = cont + rng.normal(0, 1, shape)
    t = search(med, ref, rms_medium=1.0, rms_reference=1.0, positions=[[30, 32], [44, 32]])
    assert t["candidate"][0]
    assert not t["candidate"][1]
    off = search(
        med, ref, rms_medium=1.0, rms_reference=1.0, positions=[[30, 32], [44, 32]],
        mask_neighbours=False,
    )  # fmt: skip
    # without the masking both galaxies share one cluster
    assert off["n_pix_medium"][1] > t["n_pix_medium"][1]
