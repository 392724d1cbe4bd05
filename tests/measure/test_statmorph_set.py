"""statmorph's quantity set: truth on analytic galaxies, statmorph's pathological cases, and
agreement with statmorph itself (when installed)."""

import warnings

import numpy as np
import pytest
from scipy.signal import fftconvolve
from scipy.special import gammaincinv

from morphoscope import measure
from morphoscope.exceptions import MorphoscopeWarning
from morphoscope.flags import Flag
from morphoscope.measure import measure_stamps


def sersic_image(shape, xc, yc, amp, r_e, n, ellip=0.0, theta=0.0):
    """statmorph's / astropy's Sersic2D at pixel centres."""
    y, x = np.mgrid[: shape[0], : shape[1]].astype(float)
    bn = gammaincinv(2.0 * n, 0.5)
    xmaj = (x - xc) * np.cos(theta) + (y - yc) * np.sin(theta)
    xmin = -(x - xc) * np.sin(theta) + (y - yc) * np.cos(theta)
    z = np.hypot(xmaj / r_e, xmin / ((1 - ellip) * r_e))
    return amp * np.exp(-bn * (z ** (1.0 / n) - 1.0))


def gaussian_psf(fwhm=2.5, size=15):
    y, x = np.mgrid[:size, :size] - size // 2
    p = np.exp(-(x**2 + y**2) / (2 * (fwhm / 2.3548) ** 2))
    return p / p.sum()


@pytest.fixture(scope="module")
def galaxy():
    """An n = 2 elliptical galaxy, PSF-convolved, S/N per pixel >> 50 at its centre."""
    rng = np.random.default_rng(3)
    shape = (80, 80)
    truth = dict(xc=40.3, yc=39.6, amp=20.0, r_e=6.0, n=2.0, ellip=0.4, theta=0.7)
    psf = gaussian_psf()
    model = fftconvolve(
        sersic_image(
            shape,
            truth["xc"],
            truth["yc"],
            truth["amp"],
            truth["r_e"],
            truth["n"],
            truth["ellip"],
            truth["theta"],
        ),
        psf,
        mode="same",
    )
    sigma = 0.5
    img = model + rng.normal(0, sigma, shape)
    seg = (fftconvolve(img, np.ones((3, 3)) / 9, mode="same") > 2 * sigma / 3).astype(int)
    from scipy import ndimage

    lab, _ = ndimage.label(seg)
    seg = (lab == lab[40, 40]).astype(int)
    return img, seg, sigma, psf, truth


def test_truth_of_a_sersic_galaxy(galaxy):
    img, seg, sigma, psf, truth = galaxy
    img0, seg0 = img.copy(), seg.copy()
    cat = measure(img, seg, rms=sigma, psf=psf)
    row = cat[0]
    assert np.array_equal(img, img0) and np.array_equal(seg, seg0)
    assert row["flag_statmorph"] == 0 and row["flag_sersic"] == 0
    # Symmetric galaxy: the asymmetry centre is its centre, asymmetries are ~0.
    assert row["xc_asymmetry"] == pytest.approx(truth["xc"], abs=0.1)
    assert row["yc_asymmetry"] == pytest.approx(truth["yc"], abs=0.1)
    assert abs(row["asymmetry"]) < 0.03 and abs(row["shape_asymmetry"]) < 0.3
    assert row["ellipticity_asymmetry"] == pytest.approx(truth["ellip"], abs=0.08)
    assert row["orientation_asymmetry"] == pytest.approx(truth["theta"], abs=0.05)
    # One clump: M and D ~0; light ordering of the radii.
    assert row["multimode"] < 0.05 and row["deviation"] < 0.05
    assert 0 < row["r20"] < row["r50"] < row["r80"] < row["rpetro_circ"] < row["rmax_circ"]
    assert 0.3 < row["gini"] < 0.8 and -3 < row["m20"] < -1
    assert row["rpetro_ellip"] > row["rpetro_circ"]  # semi-major axis of an elongated source
    # PSF-convolved Sersic fit recovers the truth within its uncertainties (S/N > 50).
    for key, name in (("n", "n"), ("rhalf", "r_e"), ("ellip", "ellip"), ("xc", "xc")):
        err = row[f"sersic_{key}_err"]
        assert 0 < err < 0.2 * abs(truth[name]) + 0.1
        assert abs(row[f"sersic_{key}"] - truth[name]) < 3 * err + 1e-3, key
    assert row["sersic_theta"] == pytest.approx(truth["theta"], abs=0.02)
    assert row["sersic_chi2_dof"] == pytest.approx(1.0, abs=0.1)


