"""Training, cross-validation, prediction and input handling of morphoscope.classify."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table

from morphoscope.classify import (
    CLASSIFIERS,
    REGRESSORS,
    default_features,
    feature_matrix,
    read_table,
    train,
)
from morphoscope.exceptions import InputError, MorphoscopeWarning, ParameterError
from morphoscope.flags import Flag

from .conftest import IRIS_FEATURES, blobs

# Smaller ensembles keep the tests fast; the defaults are exercised by the iris test.
FAST = {"rf": {"n_estimators": 50}, "gb": {"max_iter": 40}}


@pytest.mark.parametrize("model", ["rf", "svm"])
def test_iris_confusion_matrix(iris, model):
    # The accuracy of the default protocol (>= 0.95) is checked by the worked example of
    # docs/classify.md (test_docs_examples.py); this one checks the bookkeeping, cheaply.
    m = train(
        iris, "species", model=model, cv=5, repeats=1, seed=1, importance=False,
        params=FAST.get(model),
    )  # fmt: skip
    assert m.features == IRIS_FEATURES
    assert (m.cv, m.repeats) == (5, 1) and m.cv_std_repeats == {}
    assert m.cv_scores["accuracy"] >= 0.9
    assert m.cv_scores["roc_auc"] >= 0.98
    # Confusion matrix: every row counted once; its diagonal matches the accuracy.
    assert m.confusion.sum(axis=1).tolist() == [50, 50, 50]
    acc = np.trace(m.confusion) / m.confusion.sum()
    assert acc == pytest.approx(m.cv_scores["accuracy"], abs=1e-9)
    # setosa is linearly separable from the others
    assert m.confusion[0, 1:].sum() <= 5


def test_auto_folds_and_repeats(blob_table):
    from morphoscope.classify import auto_folds, auto_repeats

    assert auto_folds([50, 50, 50]) == 10 and auto_folds([30, 4]) == 4
    assert auto_folds([1, 9]) == 2 and auto_folds(6, "regression") == 6
    assert [auto_repeats(n) for n in (10, 150, 200, 201, 1000, 1999, 2000, 10**6)] == [
        10, 10, 10, 10, 2, 2, 1, 1,
    ]  # fmt: skip
    assert auto_repeats(150, search=True) == 1
    # the defaults: 10 folds; 2000 / 90 rows -> 10 repeats; a class of 6 rows -> 6 folds
    m = train(blob_table, "class", model="logreg", importance=False)
    assert (m.cv, m.repeats, len(m.cv_folds)) == (10, 10, 100)
    assert m.confusion.sum() == 10 * len(blob_table)
    assert set(m.cv_std_repeats) == set(m.cv_scores)
    assert m.cv_folds["repeat"].tolist() == np.repeat(np.arange(10), 10).tolist()
    few = blob_table[np.r_[0:30, 30:36, 60:90]]
    m = train(few, "class", model="logreg", repeats=1, importance=False)
    assert m.cv == 6 and len(m.cv_folds) == 6
    with pytest.raises(ParameterError, match="repeats"):
        train(blob_table, "class", repeats="many")
    with pytest.raises(ParameterError, match="cv"):
        train(blob_table, "class", cv="ten")


def test_repeated_cv(iris):
    m = train(iris, "species", model="logreg", cv=3, repeats=2, seed=0)
    assert len(m.cv_folds) == 6
    assert m.confusion.sum(axis=1).tolist() == [100, 100, 100]  # each row counted twice
    assert np.trace(m.confusion) / 300 == pytest.approx(m.cv_scores["accuracy"], abs=1e-9)
    # the spread of the two repetitions' means, smaller than the spread over the folds
    acc = np.asarray(m.cv_folds["accuracy"]).reshape(2, 3).mean(axis=1)
    assert m.cv_std_repeats["accuracy"] == pytest.approx(np.std(acc), abs=1e-12)
    assert m.cv_std_repeats["accuracy"] <= m.cv_std["accuracy"]
    # the importance comes from the folds of the first repetition
    assert "x 2 repeats" in m.summary() and m.feature_importance is not None


def test_scores_and_importance(iris):
    m = train(iris, "species", model="logreg", cv=5, repeats=1, seed=0)
    assert set(m.cv_scores) == {"accuracy", "balanced_accuracy", "f1_macro", "roc_auc"}
    assert len(m.cv_folds) == 5
    assert np.all(np.asarray(m.cv_folds["n_test"]) == 30)
    imp = m.feature_importance
    assert sorted(imp["feature"]) == sorted(IRIS_FEATURES)
    # the petal measurements separate the species, the sepal ones much less
    assert set(imp["feature"][:2]) == {"petal_length", "petal_width"}
    assert imp["importance"][0] > 0.1
    assert np.all(np.diff(imp["importance"]) <= 0)
    assert m.cv_predictions.shape == (150,)
    assert (m.cv_predictions == iris["species"]).mean() == pytest.approx(
        m.cv_scores["accuracy"], abs=0.02
    )


@pytest.mark.parametrize("model", CLASSIFIERS)
def test_every_classifier_trains_and_predicts(model):
    t = blobs(n_per_class=15, seed=3)
    m = train(
        t, "class", model=model, cv=3, repeats=1, seed=0, importance=False, params=FAST.get(model)
    )
    assert m.features == ["gini", "m20", "concentration"]  # ids, positions and flag left out
    assert list(m.classes) == ["spheroid", "disk", "irregular"]  # morphoscope class order
    assert m.cv_scores["balanced_accuracy"] > 0.8
    new = blobs(n_per_class=10, seed=4)
    out = m.predict(new)
    assert len(out) == len(new)
    assert out.colnames[: len(new.colnames)] == new.colnames
    probs = np.column_stack([out[f"prob_{c}"] for c in m.classes])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert np.all(out["pred_class"] == m.classes[np.argmax(probs, axis=1)])
    assert (out["pred_class"] == new["class"]).mean() > 0.8
    assert "pred_class" not in new.colnames  # the caller's table is untouched


def _regression_table(n=120, seed=0) -> Table:
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, n))
    t = Table({"gini": a, "m20": b, "asymmetry": c})
    t["sersic_n"] = 2.0 + 1.5 * a - 0.8 * b + 0.05 * rng.normal(size=n)  # c is noise
    return t


@pytest.mark.parametrize("model", REGRESSORS)
def test_every_regressor(model):
    t = _regression_table(90)
    m = train(
        t,
        "sersic_n",
        model=model,
        cv=3,
        repeats=1,
        seed=0,
        importance=(model == "linear"),
        params=FAST.get(model),
    )
    assert m.task == "regression"  # float label -> regression
    assert set(m.cv_scores) == {"r2", "rmse", "mae"}
    assert m.cv_scores["r2"] > (0.97 if model in ("linear", "gp") else 0.75)
    assert m.cv_scores["rmse"] < 0.6
    out = m.predict(_regression_table(40, seed=9))
    resid = out["pred_sersic_n"] - out["sersic_n"]
    assert np.sqrt(np.mean(resid**2)) < 0.7
    if model == "linear":
        assert m.feature_importance["feature"][0] == "gini"
        assert m.feature_importance["feature"][-1] == "asymmetry"


def test_task_override_and_errors(blob_table):
    t = blob_table
    t["code"] = np.repeat([1.0, 2.0, 3.0], 30)
    m = train(t, "code", task="classification", model="logreg", cv=3, repeats=1, importance=False)
    assert m.task == "classification" and list(m.classes) == [1.0, 2.0, 3.0]
    with pytest.raises(ParameterError, match="'model'"):
        train(t, "class", model="logreg", task="regression")
    with pytest.raises(ParameterError, match="'model'"):
        train(t, "class", model="knn")
    with pytest.raises(ParameterError, match="'cv'"):
        train(t, "class", cv=1)
    with pytest.raises(ParameterError, match="'task'"):
        train(t, "class", task="clustering")
    with pytest.raises(ParameterError, match="'params'"):
        train(t, "class", model="svm", params={"n_estimators": 3})
    with pytest.raises(InputError, match="missing feature columns: sersic_n, smoothness"):
        train(t, "class", features=["gini", "sersic_n", "smoothness"])
    with pytest.raises(InputError, match="missing label column 'kind'"):
        train(t, "kind")
    tiny = {"gini": np.r_[np.zeros(10), np.ones(2)], "k": ["a"] * 10 + ["b"] * 2}
    with pytest.raises(InputError, match=r"table: cannot train model 'svm' on this table \("):
        train(tiny, "k", model="svm", cv=2, search=True)  # 1 row of 'b' per training fold
    few = t[:33]  # 30 spheroids, 3 disks
    with pytest.raises(InputError, match=r"'disk' \(3\)"):
        train(few, "class", cv=5)


def test_nan_and_flagged_features_are_imputed(blob_table):
    t = blob_table.copy()
    t["gini"][::7] = np.nan
    t["m20"][3] = np.inf
    t["m20"][4] = 1e300  # e.g. the error of a diverged fit: beyond float32, where trees work
    t["flag"][5] = int(Flag.MEASURE_FAILED)
    t["flag"][6] = int(Flag.EDGE)  # not a bad bit by default: features kept
    x = feature_matrix(t, ["gini", "m20"])
    assert np.isnan(x[0, 0]) and np.isnan(x[3, 1]) and np.isnan(x[4, 1])
    assert np.all(np.isnan(x[5])) and np.all(np.isfinite(x[6]))
    assert t["flag"][5] == int(Flag.MEASURE_FAILED) and np.isnan(t["gini"][0])  # not modified
    for model in ("gb", "rf"):
        m = train(t, "class", model=model, cv=3, repeats=1, importance=False, params=FAST[model])
        assert m.cv_scores["balanced_accuracy"] > 0.8
        out = m.predict(t)
        assert np.all(np.isfinite(out["prob_disk"]))
    # a flagged row is predicted like a row of NaN: flag masking also applies to predictions
    nanrow = t[[5]].copy()
    for name in m.features:
        nanrow[name] = np.nan
    nanrow["flag"] = 0
    assert m.predict(t[[5]])["prob_disk"][0] == pytest.approx(m.predict(nanrow)["prob_disk"][0])
    m0 = train(t, "class", model="logreg", cv=3, repeats=1, importance=False, bad_flags=0)
    assert np.isfinite(m0._x[5]).all()


def test_missing_labels_left_out(blob_table):
    t = Table(blob_table, masked=True)
    t["class"].mask[:4] = True
    with pytest.warns(MorphoscopeWarning, match="4 rows without a 'class' value"):
        m = train(t, "class", model="logreg", cv=3, repeats=1, importance=False)
    assert m.n_train == len(t) - 4


def test_string_and_integer_labels(blob_table):
    t = blob_table
    t["class_code"] = np.repeat([3, 1, 2], 30)  # integers: classification, sorted classes
    m = train(
        t, "class_code", features=["gini", "m20"], model="rf", cv=3, repeats=1, importance=False
    )
    assert m.task == "classification" and m.classes.tolist() == [1, 2, 3]
    out = m.predict(t)
    assert out["pred_class_code"].dtype.kind == "i"
    assert {"prob_1", "prob_2", "prob_3"} <= set(out.colnames)
    t["species"] = np.repeat(["b c", "a", "Zeta"], 30)
    m = train(
        t, "species", features=["gini", "m20"], model="logreg", cv=3, repeats=1, importance=False
    )
    assert m.classes.tolist() == ["Zeta", "a", "b c"]
    assert set(m.predict(t)["pred_species"]) <= {"Zeta", "a", "b c"}


def test_default_features_and_read_table(tmp_path, blob_table):
    t = blob_table
    t["sersic_n"] = 1.0
    t["orientation_centroid"] = 0.3
    t["prob_disk"] = 0.5
    assert default_features(t, "class") == ["gini", "m20", "concentration", "sersic_n"]
    assert default_features(t, "sersic_n") == ["gini", "m20", "concentration"]
    other = Table({"id": [1, 2], "a": [1.0, 2.0], "b": [3, 4], "name": ["x", "y"]})
    assert default_features(other, "name") == ["a", "b"]  # not a morphoscope catalog
    for suffix in (".ecsv", ".fits", ".csv"):
        path = tmp_path / f"cat{suffix}"
        t.write(path)
        back = read_table(path)
        assert back.colnames == t.colnames and len(back) == len(t)
    assert read_table(t) is t
    assert read_table({"a": [1, 2]}).colnames == ["a"]
    with pytest.raises(InputError, match="nope.ecsv: no such file"):
        read_table(tmp_path / "nope.ecsv")
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"not a fits file")
    with pytest.raises(InputError, match="bad.fits: cannot read"):
        read_table(bad)


def test_pandas_dataframe(blob_table):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({k: np.asarray(blob_table[k]) for k in blob_table.colnames})
    m = train(df, "class", model="logreg", cv=3, repeats=1, importance=False)
    assert m.predict(df)["pred_class"].shape == (90,)


def test_predict_missing_columns(blob_table):
    m = train(blob_table, "class", model="logreg", cv=3, repeats=1, importance=False)
    t = blob_table.copy()
    t.remove_columns(["gini", "concentration"])
    with pytest.raises(InputError) as info:
        m.predict(t)
    assert str(info.value).startswith("table: missing feature columns: gini, concentration")
    with pytest.raises(InputError, match="new.ecsv: missing feature columns: gini"):
        m.predict(t, name="new.ecsv")


def test_search_is_nested():
    t = _regression_table(60)
    m = train(t, "sersic_n", model="linear", cv=3, repeats=1, search=True, seed=0, importance=False)
    assert "params" in m.cv_folds.colnames and len(m.cv_folds) == 3
    # a nearly noiseless linear target: weak regularisation wins in every fold
    assert m.params["alpha"] in (0.01, 0.1)
    assert all(json.loads(p)["alpha"] in (0.01, 0.1) for p in m.cv_folds["params"])
    assert m.cv_scores["r2"] > 0.99


def test_seed_reproducible(blob_table):
    a = train(blob_table, "class", model="rf", cv=3, repeats=1, seed=7, params=FAST["rf"])
    b = train(blob_table, "class", model="rf", cv=3, repeats=1, seed=7, params=FAST["rf"])
    assert a.cv_scores == b.cv_scores
    np.testing.assert_array_equal(
        a.predict(blob_table)["prob_disk"], b.predict(blob_table)["prob_disk"]
    )
