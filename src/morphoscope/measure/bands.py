"""Several bands on one segmentation map: per-band columns and colours.

:func:`measure_bands` (also reached as ``measure({"g": g, "r": r}, segmap, ...)``) measures a
reference band with every column of :func:`~morphoscope.measure.measure`, then each band on
the same segmentation map and labels, keeps the chosen columns of each as ``<column>_<band>``
and adds the colours of consecutive bands (:func:`add_colours`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..exceptions import InputError, ParameterError

__all__ = ["BAND_COLUMNS", "add_colours", "measure_bands"]

#: Columns kept per band by default (those of ``morphoscope run``).
BAND_COLUMNS = ("flux", "flux_err", "r50", "gini", "concentration", "asymmetry")


def add_colours(catalog: Table, fluxes: Mapping[str, np.ndarray]) -> None:
    """Add ``color_<a>_<b> = -2.5 log10(flux_a / flux_b)`` (mag) for consecutive bands.

    Parameters
    ----------
    catalog : astropy.table.Table
        Catalog to extend (in place).
    fluxes : mapping of str to ndarray
        Flux per band, bluest first, one value per catalog row. Non-positive fluxes give NaN.

    Examples
    --------
    >>> from astropy.table import Table
    >>> cat = Table({"label": [1, 2]})
    >>> add_colours(cat, {"g": np.array([1.0, 2.0]), "r": np.array([10.0, -1.0])})
    >>> cat["color_g_r"].round(2).tolist()
    [2.5, nan]
    """
    names = list(fluxes)
    for a, b in itertools.pairwise(names):
        with np.errstate(divide="ignore", invalid="ignore"):
            colour = -2.5 * np.log10(np.asarray(fluxes[a], float) / np.asarray(fluxes[b], float))
        catalog[f"color_{a}_{b}"] = np.where(np.isfinite(colour), colour, np.nan) * u.mag
        catalog[f"color_{a}_{b}"].description = f"-2.5 log10(flux_{a} / flux_{b})"


def _per_band(value, names: list[str], what: str) -> dict:
    """``value`` for every band: a mapping with every band, or one value for all."""
    if isinstance(value, Mapping):
        missing = [n for n in names if n not in value]
        extra = [k for k in value if k not in names]
        if missing or extra:
            raise InputError(
                what,
                f"needs one entry per band {names}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {extra}" if extra else ""),
            )
        return {n: value[n] for n in names}
    return dict.fromkeys(names, value)


def measure_bands(
    images: Mapping[str, np.ndarray],
    segmap,
    *,
    rms=None,
    psf=None,
    mask=None,
    reference: str | None = None,
    band_columns: Sequence[str] = BAND_COLUMNS,
    **kwargs,
) -> Table:
    """Measure several bands on one segmentation map: the reference band in full, per-band
    columns for every band, and colours.

    Parameters
    ----------
    images : mapping of str to 2-D array
        Background-subtracted images of the bands, on one pixel grid, bluest first (the
        order of the colours). Never modified.
    segmap : array_like of int
        Segmentation map shared by all bands.
    rms, psf, mask : array, float, or mapping of band to those, optional
        Per band (a mapping with every band) or one for all bands.
    reference : str, optional
        Band measured with every column of :func:`~morphoscope.measure.measure` under its
        plain names (default: the first band).
    band_columns : sequence of str
        Columns of :func:`~morphoscope.measure.measure` kept for every band as
        ``<column>_<band>`` (with the same definitions as the reference band's: the same
        ``nonparametric`` setting). Sersic columns are measured per band only when asked
        for here.
    **kwargs
        Further keywords of :func:`~morphoscope.measure.measure` (``labels``, ``gain``,
        ``nonparametric``, ``sersic``, ``doublesersic``, ``n_jobs``, ``device``, ...).

    Returns
    -------
    astropy.table.Table
        The reference band's catalog, plus ``<column>_<band>`` for every band and column,
        ``flag_<band>`` (each band's :class:`~morphoscope.flags.Flag` bits) and
        ``color_<a>_<b>`` (mag) for consecutive bands.

    Notes
    -----
    Cost: one :func:`~morphoscope.measure.measure` per band (without the Sersic fits unless a
    Sersic column is requested).

    Examples
    --------
    >>> from morphoscope.simulate import simulate_scene
    >>> scene = simulate_scene(shape=(128, 128), n_sources=5, bands=("F115W", "F200W"),
    ...                        seed=1)  # doctest: +SKIP
    >>> cat = measure_bands(scene.images, scene.segmap, rms=scene.rms,
    ...                     nonparametric=False)  # doctest: +SKIP
    >>> "color_F115W_F200W" in cat.colnames  # doctest: +SKIP
    True
    """
    from .core import measure

    if not isinstance(images, Mapping) or not images:
        raise InputError("images", "expected a non-empty mapping of band name to image")
    names = [str(n) for n in images]
    if reference is None:
        reference = names[0]
    if reference not in names:
        raise ParameterError("reference", reference, f"one of the bands {names}")
    if isinstance(band_columns, str) or not all(isinstance(c, str) for c in band_columns):
        raise ParameterError("band_columns", band_columns, "a sequence of column names")
    rms_b = _per_band(rms, names, "rms")
    psf_b = _per_band(psf, names, "psf")
    mask_b = _per_band(mask, names, "mask")
    images = {str(k): v for k, v in images.items()}
    catalog = measure(
        images[reference],
        segmap,
        rms=rms_b[reference],
        psf=psf_b[reference],
        mask=mask_b[reference],
        **kwargs,
    )
    unknown = [c for c in band_columns if c not in catalog.colnames]
    if unknown:
        raise ParameterError("band_columns", unknown, "columns of the measured catalog")
    band_kwargs = dict(kwargs)
    band_kwargs["labels"] = np.asarray(catalog["label"], int)
    band_kwargs["sersic"] = kwargs.get("sersic", True) and any(
        c.startswith(("sersic_", "doublesersic_")) for c in band_columns
    )
    band_kwargs["doublesersic"] = kwargs.get("doublesersic", False) and any(
        c.startswith("doublesersic_") for c in band_columns
    )
    fluxes = {}
    for name in names:
        if name == reference:
            band = catalog
        else:
            band = measure(
                images[name],
                segmap,
                rms=rms_b[name],
                psf=psf_b[name] if band_kwargs["sersic"] else None,
                mask=mask_b[name],
                **band_kwargs,
            )
        for col in band_columns:
            catalog[f"{col}_{name}"] = band[col]
        catalog[f"flag_{name}"] = band["flag"]
        fluxes[name] = np.asarray(band["flux"], float)
    add_colours(catalog, fluxes)
    return catalog
