"""``train``: cross-validated scikit-learn models on catalog features; ``TrainedModel``."""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from astropy.table import Table
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from sklearn.model_selection import (
    KFold,
    RepeatedKFold,
    RepeatedStratifiedKFold,
    StratifiedKFold,
    cross_val_score,
)

from ..exceptions import InputError, MorphoscopeError, MorphoscopeWarning, ParameterError
from .estimators import (
    build_estimator,
    calibration_folds,
    check_model,
    grid,
    resolved_params,
)
from .tables import (
    DEFAULT_BAD_FLAGS,
    default_features,
    feature_matrix,
    label_column,
    ordered_classes,
    read_table,
    source_name,
)

__all__ = [
    "CLASSIFICATION_METRICS",
    "DEFAULT_FOLDS",
    "REGRESSION_METRICS",
    "TrainedModel",
    "auto_folds",
    "auto_repeats",
    "train",
]

#: Cross-validation scores of a classifier (mean over folds).
CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc")
#: Cross-validation scores of a regressor (mean over folds).
REGRESSION_METRICS: tuple[str, ...] = ("r2", "rmse", "mae")

_IMPORTANCE_REPEATS = 5

#: Folds of the default (``cv="auto"``) cross-validation.
DEFAULT_FOLDS: int = 10
# ``repeats="auto"``: repeat the k-fold split until about this many held-out predictions
# have been made, at most _MAX_AUTO_REPEATS times.
_AUTO_HELD_OUT = 2000
_MAX_AUTO_REPEATS = 10


def auto_folds(counts: Sequence[int] | int, task: str = "classification") -> int:
    """Folds of ``cv="auto"``: :data:`DEFAULT_FOLDS` (10), or fewer for small tables.

    Classification: 10, or the number of rows of the smallest class if that is smaller
    (at least 2). Regression: 10, or the number of rows if that is smaller.

    Parameters
    ----------
    counts : sequence of int or int
        Rows per class (classification) or the number of rows (regression).
    task : {"classification", "regression"}

    Examples
    --------
    >>> auto_folds([50, 50, 50]), auto_folds([40, 6]), auto_folds(7, "regression")
    (10, 6, 7)
    """
    n = int(np.min(counts)) if task == "classification" else int(np.sum(counts))
    return int(max(2, min(DEFAULT_FOLDS, n)))


def auto_repeats(n_rows: int, search: bool = False) -> int:
    """Repetitions of ``repeats="auto"``: enough for about 2000 held-out predictions.

    ``ceil(2000 / n_rows)``, between 1 and 10: 10 repetitions for tables of up to 200
    rows, 2 for 1000 rows, 1 from 2000 rows on, so that the scores of small tables do not
    depend on one random split while large tables are not trained 10 times over. With
    ``search=True`` the nested search is already expensive: 1.

    Examples
    --------
    >>> auto_repeats(150), auto_repeats(319), auto_repeats(1000), auto_repeats(5000)
    (10, 7, 2, 1)
    """
    if search:
        return 1
    return int(min(_MAX_AUTO_REPEATS, max(1, math.ceil(_AUTO_HELD_OUT / max(1, n_rows)))))


def _versions() -> dict[str, str]:
    import numpy
    import scipy
    import sklearn

    from .. import __version__

    return {
        "morphoscope": __version__,
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
    }


