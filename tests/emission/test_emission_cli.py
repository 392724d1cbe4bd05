"""``morphoscope emission`` end to end, and the inspection page."""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from helpers import halo_galaxy as galaxy

from morphoscope.cli import emission as cli_emission
from morphoscope.emission import candidate_figure, inspection_page, search
from morphoscope.exceptions import InputError


def _run(argv):
    parser = argparse.ArgumentParser(prog="morphoscope")
    cli_emission.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def _scene(seed=0):
    rng = np.random.default_rng(seed)
    shape = (96, 96)
    cont = galaxy(shape, 24, 24) + galaxy(shape, 70, 64) + galaxy(shape, 70, 20)
    med = cont + galaxy(shape, 24, 24, amp=0, halo=6.0) + rng.normal(0, 1, shape)
    refs = [cont + rng.normal(0, 1, shape) for _ in range(2)]
    return med, refs


@pytest.fixture
def fits_files(tmp_path):
    med, refs = _scene()
    paths = {"med": tmp_path / "F335M.fits", "r1": tmp_path / "F277W.fits"}
    paths["r2"] = tmp_path / "F356W.fits"
    fits.writeto(paths["med"], med.astype(np.float32))
    fits.writeto(paths["r1"], refs[0])
    fits.writeto(paths["r2"], refs[1])
    cat = tmp_path / "cat.ecsv"
    Table({"id": [1, 2, 3], "x": [24.0, 70.0, 70.0], "y": [24.0, 64.0, 20.0]}).write(cat)
    paths["cat"] = cat
    return paths


def test_cli_end_to_end(fits_files, tmp_path):
    out = tmp_path / "out"
    argv = [
        "emission", "--medium", str(fits_files["med"]), "--reference", str(fits_files["r1"]),
        str(fits_files["r2"]), "--rms-medium", "1", "--rms-reference", "1", "1",
        "--catalog", str(fits_files["cat"]), "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert _run(argv) == 0
    table = Table.read(out / "emission_catalog.ecsv")
    assert list(table["id"]) == [1, 2, 3]
    assert list(table["candidate"]) == [True, False, False]
    assert (out / "candidates" / "emission_1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "inspect.html").read_text()
    assert page.count('class="card"') == 1
    assert 'data-id="1"' in page
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary file


def test_cli_detects_without_catalog(fits_files, tmp_path):
    out = tmp_path / "det"
    argv = [
        "emission", "--medium", str(fits_files["med"]), "--reference", str(fits_files["r1"]),
        "--out", str(out), "--no-figures", "--quiet",
    ]  # fmt: skip
    assert _run(argv) == 0
    table = Table.read(out / "emission_catalog.ecsv")
    assert len(table) == 3
    assert int(table["candidate"].sum()) == 1
    assert not (out / "inspect.html").exists()


def test_cli_bad_file(fits_files, tmp_path):
    bad = tmp_path / "broken.fits"
    bad.write_bytes(b"not a fits file at all")
    argv = ["emission", "--medium", str(bad), "--reference", str(fits_files["r1"])]
    with pytest.raises(InputError, match=r"broken\.fits"):
        _run([*argv, "--out", str(tmp_path / "o")])
    small = tmp_path / "small.fits"
    fits.writeto(small, np.ones((10, 10)) + np.eye(10))
    argv = ["emission", "--medium", str(fits_files["med"]), "--reference", str(small)]
    with pytest.raises(InputError, match=r"small\.fits"):
        _run([*argv, "--out", str(tmp_path / "o")])


def test_inspection_page_is_self_contained(tmp_path):
    med, refs = _scene(1)
    pos = [[24, 24], [70, 64], [70, 20]]
    table, cuts = search(
        med, refs, rms_medium=1.0, rms_reference=[1.0, 1.0], positions=pos,
        keep_cutouts="candidates",
    )  # fmt: skip
    n_cand = int(table["candidate"].sum())
    assert n_cand == len(cuts) >= 1
    page = inspection_page(cuts, tmp_path / "inspect.html", title="test")
    assert (tmp_path / "inspect.html").read_text() == page
    assert page.count('class="card"') == n_cand
    # nothing is fetched: no http(s) URL in any src or href, images are data URIs
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "http://" not in page and "https://" not in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == n_cand and all(s.startswith("data:image/png;base64,") for s in srcs)
    for needle in ("localStorage", "Export CSV", "keydown", "Accept", "Reject"):
        assert needle in page


def test_candidate_figure_has_three_panels_and_values():
    med, refs = _scene(2)
    _, cuts = search(
        med, refs, rms_medium=1.0, rms_reference=1.0, positions=[[24, 24]], keep_cutouts="all"
    )
    fig = candidate_figure(cuts[0], medium_name="F335M", reference_names=["F277W", "F356W"])
    assert len(fig.axes) == 3
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    for key in ("R =", "q =", "S_excess", "d_H"):
        assert key in texts
    assert "F335M" in fig.axes[0].get_title()


def test_main_reports_input_errors_as_one_line(fits_files, tmp_path, capsys):
    from morphoscope.cli import main

    missing = tmp_path / "missing.fits"
    argv = ["emission", "--medium", str(missing), "--reference", str(fits_files["r1"])]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "missing.fits" in err and "Traceback" not in err
