"""report.html and the inspection page in a real browser (headless Chromium).

A field of 2025 simulated sources, half compact and half extended, goes through
``morphoscope inspect`` and ``write_report``; the pages are opened from ``file://`` with
every network request recorded (and refused), every image is checked to render, 20
sources are decided by keyboard, the page is reloaded, the decisions are exported as CSV
and compared, and ``morphoscope classify train --labels`` learns compact versus extended
from them. Screenshots go to ``$PYTEST_ARTIFACTS`` (or the test's temporary folder).

Needs the ``playwright`` Python package (the ``test`` extra) and a Chromium binary: the
Debian/Ubuntu ``chromium`` package at ``/usr/bin/chromium``, or ``$MORPHOSCOPE_CHROMIUM``.
Playwright never downloads a browser here. Without either, the tests are skipped.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from scipy import ndimage

from morphoscope.cli import main
from morphoscope.report import write_report

N_SIDE, SPACING = 45, 22  # 2025 sources
PAGE = 50


def _chromium() -> str | None:
    for cand in (
        os.environ.get("MORPHOSCOPE_CHROMIUM"),
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="browser tests need the 'playwright' package: pip install -e '.[test]'",
)
CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="browser tests need Chromium: apt-get install chromium (or set "
    "MORPHOSCOPE_CHROMIUM=/path/to/chrome); Playwright's own browser download is not used",
)


# --------------------------------------------------------------------------- the field
def _field(seed=7):
    """Two-band image of a grid of sources (compact: sigma 1.2 px, extended: 3 px)."""
    rng = np.random.default_rng(seed)
    size = N_SIDE * SPACING + 20
    n = N_SIDE * N_SIDE
    extended = rng.random(n) < 0.5
    flux = rng.uniform(500, 1500, n)
    colour = rng.uniform(0.6, 1.4, n)
    blue = rng.normal(0.0, 1.0, (size, size))
    red = rng.normal(0.0, 1.0, (size, size))
    yy, xx = np.mgrid[-10:11, -10:11]
    xs = 20 + SPACING * (np.arange(n) % N_SIDE) + rng.uniform(-1, 1, n)
    ys = 20 + SPACING * (np.arange(n) // N_SIDE) + rng.uniform(-1, 1, n)
    for k in range(n):
        s = 3.0 if extended[k] else 1.2
        ix, iy = int(xs[k]), int(ys[k])
        g = np.exp(-((xx - xs[k] + ix) ** 2 + (yy - ys[k] + iy) ** 2) / (2 * s * s))
        g *= flux[k] / (2 * np.pi * s * s)
        blue[iy - 10 : iy + 11, ix - 10 : ix + 11] += g
        red[iy - 10 : iy + 11, ix - 10 : ix + 11] += colour[k] * g
    det = blue + red
    seg, nlab = ndimage.label(ndimage.gaussian_filter(det, 1.0) > 3.0)
    labels = np.arange(1, nlab + 1)
    cy, cx = np.asarray(ndimage.center_of_mass(np.clip(det, 0, None), seg, labels)).T
    area = np.asarray(ndimage.sum(np.ones_like(det), seg, labels))
    # each segment's true type: the grid cell its centroid falls in
    cell = (np.clip(np.round((cy - 20) / SPACING), 0, N_SIDE - 1) * N_SIDE).astype(int)
    cell += np.clip(np.round((cx - 20) / SPACING), 0, N_SIDE - 1).astype(int)
    cat = Table(
        {
            "id": labels + 1000,
            "label": labels,
            "xc_centroid": cx,
            "yc_centroid": cy,
            "flux": np.asarray(ndimage.sum(det, seg, labels)),
            "area": area,
            "r50": np.sqrt(area / np.pi) / 1.4,
            "concentration": np.asarray(ndimage.maximum(det, seg, labels)) / area,
            "flag": np.zeros(nlab, int),
        }
    )
    truth = np.where(extended[cell], "extended", "compact")
    return blue, red, seg, cat, truth


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    blue, red, seg, cat, truth = _field()
    assert len(cat) >= 2000
    files = {"root": root, "cat": root / "catalog.ecsv", "seg": root / "segmap.fits"}
    files["F150W"], files["F444W"] = root / "F150W.fits", root / "F444W.fits"
    fits.writeto(files["F150W"], blue.astype(np.float32))
    fits.writeto(files["F444W"], red.astype(np.float32))
    fits.writeto(files["seg"], seg.astype(np.int32))
    cat.write(files["cat"])
    return {"files": files, "blue": blue, "red": red, "seg": seg, "cat": cat, "truth": truth}


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield b
        b.close()


@pytest.fixture
def artifacts(tmp_path):
    base = os.environ.get("PYTEST_ARTIFACTS")
    if not base:
        return tmp_path
    out = Path(base) / "browser"
    out.mkdir(parents=True, exist_ok=True)
    return out


class Offline:
    """A browser context that records every request and refuses those leaving the machine."""

    LOCAL = ("file:", "data:", "blob:", "about:")

    def __init__(self, browser):
        self.context = browser.new_context(
            accept_downloads=True, viewport={"width": 1400, "height": 900}
        )
        self.requests: list[str] = []
        self.external: list[str] = []
        self.errors: list[str] = []
        self.context.on("request", lambda r: self.requests.append(r.url))
        self.context.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.LOCAL):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def page(self):
        page = self.context.new_page()
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        return page

    def check(self):
        leaving = [u for u in self.requests if not u.startswith(self.LOCAL)]
        assert not leaving and not self.external, leaving + self.external
        assert not self.errors, self.errors

    def close(self):
        self.context.close()


def _broken_images(page, selector="img"):
    """Scroll every matching, displayed image into view; return those that did not render."""
    return page.evaluate(
        """async (sel) => {
        const imgs = Array.from(document.querySelectorAll(sel))
            .filter(i => i.offsetParent !== null);
        for (const i of imgs) {
            i.scrollIntoView();
            if (!i.complete) await new Promise(r => { i.onload = i.onerror = r; });
            await i.decode().catch(() => {});
        }
        return imgs.filter(i => !(i.naturalWidth > 0)).map(i => i.getAttribute('alt'));
    }""",
        selector,
    )


# --------------------------------------------------------------------------- report.html
def test_report_opens_offline_with_2000_sources(field, browser, artifacts, tmp_path):
    cat = field["cat"]
    path = write_report(
        tmp_path / "report.html",
        image=field["blue"] + field["red"],
        segmap=field["seg"],
        catalog=cat,
        band_images={"F150W": field["blue"], "F444W": field["red"]},
        summary={"input": "F150W.fits, F444W.fits"},
    )
    net = Offline(browser)
    try:
        page = net.page()
        page.goto(path.as_uri())
        imgs = page.locator("img")
        assert imgs.count() >= 24 + 3  # field, composite, gallery, plots
        assert _broken_images(page) == []
        # the catalog table holds every row but shows one page of 100
        rows = page.locator("#catalog-table tbody tr")
        assert rows.count() == len(cat)
        visible = page.locator("#catalog-table tbody tr:visible")
        assert visible.count() == 100
        first = visible.first.locator("td").first.inner_text()
        page.click("#catalog-table-pages .next")
        assert page.locator("#catalog-table tbody tr:visible").first.inner_text() != first
        pageno = page.locator("#catalog-table-pages .pageno").inner_text()
        assert pageno.startswith("rows 101-200")
        # sorting by flux orders all rows, not one page
        heads = page.locator("#catalog-table thead th").all_inner_texts()
        col = [h.split(" ")[0] for h in heads].index("flux") + 1
        page.click(f"#catalog-table thead th:nth-child({col})")
        page.click(f"#catalog-table thead th:nth-child({col})")  # descending
        cell = page.locator(f"#catalog-table tbody tr:visible td:nth-child({col})").first
        top = float(cell.get_attribute("data-v"))
        assert top == pytest.approx(float(np.max(cat["flux"])), rel=1e-6)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(artifacts / "report.png"))
        net.check()
    finally:
        net.close()


# --------------------------------------------------------------------------- inspection
def _decide(page, truth_by_id, n=20):
    """Press keys for ``n`` sources: extended -> a, compact -> r, every 7th -> u.

    Also steps back once with ``k`` and changes that decision. Returns ``{id: decision}``.
    """
    made: dict[str, str] = {}
    current = lambda: page.evaluate("window.morphoscopeInspect.current()")  # noqa: E731
    for i in range(n):
        sid = current()
        key = "u" if i % 7 == 3 else ("a" if truth_by_id[sid] == "extended" else "r")
        page.keyboard.press(key)
        made[sid] = {"a": "accept", "r": "reject", "u": "unsure"}[key]
        if i == 10:  # previous, correct it to unsure, then move on again
            page.keyboard.press("k")
            back = current()
            page.keyboard.press("u")
            made[back] = "unsure"
            assert current() == sid or current() != back
    return made


def test_inspection_page_keyboard_export_and_training(field, browser, artifacts, tmp_path):
    files = field["files"]
    out = tmp_path / "inspect"
    argv = [
        "inspect", str(files["cat"]), "--image", str(files["F150W"]), str(files["F444W"]),
        "--segmap", str(files["seg"]), "--out", str(out), "--sort", "flux",
        "--page-size", str(PAGE),
    ]  # fmt: skip
    assert main(argv) == 0
    html = out / "inspect.html"
    thumbs = sorted((out / "inspect_thumbs").glob("*.png"))
    cat, truth = field["cat"], field["truth"]
    assert len(thumbs) == len(cat)
    truth_by_id = {str(i): t for i, t in zip(cat["id"], truth, strict=True)}

    net = Offline(browser)
    try:
        page = net.page()
        page.goto(html.as_uri())
        page.wait_for_selector(".card.shown")
        # one page of cards; thumbnails load lazily: far fewer than 2000 image requests
        assert page.locator(".card").count() == len(cat)
        assert page.locator(".card.shown").count() == PAGE
        png_requests = [u for u in net.requests if u.endswith(".png")]
        assert 0 < len(png_requests) <= PAGE
        assert _broken_images(page, ".card.shown img") == []
        # sorted by flux, ascending
        order = page.evaluate("window.morphoscopeInspect.order()")
        flux = np.asarray(cat["flux"])[order]
        assert np.all(np.diff(flux) >= 0)
        # the last page renders too
        page.keyboard.press("End")
        assert _broken_images(page, ".card.shown img") == []
        # re-sort by x (the faintest sources are mostly extended ones, a column of the
        # grid mixes both kinds); the current source stays current
        before = page.evaluate("window.morphoscopeInspect.current()")
        page.select_option("#sort", "xc_centroid")
        assert page.evaluate("window.morphoscopeInspect.current()") == before
        order = page.evaluate("window.morphoscopeInspect.order()")
        assert np.all(np.diff(np.asarray(cat["xc_centroid"])[order]) >= 0)
        page.keyboard.press("Home")

        made = _decide(page, truth_by_id, 20)
        assert len(made) == 20
        shown = page.evaluate("window.morphoscopeInspect.decisions()")
        assert shown == made
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(artifacts / "inspect.png"))

        # decisions survive a reload
        page.reload()
        page.wait_for_selector(".card.shown")
        assert page.evaluate("window.morphoscopeInspect.decisions()") == made
        for sid, d in list(made.items())[:5]:
            card = page.locator(f'.card[data-id="{sid}"]')
            assert d in card.get_attribute("class").split()

        # filter by a column and by decision
        accepted = [i for i, sid in enumerate(cat["id"]) if made.get(str(sid)) == "accept"]
        cut = float(np.min(cat["r50"][accepted]))  # keeps those above the smallest
        page.fill("#filter", f"r50 > {cut!r}, decision = accept")
        page.click("#apply")
        kept = page.evaluate("window.morphoscopeInspect.order()")
        assert sorted(kept) == [i for i in accepted if cat["r50"][i] > cut]
        assert len(kept) < len(accepted) and (kept or len(set(cat["r50"][accepted])) == 1)
        page.fill("#filter", "")
        page.click("#apply")

        # export: the CSV has exactly the decisions made
        with page.expect_download() as dl:
            page.click("#export")
        csv_path = tmp_path / "decisions.csv"
        dl.value.save_as(csv_path)
        with open(csv_path, newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == ["id", "decision"]
        assert dict(rows[1:]) == made and len(rows) == 21
        net.check()
    finally:
        net.close()

    # the exported labels train a classifier that tells extended from compact
    model_path = tmp_path / "model.zip"
    argv = [
        "classify", "train", str(files["cat"]), "--labels", str(csv_path),
        "--features", "area", "r50", "concentration", "--model", "logreg", "--cv", "3",
        "--out", str(model_path),
    ]  # fmt: skip
    assert main(argv) == 0
    from morphoscope.classify import load

    model = load(model_path)
    assert set(model.classes) == {"accept", "reject"}
    pred = model.predict(cat)["pred_decision"]
    expected = np.where(truth == "extended", "accept", "reject")
    assert np.mean(np.asarray(pred) == expected) > 0.95


def test_emission_page_in_browser(browser, tmp_path):
    from helpers import halo_galaxy

    from morphoscope.emission import inspection_page, search

    rng = np.random.default_rng(0)
    shape = (96, 96)
    cont = halo_galaxy(shape, 24, 24) + halo_galaxy(shape, 70, 64)
    med = (
        cont
        + halo_galaxy(shape, 24, 24, amp=0, halo=6.0)
        + halo_galaxy(shape, 70, 64, amp=0, halo=6.0)
    )
    med = med + rng.normal(0, 1, shape)
    refs = [cont + rng.normal(0, 1, shape) for _ in range(2)]
    table, cuts = search(
        med, refs, rms_medium=1.0, rms_reference=[1.0, 1.0], positions=[[24, 24], [70, 64]],
        keep_cutouts="candidates",
    )  # fmt: skip
    assert len(cuts) == 2
    path = tmp_path / "inspect.html"
    inspection_page(cuts, path)
    net = Offline(browser)
    try:
        page = net.page()
        page.goto(path.as_uri())
        assert page.locator(".card.shown").count() == 2
        assert _broken_images(page) == []
        page.keyboard.press("a")
        page.keyboard.press("r")
        with page.expect_download() as dl:
            page.click("#export")
        dl.value.save_as(tmp_path / "d.csv")
        rows = list(csv.reader(open(tmp_path / "d.csv", newline="")))
        ids = [str(c.id) for c in cuts]
        assert rows == [["id", "decision"], [ids[0], "accept"], [ids[1], "reject"]]
        net.check()
    finally:
        net.close()


def test_the_request_recorder_catches_external_requests(browser, tmp_path):
    """The network check of the tests above can fail: an external image is caught."""
    page_path = tmp_path / "leaky.html"
    page_path.write_text(
        '<!DOCTYPE html><img alt="x" src="https://example.invalid/x.png">'
        '<img alt="y" src="data:image/png;base64,iVBORw0KGgo=">'
    )
    net = Offline(browser)
    try:
        page = net.page()
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        assert net.external == ["https://example.invalid/x.png"]
        with pytest.raises(AssertionError):
            net.check()
    finally:
        net.close()
