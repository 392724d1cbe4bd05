"""Truth of simulated scenes agrees with the rendered pixels."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u

from morphoscope.exceptions import ParameterError
from morphoscope.simulate import CLASS_NAMES, Band, default_bands, simulate_scene


def _isolated(cls, seed, *, fwhm=0.066, psf="moffat", r_e_range=(4.0, 8.0), pos=(100.3, 99.6)):
    band = Band("B", psf=psf, fwhm=fwhm, sky_rms=1.0)
    return simulate_scene(
        (200, 200), bands=[band], positions=[pos], class_fractions={cls: 1},
        flux_range=(5000.0, 5000.0), r_e_range=r_e_range, seed=seed,
    )  # fmt: skip


def _elliptical_hlr(img, xc, yc, q, pa):
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    dx, dy = xx - xc, yy - yc
    c, s = np.cos(pa), np.sin(pa)
    r = np.hypot(dx * c + dy * s, (-dx * s + dy * c) / q).ravel()
    order = np.argsort(r)
    cum = np.cumsum(img.ravel()[order])
    return r[order][np.searchsorted(cum, 0.5 * cum[-1])]


def test_determinism_and_seed_dependence():
    a = simulate_scene((96, 96), n_sources=6, seed=5, emission_fraction=0.5)
    b = simulate_scene((96, 96), n_sources=6, seed=5, emission_fraction=0.5)
    c = simulate_scene((96, 96), n_sources=6, seed=6, emission_fraction=0.5)
    for name in a.band_names:
        assert np.array_equal(a.images[name], b.images[name])
        assert np.array_equal(a.noiseless[name], b.noiseless[name])
        assert not np.array_equal(a.images[name], c.images[name])
    assert np.array_equal(a.segmap, b.segmap)
    assert a.truth.pformat() == b.truth.pformat()


def test_outputs_types_and_shapes(scene):
    ny, nx = scene.segmap.shape
    assert scene.band_names == ["F200W", "F335M", "F356W"]
    assert scene.detection_band == "F200W"
    for name in scene.band_names:
        for arr in (scene.images[name], scene.rms[name], scene.noiseless[name]):
            assert arr.shape == (ny, nx) and arr.dtype == np.float32
    assert scene.segmap.dtype == np.int32 and scene.classmap.dtype == np.uint8
    t = scene.truth
    assert list(t["id"]) == list(range(1, len(t) + 1))
    assert t["x"].unit == u.pix and t["ra"].unit == u.deg and t["pa"].unit == u.rad
    assert np.all((t["pa"] >= 0) & (t["pa"] < np.pi))
    assert np.all((t["q"] > 0) & (t["q"] <= 1))
    assert set(t["class"]) <= set(CLASS_NAMES[1:])
    for row in t:
        assert CLASS_NAMES[row["class_id"]] == row["class"]
    ps = t["class"] == "point_source"
    assert np.all(np.isnan(t["n"][ps])) and np.all(t["r_e"][ps] == 0)
    sph = t["class"] == "spheroid"
    assert np.all(t["n"][sph] >= 2.5)
    disk = t["class"] == "disk"
    assert np.all(t["n"][disk] <= 1.5)


def test_wcs_matches_truth_coordinates(scene):
    t = scene.truth
    ra, dec = scene.wcs.wcs_pix2world(t["x"], t["y"], 0)
    assert np.allclose(ra, t["ra"]) and np.allclose(dec, t["dec"])
    centre = scene.wcs.wcs_pix2world([[95.5, 95.5]], 0)[0]
    assert np.allclose(centre, [53.16, -27.78])
    scale = np.abs(scene.wcs.pixel_scale_matrix.diagonal()) * 3600
    assert np.allclose(scale, 0.03)


@pytest.mark.parametrize(
    ("cls", "seed"), [("spheroid", 0), ("spheroid", 3), ("disk", 1), ("irregular", 2)]
)
def test_isolated_source_flux_centroid_radius(cls, seed):
    sc = _isolated(cls, seed, fwhm=0.045, psf="gaussian")  # 1.5 px PSF: r_e barely changes
    t = sc.truth[0]
    img = sc.noiseless["B"].astype(float)
    assert img.sum() == pytest.approx(t["flux_B"], rel=0.02)
    yy, xx = np.mgrid[0:200, 0:200]
    xc, yc = (img * xx).sum() / img.sum(), (img * yy).sum() / img.sum()
    assert abs(xc - t["x"]) < 0.2 and abs(yc - t["y"]) < 0.2
    hlr = _elliptical_hlr(img, xc, yc, t["q"], t["pa"])
    assert hlr == pytest.approx(t["r_e"], rel=0.1)


def test_point_source_is_the_psf():
    sc = _isolated("point_source", 0, pos=(100.0, 100.0))
    t = sc.truth[0]
    img = sc.noiseless["B"]
    assert img.sum() == pytest.approx(t["flux_B"], rel=0.01)
    psf = sc.psfs["B"]
    h = psf.shape[0] // 2
    cut = img[100 - h : 100 + h + 1, 100 - h : 100 + h + 1] / t["flux_B"]
    assert np.allclose(cut, psf, atol=2e-4)


def test_psfs_normalised_odd_centred(scene):
    for band in scene.bands:
        psf = scene.psfs[band.name]
        assert psf.shape[0] % 2 == 1 and psf.shape[1] % 2 == 1
        assert psf.sum() == pytest.approx(1.0, abs=1e-5)
        assert np.unravel_index(np.argmax(psf), psf.shape) == (psf.shape[0] // 2,) * 2
        half_max = np.count_nonzero(psf >= psf.max() / 2)
        fwhm = 2 * np.sqrt(half_max / np.pi)
        assert fwhm == pytest.approx(band.fwhm / 0.03, rel=0.2)


def test_noise_matches_sky_rms_and_rms_map(scene):
    empty = scene.segmap == 0
    for band in scene.bands:
        faint = empty & (scene.noiseless[band.name] < 0.05 * band.sky_rms)
        resid = scene.images[band.name][faint] - scene.noiseless[band.name][faint]
        assert resid.size > 3000
        assert np.std(resid) == pytest.approx(band.sky_rms, rel=0.05)
        assert abs(np.mean(resid)) < 0.05 * band.sky_rms
        assert np.allclose(scene.rms[band.name][faint], band.sky_rms, rtol=0.01)
        pull = (scene.images[band.name] - scene.noiseless[band.name]) / scene.rms[band.name]
        assert np.std(pull) == pytest.approx(1.0, rel=0.03)
        expected = np.sqrt(
            band.sky_rms**2 + np.clip(scene.noiseless[band.name], 0, None) / band.gain
        )
        assert np.allclose(scene.rms[band.name], expected, rtol=1e-5)


def test_poisson_noise_scales_with_source():
    band = Band("B", psf="gaussian", fwhm=0.3, sky_rms=0.5, gain=0.2)
    sc = simulate_scene(
        (96, 96), bands=[band], positions=[[48, 48]], class_fractions={"point_source": 1},
        flux_range=(2e5, 2e5), seed=1,
    )  # fmt: skip
    bright = sc.noiseless["B"] > 200
    resid = (sc.images["B"] - sc.noiseless["B"])[bright] / sc.rms["B"][bright]
    assert np.std(resid) == pytest.approx(1.0, rel=0.15)
    assert np.all(sc.rms["B"][bright] > 10 * band.sky_rms)


def test_truth_segmap_and_classmap(scene):
    t = scene.truth
    seg, cmap = scene.segmap, scene.classmap
    labels = np.unique(seg[seg > 0])
    assert set(labels) <= set(t["id"])
    assert set(labels) == set(t["id"][t["segment_area"] > 0])
    assert np.array_equal(np.bincount(seg.ravel(), minlength=len(t) + 1)[1:], t["segment_area"])
    assert np.array_equal(cmap == 0, seg == 0)
    for row in t[t["segment_area"] > 0]:
        assert np.all(cmap[seg == row["id"]] == row["class_id"])
    # most sources are in the segmap, and each label is near its source
    assert len(labels) >= 0.7 * len(t)
    det = scene.bands[0].sky_rms
    assert np.all(scene.noiseless["F200W"][seg > 0] > det)
    for row in t[t["segment_area"] > 20]:
        ys, xs = np.nonzero(seg == row["id"])
        assert np.hypot(xs - row["x"], ys - row["y"]).min() < 3


def test_blends_flagged():
    sc = simulate_scene((128, 128), n_sources=10, blend_fraction=0.5, seed=3)
    assert sc.truth["blended"].any()
    seg = sc.segmap
    # a source whose segment touches another label must be flagged as blended
    from scipy import ndimage

    for row in sc.truth[sc.truth["segment_area"] > 0]:
        grown = ndimage.binary_dilation(seg == row["id"], structure=np.ones((3, 3)))
        touching = np.setdiff1d(np.unique(seg[grown]), [0, row["id"]])
        if touching.size:
            assert row["blended"], row["id"]


def test_blended_pair_and_isolated_source():
    kw = dict(class_fractions={"disk": 1}, flux_range=(4000, 4000), r_e_range=(4, 5), seed=1)
    pair = simulate_scene((128, 128), positions=[[50, 64], [60, 64], [110, 20]], **kw)
    assert list(pair.truth["blended"]) == [True, True, False]
    assert set(np.unique(pair.segmap)) == {0, 1, 2, 3}
    # the label of each pixel is the source that contributes more there
    assert pair.segmap[64, 45] == 1 and pair.segmap[64, 65] == 2


def test_colours_follow_sed_and_emission_only_in_emission_band(scene):
    t = scene.truth
    lam = {b.name: b.wavelength for b in scene.bands}
    assert t["has_extended_emission"].sum() >= 3
    assert set(t["emission_kind"][t["has_extended_emission"]]) <= {"halo", "cone"}
    assert np.all(t["emission_kind"][~t["has_extended_emission"]] == "none")
    assert np.all(t["emission_flux"][~t["has_extended_emission"]] == 0)
    emit = t["has_extended_emission"]
    assert np.all(t["emission_flux"][emit] > 0)
    assert np.all(t["emission_extent"][emit] > t["r_e"][emit])
    # spheroids redder than irregulars on average (F356W / F200W)
    assert lam["F200W"] < lam["F335M"] < lam["F356W"]


def test_spheroids_redder_than_irregulars():
    sc = simulate_scene(
        (128, 128), n_sources=30, class_fractions={"spheroid": 1, "irregular": 1}, seed=4
    )
    t = sc.truth
    colour = np.log(t["flux_F356W"] / t["flux_F200W"])
    sph, irr = t["class"] == "spheroid", t["class"] == "irregular"
    assert sph.sum() >= 5 and irr.sum() >= 5
    assert colour[sph].mean() > colour[irr].mean() + 0.5
    # single-component spheroids follow one power law: the slope is the same for all bands
    lam = {b.name: b.wavelength for b in sc.bands}
    f = {b: np.asarray(t[f"flux_{b}"])[sph] for b in lam}
    slope_335 = np.log(f["F335M"] / f["F200W"]) / np.log(lam["F335M"] / lam["F200W"])
    slope_356 = np.log(f["F356W"] / f["F200W"]) / np.log(lam["F356W"] / lam["F200W"])
    assert np.allclose(slope_335, slope_356)


def test_emission_pixels_only_in_emission_band():
    band_a = Band("A", psf="gaussian", fwhm=0.09, wavelength=2.0)
    band_m = Band("M", psf="gaussian", fwhm=0.09, medium=True, wavelength=3.0)
    kw = dict(
        bands=[band_a, band_m], positions=[[64, 64]], class_fractions={"spheroid": 1},
        flux_range=(3000, 3000), r_e_range=(3, 5), seed=4,
    )  # fmt: skip
    plain = simulate_scene((128, 128), **kw)
    lined = simulate_scene((128, 128), emission_fraction=1.0, emission_kind="halo", **kw)
    tp, tl = plain.truth[0], lined.truth[0]
    assert not tp["has_extended_emission"] and tl["has_extended_emission"]
    assert tl["emission_kind"] == "halo"
    # same continuum: the continuum band is identical, the emission band has extra flux
    assert np.array_equal(plain.noiseless["A"], lined.noiseless["A"])
    extra = lined.noiseless["M"].astype(float) - plain.noiseless["M"]
    assert extra.sum() == pytest.approx(tl["emission_flux"], rel=0.02)
    assert tl["flux_M"] == pytest.approx(tp["flux_M"] + tl["emission_flux"])
    # the line light is more extended than the continuum
    yy, xx = np.mgrid[0:128, 0:128]
    r = np.hypot(xx - tl["x"], yy - tl["y"])
    cont = plain.noiseless["M"].astype(float)
    assert (extra * r).sum() / extra.sum() > 1.5 * (cont * r).sum() / cont.sum()
    # non-emitters: the ratio of the bands is the SED ratio
    ratio = plain.noiseless["M"].sum() / plain.noiseless["A"].sum()
    assert ratio == pytest.approx(tp["flux_M"] / tp["flux_A"], rel=0.01)


def test_cone_emission_is_offset_and_symmetric():
    kw = dict(
        positions=[[64, 64]], class_fractions={"disk": 1}, flux_range=(3000, 3000),
        r_e_range=(3, 4), seed=8, emission_fraction=1.0, emission_kind="cone",
    )  # fmt: skip
    sc = simulate_scene((128, 128), **kw)
    t = sc.truth[0]
    assert t["emission_kind"] == "cone"
    base = simulate_scene((128, 128), **{**kw, "emission_fraction": 0.0})
    extra = sc.noiseless["F335M"].astype(float) - base.noiseless["F335M"]
    # the lobes sit away from the nucleus: little line light at the centre
    yy, xx = np.mgrid[0:128, 0:128]
    r = np.hypot(xx - t["x"], yy - t["y"])
    assert extra[r < 1.0].sum() < 0.02 * extra.sum()
    xc = (extra * xx).sum() / extra.sum()
    assert abs(xc - t["x"]) < 0.3
    assert extra.sum() == pytest.approx(t["emission_flux"], rel=0.02)
    for name in ("F200W", "F356W"):
        assert np.array_equal(sc.noiseless[name], base.noiseless[name])


def test_snr_definition(scene):
    band = Band("B", psf="moffat", fwhm=0.066, sky_rms=2.0)
    sc = simulate_scene(
        (96, 96), bands=[band], positions=[[48, 48]], class_fractions={"disk": 1}, seed=2
    )
    model = sc.noiseless["B"].astype(float)
    assert sc.truth["snr_B"][0] == pytest.approx(np.sqrt(np.sum(model**2)) / 2.0, rel=1e-5)
    snr = scene.truth["snr_F200W"]
    assert np.median(snr) > 5 and np.median(snr) < 500


def test_user_psf_image():
    yy, xx = np.mgrid[-7:8, -7:8]
    psf = np.exp(-(xx**2 + yy**2) / (2 * 1.3**2)) * 7.0  # unnormalised on purpose
    psf[7, 9] += 2.0  # asymmetric feature
    original = psf.copy()
    band = Band("U", psf=psf, sky_rms=1.0)
    assert np.array_equal(psf, original)  # caller's array untouched
    sc = simulate_scene(
        (80, 80), bands=[band], positions=[[40, 40]], class_fractions={"point_source": 1},
        flux_range=(1000, 1000), seed=0,
    )  # fmt: skip
    assert np.allclose(sc.psfs["U"], original / original.sum(), atol=1e-6)
    cut = sc.noiseless["U"][33:48, 33:48] / 1000.0
    assert np.allclose(cut, original / original.sum(), atol=1e-4)
    even = Band("E", psf=np.ones((6, 6)), sky_rms=1.0)
    sc2 = simulate_scene((64, 64), bands=[even], n_sources=2, seed=0)
    assert sc2.psfs["E"].shape[0] % 2 == 1
    assert sc2.psfs["E"].sum() == pytest.approx(1.0, abs=1e-5)


def test_density_and_counts():
    sc = simulate_scene((200, 200), density=200.0, seed=1)
    area = (200 * 0.03 / 60) ** 2
    assert len(sc.truth) == round(200 * area)
    empty = simulate_scene((32, 32), n_sources=0, seed=1)
    assert len(empty.truth) == 0 and not empty.segmap.any()


def test_class_fractions_respected():
    sc = simulate_scene((128, 128), n_sources=12, class_fractions=[0, 0, 0, 1], seed=2)
    assert set(sc.truth["class"]) == {"point_source"}


def test_write_roundtrip(tmp_path):
    from astropy.io import fits
    from astropy.table import Table

    sc = simulate_scene((64, 64), n_sources=3, seed=1)
    paths = sc.write(tmp_path)
    for name in sc.band_names:
        with fits.open(paths[f"{name}_sci"]) as hdul:
            hdr = hdul[0].header
            assert hdr["FILTER"] == name and hdr["PIXSCALE"] == 0.03 and "BUNIT" in hdr
            assert hdr["CTYPE1"] == "RA---TAN"
            assert np.array_equal(hdul[0].data, sc.images[name])
        assert np.allclose(fits.getdata(paths[f"{name}_psf"]), sc.psfs[name])
        assert np.allclose(fits.getdata(paths[f"{name}_rms"]), sc.rms[name])
    assert np.array_equal(fits.getdata(paths["segmap"]), sc.segmap)
    assert np.array_equal(fits.getdata(paths["classmap"]), sc.classmap)
    t = Table.read(paths["truth"])
    assert list(t["id"]) == list(sc.truth["id"]) and t["r_e"].unit == u.pix
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"shape": (0, 10)}, "shape"),
        ({"shape": (10.5, 10)}, "shape"),
        ({"shape": 64}, "shape"),
        ({"blend_fraction": 1.5}, "blend_fraction"),
        ({"emission_fraction": -0.1}, "emission_fraction"),
        ({"emission_band": "F999W"}, "emission_band"),
        ({"emission_kind": "jet"}, "emission_kind"),
        ({"n_sources": -1}, "n_sources"),
        ({"n_sources": 3, "density": 10.0}, "n_sources"),
        ({"density": 0.0}, "density"),
        ({"class_fractions": {"elliptical": 1}}, "class_fractions"),
        ({"class_fractions": [1, 1]}, "class_fractions"),
        ({"class_fractions": [0, 0, 0, 0]}, "class_fractions"),
        ({"flux_range": (10, 1)}, "flux_range"),
        ({"pixel_scale": -0.03}, "pixel_scale"),
        ({"seed": -1}, "seed"),
        ({"bands": []}, "bands"),
        ({"bands": [Band("A"), Band("A")]}, "bands"),
        ({"bands": [Band("A", fwhm=0.01)]}, "bands"),
        ({"truth_threshold": 0}, "truth_threshold"),
        ({"positions": [[1, 2, 3]]}, "positions"),
    ],
)
def test_parameter_errors(kwargs, name):
    kwargs = {"shape": (32, 32), "n_sources": kwargs.pop("n_sources", None), **kwargs}
    with pytest.raises(ParameterError, match=f"The '{name}' parameter must be"):
        simulate_scene(**kwargs)


def test_emission_band_needs_a_medium_band():
    with pytest.raises(ParameterError, match="emission_band"):
        simulate_scene((32, 32), bands=[Band("A")], emission_fraction=0.5)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"psf": "airy"}, "psf"),
        ({"psf": np.ones(5)}, "psf"),
        ({"psf": np.zeros((5, 5))}, "psf"),
        ({"fwhm": 0}, "fwhm"),
        ({"sky_rms": -1}, "sky_rms"),
        ({"gain": 0}, "gain"),
        ({"moffat_beta": 1.0}, "moffat_beta"),
        ({"name": ""}, "name"),
    ],
)
def test_band_parameter_errors(kwargs, name):
    with pytest.raises(ParameterError, match=f"The '{name}' parameter must be"):
        Band(**{"name": "X", **kwargs})


def test_default_bands():
    bands = default_bands()
    assert [b.name for b in bands] == ["F200W", "F335M", "F356W"]
    assert [b.medium for b in bands] == [False, True, False]
    assert bands[0].fwhm < bands[1].fwhm < bands[2].fwhm
    assert bands[0] == default_bands()[0] and bands[0] != bands[2]
