"""``morphoscope run``: every tier of morphoscope on one image or several registered bands."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..exceptions import InputError
from ._outdir import check_output_dir
from ._progress import StageProgress
from ._summary import print_summary, report_failures

__all__ = ["add_parser", "handle"]


def _band(text: str):
    from ..pipeline.config import parse_band

    try:
        return parse_band(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(subparsers) -> None:
    """Register ``morphoscope run``."""
    p = subparsers.add_parser(
        "run",
        help="run every tier on FITS images: detection, measurement, SersicNet, "
        "pixel classes, emission search, classifier",
        description="Detect, de-blend and measure the sources of a FITS image or of several "
        "registered bands, then estimate Sersic parameters with SersicNet, classify pixels "
        "and sources with the PixelClassifier, search a medium band for extended line "
        "emission and apply a trained classifier; write catalog.ecsv/.fits, segmap.fits, "
        "classmap.fits, sources.reg, log.json and report.html to --out.",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="YAML/TOML configuration: bands, detection band or stack, emission bands, "
        "stage switches and per-stage parameters (see docs/pipeline.md); options given "
        "on the command line override it",
    )
    p.add_argument("image", nargs="?", help="FITS image (file.fits or file.fits[EXT])")
    p.add_argument(
        "--band",
        action="append",
        type=_band,
        default=[],
        metavar="NAME=FILE[,rms=F][,weight=F][,mask=F][,psf=F]",
        help="a band of a multi-band run with its optional maps (repeat, bluest first); "
        "the first is the detection band unless --detection-band says otherwise",
    )
    p.add_argument("--rms", help="rms (1-sigma noise) map, or a number")
    p.add_argument("--weight", help="inverse-variance weight map (instead of --rms)")
    p.add_argument("--mask", help="mask image (non-zero = ignore)")
    p.add_argument("--psf", help="PSF image on the same pixel grid")
    p.add_argument(
        "--detection-band",
        help="band to detect on, or 'stack' (inverse-variance weighted stack of all bands) "
        "or BAND+BAND+... (stack of these)",
    )
    p.add_argument("--medium", metavar="BAND", help="medium band of the emission-line search")
    p.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="BAND",
        help="reference (continuum) band of the emission search (repeat)",
    )
    p.add_argument("--classifier", metavar="MODEL", help="model file of 'morphoscope classify "
                   "train' to apply to the catalog")  # fmt: skip
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="STAGE",
        help="switch a stage off: measure, sersicnet, pixel, emission, classifier "
        "(repeat or comma-separate)",
    )
    p.add_argument("--psf-fwhm", type=float, metavar="PIXELS",
                   help="PSF FWHM for SersicNet when the detection band has no PSF")  # fmt: skip
    p.add_argument(
        "--method",
        choices=["saddle", "zhu", "sam"],
        default=None,
        help="segmentation method (default: saddle)",
    )
    p.add_argument("--nsigma", type=float, help="detection threshold in sigma")
    p.add_argument("--npixels", type=int, help="minimum source area in pixels (default 5)")
    p.add_argument(
        "--measure-set",
        choices=["full", "fast"],
        default=None,
        help="measurements per source: 'full' (default) statmorph's set and a Sersic fit "
        "(tens of ms per galaxy); 'fast' the first-order columns only (moments, radii, C, A, "
        "Gini, M20; ~1 us per pixel), for survey-scale mosaics",
    )
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
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into --out even if it already holds files (they are replaced)",
    )
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


def _config(args: argparse.Namespace):
    """The PipelineConfig of the arguments: the --config file, then the options."""
    from ..pipeline import BandInput, PipelineConfig, load_config

    cfg = load_config(args.config) if args.config else PipelineConfig()
    if args.image and args.band:
        raise InputError("arguments", "give either IMAGE or --band NAME=FILE options, not both")
    if args.image:
        cfg.bands = [
            BandInput(
                name=_band_name(args.image),
                image=args.image,
                rms=_number_or_path(args.rms),
                weight=args.weight,
                mask=args.mask,
                psf=args.psf,
            )
        ]
    elif args.band:
        if args.rms or args.weight or args.psf or args.mask:
            raise InputError(
                "arguments",
                "--rms/--weight/--mask/--psf apply to a single IMAGE; give a band's maps as "
                "--band NAME=FILE,rms=FILE,psf=FILE",
            )
        cfg.bands = list(args.band)
    if not cfg.bands:
        raise InputError("arguments", "no input image: give IMAGE, --band NAME=FILE or --config")
    if args.detection_band:
        d = args.detection_band
        cfg.detection = d.split("+") if "+" in d else d
    if args.medium:
        cfg.emission_medium = args.medium
    if args.reference:
        cfg.emission_reference = list(args.reference)
    if cfg.emission_medium and not cfg.emission_reference:
        raise InputError("--medium", "the emission search needs --reference BAND as well")
    if args.classifier:
        cfg.classifier["model"] = args.classifier
    for item in args.skip:
        for stage in filter(None, item.split(",")):
            if stage not in ("measure", "sersicnet", "pixel", "emission", "classifier"):
                raise InputError("--skip", f"unknown stage {stage!r}")
            cfg.stages[stage] = False
    if args.psf_fwhm is not None:
        cfg.sersicnet["psf_fwhm"] = args.psf_fwhm
    if args.method is not None:
        cfg.segment["method"] = args.method
    if args.npixels is not None:
        cfg.segment["npixels"] = args.npixels
    if args.nsigma is not None:
        cfg.segment["nsigma"] = args.nsigma
    if args.measure_set is not None:
        cfg.measure_set = args.measure_set
    if args.no_background:
        cfg.segment["background"] = None
    if args.no_report:
        cfg.report = False
    return cfg


def print_result(result, *, elapsed: float, extra: dict[str, str] | None = None) -> None:
    """Print bands, sources, per-stage status and flags, and the output files of a run."""
    cat = result.catalog
    shape = next(iter(result.bands.values())).shape
    lines = [
        "",
        "morphoscope summary",
        "-------------------",
        f"bands             : {', '.join(result.bands)}  ({shape[1]} x {shape[0]} pixels)",
        f"detection         : {result.detection} ({result.segmentation.method})",
        f"sources           : {len(cat)}",
    ]
    for name, log in result.log.items():
        col = f"flag_{name}"
        n_flag = int(np.count_nonzero(np.asarray(cat[col]))) if col in cat.colnames else 0
        flagged = f", {n_flag} flagged" if n_flag else ""
        msg = f" - {log.message}" if log.message else ""
        lines.append(f"{name:<18}: {log.status} {log.seconds:.1f}s{flagged}{msg}")
    if len(cat) and "pixel_class" in cat.colnames:
        names, counts = np.unique(np.asarray(cat["pixel_class"]).astype(str), return_counts=True)
        text = ", ".join(f"{a or 'none'} {b}" for a, b in zip(names, counts, strict=True))
        lines.append(f"{'pixel classes':<18}: {text}")
    for key, value in (extra or {}).items():
        lines.append(f"{key:<18}: {value}")
    lines.append(f"{'time':<18}: {elapsed:.1f}s")
    for key, path in result.outputs.items():
        lines.append(f"{'output ' + key:<18}: {path}")
    print("\n".join(lines))


def handle(args: argparse.Namespace) -> int:
    """Run the pipeline as the arguments say; print the summary."""
    from ..pipeline import Pipeline
    from ..pipeline.tiling import maybe_run_tiled

    cfg = _config(args)
    check_output_dir(args.out, args.overwrite)
    t0 = time.perf_counter()
    det = cfg.detection or cfg.bands[0].name
    names = [b.name for b in cfg.bands]
    for d in [det] if isinstance(det, str) else list(det):
        if d != "stack" and d not in names:
            raise InputError(
                "--detection-band", f"no band named {d!r} (bands: {', '.join(names)})"
            )
    if isinstance(det, str) and det != "stack" and (args.tile is not None or args.scheduler):
        # Very large single images: detection and measurement in tiles (the other tiers
        # need the whole field in memory and are not run).
        stages = ["read", "detect", "measure", "write"]
        with StageProgress(stages, disable=args.quiet) as progress:
            tiled = maybe_run_tiled(
                cfg.bands, det, tile=args.tile, overlap=args.overlap,
                scheduler=args.scheduler, workers=args.workers,
                segment_options=cfg.segment, measure_options=cfg.measure_options,
                out_dir=args.out, progress=progress, config=cfg.to_dict(),
            )  # fmt: skip
        if tiled is not None:
            print_summary(tiled, elapsed=time.perf_counter() - t0, extra={
                "tiled run": "detection and measurement only (SersicNet, pixel classes, "
                "emission and classifier need an untiled run: --tile 0)"})  # fmt: skip
            return 0
    pipe = Pipeline(cfg)
    stages = ["read", "detect", "measure", "sersicnet", "pixel", "emission", "classifier",
              "write"] + (["report"] if cfg.report else [])  # fmt: skip
    with StageProgress(stages, disable=args.quiet) as progress:
        result = pipe.run(out=args.out, progress=progress)
    print_result(result, elapsed=time.perf_counter() - t0)
    return report_failures(result)
