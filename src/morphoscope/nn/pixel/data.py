"""Simulated training scenes for the PixelClassifier, cached on disk.

Every scene is drawn by :func:`morphoscope.simulate.simulate_scene` with randomised
pixel scale, PSFs (Moffat or Gaussian, FWHM in pixels), depths, source counts, blend and
emission fractions, so that the network sees several instruments and depths. A scene
is stored as its scaled network input (:func:`~.classifier.prepare_input`), its truth
class map and segmentation, and the truth class and S/N of its sources.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ...simulate import Band, simulate_scene
from .classifier import prepare_input

__all__ = ["cache_dir", "load_scenes", "scene_arrays", "simulated_scene"]

#: Pivot wavelengths (micron) of the three simulated band slots (NIRCam-like).
WAVELENGTHS = (1.99, 3.36, 3.57)


def simulated_scene(seed: int, data: dict, n_bands: int):
    """One randomised training scene (a :class:`~morphoscope.simulate.Scene`).

    ``data`` is the ``data`` section of the training configuration.
    """
    rng = np.random.default_rng([int(seed), 8])
    scale = float(rng.uniform(*data["pixel_scale"]))
    fwhm0 = float(rng.uniform(*data["fwhm_pixels"]))
    kind = str(rng.choice(["moffat", "gaussian"]))
    beta = float(rng.uniform(2.5, 4.5))
    bands = []
    for i in range(n_bands):
        ratio = 1.0 if i == 0 else float(rng.uniform(*data["fwhm_ratio"]))
        bands.append(
            Band(
                f"B{i}",
                psf=kind,
                fwhm=fwhm0 * ratio * scale,
                moffat_beta=beta,
                sky_rms=float(rng.uniform(*data["sky_rms"])),
                gain=5.0 if rng.random() < 0.7 else None,
                medium=(i == 1),
                wavelength=WAVELENGTHS[i % len(WAVELENGTHS)] + 0.01 * (i // len(WAVELENGTHS)),
            )
        )
    lo, hi = data["n_sources"]
    return simulate_scene(
        tuple(data["shape"]),
        bands=bands,
        pixel_scale=scale,
        n_sources=int(rng.integers(lo, hi + 1)),
        class_fractions=data.get("class_fractions"),
        blend_fraction=float(rng.uniform(*data["blend_fraction"])),
        emission_band="B1" if n_bands > 1 else None,
        emission_fraction=float(rng.uniform(*data["emission_fraction"])) if n_bands > 1 else 0.0,
        flux_range=tuple(data["flux_range"]),
        flux_slope=float(rng.uniform(*data["flux_slope"])),
        seed=int(seed),
    )


def scene_arrays(scene, n_bands: int, stretch: float) -> dict[str, np.ndarray]:
    """Network input, truth maps and per-source truth of a scene, as arrays."""
    images = [scene.images[b] for b in scene.band_names[:n_bands]]
    x, weight = prepare_input(images, n_bands, stretch=stretch)
    det = scene.detection_band
    return {
        "x": x[0::2].astype(np.float32),
        "weight": weight,
        "classmap": scene.classmap.astype(np.uint8),
        "segmap": scene.segmap.astype(np.int32),
        "class_id": np.asarray(scene.truth["class_id"], dtype=np.int16),
        "snr": np.asarray(scene.truth[f"snr_{det}"], dtype=np.float64),
    }


def cache_dir(data: dict, n_bands: int, stretch: float, root: str | None = None) -> Path:
    """Folder of the cached scenes of a data configuration (a hash of it)."""
    key = json.dumps({"data": data, "n_bands": n_bands, "stretch": stretch}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    base = Path(root) if root else Path(tempfile.gettempdir()) / "morphoscope-pixel-cache"
    return base / digest


def load_scenes(
    seeds, data: dict, n_bands: int, stretch: float, root: str | None = None, log=None
) -> list[dict[str, np.ndarray]]:
    """Scenes of the given seeds, simulated once and then read from the cache.

    Set ``data["default_simulator"]`` to use :func:`simulate_scene`'s default bands,
    pixel scale and source density (the independent evaluation scenes).
    """
    folder = cache_dir(data, n_bands, stretch, root)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    seeds = list(seeds)
    for k, seed in enumerate(seeds):
        path = folder / f"scene_{int(seed)}.npz"
        if path.is_file():
            with np.load(path) as f:
                out.append({name: f[name] for name in f.files})
            continue
        if data.get("default_simulator"):
            scene = simulate_scene(tuple(data["shape"]), seed=int(seed))
        else:
            scene = simulated_scene(int(seed), data, n_bands)
        arrays = scene_arrays(scene, n_bands, stretch)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
        out.append(arrays)
        if log is not None and (k + 1) % 25 == 0:
            log(f"simulated {k + 1}/{len(seeds)} scenes")
    return out
