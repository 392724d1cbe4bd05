"""The one-screen summary printed at the end of ``run`` and ``demo``."""

from __future__ import annotations

import numpy as np

from ..flags import Flag

__all__ = ["print_summary"]


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
