"""Catalogue of hand-made bad inputs shared by the robustness tests and the peer benchmark.

Each entry is ``(name, builder, expect)``: ``builder()`` returns a fresh input, ``expect``
is ``"ok"`` (a result with flags), ``"error"`` (a MorphoscopeError naming the input) or
``"either"``. Builders use small arrays so that every case runs in milliseconds.
"""

from __future__ import annotations

import numpy as np
from helpers import gaussian_source

SHAPE = (64, 64)


def galaxy(shape=SHAPE, seed=7):
    """Unit noise plus two Gaussian galaxies at (0.3, 0.4) and (0.7, 0.6) of the field."""
    rng = np.random.default_rng(seed)
    img = rng.normal(0, 1.0, shape)
    img += gaussian_source(shape, shape[1] * 0.3, shape[0] * 0.4, 3000, 2.5)
    img += gaussian_source(shape, shape[1] * 0.7, shape[0] * 0.6, 2000, 2.0)
    return img


def _with(region, value, base=None):
    def build():
        img = galaxy() if base is None else base()
        img[region] = value
        return img

    return build


def _nan_border():
    img = galaxy()
    img[:, :6] = np.nan
    img[:4, :] = np.nan
    return img


def _strided():
    big = np.zeros((128, 128))
    big[::2, ::2] = galaxy()
    return big[::2, ::2]


def _readonly():
    img = galaxy()
    img.flags.writeable = False
    return img


def _masked_array():
    img = galaxy()
    return np.ma.masked_array(img, mask=img > 50)


def _hot_pixel():
    img = np.random.default_rng(3).normal(0, 1.0, SHAPE)
    img[30, 30] = 1e6
    return img


def _checkerboard():
    y, x = np.mgrid[:64, :64]
    return ((x + y) % 2).astype(float)


#: Images: (name, builder, expect).
IMAGES = [
    ("clean", galaxy, "ok"),
    ("nan_in_source", _with((slice(24, 28), slice(17, 21)), np.nan), "ok"),
    ("inf_in_source", _with((slice(24, 28), slice(17, 21)), np.inf), "ok"),
    ("neg_inf_in_source", _with((slice(37, 40), slice(43, 46)), -np.inf), "ok"),
    ("single_nan_at_peak", _with((26, 19), np.nan), "ok"),
    ("nan_border_drizzle", _nan_border, "ok"),
    ("blank_border_minus_1e30", _with((slice(None), slice(0, 8)), -1e30), "ok"),
    ("blank_patch_plus_1e30", _with((slice(0, 6), slice(50, 64)), 1e30), "ok"),
    ("nan_half_image", _with((slice(None), slice(32, None)), np.nan), "ok"),
    ("zero_weight_stripe", _with((slice(None), slice(30, 33)), 0.0), "ok"),
    ("all_nan", lambda: np.full(SHAPE, np.nan), "error"),
    ("all_inf", lambda: np.full(SHAPE, np.inf), "error"),
    ("all_zero", lambda: np.zeros(SHAPE), "error"),
    ("constant", lambda: np.full(SHAPE, 5.0), "error"),
    ("constant_with_nan", _with((0, 0), np.nan, lambda: np.full(SHAPE, 2.0)), "error"),
    ("pure_noise", lambda: np.random.default_rng(1).normal(0, 1, SHAPE), "ok"),
    ("hot_pixel", _hot_pixel, "ok"),
    ("checkerboard", _checkerboard, "either"),
    ("shape_1x1", lambda: np.ones((1, 1)), "error"),
    ("shape_2x2", lambda: np.arange(4.0).reshape(2, 2), "error"),
    ("shape_1xN", lambda: np.arange(64.0)[None, :], "error"),
    ("shape_3x3", lambda: np.arange(9.0).reshape(3, 3), "either"),
    ("empty_0x0", lambda: np.zeros((0, 0)), "error"),
    ("one_d", lambda: np.arange(64.0), "error"),
    ("scalar", lambda: np.float64(3.0), "error"),
    ("cube_3_planes", lambda: np.stack([galaxy()] * 3), "error"),
    ("cube_1_plane", lambda: galaxy()[None], "ok"),
    ("four_d", lambda: galaxy()[None, None].repeat(2, axis=0), "error"),
    ("int16", lambda: np.round(galaxy() * 10).astype(np.int16), "ok"),
    ("int32", lambda: np.round(galaxy() * 10).astype(np.int32), "ok"),
    ("uint8", lambda: np.clip(galaxy() + 20, 0, 255).astype(np.uint8), "ok"),
    ("uint16_big_endian", lambda: np.clip(galaxy() + 20, 0, None).astype(">u2"), "ok"),
    ("bool", lambda: galaxy() > 5, "ok"),
    ("float32", lambda: galaxy().astype(np.float32), "ok"),
    ("float16", lambda: galaxy().astype(np.float16), "ok"),
    ("big_endian_f8", lambda: galaxy().astype(">f8"), "ok"),
    ("big_endian_f4", lambda: galaxy().astype(">f4"), "ok"),
    ("big_endian_i4", lambda: np.round(galaxy()).astype(">i4"), "ok"),
    ("complex", lambda: galaxy().astype(complex), "error"),
    ("strings", lambda: np.full(SHAPE, "x"), "error"),
    ("object", lambda: np.empty(SHAPE, dtype=object), "error"),
    ("none", lambda: None, "error"),
    ("nested_list", lambda: galaxy().tolist(), "ok"),
    ("ragged_list", lambda: [[1.0, 2.0, 3.0], [1.0, 2.0]], "error"),
    ("strided_view", _strided, "ok"),
    ("fortran_order", lambda: np.asfortranarray(galaxy()), "ok"),
    ("read_only", _readonly, "ok"),
    ("masked_array", _masked_array, "ok"),
    ("huge_values", lambda: galaxy() * 1e300, "error"),
    ("tiny_values", lambda: galaxy() * 1e-300, "either"),
    ("negative_image", lambda: -galaxy(), "ok"),
    ("float64_max", _with((slice(10, 12), slice(10, 12)), np.finfo(float).max), "either"),
]


