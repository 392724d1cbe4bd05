"""Benchmark of morphoscope.classify against bare scikit-learn estimators.

For every model, on two data sets:

* ``iris``: scikit-learn's bundled iris measurements (150 rows, 4 features, 3 species);
* ``galaxies``: features from ``morphoscope.measure`` on simulated scenes
  (``morphoscope.simulate.simulate_scene``, classes spheroid/disk/irregular, S/N > 30),
  measured on the truth segmentation; training scenes and an independent test scene
  with other seeds;

it prints the cross-validated accuracy of the bare scikit-learn estimator (its defaults,
with median imputation where the estimator cannot take NaN, nothing else) next to the
scores of ``morphoscope.classify.train`` with its default protocol (stratified 10-fold,
repeated: 10 times for iris, 7 for the galaxies; the bare estimator on the same folds),
the balanced accuracy on the independent galaxy set, and the train and predict times. A
regression block predicts the true Sérsic index of the simulated galaxies from the same
features. ``--seeds N`` adds the spread over seeds 0..N-1: the iris accuracy of the
random forest and the SVM with the defaults, and the independent-set balanced accuracy
of every model on the galaxies.

The galaxies are measured with the PSF of the simulated scene (PSF-convolved Sérsic fit),
as one measures real data; ``--cache DIR`` keeps the measured catalogs there (measuring
is most of the run time).

Usage::

    python benchmarks/bench_classify.py [--scenes 4] [--seed 0] [--seeds N] [--threads 1]
                                        [--cache DIR] [--out FILE.ecsv]
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
from sklearn.model_selection import (
    KFold,
    RepeatedKFold,
    RepeatedStratifiedKFold,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC, SVR

from morphoscope.classify import (
    CLASSIFIERS,
    REGRESSORS,
    auto_folds,
    auto_repeats,
    feature_matrix,
    train,
)

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


def galaxy_catalog(seed: int, shape=(512, 512), n_sources: int = 80, cache=None) -> Table:
    from pathlib import Path

    from morphoscope import measure
    from morphoscope.simulate import simulate_scene

    path = (
        Path(cache) / f"galaxies_{seed}_{shape[0]}x{shape[1]}_{n_sources}.ecsv" if cache else None
    )
    if path is not None and path.is_file():
        return Table.read(path)

    scene = simulate_scene(
        shape,
        n_sources=n_sources,
        seed=seed,
        blend_fraction=0.0,
        class_fractions={"spheroid": 1, "disk": 1, "irregular": 1},
        flux_range=(2000.0, 50000.0),
    )
    band = scene.detection_band
    cat = measure(
        scene.images[band],
        scene.segmap,
        rms=scene.rms[band],
        psf=scene.psfs[band],
        labels=scene.truth["id"],
    )
    cat["class"] = scene.truth["class"]
    cat["true_sersic_n"] = scene.truth["n"]
    cat = cat[scene.truth[f"snr_{band}"] > 30]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        cat.write(path, overwrite=True)
    return cat


def splitter_of(y, seed, classification=True):
    """The folds ``train`` uses by default (cv="auto", repeats="auto")."""
    if classification:
        k = auto_folds(np.unique(y, return_counts=True)[1])
    else:
        k = auto_folds(len(y), "regression")
    r = auto_repeats(len(y))
    if r == 1:
        cls = StratifiedKFold if classification else KFold
        return cls(n_splits=k, shuffle=True, random_state=seed)
    cls = RepeatedStratifiedKFold if classification else RepeatedKFold
    return cls(n_splits=k, n_repeats=r, random_state=seed)


def _bare(make, x, y, splitter, scoring):
    est = make_pipeline(SimpleImputer(strategy="median"), make) if np.isnan(x).any() else make
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.mean(cross_val_score(est, x, y, cv=splitter, scoring=scoring)))


def run_classification(name, table, label, features, seed, test=None):
    rows = []
    x = feature_matrix(table, features)
    y = np.asarray(table[label]).astype(str)
    splitter = splitter_of(y, seed)
    for model in CLASSIFIERS:
        bare = _bare(BARE_CLASSIFIERS[model](seed), x, y, splitter, "accuracy")
        t0 = time.perf_counter()
        m = train(table, label, features=features, model=model, seed=seed)
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
                "folds": f"{m.cv}x{m.repeats}",
                "sklearn_cv_acc": bare,
                "cv_acc": m.cv_scores["accuracy"],
                "cv_acc_std_repeats": m.cv_std_repeats.get("accuracy", np.nan),
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
    splitter = splitter_of(y, seed, classification=False)
    for model in REGRESSORS:
        bare = _bare(BARE_REGRESSORS[model](seed), x, y, splitter, "r2")
        t0 = time.perf_counter()
        m = train(
            table,
            label,
            features=features,
            model=model,
            task="regression",
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
                "folds": f"{m.cv}x{m.repeats}",
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


def _spread(values) -> str:
    v = np.asarray(values, float)
    return (
        f"min {v.min():.3f} mean {v.mean():.3f} +/- {v.std():.3f} max {v.max():.3f} | "
        + " ".join(f"{a:.3f}" for a in v)
    )


def run_seeds(n_seeds, iris, gal_train, gal_test, feats):
    """Spread over seeds: iris CV accuracy (rf, svm; defaults), galaxy independent-set
    balanced accuracy of every model (final fit only: it does not depend on the CV)."""
    print(f"\nseeds 0..{n_seeds - 1}")
    for model in ("rf", "svm"):
        accs = [
            train(iris, "species", model=model, seed=s, importance=False).cv_scores["accuracy"]
            for s in range(n_seeds)
        ]
        print(f"iris     {model:7s} CV accuracy   {_spread(accs)}", flush=True)
    truth = np.asarray(gal_test["class"]).astype(str)
    for model in CLASSIFIERS:
        accs = []
        for s in range(n_seeds):
            m = train(gal_train, "class", features=feats, model=model, cv=None, seed=s)
            accs.append(balanced_accuracy_score(truth, m.predict(gal_test)["pred_class"]))
        print(f"galaxies {model:7s} independent balanced accuracy {_spread(accs)}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=4, help="simulated training scenes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=0, help="also report the spread over seeds 0..N-1")
    ap.add_argument("--cache", help="folder for the measured galaxy catalogs")
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
    gal_train = vstack([galaxy_catalog(s, cache=args.cache) for s in range(1, args.scenes + 1)])
    gal_test = vstack([galaxy_catalog(s, cache=args.cache) for s in (101, 102)])
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
    if args.seeds > 0:
        run_seeds(args.seeds, iris, gal_train, gal_test, feats)
    if args.out:
        from morphoscope.io.write import write_catalog

        write_catalog(args.out, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
