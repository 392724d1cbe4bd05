"""Segment Anything backend: stretch, tiles, prompts, masks -> segmap, checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import gaussian_source

import morphoscope as ms
from morphoscope.exceptions import InputError, ParameterError
from morphoscope.segment import segment_image
from morphoscope.segment.sam import (
    ENV_VAR,
    SamBackend,
    assign_points,
    config,
    masks_to_segmap,
    plan_tiles,
    segment_sam,
    stretch_to_rgb,
    tile_origins,
)
from morphoscope.segment.sam.tiles import inner_margin

SRC = str(Path(ms.__file__).resolve().parents[1])


def _field(shape=(150, 130), seed=0):
    """Unit-noise field of five well-separated round sources spread over several tiles."""
    rng = np.random.default_rng(seed)
    img = rng.normal(0, 1, shape)
    truth = np.array([(20, 30), (70, 60), (110, 120), (62, 131), (100, 20)], float)
    truth = truth[(truth[:, 0] < shape[1] - 8) & (truth[:, 1] < shape[0] - 8)]
    for x, y in truth:
        img += gaussian_source(shape, x, y, 3000, 2.0)
    return img, truth


@pytest.fixture(autouse=True)
def _no_default_checkpoint(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setitem(config, "checkpoint", None)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A real SamModel with random weights and a 64-pixel input, saved with save_pretrained."""
    pytest.importorskip("transformers")
    import torch
    from transformers import SamConfig, SamModel

    torch.manual_seed(0)
    cfg = SamConfig(
        vision_config=dict(
            hidden_size=32,
            output_channels=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=64,
            patch_size=8,
            window_size=4,
            global_attn_indexes=[1],
            num_pos_feats=8,
            mlp_dim=32,
        ),
        prompt_encoder_config=dict(hidden_size=16, image_size=64, patch_size=8),
        mask_decoder_config=dict(
            hidden_size=16,
            mlp_dim=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            iou_head_hidden_dim=16,
        ),
    )
    path = tmp_path_factory.mktemp("sam") / "sam-tiny"
    SamModel(cfg).eval().save_pretrained(path)
    return path


class DiskBackend(SamBackend):
    """SAM stand-in: of three masks, the best (highest IoU) is a disk of ``radius`` input
    pixels around the positive point; the others cover the whole tile with lower IoU."""

    def __init__(self, image_size=64, radius=8.0, empty=False):
        self.image_size = image_size
        self.radius = radius
        self.empty = empty
        self.mean = (0.5, 0.5, 0.5)
        self.std = (0.25, 0.25, 0.25)
        self.name = "disk"
        self.calls: list = []

    def embed(self, pixel_values):
        assert tuple(pixel_values.shape) == (1, 3, self.image_size, self.image_size)
        return pixel_values

    def decode(self, embedding, points, labels, multimask=True):
        import torch

        self.calls.append((points.clone(), labels.clone()))
        r = self.image_size // 4
        c = (np.arange(r) + 0.5) * 4 - 0.5  # low-resolution cell centres, input pixels
        pts = points[:, 0].numpy()
        d = np.hypot(
            c[None, None, :] - pts[:, 0, None, None], c[None, :, None] - pts[:, 1, None, None]
        )
        disk = self.radius - d
        if self.empty:
            disk = -np.ones_like(disk)
        low = np.stack([np.ones_like(disk), disk, np.ones_like(disk)], axis=1)
        iou = np.tile([0.2, 0.9, 0.5], (len(pts), 1))
        return torch.from_numpy(low).float(), torch.from_numpy(iou).float()


# --- stretch ---------------------------------------------------------------------------------


def test_stretch_one_band_asinh_keeps_core_structure_and_faint_outskirts():
    img, _ = _field()
    rgb = stretch_to_rgb(img)
    assert rgb.shape == (*img.shape, 3) and rgb.dtype == np.uint8
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    zs = stretch_to_rgb(img, stretch="zscale")
    # Sky near the bottom of the range in both; asinh saturates far fewer pixels than zscale.
    sky = np.median(rgb[..., 0])
    assert 10 < sky < 128
    assert (rgb[..., 0] == 255).sum() * 3 < (zs[..., 0] == 255).sum()
    # A source's profile falls monotonically from its core in the asinh picture.
    prof = rgb[30, 20:30, 0].astype(int)
    assert prof[0] > prof[3] > prof[6] > sky - 20


def test_stretch_three_bands_in_rgb_order_and_bad_pixels_black():
    rng = np.random.default_rng(2)
    shape = (40, 40)
    red = rng.normal(0, 1, shape) + gaussian_source(shape, 10, 10, 2000, 2)
    green = rng.normal(0, 1, shape)
    blue = rng.normal(0, 1, shape) + gaussian_source(shape, 30, 30, 2000, 2)
    bad = np.zeros(shape, bool)
    bad[0, :5] = True
    rgb = stretch_to_rgb([red, green, blue], bad=bad)
    assert rgb[10, 10, 0] == 255 and rgb[10, 10, 2] < 200
    assert rgb[30, 30, 2] == 255 and rgb[30, 30, 0] < 200
    assert (rgb[0, :5] == 0).all()
    assert (
        stretch_to_rgb(np.stack([red, green, blue])) == stretch_to_rgb([red, green, blue])
    ).all()


