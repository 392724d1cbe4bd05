"""Actions of ``morphoscope nn`` for the sersic network: ``train`` and ``predict``."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["add_actions"]


def add_actions(sub) -> None:
    """Register this network's actions on the ``morphoscope nn`` sub-parsers."""
    p = sub.add_parser(
        "train",
        help="train SersicNet on simulated stamps",
        description=(
            "Simulate single-Sersic stamps (cached in a temporary folder), train SersicNet, "
            "calibrate its uncertainties and write sersicnet.pt, sersicnet.json, "
            "model_card.md/json and loss_curve.png. Without --config the shipped "
            "configuration (the one of the shipped weights) is used."
        ),
    )
    p.add_argument("--config", help="YAML or JSON file overriding keys of the shipped config")
    p.add_argument("--out", default="sersicnet", help="output folder (default: ./sersicnet)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_train)

    q = sub.add_parser(
        "predict",
        help="Sersic parameters of every source of an image with SersicNet",
        description=(
            "Cut a stamp around every segment (or catalog position) and predict Sersic "
            "parameters with uncertainties; writes an ECSV/FITS catalog."
        ),
    )
    q.add_argument("image", help="FITS image (background-subtracted)")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--segmap", help="FITS segmentation map (0 = background)")
    src.add_argument("--catalog", help="catalog with x, y columns in 0-based pixels")
    q.add_argument("--psf-fwhm", type=float, required=True, help="PSF FWHM in pixels")
    q.add_argument("--rms", help="noise: a number or a FITS rms map (default: estimated)")
    q.add_argument("--weights", help="SersicNet weights (.pt; default: the shipped ones)")
    q.add_argument("--bin", default="auto", help="binning factor or 'auto' (default)")
    q.add_argument("--out", default="sersicnet.ecsv", help="output catalog (.ecsv or .fits)")
    q.set_defaults(func=_predict)


def _train(args) -> int:
    from ..nn.sersic import load_config, train_sersicnet

    config = load_config(args.config)

    def log(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    card = train_sersicnet(config, args.out, log=log)
    m = card["metrics_snr_gt_30"]["summary"]
    print(
        f"wrote {Path(args.out) / 'sersicnet.pt'} "
        f"({card['training']['wall_seconds'] / 60:.1f} min); test S/N>30: "
        f"n scatter {m['n']['scatter']:.3f} dex, r_e scatter {m['r_e']['scatter']:.3f} dex, "
        f"q scatter {m['q']['scatter']:.3f}"
    )
    return 0


def _predict(args) -> int:
    import numpy as np

    from ..exceptions import InputError, ParameterError
    from ..io import read_fits_array, read_image
    from ..io.write import write_catalog
    from ..nn.sersic import SersicNet, predict_catalog

    image = read_image(args.image)
    data = getattr(image, "data", image)
    if args.segmap:
        seg = read_fits_array(args.segmap)[0]
        if seg.ndim != 2 or seg.dtype.kind not in "iuf":
            raise InputError(args.segmap, "expected a 2-D integer segmentation map")
        sources = seg.astype(np.int64)
    else:
        from astropy.table import Table

        try:
            sources = Table.read(args.catalog)
        except Exception as exc:  # astropy raises many types for unreadable tables
            raise InputError(args.catalog, f"cannot read the catalog ({exc})") from None
    rms = None
    if args.rms is not None:
        try:
            rms = float(args.rms)
        except ValueError:
            rms = read_fits_array(args.rms)[0].astype(np.float64)
    if args.bin == "auto":
        binf: int | str = "auto"
    elif args.bin.isdigit():
        binf = int(args.bin)
    else:
        raise ParameterError("--bin", args.bin, "a positive integer or 'auto'")
    net = SersicNet.load(args.weights) if args.weights else None
    table = predict_catalog(data, sources, psf_fwhm=args.psf_fwhm, rms=rms, net=net,
                            mask=getattr(image, "bad", None), bin_factor=binf)  # fmt: skip
    write_catalog(args.out, table)
    print(f"{len(table)} sources -> {args.out}", file=sys.stdout)
    return 0
