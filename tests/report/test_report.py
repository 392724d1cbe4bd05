"""The HTML report: structure, embedded images, gallery order, escaping, robustness."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from astropy.table import Table
from helpers import gaussian_source
from matplotlib.image import imread
from scipy import ndimage

from morphoscope.exceptions import InputError, ParameterError
from morphoscope.flags import Flag
from morphoscope.report import figures, stretch, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "input", "link", "col", "area", "base", "wbr", "source"}


# --------------------------------------------------------------------------- fixtures
def _scene(n=7, shape=(96, 128), seed=3):
    """Noisy image with ``n`` Gaussian blobs of distinct fluxes, its segmap and catalog."""
    rng = np.random.default_rng(seed)
    xs = np.linspace(12, shape[1] - 12, n)
    ys = rng.uniform(15, shape[0] - 15, n)
    fluxes = np.geomspace(300, 5000, n)[rng.permutation(n)]
    img = rng.normal(0.0, 0.5, shape)
    for x, y, f in zip(xs, ys, fluxes, strict=True):
        img += gaussian_source(shape, x, y, f, 2.0)
    seg, nlab = ndimage.label(img > 2.5)
    labels = np.arange(1, nlab + 1)
    flux = np.asarray(ndimage.sum(img, seg, labels))
    area = np.asarray(ndimage.sum(np.ones(shape), seg, labels))
    cy, cx = np.asarray(ndimage.center_of_mass(np.clip(img, 0, None), seg, labels)).T
    cat = Table(
        {
            "label": labels,
            "xc_centroid": cx,
            "yc_centroid": cy,
            "flux": flux,
            "area": area,
            "r50": np.sqrt(area / np.pi) / 1.4,
            "gini": np.linspace(0.3, 0.6, nlab),
            "m20": np.linspace(-2.2, -1.2, nlab),
            "flag": np.zeros(nlab, int),
        }
    )
    truth = Table({"x": xs, "y": ys, "flux_F200W": fluxes, "r_e": np.full(n, 2.35)})
    return img, seg, cat, truth


@pytest.fixture(scope="module")
def scene():
    return _scene()


class _Checker(HTMLParser):
    """Collects tags and checks that every non-void element is closed in order."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(path):
    text = path.read_text(encoding="utf-8")
    checker = _Checker()
    checker.feed(text)
    checker.close()
    return text, checker


def _gallery_items(checker):
    return [a for t, a in checker.tags if t == "figure" and "gallery-item" in a.get("class", "")]


# --------------------------------------------------------------------------- report
def test_report_structure_images_and_gallery(tmp_path, scene):
    img, seg, cat, truth = scene
    cat = cat.copy()
    brightest = int(np.argmax(cat["flux"]))
    cat["flag"][brightest] = int(Flag.EDGE | Flag.DEBLENDED)
    bands = {"F115W": img * 0.6, "F200W": img, "F444W": img * 1.4}
    out = write_report(
        tmp_path / "report.html",
        image=img,
        segmap=seg,
        catalog=cat,
        truth=truth,
        band_images=bands,
        summary={"input": "f200w.fits"},
        n_gallery=4,
    )
    assert out == tmp_path / "report.html"
    text, checker = _parse(out)
    assert text.startswith("<!DOCTYPE html>")
    assert checker.errors == []
    assert checker.stack == []
    ids = {a.get("id") for _, a in checker.tags}
    assert {"summary", "overview", "gallery", "plots", "catalog"} <= ids
    assert any(t == "footer" for t, _ in checker.tags)
    assert "morphoscope" in "".join(checker.text)

    # every image is an embedded, decodable PNG
    srcs = [a["src"] for t, a in checker.tags if t == "img"]
    # overview + composite + 4 cutouts + size/flux, Gini, Gini-M20, flux recovery
    assert len(srcs) == 2 + 4 + 4
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert raw[:8] == PNG_SIGNATURE
        pix = imread(io.BytesIO(raw), format="png")
        assert pix.ndim in (2, 3) and min(pix.shape[:2]) >= 24

    # the gallery: the 4 brightest, brightest first, with flag names
    items = _gallery_items(checker)
    order = np.argsort(-np.asarray(cat["flux"]))[:4]
    assert [int(a["data-label"]) for a in items] == [int(cat["label"][i]) for i in order]
    shown = [float(a["data-flux"]) for a in items]
    assert shown == sorted(shown, reverse=True)
    first_caption = text[text.index('class="gallery-item"') :].split("</figure>")[0]
    assert "EDGE, DEBLENDED" in first_caption

    # catalog table: one row per source
    table = text[text.index('id="catalog-table"') :]
    assert table.count("<tr>") == len(cat) + 1


