"""SersicNet: Sérsic parameters with uncertainties from galaxy cutouts, in milliseconds.

:class:`SersicNet` is a compact convolutional encoder-decoder trained on GalSim
simulations (:func:`~morphoscope.simulate.simulate_stamps`); weights, their JSON
description, the training configuration (``config.json``) and the model card ship in
this folder. :func:`predict_catalog` cuts the stamps from an image for a segmentation
map or a catalog; :func:`train_sersicnet` (``morphoscope nn train``) retrains it.
"""

from .catalog import predict_catalog
from .metrics import sersic_metrics
from .net import SersicNet
from .train import load_config, train_sersicnet

__all__ = ["SersicNet", "load_config", "predict_catalog", "sersic_metrics", "train_sersicnet"]
