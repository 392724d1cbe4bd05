"""The main job: images in, segmentation map, catalog and report out."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table
from astropy.wcs import WCS

from ..exceptions import InputError, MorphoscopeWarning, ParameterError
from ..io import ImageData, load_image, read_image, write_catalog, write_segmap
from ..measure import add_colours, measure
from ..segment.core import SegmentationResult, segment_image

__all__ = ["BandInput", "PipelineResult", "run_pipeline", "write_outputs"]

#: Per-band columns copied into the multi-band catalog as ``<column>_<band>``.
BAND_COLUMNS = ("flux", "flux_err", "r50", "gini", "concentration", "asymmetry")


@dataclass
class BandInput:
    """One band of a run: an image file (or array) and its optional maps.

    ``image``, ``rms``, ``weight``, ``mask`` and ``psf`` accept a FITS path
    (``"file.fits[EXT]"`` selects an extension) or an array.
    """

    name: str
    image: str | os.PathLike | np.ndarray
    rms: str | os.PathLike | np.ndarray | float | None = None
    weight: str | os.PathLike | np.ndarray | None = None
    mask: str | os.PathLike | np.ndarray | None = None
    psf: str | os.PathLike | np.ndarray | None = None

    def load(self) -> ImageData:
        """Read and validate the band (raises InputError naming the file)."""
        if isinstance(self.image, str | os.PathLike):
            return read_image(
                self.image, rms=self.rms, weight=self.weight, mask=self.mask, psf=self.psf
            )
        return load_image(
            self.image,
            name=self.name,
            rms=self.rms,
            weight=self.weight,
            mask=self.mask,
            psf=self.psf,
        )


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` produced.

    Attributes
    ----------
    catalog : astropy.table.Table
        One row per source: detection-band measurements, per-band fluxes and shapes
        (``flux_<band>``, ...), colours, RA/Dec where there is a WCS.
    segmentation : SegmentationResult
        Segmentation map, background, rms and flags of the detection.
    bands : dict
        The validated :class:`~morphoscope.io.ImageData` of every band.
    detection_band : str
    timings : dict
        Seconds spent in each stage.
    outputs : dict
        Paths of the files written (empty when no ``out_dir`` was given).
    failed : dict
        Stages that failed after the catalog was made (e.g. ``"report"``), with the
        error; the outputs written before them are kept. Per-source failures are
        ``flag`` bits (``MEASURE_FAILED``), not entries here.
    """

    catalog: Table
    segmentation: SegmentationResult
    bands: dict[str, ImageData]
    detection_band: str
    timings: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def segmap(self) -> np.ndarray:
        """The segmentation map (0 = background)."""
        return self.segmentation.segmap

    @property
    def wcs(self) -> WCS | None:
        """WCS of the detection band, if any."""
        return self.bands[self.detection_band].wcs


def _as_bands(inputs) -> list[BandInput]:
    if isinstance(inputs, BandInput):
        return [inputs]
    if isinstance(inputs, str | os.PathLike | np.ndarray):
        name = Path(inputs).stem if isinstance(inputs, str | os.PathLike) else "image"
        return [BandInput(name=name, image=inputs)]
    if isinstance(inputs, Mapping):
        return [
            v if isinstance(v, BandInput) else BandInput(name=str(k), image=v)
            for k, v in inputs.items()
        ]
    bands = list(inputs)
    if not bands or not all(isinstance(b, BandInput) for b in bands):
        raise ParameterError(
            "inputs",
            inputs,
            "a path, an array, a BandInput, a list of BandInput or a dict of band name -> path",
        )
    return bands


