"""``Pipeline(config).run(images) -> Result``: every tier of morphoscope in one run.

Stages, in order (each one's time and status go to the run log):

``read``
    read and validate every band (image, rms/weight, mask, PSF), check that they share
    one pixel grid, that the emission and classifier bands exist and that the classifier
    model loads. Any whole-input problem raises :class:`~morphoscope.InputError` naming
    the band, before anything is computed or written.
``detect``
    background, rms, detection and de-blending on the detection band or an
    inverse-variance weighted stack of bands (:func:`~morphoscope.segment.segment_image`).
``measure``
    statmorph-class measurements on the detection image
    (:func:`~morphoscope.measure.measure`), fluxes and sizes in every band on the same
    segmentation, colours of consecutive bands.
``sersicnet``
    Sérsic parameters of every source from :class:`~morphoscope.nn.SersicNet`
    (columns ``nn_sersic_*``).
``pixel``
    per-pixel classes from :class:`~morphoscope.nn.PixelClassifier`, the class map and
    the class of every source (``pixel_class``, ``pixel_p_<class>``).
``emission``
    the extended emission-line search (:func:`~morphoscope.emission.search`) of the
    medium band against its reference bands (``emission_*`` columns).
``classifier``
    predictions of a user's model (:mod:`morphoscope.classify`) on the catalog.

A stage that fails for one source flags that source in the stage's flag column
(``flag_segment``, ``flag_measure``, ``flag_sersicnet``, ``flag_pixel``,
``flag_emission``, ``flag_classifier``) and leaves NaN; a stage that fails as a whole
flags every source with ``MEASURE_FAILED`` in its column, warns and is logged as
``failed``. Nothing is written by :meth:`Pipeline.run` unless ``out`` is given;
:meth:`Result.write` writes the outputs, each file atomically.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..exceptions import InputError, MorphoscopeWarning, ParameterError
from ..flags import Flag
from ..io import ImageData
from ..measure import add_colours
from ..segment.detect import psf_fwhm  # re-exported: the FWHM used for SersicNet
from .config import STAGES, PipelineConfig, load_config
from .run import BandInput, _as_bands

__all__ = ["Pipeline", "Result", "psf_fwhm"]

_FAILED = int(Flag.MEASURE_FAILED)
#: Per-band columns (fast first-order measurement) copied as ``<column>_<band>``.
_BAND_COLUMNS = ("flux", "flux_err", "r50", "sn_per_pixel")


@dataclass
class StageLog:
    """Status, duration and message of one stage."""

    status: str = "pending"
    seconds: float = 0.0
    message: str = ""


@dataclass
class Result:
    """Everything a :class:`Pipeline` run produced.

    Attributes
    ----------
    catalog : astropy.table.Table
        One row per source with every tier's columns and per-stage flag columns.
    segmentation : SegmentationResult
        Segmentation map, background-subtracted detection image, rms, bad pixels.
    classmap : numpy.ndarray or None
        Pixel classes (uint8 ids of :data:`~morphoscope.nn.pixel.CLASS_NAMES`,
        0 = background) inside the segments; None when the pixel stage did not run.
    bands : dict of str to ImageData
        The validated bands.
    detection : str
        The detection band, or ``"stack(a+b+...)"``.
    emission : astropy.table.Table or None
        The emission search's own table (one row per source).
    emission_cutouts : list
        Cutouts of the emission candidates (for the figures and the inspection page).
    log : dict of str to StageLog
        Per stage: ``ok``, ``skipped``, ``off`` or ``failed``, seconds and message.
    config : PipelineConfig
    outputs : dict of str to Path
        Files written by :meth:`write`.
    """

    catalog: Table
    segmentation: object
    classmap: np.ndarray | None
    bands: dict[str, ImageData]
    detection: str
    config: PipelineConfig
    emission: Table | None = None
    emission_cutouts: list = field(default_factory=list)
    log: dict[str, StageLog] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    psf_fwhm: float | None = None
    images: dict[str, np.ndarray] = field(default_factory=dict)
    rms: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def segmap(self) -> np.ndarray:
        """The segmentation map (0 = background)."""
        return self.segmentation.segmap

    @property
    def wcs(self):
        """WCS of the first band that has one (all bands share the pixel grid)."""
        return next((b.wcs for b in self.bands.values() if b.wcs is not None), None)

    @property
    def timings(self) -> dict[str, float]:
        """Seconds per stage."""
        return {k: v.seconds for k, v in self.log.items()}

    def log_dict(self) -> dict:
        """The run log as plain data (what ``log.json`` holds)."""
        from .. import __version__

        return {
            "morphoscope": __version__,
            "detection": self.detection,
            "n_sources": len(self.catalog),
            "stages": {
                k: {"status": v.status, "seconds": round(v.seconds, 3), "message": v.message}
                for k, v in self.log.items()
            },
            "config": self.config.to_dict(),
        }

    def write(
        self,
        out_dir: str | os.PathLike,
        *,
        report: bool | None = None,
        truth: Table | None = None,
        report_extra: Mapping | None = None,
        title: str = "morphoscope report",
        accuracy_html: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> dict[str, Path]:
        """Write the outputs to ``out_dir``, each file atomically.

        ``catalog.ecsv``, ``catalog.fits``, ``segmap.fits`` and ``classmap.fits`` (with
        the input WCS), ``sources.reg`` (DS9 regions), ``emission_inspect.html`` (when
        there are emission candidates), ``log.json`` and ``report.html``.
        """
        from ..io import write_catalog, write_fits_image, write_segmap
        from ..io.write import atomic_write

        step = progress or (lambda name: None)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        step("write")
        wcs = self.wcs
        o = self.outputs
        o["catalog"] = write_catalog(out / "catalog.ecsv", self.catalog)
        o["catalog_fits"] = write_catalog(out / "catalog.fits", self.catalog)
        o["segmap"] = write_segmap(out / "segmap.fits", self.segmap, wcs=wcs)
        if self.classmap is not None:
            from astropy.io import fits

            from ..nn.pixel.classifier import CLASS_NAMES

            hdr = fits.Header()
            hdr["BUNIT"] = ("class", "PixelClassifier class id, 0 = background")
            for i, name in enumerate(CLASS_NAMES):
                hdr[f"CLASS{i}"] = name
            o["classmap"] = write_fits_image(
                out / "classmap.fits", self.classmap, wcs=wcs, header=hdr, extname="CLASSMAP"
            )
        with atomic_write(out / "sources.reg") as tmp:
            tmp.write_text(region_file(self.catalog), encoding="utf-8")
        o["regions"] = out / "sources.reg"
        if self.emission_cutouts:
            from ..emission import inspection_page

            cfg = self.config
            inspection_page(
                self.emission_cutouts,
                out / "emission_inspect.html",
                medium_name=cfg.emission_medium or "medium",
                reference_names=list(cfg.emission_reference),
            )
            o["emission_inspect"] = out / "emission_inspect.html"
        self.log["write"] = StageLog("ok", time.perf_counter() - t0)
        do_report = self.config.report if report is None else report
        if do_report:
            t0 = time.perf_counter()
            step("report")
            from ..report import tiers

            try:
                o["report"] = tiers.write_pipeline_report(
                    self, out / "report.html", truth=truth, extra=report_extra, title=title,
                    accuracy_html=accuracy_html,
                )
            except Exception as exc:  # the catalog and maps are written: keep them
                msg = f"{type(exc).__name__}: {exc}"
                warnings.warn(f"report stage failed ({msg}); the other outputs are kept",
                              MorphoscopeWarning, stacklevel=2)  # fmt: skip
                self.log["report"] = StageLog("failed", time.perf_counter() - t0, msg)
            else:
                self.log["report"] = StageLog("ok", time.perf_counter() - t0)
        with atomic_write(out / "log.json") as tmp:
            tmp.write_text(json.dumps(self.log_dict(), indent=2), encoding="utf-8")
        o["log"] = out / "log.json"
        return o


def region_file(catalog: Table) -> str:
    """DS9 regions (image coordinates) of the catalog: an ellipse per source.

    Colours follow ``pixel_class`` when present; emission candidates get a green circle.
    """
    colours = {
        "spheroid": "red",
        "disk": "cyan",
        "irregular": "yellow",
        "point_source": "magenta",
    }
    lines = ["# Region file format: DS9", "# morphoscope sources (image coordinates, 1-based)",
             "image"]  # fmt: skip
    cols = catalog.colnames
    for row in catalog:
        x = float(row["xc_centroid"]) + 1.0
        y = float(row["yc_centroid"]) + 1.0
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        a = float(row["semimajor_sigma"]) if "semimajor_sigma" in cols else 2.0
        b = float(row["semiminor_sigma"]) if "semiminor_sigma" in cols else 2.0
        th = float(row["orientation_centroid"]) if "orientation_centroid" in cols else 0.0
        a, b = (2.0 * a, 2.0 * b) if np.isfinite(a) and np.isfinite(b) else (3.0, 3.0)
        th = np.degrees(th) if np.isfinite(th) else 0.0
        cls = str(row["pixel_class"]) if "pixel_class" in cols else ""
        colour = colours.get(cls, "green")
        text = f"{int(row['label'])}" + (f" {cls}" if cls else "")
        lines.append(
            f"ellipse({x:.2f},{y:.2f},{a:.2f},{b:.2f},{th:.1f}) # color={colour} text={{{text}}}"
        )
        if "emission_candidate" in cols and bool(row["emission_candidate"]):
            lines.append(
                f"circle({x:.2f},{y:.2f},{max(a, 4.0) * 1.5:.2f}) # color=green width=2 "
                "text={line}"
            )
    return "\n".join(lines) + "\n"


class Pipeline:
    """Images of one or several bands in, a catalog of every tier out.

    Parameters
    ----------
    config : PipelineConfig, dict, path or None
        The configuration (see :mod:`morphoscope.pipeline.config`); a dict as in a
        configuration file, or the path of a YAML/TOML/JSON file.
    **overrides
        Fields of :class:`PipelineConfig` that replace the configuration's.

    Examples
    --------
    >>> import morphoscope as ms
    >>> scene = ms.simulate.simulate_scene((128, 128), n_sources=4, seed=1)
    >>> pipe = ms.Pipeline({"stages": {"pixel": False, "sersicnet": False},
    ...                     "measure": {"sersic": False}})
    >>> res = pipe.run(scene)
    >>> len(res.catalog) > 0, "flag_measure" in res.catalog.colnames
    (True, True)
    """

    def __init__(self, config: PipelineConfig | Mapping | str | os.PathLike | None = None,
                 **overrides) -> None:  # fmt: skip
        if config is None:
            cfg = PipelineConfig()
        elif isinstance(config, PipelineConfig):
            cfg = config
        elif isinstance(config, Mapping):
            cfg = PipelineConfig.from_dict(config)
        elif isinstance(config, str | os.PathLike):
            cfg = load_config(config)
        else:
            raise ParameterError("config", config, "a PipelineConfig, a dict or a file path")
        for k, v in overrides.items():
            if not hasattr(cfg, k):
                raise ParameterError(k, v, "a field of PipelineConfig")
            setattr(cfg, k, v)
        self.config = cfg

    # ------------------------------------------------------------------ inputs
    def _bands(self, images) -> list[BandInput]:
        if images is None:
            if not self.config.bands:
                raise InputError("images", "no bands: give images or bands in the configuration")
            return list(self.config.bands)
        if hasattr(images, "images") and hasattr(images, "psfs"):  # a simulated Scene
            return [
                BandInput(name=n, image=images.images[n], rms=images.rms[n], psf=images.psfs[n])
                for n in images.images
            ]
        return _as_bands(images)

    def _read(self, bands: list[BandInput]) -> tuple[dict[str, ImageData], object]:
        names = [b.name for b in bands]
        if len(set(names)) != len(names):
            raise InputError("bands", f"band names must be unique, got {names}")
        loaded: dict[str, ImageData] = {}
        for b in bands:
            try:
                loaded[b.name] = b.load()
            except InputError as exc:
                if len(bands) == 1:  # the file name says it all
                    raise
                raise InputError(f"band {b.name}", f"{exc.source}: {exc.problem}") from None
            except Exception as exc:  # unreadable file of any kind
                raise InputError(f"band {b.name}", f"cannot read the band: {exc}") from None
        first = names[0]
        shape = loaded[first].shape
        for name, img in loaded.items():
            if img.shape != shape:
                raise InputError(
                    f"band {name}",
                    f"shape {img.shape} differs from band {first}'s {shape}; the bands must "
                    "be registered on one pixel grid",
                )
        cfg = self.config
        det = cfg.detection
        if isinstance(det, str) and det != "stack" and det not in loaded:
            raise InputError("detection", f"{det!r} is not one of the bands {names}")
        if isinstance(det, list | tuple):
            for n in det:
                if n not in loaded:
                    raise InputError("detection", f"{n!r} is not one of the bands {names}")
        if cfg.emission_medium is not None and cfg.enabled("emission"):
            for n in [cfg.emission_medium, *cfg.emission_reference]:
                if n not in loaded:
                    raise InputError(
                        "emission", f"band {n!r} is not one of the bands {names}"
                    )
            if not cfg.emission_reference:
                raise InputError("emission", "a medium band needs at least one reference band")
        for n in cfg.pixel.get("bands", []) or []:
            if n not in loaded:
                raise InputError("pixel.bands", f"band {n!r} is not one of the bands {names}")
        model = None
        path = cfg.classifier.get("model")
        if path is not None and cfg.enabled("classifier"):
            from ..classify import load

            if not Path(path).is_file():
                raise InputError(str(path), "classifier model file not found")
            try:
                model = load(path)
            except InputError:
                raise
            except Exception as exc:
                raise InputError(str(path), f"cannot load the classifier model: {exc}") from None
        return loaded, model

    # ------------------------------------------------------------------ run
    def run(
        self,
        images=None,
        *,
        out: str | os.PathLike | None = None,
        truth: Table | None = None,
        progress: Callable[[str], None] | None = None,
        report_extra: Mapping | None = None,
    ) -> Result:
        """Run every enabled stage; write the outputs to ``out`` when given.

        Parameters
        ----------
        images : optional
            The bands, when the configuration names none (or to replace them): a
            simulated :class:`~morphoscope.simulate.Scene`, a dict of band name to
            array / file / :class:`BandInput`, a list of :class:`BandInput`, or one
            array or file.
        out : path, optional
            Output folder (see :meth:`Result.write`).
        truth : Table, optional
            Simulated truth drawn in the report.
        progress : callable, optional
            Called with each stage's name as it starts.
        report_extra : dict, optional
            Extra summary lines for the report.

        Returns
        -------
        Result

        Raises
        ------
        InputError
            A band is unreadable, a PSF file is missing, the shapes differ, a band named
            in the configuration does not exist, the classifier model cannot be loaded
            or lacks catalog columns -- before anything is written.
        """
        step = progress or (lambda name: None)
        cfg = self.config
        log: dict[str, StageLog] = {s: StageLog() for s in STAGES}

        t0 = time.perf_counter()
        step("read")
        loaded, model = self._read(self._bands(images))
        scene_wcs = getattr(images, "wcs", None)
        for img in loaded.values():
            if img.wcs is None and scene_wcs is not None:
                img.wcs = scene_wcs
        log["read"] = StageLog("ok", time.perf_counter() - t0, f"{len(loaded)} bands")

        t0 = time.perf_counter()
        step("detect")
        seg, det_name, det_psf = self._detect(loaded)
        log["detect"] = StageLog(
            "ok", time.perf_counter() - t0, f"{int(seg.segmap.max())} segments on {det_name}"
        )

        t0 = time.perf_counter()
        step("measure")
        catalog, images, rms = self._measure(loaded, seg, det_psf)
        log["measure"] = StageLog(
            "ok" if cfg.enabled("measure") else "off", time.perf_counter() - t0,
            self._measure_note if cfg.enabled("measure")
            else "first-order positions and fluxes only",
        )  # fmt: skip
        if loaded[next(iter(loaded))].wcs is not None and len(catalog):
            wcs = next(b.wcs for b in loaded.values() if b.wcs is not None)
            ra, dec = wcs.pixel_to_world_values(catalog["xc_centroid"], catalog["yc_centroid"])
            catalog.add_column(np.asarray(ra, float) * u.deg, name="ra", index=3)
            catalog.add_column(np.asarray(dec, float) * u.deg, name="dec", index=4)

        fwhm = cfg.sersicnet.get("psf_fwhm")
        if fwhm is None and det_psf is not None:
            fwhm = psf_fwhm(det_psf)
        result = Result(
            catalog=catalog, segmentation=seg, classmap=None, bands=loaded,
            detection=det_name, config=cfg, log=log, psf_fwhm=fwhm, images=images, rms=rms,
        )  # fmt: skip
        self._stage(result, "sersicnet", step, self._sersicnet)
        self._stage(result, "pixel", step, self._pixel)
        self._stage(result, "emission", step, self._emission)
        self._stage(result, "classifier", step, lambda r: self._classifier(r, model))
        flag_cols = [c for c in catalog.colnames if c.startswith("flag_") and c != "flag_statmorph"
                     and c != "flag_sersic"]  # fmt: skip
        for c in flag_cols:
            catalog[c].description = f"flag bits (morphoscope.Flag) of the {c[5:]} stage"
        if out is not None:
            result.write(out, truth=truth, report_extra=report_extra, progress=step)
        return result

    def _stage(self, result: Result, name: str, step, func) -> None:
        cfg = self.config
        cat = result.catalog
        col = f"flag_{name}"
        cat[col] = np.zeros(len(cat), np.int32)
        if not cfg.enabled(name):
            result.log[name] = StageLog("off", 0.0, "switched off")
            return
        step(name)
        t0 = time.perf_counter()
        try:
            message = func(result)
        except InputError:
            raise
        except Exception as exc:  # one stage failing as a whole must not lose the others
            cat[col] = np.full(len(cat), _FAILED, np.int32)
            result.log[name] = StageLog(
                "failed", time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"
            )
            warnings.warn(
                f"the {name} stage failed ({type(exc).__name__}: {exc}); its sources are "
                f"flagged MEASURE_FAILED in {col}",
                MorphoscopeWarning,
                stacklevel=3,
            )
            return
        if isinstance(message, tuple):  # ("skipped", why)
            result.log[name] = StageLog(message[0], time.perf_counter() - t0, message[1])
        else:
            result.log[name] = StageLog("ok", time.perf_counter() - t0, message or "")

    # ------------------------------------------------------------------ stages
    def _detect(self, loaded: dict[str, ImageData]):
        from ..segment.core import segment_image

        cfg = self.config
        det = cfg.detection
        names = list(loaded)
        opts = dict(cfg.segment)
        if det is None or (isinstance(det, str) and det != "stack"):
            name = det or names[0]
            img = loaded[name]
            seg = segment_image(img.data, rms=img.rms, psf=img.psf, mask=img.bad, **opts)
            return seg, name, img.psf
        stack_names = names if det == "stack" else list(det)
        data, rms, bad, psf = weighted_stack([loaded[n] for n in stack_names])
        seg = segment_image(data, rms=rms, psf=psf, mask=bad, **opts)
        return seg, f"stack({'+'.join(stack_names)})", psf

    def _measure(self, loaded, seg, det_psf):
        from ..measure import measure
        from ..segment.background import estimate_background

        cfg = self.config
        opts = cfg.measure_options
        if not cfg.enabled("measure"):
            opts.update(nonparametric=False, sersic=False, asymmetry=False)
        if det_psf is not None and opts.get("sersic", True):
            opts.setdefault("psf", det_psf)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            catalog = measure(seg.image, seg.segmap, rms=seg.rms, mask=seg.bad, **opts)
        # Per-source problems are in the flag columns; keep their summary for the log.
        self._measure_note = "; ".join(
            str(w.message).split(":")[0]
            for w in caught
            if issubclass(w.category, MorphoscopeWarning)
        )
        labels = np.asarray(catalog["label"], int)
        seg_flags = seg.flags[labels] if len(catalog) else np.zeros(0, int)
        catalog["flag_segment"] = np.asarray(seg_flags, np.int32)
        catalog["flag_measure"] = np.asarray(catalog["flag"], np.int32)
        catalog["flag"] = np.asarray(catalog["flag"]) | seg_flags
        catalog.meta["detection"] = self.config.detection or next(iter(loaded))
        images: dict[str, np.ndarray] = {}
        rms_maps: dict[str, np.ndarray] = {}
        fluxes = {}
        for name, img in loaded.items():
            bkg, bkg_rms = estimate_background(img.data, mask=img.bad | (seg.segmap > 0))
            data = np.where(img.bad, np.nan, img.data - bkg)
            rms = img.rms if img.rms is not None else np.broadcast_to(bkg_rms, img.shape)
            images[name], rms_maps[name] = data, np.asarray(rms, float)
            if not cfg.enabled("measure") or len(loaded) == 1:
                continue
            band = measure(data, seg.segmap, rms=rms, mask=img.bad, labels=labels,
                           nonparametric=False, sersic=False, asymmetry=False)  # fmt: skip
            for col in _BAND_COLUMNS:
                if col in band.colnames:
                    catalog[f"{col}_{name}"] = band[col]
            catalog[f"flag_measure_{name}"] = np.asarray(band["flag"], np.int32)
            fluxes[name] = np.asarray(band["flux"], float)
        add_colours(catalog, fluxes)
        return catalog, images, rms_maps

    def _sersicnet(self, result: Result):
        from ..nn import predict_catalog

        cat = result.catalog
        if result.psf_fwhm is None:
            return ("skipped", "no PSF: give the detection band a PSF or sersicnet.psf_fwhm")
        if not len(cat):
            return ("skipped", "no sources")
        opts = {k: v for k, v in self.config.sersicnet.items() if k != "psf_fwhm"}
        seg = result.segmentation
        t = predict_catalog(seg.image, seg.segmap, psf_fwhm=float(result.psf_fwhm),
                            rms=seg.rms, mask=seg.bad, **opts)  # fmt: skip
        rows = _rows_for(cat, t["id"])
        for name in t.colnames:
            if name in ("id", "x", "y", "flag", "rms", "psf_fwhm"):
                continue
            out = f"nn_{name}" if name.startswith("sersic_") else f"nn_sersic_{name}"
            vals = np.full(len(cat), np.nan)
            ok = rows >= 0
            vals[rows[ok]] = np.asarray(t[name], float)[ok]
            cat[out] = vals
            if t[name].unit is not None:
                cat[out].unit = t[name].unit
        flags = np.full(len(cat), _FAILED, np.int32)
        flags[rows[rows >= 0]] = np.asarray(t["flag"], np.int32)[rows >= 0]
        bad = ~np.isfinite(np.asarray(cat["nn_sersic_n"], float))
        cat["flag_sersicnet"] = flags | np.where(bad, _FAILED, 0).astype(np.int32)
        return f"{len(t)} sources, PSF FWHM {result.psf_fwhm:.2f} px"

    def _pixel(self, result: Result):
        from ..nn import PixelClassifier
        from ..nn.pixel.classifier import CLASS_NAMES

        cat = result.catalog
        opts = dict(self.config.pixel)
        clf = PixelClassifier.pretrained() if "model" not in opts else PixelClassifier.load(
            opts.pop("model"))  # fmt: skip
        names = list(opts.pop("bands", None) or list(result.images)[: clf.n_bands])
        if len(names) > clf.n_bands:
            raise InputError("pixel.bands", f"the model takes at most {clf.n_bands} bands")
        imgs = [result.images[n] for n in names]
        noise = [float(np.nanmedian(result.rms[n])) for n in names]
        proba = clf.predict_proba(imgs, noise=noise, **opts)
        seg = result.segmap
        result.classmap = np.where(seg > 0, np.argmax(proba, axis=0), 0).astype(np.uint8)
        t = clf.classify_segments(imgs, seg, noise=noise, proba=proba)
        rows = _rows_for(cat, t["id"])
        ok = rows >= 0
        cls = np.full(len(cat), "", dtype="U12")
        cls[rows[ok]] = np.asarray(t["class"])[ok]
        cat["pixel_class"] = cls
        cat["pixel_class"].description = "PixelClassifier class of the segment"
        for name in ("class_prob", *(f"p_{c}" for c in CLASS_NAMES)):
            vals = np.full(len(cat), np.nan)
            vals[rows[ok]] = np.asarray(t[name], float)[ok]
            cat[f"pixel_{name}"] = vals
        flags = np.full(len(cat), _FAILED, np.int32)
        flags[rows[ok]] = 0
        flags[~np.isfinite(np.asarray(cat["pixel_class_prob"]))] |= _FAILED
        cat["flag_pixel"] = flags
        return f"bands {', '.join(names)}"

    def _emission(self, result: Result):
        from ..emission import search

        cfg = self.config
        cat = result.catalog
        if cfg.emission_medium is None:
            return ("skipped", "no medium band configured (emission: medium, reference)")
        if not len(cat):
            return ("skipped", "no sources")
        med, refs = cfg.emission_medium, list(cfg.emission_reference)
        psfs = [result.bands[n].psf for n in [med, *refs]]
        have_psf = all(p is not None for p in psfs)
        positions = Table({"id": np.asarray(cat["label"]), "x": np.asarray(cat["xc_centroid"]),
                           "y": np.asarray(cat["yc_centroid"])})  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            t, cutouts = search(
                result.images[med],
                [result.images[n] for n in refs],
                rms_medium=result.rms[med],
                rms_reference=[result.rms[n] for n in refs],
                positions=positions,
                psf_medium=psfs[0] if have_psf else None,
                psf_reference=psfs[1:] if have_psf else None,
                segmap=result.segmap,
                keep_cutouts="candidates",
                **cfg.emission,
            )
        result.emission = t
        result.emission_cutouts = list(cutouts)
        rows = _rows_for(cat, t["id"])
        ok = rows >= 0
        cand = np.zeros(len(cat), bool)
        cand[rows[ok]] = np.asarray(t["candidate"], bool)[ok]
        cat["emission_candidate"] = cand
        reason = np.full(len(cat), "", dtype="U24")
        reason[rows[ok]] = np.asarray(t["reason"]).astype(str)[ok]
        cat["emission_reason"] = reason
        for name in ("R_medium", "R_reference", "S_excess", "snr_excess", "q_medium",
                     "q_reference"):  # fmt: skip
            vals = np.full(len(cat), np.nan)
            vals[rows[ok]] = np.asarray(t[name], float)[ok]
            cat[f"emission_{name}"] = vals
            if getattr(t[name], "unit", None) is not None:
                cat[f"emission_{name}"].unit = t[name].unit
        flags = np.full(len(cat), _FAILED, np.int32)
        flags[rows[ok]] = np.asarray(t["flag"], np.int32)[ok]
        cat["flag_emission"] = flags
        return f"{int(cand.sum())} candidates in {med} against {', '.join(refs)}"

    def _classifier(self, result: Result, model):
        cat = result.catalog
        if model is None:
            return ("skipped", "no classifier model given (--classifier MODEL)")
        path = self.config.classifier.get("model")
        try:
            pred = model.predict(cat, name="catalog")
        except InputError as exc:
            raise InputError(f"classifier {path}", exc.problem) from None
        new = [c for c in pred.colnames if c not in cat.colnames or c.startswith(("pred_",
                                                                                   "prob_"))]
        for c in new:
            cat[c] = pred[c]
        flags = np.zeros(len(cat), np.int32)
        for c in new:
            if np.asarray(pred[c]).dtype.kind == "f":
                flags |= np.where(np.isfinite(np.asarray(pred[c], float)), 0, _FAILED).astype(
                    np.int32)  # fmt: skip
        cat["flag_classifier"] = flags
        return f"{model.model} {model.task} of {model.label!r}: columns {', '.join(new)}"


def _rows_for(catalog: Table, ids) -> np.ndarray:
    """Catalog row of each id (by ``label``), -1 where absent."""
    labels = np.asarray(catalog["label"], int)
    lookup = {int(v): i for i, v in enumerate(labels)}
    return np.array([lookup.get(int(i), -1) for i in np.asarray(ids)], dtype=int)


def weighted_stack(bands: list[ImageData]):
    """Inverse-variance weighted mean of registered bands, its rms, bad pixels and PSF.

    Each band is weighted by ``1 / median(rms)**2`` (a scalar, so that the stack is a
    plain linear combination and its PSF is the weighted mean of the bands' PSFs; the
    PSF of the broadest band is used when the PSFs differ in size). Bands without an
    rms map get the MAD of their pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from morphoscope.io import load_image
    >>> rng = np.random.default_rng(0)
    >>> a = load_image(rng.normal(1, 1, (8, 8)), rms=1.0)
    >>> b = load_image(rng.normal(3, 2, (8, 8)), rms=2.0)
    >>> data, rms, bad, psf = weighted_stack([a, b])      # weights 1 and 1/4
    >>> round(float(rms[0, 0]), 3)                         # sqrt(1 + 4 / 16) / 1.25
    0.894
    """
    from ..segment.background import estimate_background

    ws, datas, var = [], [], []
    bad = np.zeros(bands[0].shape, bool)
    for b in bands:
        if b.rms is not None:
            r = np.asarray(b.rms, float)
        else:
            _, r = estimate_background(b.data, mask=b.bad)
            r = np.broadcast_to(np.asarray(r, float), b.shape)
        med = float(np.nanmedian(r[np.isfinite(r) & (r > 0)])) if np.any(r > 0) else 1.0
        w = 1.0 / med**2
        ws.append(w)
        datas.append(np.where(b.bad, 0.0, b.data))
        var.append(np.where(np.isfinite(r), r, med) ** 2)
        bad |= b.bad
    wsum = float(np.sum(ws))
    data = sum(w * d for w, d in zip(ws, datas, strict=True)) / wsum
    rms = np.sqrt(sum(w * w * v for w, v in zip(ws, var, strict=True))) / wsum
    psfs = [b.psf for b in bands if b.psf is not None]
    psf = None
    if len(psfs) == len(bands):
        psf = max(psfs, key=psf_fwhm)
    return data, rms, bad, psf
