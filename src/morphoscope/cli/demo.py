"""``morphoscope demo``: every tier on a simulated JWST-like field, scored against its truth."""

from __future__ import annotations

import argparse
import time

from ._outdir import check_output_dir
from ._progress import StageProgress
from ._summary import report_failures

__all__ = ["add_parser", "handle"]


def add_parser(subparsers) -> None:
    """Register ``morphoscope demo``."""
    p = subparsers.add_parser(
        "demo",
        help="run every tier on a built-in simulated field and score it",
        description="Simulate a six-band JWST/NIRCam-like field (F115W F200W F277W F335M "
        "F356W F444W at 0.03\"/px, some galaxies with extended line emission in F335M) with "
        "GalSim, write it as FITS, run the whole pipeline on the files and print the "
        "accuracy of every tier against the known truth. --real runs the pipeline on the "
        "Hubble Deep Field image bundled with scikit-image instead.",
    )
    p.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    p.add_argument("--seed", type=int, default=42, help="simulation seed (default: 42)")
    p.add_argument("--size", type=int, default=1024, help="field size in pixels (default: 1024)")
    p.add_argument("--n-sources", type=int, default=300, help="number of sources (default: 300)")
    p.add_argument("--no-classifier", action="store_true",
                   help="do not train and apply the demo classifier")  # fmt: skip
    p.add_argument("--real", action="store_true",
                   help="run on skimage's Hubble Deep Field image (no truth)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into --out even if it already holds files (they are replaced)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the demo; print the summary with the accuracy of every tier."""
    from ..pipeline.demo import accuracy_lines, run_demo, run_real_demo
    from .run import print_result

    t0 = time.perf_counter()
    tiers = ["read", "detect", "measure", "sersicnet", "pixel", "emission", "classifier",
             "write", "report"]  # fmt: skip
    if args.real:
        out = args.out if args.out != "demo_output" else "demo_output_hdf"
        check_output_dir(out, args.overwrite)
        with StageProgress(tiers, disable=args.quiet) as progress:
            result = run_real_demo(out, progress=progress)
        print_result(result, elapsed=time.perf_counter() - t0)
        return report_failures(result)
    check_output_dir(args.out, args.overwrite)
    stages = ["simulate"] + ([] if args.no_classifier else ["train classifier"]) + tiers
    with StageProgress(stages, disable=args.quiet) as progress:
        demo = run_demo(
            args.out,
            seed=args.seed,
            shape=(args.size, args.size),
            n_sources=args.n_sources,
            classifier=not args.no_classifier,
            progress=progress,
        )
    extra = {
        "simulated": f"{len(demo.truth)} sources, seed {args.seed} "
        f"({demo.simulate_seconds:.1f}s incl. the classifier's training field)",
    }
    extra.update({f"accuracy {k}": v for k, v in accuracy_lines(
        demo.scores, demo.accuracy, demo.tiers, 20.0).items()})  # fmt: skip
    print_result(demo.pipeline, elapsed=time.perf_counter() - t0, extra=extra)
    return report_failures(demo.pipeline)