def test_stretch_rejects_two_bands_and_unknown_stretch():
    img = np.zeros((8, 8))
    with pytest.raises(InputError, match="one or three"):
        stretch_to_rgb([img, img])
    with pytest.raises(ParameterError, match="stretch"):
        stretch_to_rgb(img, stretch="log")


# --- tiles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 63, 64, 65, 100, 129, 300, 1000])
@pytest.mark.parametrize(("footprint", "overlap"), [(64, 16), (32, 8), (512, 128)])
def test_tiles_cover_the_image_with_the_requested_overlap(length, footprint, overlap):
    o = tile_origins(length, footprint, overlap)
    ends = np.minimum(o + footprint, length)
    assert o[0] == 0 and ends[-1] == length
    covered = np.zeros(length, int)
    for a, b in zip(o, ends, strict=True):
        covered[a:b] += 1
    assert covered.min() >= 1
    assert (o[1:] - o[:-1] <= footprint - overlap).all()


def test_points_go_to_the_tile_where_they_are_farthest_from_a_cut():
    shape = (150, 130)
    tiles = plan_tiles(shape, 64, 16)
    assert len(tiles) == 9
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-0.5, 129.4, 200), rng.uniform(-0.5, 149.4, 200)
    which = assign_points(tiles, shape, x, y)
    margins = np.stack([inner_margin(t, shape, x, y) for t in tiles])
    chosen = margins[which, np.arange(x.size)]
    assert (chosen >= 0).all()  # inside its tile
    assert (chosen == margins.max(axis=0)).all()
    assert (chosen >= 8 - 0.5).all()  # at least about half the overlap from any cut


# --- masks -> segmap -------------------------------------------------------------------------


def test_masks_to_segmap_gives_overlaps_to_the_higher_predicted_iou():
    sq = np.ones((4, 4), bool)
    masks = [(np.s_[0:4, 0:4], sq), (np.s_[2:6, 2:6], sq), (np.s_[5:9, 5:9], sq)]
    masks.append((np.s_[2:4, 2:4], np.ones((2, 2), bool)))  # hidden under a better mask
    seg, kept = masks_to_segmap((10, 10), masks, [0.5, 0.9, 0.7, 0.1])
    assert seg.dtype == np.int32
    assert kept.tolist() == [0, 1, 2]
    assert set(np.unique(seg)) == {0, 1, 2, 3}
    assert seg[3, 3] == 2  # 0.9 beats 0.5
    assert seg[5, 5] == 2  # 0.9 beats 0.7
    assert (seg == 1).sum() == 16 - 4 and (seg == 3).sum() == 16 - 1


# --- geometry of prompts, tiles and masks, with a stand-in model ------------------------------


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_masks_land_on_the_sources_across_tiles(scale):
    img, truth = _field()
    backend = DiskBackend(image_size=64, radius=8.0)
    seg, parent, params = segment_sam(img, 1.0, checkpoint=backend, scale=scale, overlap=16)
    assert params["tiles"] == len(plan_tiles(img.shape, int(64 / scale), 16)) > 1
    assert params["n_fallback"] == 0
    assert seg.shape == img.shape and seg.max() == len(truth)
    assert parent.shape == (len(truth) + 1,)
    r = 8.0 / scale
    for lab in range(1, len(truth) + 1):
        yy, xx = np.nonzero(seg == lab)
        centre = np.array([xx.mean(), yy.mean()])
        assert np.hypot(*(truth - centre).T).min() < 0.6
        assert abs(xx.size - np.pi * r**2) < 0.2 * np.pi * r**2
    # One positive point per source; at scale 1 some tiles hold two sources, and each is then
    # a negative point of the other.
    labels = np.concatenate([lab.numpy() for _, lab in backend.calls])
    assert labels.shape[0] == len(truth) and (labels[:, 0] == 1).all()
    assert set(np.unique(labels[:, 1:])) <= {0, backend.pad_label}
    if scale == 1.0:
        assert (labels[:, 1:] == 0).any()


def test_empty_masks_fall_back_to_the_default_segments():
    img, _ = _field()
    seg, _, params = segment_sam(img, 1.0, checkpoint=DiskBackend(empty=True), scale=1.0)
    ref = segment_image(img, rms=1.0, background=None).segmap
    assert params["n_fallback"] == ref.max() > 0
    assert (seg == ref).all()


# --- a real SamModel from a small random SamConfig --------------------------------------------


