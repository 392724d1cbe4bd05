"""Make the figures of docs/simulate.md.

``simulate_scene.png``: a simulated scene, its line emission, truth segmentation and classes;
``simulate_stamps.png``: training stamps with their truth segmentation.

Usage::

    python docs/scripts/make_simulate_figure.py [output_folder]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from astropy.visualization import make_lupton_rgb
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch
from scipy.ndimage import gaussian_filter

from morphoscope.simulate import CLASS_NAMES, simulate_scene, simulate_stamps


def main(out: Path) -> None:
    scene = simulate_scene(
        (384, 384), n_sources=60, seed=7, blend_fraction=0.2, emission_fraction=0.3
    )
    r, g, b = (scene.images[name] for name in ("F356W", "F335M", "F200W"))
    rgb = make_lupton_rgb(r, g, b, minimum=-1.0, stretch=6.0, Q=8)

    rng = np.random.default_rng(0)
    colours = rng.uniform(0.25, 1.0, (scene.segmap.max() + 1, 3))
    colours[0] = 0
    seg_rgb = colours[scene.segmap]

    class_colours = ["black", "#d62728", "#1f77b4", "#2ca02c", "#ffbf00"]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.6), constrained_layout=True)
    axes[0].imshow(rgb, origin="lower")
    axes[0].set_title("F356W / F335M / F200W")
    line = scene.truth[scene.truth["has_extended_emission"]]
    diff = gaussian_filter(scene.images["F335M"] - scene.images["F356W"], 1.5)
    axes[1].imshow(diff, origin="lower", cmap="gray", vmin=-0.5, vmax=1.5)
    axes[1].scatter(line["x"], line["y"], s=80, facecolors="none", edgecolors="magenta")
    axes[1].set_title("F335M - F356W, smoothed (circles: line emitters)")
    axes[2].imshow(seg_rgb, origin="lower")
    axes[2].set_title(f"truth segmap ({int((scene.truth['segment_area'] > 0).sum())} sources)")
    axes[3].imshow(
        scene.classmap, origin="lower", cmap=ListedColormap(class_colours), vmin=-0.5, vmax=4.5,
        interpolation="nearest",
    )  # fmt: skip
    axes[3].set_title("truth class map")
    pairs = zip(class_colours[1:], CLASS_NAMES[1:], strict=True)
    handles = [Patch(color=c, label=n) for c, n in pairs]
    axes[3].legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    print(f"wrote {out}")


def stamps_figure(out: Path) -> None:
    st = simulate_stamps(8, size=64, seed=4, neighbours=0.4, snr_range=(20, 300))
    fig, axes = plt.subplots(2, 8, figsize=(16, 4.4), constrained_layout=True)
    for i, row in enumerate(st.truth):
        img = st.images[i] / st.rms[i]
        axes[0, i].imshow(np.arcsinh(img / 3), origin="lower", cmap="gray")
        label = f"S/N {row['snr']:.0f}, r_e {row['r_e']:.1f}, PSF {row['psf_fwhm']:.1f}"
        axes[0, i].set_title(f"{row['class']}\n{label}", fontsize=8)
        axes[1, i].imshow(st.segmaps[i], origin="lower", cmap="viridis", vmin=0, vmax=2)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1, 0].set_ylabel("truth segmap")
    fig.savefig(out, dpi=80)
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":
    folder = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "images"
    )
    main(folder / "simulate_scene.png")
    stamps_figure(folder / "simulate_stamps.png")
