"""Screenshots of report.html and the inspection page, taken in headless Chromium.

Usage::

    python docs/scripts/make_browser_screenshots.py [OUTPUT_DIR] [--chromium PATH]

Runs ``morphoscope demo`` on a small simulated field (512 x 512, 150 sources) in a
temporary folder, builds its inspection page with ``morphoscope inspect`` (the three
bands, the segmentation map), decides a few sources by keyboard and writes
``report_page.png`` (the gallery of the report) and ``inspect_page.png`` (default
folder: ``docs/images``). Needs the ``playwright`` package and a Chromium
(``/usr/bin/chromium`` by default); no browser is downloaded.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from morphoscope.cli import main


def screenshots(out_dir: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "demo"
        assert main(["demo", "--out", str(run), "--size", "512", "--n-sources", "150",
                     "--quiet"]) == 0  # fmt: skip
        bands = sorted((run / "data").glob("*_sci.fits"))
        argv = ["inspect", str(run / "catalog.ecsv"), "--image", *map(str, bands),
                "--segmap", str(run / "segmap.fits"), "--out", str(run), "--sort", "flux",
                "--page-size", "40", "--title", "morphoscope demo field"]  # fmt: skip
        assert main(argv) == 0
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto((run / "report.html").as_uri())
            page.wait_for_load_state("load")
            page.evaluate("document.getElementById('gallery').scrollIntoView()")
            page.wait_for_timeout(300)
            page.screenshot(path=str(out_dir / "report_page.png"))
            page.goto((run / "inspect.html").as_uri())
            page.wait_for_selector(".card.shown")
            page.select_option("#sort", "flux")
            page.click("#dir")  # brightest first
            page.keyboard.press("Home")
            for key in "aaraua":
                page.keyboard.press(key)
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(300)
            page.screenshot(path=str(out_dir / "inspect_page.png"))
            browser.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(Path(__file__).parents[1] / "images"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    screenshots(out, args.chromium)
    print(f"written: {out / 'report_page.png'}, {out / 'inspect_page.png'}")
