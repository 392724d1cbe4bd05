"""Shared small simulated scenes (module-scoped: rendered once per test session)."""

from __future__ import annotations

import pytest

from morphoscope.simulate import simulate_scene


@pytest.fixture(scope="session")
def scene():
    """A 192x192, 3-band scene with blends and extended emission in F335M."""
    return simulate_scene(
        (192, 192), n_sources=25, seed=11, emission_fraction=0.4, blend_fraction=0.3
    )
