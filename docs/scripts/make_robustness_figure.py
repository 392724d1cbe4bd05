"""Outcome grid of ``benchmarks/bench_robustness.py``: bad inputs x tools.

Usage::

    python docs/scripts/make_robustness_figure.py [OUTPUT.png]

Runs every bad input of the benchmark through morphoscope, photutils, SEP and statmorph
(about 30 s) and draws one coloured cell per run (default output:
``docs/images/robustness_outcomes.png``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

COLOURS = {
    "ok": "#4daf4a",
    "flagged": "#a6d96a",
    "error": "#80b1d3",
    "wrong (warned)": "#fdae61",
    "silently wrong": "#d7191c",
    "crash": "#7b3294",
    "hang": "#000000",
}


def main(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from bench_robustness import CASES, TOOLS, run_all
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    results = run_all()
    names = [c[0] for c in CASES]
    tools = list(TOOLS)
    keys = list(COLOURS)
    grid = np.array([[keys.index(results[n, t][0]) for t in tools] for n in names])
    fig, ax = plt.subplots(figsize=(6.4, 9.0), dpi=100)
    ax.imshow(grid, cmap=ListedColormap(list(COLOURS.values())), vmin=0, vmax=len(keys) - 1,
              aspect="auto")  # fmt: skip
    ax.set_xticks(range(len(tools)), tools)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for j in range(len(tools)):
            ax.text(j, i, results[names[i], tools[j]][0], ha="center", va="center", fontsize=6,
                    color="white" if grid[i, j] in (4, 5, 6) else "black")  # fmt: skip
    ax.legend(handles=[Patch(color=c, label=k) for k, c in COLOURS.items()],
              loc="upper center", bbox_to_anchor=(0.4, -0.01), ncol=4, fontsize=7,
              frameon=False)  # fmt: skip
    ax.set_title("the same bad inputs, measured on the same segmentation map", fontsize=9,
                 pad=24)  # fmt: skip
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs/images/robustness_outcomes.png")
