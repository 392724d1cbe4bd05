"""Configuration of a :class:`~morphoscope.pipeline.Pipeline` run: bands, stages, parameters.

A configuration names the bands (image, optional rms or weight map, mask and PSF), the
detection band (or a weighted stack of several bands), the medium band and its
reference bands for the emission-line search, which stages run and the parameters of
each stage. It is built in Python, from a dict, or from a YAML/TOML file::

    bands:
      F200W: {image: f200w.fits, rms: f200w_rms.fits, psf: f200w_psf.fits}
      F335M: {image: f335m.fits, weight: f335m_wht.fits, psf: f335m_psf.fits}
      F356W: {image: f356w.fits, psf: f356w_psf.fits}
    detection: F200W            # or "stack" (all bands) or a list of bands to stack
    emission: {medium: F335M, reference: [F356W], n_sigma: 3.0}
    stages: {pixel: false}      # switch stages off
    segment: {nsigma: 2.0}      # keywords of morphoscope.segment.segment_image
    measure_set: full           # or "fast": first-order measurements, no Sersic fit
    measure: {sersic: true}     # keywords of morphoscope.measure.measure
    sersicnet: {bin_factor: auto}
    classifier: {model: galaxies.zip}

Relative file names in a file are relative to the file's folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..exceptions import InputError, ParameterError
from .run import BandInput

__all__ = [
    "MEASURE_SETS",
    "STAGES",
    "PipelineConfig",
    "load_config",
    "measure_set_options",
    "parse_band",
]

#: Stages of a run, in order; each can be switched off in ``PipelineConfig.stages``
#: (``read`` and ``detect`` always run).
STAGES: tuple[str, ...] = (
    "read",
    "detect",
    "measure",
    "sersicnet",
    "pixel",
    "emission",
    "classifier",
)
_OPTIONAL = STAGES[2:]
_STAGE_PARAMS = ("segment", "measure", "sersicnet", "pixel", "emission", "classifier")

#: Measurement sets (``morphoscope run --measure-set``, ``measure_set`` of a configuration):
#: the keywords of :func:`~morphoscope.measure.measure` each one stands for. ``full``
#: (default): statmorph's non-parametric set and a PSF-convolved Sersic fit per source
#: (tens of milliseconds per galaxy); ``fast``: the vectorised first-order columns only
#: (moments, growth radii, C, A, Gini, M20; about 1 microsecond per segment pixel), for
#: survey-scale mosaics.
MEASURE_SETS: dict[str, dict[str, bool]] = {
    "full": {"nonparametric": True, "sersic": True},
    "fast": {"nonparametric": False, "sersic": False},
}


def measure_set_options(name: str, measure: Mapping | None = None) -> dict:
    """Keywords of :func:`~morphoscope.measure.measure` for a measurement set.

    Parameters
    ----------
    name : {"full", "fast"}
        The set (see :data:`MEASURE_SETS`).
    measure : dict, optional
        Keywords given explicitly (the ``measure:`` section of a configuration); they
        override the set's.

    Examples
    --------
    >>> measure_set_options("fast")
    {'nonparametric': False, 'sersic': False}
    >>> measure_set_options("full", {"n_sigma_outlier": 5.0})
    {'nonparametric': True, 'sersic': True, 'n_sigma_outlier': 5.0}
    """
    if name not in MEASURE_SETS:
        raise ParameterError("measure_set", name, f"one of {list(MEASURE_SETS)}")
    return {**MEASURE_SETS[name], **dict(measure or {})}


def plain_data(value):
    """``value`` as JSON-ready data for the run logs: mappings and sequences converted
    recursively, numpy scalars to Python numbers, paths to strings, other objects to
    ``"<TypeName>"`` (arrays and models are not logged)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [plain_data(v) for v in value]
    return f"<{type(value).__name__}>"


