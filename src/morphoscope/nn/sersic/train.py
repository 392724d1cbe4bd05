"""Training of SersicNet on simulated stamps, with calibration, metrics and a model card."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ...exceptions import InputError, ParameterError
from .data import load_split
from .metrics import residual_stats, sersic_metrics
from .model import IMAGE_GAIN, TARGETS, normalise_stamps
from .net import SersicNet, _jsonable

__all__ = ["DEFAULT_CONFIG", "load_config", "train_sersicnet"]

#: The configuration that produced the shipped weights.
DEFAULT_CONFIG = Path(__file__).with_name("config.json")

_REQUIRED = {
    "seed": int, "size": int, "n_train": int, "n_val": int, "n_test": int, "epochs": int,
    "batch_size": int, "lr": float, "weight_decay": float, "recon_weight": float,
    "n_weight": float, "beta": float,
    "width": int, "latent": int, "threads": int, "snr_range": list, "psf_fwhm_range": list,
    "r_e_range": list, "sersic_n_range": list, "neighbours": float, "max_offset": float,
}  # fmt: skip


def load_config(path: str | Path | None = None, **overrides) -> dict:
    """Read a training configuration (YAML or JSON) on top of the shipped defaults.

    Examples
    --------
    >>> cfg = load_config(n_train=64, epochs=1)
    >>> cfg["n_train"], cfg["size"]
    (64, 64)
    """
    import yaml

    config = json.loads(DEFAULT_CONFIG.read_text())
    config.pop("description", None)
    if path is not None:
        p = Path(path)
        try:
            user = yaml.safe_load(p.read_text())
        except OSError as exc:
            raise InputError(str(p), f"cannot read the configuration ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise InputError(str(p), f"not valid YAML/JSON ({exc})") from None
        if not isinstance(user, dict):
            raise InputError(str(p), "the configuration must be a mapping of keys to values")
        unknown = sorted(set(user) - set(config) - {"description"})
        if unknown:
            raise InputError(str(p), f"unknown keys {unknown}; known: {sorted(config)}")
        config.update({k: v for k, v in user.items() if k != "description"})
    config.update(overrides)
    for key, typ in _REQUIRED.items():
        val = config.get(key)
        ok = isinstance(val, typ) or (typ is float and isinstance(val, int))
        if not ok or isinstance(val, bool):
            raise ParameterError(key, val, f"a {typ.__name__}")
    if config["size"] % 16 or config["size"] < 32:
        raise ParameterError("size", config["size"], "a multiple of 16, >= 32")
    for key in ("n_train", "n_val", "n_test", "epochs", "batch_size"):
        if config[key] < 1:
            raise ParameterError(key, config[key], "a positive integer")
    if not config["n_weight"] > 0:
        raise ParameterError("n_weight", config["n_weight"], "a positive number")
    if not 0 <= config["beta"] <= 1:
        raise ParameterError("beta", config["beta"], "a number in [0, 1]")
    return config


_CARD_DATA_KEYS = (
    "n_train", "n_val", "n_test", "size", "snr_range", "psf_fwhm_range", "r_e_range",
    "sersic_n_range", "neighbours", "max_offset", "seed",
)  # fmt: skip


def _targets(data: dict, scale: np.ndarray) -> np.ndarray:
    pa2 = 2 * data["pa"].astype(np.float64)
    return np.stack(
        [
            np.log10(data["n"]), np.log10(data["r_e"]), data["q"], np.cos(pa2), np.sin(pa2),
            np.log10(data["flux"] / scale), data["x_offset"], data["y_offset"],
        ],
        axis=1,
    ).astype(np.float32)  # fmt: skip


def _prepare(data: dict) -> tuple[torch.Tensor, ...]:
    x, extra, scale = normalise_stamps(data["images"], data["rms"], data["psf_fwhm"])
    rec = (data["central"] * (IMAGE_GAIN / scale)[:, None, None]).astype(np.float32)
    y = _targets(data, scale)
    return torch.from_numpy(x), torch.from_numpy(extra), torch.from_numpy(y), torch.from_numpy(rec)


def _augment(x, y, rec, gen: torch.Generator):
    """One random dihedral symmetry of the square for a whole batch (targets follow)."""
    fx, fy, tr = (bool(v) for v in torch.randint(0, 2, (3,), generator=gen))
    y = y.clone()
    i = {t: k for k, t in enumerate(TARGETS)}
    if fx:
        x, rec = x.flip(-1), rec.flip(-1)
        y[:, i["sin2pa"]] *= -1
        y[:, i["dx"]] *= -1
    if fy:
        x, rec = x.flip(-2), rec.flip(-2)
        y[:, i["sin2pa"]] *= -1
        y[:, i["dy"]] *= -1
    if tr:
        x, rec = x.transpose(-1, -2), rec.transpose(-1, -2)
        y[:, i["cos2pa"]] *= -1
        y[:, [i["dx"], i["dy"]]] = y[:, [i["dy"], i["dx"]]]
    return x.contiguous(memory_format=torch.channels_last), y, rec


def _loss(net, mu, logvar, rec, y, rec_t, recon_weight: float, weights=None, beta=0.5):
    """beta-NLL on standardised targets (per-target ``weights``) + weighted reconstruction MSE.

    Each target's Gaussian NLL is multiplied by its predicted variance to the power
    ``beta`` (not differentiated; Seitzer et al. 2022), which keeps hard targets from
    being given up for a large sigma, and by its weight.
    """
    ys = (y - net.target_mean) / net.target_std
    var = logvar.exp()
    nll = 0.5 * (logvar + (ys - mu) ** 2 / var)
    if beta:
        nll = nll * var.detach() ** beta
    if weights is not None:
        nll = nll * weights
    nll = nll.sum(dim=1).mean()
    mse = ((rec - rec_t) ** 2).mean() if rec is not None else torch.zeros(())
    return nll + recon_weight * mse, nll, mse


def _val_scatter(net, mu, y, sel) -> tuple[float, float, float]:
    """Robust scatter (1.4826 MAD) of log n, log r_e and q on the selected validation stamps."""
    if not bool(sel.any()):
        return (float("nan"),) * 3
    pred = mu * net.target_std + net.target_mean
    r = (pred - y)[sel][:, :3].numpy().astype(np.float64)
    sc = [residual_stats(c)["scatter"] for c in r.T]
    return sc[0], sc[1], sc[2]


def _evaluate(net, x, extra, y, rec_t, recon_weight, weights=None, beta=0.5, batch=1024):
    net.eval()
    tot = nll_s = mse_s = 0.0
    mus, lvs = [], []
    with torch.inference_mode():
        for s in range(0, len(x), batch):
            sl = slice(s, s + batch)
            xb = x[sl].contiguous(memory_format=torch.channels_last)
            mu, lv, rec = net(xb, extra[sl])
            loss, nll, mse = _loss(net, mu, lv, rec, y[sl], rec_t[sl], recon_weight, weights, beta)
            w = xb.shape[0]
            tot += float(loss) * w
            nll_s += float(nll) * w
            mse_s += float(mse) * w
            mus.append(mu)
            lvs.append(lv)
    n = len(x)
    return tot / n, nll_s / n, mse_s / n, torch.cat(mus), torch.cat(lvs)


def train_sersicnet(
    config: dict,
    out_dir: str | Path,
    *,
    log: Callable[[str], None] = print,
) -> dict:
    """Train SersicNet from a configuration and write weights, card and loss curve.

    Steps: simulate (or read from the cache) the ``train``, ``val`` and ``test`` splits;
    train with AdamW and a one-cycle learning rate on a Gaussian negative log-likelihood
    (beta-NLL) of the 8 standardised targets plus the reconstruction error, with random
    flips and transposes; scale each predicted sigma so that 68.27 % of the validation
    residuals fall within it; measure accuracy, coverage and throughput on the
    independent ``test`` split.

    Parameters
    ----------
    config : dict
        As returned by :func:`load_config`.
    out_dir : str or Path
        Folder for ``sersicnet.pt``, ``sersicnet.json``, ``model_card.json``,
        ``model_card.md`` and ``loss_curve.png`` (created if needed).
    log : callable
        Receives one line of progress per step and epoch.

    Returns
    -------
    card : dict
        The model card (also written as ``model_card.json``).

    Notes
    -----
    Time is dominated by the epochs: about 1 ms per stamp and epoch with one torch
    thread and the default architecture (more on a loaded machine), plus about 1.5 ms
    per stamp to simulate once (cached).
    Memory: about 50 kB per training stamp.
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(config["threads"]))
    torch.manual_seed(int(config["seed"]))
    gen = torch.Generator().manual_seed(int(config["seed"]))

    t0 = time.perf_counter()
    splits = {}
    for split in ("train", "val", "test"):
        n = int(config[f"n_{split}"])

        def prog(done, total, split=split):
            log(f"simulate {split}: {done}/{total}")

        splits[split] = load_split(config, split, n, progress=prog)
    t_data = time.perf_counter() - t0
    log(f"data ready in {t_data:.0f} s")

    xtr, etr, ytr, rtr = _prepare(splits["train"])
    xva, eva, yva, rva = _prepare(splits["val"])
    va_bright = torch.from_numpy(np.asarray(splits["val"]["snr"]) > 30.0)
    test = splits["test"]
    del splits["train"]

    net = SersicNet(int(config["size"]), int(config["width"]), int(config["latent"]))
    net.target_mean.copy_(ytr.mean(0))
    net.target_std.copy_(ytr.std(0).clamp_min(1e-3))
    net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    bs = int(config["batch_size"])
    steps = (len(xtr) + bs - 1) // bs
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config["lr"], total_steps=steps * int(config["epochs"]), pct_start=0.2
    )
    keys = ("epoch", "samples_seen", "train_loss", "train_nll", "train_mse", "val_loss",
            "val_nll", "val_mse", "val_n_scatter", "val_re_scatter", "val_q_scatter",
            "seconds")  # fmt: skip
    history: dict[str, list[float]] = {k: [] for k in keys}
    t_train = time.perf_counter()
    rw = float(config["recon_weight"])
    beta = float(config["beta"])
    weights = torch.ones(len(TARGETS))
    weights[TARGETS.index("log_n")] = float(config["n_weight"])
    for epoch in range(1, int(config["epochs"]) + 1):
        net.train()
        perm = torch.randperm(len(xtr), generator=gen)
        sums = np.zeros(3)
        for b in range(steps):
            idx = perm[b * bs : (b + 1) * bs]
            xb, yb, rb = _augment(xtr[idx], ytr[idx], rtr[idx], gen)
            mu, lv, rec = net(xb, etr[idx])
            loss, nll, mse = _loss(net, mu, lv, rec, yb, rb, rw, weights, beta)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            sched.step()
            sums += np.array([loss.item(), nll.item(), mse.item()]) * len(idx)
        sums /= len(xtr)
        vl, vn, vm, vmu, _ = _evaluate(net, xva, eva, yva, rva, rw, weights, beta)
        vsc = _val_scatter(net, vmu, yva, va_bright)
        el = time.perf_counter() - t_train
        row = (epoch, epoch * len(xtr), *sums, vl, vn, vm, *vsc, el)
        for k, v in zip(history, row, strict=True):
            history[k].append(float(v))
        log(
            f"epoch {epoch}/{config['epochs']}: train {sums[0]:.4f} (nll {sums[1]:.4f}, "
            f"mse {sums[2]:.4f})  val {vl:.4f} (nll {vn:.4f}, mse {vm:.4f}; S/N > 30 "
            f"scatter n {vsc[0]:.3f} dex, r_e {vsc[1]:.3f} dex, q {vsc[2]:.3f})  {el:.0f} s"
        )
    t_train = time.perf_counter() - t_train

    # Calibrate sigmas on the validation split.
    _, _, _, mu, lv = _evaluate(net, xva, eva, yva, rva, rw, weights, beta)
    ys = (yva - net.target_mean) / net.target_std
    z = ((ys - mu) / (0.5 * lv).exp()).abs().numpy()
    scale = np.quantile(z, 0.6827, axis=0)
    net.sigma_scale.copy_(torch.from_numpy(scale.astype(np.float32)))
    factors = ", ".join(f"{t} {s:.3f}" for t, s in zip(TARGETS, scale, strict=True))
    log(f"sigma calibration factors: {factors}")
    net = net.to(memory_format=torch.contiguous_format)
    net.eval()

    # Independent test split: accuracy, coverage and throughput.
    pred = net.predict(test["images"], psf_fwhm=test["psf_fwhm"], rms=test["rms"])
    metrics = sersic_metrics(pred, test, snr_min=30.0)
    metrics_all = sersic_metrics(pred, test, snr_min=0.0)
    rate = _throughput(net, test)
    log(f"test (S/N > 30): {json.dumps(metrics['summary'])}")
    log(f"throughput: {rate:.0f} stamps/s")

    info = {
        "size": net.size, "width": net.width, "latent": net.latent, "targets": list(TARGETS),
        "target_mean": net.target_mean.tolist(), "target_std": net.target_std.tolist(),
        "sigma_scale": scale.tolist(), "config": config,
    }  # fmt: skip
    net.info = info
    net.save(out / "sersicnet.pt")
    wall = time.perf_counter() - t_start
    card = {
        "model": "SersicNet",
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "weights_bytes": (out / "sersicnet.pt").stat().st_size,
        "data": {
            "simulator": "morphoscope.simulate.simulate_stamps (GalSim), single Sersic",
            **{k: config[k] for k in _CARD_DATA_KEYS},
        },
        "training": {
            "epochs": config["epochs"],
            "batch_size": bs,
            "lr": config["lr"],
            "threads": config["threads"],
            "data_seconds": round(t_data, 1),
            "train_seconds": round(t_train, 1),
            "wall_seconds": round(wall, 1),
            "n_weight": config["n_weight"],
            "beta": config["beta"],
            "samples_seen": int(len(xtr) * int(config["epochs"])),
            "machine": _machine(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "sigma_scale": dict(zip(TARGETS, (round(float(s), 4) for s in scale), strict=True)),
        "metrics_snr_gt_30": metrics,
        "metrics_all": metrics_all,
        "throughput_stamps_per_s": round(rate, 1),
        "history": history,
    }
    _write_json(out / "model_card.json", card)
    _write_card_md(out / "model_card.md", card)
    _plot_history(out / "loss_curve.png", history)
    log(f"wrote {out} in {wall:.0f} s")
    return card


def _throughput(net: SersicNet, test: dict, n: int = 4096, threads: int = 2) -> float:
    """Stamps/s of ``predict`` with ``threads`` torch threads (the criterion's 2 cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _rate(net, test, n)
    finally:
        torch.set_num_threads(before)


def _rate(net: SersicNet, test: dict, n: int) -> float:
    k = min(n, len(test["images"]))
    imgs = np.resize(test["images"], (max(k, 2048), *test["images"].shape[1:]))
    m = len(imgs)
    fw = np.resize(test["psf_fwhm"], m)
    rms = np.resize(test["rms"], m)
    net.predict(imgs[:256], psf_fwhm=fw[:256], rms=rms[:256])  # warm-up
    t = time.perf_counter()
    net.predict(imgs, psf_fwhm=fw, rms=rms)
    return m / (time.perf_counter() - t)


def _machine() -> str:
    """CPU model, architecture and core count (as far as the platform tells)."""
    import os

    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                         model)  # fmt: skip
    except OSError:
        pass
    cores = os.cpu_count() or 0
    return ", ".join(x for x in (model, platform.machine(), f"{cores} CPU cores") if x)


def _write_json(path: Path, obj) -> None:
    from ...io.write import atomic_write

    with atomic_write(path, "w") as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=1, default=_jsonable) + "\n")


def _write_card_md(path: Path, card: dict) -> None:
    from ...io.write import atomic_write

    d, tr, m = card["data"], card["training"], card["metrics_snr_gt_30"]["summary"]
    lines = [
        "# SersicNet model card",
        "",
        "Neural Sérsic estimator of morphoscope (`morphoscope.nn.SersicNet`). Written by "
        "`morphoscope nn train`; do not edit by hand.",
        "",
        "## Data",
        f"- Simulator: {d['simulator']}; {d['size']}x{d['size']} stamps, seed {d['seed']}.",
        f"- Training / validation / test stamps: {d['n_train']} / {d['n_val']} / {d['n_test']} "
        "(independent seeds).",
        f"- Sérsic n {d['sersic_n_range']} and r_e {d['r_e_range']} px (log-uniform), "
        f"q uniform in [0.2, 1], PSF FWHM {d['psf_fwhm_range']} px (Moffat beta=3 or "
        f"Gaussian), S/N {d['snr_range']} (log-uniform), neighbour probability "
        f"{d['neighbours']}, centre offsets up to {d['max_offset']} px.",
        "",
        "## Training",
        f"- {tr['epochs']} epochs ({tr['samples_seen']} samples seen), batch "
        f"{tr['batch_size']}, AdamW, one-cycle lr {tr['lr']}; beta-NLL (beta {tr['beta']}, "
        f"log n term weighted x{tr['n_weight']}) + reconstruction MSE; random "
        "flips/transposes.",
        f"- Wall time: {tr['wall_seconds'] / 60:.1f} min with {tr['torch_threads']} torch "
        f"thread(s) on {tr['machine']} (shared with other jobs), torch {tr['torch']}: "
        f"simulation {tr['data_seconds']:.0f} s, training {tr['train_seconds']:.0f} s.",
        f"- Parameters: {card['parameters']}; weights {card['weights_bytes'] / 1e6:.1f} MB.",
        "- Predicted sigmas multiplied by factors calibrated on the validation split "
        "(68.27 % of |residual/sigma| below 1): "
        + ", ".join(f"{k} {v}" for k, v in card["sigma_scale"].items()),
        "",
        "## Metrics on the independent test split, S/N > 30",
        f"({card['metrics_snr_gt_30']['count']} stamps; scatter = 1.4826 x MAD; dex = log10)",
        "",
        "| parameter | median bias | scatter | 68% coverage |",
        "| --- | --- | --- | --- |",
    ]
    labels = (("n", "n [dex]"), ("r_e", "r_e [dex]"), ("q", "q"), ("flux", "flux [dex]"),
              ("pa", "PA [rad], q < 0.8"), ("centre", "centre [px]"))  # fmt: skip
    for key, label in labels:
        if key in m:
            v = m[key]
            lines.append(
                f"| {label} | {v['bias']:+.4f} | {v['scatter']:.4f} | {v['coverage']:.3f} |"
            )
    lines += [
        "",
        "By resolution (true r_e / PSF FWHM), S/N > 30: bias / scatter / 68% coverage",
        "",
        "| r_e / FWHM | stamps | n [dex] | r_e [dex] | q |",
        "| --- | --- | --- | --- | --- |",
    ]
    for b in card["metrics_snr_gt_30"].get("by_resolution", []):
        lo, hi = b["r_e_over_fwhm"]
        cells = " | ".join(
            f"{b[k]['bias']:+.3f} / {b[k]['scatter']:.3f} / {b[k]['coverage']:.2f}"
            for k in ("n", "r_e", "q")
        )
        lines.append(f"| {lo:g}-{hi:g} | {b['n']['count']} | {cells} |")
    lines += [
        "",
        f"Throughput: {card['throughput_stamps_per_s']:.0f} stamps/s (64x64, batch 1024, "
        "torch.inference_mode, 2 threads).",
        "",
        "Per-S/N metrics, the full loss history and the configuration: `model_card.json`. "
        "Loss curve: `loss_curve.png`.",
        "",
        "## Domain",
        "Single-band stamps centred within ~1.5 px on the galaxy, background-subtracted, "
        "white noise; the ranges above. Outside them (PSF FWHM > 6 px, r_e > 12 px, "
        "n > 6, strongly correlated noise, bulge+disk systems) the predictions and their "
        "sigmas are extrapolations.",
        "",
    ]
    with atomic_write(path, "w") as tmp:
        Path(tmp).write_text("\n".join(lines))


def _plot_history(path: Path, history: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    from ...io.write import atomic_write

    scatter = "val_n_scatter" in history
    fig, ax = plt.subplots(1, 3 if scatter else 2, figsize=(12 if scatter else 8, 3.2))
    ep = history["epoch"]
    ax[0].plot(ep, history["train_nll"], "o-", label="train")
    ax[0].plot(ep, history["val_nll"], "s-", label="validation")
    ax[0].set(xlabel="epoch", ylabel="beta-NLL (8 targets)", title="parameters")
    ax[1].plot(ep, history["train_mse"], "o-", label="train")
    ax[1].plot(ep, history["val_mse"], "s-", label="validation")
    ax[1].set(xlabel="epoch", ylabel="MSE", title="reconstruction", yscale="log")
    ax[0].legend()
    if scatter:
        seen = history["samples_seen"]
        for key, label, mk in (("val_n_scatter", "n [dex]", "o-"),
                               ("val_re_scatter", "r_e [dex]", "s-"),
                               ("val_q_scatter", "q", "^-")):  # fmt: skip
            ax[2].plot(seen, history[key], mk, label=label)
        ax[2].axhline(0.08, color="0.5", ls="--", lw=0.8)
        ax[2].axhline(0.05, color="0.5", ls=":", lw=0.8)
        ax[2].set(xlabel="training samples seen", ylabel="robust scatter",
                  title="validation, S/N > 30", xscale="log", yscale="log")  # fmt: skip
        ax[2].xaxis.set_minor_formatter(NullFormatter())  # crowded labels within a decade
        ax[2].legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
