"""The safe model file: JSON metadata + training arrays in a zip; refitted on load.

A model file is a zip archive with two members:

``morphoscope_model.json``
    format name and version, task, model name, hyper-parameters, seed, label name,
    class labels (the label encoding), feature columns, ``bad_flags``, cross-validation
    scores, per-fold scores, confusion matrix, feature importance, library versions.
``training.npz``
    ``x`` (training features after flag masking, float64, NaN kept), ``y`` (class codes
    or target values), ``cv_predictions`` (out-of-fold predictions, codes or values) and
    ``fingerprint`` (the fitted model's probabilities, or values, on ``x``).

Nothing in the file is executable: the JSON is parsed with :mod:`json` and the arrays
are read with ``numpy.load(..., allow_pickle=False)``, which refuses object arrays.
Loading rebuilds the scikit-learn pipeline from the model name and hyper-parameters and
refits it on the stored training rows with the stored seed; every estimator is
deterministic given its seed, so the refitted model predicts what the saved one did.
The ``fingerprint`` checks this: if the refitted model's output on ``x`` differs (a
different scikit-learn version can change it), a
:class:`~morphoscope.exceptions.MorphoscopeWarning` says by how much and which library
versions differ (``strict=True`` makes it an error). Loading costs one training fit.
"""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from ..exceptions import InputError, MorphoscopeWarning
from ..io.write import atomic_write
from .estimators import CLASSIFIERS, DEFAULTS, REGRESSORS

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "save_model"]

#: Format name stored in every model file.
FORMAT = "morphoscope-classify-model"
#: Version of the layout; files of a newer version are refused.
FORMAT_VERSION = 1

_META = "morphoscope_model.json"
_ARRAYS = "training.npz"
_MAX_MEMBER_BYTES = 4 * 1024**3


def _table_to_json(table: Table | None) -> dict[str, list] | None:
    if table is None:
        return None
    return {name: np.asarray(table[name]).tolist() for name in table.colnames}


def _json_to_table(data: dict[str, list] | None) -> Table | None:
    if data is None:
        return None
    return Table({k: np.asarray(v) for k, v in data.items()})


def _fingerprint(model) -> np.ndarray:
    if model.task == "classification":
        return np.asarray(model.estimator.predict_proba(model._x), dtype=np.float64)
    return np.asarray(model.estimator.predict(model._x), dtype=np.float64)


