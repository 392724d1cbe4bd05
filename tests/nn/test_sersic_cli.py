"""``morphoscope nn train`` and ``morphoscope nn predict``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from morphoscope.cli import main
from morphoscope.exceptions import InputError, ParameterError
from morphoscope.nn.sersic import SersicNet, load_config
from morphoscope.simulate import simulate_stamps


def test_train_tiny_config(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "n_train: 96\nn_val: 48\nn_test: 48\nepochs: 2\nbatch_size: 32\nwidth: 8\n"
        f"latent: 16\nthreads: 1\ncache_dir: {tmp_path / 'cache'}\n"
    )
    out = tmp_path / "model"
    assert main(["nn", "train", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    for name in ("sersicnet.pt", "sersicnet.json", "model_card.json", "model_card.md",
                 "loss_curve.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    card = json.loads((out / "model_card.json").read_text())
    assert card["data"]["n_train"] == 96 and card["training"]["epochs"] == 2
    assert len(card["history"]["val_loss"]) == 2
    assert card["history"]["samples_seen"] == [96, 192]
    assert all(np.isfinite(card["history"]["val_n_scatter"]))
    assert card["training"]["samples_seen"] == 192
    assert "by_resolution" in card["metrics_snr_gt_30"]
    assert card["training"]["wall_seconds"] > 0
    assert {"n", "r_e", "q"} <= set(card["metrics_snr_gt_30"]["summary"])
    assert "Wall time" in (out / "model_card.md").read_text()
    assert "wrote" in capsys.readouterr().out
    net = SersicNet.load(out / "sersicnet.pt")
    assert net.width == 8 and net.latent == 16
    assert any((tmp_path / "cache").rglob("train_96.npz"))  # simulated once, cached


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epoch: 3\n")
    with pytest.raises(InputError, match="unknown keys"):
        load_config(bad)
    with pytest.raises(ParameterError, match="epochs"):
        load_config(epochs="many")
    with pytest.raises(ParameterError, match="n_weight"):
        load_config(n_weight=0)
    with pytest.raises(ParameterError, match="beta"):
        load_config(beta=1.5)
    with pytest.raises(InputError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    assert main(["nn", "train", "--config", str(bad)]) == 2


def test_predict_command(tmp_path):
    st = simulate_stamps(2, seed=11, neighbours=0, sersic_n_range=(1, 4),
                         class_fractions=[0.5, 0.5, 0, 0], snr_range=(100, 200))  # fmt: skip
    img = np.zeros((80, 160), np.float32)
    seg = np.zeros(img.shape, np.int32)
    for k in range(2):
        img[8:72, 10 + 76 * k : 74 + 76 * k] = st.images[k] / st.rms[k]
        seg[8:72, 10 + 76 * k : 74 + 76 * k] = (st.segmaps[k] == 1) * (k + 1)
    fits.writeto(tmp_path / "img.fits", img)
    fits.writeto(tmp_path / "seg.fits", seg)
    out = tmp_path / "cat.ecsv"
    code = main(["nn", "predict", str(tmp_path / "img.fits"), "--segmap",
                 str(tmp_path / "seg.fits"), "--psf-fwhm", "3", "--rms", "1",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    cat = Table.read(out)
    assert len(cat) == 2 and "sersic_n" in cat.colnames and np.all(np.isfinite(cat["sersic_n"]))
