"""Render the pictures of docs/sersicnet.md with the shipped SersicNet.

Usage::

    python docs/scripts/make_sersicnet_figure.py [OUTPUT_DIR] [--n 1500]

Writes ``sersicnet_architecture.png``, ``sersicnet_accuracy.png`` (predicted versus
true n, r_e, q on independent simulated stamps, and the coverage of the 68 % intervals
per S/N bin), ``sersicnet_resolution.png`` (scatter and bias per bin of r_e / PSF
FWHM), ``sersicnet_examples.png`` (stamps, reconstructions, residuals) and
copies the training ``loss_curve.png`` as ``sersicnet_loss.png`` (default folder:
``docs/images``).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import NullFormatter, ScalarFormatter

from morphoscope.nn import SersicNet
from morphoscope.nn.sersic import sersic_metrics
from morphoscope.nn.sersic.net import WEIGHTS
from morphoscope.simulate import simulate_stamps

SEED = 424242  # the benchmark's independent seed


def architecture(path):
    fig, ax = plt.subplots(figsize=(10, 3.4))
    ax.set_axis_off()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 3.4)

    def box(x, y, w, h, text, color):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.03", fc=color,
                                    ec="k", lw=0.8))  # fmt: skip
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=7.5)

    def arrow(x0, y0, x1, y1):
        ax.annotate("", (x1, y1), (x0, y0), arrowprops={"arrowstyle": "->", "lw": 0.9})

    box(0.05, 1.2, 1.05, 1.0, "stamp 64x64\n/ flux scale s\n+ asinh(S/N)\n= 2 x 64 x 64", "#dde")
    enc = [("conv 4x4/2\n16 x 32²", 1.35), ("conv 3x3/2\n32 x 16²", 2.25),
           ("conv 3x3\n32 x 16²", 3.15), ("conv 3x3/2\n64 x 8²", 4.05),
           ("conv 3x3\n64 x 8²", 4.95), ("conv 3x3/2\n128 x 4²", 5.85)]  # fmt: skip
    prev = 1.1
    for text, x in enc:
        arrow(prev, 1.7, x, 1.7)
        box(x, 1.35, 0.75, 0.7, text, "#cde")
        prev = x + 0.75
    arrow(prev, 1.7, 6.85, 1.7)
    box(6.85, 1.3, 0.9, 0.8, "FC 256\n+ log FWHM\n+ log noise/s\nFC 256", "#edc")
    ax.text(7.3, 0.75, "PSF FWHM, rms", ha="center", fontsize=7.5)
    arrow(7.3, 0.9, 7.3, 1.28)
    arrow(7.75, 1.9, 8.2, 2.5)
    box(8.2, 2.2, 1.75, 1.1, "8 means + 8 log-variances\nlog n, log r_e, q,\ncos 2θ, sin 2θ,"
        "\nlog flux/s, dx, dy", "#ced")  # fmt: skip
    arrow(7.75, 1.5, 8.2, 0.9)
    box(8.2, 0.1, 1.75, 1.0, "decoder: FC + 4 x\ntransposed conv 4x4/2\n→ noiseless galaxy\n"
        "64 x 64", "#ecd")  # fmt: skip
    ax.set_title("SersicNet: ~0.8 M parameters; BatchNorm + ReLU after every convolution",
                 fontsize=9)  # fmt: skip
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def accuracy(net, path, n):
    st = simulate_stamps(
        n, seed=SEED, snr_range=(8.0, 1000.0), sersic_n_range=(0.5, 6.0), r_e_range=(1.0, 12.0),
        neighbours=0.3, max_offset=1.5, class_fractions=[0.5, 0.5, 0, 0],
    )  # fmt: skip
    p = net.predict(st.images, psf_fwhm=st.psf_fwhm, rms=st.rms)
    t = st.truth
    snr = np.asarray(t["snr"])
    hi = snr > 30
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    panels = (("n", "sersic_n", True), ("r_e", "sersic_rhalf", True), ("q", "sersic_q", False))
    for ax, (key, col, log) in zip(axes[:3], panels, strict=True):
        x, y = np.asarray(t[key]), np.asarray(p[col])
        ax.scatter(x[~hi], y[~hi], s=3, c="0.7", label="S/N <= 30")
        sc = ax.scatter(x[hi], y[hi], s=3, c=np.log10(snr[hi]), cmap="viridis",
                        label="S/N > 30")  # fmt: skip
        lim = [min(x.min(), y.min()), max(x.max(), y.max())]
        ax.plot(lim, lim, "k-", lw=0.8)
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_formatter(ScalarFormatter())
                axis.set_minor_formatter(NullFormatter())
        ax.set(xlabel=f"true {key}", ylabel=f"SersicNet {key}")
        ax.legend(fontsize=7, loc="upper left", markerscale=3)
    fig.colorbar(sc, ax=axes[2], label="log10 S/N")
    m = sersic_metrics(p, {c: np.asarray(t[c]) for c in t.colnames}, snr_min=30)
    centres = [np.sqrt(b["snr"][0] * b["snr"][1]) for b in m["by_snr"]]
    for key, mk in (("n", "o"), ("r_e", "s"), ("q", "^")):
        axes[3].plot(centres, [b[key]["coverage"] for b in m["by_snr"]], mk + "-", label=key)
    axes[3].axhspan(0.60, 0.76, color="0.9")
    axes[3].axhline(0.6827, color="k", lw=0.8)
    axes[3].set(xscale="log", xlabel="S/N", ylabel="fraction within 1 sigma",
                title="68 % interval coverage", ylim=(0, 1))  # fmt: skip
    axes[3].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return st, m


def resolution(m, path):
    """Scatter and bias of n, r_e, q (S/N > 30) in bins of true r_e / PSF FWHM."""
    bins = m["by_resolution"]
    labels = [f"{b['r_e_over_fwhm'][0]:g}-{b['r_e_over_fwhm'][1]:g}\n({b['n']['count']})"
              for b in bins]  # fmt: skip
    labels[-1] = labels[-1].replace("-100", "+")
    x = np.arange(len(bins))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    for key, mk, lab in (("n", "o-", "n [dex]"), ("r_e", "s-", "r_e [dex]"), ("q", "^-", "q")):
        axes[0].plot(x, [b[key]["scatter"] for b in bins], mk, label=lab)
        axes[1].plot(x, [b[key]["bias"] for b in bins], mk, label=lab)
    axes[0].axhline(0.08, color="0.5", ls="--", lw=0.8, label="target n, r_e")
    axes[0].axhline(0.05, color="0.5", ls=":", lw=0.8, label="target q")
    axes[1].axhspan(-0.03, 0.03, color="0.9")
    axes[1].axhline(0, color="k", lw=0.6)
    for ax, title in zip(axes, ("robust scatter", "median bias"), strict=True):
        ax.set_xticks(x, labels, fontsize=8)
        ax.set(xlabel="true r_e / PSF FWHM (stamps)", title=f"{title}, S/N > 30")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def examples(net, st, path, k=5):
    sel = np.argsort(np.asarray(st.truth["snr"]))[:: max(1, len(st) // k)][:k]
    p, rec = net.predict(st.images[sel], psf_fwhm=st.psf_fwhm[sel], rms=st.rms[sel],
                         reconstruct=True)  # fmt: skip
    fig, axes = plt.subplots(3, k, figsize=(2.1 * k, 6.3))
    for j, i in enumerate(sel):
        vmax = np.percentile(st.central[i], 99.5)
        rows = ((st.images[i], "stamp"), (rec[j], "reconstruction"),
                (st.images[i] - rec[j], "stamp - reconstruction"))  # fmt: skip
        for row, (img, lab) in enumerate(rows):
            axes[row, j].imshow(img, origin="lower", cmap="gray_r", vmin=-0.1 * vmax, vmax=vmax)
            axes[row, j].set_xticks([])
            axes[row, j].set_yticks([])
            if j == 0:
                axes[row, j].set_ylabel(lab, fontsize=8)
        t = st.truth[i]
        axes[0, j].set_title(
            f"S/N {t['snr']:.0f}\ntrue n {t['n']:.2f} r_e {t['r_e']:.1f} q {t['q']:.2f}\n"
            f"pred n {p['sersic_n'][j]:.2f} r_e {p['sersic_rhalf'][j]:.1f} "
            f"q {p['sersic_q'][j]:.2f}", fontsize=7)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default=str(Path(__file__).parents[1] / "images"))
    ap.add_argument("--n", type=int, default=1500)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    net = SersicNet.pretrained()
    architecture(out / "sersicnet_architecture.png")
    st, m = accuracy(net, out / "sersicnet_accuracy.png", args.n)
    resolution(m, out / "sersicnet_resolution.png")
    examples(net, st, out / "sersicnet_examples.png")
    loss = WEIGHTS.with_name("loss_curve.png")
    if loss.exists():
        shutil.copyfile(loss, out / "sersicnet_loss.png")
    print({k: {kk: round(vv, 4) for kk, vv in v.items()} for k, v in m["summary"].items()})


if __name__ == "__main__":
    main()
