"""Segment Anything benchmark: ``segment(method="sam")`` against the default method.

Both methods run on the same simulated fields (image, rms map and PSF) in this process, and
are scored against the truth with the code of ``bench_segmentation.py`` (windowed centroids
matched one to one within ``max(2, 0.5 r_e)`` pixels; completeness of S/N > 20 and 5-20
sources, purity, F1, fragments, over-split galaxies, split blended pairs, and the IoU of
matched S/N > 20 segments with their truth footprints). SAM's model is loaded before the
clock starts; its load time is printed apart.

SAM weights are not shipped and never downloaded: pass a directory written by
``transformers.SamModel.save_pretrained`` (e.g. of ``facebook/sam-vit-base``), or set
``$MORPHOSCOPE_SAM_CHECKPOINT``. Without one, the script says so and exits with status 2.

Usage::

    python benchmarks/bench_sam.py --checkpoint ~/models/sam-vit-base
    python benchmarks/bench_sam.py --checkpoint DIR --size 1024 --n 300 --seeds 1,2,3 \
        --field morphoscope --prompts peaks,grid --scale 2 --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _no_checkpoint(problem: str) -> None:
    print(
        "bench_sam: " + problem + "\n\n"
        "This benchmark needs Segment Anything weights on disk, in Hugging Face form: a\n"
        "directory written by save_pretrained. On a machine with internet:\n\n"
        "    pip install 'morphoscope[sam]'\n"
        '    python -c "from transformers import SamModel; '
        "SamModel.from_pretrained('facebook/sam-vit-base').save_pretrained('sam-vit-base')\"\n\n"
        "then run  python benchmarks/bench_sam.py --checkpoint sam-vit-base\n"
        "(or set MORPHOSCOPE_SAM_CHECKPOINT). Weights: https://huggingface.co/facebook/sam-vit-base",
        file=sys.stderr,
    )
    sys.exit(2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="SAM weights (default: $MORPHOSCOPE_SAM_CHECKPOINT)")
    ap.add_argument("--field", choices=("independent", "morphoscope"), default="independent")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--n", type=int, default=80, help="galaxies per field")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--prompts", default="peaks", help="comma-separated: peaks, grid")
    ap.add_argument("--scale", type=float, default=2.0)
    ap.add_argument("--stretch", default="asinh", choices=("asinh", "zscale"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = ap.parse_args(argv)

    try:
        import transformers  # noqa: F401
    except ImportError:
        _no_checkpoint("transformers is not installed (pip install 'morphoscope[sam]').")
    import torch

    from morphoscope.exceptions import InputError
    from morphoscope.segment import segment_image
    from morphoscope.segment.sam import load_sam

    torch.set_num_threads(max(1, args.threads))
    try:
        t0 = time.perf_counter()
        backend = load_sam(args.checkpoint, device=args.device)
        t_load = time.perf_counter() - t0
    except InputError as exc:
        _no_checkpoint(str(exc))

    from bench_segmentation import independent_sim, morphoscope_sim, score

    print(f"# {platform.node()} {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, device {args.device}")  # fmt: skip
    print(f"# checkpoint {backend.name} (input {backend.image_size} px), loaded in {t_load:.1f} s")
    prompts = [p.strip() for p in args.prompts.split(",") if p.strip()]
    methods = ["default", *[f"sam {p}" for p in prompts]]
    header = (
        f"{'method':<12} {'time s':>7} {'n_det':>6} {'compl':>6} {'c5-20':>6} {'purity':>6} "
        f"{'F1':>6} {'frag':>5} {'oversplit':>9} {'pairs':>6} {'IoU':>6}"
    )
    totals: dict[str, list] = {m: [] for m in methods}
    for seed in (int(s) for s in args.seeds.split(",")):
        if args.field == "independent":
            sim = independent_sim(args.size, args.n, seed)
        else:
            sim = morphoscope_sim(args.size, args.n, seed)
        print(f"\n## {sim['label']}")
        print(header)
        for name in methods:
            kw = {}
            if name != "default":
                kw = dict(
                    method="sam",
                    checkpoint=backend,
                    sam_options={
                        "prompts": name.split()[1],
                        "scale": args.scale,
                        "stretch": args.stretch,
                        "device": args.device,
                    },
                )
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = segment_image(sim["image"], rms=sim["rms"], psf=sim["psf"], **kw)
            dt = time.perf_counter() - t0
            m = score(res.segmap, sim)
            totals[name].append((dt, m))
            extra = f"  ({res.params['tiles']} tiles)" if name != "default" else ""
            print(
                f"{name:<12} {dt:7.2f} {m['n_detected']:6d} {m['completeness']:6.3f} "
                f"{m['compl_5_20']:6.3f} {m['purity']:6.3f} {m['f1']:6.3f} "
                f"{m['n_fragments']:5d} {m['oversplit_gal']:9.3f} {m['pairs_split']:6.3f} "
                f"{m['iou']:6.3f}{extra}"
            )
    print("\n## mean over fields (time ratio = method / default)")
    print(
        f"{'method':<12} {'time s':>7} {'ratio':>6} {'F1':>6} {'IoU':>6} {'compl':>6} {'c5-20':>6}"
    )
    t_ref = np.mean([dt for dt, _ in totals["default"]])
    for name, rows in totals.items():
        dt = np.mean([r[0] for r in rows])
        mean = {k: np.nanmean([r[1][k] for r in rows]) for k in ("f1", "iou", "completeness")}
        c520 = np.nanmean([r[1]["compl_5_20"] for r in rows])
        print(
            f"{name:<12} {dt:7.2f} {dt / t_ref:6.1f} {mean['f1']:6.3f} {mean['iou']:6.3f} "
            f"{mean['completeness']:6.3f} {c520:6.3f}"
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
