"""``morphoscope classify``: train, apply and inspect feature-based models.

::

    morphoscope classify train TABLE --label COL [--features ...] [--model rf|svm|gp|gb|logreg]
                                    [--labels decisions.csv [--id-column COL]]
                                    [--task auto] [--cv 10] [--repeats N] [--search] [--seed 0]
                                    --out MODEL
    morphoscope classify predict MODEL TABLE --out PREDICTIONS
    morphoscope classify report MODEL [--out DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..exceptions import InputError

__all__ = ["add_parser", "handle_predict", "handle_report", "handle_train"]


def _features(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = []
    for v in values:
        out.extend(part.strip() for part in v.split(",") if part.strip())
    return out or None


def add_parser(subparsers) -> None:
    """Register ``morphoscope classify`` and its ``train``, ``predict``, ``report`` actions."""
    p = subparsers.add_parser(
        "classify",
        help="train and apply classifiers/regressors on catalog columns",
        description="Feature-based classification and regression of catalogs "
        "(random forest, SVM, Gaussian process, gradient boosting, logistic/linear "
        "regression) with cross-validation and safe model files.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])

    t = sub.add_parser(
        "train",
        help="train a model on a catalog and print its cross-validation scores",
        description="Train a model on TABLE (ECSV, FITS or CSV) to predict --label, "
        "cross-validate it and write the model file.",
    )
    t.add_argument("table", help="training catalog (.ecsv, .fits, .csv)")
    t.add_argument(
        "--label",
        default=None,
        help="column to predict (required without --labels; with --labels: 'decision')",
    )
    t.add_argument(
        "--labels",
        default=None,
        metavar="CSV",
        help="labels from another table joined on the source identifier, e.g. the "
        "decisions.csv exported by 'morphoscope inspect' (id,decision); 'unsure' "
        "decisions and unlabelled rows are left out",
    )
    t.add_argument(
        "--id-column",
        default=None,
        help="catalog column matching the first column of --labels (default: same name)",
    )
    t.add_argument(
        "--features",
        nargs="+",
        metavar="COL",
        help="feature columns (space or comma separated; default: the measured "
        "morphology columns present)",
    )
    t.add_argument(
        "--model",
        default="rf",
        choices=["rf", "svm", "gp", "gb", "logreg", "linear"],
        help="model (default: rf); 'logreg' is for classification, 'linear' for regression",
    )
    t.add_argument(
        "--task",
        default="auto",
        choices=["auto", "classification", "regression"],
        help="default: regression for a floating-point label, else classification",
    )
    t.add_argument(
        "--cv",
        type=int,
        default=None,
        help="cross-validation folds (default: 10, fewer if the smallest class has fewer "
        "rows; 0 skips cross-validation)",
    )
    t.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="repetitions of the k-fold split with other shuffles, scores averaged "
        "(default: enough for about 2000 held-out predictions, at most 10: 10 up to 200 "
        "rows, 1 from 2000 rows, 1 with --search)",
    )
    t.add_argument(
        "--search", action="store_true", help="nested grid search of the hyper-parameters"
    )
    t.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    t.add_argument("--out", required=True, help="model file to write (e.g. model.zip)")
    t.set_defaults(func=handle_train)

    q = sub.add_parser(
        "predict",
        help="apply a model to a catalog",
        description="Add pred_<label> (and prob_<class>) columns to TABLE; write PREDICTIONS "
        "(.ecsv, .fits or .csv).",
    )
    q.add_argument("model", help="model file written by 'classify train'")
    q.add_argument("table", help="catalog with the model's feature columns")
    q.add_argument("--out", required=True, help="predictions file (.ecsv, .fits, .csv)")
    q.set_defaults(func=handle_predict)

    r = sub.add_parser(
        "report",
        help="print a model's scores and write its figures",
        description="Print the scores of MODEL and write confusion.png (or "
        "predicted_vs_true.png), importance.png and scores.json to --out.",
    )
    r.add_argument("model", help="model file written by 'classify train'")
    r.add_argument("--out", default="classify_report", help="output folder")
    r.set_defaults(func=handle_report)


def handle_train(args: argparse.Namespace) -> int:
    """Train, print the summary, write the model file."""
    from ..classify import train
    from ..classify.tables import join_labels, read_table

    cv = "auto" if args.cv is None else (None if args.cv == 0 else args.cv)
    repeats = "auto" if args.repeats is None else args.repeats
    table = args.table
    label = args.label
    if args.labels:
        label = label or "decision"
        table = join_labels(
            read_table(args.table), args.labels, id_column=args.id_column, label=label,
            source=str(args.table),
        )  # fmt: skip
        print(f"{len(table)} labelled rows from {args.labels}")
    elif not label:
        raise InputError("--label", "give the column to predict (or --labels FILE)")
    model = train(
        table,
        label,
        features=_features(args.features),
        model=args.model,
        task=args.task,
        cv=cv,
        repeats=repeats,
        search=args.search,
        seed=args.seed,
    )
    print(model.summary())
    model.save(args.out)
    print(f"model written to {args.out}")
    return 0


def handle_predict(args: argparse.Namespace) -> int:
    """Load the model, predict the table, write the predictions."""
    from ..classify import load
    from ..io.write import write_catalog

    model = load(args.model)
    out = model.predict(args.table, name=str(args.table))
    suffix = Path(args.out).suffix.lower()
    if suffix not in (".ecsv", ".fits", ".fit", ".csv"):
        raise InputError(args.out, f"unknown catalog format {suffix!r}; use .ecsv, .fits or .csv")
    write_catalog(args.out, out)
    print(
        f"{len(out)} rows predicted ({model.model} {model.task} of {model.label!r}); "
        f"written to {args.out}"
    )
    return 0


def _save_figure(fig, path: Path) -> None:
    from ..io.write import atomic_write

    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def handle_report(args: argparse.Namespace) -> int:
    """Print the summary and write the figures and scores of a model file."""
    from ..classify import load
    from ..classify.plots import confusion_figure, importance_figure, regression_figure
    from ..io.write import atomic_write

    model = load(args.model)
    print(model.summary())
    out = Path(args.out)
    written = []
    if model.confusion is not None:
        _save_figure(confusion_figure(model), out / "confusion.png")
        written.append("confusion.png")
    if model.task == "regression" and model.cv_predictions is not None:
        _save_figure(regression_figure(model), out / "predicted_vs_true.png")
        written.append("predicted_vs_true.png")
    if model.feature_importance is not None:
        _save_figure(importance_figure(model), out / "importance.png")
        written.append("importance.png")
    scores = {
        "model": model.model,
        "task": model.task,
        "label": model.label,
        "features": model.features,
        "classes": None if model.classes is None else [str(c) for c in model.classes],
        "params": model.params,
        "cv": model.cv,
        "cv_scores": model.cv_scores,
        "repeats": model.repeats,
        "cv_std": model.cv_std,
        "cv_std_repeats": model.cv_std_repeats,
        "confusion": None if model.confusion is None else model.confusion.tolist(),
        "versions": model.versions,
    }
    with atomic_write(out / "scores.json") as tmp:
        tmp.write_text(json.dumps(scores, indent=2))
    written.append("scores.json")
    print(f"written to {out}: {', '.join(written)}")
    return 0