def test_gallery_count_is_min_of_n_and_sources(tmp_path, scene):
    img, seg, cat, _ = scene
    out = write_report(tmp_path / "r.html", image=img, segmap=seg, catalog=cat, n_gallery=50)
    _, checker = _parse(out)
    assert len(_gallery_items(checker)) == len(cat)
    out = write_report(tmp_path / "r.html", image=img, segmap=seg, catalog=cat, n_gallery=0)
    _, checker = _parse(out)
    assert len(_gallery_items(checker)) == 0


def test_no_external_resources(tmp_path, scene):
    img, seg, cat, truth = scene
    out = write_report(tmp_path / "r.html", image=img, segmap=seg, catalog=cat, truth=truth)
    text = out.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    _, checker = _parse(out)
    for tag, attrs in checker.tags:
        for key in ("src", "href"):
            if key in attrs:
                assert attrs[key].startswith(("data:", "#")), (tag, attrs[key][:40])
    assert not any(t in {"link", "iframe"} for t, _ in checker.tags)
    assert all("src" not in a for t, a in checker.tags if t == "script")


def test_text_is_escaped(tmp_path, scene):
    img, seg, cat, _ = scene
    evil = "<script>alert('x')</script> & \"q\""
    out = write_report(
        tmp_path / "r.html",
        image=img,
        segmap=seg,
        catalog=cat,
        title=evil,
        summary={"<b>key</b>": evil, "n": 3},
    )
    text, checker = _parse(out)
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;q&quot;" in text
    assert "&lt;b&gt;key&lt;/b&gt;" in text
    assert sum(1 for t, _ in checker.tags if t == "script") == 1
    title = text[text.index("<title>") + 7 : text.index("</title>")]
    assert "<" not in title


def test_summary_rows_and_flag_counts(tmp_path, scene):
    img, seg, cat, _ = scene
    cat = cat.copy()
    cat["flag"] = 0
    cat["flag"][1] = int(Flag.EDGE)
    cat["flag"][2] = int(Flag.EDGE | Flag.LOW_SN)
    out = write_report(
        tmp_path / "r.html", image=img, segmap=seg, catalog=cat, summary={"run time": 1.5}
    )
    text = out.read_text()
    assert "<td>run time</td><td>1.5</td>" in text
    assert f"<td>sources</td><td>{len(cat)}</td>" in text
    assert "<td>flagged sources</td><td>2</td>" in text
    assert "<td>EDGE</td><td>2</td>" in text
    assert "<td>LOW_SN</td><td>1</td>" in text


def test_empty_catalog_and_empty_segmap(tmp_path):
    img = np.random.default_rng(0).normal(size=(40, 50))
    seg = np.zeros(img.shape, int)
    out = write_report(tmp_path / "r.html", image=img, segmap=seg, catalog=Table())
    text, checker = _parse(out)
    assert checker.errors == []
    assert "No sources were detected" in text
    assert len(_gallery_items(checker)) == 0
    empty = Table({"label": np.zeros(0, int), "flux": np.zeros(0)})
    out = write_report(tmp_path / "r2.html", image=img, segmap=seg, catalog=empty)
    assert "No sources were detected" in out.read_text()
    out = write_report(tmp_path / "r3.html", image=img, segmap=seg, catalog=None)
    assert out.exists()


@pytest.mark.parametrize("fill", [np.nan, 3.0])
def test_nan_and_constant_images(tmp_path, scene, fill):
    _, seg, cat, truth = scene
    img = np.full(seg.shape, fill)
    out = write_report(tmp_path / "r.html", image=img, segmap=seg, catalog=cat, truth=truth)
    text, checker = _parse(out)
    assert checker.errors == []
    assert len(_gallery_items(checker)) == min(24, len(cat))
    if np.isnan(fill):
        assert "the image has no finite pixels" in text


def test_missing_columns_nans_and_unknown_labels(tmp_path, scene):
    img, seg, cat, _ = scene
    cat = Table({"label": np.append(cat["label"], [999]), "flux": np.append(cat["flux"], np.nan)})
    cat["flux"][0] = np.nan
    out = write_report(tmp_path / "r.html", image=img, segmap=seg, catalog=cat, n_gallery=100)
    text, checker = _parse(out)
    items = _gallery_items(checker)
    assert len(items) == len(cat)
    # NaN fluxes last, label 999 is reported as absent from the map
    assert items[-1]["data-flux"] == "" and items[-2]["data-flux"] == ""
    assert "not in segmentation map" in text
    # no gini / r50 / m20: no such plots, but the page is still written
    assert "Gini-M20" not in text


