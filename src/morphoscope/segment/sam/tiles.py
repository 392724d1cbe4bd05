"""Cutting an image into overlapping square tiles of Segment Anything's input size."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Tile", "assign_points", "plan_tiles", "tile_origins"]


def tile_origins(length: int, footprint: int, overlap: int) -> np.ndarray:
    """Start indices of tiles of ``footprint`` pixels covering ``length`` pixels.

    Consecutive tiles overlap by at least ``overlap`` pixels; the first starts at 0 and the
    last ends at ``length``. A length that fits in one tile gives one origin, 0.

    Examples
    --------
    >>> tile_origins(1000, 512, 128).tolist()
    [0, 244, 488]
    >>> tile_origins(300, 512, 128).tolist()
    [0]
    """
    if length <= footprint:
        return np.zeros(1, int)
    step = max(footprint - overlap, 1)
    n = math.ceil((length - footprint) / step) + 1
    return np.round(np.linspace(0, length - footprint, n)).astype(int)


@dataclass(frozen=True)
class Tile:
    """One tile: rows ``y0:y1`` and columns ``x0:x1`` of the image."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0


def plan_tiles(shape: tuple[int, int], footprint: int, overlap: int) -> list[Tile]:
    """Tiles of at most ``footprint`` x ``footprint`` pixels covering an image of ``shape``.

    Examples
    --------
    >>> [t.shape for t in plan_tiles((100, 700), 512, 128)]
    [(100, 512), (100, 512)]
    """
    ny, nx = shape
    return [
        Tile(int(y0), int(min(y0 + footprint, ny)), int(x0), int(min(x0 + footprint, nx)))
        for y0 in tile_origins(ny, footprint, overlap)
        for x0 in tile_origins(nx, footprint, overlap)
    ]


def inner_margin(tile: Tile, shape: tuple[int, int], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distance of points to the nearest tile side that is not an image border (-1 outside)."""
    ny, nx = shape
    inf = np.inf
    d = np.stack(
        [
            x - tile.x0 + 0.5 if tile.x0 > 0 else np.full_like(x, inf),
            tile.x1 - 0.5 - x if tile.x1 < nx else np.full_like(x, inf),
            y - tile.y0 + 0.5 if tile.y0 > 0 else np.full_like(y, inf),
            tile.y1 - 0.5 - y if tile.y1 < ny else np.full_like(y, inf),
        ]
    ).min(axis=0)
    inside = (x >= tile.x0 - 0.5) & (x < tile.x1 - 0.5) & (y >= tile.y0 - 0.5) & (y < tile.y1 - 0.5)
    return np.where(inside, d, -1.0)


def assign_points(
    tiles: list[Tile], shape: tuple[int, int], x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Index of the tile in which each point lies farthest from a cut (an inner tile side).

    Every point is prompted once, in that tile, so a source gets one mask and the mask is cut
    by a tile side only when the source extends further than about half the overlap.

    Examples
    --------
    >>> import numpy as np
    >>> tiles = plan_tiles((64, 1000), 512, 128)
    >>> assign_points(tiles, (64, 1000), np.array([10.0, 400.0, 990.0]), np.zeros(3)).tolist()
    [0, 1, 2]
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.size == 0:
        return np.zeros(0, int)
    margins = np.stack([inner_margin(t, shape, x, y) for t in tiles])
    return np.argmax(margins, axis=0)