def save_model(model, path: str | os.PathLike) -> Path:
    """Write ``model`` (a :class:`~morphoscope.classify.TrainedModel`) to ``path``, atomically.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from morphoscope.classify import train, load
    >>> t = {"a": [0.0, 0.1, 0.2, 1.0, 1.1, 1.2], "k": ["x", "x", "x", "y", "y", "y"]}
    >>> m = train(t, "k", model="logreg", cv=3)
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "model.zip"
    >>> m.save(p)
    >>> load(p).predict(t)["pred_k"].tolist()
    ['x', 'x', 'x', 'y', 'y', 'y']
    """
    classes = None
    class_kind = None
    if model.classes is not None:
        class_kind = {"U": "str", "S": "str", "b": "bool", "f": "float"}.get(
            model.classes.dtype.kind, "int"
        )
        classes = model.classes.tolist()
    imp = model.feature_importance
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": model.task,
        "model": model.model,
        "params": model.params,
        "seed": model.seed,
        "cv": model.cv,
        "repeats": model.repeats,
        "search": model.search,
        "label": model.label,
        "classes": classes,
        "class_kind": class_kind,
        "features": model.features,
        "bad_flags": model.bad_flags,
        "n_train": model.n_train,
        "cv_scores": model.cv_scores,
        "cv_std": model.cv_std,
        "cv_std_repeats": model.cv_std_repeats,
        "cv_folds": _table_to_json(model.cv_folds),
        "confusion": None if model.confusion is None else np.asarray(model.confusion).tolist(),
        "feature_importance": _table_to_json(imp),
        "importance_scoring": None if imp is None else imp.meta.get("scoring"),
        "versions": model.versions,
        "train_seconds": model.train_seconds,
    }
    text = json.dumps(meta, indent=1, allow_nan=True)
    arrays = {
        "x": np.asarray(model._x, dtype=np.float64),
        "y": np.asarray(model._y),
        "fingerprint": _fingerprint(model),
    }
    if model.cv_predictions is not None:
        cvp = model.cv_predictions
        if model.classes is not None:
            lookup = {c: i for i, c in enumerate(model.classes.tolist())}
            cvp = np.array([lookup[v] for v in cvp.tolist()], dtype=np.int64)
        arrays["cv_predictions"] = np.asarray(cvp)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path = Path(path)
    with atomic_write(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(_META, text)
        zf.writestr(_ARRAYS, buf.getvalue())
    return path


def _require(meta: dict, key: str, types, name: str):
    if key not in meta or not isinstance(meta[key], types):
        raise InputError(name, f"not a valid morphoscope model file (bad or missing {key!r})")
    return meta[key]


def _read(path: Path, name: str) -> tuple[dict, dict[str, np.ndarray]]:
    if not path.is_file():
        raise InputError(name, "no such file")
    try:
        with zipfile.ZipFile(path) as zf:
            members = {i.filename: i for i in zf.infolist()}
            for member in (_META, _ARRAYS):
                if member not in members:
                    raise InputError(
                        name, f"not a morphoscope model file (no {member} in the archive)"
                    )
                if members[member].file_size > _MAX_MEMBER_BYTES:
                    raise InputError(name, f"{member} is implausibly large; refusing to read it")
            meta = json.loads(zf.read(_META).decode("utf-8"))
            with np.load(io.BytesIO(zf.read(_ARRAYS)), allow_pickle=False) as npz:
                arrays = {k: np.asarray(npz[k]) for k in npz.files}
    except InputError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise InputError(name, f"not a morphoscope model file (not a zip archive: {exc})") from exc
    except Exception as exc:  # corrupted member, bad JSON, object arrays, ...
        raise InputError(name, f"corrupted morphoscope model file ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(name, f"not a morphoscope model file (format is not {FORMAT!r})")
    return meta, arrays


def load(path: str | os.PathLike, *, strict: bool = False):
    """Read a model file written by :meth:`TrainedModel.save` and rebuild the model.

    Parameters
    ----------
    path : str or path-like
        The model file.
    strict : bool
        Raise instead of warning when the library versions differ from the saved ones
        and the refitted model does not reproduce the saved model's output.

    Returns
    -------
    TrainedModel

    Raises
    ------
    morphoscope.exceptions.InputError
        The file is missing, not a model file, corrupted, of a newer format version, or
        (``strict=True``) not reproducible with the installed libraries.

    Warns
    -----
    morphoscope.exceptions.MorphoscopeWarning
        Library versions differ from those the model was trained with (the warning names
        them), or the refitted model's output differs from the saved fingerprint.

    Notes
    -----
    The file never runs code (JSON + ``allow_pickle=False`` arrays); the estimator is
    refitted on the stored training rows, which costs one training fit.
    """
    from .core import TrainedModel, _versions, fit_final

    path = Path(path)
    name = str(path)
    meta, arrays = _read(path, name)
    version = _require(meta, "format_version", int, name)
    if version > FORMAT_VERSION:
        raise InputError(
            name,
            f"model file format version {version} is newer than this morphoscope reads "
            f"({FORMAT_VERSION}); upgrade morphoscope",
        )
    task = _require(meta, "task", str, name)
    model = _require(meta, "model", str, name)
    if task not in ("classification", "regression") or model not in (
        CLASSIFIERS if task == "classification" else REGRESSORS
    ):
        raise InputError(name, f"unknown model {model!r} for task {task!r}")
    params = _require(meta, "params", dict, name)
    unknown = set(params) - set(DEFAULTS[task][model])
    if unknown:
        raise InputError(
            name, f"unknown hyper-parameters for {model}: {', '.join(sorted(unknown))}"
        )
    features = _require(meta, "features", list, name)
    label = _require(meta, "label", str, name)
    seed = _require(meta, "seed", int, name)
    for key in ("x", "y", "fingerprint"):
        if key not in arrays:
            raise InputError(name, f"corrupted morphoscope model file (no array {key!r})")
    x = np.asarray(arrays["x"], dtype=np.float64)
    y = arrays["y"]
    if x.ndim != 2 or x.shape[1] != len(features) or y.shape != (x.shape[0],):
        raise InputError(
            name,
            f"corrupted morphoscope model file (training array shapes {x.shape}, {y.shape} "
            f"do not match {len(features)} features)",
        )
    if y.dtype.kind not in "biuf":
        raise InputError(name, f"corrupted morphoscope model file (labels of dtype {y.dtype})")
    classes = None
    if task == "classification":
        raw = _require(meta, "classes", list, name)
        kind = meta.get("class_kind")
        dtype = {"str": str, "bool": bool, "float": np.float64}.get(kind, np.int64)
        classes = np.asarray(raw, dtype=dtype)
        y = y.astype(np.int64)
        if y.size and (y.min() < 0 or y.max() >= classes.size):
            raise InputError(name, "corrupted morphoscope model file (label codes out of range)")
    else:
        y = y.astype(np.float64)

    saved = meta.get("versions") or {}
    current = _versions()
    differ = [
        f"{lib} {saved.get(lib)} (saved) vs {current[lib]} (installed)"
        for lib in ("scikit-learn", "numpy", "scipy", "morphoscope")
        if saved.get(lib) != current[lib]
    ]
    try:
        est = fit_final(model, task, x, y, seed, params)
    except ValueError as exc:  # e.g. one class only, hyper-parameters out of range
        raise InputError(name, f"corrupted morphoscope model file (refit failed: {exc})") from exc

    cv_pred = arrays.get("cv_predictions")
    if cv_pred is not None and classes is not None:
        cv_pred = classes[cv_pred.astype(np.int64)]
    imp = _json_to_table(meta.get("feature_importance"))
    if imp is not None:
        imp.meta["scoring"] = meta.get("importance_scoring")
    confusion = meta.get("confusion")
    trained = TrainedModel(
        model=model,
        task=task,
        label=label,
        features=list(features),
        classes=classes,
        params=params,
        seed=seed,
        cv=meta.get("cv"),
        repeats=int(meta.get("repeats") or 1),
        search=bool(meta.get("search", False)),
        bad_flags=int(meta.get("bad_flags", 0)),
        estimator=est,
        x=x,
        y=y,
        cv_scores={k: float(v) for k, v in (meta.get("cv_scores") or {}).items()},
        cv_std={k: float(v) for k, v in (meta.get("cv_std") or {}).items()},
        cv_std_repeats={k: float(v) for k, v in (meta.get("cv_std_repeats") or {}).items()},
        cv_folds=_json_to_table(meta.get("cv_folds")),
        confusion=None if confusion is None else np.asarray(confusion, dtype=np.int64),
        cv_predictions=cv_pred,
        feature_importance=imp,
        versions={k: str(v) for k, v in saved.items()},
        train_seconds=float(meta.get("train_seconds", float("nan"))),
    )
    from .modelfile import _fingerprint as fp

    now = fp(trained)
    then = np.asarray(arrays["fingerprint"], dtype=np.float64)
    same = now.shape == then.shape and np.allclose(now, then, rtol=1e-7, atol=1e-9)
    if not same:
        delta = float(np.max(np.abs(now - then))) if now.shape == then.shape else float("nan")
        msg = (
            f"the refitted model does not reproduce the saved one (max difference {delta:.3g})"
            + ("; library versions differ: " + "; ".join(differ) if differ else "")
        )
        if strict:
            raise InputError(name, msg)
        warnings.warn(f"{name}: {msg}", MorphoscopeWarning, stacklevel=2)
    elif differ:
        msg = "library versions differ: " + "; ".join(differ)
        if strict:
            raise InputError(name, msg + " (strict=True)")
        warnings.warn(
            f"{name}: {msg}; the refitted model reproduces the saved one",
            MorphoscopeWarning,
            stacklevel=2,
        )
    return trained
