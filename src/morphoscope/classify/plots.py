"""Figures of a trained model: confusion matrix, feature importance, predicted vs true.

Made with matplotlib's object API (:class:`matplotlib.figure.Figure`, no pyplot state),
so they are safe in scripts, threads and servers; save them with ``fig.savefig(path)``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

__all__ = ["confusion_figure", "importance_figure", "regression_figure"]


def confusion_figure(model, *, normalize: bool = True) -> Figure:
    """Confusion matrix of the out-of-fold predictions.

    Parameters
    ----------
    model : TrainedModel
        A classifier trained with cross-validation.
    normalize : bool
        Colour by the fraction of each true class (rows sum to 1); the cells are
        annotated with the counts and the fractions.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if model.confusion is None:
        raise ValueError("the model has no confusion matrix (regression, or trained with cv=None)")
    cm = np.asarray(model.confusion, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    names = [str(c) for c in model.classes]
    n = len(names)
    size = 2.2 + 0.9 * n
    fig = Figure(figsize=(size + 1.0, size), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(frac if normalize else cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    for i in range(n):
        for j in range(n):
            val = frac[i, j]
            ax.text(
                j,
                i,
                f"{int(cm[i, j])}\n{val:.0%}",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if val > 0.6 else "black",
            )
    ax.set_xticks(range(n), names, rotation=30, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel(f"predicted {model.label}")
    ax.set_ylabel(f"true {model.label}")
    score = model.cv_scores.get("balanced_accuracy")
    title = f"{model.model}: {model.cv}-fold CV"
    if score is not None:
        title += f", balanced accuracy {score:.3f}"
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="fraction of true class" if normalize else "count", shrink=0.8)
    return fig


def importance_figure(model, *, top: int = 20) -> Figure:
    """Horizontal bars of the permutation importance (mean and spread over folds x repeats)."""
    imp = model.feature_importance
    if imp is None:
        raise ValueError(
            "the model has no feature importance (trained with cv=None or importance=False)"
        )
    imp = imp[:top]
    n = len(imp)
    fig = Figure(figsize=(6.0, 1.2 + 0.32 * n), layout="constrained")
    ax = fig.add_subplot()
    pos = np.arange(n)[::-1]
    ax.barh(
        pos,
        imp["importance"],
        xerr=imp["importance_std"],
        color="tab:blue",
        alpha=0.8,
        error_kw={"elinewidth": 1, "capsize": 2},
    )
    ax.set_yticks(pos, [str(f) for f in imp["feature"]])
    ax.axvline(0, color="k", lw=0.8)
    scoring = imp.meta.get("scoring") or (
        "balanced_accuracy" if model.task == "classification" else "r2"
    )
    ax.set_xlabel(f"drop in {scoring} when shuffled (held-out folds)")
    ax.set_title(f"{model.model}: permutation importance for {model.label!r}", fontsize=10)
    return fig


def regression_figure(model) -> Figure:
    """Out-of-fold predicted value against the true value of a regressor."""
    if model.task != "regression" or model.cv_predictions is None:
        raise ValueError("needs a regression model trained with cross-validation")
    y = np.asarray(model._y, float)
    p = np.asarray(model.cv_predictions, float)
    fig = Figure(figsize=(5.0, 5.0), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(y, p, s=8, alpha=0.6)
    lo, hi = np.nanmin([y.min(), p.min()]), np.nanmax([y.max(), p.max()])
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel(f"true {model.label}")
    ax.set_ylabel(f"predicted {model.label} (out of fold)")
    r2 = model.cv_scores.get("r2", float("nan"))
    rmse = model.cv_scores.get("rmse", float("nan"))
    ax.set_title(f"{model.model}: R$^2$ = {r2:.3f}, RMSE = {rmse:.3g}", fontsize=10)
    return fig
