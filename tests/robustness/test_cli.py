"""``morphoscope run`` (through the CLI's main) on bad files, used folders and failures."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from robustness.bad_inputs import galaxy
from robustness.checks import digest
from robustness.corpus import write_fits_corpus

from morphoscope.cli import main
from morphoscope.flags import Flag


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_inputs")
    corpus = {k: v[0] for k, v in write_fits_corpus(folder / "corpus").items()}
    extra = {
        "small": np.ones((32, 32), np.float32),
        "rms_ok": np.ones((64, 64), np.float32),
        "psf_nan": np.full((5, 5), np.nan, np.float32),
        "psf_ok": np.pad(np.ones((1, 1), np.float32), 2),
        "second_band": galaxy(seed=9).astype(np.float32),
    }
    for name, data in extra.items():
        fits.writeto(folder / f"{name}.fits", data)
        corpus[name] = folder / f"{name}.fits"
    img = galaxy()
    img[24:28, 17:21] = np.nan
    fits.writeto(folder / "nan_source.fits", img.astype(np.float32))
    corpus["nan_source"] = folder / "nan_source.fits"
    return corpus


def _run(argv, capsys):
    """Run main(); return (status, stderr lines)."""
    code = main([*argv, "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def _hashes(files):
    return {k: digest(v) for k, v in files.items() if v.is_file()}


def _no_temporaries(folder):
    return not list(folder.rglob("*.tmp")) if folder.exists() else True


BAD_RUNS = [
    ("truncated_image", ["{truncated_half}"], "truncated_half.fits"),
    ("garbage_image", ["{garbage_data}"], "garbage_data.fits"),
    ("html_image", ["{html_error_page}"], "html_error_page.fits"),
    ("empty_image", ["{zero_bytes}"], "zero_bytes.fits"),
    ("cube_image", ["{cube}"], "cube.fits"),
    ("all_nan_image", ["{all_nan}"], "all_nan.fits"),
    ("table_image", ["{table_only}"], "table_only.fits"),
    ("missing_extension", ["{good}[SCI]"], "good.fits"),
    ("missing_image", ["{missing_file}"], "absent.fits"),
    ("folder_image", ["{is_a_folder}"], "a_folder.fits"),
    ("missing_psf", ["{good}", "--psf", "{missing_file}"], "absent.fits"),
    ("nan_psf", ["{good}", "--psf", "{psf_nan}"], "psf_nan.fits"),
    ("truncated_psf", ["{good}", "--psf", "{truncated_half}"], "truncated_half.fits"),
    ("rms_wrong_shape", ["{good}", "--rms", "{small}"], "small.fits"),
    ("weight_wrong_shape", ["{good}", "--weight", "{small}"], "small.fits"),
    ("mask_wrong_shape", ["{good}", "--mask", "{small}"], "small.fits"),
    ("rms_zero_number", ["{good}", "--rms", "0"], "rms"),
    ("rms_negative_number", ["{good}", "--rms=-2"], "rms"),
    ("rms_and_weight", ["{good}", "--rms", "{rms_ok}", "--weight", "{rms_ok}"], "rms"),
    ("corrupt_band", ["--band", "a={good}", "--band", "b={truncated_half}"], "truncated_half"),
    ("cube_band", ["--band", "a={good}", "--band", "b={cube}"], "cube.fits"),
    ("mismatched_band_shapes", ["--band", "a={good}", "--band", "b={small}"], "small.fits"),
    ("duplicate_band_names", ["--band", "a={good}", "--band", "a={no_wcs}"], "unique"),
    ("unknown_detection_band", ["--band", "a={good}", "--detection-band", "z"], "z"),
    ("image_and_bands", ["{good}", "--band", "a={good}"], "arguments"),
    ("no_input", [], "no input image"),
]


@pytest.mark.parametrize(("case", "argv", "named"), BAD_RUNS, ids=[c[0] for c in BAD_RUNS])
def test_run_bad_inputs(files, tmp_path, capsys, case, argv, named):
    out = tmp_path / "out"
    before = _hashes(files)
    args = ["run", *(a.format(**{k: str(v) for k, v in files.items()}) for a in argv)]
    code, err = _run([*args, "--out", str(out), "--no-report"], capsys)
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("morphoscope: error: "), err
    assert named in err[0], err
    assert not (out / "catalog.ecsv").exists() and not (out / "segmap.fits").exists()
    assert _no_temporaries(tmp_path)
    assert _hashes(files) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["{good}"],
        ["{no_wcs}", "--rms", "{rms_ok}"],
        ["{sci_extension}[SCI]", "--weight", "{rms_ok}"],
        ["{int16_scaled}", "--psf", "{psf_ok}"],
        ["{good}", "--method", "zhu"],
        ["--band", "a={good}", "--band", "b={second_band}"],
    ],
    ids=["plain", "rms_map", "extension", "int16_psf", "zhu", "two_bands"],
)
def test_run_good_inputs(files, tmp_path, capsys, argv):
    out = tmp_path / "out"
    before = _hashes(files)
    args = ["run", *(a.format(**{k: str(v) for k, v in files.items()}) for a in argv)]
    code, err = _run([*args, "--out", str(out), "--no-report"], capsys)
    assert code == 0, err
    cat = Table.read(out / "catalog.ecsv")
    assert len(cat) >= 2
    assert _hashes(files) == before and _no_temporaries(out)


def test_nan_in_source_is_flagged_in_the_catalog(files, tmp_path, capsys):
    out = tmp_path / "out"
    code, err = _run(["run", str(files["nan_source"]), "--out", str(out), "--no-report"], capsys)
    assert code == 0, err
    cat = Table.read(out / "catalog.ecsv")
    near = np.hypot(cat["xc_centroid"] - 19.2, cat["yc_centroid"] - 25.6) < 4
    assert near.sum() == 1 and cat["flag"][near][0] & Flag.MASKED_PIXELS


def test_existing_output_folder_needs_overwrite(files, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    keep = out / "catalog.ecsv"
    keep.write_text("an earlier catalog")
    code, err = _run(["run", str(files["good"]), "--out", str(out), "--no-report"], capsys)
    assert code == 2 and "--overwrite" in err[0] and str(out) in err[0]
    assert keep.read_text() == "an earlier catalog"
    code, err = _run(
        ["run", str(files["good"]), "--out", str(out), "--no-report", "--overwrite"], capsys
    )
    assert code == 0, err
    assert len(Table.read(keep)) >= 2


def test_empty_existing_folder_is_fine(files, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code, err = _run(["run", str(files["good"]), "--out", str(out), "--no-report"], capsys)
    assert code == 0, err


def test_out_is_a_file(files, tmp_path, capsys):
    out = tmp_path / "out.txt"
    out.write_text("x")
    code, err = _run(["run", str(files["good"]), "--out", str(out), "--overwrite"], capsys)
    assert code == 2 and "out.txt" in err[0]


def test_demo_refuses_used_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "report.html").write_text("old")
    code, err = _run(["demo", "--out", str(out), "--size", "64", "--n-sources", "2"], capsys)
    assert code == 2 and "--overwrite" in err[0]
    assert (out / "report.html").read_text() == "old"


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError])
def test_interrupted_catalog_write_leaves_no_partial_file(files, tmp_path, capsys, monkeypatch,
                                                          error):  # fmt: skip
    """The catalog writer dies after writing half a file: no catalog, no temporary file."""
    out = tmp_path / "out"
    real_write = Table.__dict__["write"]

    def dying_write(self, path, *args, **kwargs):
        real_write.__get__(self, type(self))(path, *args, **kwargs)
        with open(path, "r+b") as fh:
            fh.truncate(100)
        raise error(28, "No space left on device", str(path)) if error is OSError else error()

    monkeypatch.setattr(Table, "write", dying_write)
    code, err = _run(["run", str(files["good"]), "--out", str(out), "--no-report"], capsys)
    assert code == (130 if error is KeyboardInterrupt else 2)
    assert not (out / "catalog.ecsv").exists() and not (out / "catalog.fits").exists()
    assert _no_temporaries(out)
    if error is OSError:
        assert len(err) == 1 and "No space left on device" in err[0]


def test_failed_report_keeps_the_catalog(files, tmp_path, capsys, monkeypatch):
    from morphoscope.report import tiers

    def broken(*args, **kwargs):
        raise RuntimeError("matplotlib backend exploded")

    monkeypatch.setattr(tiers, "write_pipeline_report", broken)
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="report stage failed"):
        code, err = _run(["run", str(files["good"]), "--out", str(out)], capsys)
    assert code == 3
    assert any("stage 'report' failed" in line and "exploded" in line for line in err)
    assert len(Table.read(out / "catalog.ecsv")) >= 2 and (out / "segmap.fits").exists()
    assert not (out / "report.html").exists() and _no_temporaries(out)


def test_failed_band_measurement_keeps_the_others(files, monkeypatch):
    """One band's measurement fails: its columns are NaN, the run reports it, others stay."""
    import morphoscope.pipeline.run as run_module
    from morphoscope.pipeline import BandInput, run_pipeline

    real = run_module.measure
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise FloatingPointError("band b exploded")
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "measure", flaky)
    bands = [BandInput("a", files["good"]), BandInput("b", files["second_band"])]
    with pytest.warns(UserWarning, match="band b: measurement failed"):
        res = run_pipeline(bands, report=False)
    assert "measure b" in res.failed
    assert np.all(np.isnan(res.catalog["flux_b"])) and np.all(np.isfinite(res.catalog["flux_a"]))
