import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from helpers import gaussian_source

from morphoscope.cli import build_parser, main


@pytest.fixture
def image_file(tmp_path, rng):
    shape = (128, 128)
    img = rng.normal(0, 1, shape)
    for x, y in [(30, 30), (90, 40), (60, 100)]:
        img += gaussian_source(shape, x, y, 2000, 2.5)
    path = tmp_path / "img.fits"
    fits.writeto(path, img.astype(np.float32))
    return path


def test_help_lists_commands():
    text = build_parser().format_help()
    assert "run" in text and "demo" in text


def test_run_on_a_fits_file(tmp_path, image_file, capsys):
    out = tmp_path / "out"
    code = main(
        ["run", str(image_file), "--rms", "1.0", "--out", str(out), "--quiet", "--no-background"]
    )
    assert code == 0
    assert (out / "segmap.fits").exists() and (out / "catalog.ecsv").exists()
    assert (out / "report.html").exists()
    cat = Table.read(out / "catalog.ecsv")
    assert len(cat) == 3
    text = capsys.readouterr().out
    assert "sources           : 3" in text and "report" in text


def test_bad_input_gives_one_line_and_status_2(tmp_path, capsys):
    bad = tmp_path / "broken.fits"
    bad.write_bytes(b"not a fits file at all" * 100)
    code = main(["run", str(bad), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("morphoscope: error: broken.fits:")
    assert not (tmp_path / "o" / "catalog.ecsv").exists()


def test_no_input(capsys):
    assert main(["run", "--quiet"]) == 2
    assert "no input image" in capsys.readouterr().err


def test_console_script_runs_as_module():
    res = subprocess.run(
        [sys.executable, "-m", "morphoscope.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert res.stdout.startswith("morphoscope ")


def test_demo_small_field_scores_itself(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(
        ["demo", "--out", str(out), "--size", "256", "--n-sources", "25", "--seed", "3", "--quiet"]
    )
    assert code == 0
    for name in ("segmap.fits", "catalog.ecsv", "catalog.fits", "report.html", "data/truth.ecsv"):
        assert (out / name).exists(), name
    text = capsys.readouterr().out
    assert "completeness" in text and "purity" in text
