import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from helpers import gaussian_source

from morphoscope.exceptions import InputError
from morphoscope.pipeline import BandInput, detection_metrics, run_pipeline


def _wcs(shape):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.1, 2.2]
    w.wcs.crpix = [shape[1] / 2, shape[0] / 2]
    w.wcs.cdelt = [-0.05 / 3600, 0.05 / 3600]
    return w


@pytest.fixture
def fits_field(tmp_path, random_field):
    img, xy, flux, _ = random_field
    w = _wcs(img.shape)
    path = tmp_path / "field.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(img.astype(">f4"), header=w.to_header(), name="SCI")]
    ).writeto(path)
    rms = tmp_path / "field_rms.fits"
    fits.writeto(rms, np.ones(img.shape, np.float32))
    red = tmp_path / "red.fits"
    fits.writeto(
        red,
        (
            2.0 * (img - np.random.default_rng(3).normal(0, 1, img.shape))
            + np.random.default_rng(4).normal(0, 1, img.shape)
        ).astype(np.float32),
        header=w.to_header(),
    )
    return path, rms, red, xy, flux


def test_run_writes_outputs_with_wcs(tmp_path, fits_field):
    path, rms, _, xy, flux = fits_field
    out = tmp_path / "out"
    res = run_pipeline(
        BandInput("F200W", path, rms=rms),
        out_dir=out,
        report=False,
        segment_options={"background": None},
    )
    cat = Table.read(out / "catalog.ecsv")
    assert len(cat) == len(xy)
    assert {"ra", "dec", "flux", "gini", "flag"} <= set(cat.colnames)
    assert cat["ra"].unit == "deg"
    w = WCS(fits.getheader(out / "segmap.fits"))
    ra, dec = w.pixel_to_world_values(cat["xc_centroid"], cat["yc_centroid"])
    np.testing.assert_allclose(ra, cat["ra"], atol=1e-9)
    seg = fits.getdata(out / "segmap.fits")
    assert np.array_equal(seg, res.segmap)
    assert len(Table.read(out / "catalog.fits")) == len(cat)
    # Fluxes of isolated, bright Gaussians within their segment: most of the light.
    order_t = np.lexsort((xy[:, 0], xy[:, 1]))
    truth = Table({"x": xy[order_t, 0], "y": xy[order_t, 1], "snr": np.full(len(xy), 100.0)})
    assert detection_metrics(res.segmap, truth, image=res.segmentation.image)["completeness"] == 1


def test_multiband_adds_per_band_columns_and_colours(tmp_path, fits_field):
    path, rms, red, xy, _ = fits_field
    res = run_pipeline(
        [BandInput("blue", path, rms=rms), BandInput("red", red)],
        segment_options={"background": None},
    )
    cat = res.catalog
    assert {"flux_blue", "flux_red", "color_blue_red", "r50_red"} <= set(cat.colnames)
    bright = cat["flux_blue"] > 1000
    # red = 2 x blue (the same sources), so the colour is -2.5 log10(1/2) = +0.75 mag... in
    # the sense blue - red = -2.5 log10(f_blue / f_red) = 0.753
    np.testing.assert_allclose(np.median(cat["color_blue_red"][bright]), 0.753, atol=0.05)


def test_bad_band_inputs(tmp_path, fits_field):
    path, rms, _, _, _ = fits_field
    small = tmp_path / "small.fits"
    fits.writeto(small, np.random.default_rng(0).normal(size=(20, 20)))
    with pytest.raises(InputError, match="small.fits: shape"):
        run_pipeline([BandInput("a", path), BandInput("b", small)])
    with pytest.raises(InputError, match="detection_band"):
        run_pipeline([BandInput("a", path)], detection_band="zz")
    with pytest.raises(InputError, match="band names must be unique"):
        run_pipeline([BandInput("a", path), BandInput("a", path)])


def test_gaussian_helper_flux():
    img = gaussian_source((64, 64), 32, 32, 100.0, 3.0, q=0.5)
    assert img.sum() == pytest.approx(100.0, rel=1e-3)
