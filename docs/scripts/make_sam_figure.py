"""Make docs/images/sam_inputs.png: what Segment Anything is given (no weights needed).

The asinh and zscale stretches of a simulated field, and the tiles of the published weights
(1024-pixel input) at ``scale=2`` with the point prompts at the detected peaks, coloured by
the tile each is run in.

Usage: python docs/scripts/make_sam_figure.py [--seed 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from morphoscope.segment import segment_image
from morphoscope.segment.sam import assign_points, detection_peaks, plan_tiles, stretch_to_rgb
from morphoscope.simulate import simulate_scene


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parents[1] / "images"))
    args = parser.parse_args()
    scene = simulate_scene(shape=(1024, 1024), n_sources=300, seed=args.seed)
    band = scene.detection_band
    res = segment_image(scene.images[band], rms=scene.rms[band], psf=scene.psfs[band])
    asinh = stretch_to_rgb(res.image, bad=res.bad)
    zscale = stretch_to_rgb(res.image, stretch="zscale", bad=res.bad)
    xy, _ = detection_peaks(res.image, res.rms, bad=res.bad, psf=scene.psfs[band])
    size, scale, overlap = 1024, 2.0, 128
    tiles = plan_tiles(res.image.shape, int(size / scale), overlap)
    which = assign_points(tiles, res.image.shape, xy[:, 0], xy[:, 1])

    fig = Figure(figsize=(13.5, 4.8), dpi=80)
    axes = fig.subplots(1, 3)
    axes[0].imshow(asinh, origin="lower")
    axes[0].set_title('stretch="asinh" (default)')
    axes[1].imshow(zscale, origin="lower")
    axes[1].set_title('stretch="zscale"')
    axes[2].imshow(asinh, origin="lower")
    colours = [f"C{i}" for i in range(10)]
    for i, t in enumerate(tiles):
        c = colours[i % len(colours)]
        inset = 3 * i
        axes[2].add_patch(
            Rectangle(
                (t.x0 - 0.5 + inset, t.y0 - 0.5 + inset),
                t.x1 - t.x0 - 2 * inset,
                t.y1 - t.y0 - 2 * inset,
                fill=False,
                edgecolor=c,
                lw=1.5,
            )
        )
        sel = which == i
        axes[2].plot(xy[sel, 0], xy[sel, 1], "+", color=c, ms=5, mew=1.2)
    axes[2].set_title(f"{len(tiles)} tiles (scale=2, overlap=128), {len(xy)} prompts")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    out = Path(args.out) / "sam_inputs.png"
    fig.savefig(out)
    print(out)


if __name__ == "__main__":
    main()
