"""Shared fixtures: analytic galaxies whose parameters are known exactly."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import gaussian_source


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def random_field(rng):
    """256x256 field of 25 well-separated Gaussian sources with unit noise, and their truth."""
    shape = (256, 256)
    grid = np.array([(x, y) for y in range(28, 256, 50) for x in range(28, 256, 50)], float)
    grid += rng.uniform(-3, 3, grid.shape)
    flux = rng.uniform(400, 4000, len(grid))
    sigma = rng.uniform(1.5, 3.5, len(grid))
    img = rng.normal(0, 1.0, shape)
    for (x0, y0), f, s in zip(grid, flux, sigma, strict=True):
        img += gaussian_source(shape, x0, y0, f, s)
    return img, grid, flux, sigma