class TrainedModel:
    """A fitted model with its feature list, label encoding and cross-validation results.

    Made by :func:`train` or :func:`~morphoscope.classify.load`; do not build it directly.

    Attributes
    ----------
    model : str
        Model name (``"rf"``, ``"svm"``, ``"gp"``, ``"gb"``, ``"logreg"``, ``"linear"``).
    task : {"classification", "regression"}
    label : str
        Name of the label column.
    features : list of str
        Feature columns, in the order the estimator sees them.
    classes : numpy.ndarray or None
        Class labels (classification), in the order of ``prob_*`` columns and of the
        confusion matrix rows and columns.
    params : dict
        Hyper-parameters of the final estimator (short names, see
        :data:`~morphoscope.classify.estimators.DEFAULTS`).
    cv_scores : dict
        Mean over the cross-validation folds of each metric
        (:data:`CLASSIFICATION_METRICS` or :data:`REGRESSION_METRICS`); empty if ``cv=None``.
    cv_std : dict
        Standard deviation over the folds of each metric.
    cv_std_repeats : dict
        With repeated cross-validation (``repeats > 1``): standard deviation over the
        repetitions of each repetition's mean, i.e. how much the score depends on the
        random split; empty otherwise.
    cv_folds : astropy.table.Table or None
        One row per fold (``repeat``, ``fold``, ``n_test``, the metrics and, with
        ``search=True``, the chosen parameters).
    confusion : numpy.ndarray or None
        Confusion matrix of the out-of-fold predictions (rows: true class, columns:
        predicted class, both in ``classes`` order); each training row counted once.
    cv_predictions : numpy.ndarray or None
        Out-of-fold prediction of every training row (class label or value).
    feature_importance : astropy.table.Table or None
        Permutation importance on the held-out folds (``feature``, ``importance``,
        ``importance_std``), most important first; the drop in balanced accuracy
        (classification) or R^2 (regression) when the feature is shuffled.
    estimator : sklearn.pipeline.Pipeline
        The fitted scikit-learn pipeline (raw features with NaN in, prediction out).
    versions : dict
        Library versions the model was trained with.
    """

    def __init__(
        self,
        *,
        model: str,
        task: str,
        label: str,
        features: list[str],
        classes: np.ndarray | None,
        params: dict[str, Any],
        seed: int,
        cv: int | None,
        search: bool,
        repeats: int = 1,
        bad_flags: int,
        estimator,
        x: np.ndarray,
        y: np.ndarray,
        cv_scores: dict[str, float],
        cv_std: dict[str, float],
        cv_folds: Table | None,
        confusion: np.ndarray | None,
        cv_predictions: np.ndarray | None,
        feature_importance: Table | None,
        versions: dict[str, str],
        train_seconds: float = float("nan"),
        cv_std_repeats: dict[str, float] | None = None,
    ) -> None:
        self.model = model
        self.task = task
        self.label = label
        self.features = list(features)
        self.classes = classes
        self.params = params
        self.seed = seed
        self.cv = cv
        self.repeats = repeats
        self.search = search
        self.bad_flags = int(bad_flags)
        self.estimator = estimator
        self._x = x
        self._y = y
        self.cv_scores = cv_scores
        self.cv_std = cv_std
        self.cv_std_repeats = dict(cv_std_repeats or {})
        self.cv_folds = cv_folds
        self.confusion = confusion
        self.cv_predictions = cv_predictions
        self.feature_importance = feature_importance
        self.versions = versions
        self.train_seconds = train_seconds

    @property
    def n_train(self) -> int:
        """Number of training rows."""
        return int(self._x.shape[0])

    def __repr__(self) -> str:
        scores = ", ".join(f"{k}={v:.3f}" for k, v in self.cv_scores.items())
        return (
            f"TrainedModel(model={self.model!r}, task={self.task!r}, label={self.label!r}, "
            f"n_features={len(self.features)}, n_train={self.n_train}"
            + (f", {scores}" if scores else "")
            + ")"
        )

    def summary(self) -> str:
        """A few lines describing the model and its cross-validation scores."""
        what = (
            f"{len(self.classes)} classes: {', '.join(map(str, self.classes))}"
            if self.task == "classification"
            else "regression"
        )
        lines = [
            f"model {self.model} ({self.task} of {self.label!r}; {what})",
            f"{self.n_train} training rows, {len(self.features)} features: "
            + ", ".join(self.features),
            "parameters: " + ", ".join(f"{k}={v}" for k, v in self.params.items()),
        ]
        if self.cv_scores:
            rep = bool(self.cv_std_repeats)
            lines.append(
                f"{self.cv}-fold cross-validation"
                + (f" x {self.repeats} repeats" if self.repeats > 1 else "")
                + f" (seed {self.seed}"
                + (", nested grid search" if self.search else "")
                + "): mean +/- std over the folds"
                + (" (std of the repeat means)" if rep else "")
            )
            for k, v in self.cv_scores.items():
                line = f"  {k:<18s} {v:8.4f} +/- {self.cv_std.get(k, float('nan')):.4f}"
                if rep:
                    line += f" ({self.cv_std_repeats.get(k, float('nan')):.4f})"
                lines.append(line)
        if self.confusion is not None:
            lines.append("confusion matrix (rows: true, columns: predicted):")
            names = [str(c) for c in self.classes]
            width = max(8, *(len(n) for n in names))
            lines.append(" " * (width + 2) + " ".join(f"{n:>{width}s}" for n in names))
            for name, row in zip(names, self.confusion, strict=True):
                lines.append(f"  {name:<{width}s}" + " ".join(f"{v:>{width}d}" for v in row))
        if self.feature_importance is not None and len(self.feature_importance):
            top = self.feature_importance[:5]
            lines.append(
                "most important features: "
                + ", ".join(f"{r['feature']} ({r['importance']:.3f})" for r in top)
            )
        return "\n".join(lines)

    def _matrix(self, table, name: str | None = None) -> tuple[Table, np.ndarray]:
        source = name or source_name(table)
        t = read_table(table, name=name)
        missing = [f for f in self.features if f not in t.colnames]
        if missing:
            raise InputError(
                source,
                "missing feature columns: "
                + ", ".join(missing)
                + f" (the model was trained on: {', '.join(self.features)})",
            )
        return t, feature_matrix(t, self.features, source=source, bad_flags=self.bad_flags)

    def predict_proba(self, table, *, name: str | None = None) -> np.ndarray:
        """Class probabilities, shape ``(n_rows, n_classes)`` in :attr:`classes` order."""
        if self.task != "classification":
            raise ParameterError("task", self.task, "'classification' for predict_proba")
        _, x = self._matrix(table, name)
        if x.shape[0] == 0:
            return np.zeros((0, len(self.classes)))
        return self.estimator.predict_proba(x)

    def predict(self, table, *, name: str | None = None) -> Table:
        """Predict every row of ``table``; return a copy with prediction columns added.

        Parameters
        ----------
        table : str, path-like, Table, DataFrame or mapping
            Must contain every column of :attr:`features` (other columns are kept).
            Rows whose ``flag`` has a bit of the model's ``bad_flags`` get their features
            imputed, as in training.
        name : str, optional
            Name of the table in error messages.

        Returns
        -------
        astropy.table.Table
            The input columns plus ``pred_<label>`` and, for classification,
            ``prob_<class>`` for each class (calibrated for the SVM). An existing column
            of the same name is replaced.

        Raises
        ------
        morphoscope.exceptions.InputError
            Feature columns are missing (all of them are listed) or not numeric.
        """
        t, x = self._matrix(table, name)
        out = t.copy(copy_data=True)
        pred_name = f"pred_{self.label}"
        if self.task == "classification":
            n_cls = len(self.classes)
            proba = self.estimator.predict_proba(x) if x.shape[0] else np.zeros((0, n_cls))
            idx = np.argmax(proba, axis=1)
            out[pred_name] = self.classes[idx] if x.shape[0] else self.classes[:0]
            for i, c in enumerate(self.classes):
                out[f"prob_{c}"] = proba[:, i]
                out[f"prob_{c}"].description = f"probability of class {c!r}"
        else:
            out[pred_name] = self.estimator.predict(x) if x.shape[0] else np.zeros(0)
        out[pred_name].description = f"{self.model} prediction of {self.label!r}"
        out.meta["morphoscope_classify"] = (
            f"{self.model} {self.task} of {self.label!r} on {len(self.features)} features"
        )
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write the model to ``path`` in the safe model format (see :mod:`.modelfile`)."""
        from .modelfile import save_model

        save_model(self, path)


def _detect_task(values: np.ndarray, task: str) -> str:
    if task not in ("auto", "classification", "regression"):
        raise ParameterError("task", task, "'auto', 'classification' or 'regression'")
    if task != "auto":
        return task
    return "regression" if values.dtype.kind == "f" else "classification"


def _check_cv(cv) -> int | str | None:
    if cv is None or (isinstance(cv, str) and cv == "auto"):
        return cv
    if isinstance(cv, bool) or not isinstance(cv, int | np.integer) or cv < 2:
        raise ParameterError("cv", cv, "'auto', an integer >= 2 (number of folds) or None")
    return int(cv)


def _fold_scores(task: str, y_true, y_pred, proba, n_classes: int) -> dict[str, float]:
    if task == "regression":
        return {
            "r2": float(r2_score(y_true, y_pred)),
            "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
            "mae": float(mean_absolute_error(y_true, y_pred)),
        }
    scores = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "f1_macro": float(
            f1_score(y_true, y_pred, average="macro", labels=np.arange(n_classes), zero_division=0)
        ),
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if n_classes == 2:
                auc = roc_auc_score(y_true, proba[:, 1])
            else:
                auc = roc_auc_score(
                    y_true, proba, multi_class="ovr", average="macro", labels=np.arange(n_classes)
                )
    except ValueError:  # a class absent from this fold
        auc = np.nan
    scores["roc_auc"] = float(auc)
    return scores


def _n_classes(task: str, y: np.ndarray) -> int:
    return int(y.max()) + 1 if task == "classification" and y.size else 2


def _search(model, task, x, y, seed, cal_cv) -> tuple[dict[str, Any], float]:
    """Best grid point by an inner 3-fold CV (balanced accuracy or R^2)."""
    if task == "classification":
        inner = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
        scoring = "balanced_accuracy"
    else:
        inner = KFold(n_splits=3, shuffle=True, random_state=seed)
        scoring = "r2"
    best, best_score = None, -np.inf
    for point in grid(model, task):
        est = build_estimator(
            model,
            task,
            seed=seed,
            params=point,
            calibration_cv=cal_cv,
            n_classes=_n_classes(task, y),
            n_samples=2 * len(y) // 3,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = float(np.mean(cross_val_score(est, x, y, cv=inner, scoring=scoring)))
        if score > best_score or best is None:
            best, best_score = point, score
    return dict(best), best_score


def _fit(model, task, x, y, seed, params, cal_cv):
    est = build_estimator(
        model,
        task,
        seed=seed,
        params=params,
        calibration_cv=cal_cv,
        n_classes=_n_classes(task, y),
        n_samples=len(y),
    )
    with warnings.catch_warnings():
        # GP and logistic regression may warn about convergence on tiny folds.
        warnings.filterwarnings("ignore", message=".*converge.*")
        est.fit(x, y)
    return est


def fit_final(model: str, task: str, x, y, seed: int, params: dict[str, Any]):
    """Fit the final pipeline deterministically (also used to rebuild saved models)."""
    cal_cv = calibration_folds(int(np.bincount(y).min())) if task == "classification" else 3
    return _fit(model, task, x, y, seed, params, cal_cv)


def train(
    table,
    label: str,
    *,
    features: Sequence[str] | None = None,
    model: str = "rf",
    task: str = "auto",
    cv: int | str | None = "auto",
    repeats: int | str = "auto",
    search: bool = False,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    importance: bool = True,
    bad_flags: int = DEFAULT_BAD_FLAGS,
) -> TrainedModel:
    """Train a classifier (or regressor) on catalog columns, with cross-validation.

    Parameters
    ----------
    table : str, path-like, astropy.table.Table, pandas.DataFrame or mapping
        Training catalog (ECSV, FITS or CSV file, or in memory).
    label : str
        Column to predict. Rows with a missing label (masked, NaN, empty string) are
        left out with a :class:`~morphoscope.exceptions.MorphoscopeWarning`.
    features : sequence of str, optional
        Feature columns. Default: :func:`~morphoscope.classify.tables.default_features`,
        the numeric columns ``measure`` writes that are present, without identifiers,
        positions, angles, flags and the label.
    model : str
        Classification: ``"rf"``, ``"svm"``, ``"gp"``, ``"gb"`` or ``"logreg"``;
        regression: ``"rf"``, ``"svm"``, ``"gp"``, ``"gb"`` or ``"linear"``.
        See :mod:`morphoscope.classify.estimators`.
    task : {"auto", "classification", "regression"}
        ``"auto"``: regression for a floating-point label, classification otherwise
        (strings, integers, booleans).
    cv : "auto", int or None
        Folds of the stratified (classification) or plain (regression) k-fold
        cross-validation, shuffled with ``seed``. ``"auto"``: 10 folds, or as many as the
        smallest class has rows if that is fewer (:func:`auto_folds`). ``None`` skips it
        (no scores).
    repeats : "auto" or int
        Repeat the k-fold split this many times with different shuffles and average
        (repeated k-fold), so that the scores depend less on one random split.
        ``"auto"``: enough repetitions for about 2000 held-out predictions, between 1
        and 10 (10 up to 200 rows, 1 from 2000 rows; 1 with ``search``;
        :func:`auto_repeats`). The confusion matrix sums all repetitions (each row
        counted ``repeats`` times); ``cv_predictions`` and the feature importance come
        from the first repetition.
    search : bool
        Choose hyper-parameters from :data:`~morphoscope.classify.estimators.GRIDS` by an
        inner 3-fold CV. The scores are then those of nested cross-validation (the search
        is repeated inside every outer fold), so they are not optimistic; the final model
        uses the parameters chosen on all rows. Costs about
        ``(cv * repeats + 1) * 3 * grid size`` fits.
    seed : int
        Seed of the folds and of every random estimator.
    params : dict, optional
        Hyper-parameters by short name (ignored keys raise), e.g. ``{"C": 10.0}``.
    importance : bool
        Compute permutation feature importance on each held-out fold of the first
        repetition (5 permutations per feature).
    bad_flags : int
        Rows whose ``flag`` column has any of these bits get all features set to NaN
        before imputation (default: ``NONPOSITIVE_FLUX | SMALL | MEASURE_FAILED``);
        0 disables it.

    Returns
    -------
    TrainedModel

    Raises
    ------
    morphoscope.exceptions.ParameterError
        Unknown model, task, fold count or parameter.
    morphoscope.exceptions.InputError
        Missing columns, too few rows, or a class with fewer rows than folds.

    Notes
    -----
    Cost: ``cv * repeats + 1`` fits (times the grid with ``search``), plus
    ``5 * n_features`` predictions per fold of the first repetition for the importance.
    With the defaults that is 101 fits for tables of up to 200 rows and 11 fits from
    2000 rows on. The Gaussian process
    scales as O(n^3) in time and O(n^2) in memory with the number of rows n; use it up
    to a few thousand rows.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from sklearn.datasets import load_iris
    >>> iris = load_iris()
    >>> t = Table(iris.data, names=["sepal_length", "sepal_width", "petal_length",
    ...                              "petal_width"])
    >>> t["species"] = iris.target_names[iris.target]
    >>> m = train(t, "species", model="logreg", seed=0, importance=False)
    >>> m.cv, m.repeats, m.cv_scores["accuracy"] > 0.95
    (10, 10, True)
    >>> m.predict(t[:2])["pred_species"].tolist()
    ['setosa', 'setosa']
    """
    t0 = time.perf_counter()
    source = source_name(table)
    if not isinstance(model, str):
        raise ParameterError("model", model, "a model name")
    cv = _check_cv(cv)
    if not (isinstance(repeats, str) and repeats == "auto") and (
        isinstance(repeats, bool) or not isinstance(repeats, int | np.integer) or repeats < 1
    ):
        raise ParameterError("repeats", repeats, "'auto' or an integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ParameterError("seed", seed, "an integer")
    seed = int(seed)
    t = read_table(table)
    values, valid = label_column(t, label, source)
    task = _detect_task(values, task)
    check_model(model, task)
    if features is None:
        features = default_features(t, label)
        if not features:
            raise InputError(source, "no numeric feature columns found; pass features=[...]")
    else:
        if isinstance(features, str):
            features = [features]
        features = list(features)
        if not features:
            raise ParameterError("features", features, "a non-empty list of column names")
        if label in features:
            raise ParameterError("features", features, f"a list without the label {label!r}")
    x = feature_matrix(t, features, source=source, bad_flags=bad_flags)
    if not np.all(valid):
        warnings.warn(
            f"{source}: {int((~valid).sum())} rows without a {label!r} value are left out",
            MorphoscopeWarning,
            stacklevel=2,
        )
    x = x[valid]
    values = values[valid]
    if x.shape[0] < 2:
        raise InputError(source, f"need at least 2 labelled rows to train, got {x.shape[0]}")

    if task == "classification":
        classes = ordered_classes(values)
        if classes.size < 2:
            raise InputError(source, f"label {label!r} has a single class ({classes[0]!r})")
        lookup = {c: i for i, c in enumerate(classes.tolist())}
        y = np.array([lookup[v] for v in values.tolist()], dtype=np.int64)
        counts = np.bincount(y, minlength=classes.size)
        if cv == "auto":
            cv = auto_folds(counts)
        need = cv or 2
        if counts.min() < need:
            few = ", ".join(
                f"{str(c)!r} ({n})"
                for c, n in zip(classes.tolist(), counts, strict=True)
                if n < need
            )
            raise InputError(
                source,
                f"every class needs at least {need} rows for {need}-fold cross-validation; "
                f"too few: {few}",
            )
    else:
        classes = None
        y = values.astype(np.float64)
        if cv == "auto":
            cv = auto_folds(y.size, "regression")
        if cv is not None and y.size < cv:
            raise InputError(source, f"{y.size} rows are fewer than cv={cv} folds")

    repeats = auto_repeats(y.size, bool(search)) if repeats == "auto" else int(repeats)
    if params is not None and not isinstance(params, dict):
        raise ParameterError("params", params, "a dict of hyper-parameters")
    resolved_params(model, task, params)  # validates names early
    build_estimator(model, task, params=params)

    try:
        return _train_checked(
            t0, source, model, task, label, features, classes, x, y, cv, repeats, search, seed,
            params, importance, bad_flags,
        )  # fmt: skip
    except MorphoscopeError:
        raise
    except ValueError as exc:  # scikit-learn's complaint about the data, e.g. tiny classes
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = (lines[-1] if lines else repr(exc))[:300]
        raise InputError(
            source,
            f"cannot train model {model!r} on this table ({detail}); classes with few rows "
            "need fewer folds, no search, or another model",
        ) from exc


def _train_checked(
    t0, source, model, task, label, features, classes, x, y, cv, repeats, search, seed,
    params, importance, bad_flags,
) -> TrainedModel:  # fmt: skip
    # --- cross-validation -------------------------------------------------------------
    cv_scores: dict[str, float] = {}
    cv_std: dict[str, float] = {}
    cv_std_repeats: dict[str, float] = {}
    cv_folds = confusion = cv_pred = importance_table = None
    if cv is not None:
        if task == "classification" and repeats == 1:
            splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
        elif task == "classification":
            splitter = RepeatedStratifiedKFold(n_splits=cv, n_repeats=repeats, random_state=seed)
        elif repeats == 1:
            splitter = KFold(n_splits=cv, shuffle=True, random_state=seed)
        else:
            splitter = RepeatedKFold(n_splits=cv, n_repeats=repeats, random_state=seed)
        rows = []
        cv_pred = np.empty(y.shape, dtype=y.dtype)
        confusion = (
            np.zeros((classes.size, classes.size), np.int64) if classes is not None else None
        )
        imp_runs = []
        scoring = "balanced_accuracy" if task == "classification" else "r2"
        for fold, (tr, te) in enumerate(splitter.split(x, y)):
            ytr = y[tr]
            cal_cv = calibration_folds(int(np.bincount(ytr).min())) if classes is not None else 3
            fold_params = dict(params or {})
            if search:
                inner_cal = (
                    calibration_folds(int(np.bincount(ytr).min()) * 2 // 3)
                    if classes is not None
                    else 3
                )
                fold_params.update(_search(model, task, x[tr], ytr, seed, inner_cal)[0])
            est = _fit(model, task, x[tr], ytr, seed, fold_params, cal_cv)
            if task == "classification":
                proba = est.predict_proba(x[te])
                pred = np.argmax(proba, axis=1)
            else:
                proba = None
                pred = est.predict(x[te])
            if fold < cv:
                cv_pred[te] = pred
            if confusion is not None:
                confusion += confusion_matrix(y[te], pred, labels=np.arange(classes.size))
            row = {"repeat": fold // cv, "fold": fold % cv, "n_test": len(te)}
            row.update(
                _fold_scores(task, y[te], pred, proba, 0 if classes is None else classes.size)
            )
            if search:
                row["params"] = json.dumps(fold_params, sort_keys=True)
            rows.append(row)
            if importance and fold < cv:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = permutation_importance(
                        est,
                        x[te],
                        y[te],
                        scoring=scoring,
                        n_repeats=_IMPORTANCE_REPEATS,
                        random_state=seed,
                    )
                imp_runs.append(r.importances)
        cv_folds = Table(rows=rows)
        metrics = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
        for m in metrics:
            cv_scores[m] = float(np.nanmean(cv_folds[m]))
            cv_std[m] = float(np.nanstd(cv_folds[m]))
            if repeats > 1:
                per_repeat = np.asarray(cv_folds[m], float).reshape(repeats, cv)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # all-NaN repeat (a missing ROC AUC)
                    cv_std_repeats[m] = float(np.nanstd(np.nanmean(per_repeat, axis=1)))
        if task == "classification":
            cv_pred = classes[cv_pred]
        if importance:
            allimp = np.concatenate(imp_runs, axis=1)  # (n_features, folds * permutations)
            order = np.argsort(-allimp.mean(axis=1), kind="stable")
            importance_table = Table(
                {
                    "feature": np.array(features)[order],
                    "importance": allimp.mean(axis=1)[order],
                    "importance_std": allimp.std(axis=1)[order],
                }
            )
            importance_table.meta["scoring"] = scoring
            importance_table.meta["n_repeats"] = _IMPORTANCE_REPEATS

    # --- final model ----------------------------------------------------------------
    final_params = dict(params or {})
    if search:
        inner_cal = (
            calibration_folds(int(np.bincount(y).min()) * 2 // 3) if classes is not None else 3
        )
        final_params.update(_search(model, task, x, y, seed, inner_cal)[0])
    final_params = resolved_params(model, task, final_params)
    est = fit_final(model, task, x, y, seed, final_params)
    return TrainedModel(
        model=model,
        task=task,
        label=label,
        features=features,
        classes=classes,
        params=final_params,
        seed=seed,
        cv=cv,
        repeats=repeats,
        search=bool(search),
        bad_flags=int(bad_flags),
        estimator=est,
        x=x,
        y=y,
        cv_scores=cv_scores,
        cv_std=cv_std,
        cv_folds=cv_folds,
        confusion=confusion,
        cv_predictions=cv_pred,
        feature_importance=importance_table,
        versions=_versions(),
        train_seconds=time.perf_counter() - t0,
        cv_std_repeats=cv_std_repeats,
    )
