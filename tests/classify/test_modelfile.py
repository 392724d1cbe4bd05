"""The safe model file: round trip, version and feature checks, corrupted files."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from morphoscope.classify import load, train
from morphoscope.classify.modelfile import FORMAT_VERSION
from morphoscope.exceptions import InputError, MorphoscopeWarning

from .conftest import blobs


def _rewrite(src, dst, *, meta=None, arrays=None, drop=None):
    """Copy a model file, replacing its JSON and/or npz member."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if item.filename == drop:
                continue
            data = zin.read(item.filename)
            if item.filename.endswith(".json") and meta is not None:
                data = json.dumps(meta(json.loads(data))).encode()
            if item.filename.endswith(".npz") and arrays is not None:
                data = arrays
            zout.writestr(item.filename, data)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("models")
    table = blobs(n_per_class=20, seed=1)
    table["flag"][2] = 64  # MEASURE_FAILED: imputed, also after loading
    new = blobs(n_per_class=8, seed=2)
    new["gini"][0] = np.nan
    new.write(tmp / "new.ecsv")
    paths = {}
    for model in ("rf", "svm", "gp", "gb", "logreg"):
        m = train(
            table,
            "class",
            model=model,
            cv=3,
            repeats=1,
            seed=3,
            importance=(model == "svm"),
            params={"n_estimators": 40} if model == "rf" else None,
        )
        paths[model] = tmp / f"{model}.zip"
        m.save(paths[model])
        np.save(tmp / f"{model}_probs.npy", m.predict_proba(new))
    return tmp, paths


def test_round_trip_in_fresh_process(saved):
    tmp, paths = saved
    code = (
        "import sys, numpy as np, warnings\n"
        "warnings.simplefilter('error')\n"
        "from morphoscope.classify import load\n"
        "for name in sys.argv[2:]:\n"
        "    m = load(f'{sys.argv[1]}/{name}.zip')\n"
        "    p = m.predict_proba(f'{sys.argv[1]}/new.ecsv')\n"
        "    np.save(f'{sys.argv[1]}/{name}_loaded.npy', p)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp), *paths],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    for name in paths:
        before = np.load(tmp / f"{name}_probs.npy")
        after = np.load(tmp / f"{name}_loaded.npy")
        assert before.shape == (24, 3)
        np.testing.assert_array_equal(after, before, err_msg=name)


def test_loaded_model_keeps_everything(saved, tmp_path):
    _, paths = saved
    m = load(paths["svm"])
    assert m.model == "svm" and m.task == "classification" and m.label == "class"
    assert m.features == ["gini", "m20", "concentration"]
    assert m.classes.tolist() == ["spheroid", "disk", "irregular"]
    assert m.params == {"C": 1.0, "gamma": "scale"}
    assert m.cv == 3 and m.seed == 3 and m.n_train == 60
    assert set(m.cv_scores) == {"accuracy", "balanced_accuracy", "f1_macro", "roc_auc"}
    assert m.confusion.sum() == 60 and m.confusion.dtype.kind == "i"
    assert sorted(m.feature_importance["feature"]) == sorted(m.features)
    assert m.cv_predictions.tolist()[:1][0] in m.classes.tolist()
    assert m.versions["scikit-learn"]
    assert np.isnan(m._x[2]).all()  # the flagged row was stored masked
    # saving the loaded model again gives the same content
    m.save(tmp_path / "again.zip")
    again = load(tmp_path / "again.zip")
    assert again.cv_scores == m.cv_scores and again.params == m.params


def test_regression_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    t = blobs(n_per_class=20, seed=5)
    t["sersic_n"] = 1 + 3 * t["gini"] + rng.normal(0, 0.01, len(t))
    m = train(
        t, "sersic_n", features=["gini", "m20"], model="svm", cv=3, repeats=1, importance=False
    )
    m.save(tmp_path / "n.zip")
    back = load(tmp_path / "n.zip")
    assert back.task == "regression" and back.classes is None
    np.testing.assert_array_equal(back.predict(t)["pred_sersic_n"], m.predict(t)["pred_sersic_n"])


def test_missing_columns_after_load(saved):
    tmp, paths = saved
    m = load(paths["rf"])
    t = blobs(n_per_class=3)
    t.remove_columns(["m20", "concentration"])
    with pytest.raises(InputError) as info:
        m.predict(t)
    assert "missing feature columns: m20, concentration" in str(info.value)
    t.write(tmp / "partial.ecsv")
    with pytest.raises(InputError, match=r"partial\.ecsv: missing feature columns: m20"):
        m.predict(tmp / "partial.ecsv")


def test_corrupted_and_foreign_files(saved, tmp_path):
    _, paths = saved
    good = paths["logreg"]
    cases = {}
    cases["random.zip"] = b"\x00\x01garbage" * 10
    data = good.read_bytes()
    cases["truncated.zip"] = data[: len(data) // 2]
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    _rewrite(good, tmp_path / "nojson.zip", drop="morphoscope_model.json")
    _rewrite(good, tmp_path / "foreign.zip", meta=lambda m: {**m, "format": "something-else"})
    _rewrite(good, tmp_path / "shapes.zip", meta=lambda m: {**m, "features": ["gini"]})
    _rewrite(good, tmp_path / "badparam.zip", meta=lambda m: {**m, "params": {"C": 1, "x": 2}})
    buf = io.BytesIO()
    np.savez(buf, x=np.array([object()], dtype=object), y=np.zeros(1), fingerprint=np.zeros(1))
    _rewrite(good, tmp_path / "pickled.zip", arrays=buf.getvalue())
    (tmp_path / "text.zip").write_text("{}")
    for name in [
        *cases,
        "nojson.zip",
        "foreign.zip",
        "shapes.zip",
        "badparam.zip",
        "pickled.zip",
        "text.zip",
    ]:
        path = tmp_path / name
        with pytest.raises(InputError) as info:
            load(path)
        assert str(info.value).startswith(str(path) + ": "), name
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "absent.zip")
    _rewrite(
        good, tmp_path / "future.zip", meta=lambda m: {**m, "format_version": FORMAT_VERSION + 1}
    )
    with pytest.raises(InputError, match="newer than this morphoscope reads"):
        load(tmp_path / "future.zip")


def test_version_mismatch_is_reported(saved, tmp_path):
    _, paths = saved

    def old(meta):
        return {**meta, "versions": {**meta["versions"], "scikit-learn": "0.0.1"}}

    _rewrite(paths["logreg"], tmp_path / "old.zip", meta=old)
    with pytest.warns(MorphoscopeWarning, match=r"scikit-learn 0\.0\.1 \(saved\) vs"):
        m = load(tmp_path / "old.zip")
    assert m.versions["scikit-learn"] == "0.0.1"
    with pytest.raises(InputError, match="library versions differ"):
        load(tmp_path / "old.zip", strict=True)

    # a changed training set no longer reproduces the saved fingerprint
    with zipfile.ZipFile(paths["logreg"]) as zf, np.load(io.BytesIO(zf.read("training.npz"))) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["y"] = np.roll(arrays["y"], 7)  # labels moved to other rows
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _rewrite(paths["logreg"], tmp_path / "tampered.zip", arrays=buf.getvalue())
    with pytest.warns(MorphoscopeWarning, match="does not reproduce the saved one"):
        load(tmp_path / "tampered.zip")