def test_shape_mismatch_raises_input_error(tmp_path, scene):
    img, seg, cat, _ = scene
    with pytest.raises(InputError, match="segmap"):
        write_report(tmp_path / "r.html", image=img, segmap=seg[:-1], catalog=cat)
    with pytest.raises(InputError, match="image"):
        write_report(tmp_path / "r.html", image=img[0], segmap=seg[0], catalog=cat)
    with pytest.raises(ParameterError, match="n_gallery"):
        write_report(tmp_path / "r.html", image=img, segmap=seg, catalog=cat, n_gallery=-1)
    assert not (tmp_path / "r.html").exists()


def test_atomic_write_leaves_no_temporary_file(tmp_path, scene):
    img, seg, cat, _ = scene
    target = tmp_path / "out" / "report.html"
    write_report(target, image=img, segmap=seg, catalog=cat)
    write_report(target, image=img, segmap=seg, catalog=cat)  # overwrite in place
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]


def test_inputs_are_not_modified(tmp_path, scene):
    img, seg, cat, truth = scene
    copies = img.copy(), seg.copy(), cat.copy(), truth.copy()
    write_report(tmp_path / "r.html", image=img, segmap=seg, catalog=cat, truth=truth)
    np.testing.assert_array_equal(img, copies[0])
    np.testing.assert_array_equal(seg, copies[1])
    assert cat.colnames == copies[2].colnames
    assert all(np.array_equal(cat[c], copies[2][c]) for c in cat.colnames)


def test_large_image_is_downsampled(tmp_path):
    rng = np.random.default_rng(1)
    img = rng.normal(size=(600, 900))
    seg = np.zeros(img.shape, int)
    seg[100:110, 200:210] = 1
    cat = Table({"label": [1], "flux": [5.0]})
    out = write_report(tmp_path / "r.html", image=img, segmap=seg, catalog=cat, max_pixels=300)
    _, checker = _parse(out)
    src = next(a["src"] for t, a in checker.tags if t == "img")
    pix = imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
    assert max(pix.shape[:2]) < 600  # 300 px raster plus axes, not the 900 px original
    assert "block-averaged by 3 x 3" in out.read_text()


# --------------------------------------------------------------------------- figures
def test_stretch_range_nan_and_constant():
    img = np.array([[np.nan, -1.0, 0.0], [1.0, 10.0, np.inf]])
    s = stretch(img, lower_percentile=0, upper_percentile=100)
    assert s.shape == img.shape
    assert np.all((s >= 0) & (s <= 1))
    assert s[0, 0] == 0 and s[1, 2] == 0
    assert s[0, 1] == 0 and s[1, 1] == 1
    assert s[0, 2] < s[1, 0] < s[1, 1]  # monotonic
    assert np.all(stretch(np.full((4, 4), 7.0)) == 0)
    assert np.all(stretch(np.full((4, 4), np.nan)) == 0)


def test_overview_marks_truth_and_outlines(scene):
    img, seg, cat, truth = scene
    rgb, factor = figures.overview_rgb(img, seg)
    assert factor == 1 and rgb.shape == (*img.shape, 3)
    # outline pixels are coloured (not grey), background pixels grey
    colour = np.ptp(rgb, axis=2) > 0.1
    edges = np.zeros_like(colour)
    for lab in np.unique(seg[seg > 0]):
        m = seg == lab
        edges |= m & ~ndimage.binary_erosion(m)
    assert colour[edges].mean() > 0.9
    assert not colour[seg == 0].any()
    cat_index, detected = figures.match_truth(cat, truth)
    assert detected.sum() >= len(truth) - 1
    # matched rows are the nearest catalog centroids
    m = cat_index >= 0
    d = np.hypot(
        cat["xc_centroid"][cat_index[m]] - truth["x"][m],
        cat["yc_centroid"][cat_index[m]] - truth["y"][m],
    )
    assert np.all(d < 2.5)


def test_match_truth_without_centroids_uses_segmap(scene):
    _, seg, _, truth = scene
    cat = Table({"label": [1]})
    idx, detected = figures.match_truth(cat, truth, segmap=seg)
    on_segment = seg[np.round(truth["y"]).astype(int), np.round(truth["x"]).astype(int)] > 0
    np.testing.assert_array_equal(detected, on_segment)
    assert np.all(idx == -1)