def parse_band(text: str) -> BandInput:
    """Parse the command-line form ``NAME=IMAGE[,rms=FILE|NUMBER][,weight=F][,mask=F][,psf=F]``.

    Examples
    --------
    >>> b = parse_band("F200W=f200w.fits,rms=f200w_rms.fits,psf=psf.fits")
    >>> b.name, str(b.image), str(b.rms), str(b.psf)
    ('F200W', 'f200w.fits', 'f200w_rms.fits', 'psf.fits')
    """
    if "=" not in text:
        raise InputError("--band", f"expected NAME=FILE[,rms=FILE,psf=FILE], got {text!r}")
    name, rest = text.split("=", 1)
    parts = rest.split(",")
    if not name or not parts[0]:
        raise InputError("--band", f"expected NAME=FILE[,rms=FILE,psf=FILE], got {text!r}")
    keys: dict = {"image": parts[0]}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if not sep or key not in ("rms", "weight", "mask", "psf") or not value:
            raise InputError(
                f"--band {name}",
                f"unknown option {part!r}: expected rms=, weight=, mask= or psf=",
            )
        keys[key] = value
    if "rms" in keys:
        try:
            keys["rms"] = float(keys["rms"])
        except ValueError:
            pass
    return BandInput(name=name, **keys)


@dataclass
class PipelineConfig:
    """Everything a run needs except the pixels: bands, stages and their parameters.

    Parameters
    ----------
    bands : list of BandInput
        The bands, bluest first; they must share one pixel grid. May be empty when the
        images are given to :meth:`Pipeline.run` instead.
    detection : str, list of str or None
        The detection band, ``"stack"`` (inverse-variance weighted stack of all bands) or
        a list of bands to stack. Default: the first band.
    emission_medium : str, optional
        Medium band holding the emission line; the emission search runs when it and
        ``emission_reference`` are set.
    emission_reference : list of str
        Reference (continuum) bands of the emission search.
    stages : dict of str to bool
        ``measure``, ``sersicnet``, ``pixel``, ``emission``, ``classifier``: False
        switches a stage off (all on by default; ``emission`` needs the bands above,
        ``classifier`` a model).
    measure_set : {"full", "fast"}
        The measurement set (:data:`MEASURE_SETS`): ``full`` (default), statmorph's set
        and a Sersic fit per source; ``fast``, the first-order columns only, for
        survey-scale mosaics. Keys of ``measure`` override it; the keywords actually
        passed to :func:`~morphoscope.measure.measure` are :attr:`measure_options`.
    segment, measure, sersicnet, pixel, emission, classifier : dict
        Keywords of :func:`~morphoscope.segment.segment_image`,
        :func:`~morphoscope.measure.measure` (detection band),
        :func:`~morphoscope.nn.predict_catalog` (plus ``psf_fwhm`` in pixels when the
        detection band has no PSF), :meth:`~morphoscope.nn.PixelClassifier.predict_proba`
        (plus ``bands``: the bands fed to the network, bluest first, at most 3),
        :func:`~morphoscope.emission.search` and ``classifier`` (``model``: a model file
        of :mod:`morphoscope.classify`).
    report : bool
        Write ``report.html`` with the outputs.

    Examples
    --------
    >>> cfg = PipelineConfig.from_dict({"bands": {"F200W": "f200w.fits"},
    ...                                 "stages": {"pixel": False}})
    >>> cfg.band_names, cfg.enabled("pixel"), cfg.enabled("sersicnet")
    (['F200W'], False, True)
    """

    bands: list[BandInput] = field(default_factory=list)
    detection: str | list[str] | None = None
    emission_medium: str | None = None
    emission_reference: list[str] = field(default_factory=list)
    stages: dict[str, bool] = field(default_factory=dict)
    measure_set: str = "full"
    segment: dict = field(default_factory=dict)
    measure: dict = field(default_factory=dict)
    sersicnet: dict = field(default_factory=dict)
    pixel: dict = field(default_factory=dict)
    emission: dict = field(default_factory=dict)
    classifier: dict = field(default_factory=dict)
    report: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.stages) - set(_OPTIONAL)
        if unknown:
            raise ParameterError(
                "stages", sorted(unknown), f"stage names among {list(_OPTIONAL)}"
            )
        self.emission_reference = list(self.emission_reference or [])
        measure_set_options(self.measure_set)  # validates the name

    @property
    def measure_options(self) -> dict:
        """Keywords of :func:`~morphoscope.measure.measure`: the set's, then ``measure``'s."""
        return measure_set_options(self.measure_set, self.measure)

    @property
    def band_names(self) -> list[str]:
        """Names of the configured bands, in order."""
        return [b.name for b in self.bands]

    def enabled(self, stage: str) -> bool:
        """Whether ``stage`` is switched on (it may still be skipped for lack of inputs)."""
        if stage not in STAGES:
            raise ParameterError("stage", stage, f"one of {list(STAGES)}")
        return bool(self.stages.get(stage, True))

    @classmethod
    def from_dict(cls, data: Mapping, *, base: str | os.PathLike | None = None) -> PipelineConfig:
        """Build a configuration from a dict (the parsed YAML/TOML file).

        ``bands`` maps each name to a file name or to a dict with ``image`` and
        optional ``rms``, ``weight``, ``mask``, ``psf``; relative paths are taken
        relative to ``base``.
        """
        if not isinstance(data, Mapping):
            raise InputError("config", f"expected a mapping at the top level, got {data!r}")
        known = {"bands", "detection", "emission", "stages", "measure_set", "report",
                 *_STAGE_PARAMS}  # fmt: skip
        unknown = set(data) - known
        if unknown:
            raise InputError(
                "config", f"unknown keys {sorted(unknown)}; expected some of {sorted(known)}"
            )
        root = Path(base) if base is not None else None

        def path(value):
            if isinstance(value, str) and root is not None and not Path(value).is_absolute():
                return str(root / value)
            return value

        bands = []
        raw = data.get("bands") or {}
        if not isinstance(raw, Mapping):
            raise InputError("config", "'bands' must map band names to files")
        for name, spec in raw.items():
            if isinstance(spec, str | os.PathLike):
                spec = {"image": spec}
            if not isinstance(spec, Mapping) or "image" not in spec:
                raise InputError(f"band {name}", "expected a file name or {image: FILE, ...}")
            extra = set(spec) - {"image", "rms", "weight", "mask", "psf"}
            if extra:
                raise InputError(f"band {name}", f"unknown keys {sorted(extra)}")
            bands.append(BandInput(name=str(name), **{k: path(v) for k, v in spec.items()}))
        emission = dict(data.get("emission") or {})
        medium = emission.pop("medium", None)
        reference = emission.pop("reference", [])
        if isinstance(reference, str):
            reference = [reference]
        classifier = data.get("classifier") or {}
        if isinstance(classifier, str):
            classifier = {"model": classifier}
        classifier = dict(classifier)
        if "model" in classifier:
            classifier["model"] = path(classifier["model"])
        return cls(
            bands=bands,
            detection=data.get("detection"),
            emission_medium=medium,
            emission_reference=list(reference),
            stages=dict(data.get("stages") or {}),
            measure_set=str(data.get("measure_set") or "full"),
            segment=dict(data.get("segment") or {}),
            measure=dict(data.get("measure") or {}),
            sersicnet=dict(data.get("sersicnet") or {}),
            pixel=dict(data.get("pixel") or {}),
            emission=emission,
            classifier=classifier,
            report=bool(data.get("report", True)),
        )

    def to_dict(self) -> dict:
        """The configuration as plain data (what the run log records)."""
        return {
            "bands": {
                b.name: {
                    k: plain_data(getattr(b, k))
                    for k in ("image", "rms", "weight", "mask", "psf")
                    if getattr(b, k) is not None
                }
                for b in self.bands
            },
            "detection": plain_data(self.detection),
            "emission": {
                "medium": self.emission_medium,
                "reference": list(self.emission_reference),
                **plain_data(self.emission),
            },
            "stages": {k: self.enabled(k) for k in _OPTIONAL},
            **{k: plain_data(getattr(self, k)) for k in _STAGE_PARAMS if k != "emission"},
            "measure_set": self.measure_set,
            "measure_options": plain_data(self.measure_options),
            "report": self.report,
        }


def load_config(path: str | os.PathLike) -> PipelineConfig:
    """Read a YAML (``.yaml``/``.yml``), TOML (``.toml``) or JSON configuration file.

    Raises
    ------
    InputError
        The file is missing, unreadable or not a valid configuration (names the file).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "configuration file not found")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # the parsers' error types differ
        raise InputError(str(p), f"cannot parse the configuration: {exc}") from None
    try:
        return PipelineConfig.from_dict(data or {}, base=p.parent)
    except InputError as exc:
        raise InputError(f"{p} ({exc.source})", exc.problem) from None
