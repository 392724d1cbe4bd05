"""``morphoscope emission``: search for extended line emission in a medium band."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..exceptions import InputError

__all__ = ["add_parser", "run"]

_NUMERIC = (
    "n_sigma", "eps", "min_samples", "flux_scale", "smooth_fwhm", "cutout_size",
    "max_cutout_size", "center_radius", "norm_radius", "r_ratio", "excess_fraction", "dq",
    "min_pix_q", "min_snr", "min_excess_snr", "peak_fraction",
)  # fmt: skip


def _number_or_path(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``emission`` sub-command."""
    from ..emission import DEFAULTS

    p = subparsers.add_parser(
        "emission",
        help="find sources with extended emission in a medium band (pixel DBSCAN)",
        description=(
            "Compare each source's pixel cluster in a medium band with its clusters in "
            "reference (continuum) bands and flag candidates with extended line emission. "
            "Writes emission_catalog.ecsv, one PNG per candidate and inspect.html."
        ),
    )
    p.add_argument("--medium", required=True, help="medium-band FITS image (file.fits[EXT] ok)")
    p.add_argument("--reference", required=True, nargs="+", help="reference-band FITS image(s)")
    p.add_argument(
        "--rms-medium", type=_number_or_path, default=None, help="rms map (FITS) or a number"
    )
    p.add_argument(
        "--rms-reference",
        type=_number_or_path,
        nargs="+",
        default=None,
        help="rms map(s) or number(s), one per reference band (or one for all)",
    )
    p.add_argument("--psf-medium", default=None, help="PSF image (FITS) of the medium band")
    p.add_argument(
        "--psf-reference", nargs="+", default=None, help="PSF image(s) of the references"
    )
    p.add_argument(
        "--catalog",
        default=None,
        help="source positions (ECSV/FITS/CSV with x, y or ra, dec columns); detected when omitted",
    )
    p.add_argument("--out", required=True, help="output folder")
    for name in (*_NUMERIC,):
        default = DEFAULTS[name]
        p.add_argument(
            "--" + name.replace("_", "-"),
            type=type(default),
            default=default,
            help=f"(default {default})",
        )
    p.add_argument("--combine", choices=("union", "max"), default=DEFAULTS["combine"])
    p.add_argument(
        "--brightness-guard",
        choices=("matched", "none", "peak_fraction"),
        default=DEFAULTS["brightness_guard"],
    )
    p.add_argument(
        "--equalize-noise",
        action="store_true",
        help="add noise so every band has the same rms relative to its central level",
    )
    p.add_argument(
        "--no-mask-neighbours",
        action="store_true",
        help="do not mask the pixels of other catalog sources",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of --equalize-noise (default 0)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNGs and the HTML page")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _read(path, rms=None, psf=None):
    from ..io import read_image

    return read_image(path, rms=rms, psf=psf)


def _read_catalog(path: str):
    from astropy.table import Table

    if not Path(path).exists():
        raise InputError(path, "file not found")
    try:
        return Table.read(path)
    except Exception as exc:  # astropy raises many kinds for unreadable tables
        raise InputError(path, f"not a readable catalog ({exc})") from None


def run(args: argparse.Namespace) -> int:
    """Handler of ``morphoscope emission``."""
    import numpy as np

    from ..emission import candidate_figure, inspection_page, search
    from ..emission.figures import figure_png
    from ..io import atomic_write, write_catalog

    refs = list(args.reference)
    rms_refs = args.rms_reference
    if rms_refs is not None and len(rms_refs) not in (1, len(refs)):
        raise InputError(
            "--rms-reference", f"{len(rms_refs)} values for {len(refs)} reference images"
        )
    if rms_refs is not None and len(rms_refs) == 1:
        rms_refs = rms_refs * len(refs)
    psf_refs = args.psf_reference
    if psf_refs is not None and len(psf_refs) != len(refs):
        raise InputError(
            "--psf-reference", f"{len(psf_refs)} PSFs for {len(refs)} reference images"
        )

    med = _read(args.medium, rms=args.rms_medium, psf=args.psf_medium)
    ref_data = [
        _read(
            r,
            rms=None if rms_refs is None else rms_refs[i],
            psf=None if psf_refs is None else psf_refs[i],
        )
        for i, r in enumerate(refs)
    ]
    for r in ref_data:
        if r.shape != med.shape:
            raise InputError(r.name, f"shape {r.shape} does not match {med.name} {med.shape}")

    def image(d):
        out = d.data.copy()
        out[d.bad] = np.nan
        return out

    positions = _read_catalog(args.catalog) if args.catalog else None
    params = {name: getattr(args, name) for name in (*_NUMERIC, "combine", "brightness_guard")}
    params["equalize_noise"] = bool(args.equalize_noise)
    params["mask_neighbours"] = not args.no_mask_neighbours
    params["seed"] = args.seed
    psf_m = med.psf if args.psf_medium else None
    psf_r = [r.psf for r in ref_data] if psf_refs else None
    result = search(
        image(med),
        [image(r) for r in ref_data],
        rms_medium=med.rms,
        rms_reference=[r.rms for r in ref_data],
        positions=positions,
        psf_medium=psf_m,
        psf_reference=psf_r,
        wcs=med.wcs,
        keep_cutouts="none" if args.no_figures else "candidates",
        progress=not args.quiet and sys.stderr.isatty(),
        **params,
    )
    table, cutouts = (result, []) if args.no_figures else result
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.meta["medium"] = med.name
    table.meta["reference"] = [r.name for r in ref_data]
    write_catalog(out / "emission_catalog.ecsv", table)
    if not args.no_figures:
        med_name = Path(med.name.split("[")[0]).stem
        ref_names = [Path(r.name.split("[")[0]).stem for r in ref_data]
        fig_dir = out / "candidates"
        for c in cutouts:
            fig = candidate_figure(c, medium_name=med_name, reference_names=ref_names)
            with atomic_write(fig_dir / f"emission_{c.id}.png") as tmp:
                tmp.write_bytes(figure_png(fig, dpi=100))
        inspection_page(
            cutouts,
            out / "inspect.html",
            title=f"Emission candidates: {med_name} vs {', '.join(ref_names)}",
            medium_name=med_name,
            reference_names=ref_names,
        )
    n_cand = int(np.count_nonzero(table["candidate"]))
    if not args.quiet:
        print(
            f"{len(table)} sources, {n_cand} candidates -> {os.fspath(out)}",
            file=sys.stderr,
        )
    return 0
