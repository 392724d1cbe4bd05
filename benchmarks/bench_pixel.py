"""Benchmark of the per-pixel classifier (morphoscope.nn.PixelClassifier).

On held-out simulated scenes (``morphoscope.simulate.simulate_scene`` with its default
3 NIRCam-like bands, 0.03"/pixel and class mix; seeds disjoint from those of training
and of the model card), it prints:

* per-pixel accuracy (5 classes) and background-vs-source pixel accuracy;
* recall of every source class inside the truth footprints;
* per-object accuracy and confusion matrix for objects of truth S/N > ``--min-snr``,
  classified by flux-weighted aggregation over their truth segments;
* the same with one band only (missing-band robustness);
* detection completeness and purity of the connected regions of non-background pixels,
  next to those of ``morphoscope.segment`` (default "saddle" method) on the detection
  band, matched to the truth by ``morphoscope.pipeline.evaluate.detection_metrics``;
* throughput in megapixels/s for a 3-band image (a 2048x2048 mosaic of the scenes) with
  ``--threads`` CPU threads, and the cost of a Morpheus-style stride-1 sliding window
  of 40x40 pixels (one forward pass per pixel) on the same image, estimated from the
  measured time of batches of 40x40 windows through the same network.

Usage::

    python benchmarks/bench_pixel.py [--scenes 12] [--seed 2000000] [--threads 2]
                                     [--weights FILE] [--min-snr 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from scipy import ndimage

from morphoscope.nn.pixel import CLASS_NAMES, PixelClassifier
from morphoscope.pipeline.evaluate import detection_metrics
from morphoscope.segment import segment
from morphoscope.simulate import simulate_scene

SOURCES = CLASS_NAMES[1:]


def _confusion_table(conf: np.ndarray) -> str:
    head = "truth \\ pred".ljust(14) + "".join(n[:10].rjust(12) for n in SOURCES)
    rows = [head]
    for name, row in zip(SOURCES, conf, strict=True):
        rec = row[SOURCES.index(name)] / max(row.sum(), 1)
        cells = "".join(str(v).rjust(12) for v in row)
        rows.append(f"{name.ljust(14)}{cells}   recall {rec:.2f}")
    return "\n".join(rows)


def _pixel_segmap(proba: np.ndarray, npixels: int = 5) -> np.ndarray:
    """Connected regions (8-connectivity) of pixels whose most probable class is a source."""
    src = np.argmax(proba, axis=0) > 0
    lab, _ = ndimage.label(src, structure=np.ones((3, 3)))
    sizes = np.bincount(lab.ravel())
    small = sizes < npixels
    small[0] = False
    lab[small[lab]] = 0
    _, inv = np.unique(lab, return_inverse=True)
    return inv.reshape(lab.shape).astype(np.int32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=12)
    ap.add_argument("--shape", type=int, default=512)
    ap.add_argument("--seed", type=int, default=2_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--min-snr", type=float, default=30.0)
    ap.add_argument("--detect-snr", type=float, default=20.0)
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clf = PixelClassifier.load(args.weights) if args.weights else PixelClassifier.pretrained()

    n = len(CLASS_NAMES)
    pix = np.zeros((n, n), np.int64)
    obj = {"all": np.zeros((4, 4), np.int64), "F200W only": np.zeros((4, 4), np.int64)}
    det = {"PixelClassifier": [], "segment": []}
    t_net = t_seg = 0.0
    npix_total = 0
    scenes = []
    for k in range(args.scenes):
        scene = simulate_scene((args.shape, args.shape), seed=args.seed + k)
        scenes.append(scene)
        images = [scene.images[b] for b in scene.band_names]
        t0 = time.perf_counter()
        proba = clf.predict_proba(images)
        t_net += time.perf_counter() - t0
        npix_total += proba[0].size
        pred = np.argmax(proba, axis=0)
        pix += np.bincount(scene.classmap.ravel().astype(np.int64) * n + pred.ravel(),
                           minlength=n * n).reshape(n, n)  # fmt: skip
        snr = np.asarray(scene.truth["snr_F200W"])
        for key, given in (("all", images), ("F200W only", images[:1])):
            p = proba if key == "all" else clf.predict_proba(given)
            cat = clf.classify_segments(given, scene.segmap, proba=p)
            ids = np.asarray(cat["id"]) - 1
            sel = snr[ids] > args.min_snr
            truth = np.asarray(scene.truth["class_id"])[ids][sel] - 1
            np.add.at(obj[key], (truth, np.asarray(cat["class_id"])[sel] - 1), 1)
        det_img = scene.images[scene.detection_band]
        kw = {"image": det_img, "truth_segmap": scene.segmap, "snr_column": "snr_F200W",
              "snr_min": args.detect_snr}  # fmt: skip
        det["PixelClassifier"].append(detection_metrics(_pixel_segmap(proba), scene.truth, **kw))
        t0 = time.perf_counter()
        seg = segment(det_img, rms=scene.rms[scene.detection_band], background=None)
        t_seg += time.perf_counter() - t0
        det["segment"].append(detection_metrics(seg, scene.truth, **kw))

    out: dict = {"scenes": args.scenes, "shape": args.shape, "seed": args.seed}
    total = pix.sum()
    out["pixel_accuracy"] = float(np.trace(pix) / total)
    out["source_pixel_accuracy"] = float((pix[0, 0] + pix[1:, 1:].sum()) / total)
    out["recall_in_footprints"] = {
        CLASS_NAMES[k]: float(pix[k, k] / max(pix[k].sum(), 1)) for k in range(1, n)
    }
    print(f"{args.scenes} held-out scenes of {args.shape}x{args.shape} pixels (seeds from "
          f"{args.seed}), weights: {args.weights or 'shipped'}")  # fmt: skip
    print(f"pixel accuracy (5 classes)          {out['pixel_accuracy']:.4f}")
    print(f"background vs source pixel accuracy {out['source_pixel_accuracy']:.4f}"
          "   (goal >= 0.97)")
    print("recall inside truth footprints:     "
          + ", ".join(f"{k} {v:.3f}" for k, v in out["recall_in_footprints"].items()))  # fmt: skip
    for key, conf in obj.items():
        acc = float(np.trace(conf) / max(conf.sum(), 1))
        out[f"object_accuracy ({key})"] = acc
        out[f"object_confusion ({key})"] = conf.tolist()
        print(f"\nper-object accuracy, {key}, truth S/N > {args.min_snr:g}: {acc:.3f} "
              f"({int(conf.sum())} objects; goal >= 0.85)")  # fmt: skip
        print(_confusion_table(conf))

    print(f"\ndetection, truth S/N > {args.detect_snr:g} (detection_metrics, whole truth catalog):")
    for name, rows in det.items():
        n_b = sum(r["n_truth_bright"] for r in rows)
        n_m = sum(r["n_matched_bright"] for r in rows)
        n_d = sum(r["n_detected"] for r in rows)
        n_s = sum(r["n_spurious"] for r in rows)
        comp, pur = n_m / max(n_b, 1), 1 - n_s / max(n_d, 1)
        out[f"completeness ({name})"], out[f"purity ({name})"] = comp, pur
        print(f"  {name:16s} completeness {comp:.3f} ({n_m}/{n_b})  purity {pur:.3f} "
              f"({n_d} detections)")  # fmt: skip

    # Throughput on a 2048x2048 3-band mosaic of the scenes.
    reps = 2048 // args.shape
    big = [np.tile(scenes[0].images[b], (reps, reps)) for b in scenes[0].band_names]
    clf.predict_proba([b[:256, :256] for b in big])  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    clf.predict_proba(big)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    mp = big[0].size / 1e6
    out["megapixels_per_s"] = mp / dt
    out["tiled_seconds_2048"] = dt
    # On a shared machine the wall time includes waiting for the CPU; the CPU time of
    # this process divided by the threads estimates the wall time on dedicated cores.
    out["megapixels_per_s_dedicated"] = mp / (cpu / args.threads)
    out["load_average"] = os.getloadavg()[0]
    # Morpheus-style: one forward pass of a 40x40 window per pixel (stride 1).
    x = torch.zeros((256, 2 * clf.n_bands, 40, 40))
    x[:, 1::2] = 1.0
    x[:, 0::2] = torch.randn(256, clf.n_bands, 40, 40)
    with torch.inference_mode():
        clf.net(x[:16])
        t0 = time.perf_counter()
        clf.net(x)
        per_window = (time.perf_counter() - t0) / x.shape[0]
    n_windows = (big[0].shape[0] - 39) * (big[0].shape[1] - 39)
    sliding = per_window * n_windows
    out["sliding_window_seconds_2048"] = sliding
    print(f"\nthroughput, 3 bands, {big[0].shape[0]}x{big[0].shape[1]} image, {args.threads} "
          f"threads: {mp / dt:.2f} megapixels/s ({dt:.1f} s; goal >= 1 MP/s); from the CPU "
          f"time, on {args.threads} dedicated cores: {out['megapixels_per_s_dedicated']:.2f} "
          f"MP/s (load average {out['load_average']:.1f})")  # fmt: skip
    print(f"stride-1 40x40 sliding window with the same network (estimated from "
          f"{x.shape[0]} windows): {sliding:.0f} s = {sliding / dt:.0f}x the tiled U-Net")
    print(f"network on the {args.scenes} scenes: {npix_total / 1e6 / t_net:.2f} MP/s; "
          f"morphoscope.segment (detection band): {npix_total / 1e6 / t_seg:.2f} MP/s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
