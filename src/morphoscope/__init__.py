"""morphoscope: galaxy morphology catalogs from astronomical images.

The public API is a handful of plain functions on numpy arrays and astropy
Tables, one subpackage per stage of the pipeline::

    io        read and validate FITS images, rms/weight maps, masks, PSFs; write outputs
    simulate  GalSim scenes and stamps with their truth (catalog, segmentation, class map)
    segment   background, detection and de-blending -> integer segmentation map
    measure   per-source morphology -> astropy Table
    pipeline  the chain behind ``morphoscope run`` and ``morphoscope demo``
    report    the self-contained HTML report

Examples
--------
>>> import morphoscope as ms
>>> scene = ms.simulate.simulate_scene(shape=(256, 256), n_sources=12, seed=1)  # doctest: +SKIP
>>> segmap = ms.segment(scene.images["F200W"], rms=scene.rms["F200W"])          # doctest: +SKIP
>>> catalog = ms.measure(scene.images["F200W"], segmap, rms=scene.rms["F200W"])  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import metadata as _metadata

from . import exceptions, flags, io
from .exceptions import InputError, MorphoscopeError, MorphoscopeWarning, ParameterError
from .flags import Flag
from .io import read_image
from .measure import measure
from .segment import segment

try:
    __version__ = _metadata.version("morphoscope")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "Flag",
    "InputError",
    "MorphoscopeError",
    "MorphoscopeWarning",
    "ParameterError",
    "__version__",
    "exceptions",
    "flags",
    "io",
    "measure",
    "read_image",
    "segment",
]


def __getattr__(name: str):
    # Heavier subpackages (GalSim, matplotlib) load on first use.
    if name in {"Pipeline", "PipelineConfig"}:
        from . import pipeline

        return getattr(pipeline, name)
    if name in {"simulate", "pipeline", "report"}:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'morphoscope' has no attribute {name!r}")