def test_sam_end_to_end_with_a_saved_checkpoint(tiny_checkpoint):
    img, truth = _field()
    bad = np.zeros(img.shape, bool)
    bad[140:, 100:] = True
    res = segment_image(
        img,
        rms=1.0,
        mask=bad,
        background=None,
        method="sam",
        checkpoint=tiny_checkpoint,
        sam_options={"scale": 1.0, "overlap": 16},
    )
    seg = res.segmap
    assert seg.shape == img.shape and seg.dtype == np.int32
    n = res.nlabels
    assert 1 <= n <= len(truth)
    assert set(np.unique(seg)) == set(range(n + 1))  # consecutive labels 1..N
    assert (seg[bad] == 0).all()
    assert res.parent.shape == res.flags.shape == (n + 1,)
    assert res.params["method"] == "sam" and res.params["image_size"] == 64
    assert res.params["tiles"] == 9 and res.params["n_prompts"] == len(truth)
    # Every source SAM was prompted at is covered by a label.
    xy = np.round(truth).astype(int)
    assert (seg[xy[:, 1], xy[:, 0]] > 0).sum() >= n
    cat = ms.measure(img, seg, rms=1.0)
    assert len(cat) == n and np.isfinite(cat["flux"]).all()


def test_grid_prompting_and_multiband_picture(tiny_checkpoint):
    img, _ = _field(shape=(100, 90))
    seg, parent, params = segment_sam(
        img,
        1.0,
        checkpoint=str(tiny_checkpoint),
        prompts="grid",
        bands=[img, img, img],
        scale=1.0,
        overlap=16,
        points_per_side=4,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
        max_area_fraction=1.0,
        min_snr=0.0,
    )
    assert params["prompts"] == "grid" and params["n_prompts"] == 16 * params["tiles"]
    n = int(seg.max())
    assert seg.dtype == np.int32 and set(np.unique(seg)) == set(range(n + 1))
    assert parent.shape == (n + 1,)


def test_checkpoint_from_config_and_environment(tiny_checkpoint, monkeypatch):
    img, _ = _field(shape=(64, 64))
    opts = {"sam_options": {"scale": 1.0}}
    with pytest.raises(InputError, match="no Segment Anything checkpoint"):
        segment_image(img, rms=1.0, background=None, method="sam", **opts)
    monkeypatch.setenv(ENV_VAR, str(tiny_checkpoint))
    res = segment_image(img, rms=1.0, background=None, method="sam", **opts)
    assert res.params["checkpoint"] == str(Path(tiny_checkpoint).resolve())
    monkeypatch.setenv(ENV_VAR, "/nonexistent/env")
    monkeypatch.setitem(config, "checkpoint", str(tiny_checkpoint))  # config before env
    assert segment_image(img, rms=1.0, background=None, method="sam", **opts).nlabels >= 0


# --- errors --------------------------------------------------------------------------------


def _assert_clear(exc: pytest.ExceptionInfo):
    msg = str(exc.value)
    assert "save_pretrained" in msg
    assert "https://huggingface.co/facebook/sam-vit-base" in msg
    assert ENV_VAR in msg


def test_missing_or_wrong_checkpoint_gives_one_clear_error(tmp_path):
    img = np.random.default_rng(0).normal(0, 1, (32, 32))
    run = lambda ckpt: segment_image(  # noqa: E731
        img, rms=1.0, background=None, method="sam", checkpoint=ckpt
    )
    with pytest.raises(InputError) as exc:
        run(None)
    _assert_clear(exc)
    with pytest.raises(InputError, match="no such file") as exc:
        run(tmp_path / "missing")
    _assert_clear(exc)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no config.json") as exc:
        run(tmp_path / "empty")
    _assert_clear(exc)
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(InputError, match="'bert', not 'sam'"):
        run(other)
    pth = tmp_path / "sam_vit_b_01ec64.pth"
    pth.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"\.pth") as exc:
        run(pth)
    _assert_clear(exc)


def test_sam_config_without_weights_is_a_clear_error(tiny_checkpoint, tmp_path):
    nodata = tmp_path / "noweights"
    nodata.mkdir()
    (nodata / "config.json").write_text((Path(tiny_checkpoint) / "config.json").read_text())
    with pytest.raises(InputError, match="weights cannot be loaded") as exc:
        segment_sam(np.zeros((16, 16)), 1.0, checkpoint=nodata)
    _assert_clear(exc)


def test_unknown_sam_option_and_prompt_outside_the_image():
    img = np.random.default_rng(0).normal(0, 1, (16, 16))
    with pytest.raises(ParameterError, match="sam_options"):
        segment_image(img, rms=1.0, background=None, method="sam", sam_options={"scael": 2})
    with pytest.raises(ParameterError, match="prompts"):
        segment_sam(img, 1.0, checkpoint=DiskBackend(), prompts=[(3.0, 40.0)])


# --- the core install does not need transformers -------------------------------------------


def test_default_segmentation_never_imports_transformers():
    code = (
        "import sys, numpy as np, morphoscope, morphoscope.segment.sam\n"
        "img = np.random.default_rng(0).normal(0, 1, (64, 64))\n"
        "img[30:33, 30:33] += 50\n"
        "assert morphoscope.segment(img, rms=1.0, background=None).max() == 1\n"
        "heavy = ('transformers', 'segment_anything', 'torchvision')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
