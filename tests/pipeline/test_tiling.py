"""Tiled and distributed runs give the catalog and segmentation of the untiled run."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from morphoscope.cli import main
from morphoscope.exceptions import ParameterError
from morphoscope.pipeline import BandInput, run_pipeline
from morphoscope.pipeline.tiling import (
    BackgroundModel,
    BandReader,
    plan_tiles,
    run_tiled,
    tiling_requested,
)
from morphoscope.segment.background import estimate_background

SIZE = 1024


def _add(img, x0, y0, amp, sigma):
    r = int(6 * sigma) + 1
    ys = slice(max(0, int(y0) - r), min(img.shape[0], int(y0) + r))
    xs = slice(max(0, int(x0) - r), min(img.shape[1], int(x0) + r))
    y, x = np.mgrid[ys, xs]
    img[ys, xs] += amp * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))


@pytest.fixture(scope="module")
def field():
    """A 1024 x 1024 field: sky gradient, ~300 galaxies, blended pairs on tile borders, and
    three galaxies larger than the default overlap."""
    rng = np.random.default_rng(12)
    img = rng.normal(0, 1, (SIZE, SIZE)) + 5 + 1e-3 * np.arange(SIZE)[None, :]
    for _ in range(300):
        x0, y0 = rng.uniform(0, SIZE, 2)
        _add(img, x0, y0, rng.uniform(5, 200), rng.uniform(1.0, 4.0))
    # Blended pairs straddling the borders of 512- and 400-pixel cores.
    for x0, y0 in [(512, 300), (400, 700), (800, 512), (256, 400)]:
        _add(img, x0 - 3.5, y0, 60, 2.0)
        _add(img, x0 + 3.5, y0 + 1, 40, 2.0)
    # Large galaxies (footprints of a few hundred pixels) across borders.
    for x0, y0 in [(510, 520), (130, 800), (880, 150)]:
        _add(img, x0, y0, 30, 40.0)
    return img


@pytest.fixture(scope="module")
def untiled(field):
    return run_pipeline(field, report=False, tile=None)


_RUNS: dict = {}


def _tiled(field, tile, overlap=None):
    key = (tile, overlap)
    if key not in _RUNS:
        _RUNS[key] = run_pipeline(field, report=False, tile=tile, overlap=overlap)
    return _RUNS[key]


def _same(ref, res, rtol=1e-9):
    """Same sources, labels equal up to renumbering, measurements equal to rounding."""
    s1, s2 = np.asarray(ref.segmap), np.asarray(res.segmap)
    pairs = np.unique(np.stack([s1.ravel(), s2.ravel()]).astype(np.int64), axis=1)
    # A one-to-one correspondence between the labels of the two maps, background to background.
    assert pairs.shape[1] == np.unique(s1).size == np.unique(s2).size
    assert (0, 0) in set(map(tuple, pairs.T))
    c1, c2 = ref.catalog, res.catalog
    assert len(c1) == len(c2) == np.unique(s1).size - 1
    lut = dict(zip(pairs[1], pairs[0], strict=True))
    c2 = c2[np.argsort([lut[int(v)] for v in c2["label"]])]
    c1 = c1[np.argsort(np.asarray(c1["label"]))]
    for col in c1.colnames:
        if col == "label":
            continue
        a, b = np.asarray(c1[col], float), np.asarray(c2[col], float)
        if col.startswith("sersic_"):
            continue
        np.testing.assert_allclose(b, a, rtol=rtol, atol=1e-9, equal_nan=True, err_msg=col)
    # The Sersic fits are batched by stamp size, and the batches of a tile hold other sources
    # than those of the whole image: the last bits of the arithmetic differ, and the
    # Levenberg-Marquardt fit, which stops at a relative chi^2 change of 1e-7, amplifies
    # them. The stopping rule fixes a parameter only to about sqrt(1e-7 chi^2) ~ 0.03 - 0.1 of
    # its uncertainty, the tolerance used here.
    for col in c1.colnames:
        # chi2_dof, aic and bic (functions of chi^2) are compared through chi2_dof below
        if not col.startswith("sersic_") or col.endswith(("_err", "_chi2_dof", "_aic", "_bic")):
            continue
        a, b = np.asarray(c1[col], float), np.asarray(c2[col], float)
        err = np.asarray(c1[f"{col}_err"], float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), col
        ok = np.isfinite(a) & np.isfinite(err)
        assert np.all(np.abs(b - a)[ok] <= 0.1 * err[ok] + 1e-9 * np.abs(a[ok])), col
        e2 = np.asarray(c2[f"{col}_err"], float)
        np.testing.assert_allclose(e2, err, rtol=5e-3, equal_nan=True, err_msg=f"{col}_err")
    if "sersic_chi2_dof" in c1.colnames:
        np.testing.assert_allclose(
            np.asarray(c2["sersic_chi2_dof"]), np.asarray(c1["sersic_chi2_dof"]), rtol=1e-5
        )


def test_background_mesh_matches_whole_image(field):
    bkg, rms = estimate_background(field.astype(np.float32))
    model = BackgroundModel.compute(BandReader.from_band(BandInput("f", field)), strip_rows=300)
    b2, r2 = model.evaluate((0, SIZE, 0, SIZE))
    np.testing.assert_array_equal(b2, bkg)
    np.testing.assert_array_equal(r2, rms)
    # Any window of the maps is bit for bit the same window of the whole maps.
    b3, r3 = model.evaluate((100, 357, 600, 1024))
    np.testing.assert_array_equal(b3, bkg[100:357, 600:1024])
    np.testing.assert_array_equal(r3, rms[100:357, 600:1024])
    # The same bits whatever the number of BLAS threads (Dask workers run with one).
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        b4, _ = estimate_background(field.astype(np.float32))
    with threadpool_limits(2, user_api="blas"):
        b5, _ = estimate_background(field.astype(np.float32))
    np.testing.assert_array_equal(b4, bkg)
    np.testing.assert_array_equal(b5, bkg)
    # The gradient of the field (1e-3 per column) is recovered.
    slope = np.polyfit(np.arange(SIZE), np.median(bkg, axis=0), 1)[0]
    assert slope == pytest.approx(1e-3, rel=0.1)


@pytest.mark.parametrize(("tile", "overlap"), [(512, None), (300, 24)])
def test_tiled_equals_untiled(field, untiled, tile, overlap):
    res = _tiled(field, tile, overlap)
    assert res.catalog.meta["tiling"]["ntiles"] == int(np.ceil(SIZE / tile)) ** 2
    # The large galaxies (and, with a small overlap, many others) need the fallback re-run.
    assert res.catalog.meta["tiling"]["fallback_windows"] >= (1 if overlap is None else 4)
    _same(untiled, res)
    assert len(untiled.catalog) > 250


def test_first_order_measurements_tiled(field):
    """nonparametric=False reads the asymmetry's rotated footprint instead of the stamp."""
    opts = {"nonparametric": False}
    ref = run_pipeline(field, report=False, tile=None, measure_options=opts)
    res = run_pipeline(field, report=False, tile=300, overlap=24, measure_options=opts)
    assert "gini_m20_bulge" not in res.catalog.colnames
    _same(ref, res)


