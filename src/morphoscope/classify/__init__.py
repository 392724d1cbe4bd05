"""Feature-based classification and regression of catalogs (tier 1 of morphoscope).

Train scikit-learn models on the columns of any catalog (the output of
:func:`morphoscope.measure`, or an ECSV/FITS/CSV table from elsewhere), with stratified
k-fold cross-validation, optional nested hyper-parameter search, calibrated
probabilities, permutation feature importance, and a model file that runs no code when
loaded.

>>> from morphoscope import classify
>>> model = classify.train("catalog.ecsv", "class", model="rf")        # doctest: +SKIP
>>> print(model.summary())                                             # doctest: +SKIP
>>> model.save("galaxies.zip")                                         # doctest: +SKIP
>>> predictions = classify.load("galaxies.zip").predict("new.ecsv")    # doctest: +SKIP
"""

from .core import (
    CLASSIFICATION_METRICS,
    DEFAULT_FOLDS,
    REGRESSION_METRICS,
    TrainedModel,
    auto_folds,
    auto_repeats,
    train,
)
from .estimators import CLASSIFIERS, DEFAULTS, GRIDS, REGRESSORS, build_estimator
from .modelfile import load
from .plots import confusion_figure, importance_figure, regression_figure
from .tables import CLASS_ORDER, DEFAULT_BAD_FLAGS, default_features, feature_matrix, read_table

__all__ = [
    "CLASSIFICATION_METRICS",
    "CLASSIFIERS",
    "CLASS_ORDER",
    "DEFAULTS",
    "DEFAULT_BAD_FLAGS",
    "DEFAULT_FOLDS",
    "GRIDS",
    "REGRESSION_METRICS",
    "REGRESSORS",
    "TrainedModel",
    "auto_folds",
    "auto_repeats",
    "build_estimator",
    "confusion_figure",
    "default_features",
    "feature_matrix",
    "importance_figure",
    "load",
    "read_table",
    "regression_figure",
    "train",
]
