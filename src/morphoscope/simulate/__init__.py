"""Simulated images with a complete truth, rendered with GalSim.

:func:`simulate_scene` makes multi-band scenes of spheroids, disks, clumpy irregulars
and point sources (with blends and optional extended line emission in one band), with
noise, PSFs, a truth catalog, a truth segmentation map and a truth class map.
:func:`simulate_stamps` makes single-galaxy stamps for training networks.

Examples
--------
>>> from morphoscope.simulate import simulate_scene, CLASS_NAMES
>>> scene = simulate_scene((96, 96), n_sources=3, seed=0)
>>> sorted(scene.images) == sorted(scene.band_names)
True
>>> CLASS_NAMES[4]
'point_source'
"""

from .bands import Band, default_bands
from .scene import Scene, simulate_scene, tan_wcs
from .sources import CLASS_NAMES, EMISSION_KINDS
from .stamps import Stamps, simulate_stamps

__all__ = [
    "CLASS_NAMES",
    "EMISSION_KINDS",
    "Band",
    "Scene",
    "Stamps",
    "default_bands",
    "simulate_scene",
    "simulate_stamps",
    "tan_wcs",
]