def test_labels_do_not_depend_on_tiling(field):
    a = _tiled(field, 300, 24)
    b = _tiled(field, 512)
    np.testing.assert_array_equal(np.asarray(a.segmap), np.asarray(b.segmap))
    np.testing.assert_array_equal(a.catalog["flux"], b.catalog["flux"])


def test_dask_equals_single_process(field):
    distributed = pytest.importorskip("distributed")
    single = _tiled(field, 512)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        res = run_pipeline(field, report=False, tile=512, scheduler=client)
    np.testing.assert_array_equal(np.asarray(res.segmap), np.asarray(single.segmap))
    for col in single.catalog.colnames:
        np.testing.assert_array_equal(
            np.asarray(res.catalog[col]), np.asarray(single.catalog[col]), err_msg=col
        )


def test_cli_tiled_fits_matches_untiled(tmp_path, field):
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.1, 2.2]
    w.wcs.crpix = [SIZE / 2, SIZE / 2]
    w.wcs.cdelt = [-0.05 / 3600, 0.05 / 3600]
    path = tmp_path / "mosaic.fits"
    cut = field[:400, :500].astype(">f4")
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(cut, header=w.to_header(), name="SCI")]
    ).writeto(path)
    common = [f"{path}[SCI]", "--no-report", "--quiet", "--workers", "1"]
    assert main(["run", *common, "--tile", "0", "--out", str(tmp_path / "a")]) == 0
    assert main(["run", *common, "--tile", "256", "--out", str(tmp_path / "b")]) == 0
    ca = Table.read(tmp_path / "a" / "catalog.ecsv")
    cb = Table.read(tmp_path / "b" / "catalog.ecsv")
    sa = fits.getdata(tmp_path / "a" / "segmap.fits")
    with fits.open(tmp_path / "b" / "segmap.fits") as hdul:
        sb = hdul[0].data.copy()
        assert hdul[0].header["NSOURCES"] == len(cb)
        assert WCS(hdul[0].header).wcs.crval[0] == pytest.approx(150.1)
    assert len(ca) == len(cb) > 40
    assert not list(tmp_path.glob("b/.*"))  # no temporary file left behind
    pairs = np.unique(np.stack([sa.ravel(), sb.ravel()]).astype(np.int64), axis=1)
    assert pairs.shape[1] == np.unique(sa).size == np.unique(sb).size
    oa = np.lexsort((ca["yc_centroid"], ca["xc_centroid"]))
    ob = np.lexsort((cb["yc_centroid"], cb["xc_centroid"]))
    for col in ("xc_centroid", "flux", "r50", "asymmetry", "ra", "dec", "flag"):
        np.testing.assert_allclose(
            np.asarray(cb[col], float)[ob], np.asarray(ca[col], float)[oa], rtol=1e-9,
            equal_nan=True, err_msg=col,
        )


