"""Benchmark of morphoscope.classify against bare scikit-learn estimators.

For every model, on two data sets:

* ``iris``: scikit-learn's bundled iris measurements (150 rows, 4 features, 3 species);
* ``galaxies``: features from ``morphoscope.measure`` on simulated scenes
  (``morphoscope.simulate.simulate_scene``, classes spheroid/disk/irregular, S/N > 30),
  measured on the truth segmentation; training scenes and an independent test scene
  with other seeds;

it prints the cross-validated accuracy of the bare scikit-learn estimator (its defaults,
with median imputation where the estimator cannot take NaN, nothing else) next to the
scores of ``morphoscope.classify.train`` (same stratified folds), the balanced accuracy
on the independent galaxy set, and the train and predict times. A regression block
predicts the true Sérsic index of the simulated galaxies from the same features.

Usage::

    python benchmarks/bench_classify.py [--scenes 4] [--seed 0] [--threads 1] [--out FILE.ecsv]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from astropy.table import Table, vstack
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import balanced_accuracy_score, r2_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC, SVR

from morphoscope.classify import CLASSIFIERS, REGRESSORS, feature_matrix, train

BARE_CLASSIFIERS = {
    "rf": lambda s: RandomForestClassifier(random_state=s),
    "svm": lambda s: SVC(random_state=s),
    "gp": lambda s: GaussianProcessClassifier(random_state=s),
    "gb": lambda s: HistGradientBoostingClassifier(random_state=s),
    "logreg": lambda s: LogisticRegression(max_iter=1000),
}
BARE_REGRESSORS = {
    "rf": lambda s: RandomForestRegressor(random_state=s),
    "svm": lambda s: SVR(),
    "gp": lambda s: GaussianProcessRegressor(random_state=s),
    "gb": lambda s: HistGradientBoostingRegressor(random_state=s),
    "linear": lambda s: LinearRegression(),
}


def iris_table() -> Table:
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=False)
    t = Table(iris.data, names=["sepal_length", "sepal_width", "petal_length", "petal_width"])
    t["species"] = iris.target_names[iris.target]
    return t


def galaxy_catalog(seed: int, shape=(512, 512), n_sources: int = 80) -> Table:
    from morphoscope import measure
    from morphoscope.simulate import simulate_scene

    scene = simulate_scene(
        shape,
        n_sources=n_sources,
        seed=seed,
        blend_fraction=0.0,
        class_fractions={"spheroid": 1, "disk": 1, "irregular": 1},
        flux_range=(2000.0, 50000.0),
    )
    band = scene.detection_band
    cat = measure(scene.images[band], scene.segmap, rms=scene.rms[band], labels=scene.truth["id"])
    cat["class"] = scene.truth["class"]
    cat["true_sersic_n"] = scene.truth["n"]
    return cat[scene.truth[f"snr_{band}"] > 30]


def _bare(make, x, y, splitter, scoring):
    est = make_pipeline(SimpleImputer(strategy="median"), make) if np.isnan(x).any() else make
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.mean(cross_val_score(est, x, y, cv=splitter, scoring=scoring)))


def run_classification(name, table, label, features, seed, test=None):
    rows = []
    x = feature_matrix(table, features)
    y = np.asarray(table[label]).astype(str)
    splitter = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    for model in CLASSIFIERS:
        bare = _bare(BARE_CLASSIFIERS[model](seed), x, y, splitter, "accuracy")
        t0 = time.perf_counter()
        m = train(table, label, features=features, model=model, cv=5, seed=seed)
        t_train = time.perf_counter() - t0
        target = test if test is not None else table
        t0 = time.perf_counter()
        pred = m.predict(target)
        t_pred = time.perf_counter() - t0
        test_bacc = (
            balanced_accuracy_score(np.asarray(test[label]).astype(str), pred[f"pred_{label}"])
            if test is not None
            else np.nan
        )
        rows.append(
            {
                "data": name,
                "model": model,
                "n_train": len(table),
                "n_features": len(features),
                "sklearn_cv_acc": bare,
                "cv_acc": m.cv_scores["accuracy"],
                "cv_bal_acc": m.cv_scores["balanced_accuracy"],
                "cv_f1_macro": m.cv_scores["f1_macro"],
                "cv_roc_auc": m.cv_scores["roc_auc"],
                "test_bal_acc": test_bacc,
                "train_s": t_train,
                "predict_s": t_pred,
                "n_predict": len(target),
            }
        )
        print(
            f"{name:9s} {model:7s} sklearn {bare:.3f}  ours {m.cv_scores['accuracy']:.3f}  "
            f"bal {m.cv_scores['balanced_accuracy']:.3f}  test {test_bacc:.3f}  "
            f"train {t_train:.1f}s predict {t_pred:.3f}s",
            flush=True,
        )
    return rows


def run_regression(name, table, label, features, seed, test):
    rows = []
    x = feature_matrix(table, features)
    y = np.asarray(table[label], float)
    splitter = KFold(n_splits=5, shuffle=True, random_state=seed)
    for model in REGRESSORS:
        bare = _bare(BARE_REGRESSORS[model](seed), x, y, splitter, "r2")
        t0 = time.perf_counter()
        m = train(
            table,
            label,
            features=features,
            model=model,
            task="regression",
            cv=5,
            seed=seed,
            importance=False,
        )
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = m.predict(test)
        t_pred = time.perf_counter() - t0
        test_r2 = r2_score(np.asarray(test[label], float), pred[f"pred_{label}"])
        rows.append(
            {
                "data": name,
                "model": model,
                "n_train": len(table),
                "n_features": len(features),
                "sklearn_cv_r2": bare,
                "cv_r2": m.cv_scores["r2"],
                "cv_rmse": m.cv_scores["rmse"],
                "test_r2": test_r2,
                "train_s": t_train,
                "predict_s": t_pred,
            }
        )
        print(
            f"{name:9s} {model:7s} sklearn R2 {bare:.3f}  ours R2 {m.cv_scores['r2']:.3f}  "
            f"RMSE {m.cv_scores['rmse']:.3f}  test R2 {test_r2:.3f}  train {t_train:.1f}s",
            flush=True,
        )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=4, help="simulated training scenes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the classification table here (.ecsv)")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OpenMP/BLAS threads (default 1: stable timings on a shared machine; "
        "0 = library default)",
    )
    args = ap.parse_args(argv)
    if args.threads > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.threads)

    iris = iris_table()
    rows = run_classification("iris", iris, "species", iris.colnames[:4], args.seed)

    t0 = time.perf_counter()
    gal_train = vstack([galaxy_catalog(s) for s in range(1, args.scenes + 1)])
    gal_test = vstack([galaxy_catalog(s) for s in (101, 102)])
    print(
        f"simulated + measured {args.scenes + 2} scenes in {time.perf_counter() - t0:.1f}s: "
        f"{len(gal_train)} training, {len(gal_test)} test galaxies"
    )
    feats = [
        c
        for c in gal_train.colnames
        if c
        not in (
            "label",
            "xc_centroid",
            "yc_centroid",
            "orientation_centroid",
            "flag",
            "class",
            "true_sersic_n",
        )
    ]
    rows += run_classification("galaxies", gal_train, "class", feats, args.seed, test=gal_test)
    table = Table(rows=rows)
    for c in table.colnames:
        if table[c].dtype.kind == "f":
            table[c].format = ".3f"
    print()
    table.pprint_all()

    reg = Table(
        rows=run_regression("sersic_n", gal_train, "true_sersic_n", feats, args.seed, gal_test)
    )
    for c in reg.colnames:
        if reg[c].dtype.kind == "f":
            reg[c].format = ".3f"
    print()
    reg.pprint_all()
    if args.out:
        from morphoscope.io.write import write_catalog

        write_catalog(args.out, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
