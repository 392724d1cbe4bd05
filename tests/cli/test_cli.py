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


def test_measure_set_option(tmp_path, image_file):
    """--measure-set fast: first-order columns only; full (default): statmorph's set and the
    Sersic fit; the set is recorded in log.json, by tiled runs too."""
    import json

    from morphoscope.measure import COLUMNS, NONPARAMETRIC_COLUMNS, SERSIC_COLUMNS

    statmorph_only = set(NONPARAMETRIC_COLUMNS) - set(COLUMNS)
    common = [str(image_file), "--rms", "1.0", "--no-background", "--no-report", "--quiet",
              "--workers", "1", "--skip", "sersicnet,pixel"]  # fmt: skip
    cats, logs = {}, {}
    for name, tile in (("fast", "0"), ("full", "0"), ("fast", "64")):
        out = tmp_path / f"{name}_{tile}"
        args = ["run", *common, "--tile", tile, "--measure-set", name, "--out", str(out)]
        assert main(args) == 0
        cats[name, tile] = Table.read(out / "catalog.ecsv")
        logs[name, tile] = json.loads((out / "log.json").read_text())
        assert logs[name, tile]["config"]["measure_set"] == name
    fast, full = cats["fast", "0"], cats["full", "0"]
    assert logs["fast", "64"]["measure_options"] == {"nonparametric": False, "sersic": False}
    assert logs["fast", "64"]["tiling"]["ntiles"] == 4
    for cat in (fast, cats["fast", "64"]):
        assert not statmorph_only & set(cat.colnames)
        assert not set(SERSIC_COLUMNS) & set(cat.colnames)
        assert set(COLUMNS) <= set(cat.colnames)
    assert statmorph_only <= set(full.colnames) and set(SERSIC_COLUMNS) <= set(full.colnames)
    # every run finds the three galaxies at their true positions
    for cat in cats.values():
        order = np.argsort(np.asarray(cat["xc_centroid"]))
        xy = np.column_stack([cat["xc_centroid"], cat["yc_centroid"]])[order]
        np.testing.assert_allclose(xy, [(30, 30), (60, 100), (90, 40)], atol=0.1)
    # the Sersic fit recovers the Gaussians (n = 0.5, r_e = 1.1774 sigma)
    np.testing.assert_allclose(full["sersic_n"], 0.5, atol=0.05)
    np.testing.assert_allclose(full["sersic_rhalf"], 1.1774 * 2.5, rtol=0.05)


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