def test_concentration_and_merger_statistics():
    shape = (72, 72)
    disk = sersic_image(shape, 36.2, 35.7, 10, 7.0, 1.0)
    bulge = sersic_image(shape, 36.2, 35.7, 10, 7.0, 4.0)
    pair = sersic_image(shape, 30.0, 36.0, 10, 3.5, 1.0) + sersic_image(shape, 42.0, 36, 8, 3.5, 1)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, shape)
    cats = [
        measure(im + noise, (im > 0.03).astype(int), rms=0.01, sersic=False)[0]
        for im in (disk, bulge, pair)
    ]
    d, b, p = cats
    assert b["concentration"] > d["concentration"] + 1.0
    assert b["gini"] > d["gini"] and b["m20"] < d["m20"]
    assert b["gini_m20_bulge"] > d["gini_m20_bulge"]
    assert p["multimode"] > 0.5 and p["deviation"] > 0.3 and p["asymmetry"] > d["asymmetry"] + 0.1
    assert p["intensity"] > 0.5 and d["multimode"] < 0.05


def _cases():
    """statmorph's pathological test cases: (name, image, segmap, kwargs, statmorph message)."""
    out = []
    img = np.full((3, 3), -1.0)
    img[0, 0] = -2.0  # (a constant image is refused as a whole-input error)
    out.append(("catastrophic", img, np.ones((3, 3), int), {}, "Total flux is nonpositive"))
    y, x = np.mgrid[0:11, 0:11]
    r = np.hypot(x - 5, y - 5)
    img = np.exp(-(r**2))
    out.append(
        ("masked centroid", img, (img > 1e-3).astype(int), {"mask": r < 2}, "Centroid is masked")
    )
    img = np.exp(-((x - 5.0) ** 2) - (y - 5.0) ** 2)
    img[7, 7] = 1.0
    seg = (img > 1e-3).astype(int)
    seg[5, 5] = 0
    out.append(
        ("bright pixel", img, seg, {"n_sigma_outlier": -1}, "Adding brightest pixel to segmap")
    )
    y51, x51 = np.mgrid[0:51, 0:51]
    r51 = np.hypot(x51 - 25, y51 - 25)
    img = np.ones((51, 51))
    img[r51 > 0] = 5.0 / r51[r51 > 0] - 1.0
    out.append(("negative source", img, (r51 < 2).astype(int), {}, "Total flux sum is negative"))
    img = np.zeros((5, 5))
    img[2, 2] = 1.0
    out.append(
        ("single pixel", img, img.astype(int), {"n_sigma_outlier": -1}, "Nonpositive second moment")
    )
    img = np.zeros((4, 3))  # statmorph's 2 x 3 case, padded to the 3 x 3 minimum image size
    img[1:3, 1] = 1.0
    out.append(
        (
            "fewer than 7 pixels",
            img,
            img.astype(int),
            {"n_sigma_outlier": -1},
            "Not enough data for fit",
        )
    )
    y25, x25 = np.mgrid[0:25, 0:25]
    img = (x25 - 20).astype(float)
    out.append(
        (
            "asymmetry centre leaves the image",
            img,
            (img > 0).astype(int),
            {},
            "Minimizer tried to exit bounds",
        )
    )
    img = np.exp(-((x - 5.0) ** 2) - (y - 5.0) ** 2)
    out.append(("full segmap", img, np.ones((11, 11), int), {}, "Skybox not found"))
    rng = np.random.RandomState(1)
    noise = 0.1 * rng.standard_normal(size=(11, 11))
    out.append(
        (
            "random noise",
            noise,
            np.ones((11, 11), int),
            {"rms": np.abs(0.01 * rng.standard_normal(size=(11, 11))) + 1e-3},
            "",
        )
    )
    img = np.exp(-((x - 5.0) ** 2 + (y - 5.0) ** 2) / 50)
    out.append(("full Gini segmap", img, (img > 0.5).astype(int), {}, "Full Gini segmap"))
    img = np.exp(-((x25 - 8.0) ** 2) / 4 - (y25 - 12.0) ** 2)
    img += np.exp(-((x25 - 16.0) ** 2) / 4 - (y25 - 12.0) ** 2)
    out.append(
        ("merger", img, (img > 1e-3).astype(int), {}, "Gini and MID segmaps are quite different")
    )
    return out


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_pathological_cases_flag_and_warn_never_raise(case):
    name, img, seg, kwargs, message = case
    kwargs = dict(kwargs)
    if "rms" not in kwargs:
        kwargs["gain"] = 1.0
    img0, seg0 = img.copy(), seg.copy()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        cat = measure(img, seg, **kwargs)
    assert np.array_equal(img, img0) and np.array_equal(seg, seg0)
    row = cat[0]
    texts = " ".join(str(w.message) for w in rec if issubclass(w.category, MorphoscopeWarning))
    if name == "merger":
        assert row["flag_statmorph"] == 1  # suspect, not bad: no warning needed
    elif name == "catastrophic":
        assert row["flag_statmorph"] == 4 and row["flag"] & Flag.MEASURE_FAILED
        assert np.isnan(row["gini"]) and np.isnan(row["sersic_n"]) and row["flag_sersic"] == 4
        assert message in texts
    else:
        assert row["flag_statmorph"] >= 2 or row["flag_sersic"] >= 2, name
        assert "label 1:" in texts and message in texts


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_pathological_cases_with_the_double_fit(case):
    """The double-Sersic fit adds a flag on every pathological case, never an exception, and
    runs only where the single fit gave parameters to start from."""
    name, img, seg, kwargs, _ = case
    kwargs = dict(kwargs)
    if "rms" not in kwargs:
        kwargs["gain"] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = measure(img, seg, doublesersic=True, **kwargs)[0]
    assert row["flag_doublesersic"] in (0, 1, 2, 4), name
    if not np.isfinite(row["sersic_n"]):
        assert row["flag_doublesersic"] == 4, name
    if row["flag_doublesersic"] == 4:
        assert np.isnan(row["doublesersic_n1"]) and np.isnan(row["doublesersic_aic"])


