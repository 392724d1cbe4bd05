"""``morphoscope demo``: the whole pipeline on a simulated field, scored against its truth."""

from __future__ import annotations

import argparse
import time

from ._outdir import check_output_dir
from ._progress import StageProgress
from ._summary import print_summary, report_failures

__all__ = ["add_parser", "handle"]


def add_parser(subparsers) -> None:
    """Register ``morphoscope demo``."""
    p = subparsers.add_parser(
        "demo",
        help="run the pipeline on a built-in simulated field and score it",
        description="Simulate a three-band JWST-like field with GalSim, write it as FITS, run "
        "the pipeline on the files and print completeness, purity and measurement accuracy "
        "against the known truth.",
    )
    p.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    p.add_argument("--seed", type=int, default=42, help="simulation seed (default: 42)")
    p.add_argument("--size", type=int, default=1024, help="field size in pixels (default: 1024)")
    p.add_argument("--n-sources", type=int, default=350, help="number of sources (default: 350)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into --out even if it already holds files (they are replaced)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the demo; print the summary with the scores."""
    from ..pipeline import run_demo

    check_output_dir(args.out, args.overwrite)
    t0 = time.perf_counter()
    stages = ["simulate", "read", "detect", "measure", "zhu", "write", "report"]
    with StageProgress(stages, disable=args.quiet) as progress:
        demo = run_demo(
            args.out,
            seed=args.seed,
            shape=(args.size, args.size),
            n_sources=args.n_sources,
            progress=progress,
        )
    s = demo.scores["saddle"]
    acc = demo.accuracy
    extra = {
        "simulated": f"{len(demo.truth)} sources, seed {args.seed} ({demo.simulate_seconds:.1f}s)",
        "completeness": f"{s['completeness']:.3f} of truth sources with S/N > 20 "
        f"({s['n_matched_bright']}/{s['n_truth_bright']})",
        "purity": f"{s['purity']:.3f} ({s['n_spurious']} of {s['n_detected']} detections "
        f"match no truth source; {s['n_fragments']} of them fragments)",
        "over-splitting": f"{s['over_split_rate']:.3f} of bright truth galaxies",
        "flux accuracy": f"median flux/true {acc['flux_ratio_median']:.3f} "
        f"(16-84%: ±{acc['flux_ratio_scatter']:.3f}, {acc['n']} isolated, "
        "S/N > 50)",
        "position error": f"median {acc['position_error_median']:.2f} px",
    }
    if "zhu" in demo.scores:
        z = demo.scores["zhu"]
        extra["zhu recipe"] = (
            f"completeness {z['completeness']:.3f}, purity {z['purity']:.3f}, "
            f"over-splitting {z['over_split_rate']:.3f}"
        )
    print_summary(demo.pipeline, elapsed=time.perf_counter() - t0, extra=extra)
    return report_failures(demo.pipeline)
