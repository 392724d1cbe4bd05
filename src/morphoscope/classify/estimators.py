"""The scikit-learn pipelines behind each model name, and their search grids.

Every pipeline starts from the raw feature matrix, NaN included:

========= =================================================================================
model     classification pipeline (regression pipeline)
========= =================================================================================
``rf``    median imputation -> ``RandomForestClassifier`` (``RandomForestRegressor``),
          200 trees
``svm``   median imputation -> standard scaling -> RBF ``SVC`` inside a
          ``CalibratedClassifierCV`` (3-fold; Platt sigmoid for two classes, temperature
          scaling for more) (RBF ``SVR`` on a standardised target)
``gp``    median imputation -> standard scaling -> ``GaussianProcessClassifier``
          (``GaussianProcessRegressor`` with a white-noise term), constant x RBF kernel
``gb``    ``HistGradientBoostingClassifier`` (``...Regressor``): NaN handled natively;
          leaves of at least min(20, n_rows / 10) rows (scikit-learn's fixed 20 cannot
          split small catalogs)
``logreg`` median imputation -> standard scaling -> ``LogisticRegression`` (classification)
``linear`` median imputation -> standard scaling -> ``Ridge`` (regression)
========= =================================================================================

Hyper-parameters are given by short names (``C``, ``gamma``, ``max_features``, ...); the
grids searched by ``train(..., search=True)`` are :data:`GRIDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern, WhiteKernel
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import ParameterGrid
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR

from ..exceptions import ParameterError

__all__ = ["CLASSIFIERS", "DEFAULTS", "GRIDS", "REGRESSORS", "build_estimator", "grid"]

#: Model names for ``task="classification"``.
CLASSIFIERS: tuple[str, ...] = ("rf", "svm", "gp", "gb", "logreg")
#: Model names for ``task="regression"``.
REGRESSORS: tuple[str, ...] = ("rf", "svm", "gp", "gb", "linear")

#: Default hyper-parameters, by task and model.
DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "classification": {
        "rf": {"n_estimators": 200, "max_features": "sqrt", "min_samples_leaf": 1},
        "svm": {"C": 1.0, "gamma": "scale"},
        "gp": {"kernel": "rbf"},
        "gb": {
            "learning_rate": 0.1,
            "max_leaf_nodes": 31,
            "max_iter": 100,
            "min_samples_leaf": None,
        },
        "logreg": {"C": 1.0},
    },
    "regression": {
        "rf": {"n_estimators": 200, "max_features": 1.0, "min_samples_leaf": 1},
        "svm": {"C": 1.0, "gamma": "scale", "epsilon": 0.1},
        "gp": {"kernel": "rbf"},
        "gb": {
            "learning_rate": 0.1,
            "max_leaf_nodes": 31,
            "max_iter": 100,
            "min_samples_leaf": None,
        },
        "linear": {"alpha": 1.0},
    },
}

#: Grids of ``search=True``: every combination is tried by an inner 3-fold CV.
GRIDS: dict[str, dict[str, dict[str, list]]] = {
    "classification": {
        "rf": {"max_features": ["sqrt", 0.5, 1.0], "min_samples_leaf": [1, 3]},
        "svm": {"C": [0.1, 1.0, 10.0, 100.0], "gamma": ["scale", 0.01, 0.1, 1.0]},
        "gp": {"kernel": ["rbf", "matern"]},
        "gb": {"learning_rate": [0.03, 0.1, 0.3], "max_leaf_nodes": [7, 31]},
        "logreg": {"C": [0.01, 0.1, 1.0, 10.0, 100.0]},
    },
    "regression": {
        "rf": {"max_features": [0.33, 0.66, 1.0], "min_samples_leaf": [1, 3]},
        "svm": {"C": [0.1, 1.0, 10.0, 100.0], "gamma": ["scale", 0.01, 0.1, 1.0]},
        "gp": {"kernel": ["rbf", "matern"]},
        "gb": {"learning_rate": [0.03, 0.1, 0.3], "max_leaf_nodes": [7, 31]},
        "linear": {"alpha": [0.01, 0.1, 1.0, 10.0, 100.0]},
    },
}


def check_model(model: str, task: str) -> None:
    """Raise ParameterError unless ``model`` exists for ``task``."""
    names = CLASSIFIERS if task == "classification" else REGRESSORS
    if model not in names:
        raise ParameterError("model", model, f"one of {', '.join(names)} for {task}")


def grid(model: str, task: str) -> list[dict[str, Any]]:
    """Every hyper-parameter combination searched for ``model`` (short names)."""
    check_model(model, task)
    return list(ParameterGrid(GRIDS[task][model]))


def _kernel(name: str, regression: bool):
    if name == "rbf":
        base = ConstantKernel(1.0) * RBF(length_scale=1.0)
    elif name == "matern":
        base = ConstantKernel(1.0) * Matern(length_scale=1.0, nu=1.5)
    else:
        raise ParameterError("kernel", name, "'rbf' or 'matern'")
    return base + WhiteKernel(1e-2) if regression else base


def _preprocess(scale: bool) -> list[tuple[str, Any]]:
    steps: list[tuple[str, Any]] = [
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
    ]
    if scale:
        steps.append(("scale", StandardScaler()))
    return steps


def gb_leaf(value, n_samples: int | None) -> int:
    """Leaf size of gradient boosting: ``value``, or by default scikit-learn's 20 capped at
    a tenth of the training rows (at least 2), so that small catalogs can still be split."""
    if value is not None:
        return int(value)
    if n_samples is None:
        return 20
    return int(min(20, max(2, n_samples // 10)))


def calibration_folds(min_class_count: int) -> int:
    """Folds of the SVM's probability calibration: 3, fewer for classes of < 3 rows."""
    return int(max(2, min(3, min_class_count)))


