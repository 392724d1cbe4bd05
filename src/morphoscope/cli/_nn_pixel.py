"""Actions of ``morphoscope nn`` for the pixel network.

::

    morphoscope nn train-pixel [--config CONFIG] [--out WEIGHTS] [--cache DIR]
    morphoscope nn classify-pixels IMAGE... --out DIR [--segmap SEGMAP] [--weights WEIGHTS]
                                   [--noise SIGMA...] [--tile 512] [--overlap 128]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_actions", "handle_classify_pixels", "handle_train_pixel"]

#: Placeholder for a missing band on the command line.
MISSING = "-"


def add_actions(sub) -> None:
    """Register this network's actions on the ``morphoscope nn`` sub-parsers."""
    t = sub.add_parser(
        "train-pixel",
        help="train the per-pixel classifier (PixelClassifier) on simulated scenes",
        description="Simulate scenes (cached in a temporary folder), train the U-Net, "
        "evaluate it on independent scenes and write the weights and model card "
        "(WEIGHTS with .json and .md beside it).",
    )
    t.add_argument(
        "--config",
        default=None,
        help="YAML configuration (any subset of the shipped config.yaml; default: the "
        "configuration of the shipped weights)",
    )
    t.add_argument(
        "--out",
        default=None,
        help="weights file (default: 'output' of the configuration, else pixel_classifier.pt)",
    )
    t.add_argument("--cache", default=None, help="folder of the simulated-scene cache")
    t.add_argument("--quiet", action="store_true", help="no progress lines")
    t.set_defaults(func=handle_train_pixel)

    c = sub.add_parser(
        "classify-pixels",
        help="per-pixel class probabilities (and per-object classes) of an image",
        description="Apply the PixelClassifier to 1-N FITS images of one field (bands in "
        f"the model's order, bluest first; '{MISSING}' for a missing band). Writes "
        "pixel_proba.fits (probability cube: background, spheroid, disk, irregular, "
        "point_source), pixel_class.fits (most probable class) and, with --segmap, "
        "pixel_classes.ecsv (flux-weighted class probabilities of every segment).",
    )
    c.add_argument("images", nargs="+", metavar="IMAGE", help="FITS image per band (or '-')")
    c.add_argument("--out", required=True, help="output folder")
    c.add_argument("--segmap", default=None, help="segmentation map FITS (0 = background)")
    c.add_argument("--weights", default=None, help="weights file (default: shipped weights)")
    c.add_argument(
        "--noise",
        nargs="+",
        type=float,
        default=None,
        metavar="SIGMA",
        help="sky noise per band (default: estimated from each image)",
    )
    c.add_argument("--tile", type=int, default=512, help="tile side in pixels (default: 512)")
    c.add_argument(
        "--overlap", type=int, default=None, help="tile overlap (default: a quarter of the tile)"
    )
    c.set_defaults(func=handle_classify_pixels)


def handle_train_pixel(args: argparse.Namespace) -> int:
    """Train and write the weights and model card."""
    from ..nn.pixel.train import load_config, train

    cfg = load_config(args.config)
    out = args.out or cfg.get("output") or "pixel_classifier.pt"
    clf = train(cfg, out=out, cache=args.cache, log=None if args.quiet else print)
    m = clf.meta.get("metrics", {}).get("all_bands")
    if m:
        print(json.dumps({k: m[k] for k in ("pixel_accuracy", "source_pixel_accuracy",
                                            "object_accuracy", "n_objects")}))  # fmt: skip
    print(f"wrote {out} and {Path(out).with_suffix('.md')}")
    return 0


def handle_classify_pixels(args: argparse.Namespace) -> int:
    """Classify every pixel; write the probability cube, class map and catalog."""
    import numpy as np
    from astropy.io import fits

    from ..io.fits import _celestial_wcs, read_fits_array
    from ..io.write import atomic_write, write_catalog, write_fits_image
    from ..nn.pixel import CLASS_NAMES, PixelClassifier

    clf = PixelClassifier.load(args.weights) if args.weights else PixelClassifier.pretrained()
    images, header, wcs = [], None, None
    for path in args.images:
        if path == MISSING:
            images.append(None)
            continue
        data, hdr, _ = read_fits_array(path)
        images.append(data)
        if header is None:
            header = hdr
    if header is not None:
        wcs = _celestial_wcs(header)
    noise = None
    if args.noise:
        noise = []
        it = iter(args.noise)
        for img in images:
            noise.append(None if img is None else next(it, None))
    proba = clf.predict_proba(images, noise=noise, tile=args.tile, overlap=args.overlap)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hdr = fits.Header()
    for i, name in enumerate(CLASS_NAMES):
        hdr[f"CLASS{i}"] = name
    if wcs is not None:
        hdr.update(wcs.to_header())
    with atomic_write(out / "pixel_proba.fits") as tmp:
        fits.PrimaryHDU(proba, header=hdr).writeto(tmp, overwrite=True)
    write_fits_image(
        out / "pixel_class.fits", np.argmax(proba, axis=0).astype(np.uint8), wcs=wcs,
        header=fits.Header([(f"CLASS{i}", n) for i, n in enumerate(CLASS_NAMES)]),
        extname="CLASSMAP",
    )  # fmt: skip
    written = ["pixel_proba.fits", "pixel_class.fits"]
    if args.segmap:
        seg, _, _ = read_fits_array(args.segmap)
        table = clf.classify_segments(images, np.asarray(seg).astype(np.int64), noise=noise,
                                      proba=proba)  # fmt: skip
        write_catalog(out / "pixel_classes.ecsv", table)
        written.append(f"pixel_classes.ecsv ({len(table)} sources)")
    print(f"wrote {', '.join(written)} to {out}")
    return 0
