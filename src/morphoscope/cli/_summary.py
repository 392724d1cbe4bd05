"""The one-screen summary printed at the end of ``run`` and ``demo``."""

from __future__ import annotations

import sys

import numpy as np

from ..flags import Flag

__all__ = ["print_summary", "report_failures"]


def print_summary(result, *, elapsed: float, extra: dict[str, str] | None = None) -> None:
    """Print inputs, source counts, flags, timings and output files of a pipeline run."""
    cat = result.catalog
    det = result.bands[result.detection_band]
    lines = [
        "",
        "morphoscope summary",
        "-------------------",
        f"bands             : {', '.join(f'{n} ({b.name})' for n, b in result.bands.items())}",
        f"detection band    : {result.detection_band}  ({det.shape[1]} x {det.shape[0]} pixels)",
        f"method            : {result.segmentation.method}",
        f"sources           : {len(cat)}",
    ]
    if len(cat):
        flags = np.asarray(cat["flag"], int)
        counts = {f.name: int(np.count_nonzero(flags & f)) for f in Flag if np.any(flags & f)}
        text = ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"
        lines.append(f"flagged           : {int(np.count_nonzero(flags))} ({text})")
        r50 = np.asarray(cat["r50"], float)
        gini = np.asarray(cat["gini"], float)
        lines.append(f"median r50 / Gini : {np.nanmedian(r50):.2f} px / {np.nanmedian(gini):.3f}")
    for key, value in (extra or {}).items():
        lines.append(f"{key:<18}: {value}")
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    lines.append(f"time              : {elapsed:.1f}s ({timing})")
    for key, path in result.outputs.items():
        lines.append(f"{'output ' + key:<18}: {path}")
    print("\n".join(lines))


def report_failures(result) -> int:
    """Print the stages and sources that failed to stderr; return the exit status.

    0 when every stage ran; 3 when a stage failed after the catalog was written (the
    files written are kept and listed in the summary).
    """
    cat = result.catalog
    lines = []
    if len(cat):
        failed = np.asarray(cat["flag"], int) & int(Flag.MEASURE_FAILED)
        labels = np.asarray(cat["label"])[failed > 0]
        if labels.size:
            shown = ", ".join(str(v) for v in labels[:20]) + (" ..." if labels.size > 20 else "")
            lines.append(f"morphoscope: {labels.size} sources not measured (labels {shown})")
    failed = dict(getattr(result, "failed", None) or {})
    for stage, log in (getattr(result, "log", None) or {}).items():
        if getattr(log, "status", None) == "failed":
            failed.setdefault(stage, getattr(log, "message", "") or "failed")
    for stage, error in failed.items():
        lines.append(f"morphoscope: stage {stage!r} failed: {error}")
    if lines:
        print("\n".join(lines), file=sys.stderr)
    return 3 if failed else 0
