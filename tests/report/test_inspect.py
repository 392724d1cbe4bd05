"""The inspection page without a browser: structure, thumbnails, ids, errors; the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from helpers import gaussian_source
from PIL import Image

from morphoscope.classify.tables import join_labels
from morphoscope.cli import main
from morphoscope.exceptions import InputError, ParameterError
from morphoscope.report.inspect import (
    inspection_html,
    source_ids,
    source_thumbnails,
    write_inspection_page,
)


def _scene():
    shape = (80, 120)
    img = np.zeros(shape)
    xs, ys = [20.0, 60.0, 100.0], [30.0, 50.0, 40.0]
    for x, y in zip(xs, ys, strict=True):
        img += gaussian_source(shape, x, y, 500.0, 2.0)
    seg = np.zeros(shape, int)
    for k, (x, y) in enumerate(zip(xs, ys, strict=True), start=1):
        seg[int(y) - 4 : int(y) + 5, int(x) - 4 : int(x) + 5] = k
    cat = Table({"label": [1, 2, 3], "xc_centroid": xs, "yc_centroid": ys,
                 "flux": [500.0, 400.0, np.nan], "name": ["a<b", "c", "d"]})  # fmt: skip
    return img, seg, cat


def _data(page):
    blob = re.search(r'<script type="application/json" id="ms-data">(.*?)</script>', page, re.S)
    return json.loads(blob.group(1))


def test_thumbnails_show_every_band_with_the_source_outlined():
    img, seg, cat = _scene()
    pngs = source_thumbnails(cat, {"b": img, "r": 2 * img}, seg, min_size=24, max_size=96)
    assert len(pngs) == 3
    rgb = np.asarray(Image.open(__import__("io").BytesIO(pngs[0])).convert("RGB"))
    # two square panels (3 x the 9-pixel segment) side by side with a 2-pixel gap
    assert rgb.shape == (27, 56, 3)
    cyan = (rgb[..., 0] < 40) & (rgb[..., 1] > 200) & (rgb[..., 2] > 200)
    assert cyan[:, :27].any() and cyan[:, 29:].any()
    # the outline is the 9x9 segment: 9 pixels wide in each panel
    for panel in (cyan[:, :27], cyan[:, 29:]):
        cols = np.nonzero(panel.any(axis=0))[0]
        assert cols.max() - cols.min() + 1 == 9


def test_page_structure_and_json(tmp_path):
    img, seg, cat = _scene()
    out = write_inspection_page(
        tmp_path / "inspect.html", cat, images=img, segmap=seg, embed=False, sort="flux"
    )
    page = out.read_text()
    assert page.count('class="card"') == 3
    thumbs = sorted((tmp_path / "inspect_thumbs").glob("*.png"))
    assert len(thumbs) == 3
    assert re.findall(r'src="(inspect_thumbs/[^"]+)"', page) == [
        f"inspect_thumbs/{p.name}" for p in thumbs
    ]
    assert "http://" not in page and "https://" not in page
    data = _data(page)
    assert data["ids"] == ["1", "2", "3"] and data["id_column"] == "label"
    assert data["values"][data["columns"].index("flux")] == [500.0, 400.0, None]
    assert data["sort"] == "flux"
    assert "<b>label 1</b>" in page and "a<b" not in page  # values are escaped
    # rewriting replaces the thumbnails, embedding removes the need for them
    page2 = write_inspection_page(tmp_path / "inspect.html", cat, images=img, embed=True)
    assert page2.read_text().count('src="data:image/png;base64,') == 3


def test_ids_and_errors():
    t = Table({"flux": [1.0, 2.0]})
    assert source_ids(t) == ("row", ["0", "1"])
    with pytest.raises(InputError, match="not unique"):
        source_ids(Table({"id": [1, 1]}))
    with pytest.raises(InputError, match="no column 'obj'"):
        source_ids(t, "obj")
    with pytest.raises(ParameterError):
        inspection_html(t, page_size=0)
    with pytest.raises(InputError, match="2 thumbnails for 2|3 thumbnails"):
        inspection_html(t, [None, None, None])
    empty = inspection_html(Table())
    assert 'class="card"' not in empty and "0 sources" in empty


def test_join_labels_on_ids():
    cat = Table({"label": [1, 2, 3, 4], "gini": [0.1, 0.2, 0.3, 0.4]})
    dec = Table({"label": [4, 2, 3], "decision": ["accept", "reject", "unsure"]})
    out = join_labels(cat, dec)
    assert list(out["label"]) == [2, 4] and list(out["decision"]) == ["reject", "accept"]
    with pytest.raises(InputError, match="twice"):
        join_labels(cat, Table({"label": [1, 1], "decision": ["accept", "reject"]}))
    with pytest.raises(InputError, match="no identifier column 'id'"):
        join_labels(cat, Table({"id": [1], "decision": ["accept"]}))


def test_cli_inspect_then_train_from_decisions(tmp_path):
    img, seg, cat = _scene()
    fits.writeto(tmp_path / "F150W.fits", img)
    fits.writeto(tmp_path / "seg.fits", seg.astype(np.int32))
    cat.write(tmp_path / "cat.ecsv")
    argv = ["inspect", str(tmp_path / "cat.ecsv"), "--image", str(tmp_path / "F150W.fits"),
            "--segmap", str(tmp_path / "seg.fits"), "--out", str(tmp_path / "o"),
            "--columns", "flux"]  # fmt: skip
    assert main(argv) == 0
    page = (tmp_path / "o" / "inspect.html").read_text()
    assert len(list((tmp_path / "o" / "inspect_thumbs").glob("*.png"))) == 3
    assert "<th>flux</th>" in page and "<th>name</th>" not in page
    assert main([*argv[:-2], "--columns", "nope"]) == 2  # unknown column: one-line error
    # a decisions CSV as exported by the page trains a model
    rows = 30
    big = Table({"label": np.arange(1, rows + 1), "gini": np.linspace(0, 1, rows)})
    big.write(tmp_path / "big.ecsv")
    decide = np.where(big["gini"] > 0.5, "accept", "reject")
    lines = ["label,decision"] + [f"{i},{d}" for i, d in zip(big["label"], decide, strict=True)]
    (tmp_path / "decisions.csv").write_text("\n".join(lines) + "\n")
    argv = ["classify", "train", str(tmp_path / "big.ecsv"), "--labels",
            str(tmp_path / "decisions.csv"), "--model", "logreg", "--cv", "3",
            "--out", str(tmp_path / "m.zip")]  # fmt: skip
    assert main(argv) == 0
    assert main(["classify", "train", str(tmp_path / "big.ecsv"), "--out", "x.zip"]) == 2
