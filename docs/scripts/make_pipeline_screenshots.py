"""Screenshots of the tier sections of report.html, taken in headless Chromium.

Usage::

    python docs/scripts/make_pipeline_screenshots.py [OUTPUT_DIR] [--chromium PATH]

Runs ``morphoscope demo`` on a 512 x 512 field with 120 sources in a temporary folder
and writes ``pipeline_accuracy.png`` (accuracy per tier and the stage table),
``pipeline_classes.png`` (the field tinted by PixelClassifier class),
``pipeline_sersicnet.png`` (SersicNet cutouts) and ``pipeline_emission.png`` (emission
candidates) (default folder: ``docs/images``). Needs the ``playwright`` package and a
Chromium (``/usr/bin/chromium`` by default); no browser is downloaded.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image

from morphoscope.cli import main

SECTIONS = {"accuracy": "pipeline_accuracy.png", "classes": "pipeline_classes.png",
            "sersicnet": "pipeline_sersicnet.png", "emission": "pipeline_emission.png"}


def screenshots(out_dir: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "demo"
        assert main(["demo", "--out", str(run), "--size", "512", "--n-sources", "120",
                     "--quiet"]) == 0  # fmt: skip
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1200, "height": 760})
            page.goto((run / "report.html").as_uri())
            page.wait_for_load_state("load")
            for sid, name in SECTIONS.items():
                page.evaluate(f"document.getElementById('{sid}').scrollIntoView()")
                page.wait_for_timeout(300)
                page.screenshot(path=str(out_dir / name))
            browser.close()
    for name in SECTIONS.values():  # 256-colour palette: a quarter of the size
        with Image.open(out_dir / name) as img:
            small = img.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
        small.save(out_dir / name, optimize=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(Path(__file__).parents[1] / "images"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    screenshots(Path(args.out), args.chromium)
