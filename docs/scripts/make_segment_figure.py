"""Make docs/images/segment_methods.png: image, truth, saddle and zhu segmentations.

Usage: python docs/scripts/make_segment_figure.py [--seed 42]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from skimage.segmentation import find_boundaries

from morphoscope.segment import segment_image, segment_zhu
from morphoscope.simulate import simulate_scene


def _labels_rgb(seg: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    colours = rng.uniform(0.25, 1.0, (int(seg.max()) + 1, 3))
    colours[0] = 0.0
    return colours[seg]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default=str(Path(__file__).parents[1] / "images"))
    args = parser.parse_args()
    scene = simulate_scene(shape=(1024, 1024), n_sources=350, seed=args.seed)
    band = scene.detection_band
    res = segment_image(scene.images[band], rms=scene.rms[band], psf=scene.psfs[band])
    zhu = segment_zhu(res.image, res.rms, bad=res.bad)
    # The 256x256 window with the most truth sources.
    counts = [
        ((scene.truth["x"] // 256 == i) & (scene.truth["y"] // 256 == j)).sum()
        for j in range(4)
        for i in range(4)
    ]
    j, i = divmod(int(np.argmax(counts)), 4)
    win = np.s_[j * 256 : (j + 1) * 256, i * 256 : (i + 1) * 256]
    img = res.image[win]
    lo, hi = np.percentile(img, [5, 99.7])
    stretched = np.arcsinh((img - lo) / (0.05 * (hi - lo))) / np.arcsinh(1 / 0.05)
    fig = Figure(figsize=(16, 4.4), layout="constrained")
    axes = fig.subplots(1, 4)
    panels = [
        ("image (F200W)", None),
        ("truth", scene.segmap[win]),
        (f"saddle (default): {int(np.unique(res.segmap[win]).size - 1)} segments", res.segmap[win]),
        (f"zhu recipe: {int(np.unique(zhu[win]).size - 1)} segments", zhu[win]),
    ]
    for ax, (title, seg) in zip(axes, panels, strict=True):
        if seg is None:
            ax.imshow(np.clip(stretched, 0, 1), cmap="gray", origin="lower")
        else:
            rgb = 0.55 * _labels_rgb(seg) + 0.45 * np.clip(stretched, 0, 1)[..., None]
            rgb[find_boundaries(seg, mode="inner")] = 1.0
            ax.imshow(np.clip(rgb, 0, 1), origin="lower")
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    out = Path(args.out) / "segment_methods.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    print(out)


if __name__ == "__main__":
    main()
