import gzip

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from morphoscope.exceptions import InputError
from morphoscope.io import (
    as_image,
    as_mask,
    as_psf,
    as_rms,
    read_image,
    rms_from_weight,
    write_catalog,
    write_segmap,
)


@pytest.fixture
def image(rng):
    return rng.normal(0, 1, (32, 40))


def _wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [53.16, -27.78]
    w.wcs.crpix = [20, 16]
    w.wcs.cdelt = [-0.03 / 3600, 0.03 / 3600]
    return w


def test_read_image_with_wcs_and_maps(tmp_path, image):
    path = tmp_path / "img.fits"
    fits.PrimaryHDU(image, header=_wcs().to_header()).writeto(path)
    rms = np.full(image.shape, 2.0)
    rms[0, 0] = 0.0  # no valid rms -> bad pixel
    im = read_image(path, rms=rms)
    assert im.shape == (32, 40)
    assert im.wcs is not None and im.wcs.has_celestial
    assert im.bad[0, 0] and im.bad.sum() == 1
    np.testing.assert_allclose(im.data[1:, 1:], image[1:, 1:])


def test_read_extension_by_name_and_bracket(tmp_path, image):
    path = tmp_path / "mef.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(image, name="SCI"), fits.ImageHDU(2 * image, name="ERR")]
    ).writeto(path)
    assert np.allclose(read_image(path).data, image)  # first HDU with data
    err = read_image(f"{path}[ERR]")
    assert np.allclose(err.data, 2 * image) and err.name == "mef.fits[ERR]"
    assert np.allclose(read_image(path, ext=2).data, 2 * image)


def test_big_endian_and_integer_inputs(tmp_path, image):
    path = tmp_path / "be.fits"
    fits.PrimaryHDU(image.astype(">f4")).writeto(path)
    im = read_image(path)
    assert im.data.dtype == np.float64 and im.data.dtype.isnative
    ints = (image * 100).astype(np.int16)
    data, bad = as_image(ints)
    assert np.array_equal(data, ints.astype(float)) and not bad.any()


def test_caller_arrays_are_not_modified(image):
    img = image.copy()
    img[3, 3] = np.nan
    before = img.copy()
    data, bad = as_image(img)
    assert bad[3, 3] and data[3, 3] == 0
    assert np.array_equal(img, before, equal_nan=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros(10), "2-D"),
        (np.zeros((3, 8, 8)), "pick one plane"),
        (np.zeros((2, 2)), "too small"),
        (np.full((8, 8), np.nan), "NaN or infinite"),
        (np.zeros((8, 8)), "every pixel is zero"),
        (np.full((8, 8), 7.0), "constant"),
        (np.array([["a"] * 4] * 4), "numeric"),
    ],
)
def test_bad_arrays(data, message):
    with pytest.raises(InputError, match=message) as info:
        as_image(data, "thing.fits")
    assert str(info.value).startswith("thing.fits: ")


def test_cube_with_single_plane_is_accepted(image):
    data, _ = as_image(image[None])
    assert data.shape == image.shape


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found") as info:
        read_image(tmp_path / "nope.fits")
    assert "nope.fits" in str(info.value)


def test_not_a_fits_file(tmp_path):
    path = tmp_path / "notes.fits"
    path.write_text("this is not FITS\n" * 200)
    with pytest.raises(InputError, match="notes.fits: not a readable FITS file"):
        read_image(path)


def test_truncated_fits(tmp_path, image):
    path = tmp_path / "full.fits"
    fits.PrimaryHDU(image).writeto(path)
    cut = tmp_path / "cut.fits"
    cut.write_bytes(path.read_bytes()[:4000])
    with pytest.raises(InputError, match="cut.fits"):
        read_image(cut)


def test_gzip_corrupted(tmp_path):
    path = tmp_path / "bad.fits.gz"
    path.write_bytes(gzip.compress(b"SIMPLE  =                    T" + b" " * 50)[:30])
    with pytest.raises(InputError, match="bad.fits.gz"):
        read_image(path)


def test_missing_extension_lists_the_available_ones(tmp_path, image):
    path = tmp_path / "mef.fits"
    fits.HDUList([fits.PrimaryHDU(image), fits.ImageHDU(image, name="SCI")]).writeto(path)
    with pytest.raises(InputError, match=r"no extension 'WHT' \(extensions: PRIMARY, SCI\)"):
        read_image(path, ext="WHT")


def test_table_extension_and_no_image(tmp_path):
    path = tmp_path / "table.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.BinTableHDU.from_columns(
                [fits.Column(name="a", format="E", array=np.arange(3.0))]
            ),
        ]
    ).writeto(path)
    with pytest.raises(InputError, match="no HDU with image data"):
        read_image(path)
    with pytest.raises(InputError, match="table, not an image"):
        read_image(path, ext=1)


def test_map_shape_mismatch_names_the_map(tmp_path, image):
    path = tmp_path / "img.fits"
    fits.writeto(path, image)
    rms_path = tmp_path / "img_rms.fits"
    fits.writeto(rms_path, np.ones((10, 10)))
    with pytest.raises(InputError, match=r"img_rms.fits: shape \(10, 10\) does not match"):
        read_image(path, rms=rms_path)
    with pytest.raises(InputError, match="mask: shape"):
        read_image(path, mask=np.zeros((3, 3)))
    with pytest.raises(InputError, match="rms map or a weight map, not both"):
        read_image(path, rms=1.0, weight=np.ones(image.shape))


def test_rms_weight_mask_psf_validation():
    with pytest.raises(InputError, match="positive and finite"):
        as_rms(-1.0, (4, 4))
    with pytest.raises(InputError, match="no pixel has a positive"):
        as_rms(np.zeros((4, 4)), (4, 4))
    rms, bad = rms_from_weight(np.array([[4.0, 0.0], [1.0, -1.0]]), (2, 2))
    assert rms[0, 0] == 0.5 and bad.tolist() == [[False, True], [False, True]]
    m = as_mask(np.array([[0, 2], [np.nan, 0]]), (2, 2))
    assert m.tolist() == [[False, True], [True, False]]
    with pytest.raises(InputError, match="positive total flux"):
        as_psf(np.zeros((5, 5)))
    with pytest.raises(InputError, match="NaN"):
        as_psf(np.full((5, 5), np.nan))
    even = as_psf(np.ones((4, 4)))
    assert even.shape == (5, 5) and np.isclose(even.sum(), 1.0)


def test_write_segmap_keeps_wcs_and_is_atomic(tmp_path):
    seg = np.zeros((32, 40), int)
    seg[5:9, 5:9] = 1
    seg[20:25, 30:35] = 2
    out = write_segmap(tmp_path / "seg.fits", seg, wcs=_wcs())
    with fits.open(out) as hdul:
        assert hdul[0].data.dtype.kind == "i" and int(hdul[0].data.max()) == 2
        assert WCS(hdul[0].header).has_celestial
        assert hdul[0].header["NSOURCES"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.fits"]


def test_write_catalog_failure_leaves_no_file(tmp_path):
    from astropy.table import Table

    with pytest.raises(ValueError, match="unknown catalog format"):
        write_catalog(tmp_path / "cat.xyz", Table({"a": [1]}))
    bad = Table({"a": [object()]})
    with pytest.raises(Exception):  # noqa: B017 - astropy cannot serialise objects
        write_catalog(tmp_path / "cat.fits", bad)
    assert list(tmp_path.iterdir()) == []