def disc_segmap(shape=SHAPE):
    """Two discs matching the galaxies of :func:`galaxy`."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    seg = np.zeros(shape, np.int32)
    seg[(x - shape[1] * 0.3) ** 2 + (y - shape[0] * 0.4) ** 2 < 36] = 1
    seg[(x - shape[1] * 0.7) ** 2 + (y - shape[0] * 0.6) ** 2 < 25] = 2
    return seg


def _seg_with(func):
    def build():
        seg = disc_segmap()
        return func(seg)

    return build


#: Segmentation maps for measure: (name, builder, expect).
SEGMAPS = [
    ("discs", disc_segmap, "ok"),
    ("gaps_in_labels", _seg_with(lambda s: np.where(s == 2, 7, s)), "ok"),
    ("negative_label", _seg_with(lambda s: np.where(s == 2, -3, s)), "error"),
    ("float_labels", _seg_with(lambda s: s.astype(float)), "ok"),
    ("fractional_labels", _seg_with(lambda s: s * 0.5), "error"),
    ("nan_label", _seg_with(lambda s: np.where(s == 2, np.nan, s)), "error"),
    ("bool_segmap", _seg_with(lambda s: s > 0), "ok"),
    ("big_endian_labels", _seg_with(lambda s: s.astype(">i8")), "ok"),
    ("uint8_labels", _seg_with(lambda s: s.astype(np.uint8)), "ok"),
    ("empty_segmap", lambda: np.zeros(SHAPE, int), "ok"),
    ("one_pixel_source", lambda: np.pad(np.ones((1, 1), int), ((20, 43), (30, 33))), "ok"),
    ("label_on_border", _seg_with(lambda s: np.where(np.arange(64)[None, :] < 1, 3, s)), "ok"),
    ("whole_image_one_label", lambda: np.ones(SHAPE, int), "ok"),
    ("huge_label", _seg_with(lambda s: np.where(s == 2, 2**40, s)), "either"),
    ("split_label", _seg_with(lambda s: np.where(s == 2, 1, s)), "ok"),
    ("wrong_shape", lambda: disc_segmap((32, 32)), "error"),
    ("transposed_shape", lambda: disc_segmap((64, 32)), "error"),
    ("one_d_segmap", lambda: disc_segmap().ravel(), "error"),
    ("string_segmap", lambda: np.full(SHAPE, "1"), "error"),
]

#: rms maps: (name, builder, expect); the image is :func:`galaxy`.
RMS = [
    ("scalar", lambda: 1.0, "ok"),
    ("map", lambda: np.ones(SHAPE), "ok"),
    ("zero_scalar", lambda: 0.0, "error"),
    ("negative_scalar", lambda: -1.0, "error"),
    ("nan_scalar", lambda: float("nan"), "error"),
    ("inf_scalar", lambda: float("inf"), "error"),
    ("all_zero_map", lambda: np.zeros(SHAPE), "error"),
    ("all_negative_map", lambda: -np.ones(SHAPE), "error"),
    ("zero_region", _with((slice(22, 30), slice(15, 24)), 0.0, lambda: np.ones(SHAPE)), "ok"),
    ("negative_region", _with((slice(22, 30), slice(15, 24)), -1.0, lambda: np.ones(SHAPE)), "ok"),
    ("nan_region", _with((slice(22, 30), slice(15, 24)), np.nan, lambda: np.ones(SHAPE)), "ok"),
    ("wrong_shape", lambda: np.ones((32, 32)), "error"),
    ("one_d", lambda: np.ones(64), "error"),
    ("big_endian", lambda: np.ones(SHAPE, ">f4"), "ok"),
    ("int_map", lambda: np.ones(SHAPE, np.int16), "ok"),
    ("string", lambda: "one", "error"),
]

#: Masks: (name, builder, expect).
MASKS = [
    ("bool_mask", lambda: np.zeros(SHAPE, bool), "ok"),
    ("mask_on_source", _with(np.s_[22:30, 15:24], 1, lambda: np.zeros(SHAPE, int)), "ok"),
    ("all_masked", lambda: np.ones(SHAPE, bool), "either"),
    ("wrong_shape", lambda: np.zeros((63, 64), bool), "error"),
    ("one_d", lambda: np.zeros(64, bool), "error"),
    ("float_mask_with_nan", _with((0, 0), np.nan, lambda: np.zeros(SHAPE)), "ok"),
    ("string_mask", lambda: np.full(SHAPE, "no"), "error"),
]


def _gauss_psf(n=15, x0=None, y0=None, sigma=1.5, scale=1.0):
    x0 = (n - 1) / 2 if x0 is None else x0
    y0 = (n - 1) / 2 if y0 is None else y0
    y, x = np.mgrid[:n, :n]
    return scale * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))


#: PSFs: (name, builder, expect).
PSFS = [
    ("normalised", lambda: _gauss_psf() / _gauss_psf().sum(), "ok"),
    ("not_normalised", lambda: _gauss_psf(scale=1e4), "ok"),
    ("off_centre", lambda: _gauss_psf(x0=3, y0=10), "ok"),
    ("even_size", lambda: _gauss_psf(n=16), "ok"),
    ("rectangular", lambda: _gauss_psf(n=15)[:, 2:], "ok"),
    ("single_pixel", lambda: np.ones((1, 1)), "ok"),
    ("negative_wings", lambda: _gauss_psf() - 0.01, "ok"),
    ("zero_sum", lambda: _gauss_psf() - _gauss_psf().mean(), "error"),
    ("all_zero", lambda: np.zeros((15, 15)), "error"),
    ("nan_pixel", _with((0, 0), np.nan, _gauss_psf), "error"),
    ("one_d", lambda: np.ones(15), "error"),
    ("cube", lambda: np.stack([_gauss_psf()] * 2), "error"),
    ("larger_than_image", lambda: _gauss_psf(n=101, sigma=3), "ok"),
    ("string", lambda: np.full((3, 3), "p"), "error"),
]
