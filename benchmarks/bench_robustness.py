"""Bad input through morphoscope, photutils, SEP and statmorph: what each one does.

Every class of bad input (NaN or inf pixels in a galaxy, zero or negative rms, masks and
segmentation maps of the wrong shape or with odd labels, cubes, 1-D and 2x2 arrays,
integer, boolean and big-endian dtypes, blank images, ...) is built on one small field
with two Gaussian galaxies, and measured on the same segmentation map by

* ``morphoscope.measure(image, segmap, rms=..., mask=...)``,
* photutils ``SourceCatalog(image, SegmentationImage(segmap), error=..., mask=...)``,
* SEP ``sep.extract(image, 1.5, err=..., mask=..., segmentation_map=segmap)``,
* statmorph ``source_morphology(image, segmap, weightmap=..., mask=...)``.

The outcome of each run is classified as

``ok``
    the numbers agree with the same tool's run on the clean field (fluxes within 3 %), or
    an input that has no answer gives an empty result;
``flagged``
    a number differs but the source carries a flag;
``error``
    a deliberate exception (a ``ValueError``/``TypeError`` from the tool's own checks or
    those of the astronomy library it relies on, or a ``MorphoscopeError``) that stops
    before any output;
``crash``
    any other exception (``AssertionError``, ``IndexError``, ``ZeroDivisionError``, a
    ``ValueError`` raised deep inside numpy/scipy, ...);
``wrong (warned)``
    a wrong or meaningless number without a per-source flag, but a global warning;
``silently wrong``
    a wrong or meaningless number with neither a flag nor a warning;
``hang``
    no answer within the time limit.

Usage::

    python benchmarks/bench_robustness.py [--markdown docs/robustness_table.md]
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import gaussian_source

SHAPE = (64, 64)
GALAXIES = [(19.2, 25.6, 3000.0, 2.5), (44.8, 38.4, 2000.0, 2.0)]
TIMEOUT = 30


def galaxy(seed=7):
    rng = np.random.default_rng(seed)
    img = rng.normal(0, 1.0, SHAPE)
    for x, y, f, s in GALAXIES:
        img += gaussian_source(SHAPE, x, y, f, s)
    return img


def discs(shape=SHAPE):
    y, x = np.mgrid[: shape[0], : shape[1]]
    seg = np.zeros(shape, np.int32)
    for label, (x0, y0, _, _) in enumerate(GALAXIES, 1):
        if shape == SHAPE:
            seg[(x - x0) ** 2 + (y - y0) ** 2 < 36] = label
    return seg


def case(image=None, segmap=None, rms=1.0, mask=None):
    return {
        "image": galaxy() if image is None else image,
        "segmap": discs() if segmap is None else segmap,
        "rms": rms,
        "mask": mask,
    }


def _set(arr, region, value):
    arr = arr.copy()
    arr[region] = value
    return arr


SOURCE = np.s_[24:28, 17:21]  # inside galaxy 1
#: (name, description, inputs, expect): expect "same" (the answer exists and must match the
#: clean run, or the source must be flagged) or "none" (no meaningful answer: an error or
#: an empty result).
CASES = [
    ("big-endian float64", "`>f8` image", lambda: case(galaxy().astype(">f8")), "same"),
    ("int16 image", "integer counts", lambda: case(np.round(galaxy()).astype(np.int16)), "same"),
    ("float32 image", "", lambda: case(galaxy().astype(np.float32)), "same"),
    ("one-plane cube", "shape (1, 64, 64)", lambda: case(galaxy()[None]), "same"),
    ("non-contiguous view", "`img[::2, ::2]` of a larger array",
     lambda: case(np.repeat(np.repeat(galaxy(), 2, 0), 2, 1)[::2, ::2]), "same"),
    ("NaN border (drizzle)", "NaN in 6 columns, away from sources",
     lambda: case(_set(galaxy(), np.s_[:, :6], np.nan)), "same"),
    ("blank border (-1e30)", "SWarp-style blank value in 6 columns",
     lambda: case(_set(galaxy(), np.s_[:, :6], -1e30)), "same"),
    ("NaN pixels in a galaxy", "4x4 NaN inside galaxy 1",
     lambda: case(_set(galaxy(), SOURCE, np.nan)), "same"),
    ("inf pixel in a galaxy", "one +inf inside galaxy 1",
     lambda: case(_set(galaxy(), (26, 19), np.inf)), "same"),
    ("zero rms in a galaxy", "rms map = 0 on 4x4 pixels of galaxy 1",
     lambda: case(rms=_set(np.ones(SHAPE), SOURCE, 0.0)), "same"),
    ("negative rms in a galaxy", "rms map = -1 on 4x4 pixels",
     lambda: case(rms=_set(np.ones(SHAPE), SOURCE, -1.0)), "same"),
    ("NaN rms in a galaxy", "rms map = NaN on 4x4 pixels",
     lambda: case(rms=_set(np.ones(SHAPE), SOURCE, np.nan)), "same"),
    ("masked pixels on a galaxy", "mask True on 4x4 pixels of galaxy 1",
     lambda: case(mask=_set(np.zeros(SHAPE, bool), SOURCE, True)), "same"),
    ("labels with gaps", "labels 1 and 7", lambda: case(segmap=np.where(discs() == 2, 7, discs())),
     "same"),
    ("float segmap", "labels as 1.0, 2.0", lambda: case(segmap=discs().astype(float)), "same"),
    ("boolean image", "`img > 5`", lambda: case(galaxy() > 5), "none"),
    ("all-NaN image", "", lambda: case(np.full(SHAPE, np.nan)), "none"),
    ("all-zero image", "blank extension", lambda: case(np.zeros(SHAPE)), "none"),
    ("constant image", "every pixel 5", lambda: case(np.full(SHAPE, 5.0)), "none"),
    ("2x2 image", "", lambda: case(np.arange(4.0).reshape(2, 2), np.array([[0, 1], [1, 1]])),
     "none"),
    ("1-D array", "", lambda: case(galaxy().ravel(), discs().ravel()), "none"),
    ("3-plane cube", "shape (3, 64, 64)", lambda: case(np.stack([galaxy()] * 3)), "none"),
    ("negative rms (scalar)", "rms = -1", lambda: case(rms=-1.0), "none"),
    ("zero rms (scalar)", "rms = 0", lambda: case(rms=0.0), "none"),
    ("segmap of wrong shape", "32x32 segmap for a 64x64 image",
     lambda: case(segmap=np.kron(discs()[::2, ::2], np.ones((1, 1), np.int32))), "none"),
    ("negative labels", "label -3", lambda: case(segmap=np.where(discs() == 2, -3, discs())),
     "none"),
    ("fractional labels", "labels 0.5, 1.0", lambda: case(segmap=discs() * 0.5), "none"),
    ("mask of wrong shape", "63x64 mask", lambda: case(mask=np.zeros((63, 64), bool)), "none"),
    ("rms map of wrong shape", "32x32 rms map", lambda: case(rms=np.ones((32, 32))), "none"),
]  # fmt: skip


# --- adapters: each returns a list of rows (x, y, flux, flagged) --------------------------


def _rms_array(rms, image):
    shape = np.shape(image)
    return np.full(shape, rms, float) if np.ndim(rms) == 0 else rms


def run_morphoscope(c):
    from morphoscope.measure import measure

    cat = measure(c["image"], c["segmap"], rms=c["rms"], mask=c["mask"])
    return [
        (float(r["xc_centroid"]), float(r["yc_centroid"]), float(r["flux"]), int(r["flag"]))
        for r in cat
    ]


def run_photutils(c):
    from photutils.segmentation import SegmentationImage, SourceCatalog

    segm = SegmentationImage(c["segmap"])
    cat = SourceCatalog(c["image"], segm, error=_rms_array(c["rms"], c["image"]), mask=c["mask"])
    return [
        (float(s.xcentroid), float(s.ycentroid), float(s.segment_flux), 0) for s in cat
    ]


def run_sep(c):
    import sep

    objs = sep.extract(
        c["image"], 1.5, err=c["rms"], mask=c["mask"], segmentation_map=c["segmap"]
    )
    if isinstance(objs, tuple):
        objs = objs[0]
    return [(float(o["x"]), float(o["y"]), float(o["flux"]), int(o["flag"])) for o in objs]


def run_statmorph(c):
    import statmorph

    morphs = statmorph.source_morphology(
        c["image"], c["segmap"], weightmap=_rms_array(c["rms"], c["image"]), mask=c["mask"]
    )
    return [
        (float(m.xc_centroid), float(m.yc_centroid), float(m.flux_circ), int(m.flag))
        for m in morphs
    ]


TOOLS = {
    "morphoscope": ("morphoscope", run_morphoscope),
    "photutils": ("photutils", run_photutils),
    "SEP": ("sep", run_sep),
    "statmorph": ("statmorph", run_statmorph),
}


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def _classify_exception(tool: str, package: str, exc: BaseException) -> str:
    if isinstance(exc, _Timeout):
        return "hang"
    if tool == "morphoscope":
        from morphoscope.exceptions import MorphoscopeError

        return "error" if isinstance(exc, MorphoscopeError) else "crash"
    if not isinstance(exc, ValueError | TypeError):
        return "crash"  # AssertionError, IndexError, ZeroDivisionError, ...
    frames = traceback.extract_tb(exc.__traceback__)
    where = frames[-1].filename if frames else ""
    # A check of the tool itself (or of the astronomy library it hands validation to);
    # a ValueError from deep inside numpy/scipy is a crash.
    internal = any(f"/{lib}/" in where for lib in ("numpy", "scipy", "skimage", "sklearn"))
    return "crash" if internal else "error"


def _match(rows, clean):
    """For each clean source, the row nearest to it (None if none within 3 px)."""
    out = []
    for cx, cy, _, _ in clean:
        best = None
        for r in rows:
            if np.isfinite(r[0]) and np.isfinite(r[1]) and np.hypot(r[0] - cx, r[1] - cy) < 3:
                best = r
        out.append(best)
    return out


def judge(rows, clean, expect, warned, clean_flags) -> str:
    if expect == "none":
        if not rows:
            return "ok"
        meaningful = [r for r in rows if np.isfinite(r[2])]
        if not meaningful:
            return "ok"
        if all(r[3] > f for r, f in zip(rows, clean_flags + [0] * len(rows), strict=False)):
            return "flagged"
        return "wrong (warned)" if warned else "silently wrong"
    matched = _match(rows, clean)
    worst = "ok"
    for row, ref, f0 in zip(matched, clean, clean_flags, strict=True):
        good = row is not None and np.isfinite(row[2]) and abs(row[2] / ref[2] - 1) < 0.03
        if good:
            continue
        if row is not None and row[3] > f0:
            worst = "flagged" if worst == "ok" else worst
            continue
        return "wrong (warned)" if warned else "silently wrong"
    return worst


def run_all(selected=None):
    results = {}
    clean = {}
    for tool, (_, func) in TOOLS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = func(case())
        clean[tool] = rows
    signal.signal(signal.SIGALRM, _alarm)
    for name, _, build, expect in CASES:
        if selected and name not in selected:
            continue
        for tool, (package, func) in TOOLS.items():
            c = build()
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                signal.alarm(TIMEOUT)
                try:
                    rows = func(c)
                    status = None
                except BaseException as exc:
                    status = _classify_exception(tool, package, exc)
                    detail = f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}" if str(
                        exc) else type(exc).__name__  # fmt: skip
                finally:
                    signal.alarm(0)
            warned = any(
                not issubclass(w.category, DeprecationWarning | PendingDeprecationWarning)
                for w in caught
            )
            if status is None:
                flags0 = [r[3] for r in clean[tool]]
                status = judge(rows, clean[tool], expect, warned, flags0)
                detail = f"{len(rows)} rows" + (", warned" if warned else "")
            results[name, tool] = (status, detail, time.perf_counter() - t0)
    return results


def markdown(results) -> str:
    tools = list(TOOLS)
    lines = [
        "| bad input | " + " | ".join(tools) + " |",
        "|---|" + "---|" * len(tools),
    ]
    for name, desc, _, _ in CASES:
        if (name, tools[0]) not in results:
            continue
        label = f"{name} ({desc})" if desc else name
        cells = [results[name, t][0] for t in tools]
        cells = [f"**{c}**" if c in ("crash", "silently wrong", "hang") else c for c in cells]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", help="also write the table as Markdown to this file")
    parser.add_argument("--case", action="append", help="run only these cases (by name)")
    args = parser.parse_args(argv)
    import photutils
    import sep
    import statmorph

    import morphoscope

    print(
        f"morphoscope {morphoscope.__version__}, photutils {photutils.__version__}, "
        f"SEP {sep.__version__}, statmorph {statmorph.__version__}"
    )
    t0 = time.perf_counter()
    results = run_all(args.case)
    for (name, tool), (status, detail, seconds) in results.items():
        print(f"{name:<28} {tool:<12} {status:<16} {seconds:6.2f}s  {detail}")
    table = markdown(results)
    print()
    print(table)
    counts = {}
    for tool in TOOLS:
        bad = [s for (n, t), (s, _, _) in results.items() if t == tool]
        counts[tool] = {k: bad.count(k) for k in sorted(set(bad))}
        print(f"{tool:<12} " + ", ".join(f"{k} {v}" for k, v in counts[tool].items()))
    print(f"total time {time.perf_counter() - t0:.1f}s")
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


if __name__ == "__main__":
    main()