def build_estimator(
    model: str,
    task: str,
    *,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    calibration_cv: int = 3,
    n_classes: int = 2,
    n_samples: int | None = None,
) -> Pipeline:
    """Return the unfitted pipeline of ``model`` for ``task`` with ``params`` set.

    Parameters
    ----------
    model : str
        One of :data:`CLASSIFIERS` or :data:`REGRESSORS`.
    task : {"classification", "regression"}
    seed : int
        ``random_state`` of every random step.
    params : mapping, optional
        Hyper-parameters by short name, overriding :data:`DEFAULTS`.
    calibration_cv : int
        Folds of the SVM classifier's probability calibration.
    n_classes : int
        Number of classes: the SVM's decision values are calibrated by Platt's sigmoid
        for two classes and by temperature scaling (one parameter for all classes) for
        more.
    n_samples : int, optional
        Number of training rows; sets gradient boosting's default leaf size.

    Examples
    --------
    >>> pipe = build_estimator("svm", "classification", params={"C": 10.0})
    >>> [name for name, _ in pipe.steps]
    ['impute', 'scale', 'model']
    """
    check_model(model, task)
    p = dict(DEFAULTS[task][model])
    for key, value in (params or {}).items():
        if key not in p:
            raise ParameterError("params", key, f"one of {', '.join(p)} for model {model!r}")
        p[key] = value
    seed = int(seed)
    reg = task == "regression"
    if model == "rf":
        cls = RandomForestRegressor if reg else RandomForestClassifier
        est = cls(
            n_estimators=int(p["n_estimators"]),
            max_features=p["max_features"],
            min_samples_leaf=gb_leaf(p["min_samples_leaf"], n_samples),
            random_state=seed,
        )
        steps = [*_preprocess(False), ("model", est)]
    elif model == "svm":
        if reg:
            est = TransformedTargetRegressor(
                regressor=SVR(
                    kernel="rbf", C=float(p["C"]), gamma=p["gamma"], epsilon=float(p["epsilon"])
                ),
                transformer=StandardScaler(),
            )
        else:
            est = CalibratedClassifierCV(
                SVC(kernel="rbf", C=float(p["C"]), gamma=p["gamma"], random_state=seed),
                method="sigmoid" if n_classes == 2 else "temperature",
                cv=int(calibration_cv),
                ensemble=False,
            )
        steps = [*_preprocess(True), ("model", est)]
    elif model == "gp":
        if reg:
            est = GaussianProcessRegressor(
                kernel=_kernel(p["kernel"], True), normalize_y=True, random_state=seed
            )
        else:
            est = GaussianProcessClassifier(kernel=_kernel(p["kernel"], False), random_state=seed)
        steps = [*_preprocess(True), ("model", est)]
    elif model == "gb":
        cls = HistGradientBoostingRegressor if reg else HistGradientBoostingClassifier
        est = cls(
            learning_rate=float(p["learning_rate"]),
            max_leaf_nodes=int(p["max_leaf_nodes"]),
            max_iter=int(p["max_iter"]),
            min_samples_leaf=gb_leaf(p["min_samples_leaf"], n_samples),
            random_state=seed,
        )
        steps = [("model", est)]
    elif model == "logreg":
        steps = [*_preprocess(True), ("model", LogisticRegression(C=float(p["C"]), max_iter=2000))]
    else:  # linear
        steps = [*_preprocess(True), ("model", Ridge(alpha=float(p["alpha"])))]
    return Pipeline(steps)


def resolved_params(model: str, task: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults of ``model`` updated with ``params``, JSON-friendly (numpy scalars unwrapped)."""
    out = dict(DEFAULTS[task][model])
    out.update(params or {})
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in out.items()}