def test_rms_map_and_mask_by_window(field):
    img = field[:512, 300:812]
    rms = np.ones_like(img)
    rms[:, :40] = 0  # no coverage: bad pixels
    mask = np.zeros(img.shape, bool)
    mask[200:240, 200:240] = True
    band = BandInput("f", img, rms=rms, mask=mask)
    ref = run_pipeline(band, report=False, tile=None)
    res = run_pipeline(band, report=False, tile=200)
    _same(ref, res)


def test_plan_and_parameters(field):
    tiles = plan_tiles((1000, 1000), 300, 50)
    cores = np.zeros((1000, 1000), int)
    for t in tiles:
        cores[t.core[0] : t.core[1], t.core[2] : t.core[3]] += 1
        assert t.window[0] == max(0, t.core[0] - 50)
    assert (cores == 1).all()  # the cores partition the image
    assert tiling_requested((5000, 5000), "auto") == 2048
    assert tiling_requested((1000, 1000), "auto") is None
    assert tiling_requested((1000, 1000), None) is None
    with pytest.raises(ParameterError, match="tile"):
        plan_tiles((100, 100), 4, 0)
    with pytest.raises(ParameterError, match="method"):
        run_tiled(BandInput("f", field), tile=512, segment_options={"method": "zhu"})
    with pytest.raises(ParameterError, match="tile"):
        run_pipeline({"a": field, "b": field}, tile=512, report=False)


def test_cli_tiled_bad_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "broken.fits"
    bad.write_bytes(b"not a fits file at all" * 100)
    assert main(["run", str(bad), "--tile", "256", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("morphoscope: error: broken.fits:")
