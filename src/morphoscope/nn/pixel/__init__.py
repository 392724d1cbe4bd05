"""PixelClassifier: per-pixel morphological classes from a U-Net.

Every pixel of a 1-to-N-band image gets the probabilities of ``background, spheroid,
disk, irregular, point_source``; sources get a class by flux-weighted aggregation over
their segments. :func:`train` fits the network on simulated scenes.
"""

from .classifier import (
    CLASS_NAMES,
    PixelClassifier,
    aggregate_segments,
    blend_window,
    noise_sigma,
    prepare_input,
)
from .model import UNet

__all__ = [
    "CLASS_NAMES",
    "PixelClassifier",
    "UNet",
    "aggregate_segments",
    "blend_window",
    "noise_sigma",
    "prepare_input",
]