def test_n_jobs_gives_identical_rows(galaxy):
    img, seg, sigma, psf, _ = galaxy
    big = np.zeros((80, 160))
    big[:, :80] = img
    big[:, 80:] = img[:, ::-1]
    segs = np.zeros((80, 160), int)
    segs[:, :80] = seg
    segs[:, 80:] = 2 * seg[:, ::-1]
    one = measure(big, segs, rms=sigma, sersic=False)
    two = measure(big, segs, rms=sigma, sersic=False, n_jobs=2)
    for col in ("xc_asymmetry", "asymmetry", "gini", "multimode", "rpetro_ellip"):
        np.testing.assert_array_equal(one[col], two[col])
    assert one["rpetro_circ"][0] == pytest.approx(one["rpetro_circ"][1], rel=1e-3)


def test_agrees_with_statmorph():
    statmorph = pytest.importorskip("statmorph")
    from morphoscope.simulate import simulate_stamps

    st = simulate_stamps(3, size=48, seed=5, snr_range=(30, 300), neighbours=0.5)
    names = ("asymmetry", "outer_asymmetry", "shape_asymmetry", "rms_asymmetry2")
    for i in range(3):
        img = st.images[i].astype(float)
        seg = st.segmaps[i].astype(int)
        psf = st.psfs[i].astype(float)
        rms = np.full(img.shape, float(st.rms[i]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = statmorph.SourceMorphology(img, seg, 1, weightmap=rms, psf=psf)
            row = measure(img, seg, rms=rms, psf=psf, labels=[1])[0]
        assert row["flag_statmorph"] == ref.flag
        for q in (
            "xc_asymmetry",
            "rpetro_circ",
            "rpetro_ellip",
            "rhalf_ellip",
            "r20",
            "r80",
            "concentration",
            "gini",
            "m20",
            "smoothness",
            "multimode",
            "intensity",
            "deviation",
            "flux_ellip",
            "rmax_circ",
            "sn_per_pixel",
        ):
            want = ref[q]
            if want == -99.0:
                assert np.isnan(row[q])
            else:
                assert row[q] == pytest.approx(want, rel=0.01, abs=1e-6), q
        for q in names:
            assert row[q] == pytest.approx(ref[q], abs=0.005), q
        if ref.flag_sersic == 0:
            for q in ("sersic_n", "sersic_rhalf", "sersic_ellip"):
                assert row[q] == pytest.approx(ref[q], rel=0.03, abs=1e-3), q


def test_measure_stamps_matches_measure_per_stamp(galaxy):
    img, seg, sigma, psf, truth = galaxy
    flipped = img[::-1].copy()
    stack = measure_stamps([img, flipped], [seg, seg[::-1]], rms=sigma, psfs=[psf, psf], n_jobs=2)
    assert list(stack["stamp"]) == [0, 1] and len(stack) == 2
    one = measure(img, seg, rms=sigma, psf=psf)[0]
    for q in ("asymmetry", "gini", "rpetro_ellip", "sersic_n", "sersic_rhalf_err"):
        assert stack[q][0] == pytest.approx(one[q], rel=1e-9), q
    # the flipped stamp: same galaxy, mirrored centre
    assert stack["yc_asymmetry"][1] == pytest.approx(img.shape[0] - 1 - truth["yc"], abs=0.1)
    assert stack["sersic_n"][1] == pytest.approx(stack["sersic_n"][0], rel=0.02)
