"""Hand-made bad FITS files, written into a folder at test time (never committed).

:func:`write_fits_corpus` returns ``{name: (path, expect)}``; ``expect`` is ``"ok"``,
``"error"`` or ``"either"`` as in :mod:`robustness.bad_inputs`.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from robustness.bad_inputs import galaxy


def _wcs_header() -> fits.Header:
    h = fits.Header()
    h.update(
        CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CRVAL1=150.0, CRVAL2=2.0, CRPIX1=32.0,
        CRPIX2=32.0, CDELT1=-1e-5, CDELT2=1e-5, CUNIT1="deg", CUNIT2="deg",
    )  # fmt: skip
    return h


def write_fits_corpus(folder: Path) -> dict[str, tuple[Path, str]]:
    """Write the corpus into ``folder``; return ``{name: (path, expect)}``."""
    folder.mkdir(parents=True, exist_ok=True)
    img = galaxy().astype(np.float32)
    out: dict[str, tuple[Path, str]] = {}

    def put(name, hdus, expect, suffix=".fits"):
        path = folder / f"{name}{suffix}"
        fits.HDUList(hdus).writeto(path, overwrite=True)
        out[name] = (path, expect)
        return path

    good = put("good", [fits.PrimaryHDU(img, header=_wcs_header())], "ok")
    put("no_wcs", [fits.PrimaryHDU(img)], "ok")
    put("broken_wcs", [fits.PrimaryHDU(img, header=fits.Header({"CTYPE1": "RA---XXX",
        "CTYPE2": "DEC--TAN", "CDELT1": 0.0}))], "ok")  # fmt: skip
    put("sci_extension", [fits.PrimaryHDU(), fits.ImageHDU(img, name="SCI")], "ok")
    put("empty_primary_only", [fits.PrimaryHDU()], "error")
    put("empty_image_ext", [fits.PrimaryHDU(), fits.ImageHDU(name="SCI")], "error")
    put("table_only", [fits.PrimaryHDU(), fits.BinTableHDU(Table({"a": [1, 2]}))], "error")
    put("cube", [fits.PrimaryHDU(np.stack([img] * 3))], "error")
    put("cube_one_plane", [fits.PrimaryHDU(img[None])], "ok")
    put("one_d", [fits.PrimaryHDU(img.ravel())], "error")
    put("int16_bscale", [fits.PrimaryHDU(np.round(img * 10).astype(np.int16))], "ok")
    hdu = fits.PrimaryHDU(np.round(img * 10).astype(np.int16))
    hdu.header["BSCALE"], hdu.header["BZERO"] = 0.1, 0.0
    put("int16_scaled", [hdu], "ok")
    put("int32", [fits.PrimaryHDU(np.round(img).astype(np.int32))], "ok")
    put("uint8", [fits.PrimaryHDU(np.clip(img + 20, 0, 255).astype(np.uint8))], "ok")
    put("float64", [fits.PrimaryHDU(img.astype(np.float64))], "ok")
    put("all_nan", [fits.PrimaryHDU(np.full((64, 64), np.nan, np.float32))], "error")
    put("all_zero", [fits.PrimaryHDU(np.zeros((64, 64), np.float32))], "error")
    put("constant", [fits.PrimaryHDU(np.full((64, 64), 3, np.float32))], "error")
    nan_img = img.copy()
    nan_img[:, :8] = np.nan
    put("nan_border", [fits.PrimaryHDU(nan_img)], "ok")
    put("tiny_2x2", [fits.PrimaryHDU(np.arange(4.0).reshape(2, 2))], "error")

    data = good.read_bytes()
    for name, content, expect in [
        ("truncated_half", data[: len(data) // 2], "error"),
        ("truncated_header", data[:1000], "error"),
        ("truncated_one_block", data[:-2880], "error"),
        ("zero_bytes", b"", "error"),
        ("text_file", b"SIMPLE is not a FITS header\n" * 200, "error"),
        ("html_error_page", b"<html><body>404 Not Found</body></html>", "error"),
        ("bit_flipped_header", data[:10] + b"X" + data[11:], "error"),
        ("garbage_data", data[:2880] + bytes(range(256)) * 11, "error"),
    ]:
        path = folder / f"{name}.fits"
        path.write_bytes(content)
        out[name] = (path, expect)
    gz = folder / "good.fits.gz"
    gz.write_bytes(gzip.compress(data))
    out["gzipped"] = (gz, "ok")
    bad_gz = folder / "truncated.fits.gz"
    bad_gz.write_bytes(gzip.compress(data)[:500])
    out["truncated_gzip"] = (bad_gz, "error")
    folder_path = folder / "a_folder.fits"
    folder_path.mkdir(exist_ok=True)
    out["is_a_folder"] = (folder_path, "error")
    out["missing_file"] = (folder / "absent.fits", "error")
    out["missing_extension"] = (Path(f"{good}[SCI]"), "error")
    out["extension_number_too_big"] = (Path(f"{good}[5]"), "error")
    sci = out["sci_extension"][0]
    out["extension_by_name"] = (Path(f"{sci}[SCI]"), "ok")
    out["extension_by_number"] = (Path(f"{sci}[1]"), "ok")
    out["empty_primary_by_number"] = (Path(f"{sci}[0]"), "error")
    tab = out["table_only"][0]
    out["table_extension"] = (Path(f"{tab}[1]"), "error")
    return out
