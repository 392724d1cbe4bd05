"""``morphoscope classify train|predict|report`` through morphoscope.cli.main."""

from __future__ import annotations

import json

import numpy as np
from astropy.table import Table

from morphoscope.cli import main

from .conftest import blobs


def test_train_predict_report(tmp_path, capsys):
    train_path = tmp_path / "train.ecsv"
    blobs(n_per_class=20, seed=0).write(train_path)
    new = blobs(n_per_class=5, seed=1)
    new.remove_column("class")
    new.write(tmp_path / "new.ecsv")
    model = tmp_path / "model.zip"
    rc = main(
        [
            "classify",
            "train",
            str(train_path),
            "--label",
            "class",
            "--model",
            "logreg",
            "--features",
            "gini,m20",
            "concentration",
            "--cv",
            "4",
            "--seed",
            "2",
            "--out",
            str(model),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "4-fold cross-validation x 10 repeats (seed 2)" in out  # 60 rows: 10 repeats
    assert "balanced_accuracy" in out and "features: gini, m20, concentration" in out
    assert model.is_file()

    pred = tmp_path / "pred.fits"
    rc = main(["classify", "predict", str(model), str(tmp_path / "new.ecsv"), "--out", str(pred)])
    assert rc == 0
    t = Table.read(pred)
    assert len(t) == 15
    assert set(np.asarray(t["pred_class"]).astype(str)) <= {"spheroid", "disk", "irregular"}
    assert (
        np.asarray(t["pred_class"]).astype(str) == np.repeat(["spheroid", "disk", "irregular"], 5)
    ).mean() > 0.8
    np.testing.assert_allclose(t["prob_spheroid"] + t["prob_disk"] + t["prob_irregular"], 1.0)

    rep = tmp_path / "report"
    rc = main(["classify", "report", str(model), "--out", str(rep)])
    assert rc == 0
    for name in ("confusion.png", "importance.png"):
        assert (rep / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    scores = json.loads((rep / "scores.json").read_text())
    assert scores["classes"] == ["spheroid", "disk", "irregular"]
    assert np.sum(scores["confusion"]) == 600 and scores["repeats"] == 10  # each row 10 times
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporary files


def test_regression_report(tmp_path, capsys):
    t = blobs(n_per_class=15, seed=0)
    t["sersic_n"] = 1.0 + 4.0 * t["gini"]
    t.write(tmp_path / "t.csv")
    model = tmp_path / "n.zip"
    assert (
        main(
            [
                "classify",
                "train",
                str(tmp_path / "t.csv"),
                "--label",
                "sersic_n",
                "--model",
                "linear",
                "--cv",
                "3",
                "--out",
                str(model),
            ]
        )
        == 0
    )
    assert "r2" in capsys.readouterr().out
    assert main(["classify", "report", str(model), "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "predicted_vs_true.png").is_file()


def test_errors_exit_2(tmp_path, capsys):
    path = tmp_path / "train.ecsv"
    blobs(n_per_class=10).write(path)
    rc = main(["classify", "train", str(path), "--label", "kind", "--out", str(tmp_path / "m.zip")])
    assert rc == 2
    assert "missing label column 'kind'" in capsys.readouterr().err
    (tmp_path / "bad.zip").write_bytes(b"nonsense")
    rc = main(
        [
            "classify",
            "predict",
            str(tmp_path / "bad.zip"),
            str(path),
            "--out",
            str(tmp_path / "p.ecsv"),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'bad.zip'}: not a morphoscope model file" in err
    assert not (tmp_path / "m.zip").exists() and not (tmp_path / "p.ecsv").exists()
