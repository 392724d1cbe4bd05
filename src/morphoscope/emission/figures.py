"""Three-panel diagnostic figure of an emission candidate (matplotlib Figure API, Agg)."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .core import SourceCutouts

__all__ = ["candidate_figure", "figure_png"]

_REF_COLOURS = ("#ff4fd8", "#4fa8ff", "#ffb000", "#ffffff")


def _stretch(img: np.ndarray, scale: float) -> np.ndarray:
    """asinh stretch to [0, 1] with ``scale`` the flux that maps to ~0.9."""
    if not (np.isfinite(scale) and scale > 0):
        scale = 1.0
    soft = 0.05 * scale
    out = np.arcsinh(np.clip(img, 0.0, None) / soft) / np.arcsinh(1.0 / 0.05)
    return np.clip(out, 0.0, 1.0)


def _scale(img: np.ndarray, member: np.ndarray) -> float:
    vals = img[member] if member.any() else img.ravel()
    vals = vals[np.isfinite(vals)]
    return float(np.percentile(vals, 99.5)) if vals.size else 1.0


def candidate_figure(
    cutouts: SourceCutouts,
    *,
    medium_name: str = "medium",
    reference_names: list[str] | None = None,
    figsize: tuple[float, float] = (10.5, 3.8),
    zoom: bool = True,
) -> Figure:
    """The classic three-panel look of a candidate.

    1. RGB composite (red: last reference band, green: medium band, blue: first
       reference band), each band scaled to its own 99.5th percentile in its cluster,
       so light that is only in the medium band shows green;
    2. the medium band with the outline of its main cluster (green) and of each
       reference band's main cluster (magenta, blue, ...);
    3. cluster membership (green: medium only, magenta: reference only, white: both)
       with ``R``, ``q``, ``S_excess``, ``d_H`` and the reason written on it.

    Parameters
    ----------
    cutouts : SourceCutouts
        From :func:`~morphoscope.emission.search` with ``keep_cutouts``.
    medium_name, reference_names : str, list of str
        Band names for the labels.
    figsize : tuple
        Figure size in inches.
    zoom : bool
        Show only the clusters' bounding box with a margin (at least 24 px wide),
        instead of the whole cutout.

    Returns
    -------
    matplotlib.figure.Figure
        Attached to an Agg canvas (no pyplot state): ``fig.savefig("x.png")`` works.

    Examples
    --------
    >>> import numpy as np
    >>> from morphoscope.emission import search
    >>> y, x = np.mgrid[:48, :48]
    >>> core = 40 * np.exp(-((x - 24) ** 2 + (y - 24) ** 2) / 8)
    >>> halo = 3 * np.exp(-np.hypot(x - 24, y - 24) / 5)
    >>> t, cuts = search(core + halo, core, rms_medium=1.0, rms_reference=1.0,
    ...                  positions=[[24, 24]], keep_cutouts="all")
    >>> fig = candidate_figure(cuts[0])
    >>> len(fig.axes)
    3
    """
    c = cutouts
    refs = c.references
    names = reference_names or [f"reference {i + 1}" for i in range(len(refs))]
    row = c.row or {}
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    member_any = c.medium_cluster | c.reference_cluster
    red = _stretch(refs[-1], _scale(refs[-1], member_any))
    green = _stretch(c.medium, _scale(c.medium, member_any))
    blue = _stretch(refs[0], _scale(refs[0], member_any))
    rgb = np.dstack([red, green, blue])
    extent = None
    axes[0].imshow(rgb, origin="lower", interpolation="nearest", extent=extent)
    axes[0].set_title(f"RGB: {names[-1]} / {medium_name} / {names[0]}", fontsize=9)

    med_scale = _scale(c.medium, member_any)
    axes[1].imshow(
        _stretch(c.medium, med_scale), origin="lower", cmap="gray", interpolation="nearest"
    )
    if c.medium_cluster.any():
        axes[1].contour(
            c.medium_cluster.astype(float), levels=[0.5], colors=["#39ff14"], linewidths=1.2
        )
    for i, m in enumerate(c.reference_clusters):
        if m.any():
            axes[1].contour(
                m.astype(float),
                levels=[0.5],
                colors=[_REF_COLOURS[i % len(_REF_COLOURS)]],
                linewidths=1.0,
                linestyles="--",
            )
    axes[1].set_title(f"{medium_name} + cluster outlines", fontsize=9)

    ny, nx = c.medium.shape
    comp = np.zeros((ny, nx, 3))
    only_m = c.medium_cluster & ~c.reference_cluster
    only_r = c.reference_cluster & ~c.medium_cluster
    both = c.medium_cluster & c.reference_cluster
    comp[only_m] = (0.22, 1.0, 0.08)
    comp[only_r] = (1.0, 0.31, 0.85)
    comp[both] = (1.0, 1.0, 1.0)
    axes[2].imshow(comp, origin="lower", interpolation="nearest")
    axes[2].set_title("clusters: medium only / reference only / both", fontsize=8)

    def fmt(key: str, digits: int = 2) -> str:
        v = row.get(key, float("nan"))
        return "nan" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"

    text = (
        f"R = {fmt('R_medium', 1)} / {fmt('R_reference', 1)} px\n"
        f"q = {fmt('q_medium')} / {fmt('q_reference')}\n"
        f"S_excess = {fmt('S_excess', 0)} px  (n_ref {row.get('n_pix_reference', 0)})\n"
        f"d_H = {fmt('d_H', 1)} px\n"
        f"reason: {row.get('reason', '') or '-'}"
    )
    axes[2].text(
        0.02,
        0.98,
        text,
        transform=axes[2].transAxes,
        va="top",
        ha="left",
        fontsize=7.5,
        color="w",
        family="monospace",
        bbox={"facecolor": "black", "alpha": 0.6, "edgecolor": "none"},
    )
    limits = None
    if zoom and member_any.any():
        ys, xs = np.nonzero(member_any)
        half = max(12.0, 0.65 * max(np.ptp(xs), np.ptp(ys)) + 4.0)
        cx, cy = 0.5 * (xs.min() + xs.max()), 0.5 * (ys.min() + ys.max())
        limits = ((cx - half, cx + half), (cy - half, cy + half))
    for ax in axes:
        ax.plot([c.xc], [c.yc], marker="+", color="#ffd400", ms=8, mew=1.2)
        if limits is not None:
            ax.set_xlim(*limits[0])
            ax.set_ylim(*limits[1])
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"source {c.id}", fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.86, wspace=0.04)
    return fig


def figure_png(fig: Figure, dpi: int = 90) -> bytes:
    """PNG bytes of a figure (for embedding)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
