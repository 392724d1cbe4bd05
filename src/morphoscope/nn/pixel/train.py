"""Training and evaluation of the PixelClassifier on simulated scenes.

:func:`train` reads a configuration (the shipped ``config.yaml`` documents every key),
simulates and caches the scenes, fits the U-Net on crops (most of them centred on an
object of a class drawn uniformly) with flips, rotations and random band dropout, with a
pixel loss, an object-balanced pixel loss and a per-object loss on the segment-aggregated
probabilities, keeps the epoch with the best validation score, evaluates it on
independent scenes drawn with the simulator's defaults, and writes the weights and a
model card (``.json`` and ``.md``). The same configuration and seed give the same
scenes and the same sequence of crops; thread scheduling in PyTorch may still change
the last bits of the weights.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from ...exceptions import InputError, ParameterError
from ...io.write import atomic_write
from .classifier import CLASS_NAMES, PixelClassifier, aggregate_segments
from .data import load_scenes

__all__ = ["DEFAULT_CONFIG", "evaluate", "load_config", "train"]

#: The configuration shipped with the package (that of the shipped weights).
DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")


def _merge(base: dict, new: dict, where: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in new.items():
        if key not in base:
            raise ParameterError(f"{where}{key}", value, f"one of {sorted(base)}")
        if isinstance(base[key], dict) and isinstance(value, dict):
            out[key] = _merge(base[key], value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def load_config(path: str | os.PathLike | None = None, overrides: dict | None = None) -> dict:
    """Training configuration: the shipped defaults updated by a YAML file and a dict.

    Parameters
    ----------
    path : str or path-like, optional
        YAML file with any subset of the keys of the shipped ``config.yaml``.
    overrides : dict, optional
        Nested dictionary applied last.

    Raises
    ------
    InputError
        If the file is missing or is not a YAML mapping.
    ParameterError
        For an unknown key.

    Examples
    --------
    >>> cfg = load_config(overrides={"train": {"epochs": 1}})
    >>> cfg["train"]["epochs"], cfg["model"]["n_bands"]
    (1, 3)
    """
    with open(DEFAULT_CONFIG, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise InputError(str(path), "no such configuration file")
        try:
            user = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise InputError(str(path), f"not valid YAML ({exc})") from None
        if not isinstance(user, dict):
            raise InputError(str(path), "expected a YAML mapping of configuration sections")
        cfg = _merge(cfg, user)
    if overrides:
        cfg = _merge(cfg, overrides)
    return cfg


def _object_index(scenes, min_snr: float) -> list[np.ndarray]:
    """Objects to centre crops on, per source class: rows (scene, y, x)."""
    per_class: list[list] = [[] for _ in CLASS_NAMES[1:]]
    for k, s in enumerate(scenes):
        seg = s["segmap"].ravel().astype(np.int64)
        n = int(seg.max()) + 1 if seg.size else 1
        area = np.bincount(seg, minlength=n)
        yy, xx = np.indices(s["segmap"].shape)
        cy = np.bincount(seg, weights=yy.ravel(), minlength=n) / np.maximum(area, 1)
        cx = np.bincount(seg, weights=xx.ravel(), minlength=n) / np.maximum(area, 1)
        for lab in np.flatnonzero(area[1:]) + 1:
            if lab > len(s["snr"]) or not s["snr"][lab - 1] > min_snr:
                continue
            c = int(s["class_id"][lab - 1])
            if 1 <= c <= len(per_class):
                per_class[c - 1].append((k, cy[lab], cx[lab]))
    return [np.asarray(rows, dtype=np.float64).reshape(-1, 3) for rows in per_class]


def _crop_batch(scenes, rng, batch, crop, n_bands, p_drop, objects=None, p_object=0.0):
    """Random crops, rotations, flips and band dropout.

    A fraction ``p_object`` of the crops is centred (within a quarter crop) on an
    object of a class drawn uniformly from the source classes (``objects`` from
    :func:`_object_index`), so that rare and small classes are seen often.

    Returns the inputs, the truth classes, the truth segment labels (unique within
    the batch; 0 = background), and the truth class and whole-scene area in pixels of
    every label.
    """
    xs = np.zeros((batch, 2 * n_bands, crop, crop), dtype=np.float32)
    ys = np.zeros((batch, crop, crop), dtype=np.int64)
    segs = np.zeros((batch, crop, crop), dtype=np.int64)
    offset = 0
    classes = [np.zeros(1, dtype=np.int64)]
    areas = [np.ones(1)]
    for i in range(batch):
        row = None
        if objects is not None and rng.random() < p_object:
            avail = [c for c in range(len(objects)) if len(objects[c])]
            if avail:
                cls = objects[avail[int(rng.integers(len(avail)))]]
                row = cls[int(rng.integers(len(cls)))]
        s = scenes[int(rng.integers(len(scenes)))] if row is None else scenes[int(row[0])]
        _, ny, nx = s["x"].shape
        c = min(crop, ny, nx)
        if row is None:
            y0 = int(rng.integers(ny - c + 1))
            x0 = int(rng.integers(nx - c + 1))
        else:
            jit = rng.uniform(-c / 4, c / 4, 2)
            y0 = int(np.clip(round(row[1] + jit[0] - c / 2), 0, ny - c))
            x0 = int(np.clip(round(row[2] + jit[1] - c / 2), 0, nx - c))
        img = s["x"][:, y0 : y0 + c, x0 : x0 + c]
        lab = s["classmap"][y0 : y0 + c, x0 : x0 + c]
        seg = s["segmap"][y0 : y0 + c, x0 : x0 + c].astype(np.int64)
        k = int(rng.integers(4))
        img, lab, seg = np.rot90(img, k, axes=(1, 2)), np.rot90(lab, k), np.rot90(seg, k)
        if rng.random() < 0.5:
            img, lab, seg = img[:, :, ::-1], lab[:, ::-1], seg[:, ::-1]
        keep = rng.random(n_bands) >= p_drop
        if not keep.any():
            keep[int(rng.integers(n_bands))] = True
        for b in range(n_bands):
            if keep[b]:
                xs[i, 2 * b, :c, :c] = img[b]
                xs[i, 2 * b + 1, :c, :c] = 1.0
        ys[i, :c, :c] = lab
        segs[i, :c, :c] = np.where(seg > 0, seg + offset, 0)
        n_lab = len(s["class_id"])
        classes.append(np.asarray(s["class_id"], dtype=np.int64))
        area = np.bincount(s["segmap"].ravel(), minlength=n_lab + 1)[1 : n_lab + 1]
        areas.append(area.astype(np.float64))
        offset += n_lab
    return (
        torch.from_numpy(xs),
        torch.from_numpy(ys),
        torch.from_numpy(segs),
        torch.from_numpy(np.concatenate(classes)),
        torch.from_numpy(np.concatenate(areas).astype(np.float32)),
    )


def _losses(logits, xb, yb, segs, seg_class, seg_area, class_weights):
    """Pixel loss, object-balanced pixel loss and per-object loss of a batch.

    * pixel: cross-entropy of every pixel with the class weights;
    * balanced: cross-entropy where every truth object weighs as much as any other
      (each pixel weighs 1 / the object's area in the whole scene, so that objects
      cut by the crop weigh less) and the background of each crop as much as one
      object;
    * object: cross-entropy of the class of every object with at least half its area
      in the crop, from its S/N-weighted mean source probabilities over its truth
      segment: the quantity :func:`~.classifier.aggregate_segments` takes the argmax
      of.
    """
    pixel = torch.nn.functional.cross_entropy(logits, yb, weight=class_weights)
    logp = torch.log_softmax(logits, dim=1)
    nll = -logp.gather(1, yb[:, None])[:, 0]
    flat = segs.reshape(-1)
    n_lab = int(seg_class.numel())
    area = torch.bincount(flat, minlength=n_lab).to(logits.dtype)
    n_crops = logits.shape[0]
    present = area >= 0.5 * seg_area
    present[0] = False
    n_obj = int(present.sum())
    w = torch.where(flat == 0, n_crops / area[0].clamp(min=1.0), 1.0 / seg_area[flat])
    balanced = (w * nll.reshape(-1)).sum() / (n_obj + n_crops)
    if n_obj == 0:
        return pixel, balanced, logits.sum() * 0.0
    # S/N weights (the present bands' non-negative S/N, as in classify_segments)
    snr = torch.sinh(xb[:, 0::2]).clamp(min=0).sum(dim=1).reshape(-1)
    prob = torch.softmax(logits, dim=1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    src = flat > 0
    num = torch.zeros(n_lab, logits.shape[1], dtype=logits.dtype)
    num.index_add_(0, flat[src], prob[src] * snr[src, None])
    den = torch.zeros(n_lab, dtype=logits.dtype).index_add_(0, flat[src], snr[src])
    ok = present & (den > 0) & (seg_class >= 1)
    p_src = num[ok, 1:] / den[ok, None]
    p_src = p_src / p_src.sum(dim=1, keepdim=True).clamp(min=1e-12)
    target = seg_class[ok] - 1
    obj = -torch.log(p_src.gather(1, target[:, None])[:, 0].clamp(min=1e-6)).mean()
    return pixel, balanced, obj


def evaluate(
    clf: PixelClassifier,
    scenes,
    *,
    min_snr: float = 30.0,
    bands=None,
    tile: int = 512,
    overlap: int | None = None,
) -> dict:
    """Pixel and object metrics of a classifier on cached scenes with truth.

    Parameters
    ----------
    clf : PixelClassifier
    scenes : list of dict
        From :func:`~.data.load_scenes`.
    min_snr : float
        Objects with truth S/N (detection band) above this enter the object metrics.
    bands : sequence of int, optional
        Band slots given to the network (others missing); default all.

    Returns
    -------
    metrics : dict
        ``pixel_accuracy`` (5 classes), ``source_pixel_accuracy`` (background vs
        source), ``recall_in_footprints`` (per source class, truth footprints),
        ``object_accuracy`` (4 source classes, S/N > ``min_snr``, truth segments,
        flux-weighted), ``object_confusion`` (rows truth, columns predicted, spheroid..
        point_source), ``n_objects``, ``n_pixels``.
    """
    nb = clf.n_bands
    use = list(range(nb)) if bands is None else list(bands)
    n_cls = len(CLASS_NAMES)
    pix_conf = np.zeros((n_cls, n_cls), dtype=np.int64)
    obj_conf = np.zeros((n_cls - 1, n_cls - 1), dtype=np.int64)
    for s in scenes:
        x = np.zeros((2 * nb, *s["x"].shape[1:]), dtype=np.float32)
        for b in use:
            x[2 * b] = s["x"][b]
            x[2 * b + 1] = 1.0
        proba = clf._proba(x, tile, overlap, 4)
        pred = np.argmax(proba, axis=0)
        pix_conf += np.bincount(
            s["classmap"].ravel().astype(np.int64) * n_cls + pred.ravel(), minlength=n_cls**2
        ).reshape(n_cls, n_cls)
        # weight: S/N summed over the bands actually given
        weight = np.sum(np.clip(np.sinh(s["x"][use]), 0, None), axis=0)
        table = aggregate_segments(proba, s["segmap"], weight)
        ids = np.asarray(table["id"]) - 1
        sel = s["snr"][ids] > min_snr
        truth = s["class_id"][ids][sel] - 1
        predc = np.asarray(table["class_id"])[sel] - 1
        np.add.at(obj_conf, (truth, predc), 1)
    total = pix_conf.sum()
    bg_ok = pix_conf[0, 0] + pix_conf[1:, 1:].sum()
    recall = {
        CLASS_NAMES[k]: float(pix_conf[k, k] / max(pix_conf[k].sum(), 1)) for k in range(1, n_cls)
    }
    return {
        "pixel_accuracy": float(np.trace(pix_conf) / total),
        "source_pixel_accuracy": float(bg_ok / total),
        "recall_in_footprints": recall,
        "object_accuracy": float(np.trace(obj_conf) / max(obj_conf.sum(), 1)),
        "object_confusion": obj_conf.tolist(),
        "n_objects": int(obj_conf.sum()),
        "n_pixels": int(total),
    }


def train(
    config: dict | str | os.PathLike | None = None,
    *,
    out: str | os.PathLike | None = None,
    cache: str | None = None,
    log=print,
) -> PixelClassifier:
    """Train a PixelClassifier on simulated scenes and write weights + model card.

    Parameters
    ----------
    config : dict, str or path-like, optional
        A configuration (see :func:`load_config`) or the path of a YAML file; default
        the shipped configuration (that of the shipped weights).
    out : str or path-like, optional
        Weights file (``.pt``); the model card is written beside it as ``.json`` and
        ``.md``. Default: ``output`` of the configuration, else no file is written.
    cache : str, optional
        Folder of the scene cache (default: ``data.cache_dir`` of the configuration,
        else a folder in the system's temporary directory).
    log : callable
        Receives progress lines.

    Returns
    -------
    classifier : PixelClassifier
        With ``meta`` holding the configuration, history and metrics.

    Notes
    -----
    Cost: simulating the scenes (about 0.5 s each, once; later runs read the cache),
    then ``epochs * steps_per_epoch`` optimizer steps on batches of crops; the shipped
    configuration (10000 steps of 16 crops of 64x64 pixels) takes about 35 minutes with
    one thread on a shared CPU core (about 0.2 s per step), see the model card.

    Examples
    --------
    >>> clf = train({"data": {"n_train": 2, "n_val": 1, "shape": [64, 64],
    ...     "n_sources": [3, 4]}, "train": {"epochs": 1, "steps_per_epoch": 1,
    ...     "batch_size": 2, "crop": 32}, "eval": {"n_scenes": 0}}, log=None)  # doctest: +SKIP
    """
    if isinstance(config, dict):
        cfg = load_config(overrides=config)
    else:
        cfg = load_config(config)
    log = log or (lambda *_: None)
    mcfg, dcfg, tcfg, ecfg = cfg["model"], cfg["data"], cfg["train"], cfg["eval"]
    seed = int(cfg["seed"])
    threads = int(tcfg.get("threads") or 2)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    t_start = time.time()
    try:
        clf = PixelClassifier(**mcfg, seed=seed)
        nb, stretch = clf.n_bands, clf.config["stretch"]
        root = cache or dcfg.get("cache_dir")
        data = {k: v for k, v in dcfg.items() if k not in ("cache_dir", "n_train", "n_val")}
        n_train, n_val = int(dcfg["n_train"]), int(dcfg["n_val"])
        log(f"simulating/reading {n_train} training and {n_val} validation scenes")
        train_sc = load_scenes(range(seed * 100_000, seed * 100_000 + n_train), data, nb,
                               stretch, root, log)  # fmt: skip
        val_sc = load_scenes(range(seed * 100_000 + 50_000, seed * 100_000 + 50_000 + n_val),
                             data, nb, stretch, root, log)  # fmt: skip
        n_vd = int(ecfg.get("n_val_default") or 0)
        vd_seed = int(ecfg.get("val_default_seed") or 0)
        vd_data = {"default_simulator": True, "shape": list(ecfg["shape"])}
        val_default = load_scenes(range(vd_seed, vd_seed + n_vd), vd_data, nb, stretch, root, log)
        objects = _object_index(train_sc, float(tcfg.get("object_min_snr") or 0.0))
        log("objects for centred crops: " + ", ".join(
            f"{n} {len(o)}" for n, o in zip(CLASS_NAMES[1:], objects, strict=True)))
        t_data = time.time() - t_start
        log(f"scenes ready in {t_data:.0f} s")

        rng = np.random.default_rng(seed)
        net = clf.net
        epochs, steps = int(tcfg["epochs"]), int(tcfg["steps_per_epoch"])
        opt = torch.optim.AdamW(
            net.parameters(), lr=float(tcfg["lr"]), weight_decay=float(tcfg["weight_decay"])
        )
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=float(tcfg["lr"]), total_steps=max(epochs * steps, 1), pct_start=0.15
        )
        weights = torch.tensor([float(w) for w in tcfg["class_weights"]])
        lw = {"pixel": 1.0, "balanced": 0.0, "object": 0.0, **(tcfg.get("loss_weights") or {})}
        p_object = float(tcfg.get("object_crops") or 0.0)
        # Inference (validation included) undoes the class weighting of the pixel loss.
        clf.config["logit_bias"] = [-float(np.log(w)) for w in weights.tolist()]
        history = []
        best_score, best_state, best_epoch = -np.inf, None, 0
        t_fit = time.time()
        for epoch in range(1, epochs + 1):
            net.train()
            total = 0.0
            for step in range(steps):
                if step and step % 100 == 0:
                    log(f"epoch {epoch} step {step} loss {total / step:.4f} "
                        f"({time.time() - t_start:.0f} s)")
                xb, yb, segs, seg_class, seg_area = _crop_batch(
                    train_sc, rng, int(tcfg["batch_size"]), int(tcfg["crop"]), nb,
                    float(tcfg["band_dropout"]), objects, p_object)  # fmt: skip
                parts = _losses(net(xb), xb, yb, segs, seg_class, seg_area, weights)
                loss = sum(lw[k] * v for k, v in zip(("pixel", "balanced", "object"), parts,
                                                       strict=True))  # fmt: skip
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item()
            net.eval()
            m = evaluate(clf, val_sc, min_snr=float(ecfg["min_snr"])) if val_sc else {}
            md = evaluate(clf, val_default, min_snr=float(ecfg["min_snr"])) if n_vd else {}
            score = m.get("object_accuracy", 0.0) + m.get("pixel_accuracy", 0.0)
            score += md.get("object_accuracy", 0.0)
            row = {"epoch": epoch, "step": epoch * steps, "loss": total / max(steps, 1),
                   "val_pixel_accuracy": m.get("pixel_accuracy"),
                   "val_object_accuracy": m.get("object_accuracy"),
                   "val_default_object_accuracy": md.get("object_accuracy"),
                   "elapsed_s": round(time.time() - t_start, 1)}  # fmt: skip
            history.append(row)
            log(json.dumps(row))
            if score > best_score or best_state is None:
                best_score, best_epoch = score, epoch
                best_state = copy.deepcopy(net.state_dict())
        net.load_state_dict(best_state)
        net.eval()
        t_fit = time.time() - t_fit
        metrics: dict = {}
        n_eval = int(ecfg["n_scenes"])
        if n_eval:
            edata = {"default_simulator": True, "shape": list(ecfg["shape"])}
            eseed = int(ecfg["seed"])
            eval_sc = load_scenes(range(eseed, eseed + n_eval), edata, nb, stretch, root, log)
            metrics["all_bands"] = evaluate(clf, eval_sc, min_snr=float(ecfg["min_snr"]))
            for b in range(nb):
                metrics[f"band{b}_only"] = evaluate(
                    clf, eval_sc, min_snr=float(ecfg["min_snr"]), bands=[b]
                )
            log("evaluation: " + json.dumps(metrics["all_bands"]))
        wall = time.time() - t_start
        clf.meta = {
            "config": cfg,
            "best_epoch": best_epoch,
            "history": history,
            "metrics": metrics,
            "wall_time_s": round(wall, 1),
            "fit_time_s": round(t_fit, 1),
            "simulation_time_s": round(t_data, 1),
            "threads": threads,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
            "n_parameters": int(sum(p.numel() for p in net.parameters())),
        }
        target = out if out is not None else cfg.get("output")
        if target:
            target = Path(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            clf.save(target)
            write_model_card(clf, target.with_suffix(".json"), target.with_suffix(".md"))
            log(f"wrote {target}")
        return clf
    finally:
        torch.set_num_threads(old_threads)


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def write_model_card(clf: PixelClassifier, json_path, md_path) -> None:
    """Write the model card of a trained classifier as JSON and Markdown."""
    meta = clf.meta
    with atomic_write(json_path, "w") as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump({"architecture": clf.config, **meta}, f, indent=1)
    cfg = meta.get("config", {})
    d, t, e = cfg.get("data", {}), cfg.get("train", {}), cfg.get("eval", {})
    lines = [
        "# PixelClassifier model card",
        "",
        "Per-pixel probabilities of `background, spheroid, disk, irregular, point_source` "
        "from a small U-Net (`morphoscope.nn.PixelClassifier`).",
        "",
        "## Model",
        f"- U-Net widths {clf.config['widths']}, {meta.get('n_parameters')} parameters, "
        f"{clf.n_bands} band slots (each: asinh(S/N / {clf.config['stretch']:g}) and a "
        "presence flag); any band may be missing.",
        f"- Logit bias {[round(b, 3) for b in clf.config.get('logit_bias', [])]} "
        "(minus the log of the pixel loss's class weights) undoes the class weighting of "
        "the pixel loss term.",
        "",
        "## Training data (simulated with `morphoscope.simulate.simulate_scene`)",
        f"- {d.get('n_train')} training and {d.get('n_val')} validation scenes of "
        f"{d.get('shape')} pixels, {d.get('n_sources')} sources each, equal class "
        "fractions, blends and extended line emission;",
        f"- pixel scale {d.get('pixel_scale')} arcsec, Moffat or Gaussian PSFs of FWHM "
        f"{d.get('fwhm_pixels')} pixels in the first band (x {d.get('fwhm_ratio')} in the "
        f"others), sky noise {d.get('sky_rms')}, fluxes {d.get('flux_range')}.",
        "- Truth: the simulator's class map (footprint above 1 sigma of the noiseless "
        "first band, class of the brightest source in each pixel).",
        "",
        "## Training",
        f"- {t.get('epochs')} epochs x {t.get('steps_per_epoch')} steps, batches of "
        f"{t.get('batch_size')} crops of {t.get('crop')} pixels with rotations, flips and "
        f"band dropout {t.get('band_dropout')}; {_pct(t.get('object_crops') or 0.0)} of "
        f"the crops centred on an object of truth S/N > {t.get('object_min_snr')} of a "
        "class drawn uniformly; AdamW, one-cycle learning rate "
        f"{t.get('lr')}; loss weights {t.get('loss_weights')} (pixel cross-entropy with "
        f"class weights {t.get('class_weights')}, object-balanced pixel cross-entropy, "
        "per-object cross-entropy of the segment-aggregated probabilities); best epoch "
        f"{meta.get('best_epoch')} (validation pixel + object accuracy"
        + (", plus the object accuracy on default-simulator validation scenes"
           if e.get("n_val_default") else "") + ").",
        f"- Wall time {meta.get('wall_time_s', 0) / 60:.1f} min "
        f"({meta.get('fit_time_s', 0) / 60:.1f} min fitting, "
        f"{meta.get('simulation_time_s', 0) / 60:.1f} min simulating) with "
        f"{meta.get('threads')} thread{'' if meta.get('threads') == 1 else 's'} on "
        f"{meta.get('machine')} shared with other jobs.",
        f"- Reproduce: `morphoscope nn train-pixel --config config.yaml` (seed {cfg.get('seed')}).",
        "",
        f"## Metrics on {e.get('n_scenes')} independent scenes",
        f"Default `simulate_scene` scenes ({e.get('shape')} pixels, 3 NIRCam-like bands, "
        f"0.03 arcsec/pixel, default class mix), seeds from {e.get('seed')}; objects with "
        f"truth S/N > {e.get('min_snr')} classified on the truth segmentation.",
        "",
        "| bands given | pixel accuracy | background vs source | object accuracy | objects |",
        "|---|---|---|---|---|",
    ]
    for name, m in meta.get("metrics", {}).items():
        lines.append(
            f"| {name} | {_pct(m['pixel_accuracy'])} | {_pct(m['source_pixel_accuracy'])} | "
            f"{_pct(m['object_accuracy'])} | {m['n_objects']} |"
        )
    m = meta.get("metrics", {}).get("all_bands")
    if m:
        names = CLASS_NAMES[1:]
        lines += [
            "",
            "Recall inside truth footprints (all bands): "
            + ", ".join(f"{k} {_pct(v)}" for k, v in m["recall_in_footprints"].items()),
            "",
            "Object confusion matrix (all bands; rows truth, columns predicted):",
            "",
            "| truth \\ predicted | " + " | ".join(names) + " |",
            "|---" * (len(names) + 1) + "|",
        ]
        for name, row in zip(names, m["object_confusion"], strict=True):
            lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    hist = meta.get("history") or []
    if hist:
        lines += [
            "",
            "Training history (validation after each epoch; accuracy vs optimizer steps):",
            "",
            "| epoch | steps | loss | val pixel acc. | val object acc. "
            "| default-scene val object acc. | elapsed |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in hist:
            lines.append(
                f"| {r['epoch']} | {r.get('step', '')} | {r['loss']:.3f} | "
                f"{_pct(r.get('val_pixel_accuracy'))} | {_pct(r.get('val_object_accuracy'))} "
                f"| {_pct(r.get('val_default_object_accuracy'))} | "
                f"{r.get('elapsed_s', 0) / 60:.1f} min |"
            )
    if meta.get("notes"):
        lines += ["", "## Notes"] + [f"- {n}" for n in meta["notes"]]
    lines += [
        "",
        "## Limitations",
        "- Trained on simulations only (Sérsic spheroids and disks, clumpy irregulars, "
        "PSF-like point sources); real galaxies (mergers, tidal features, artefacts) are "
        "outside the training set.",
        "- Images should be background-subtracted; the noise is estimated per band from "
        "the image unless given.",
        "",
    ]
    with atomic_write(md_path, "w") as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
