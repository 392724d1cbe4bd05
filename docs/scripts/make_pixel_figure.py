"""Make the figure of docs/pixel.md: RGB image beside the PixelClassifier's class map.

``pixel_classes.png``: a simulated field (F356W / F335M / F200W), the most probable class of
every pixel from the shipped weights (colour = class, brightness = 0.3 + 0.7 x its
probability), and the truth class map.

Usage::

    python docs/scripts/make_pixel_figure.py [output_folder]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from astropy.visualization import make_lupton_rgb
from matplotlib.colors import to_rgb
from matplotlib.patches import Patch

from morphoscope.nn import PixelClassifier
from morphoscope.nn.pixel import CLASS_NAMES
from morphoscope.simulate import simulate_scene

COLOURS = ["black", "#d62728", "#1f77b4", "#2ca02c", "#ffbf00"]


def class_rgb(labels: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
    """Colour-coded class map; the colour is dimmed by the class probability if given."""
    table = np.array([to_rgb(c) for c in COLOURS])
    rgb = table[labels]
    if confidence is not None:
        rgb = rgb * (0.3 + 0.7 * np.clip(confidence, 0.0, 1.0))[..., None]
    return rgb


def main(out: Path) -> None:
    scene = simulate_scene((384, 384), n_sources=60, seed=7, blend_fraction=0.2)
    images = [scene.images[b] for b in scene.band_names]
    clf = PixelClassifier.pretrained()
    proba = clf.predict_proba(images)
    labels = np.argmax(proba, axis=0)
    cat = clf.classify_segments(images, scene.segmap, proba=proba)
    r, g, b = (scene.images[name] for name in ("F356W", "F335M", "F200W"))
    rgb = make_lupton_rgb(r, g, b, minimum=-1.0, stretch=6.0, Q=8)

    fig, axes = plt.subplots(1, 3, figsize=(14, 5), constrained_layout=True)
    axes[0].imshow(rgb, origin="lower")
    axes[0].set_title("F356W / F335M / F200W")
    axes[1].imshow(class_rgb(labels, proba.max(axis=0)), origin="lower", interpolation="nearest")
    axes[1].set_title("PixelClassifier: most probable class")
    axes[2].imshow(class_rgb(scene.classmap), origin="lower", interpolation="nearest")
    axes[2].set_title("truth class map")
    # per-object classes (truth segments, S/N > 30): a cross where the class is wrong
    snr = np.asarray(scene.truth["snr_F200W"])
    for row in cat:
        t = scene.truth[int(row["id"]) - 1]
        if snr[int(row["id"]) - 1] > 30 and row["class_id"] != t["class_id"]:
            axes[1].plot(t["x"], t["y"], "x", color="white", ms=7, mew=1.5)
    pairs = zip(COLOURS[1:], CLASS_NAMES[1:], strict=True)
    handles = [Patch(color=c, label=n) for c, n in pairs]
    axes[2].legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":
    folder = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "images"
    )
    main(folder / "pixel_classes.png")
