"""Deep-learning models (PyTorch): parameters and classes straight from pixels.

Two networks, each in its own subpackage with its training loop, shipped weights and
model card:

``sersic``
    :class:`SersicNet`, an encoder-decoder that predicts Sérsic parameters with
    uncertainties from a cutout and reconstructs the noiseless galaxy;
    :func:`predict_catalog` cuts the stamps from an image and a segmentation map.
``pixel``
    :class:`PixelClassifier`, a U-Net that gives every pixel the probabilities of
    ``background, spheroid, disk, irregular, point_source``.

Weights ship inside the package; nothing is downloaded. PyTorch is imported when a
model is first used, so ``import morphoscope`` stays light.
"""

from __future__ import annotations

import importlib

__all__ = ["PixelClassifier", "SersicNet", "predict_catalog"]

_LAZY = {
    "SersicNet": "sersic",
    "predict_catalog": "sersic",
    "PixelClassifier": "pixel",
}


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'morphoscope.nn' has no attribute {name!r}")
