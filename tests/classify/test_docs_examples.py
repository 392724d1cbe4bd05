"""The worked examples of docs/classify.md, executed as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "classify.md"


def _example(name: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- test: {name} -->\s*```python\n(.*?)```", text, re.S)
    assert match, f"example {name!r} not found in {DOC}"
    return match.group(1)


def test_iris_example():
    # The example uses the defaults of train() (as the command line does): this fails if
    # a default model or the default cross-validation protocol gets worse.
    ns: dict = {}
    exec(compile(_example("iris"), f"{DOC}:iris", "exec"), ns)
    for key in ("rf", "svm"):
        model = ns[key]
        assert model.seed == 0 and model.model == key
        # stratified 10-fold cross-validation, repeated 10 times: out-of-fold predictions
        assert (model.cv, model.repeats, len(model.cv_folds)) == (10, 10, 100)
        assert np.all(np.asarray(model.cv_folds["n_test"]) == 15)
        assert model.confusion.sum(axis=1).tolist() == [500, 500, 500]
        acc = np.trace(model.confusion) / 1500
        assert acc == pytest.approx(model.cv_scores["accuracy"], abs=1e-9)
        assert model.cv_scores["accuracy"] >= 0.95, key
        assert model.cv_scores["roc_auc"] >= 0.99, key
        assert model.cv_std_repeats["accuracy"] < 0.01  # stable against the shuffle


def test_galaxy_example(tmp_path, monkeypatch):
    try:
        import morphoscope.measure
        import morphoscope.simulate  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the other stages
        pytest.skip(f"morphoscope.simulate / morphoscope.measure not importable: {exc}")
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(_example("galaxies"), f"{DOC}:galaxies", "exec"), ns)
    model, training, independent = ns["model"], ns["training"], ns["independent"]
    assert model.classes.tolist() == ["spheroid", "disk", "irregular"]
    assert len(training) > 100 and len(independent) > 50
    # the measured rows belong to the galaxies of the truth table: fluxes agree
    assert np.nanmedian(np.asarray(training["flux"])) > 1000
    # well above chance (1/3) on the independent scene and in cross-validation
    assert ns["score"] >= 0.8
    assert model.cv_scores["balanced_accuracy"] >= 0.7
    assert (tmp_path / "classify_confusion.png").read_bytes()[:4] == b"\x89PNG"