def test_cutout_box_and_rgb(scene):
    img, seg, cat, _ = scene
    lab = int(cat["label"][np.argmax(cat["flux"])])
    sl = ndimage.find_objects((seg == lab).astype(int))[0]
    x0, y0, size = figures.cutout_box(seg, lab)
    extent = max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start)
    assert size == max(24, int(np.ceil(3 * extent)))
    assert x0 <= sl[1].start and x0 + size >= sl[1].stop
    assert y0 <= sl[0].start and y0 + size >= sl[0].stop
    rgb = figures.cutout_rgb(img, seg, lab)
    assert rgb.shape == (size, size, 3)
    assert np.all((rgb >= 0) & (rgb <= 1))
    # a source at the border: the box keeps its size, outside pixels are dark blue-grey
    edge = np.zeros_like(seg)
    edge[0:4, 0:4] = 1
    out = figures.cutout_rgb(img, edge, 1)
    assert out.shape == (24, 24, 3)
    outside = out[:4, :8]  # top rows of the display lie above the image
    assert np.all(outside[..., 2] > outside[..., 0] + 0.1)
    inside = out[:6, 14:]  # pixels inside the image, away from the segment, are grey
    assert np.allclose(inside[..., 0], inside[..., 2])


def test_plot_functions_return_figures_and_skip_missing(scene):
    from matplotlib.figure import Figure

    _, _, cat, truth = scene
    for fig in (
        figures.size_flux_figure(cat),
        figures.gini_histogram(cat),
        figures.gini_m20_figure(cat),
        figures.flux_recovery_figure(cat, truth),
        figures.size_flux_figure(Table({"flux": [1.0]})),
        figures.gini_histogram(Table({"gini": [np.nan]})),
        figures.cutout_gallery(*scene[:2], cat, n=3),
    ):
        assert isinstance(fig, Figure)
        assert figures.png_bytes(fig)[:8] == PNG_SIGNATURE
    assert len(figures.cutout_gallery(*scene[:2], cat, n=3).axes) == 3
    assert figures.truth_flux_column(cat, truth) == ("flux", "flux_F200W")


def test_colour_composite_band_order():
    blue = np.zeros((10, 10))
    red = np.zeros((10, 10))
    red[5, 5] = 10.0
    blue[2, 2] = 10.0
    rgb, used = figures.colour_composite({"F090W": blue * 0, "F150W": blue, "F444W": red})
    assert used == ["F090W", "F150W", "F444W"]
    assert rgb[5, 5, 0] > 0.9 and rgb[5, 5, 2] == 0  # reddest band -> red channel
    assert rgb[2, 2, 1] > 0.9 and rgb[2, 2, 0] == 0  # middle band -> green
    grey, used = figures.colour_composite({"F200W": red})
    assert used == ["F200W"] and np.allclose(grey[..., 0], grey[..., 2])


def test_truth_flux_column_prefers_detection_band():
    cat = Table({"flux": [1.0, 2.0], "flux_A": [5.0, 6.0], "flux_B": [1.0, 2.0]})
    truth = Table({"x": [0.0], "y": [0.0], "flux_A": [1.0], "flux_B": [1.0]})
    assert figures.truth_flux_column(cat, truth) == ("flux", "flux_B")
    assert figures.truth_flux_column(cat, truth, "flux_A") == ("flux", "flux_A")
    assert figures.truth_flux_column(Table({"label": [1]}), truth) is None


def test_large_cutouts_are_reduced_and_downsample_handles_nan():
    img = np.zeros((400, 400))
    seg = np.zeros((400, 400), int)
    seg[150:250, 150:250] = 1  # 100 px segment -> 300 px box
    img[seg == 1] = 1.0
    rgb = figures.cutout_rgb(img, seg, 1, max_size=128)
    assert max(rgb.shape[:2]) <= 128 and rgb.shape[0] == rgb.shape[1]
    # the outline is still drawn around the (reduced) segment
    cyan = np.all(np.isclose(rgb, (0.0, 229 / 255, 1.0)), axis=2)
    assert cyan.sum() > 50
    arr = np.array([[1.0, np.nan, 5.0, 5.0], [3.0, np.nan, 5.0, 5.0]])
    np.testing.assert_allclose(figures.downsample(arr, 2), [[2.0, 5.0]])
    assert np.isnan(figures.downsample(np.full((2, 2), np.nan), 2)[0, 0])


def test_class_column_is_counted_and_shown(tmp_path, scene):
    img, seg, cat, _ = scene
    cat = cat.copy()
    cat["class"] = ["disk"] * (len(cat) - 2) + ["spheroid", "point_source"]
    out = write_report(tmp_path / "r.html", image=img, segmap=seg, catalog=cat, n_gallery=100)
    text = out.read_text()
    assert f"disk: {len(cat) - 2}, point_source: 1, spheroid: 1" in text
    assert text.count("class disk") == len(cat) - 2