def run_pipeline(
    inputs,
    *,
    detection_band: str | None = None,
    segment_options: Mapping | None = None,
    measure_options: Mapping | None = None,
    out_dir: str | os.PathLike | None = None,
    report: bool = True,
    report_extra: Mapping | None = None,
    truth: Table | None = None,
    progress: Callable[[str], None] | None = None,
    tile: int | str | None = "auto",
    overlap: int | None = None,
    scheduler: str | None = None,
    workers: int | str | None = None,
) -> PipelineResult:
    """Run detection, de-blending and measurement on one or several bands.

    Parameters
    ----------
    inputs : path, array, BandInput, list of BandInput or dict
        The image(s). Several bands must share one pixel grid (registered images).
    detection_band : str, optional
        Band to detect on (default: the first).
    segment_options, measure_options : dict, optional
        Keyword arguments for :func:`~morphoscope.segment.segment_image` and
        :func:`~morphoscope.measure.measure`.
    out_dir : path, optional
        Write ``segmap.fits`` (with the input WCS), ``catalog.ecsv``, ``catalog.fits``
        and ``report.html`` there, each atomically.
    report : bool
        Write the HTML report (with ``out_dir``).
    report_extra : dict, optional
        Extra lines for the report's summary table.
    truth : Table, optional
        Simulated truth, drawn on the report.
    progress : callable, optional
        Called with the name of each stage as it starts.
    tile, overlap, scheduler, workers
        Tiled processing in bounded memory, optionally on Dask (see
        :mod:`morphoscope.pipeline.tiling`): ``tile`` is the core size in pixels,
        ``"auto"`` (tiles above 4096 x 4096 pixels) or None; ``scheduler`` the address of
        a ``dask.distributed`` scheduler; ``workers`` the size of a LocalCluster
        (``"auto"``: the machine's cores). The result does not depend on the tiling.

    Returns
    -------
    PipelineResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y, x = np.mgrid[:128, :128]
    >>> img = rng.normal(0, 1, (128, 128)) + 80 * np.exp(-((x - 60) ** 2 + (y - 70) ** 2) / 20)
    >>> res = run_pipeline(img, segment_options={"background": None}, report=False)
    >>> len(res.catalog)
    1
    """
    step = progress or (lambda name: None)
    timings: dict[str, float] = {}
    bands = _as_bands(inputs)
    names = [b.name for b in bands]
    if len(set(names)) != len(names):
        raise InputError("bands", f"band names must be unique, got {names}")
    det_name = detection_band or names[0]
    if det_name not in names:
        raise InputError("detection_band", f"{det_name!r} is not one of the bands {names}")
    if tile is not None or scheduler is not None:
        from .tiling import maybe_run_tiled

        tiled = maybe_run_tiled(
            bands, det_name, tile=tile, overlap=overlap, scheduler=scheduler, workers=workers,
            segment_options=segment_options, measure_options=measure_options,
            out_dir=out_dir, progress=step,
        )
        if tiled is not None:
            return tiled

    t0 = time.perf_counter()
    step("read")
    loaded: dict[str, ImageData] = {}
    for b in bands:
        loaded[b.name] = b.load()
    shape = loaded[det_name].shape
    for img in loaded.values():
        if img.shape != shape:
            raise InputError(
                img.name,
                f"shape {img.shape} differs from the detection band's "
                f"{shape}; bands must be registered on one pixel grid",
            )
    timings["read"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    step("detect")
    det = loaded[det_name]
    seg_opts = dict(segment_options or {})
    seg = segment_image(det.data, rms=det.rms, psf=det.psf, mask=det.bad, **seg_opts)
    timings["detect"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    step("measure")
    meas_opts = dict(measure_options or {})
    failed: dict[str, str] = {}
    catalog = measure(seg.image, seg.segmap, rms=seg.rms, mask=seg.bad, **meas_opts)
    labels = np.asarray(catalog["label"], int)
    if len(catalog):
        catalog["flag"] |= seg.flags[labels]
    catalog.meta["detection_band"] = det_name
    catalog.meta["segment"] = {k: v for k, v in seg.params.items()}
    if len(loaded) > 1:
        _add_bands(catalog, loaded, det_name, seg, meas_opts, failed)
    if det.wcs is not None and len(catalog):
        ra, dec = det.wcs.pixel_to_world_values(catalog["xc_centroid"], catalog["yc_centroid"])
        catalog.add_column(np.asarray(ra) * u.deg, name="ra", index=3)
        catalog.add_column(np.asarray(dec) * u.deg, name="dec", index=4)
    timings["measure"] = time.perf_counter() - t0

    result = PipelineResult(
        catalog=catalog,
        segmentation=seg,
        bands=loaded,
        detection_band=det_name,
        timings=timings,
        failed=failed,
    )
    if out_dir is not None:
        write_outputs(
            result, out_dir, report=report, report_extra=report_extra, truth=truth, progress=step
        )
    return result


def write_outputs(
    result: PipelineResult,
    out_dir: str | os.PathLike,
    *,
    report: bool = True,
    report_extra: Mapping | None = None,
    truth: Table | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Write ``segmap.fits``, ``catalog.ecsv``, ``catalog.fits`` and ``report.html``.

    Every file is written atomically (temporary file, then rename); the paths are also
    stored in ``result.outputs``.
    """
    step = progress or (lambda name: None)
    out = Path(out_dir)
    seg = result.segmentation
    det = result.bands[result.detection_band]
    t0 = time.perf_counter()
    step("write")
    result.outputs["segmap"] = write_segmap(out / "segmap.fits", seg.segmap, wcs=det.wcs)
    result.outputs["catalog"] = write_catalog(out / "catalog.ecsv", result.catalog)
    result.outputs["catalog_fits"] = write_catalog(out / "catalog.fits", result.catalog)
    result.timings["write"] = time.perf_counter() - t0
    if report:
        try:
            _write_report(result, out, report_extra, truth, step)
        except Exception as exc:  # the catalog and segmap are kept; the failure is reported
            result.failed["report"] = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"report stage failed ({exc}); segmap and catalogs were written",
                MorphoscopeWarning,
                stacklevel=2,
            )
    return result.outputs


def _write_report(result, out, report_extra, truth, step) -> None:
    """The report stage of :func:`write_outputs`."""
    seg = result.segmentation
    det = result.bands[result.detection_band]
    t0 = time.perf_counter()
    step("report")
    from ..report import write_report

    names = list(result.bands)
    summary = {
        "detection band": f"{result.detection_band} ({det.name})",
        "bands": ", ".join(names),
        "image size": f"{det.shape[1]} x {det.shape[0]} pixels",
        "sources": str(len(result.catalog)),
        "segmentation method": seg.method,
    }
    summary.update({k: str(v) for k, v in (report_extra or {}).items()})
    result.outputs["report"] = write_report(
        out / "report.html",
        image=seg.image,
        segmap=seg.segmap,
        catalog=result.catalog,
        rms=seg.rms,
        band_images={n: result.bands[n].data for n in names} if len(names) > 1 else None,
        title="morphoscope report",
        summary=summary,
        truth=truth,
        wcs=det.wcs,
    )
    result.timings["report"] = time.perf_counter() - t0


def _add_bands(
    catalog: Table,
    loaded: dict[str, ImageData],
    det_name: str,
    seg: SegmentationResult,
    meas_opts: dict,
    failed: dict[str, str],
) -> None:
    """Measure every band on the detection segmentation; add per-band columns and colours."""
    from ..segment.background import estimate_background

    labels = np.asarray(catalog["label"], int)
    fluxes = {}
    for name, img in loaded.items():
        if name == det_name:
            band_cat = catalog
        else:
            try:
                bkg, bkg_rms = estimate_background(img.data, mask=img.bad | (seg.segmap > 0))
                data = img.data - bkg
                rms = img.rms if img.rms is not None else bkg_rms
                band_cat = measure(
                    data, seg.segmap, rms=rms, mask=img.bad, labels=labels, **meas_opts
                )
            except Exception as exc:  # keep the other bands; NaN columns for this one
                failed[f"measure {name}"] = f"{type(exc).__name__}: {exc}"
                warnings.warn(
                    f"band {name}: measurement failed ({exc}); its columns are NaN",
                    MorphoscopeWarning,
                    stacklevel=3,
                )
                band_cat = Table({c: np.full(len(labels), np.nan) for c in BAND_COLUMNS})
                for c in BAND_COLUMNS:
                    band_cat[c].unit = catalog[c].unit
        for col in BAND_COLUMNS:
            catalog[f"{col}_{name}"] = band_cat[col]
            catalog[f"{col}_{name}"].unit = band_cat[col].unit
        fluxes[name] = np.asarray(band_cat["flux"], float)
    add_colours(catalog, fluxes)
