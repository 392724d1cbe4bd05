"""``morphoscope run``: detection, de-blending and measurement of FITS images."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..exceptions import InputError
from ._progress import StageProgress
from ._summary import print_summary

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
    p.add_argument(
        "--tile",
        type=_tile,
        default="auto",
        metavar="SIZE",
        help="process in tiles of SIZE x SIZE pixels, in bounded memory, with the same result "
        "as untiled ('auto', the default: tiles of 2048 above 4096 x 4096 pixels; 0: never)",
    )
    p.add_argument(
        "--overlap", type=int, help="overlap of the tiles in pixels (default 128)"
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the tiles on this dask.distributed scheduler (tcp://host:8786 or a "
        "scheduler file); without it a tiled run uses a LocalCluster (see --workers)",
    )
    p.add_argument(
        "--workers",
        type=_workers,
        default="auto",
        metavar="N",
        help="LocalCluster workers for a tiled run ('auto': one per core; 1: this process)",
    )
    p.add_argument("--no-report", action="store_true", help="do not write report.html")
    p.add_argument("--out", default="morphoscope_output", help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handle)


def _tile(text: str) -> int | str | None:
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of pixels or 'auto', got {text!r}"
        ) from None
    if value == 0:
        return None
    if value < 16:
        raise argparse.ArgumentTypeError(f"tiles must be at least 16 pixels, got {value}")
    return value


def _workers(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of workers or 'auto', got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 worker, got {value}")
    return value


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
            tile=args.tile,
            overlap=args.overlap,
            scheduler=args.scheduler,
            workers=args.workers,
        )
    print_summary(result, elapsed=time.perf_counter() - t0)
    return 0
