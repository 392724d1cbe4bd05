"""``morphoscope run``: detection, de-blending and measurement of FITS images."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..exceptions import InputError
from ._outdir import check_output_dir
from ._progress import StageProgress
from ._summary import print_summary, report_failures

__all__ = ["add_parser", "handle"]


def _band(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE, got {text!r}")
    name, path = text.split("=", 1)
    if not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE, got {text!r}")
    return name, path


def add_parser(subparsers) -> None:
    """Register ``morphoscope run``."""
    p = subparsers.add_parser(
        "run",
        help="segment and measure FITS images",
        description="Detect, de-blend and measure the sources of a FITS image (or several "
        "registered bands); write segmap.fits, catalog.ecsv, catalog.fits and report.html.",
    )
    p.add_argument("image", nargs="?", help="FITS image (file.fits or file.fits[EXT])")
    p.add_argument(
        "--band",
        action="append",
        type=_band,
        default=[],
        metavar="NAME=FILE",
        help="a band of a multi-band run (repeat); the first is the detection band "
        "unless --detection-band says otherwise",
    )
    p.add_argument("--rms", help="rms (1-sigma noise) map, or a number")
    p.add_argument("--weight", help="inverse-variance weight map (instead of --rms)")
    p.add_argument("--mask", help="mask image (non-zero = ignore)")
    p.add_argument("--psf", help="PSF image on the same pixel grid")
    p.add_argument("--detection-band", help="band to detect on")
    p.add_argument(
        "--method",
        choices=["saddle", "zhu"],
        default="saddle",
        help="segmentation method (default: saddle)",
    )
    p.add_argument("--nsigma", type=float, help="detection threshold in sigma")
    p.add_argument("--npixels", type=int, default=5, help="minimum source area in pixels")
    p.add_argument(
        "--no-background", action="store_true", help="the image is already background-subtracted"
    )
    p.add_argument("--no-report", action="store_true", help="do not write report.html")
    p.add_argument("--out", default="morphoscope_output", help="output folder")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into --out even if it already holds files (they are replaced)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handle)


def _band_name(path: str) -> str:
    """``"dir/f200w_drz.fits.gz[SCI]"`` -> ``"f200w_drz"``."""
    name = Path(path.split("[")[0]).name
    for suffix in (".gz", ".fz", ".bz2", ".fits", ".fit", ".fts"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or "image"


def _number_or_path(text: str | None):
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def handle(args: argparse.Namespace) -> int:
    """Run the pipeline as the arguments say; print the summary."""
    from ..pipeline import BandInput, run_pipeline

    if args.image and args.band:
        raise InputError("arguments", "give either IMAGE or --band NAME=FILE options, not both")
    if not args.image and not args.band:
        raise InputError("arguments", "no input image: give IMAGE or --band NAME=FILE")
    if args.image:
        bands = [
            BandInput(
                name=Path(args.image.split("[")[0]).stem,
                image=args.image,
                rms=_number_or_path(args.rms),
                weight=args.weight,
                mask=args.mask,
                psf=args.psf,
            )
        ]
    else:
        bands = [BandInput(name=n, image=f) for n, f in args.band]
        if args.rms or args.weight or args.psf or args.mask:
            raise InputError(
                "arguments",
                "--rms/--weight/--mask/--psf apply to a single IMAGE; "
                "per-band maps are not supported on the command line yet",
            )
    check_output_dir(args.out, args.overwrite)
    seg_opts: dict = {"method": args.method, "npixels": args.npixels}
    if args.nsigma is not None:
        seg_opts["nsigma"] = args.nsigma
    if args.no_background:
        seg_opts["background"] = None
    t0 = time.perf_counter()
    stages = ["read", "detect", "measure", "write"] + ([] if args.no_report else ["report"])
    with StageProgress(stages, disable=args.quiet) as progress:
        result = run_pipeline(
            bands,
            detection_band=args.detection_band,
            segment_options=seg_opts,
            out_dir=args.out,
            report=not args.no_report,
            progress=progress,
        )
    print_summary(result, elapsed=time.perf_counter() - t0)
    return report_failures(result)
