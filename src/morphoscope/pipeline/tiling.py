"""Tiled processing of large images in bounded memory, with a result independent of the tiling.

A mosaic is cut into square *cores* that partition the image; each core is processed with an
*overlap* of ``overlap`` pixels on every side (its *window*). The result is the same as if
the image had been processed whole:

Background
    The image is sampled as :func:`~morphoscope.segment.background.estimate_background`
    samples it (every second pixel in boxes of 32 px or more), strip by strip; the box
    meshes (two passes with the source mask) are computed once from the sample with
    :class:`~morphoscope.segment.background.BackgroundMesh`, the code of the untiled run,
    and the spline through them is evaluated on each window over a fixed block grid, so
    that every window holds bit for bit the pixels of the whole-image maps.
Detection and de-blending
    Within a window, the smoothed S/N map is exact except within the smoothing kernel's
    radius of a cut edge. A connected detection (a *parent*) that stays away from that
    margin is segmented exactly as in the whole image, since thresholding, the S/N cut and
    the saddle de-blending only look at the parent's own pixels.
Ownership
    A parent belongs to the tile whose core holds the centre of its bounding box; only that
    tile reports it. Its sources are measured there if, in addition, every pixel that the
    measurement reads is known exactly in the window: the statmorph postage stamp (2.5 times
    the segment's bounding box, at least 48 px, clipped to the image), or with
    ``nonparametric=False`` the rotated footprint of the asymmetry.
Fallback
    Parents that their owner cannot complete (larger than the overlap, or reaching pixels
    the window does not know) are collected as seed regions; these are merged and re-run on
    a window grown until every parent that meets them is complete. Parents are identified
    by the raster index of their first pixel, so a parent found twice is kept once.
Stitching
    Each tile returns its catalog rows and the global indices of its sources' pixels; the
    segmentation map is written into one memory-mapped FITS file (the only image-sized
    array of the run) and relabelled at the end so that labels follow the raster order of
    each source's first pixel, whatever the tiling.

Memory is that of one window (a few tens of arrays of ``(tile + 2 overlap)**2`` pixels), or
in the background pass the sampled image (a quarter of the pixels, float32) and a few
copies of it; time is linear in the image area.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack
from scipy import ndimage

from ..exceptions import InputError, MorphoscopeWarning, ParameterError
from ..segment.background import BackgroundMesh, sampling
from .config import plain_data

__all__ = [
    "AUTO_TILE_PIXELS",
    "DEFAULT_OVERLAP",
    "DEFAULT_TILE",
    "BackgroundModel",
    "BandReader",
    "Tile",
    "TiledResult",
    "plan_tiles",
    "run_tiled",
    "tiling_requested",
]

#: Images with more pixels than this are tiled when ``tile="auto"``.
AUTO_TILE_PIXELS = 4096 * 4096
#: Core size used for automatic tiling.
DEFAULT_TILE = 2048
#: Default overlap (pixels on each side of a core).
DEFAULT_OVERLAP = 128

Box = tuple[int, int, int, int]  # y0, y1, x0, x1 (half-open), global pixel coordinates


# --------------------------------------------------------------------------------------
# Inputs read by window


def _split_path(value) -> tuple[str, str | int | None]:
    from ..io.fits import _split_ext

    p, ext = _split_ext(value)
    return str(p), ext


def _first_image_hdu(hdul, ext):
    if ext is not None:
        return hdul[ext]
    for h in hdul:
        if h.is_image and h.header.get("NAXIS", 0) >= 2:
            return h
    raise InputError(str(hdul.filename()), "no HDU with image data")


@dataclass(frozen=True)
class _Plane:
    """One image-sized input (image, rms, weight or mask): a FITS path, an array or a scalar."""

    path: str | None = None
    ext: str | int | None = None
    array: np.ndarray | None = None
    scalar: float | None = None

    @classmethod
    def of(cls, value) -> _Plane | None:
        if value is None:
            return None
        if isinstance(value, str | os.PathLike):
            path, ext = _split_path(value)
            if not Path(path).exists():
                raise InputError(path, "file not found")
            return cls(path=path, ext=ext)
        arr = np.asarray(value)
        if arr.ndim == 0:
            return cls(scalar=float(arr))
        return cls(array=arr.reshape([s for s in arr.shape if s != 1]) if arr.ndim > 2 else arr)

    def shape(self) -> tuple[int, int] | None:
        if self.scalar is not None:
            return None
        if self.array is not None:
            return tuple(self.array.shape)  # type: ignore[return-value]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with fits.open(self.path, memmap=True, lazy_load_hdus=True) as hdul:
                    hdu = _first_image_hdu(hdul, self.ext)
                    nd = int(hdu.header["NAXIS"])
                    shp = [int(hdu.header[f"NAXIS{i}"]) for i in range(nd, 0, -1)]
        except InputError:
            raise
        except (OSError, TypeError, ValueError, IndexError, KeyError, EOFError) as exc:
            raise InputError(Path(self.path).name, f"not a readable FITS file ({exc})") from None
        shp = [s for s in shp if s != 1] if len(shp) > 2 else shp
        return tuple(shp)  # type: ignore[return-value]

    def read(self, box: Box) -> np.ndarray:
        """The pixels of ``box``; a FITS file is opened memory-mapped and only they are read."""
        y0, y1, x0, x1 = box
        if self.scalar is not None:
            return np.full((y1 - y0, x1 - x0), self.scalar)
        if self.array is not None:
            return np.array(self.array[y0:y1, x0:x1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(self.path, memmap=True, lazy_load_hdus=True) as hdul:
                hdu = _first_image_hdu(hdul, self.ext)
                nd = hdu.header["NAXIS"]
                lead = (0,) * (nd - 2)
                out = np.array(hdu.section[(*lead, slice(y0, y1), slice(x0, x1))])
        return out


@dataclass(frozen=True)
class BandReader:
    """Reads windows of one band with the validation of :func:`~morphoscope.io.load_image`.

    Picklable and small: workers receive it and read the files themselves.
    """

    name: str
    image: _Plane
    rms: _Plane | None = None
    weight: _Plane | None = None
    mask: _Plane | None = None
    shape: tuple[int, int] = (0, 0)

    @classmethod
    def from_band(cls, band) -> BandReader:
        """Build from a :class:`~morphoscope.pipeline.BandInput`."""
        if band.rms is not None and band.weight is not None:
            raise InputError(band.name, "give an rms map or a weight map, not both")
        image = _Plane.of(band.image)
        shape = image.shape()
        if shape is None or len(shape) != 2:
            raise InputError(band.name, f"expected a 2-D image, got shape {shape}")
        planes = {k: _Plane.of(getattr(band, k)) for k in ("rms", "weight", "mask")}
        for key, plane in planes.items():
            if plane is not None and plane.scalar is None and plane.shape() != shape:
                raise InputError(
                    key, f"shape {plane.shape()} does not match the image shape {shape}"
                )
        return cls(name=band.name, image=image, shape=shape, **planes)

    def read(self, box: Box) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Return ``(data, bad, rms)`` of a window (rms None when no map was given)."""
        raw = self.image.read(box)
        if raw.dtype.kind not in "biuf":
            raise InputError(self.name, f"expected a numeric image, got dtype {raw.dtype}")
        data = raw.astype(np.float64)
        bad = ~np.isfinite(data)
        data[bad] = 0.0
        rms = None
        if self.rms is not None:
            rms = self.rms.read(box).astype(np.float64)
            rbad = ~np.isfinite(rms) | (rms <= 0)
            rms[rbad] = np.inf
            bad |= rbad
        elif self.weight is not None:
            w = self.weight.read(box).astype(np.float64)
            wbad = ~np.isfinite(w) | (w <= 0)
            rms = np.full(w.shape, np.inf)
            rms[~wbad] = 1.0 / np.sqrt(w[~wbad])
            bad |= wbad
        if self.mask is not None:
            bad |= np.asarray(self.mask.read(box) != 0)
        if rms is not None:
            data[bad] = 0.0
        return data, bad, rms


# --------------------------------------------------------------------------------------
# Background meshes computed for the whole image, evaluated per window


@dataclass
class BackgroundModel:
    """Sky and rms of the whole image, evaluated on any window.

    Built by :meth:`compute` from the sampled image (every ``step``-th pixel, read one row
    strip at a time) with :class:`~morphoscope.segment.background.BackgroundMesh`, the code
    of :func:`~morphoscope.segment.background.estimate_background`: any window of the maps
    is bit for bit that part of the whole-image maps.
    """

    mesh: BackgroundMesh | None
    offset: float = 0.0
    constant: tuple[float, float] | None = None

    def evaluate(self, box: Box, rms: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Background and rms maps (float32) of a window ``(y0, y1, x0, x1)``."""
        shape = (box[1] - box[0], box[3] - box[2])
        if self.constant is not None:
            return (
                np.full(shape, self.constant[0], np.float32),
                np.full(shape, self.constant[1], np.float32) if rms else None,
            )
        return self.mesh.evaluate(slice(box[0], box[1]), slice(box[2], box[3]), rms=rms)

    @classmethod
    def compute(
        cls,
        reader: BandReader,
        *,
        box_size: int = 64,
        offset: float = 0.0,
        mapper: Callable | None = None,
        strip_rows: int = 1024,
    ) -> BackgroundModel:
        """Sample the image strip by strip (each strip a task of ``mapper``), then build the
        meshes once.

        ``offset`` is subtracted from the image first (a constant background given by the
        user), in float32 as :func:`~morphoscope.segment.segment_image` does. Memory: the
        sampled image (a quarter of the pixels for boxes of 32 px or more) in float32 and a
        few copies of it while the box statistics are sorted.
        """
        mapper = mapper or _serial_map
        ny, nx = reader.shape
        _, step = sampling((ny, nx), box_size)
        rows = max(step, int(strip_rows) - int(strip_rows) % step)
        strips = [(r0, min(ny, r0 + rows)) for r0 in range(0, ny, rows)]
        parts = list(mapper(_strip_sample, [(reader, s, step, offset) for s in strips]))
        sample = np.concatenate([p[0] for p in parts], axis=0)
        sbad = np.concatenate([p[1] for p in parts], axis=0)
        del parts
        mesh = BackgroundMesh.from_sample(sample, sbad, (ny, nx), box_size=box_size)
        if mesh is None:
            return cls._global(reader, offset)
        return cls(mesh, offset)

    @classmethod
    def _global(cls, reader: BandReader, offset: float) -> BackgroundModel:
        """No box usable: one sigma-clipped value for the image (reads it whole)."""
        from ..segment.background import _global

        ny, nx = reader.shape
        data, bad, _ = reader.read((0, ny, 0, nx))
        data = data.astype(np.float32)
        data -= np.float32(offset)
        bkg, rms = _global(data, bad, True)
        return cls(None, offset, constant=(float(bkg.flat[0]), float(rms.flat[0])))


def _strip_sample(args) -> tuple[np.ndarray, np.ndarray]:
    """Every ``step``-th pixel of a row strip (float32, offset subtracted) and its bad mask."""
    reader, (r0, r1), step, offset = args
    nx = reader.shape[1]
    data, bad, _ = reader.read((r0, r1, 0, nx))
    off = step // 2
    data = data[off::step, off::step].astype(np.float32)
    if offset:
        data -= np.float32(offset)
    return data, bad[off::step, off::step] | ~np.isfinite(data)


def _serial_map(func, items: Iterable):
    for item in items:
        yield func(item)


# --------------------------------------------------------------------------------------
# Tiles


@dataclass(frozen=True)
class Tile:
    """A core (owned pixels) and its window (core plus overlap, clipped to the image)."""

    index: int
    core: Box
    window: Box


def plan_tiles(shape: tuple[int, int], tile: int, overlap: int) -> list[Tile]:
    """Cut an image into cores of at most ``tile`` pixels and windows with ``overlap`` pixels.

    Examples
    --------
    >>> tiles = plan_tiles((1000, 700), 512, 64)
    >>> len(tiles), tiles[0].core, tiles[0].window
    (4, (0, 500, 0, 350), (0, 564, 0, 414))
    """
    if not (isinstance(tile, int | np.integer) and tile >= 16):
        raise ParameterError("tile", tile, "an integer >= 16 (pixels)")
    if not (isinstance(overlap, int | np.integer) and overlap >= 0):
        raise ParameterError("overlap", overlap, "a non-negative integer (pixels)")
    ny, nx = shape
    ty, tx = max(1, math.ceil(ny / tile)), max(1, math.ceil(nx / tile))
    ys = np.linspace(0, ny, ty + 1).round().astype(int)
    xs = np.linspace(0, nx, tx + 1).round().astype(int)
    tiles = []
    for i in range(ty):
        for j in range(tx):
            core = (int(ys[i]), int(ys[i + 1]), int(xs[j]), int(xs[j + 1]))
            window = (
                max(0, core[0] - overlap),
                min(ny, core[1] + overlap),
                max(0, core[2] - overlap),
                min(nx, core[3] + overlap),
            )
            tiles.append(Tile(len(tiles), core, window))
    return tiles


@dataclass
class _Job:
    """What a worker needs for one window (all small and picklable)."""

    reader: BandReader
    model: BackgroundModel | None
    window: Box
    core: Box | None  # None: a fallback window (no ownership test)
    region: Box | None  # fallback: the seed region
    shape: tuple[int, int]
    seg_opts: dict
    meas_opts: dict
    psf: np.ndarray | None
    background: object  # "auto", None or a number


@dataclass
class _WindowResult:
    """Catalog rows of one window with their pixels, and the regions it could not finish."""

    rows: Table | None
    parent_key: np.ndarray
    source_key: np.ndarray
    pix_index: np.ndarray  # global flat pixel index of the rows' pixels
    pix_row: np.ndarray  # row of ``rows`` each pixel belongs to
    seeds: list[Box]
    params: dict
    method: str


def _bbox_union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def _intersects(a: Box, b: Box) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def _kernel_radius(fwhm: float) -> int:
    sigma = max(float(fwhm), 0.1) / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    return int(4.0 * sigma + 0.5)


def _segment_window(job: _Job):
    from ..segment.core import segment_image

    data, bad, rms = job.reader.read(job.window)
    if bad.all():
        return None, data, bad
    opts = dict(job.seg_opts)
    if job.model is not None:
        # The maps of segment_image on the whole image: the sky of the image (background
        # "auto"), and without an rms map the rms of the image less its background.
        bkg, bkg_rms = job.model.evaluate(job.window, rms=rms is None)
        opts["background"] = bkg if job.background == "auto" else job.background
        if rms is None:
            rms = bkg_rms
    else:
        opts["background"] = job.background
    try:
        seg = segment_image(data, rms=rms, psf=job.psf, mask=bad, **opts)
    except InputError:
        # A blank window (no valid pixel, or no valid rms): nothing to detect.
        return None, data, bad
    return seg, data, bad


def _no_rows(seeds: list[Box], params: dict, method: str) -> _WindowResult:
    z = np.zeros(0, np.int64)
    return _WindowResult(None, z, z, z, z, seeds, params, method)


def process_window(job: _Job) -> _WindowResult:
    """Segment and measure one window; keep the parents this window can finish exactly.

    A worker's task: reads its own pixels, returns catalog rows and pixel indices.
    """
    from ..measure import measure
    from ..segment.detect import smooth

    wy0, wy1, wx0, wx1 = job.window
    h, w = wy1 - wy0, wx1 - wx0
    ny, nx = job.shape
    seg, _, _ = _segment_window(job)
    if seg is None:
        return _no_rows([], {}, "")
    params = dict(seg.params)
    # Margin where the smoothed S/N is not exact, on the sides cut from the image.
    m = _kernel_radius(params["kernel_fwhm"]) + 1
    cut = (wy0 > 0, wy1 < ny, wx0 > 0, wx1 < nx)
    zy0, zy1 = (m if cut[0] else 0), (h - m if cut[1] else h)
    zx0, zx1 = (m if cut[2] else 0), (w - m if cut[3] else w)
    # A parent is complete if it stays one pixel inside the exact zone on cut sides.
    ly0, ly1 = (zy0 + 1 if cut[0] else 0), (zy1 - 1 if cut[1] else h)
    lx0, lx1 = (zx0 + 1 if cut[2] else 0), (zx1 - 1 if cut[3] else w)

    # Pixels whose membership in some source is not known exactly: outside the exact zone,
    # or in an above-threshold region that reaches its edge.
    _, snr = smooth(seg.image, seg.rms, params["kernel_fwhm"])
    above = (snr > params["nsigma"]) & ~seg.bad
    del snr
    comp, ncomp = ndimage.label(above, structure=np.ones((3, 3), bool))
    del above
    unknown = np.ones((h, w), bool)
    unknown[zy0:zy1, zx0:zx1] = False
    seeds: list[Box] = []
    if ncomp:
        ring = np.zeros((h, w), bool)
        if cut[0]:
            ring[zy0, :] = True
        if cut[1]:
            ring[zy1 - 1, :] = True
        if cut[2]:
            ring[:, zx0] = True
        if cut[3]:
            ring[:, zx1 - 1] = True
        ring |= unknown
        touching = np.unique(comp[ring & (comp > 0)])
        touching = touching[touching > 0]
        if touching.size:
            lut = np.zeros(ncomp + 1, bool)
            lut[touching] = True
            unknown |= lut[comp]
            objs = ndimage.find_objects(comp)
            for c in touching:
                sy, sx = objs[c - 1]
                b = (sy.start + wy0, sy.stop + wy0, sx.start + wx0, sx.stop + wx0)
                if job.core is not None and _intersects(b, job.core):
                    seeds.append(b)
                elif job.region is not None and _intersects(b, job.region):
                    seeds.append(b)
    del comp
    sat = np.zeros((h + 1, w + 1), np.int32)
    sat[1:, 1:] = np.cumsum(np.cumsum(unknown, axis=0, dtype=np.int32), axis=1)
    del unknown

    segmap = seg.segmap
    n = seg.nlabels
    if n == 0:
        return _no_rows(seeds, params, seg.method)
    objs = ndimage.find_objects(segmap)
    sy0 = np.array([o[0].start for o in objs])
    sy1 = np.array([o[0].stop for o in objs])
    sx0 = np.array([o[1].start for o in objs])
    sx1 = np.array([o[1].stop for o in objs])
    parent = seg.parent[1:].astype(np.int64)
    npar = int(parent.max(initial=0)) + 1
    py0 = np.full(npar, h)
    py1 = np.zeros(npar, int)
    px0 = np.full(npar, w)
    px1 = np.zeros(npar, int)
    np.minimum.at(py0, parent, sy0)
    np.maximum.at(py1, parent, sy1)
    np.minimum.at(px0, parent, sx0)
    np.maximum.at(px1, parent, sx1)
    exists = np.zeros(npar, bool)
    exists[parent] = True
    complete = (py0 >= ly0) & (py1 <= ly1) & (px0 >= lx0) & (px1 <= lx1)
    # Ownership by the centre of the parent's bounding box (integers, exact).
    cy = (py0 + py1 - 1) // 2 + wy0
    cx = (px0 + px1 - 1) // 2 + wx0
    gbox = np.stack([py0 + wy0, py1 + wy0, px0 + wx0, px1 + wx0], axis=1)
    if job.core is not None:
        c = job.core
        mine = (cy >= c[0]) & (cy < c[1]) & (cx >= c[2]) & (cx < c[3])
    else:
        r = job.region
        mine = (gbox[:, 0] < r[1]) & (r[0] < gbox[:, 1]) & (gbox[:, 2] < r[3]) & (r[2] < gbox[:, 3])
    mine &= exists
    for p in np.flatnonzero(mine & ~complete):
        seeds.append(tuple(int(v) for v in gbox[p]))
    cand_par = mine & complete
    labels = np.flatnonzero(cand_par[parent]) + 1
    if labels.size == 0:
        return _no_rows(seeds, params, seg.method)

    def unknown_in(y0, y1, x0, x1):
        """Unknown pixels in window boxes (clipped to the window)."""
        a0, a1 = np.clip(y0, 0, h), np.clip(y1, 0, h)
        b0, b1 = np.clip(x0, 0, w), np.clip(x1, 0, w)
        return sat[a1, b1] - sat[a0, b1] - sat[a1, b0] + sat[a0, b0]

    if job.meas_opts.get("nonparametric", True):
        # The statmorph set and the Sersic fit read the source's postage stamp (2.5 times
        # its bounding box, clipped to the image): it must lie in the window, known exactly.
        from ..measure.nonparametric import stamp_slice

        i = labels - 1
        st = np.zeros((labels.size, 4), np.int64)
        for k, j in enumerate(labels - 1):
            gy = slice(int(sy0[j]) + wy0, int(sy1[j]) + wy0)
            gx = slice(int(sx0[j]) + wx0, int(sx1[j]) + wx0)
            ssy, ssx = stamp_slice((gy, gx), (ny, nx))
            st[k] = (ssy.start, ssy.stop, ssx.start, ssx.stop)
        ty0, ty1, tx0, tx1 = st[:, 0] - wy0, st[:, 1] - wy0, st[:, 2] - wx0, st[:, 3] - wx0
        inside = (ty0 >= 0) & (ty1 <= h) & (tx0 >= 0) & (tx1 <= w)
        good_src = inside & (unknown_in(ty0, ty1, tx0, tx1) == 0)
        bad_par = np.unique(parent[i[~good_src]])
        for p in bad_par:
            b = tuple(int(v) for v in gbox[p])
            for j in np.flatnonzero(parent[i] == p):
                b = _bbox_union(b, tuple(int(v) for v in st[j]))
            seeds.append(b)
        labels = labels[~np.isin(parent[i], bad_par)]
        if labels.size == 0:
            return _no_rows(seeds, params, seg.method)

    cat = measure(seg.image, segmap, rms=seg.rms, mask=seg.bad, labels=labels, **job.meas_opts)
    if len(cat):
        cat["flag"] |= seg.flags[labels]
    if job.meas_opts.get("nonparametric", True):
        return _rows_of(cat, labels, segmap, parent, npar, n, seeds, params, seg.method, job)
    # Pixels read by the asymmetry (rotation about the centroid) must all be known.
    xc = np.asarray(cat["xc_centroid"], float)
    yc = np.asarray(cat["yc_centroid"], float)
    i = labels - 1
    with np.errstate(invalid="ignore"):
        dist = np.nanmax(
            np.abs(np.stack([sy0[i] - yc, sy1[i] - 1 - yc, sx0[i] - xc, sx1[i] - 1 - xc])), axis=0
        )
    ok = np.isfinite(dist) & np.isfinite(xc) & np.isfinite(yc)
    half = np.where(ok, np.ceil(np.where(ok, dist, 0)) + 2, 0).astype(int)
    fy = np.floor(np.where(ok, yc, 0)).astype(int)
    fx = np.floor(np.where(ok, xc, 0)).astype(int)
    ay0, ay1 = fy - half, fy + half + 2
    ax0, ax1 = fx - half, fx + half + 2
    inside = (
        ((ay0 >= 0) | (not cut[0]))
        & ((ay1 <= h) | (not cut[1]))
        & ((ax0 >= 0) | (not cut[2]))
        & ((ax1 <= w) | (not cut[3]))
    )
    cy0, cy1 = np.clip(ay0, 0, h), np.clip(ay1, 0, h)
    cx0, cx1 = np.clip(ax0, 0, w), np.clip(ax1, 0, w)
    nunk = sat[cy1, cx1] - sat[cy0, cx1] - sat[cy1, cx0] + sat[cy0, cx0]
    good_src = ~ok | (inside & (nunk == 0))
    bad_par = np.unique(parent[i[~good_src]])
    for p in bad_par:
        k = np.flatnonzero(parent[i] == p)
        b = tuple(int(v) for v in gbox[p])
        for j in k:
            b = _bbox_union(
                b, (int(ay0[j]) + wy0, int(ay1[j]) + wy0, int(ax0[j]) + wx0, int(ax1[j]) + wx0)
            )
        seeds.append((max(0, b[0]), min(ny, b[1]), max(0, b[2]), min(nx, b[3])))
    keep = ~np.isin(parent[i], bad_par)
    return _rows_of(
        cat[keep], labels[keep], segmap, parent, npar, n, seeds, params, seg.method, job
    )


#: Catalog columns in pixel coordinates, shifted from window to image coordinates.
_X_COLUMNS = ("xc_centroid", "xc_asymmetry", "sersic_xc")
_Y_COLUMNS = ("yc_centroid", "yc_asymmetry", "sersic_yc")


def _rows_of(cat, labels, segmap, parent, npar, n, seeds, params, method, job) -> _WindowResult:
    """The window's result for the measured ``labels``: rows in image coordinates, pixels."""
    if labels.size == 0:
        return _no_rows(seeds, params, method)
    wy0, _, wx0, _ = job.window
    w = segmap.shape[1]
    nx = job.shape[1]
    for col in _X_COLUMNS:
        if col in cat.colnames:
            cat[col] += wx0
    for col in _Y_COLUMNS:
        if col in cat.colnames:
            cat[col] += wy0

    # Pixels of the kept sources, their global raster indices and the first pixel of each.
    row_of = np.full(n + 1, -1, np.int64)
    row_of[labels] = np.arange(labels.size)
    flat = segmap.ravel()
    sel = np.flatnonzero(row_of[flat] >= 0)
    prow = row_of[flat[sel]]
    yy, xx = np.divmod(sel, w)
    gidx = (yy + wy0).astype(np.int64) * nx + (xx + wx0)
    source_key = np.full(labels.size, -1, np.int64)
    _, first = np.unique(prow, return_index=True)
    source_key[prow[first]] = gidx[first]
    par_of_row = parent[labels - 1]
    pmin = np.full(npar, np.iinfo(np.int64).max)
    np.minimum.at(pmin, par_of_row, source_key)
    parent_key = pmin[par_of_row]
    return _WindowResult(cat, parent_key, source_key, gidx, prow, seeds, params, method)


# --------------------------------------------------------------------------------------
# The whole run


def _merge_boxes(boxes: list[Box]) -> list[Box]:
    """Merge intersecting boxes until none intersect."""
    out = [tuple(b) for b in boxes]
    changed = True
    while changed:
        changed = False
        merged: list[Box] = []
        for b in out:
            for k, m in enumerate(merged):
                if _intersects(b, m):
                    merged[k] = _bbox_union(b, m)
                    changed = True
                    break
            else:
                merged.append(b)
        out = merged
    return out


def _grow(b: Box, by: int, shape: tuple[int, int]) -> Box:
    return (
        max(0, b[0] - by),
        min(shape[0], b[1] + by),
        max(0, b[2] - by),
        min(shape[1], b[3] + by),
    )


def _within(a: Box, b: Box) -> bool:
    return a[0] >= b[0] and a[1] <= b[1] and a[2] >= b[2] and a[3] <= b[3]


@dataclass
class TiledResult:
    """What :func:`run_tiled` returns."""

    catalog: Table
    segmap: np.ndarray
    segmap_path: Path | None
    params: dict
    method: str
    ntiles: int
    nfallback: int
    timings: dict[str, float]
    parent: np.ndarray


class _SegmapFile:
    """An int32 FITS image written through a memory map (temporary name, renamed at the end)."""

    def __init__(self, path: Path | None, shape: tuple[int, int], header: fits.Header):
        ny, nx = shape
        hdr = fits.Header()
        hdr["SIMPLE"] = True
        hdr["BITPIX"] = 32
        hdr["NAXIS"] = 2
        hdr["NAXIS1"] = nx
        hdr["NAXIS2"] = ny
        hdr["EXTEND"] = True
        hdr["BUNIT"] = ("label", "0 = background, 1..N = sources")
        hdr["NSOURCES"] = (0, "number of labels")
        hdr["EXTNAME"] = "SEGMAP"
        for card in header.cards:
            if card.keyword not in hdr and card.keyword not in ("", "COMMENT", "HISTORY"):
                hdr.append(card)
        self.header = hdr
        self.final = path
        if path is None:
            fd, name = tempfile.mkstemp(prefix="morphoscope_segmap_", suffix=".fits")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        self.tmp = Path(name)
        head = hdr.tostring().encode("ascii")
        self.offset = len(head)
        nbytes = ny * nx * 4
        total = self.offset + -(-nbytes // 2880) * 2880
        with open(self.tmp, "r+b") as f:
            f.write(head)
            f.truncate(total)
        self.data = np.memmap(self.tmp, dtype=">i4", mode="r+", offset=self.offset, shape=shape)

    def finish(self, nsources: int) -> tuple[np.ndarray, Path | None]:
        self.data.flush()
        with open(self.tmp, "r+b") as f:
            self.header["NSOURCES"] = (nsources, "number of labels")
            head = self.header.tostring().encode("ascii")
            if len(head) == self.offset:
                f.write(head)
        if self.final is None:
            arr = np.memmap(
                self.tmp, dtype=">i4", mode="r", offset=self.offset, shape=self.data.shape
            )
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)  # the mapping stays valid; nothing is left behind
            return arr, None
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.final)
        arr = np.memmap(
            self.final, dtype=">i4", mode="r", offset=self.offset, shape=self.data.shape
        )
        return arr, self.final

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def tiling_requested(shape: tuple[int, int], tile, scheduler=None, workers=None) -> int | None:
    """Core size to use, or None for an untiled run.

    ``tile``: an int (pixels), ``"auto"`` (tiles of :data:`DEFAULT_TILE` above
    :data:`AUTO_TILE_PIXELS` pixels; with a scheduler, smaller images are cut in four)
    or None/0 (untiled). ``workers`` does not decide whether to tile.
    """
    ny, nx = shape
    if tile is None or (isinstance(tile, int | np.integer) and int(tile) == 0):
        if scheduler is not None:
            raise ParameterError("tile", tile, "a tile size (or 'auto') with a scheduler")
        return None
    if isinstance(tile, str):
        if tile != "auto":
            raise ParameterError("tile", tile, "an integer number of pixels, 'auto' or None")
        if ny * nx > AUTO_TILE_PIXELS:
            return DEFAULT_TILE
        if scheduler is not None:
            return max(256, -(-max(ny, nx) // 2))
        return None
    if not (isinstance(tile, int | np.integer) and tile >= 16):
        raise ParameterError("tile", tile, "an integer >= 16 (pixels), 'auto' or None")
    return int(tile)


def image_shape(band) -> tuple[int, int]:
    """Shape of a band's image without reading its pixels."""
    plane = _Plane.of(band.image)
    shape = plane.shape()
    if shape is None or len(shape) != 2:
        raise InputError(band.name, f"expected a 2-D image, got shape {shape}")
    return shape


def run_tiled(
    band,
    *,
    tile: int,
    overlap: int = DEFAULT_OVERLAP,
    segment_options: Mapping | None = None,
    measure_options: Mapping | None = None,
    segmap_path: str | os.PathLike | None = None,
    header: fits.Header | None = None,
    scheduler: str | None = None,
    workers: int | str | None = None,
    progress: Callable[[str], None] | None = None,
) -> TiledResult:
    """Detect, de-blend and measure one band tile by tile; the result does not depend on ``tile``.

    Parameters
    ----------
    band : BandInput
        The detection band (FITS paths are read by window through a memory map).
    tile, overlap : int
        Core size and overlap in pixels. Parents up to about ``overlap`` pixels across
        are finished by their own tile; larger ones by the fallback re-run.
    segment_options, measure_options : dict
        As for :func:`~morphoscope.pipeline.run_pipeline`. ``background`` may be
        ``"auto"``, None or a number (not an array); ``method`` must be ``"saddle"``.
    segmap_path : path, optional
        Where to write the segmentation map (FITS, atomically). Without it, the map lives
        in an unlinked temporary file and is returned memory-mapped.
    header : Header, optional
        Extra cards (WCS) for the segmentation map's header.
    scheduler, workers
        Run the windows on ``dask.distributed`` (see
        :mod:`morphoscope.pipeline.distributed`); both None: in this process.
    progress : callable, optional
        Called with ``"background"``, ``"tiles"``, ``"fallback"`` and ``"stitch"``.

    Returns
    -------
    TiledResult

    Notes
    -----
    Memory: one window's arrays (about 30 x 8 bytes x (tile + 2 overlap)**2 at the peak),
    the catalog, and the segmentation map through a memory map. Time: linear in the area,
    plus the overlap fraction ``((tile + 2 overlap) / tile)**2 - 1``.
    """
    from .distributed import task_mapper

    step = progress or (lambda name: None)
    seg_opts = dict(segment_options or {})
    meas_opts = dict(measure_options or {})
    method = seg_opts.get("method", "saddle")
    if method != "saddle":
        raise ParameterError("method", method, "'saddle' for a tiled run")
    background = seg_opts.pop("background", "auto")
    if isinstance(background, str) and background != "auto":
        raise ParameterError("background", background, "'auto', None or a number")
    if not (background is None or isinstance(background, str) or np.ndim(background) == 0):
        raise ParameterError("background", "an array", "'auto', None or a number in a tiled run")
    if not (isinstance(overlap, int | np.integer) and overlap >= 0):
        raise ParameterError("overlap", overlap, "a non-negative integer (pixels)")
    reader = BandReader.from_band(band)
    shape = reader.shape
    in_memory = sum(
        p.array.nbytes
        for p in (reader.image, reader.rms, reader.weight, reader.mask)
        if p is not None and p.array is not None
    )
    if (scheduler is not None or workers not in (None, 1)) and in_memory > 2**26:
        warnings.warn(
            "in-memory arrays are sent with every task of a distributed run; give FITS "
            "paths so that workers read their own windows",
            MorphoscopeWarning,
            stacklevel=2,
        )
    ny, nx = shape
    psf = None
    if band.psf is not None:
        from ..io.fits import _as_array
        from ..io.validate import as_psf

        arr, pname = _as_array(band.psf)
        psf = as_psf(arr, pname or "psf")
    tiles = plan_tiles(shape, int(tile), int(overlap))
    timings: dict[str, float] = {}
    out = _SegmapFile(
        Path(segmap_path) if segmap_path is not None else None, shape, header or fits.Header()
    )
    try:
        with task_mapper(scheduler=scheduler, workers=workers) as mapper:
            t0 = time.perf_counter()
            step("background")
            model = None
            needs_model = background == "auto" or (reader.rms is None and reader.weight is None)
            if needs_model:
                offset = 0.0 if background in (None, "auto") else float(background)
                model = BackgroundModel.compute(
                    reader,
                    box_size=int(seg_opts.get("box_size", 64)),
                    offset=offset,
                    mapper=mapper,
                )
            timings["background"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            step("tiles")
            jobs = [
                _Job(
                    reader,
                    model,
                    t.window,
                    t.core,
                    None,
                    shape,
                    seg_opts,
                    meas_opts,
                    psf,
                    background,
                )
                for t in tiles
            ]
            state = _Stitch(out.data, shape, meas_opts)
            seeds: list[Box] = []
            for res in mapper(process_window, jobs):
                state.add(res)
                seeds.extend(res.seeds)
            timings["tiles"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            step("fallback")
            nfallback = 0
            regions = _merge_boxes(seeds)
            margin = max(int(overlap), 32)
            while regions:
                jobs = [
                    _Job(
                        reader,
                        model,
                        _grow(r, margin, shape),
                        None,
                        r,
                        shape,
                        seg_opts,
                        meas_opts,
                        psf,
                        background,
                    )
                    for r in regions
                ]
                nfallback += len(jobs)
                again: list[Box] = []
                for job, res in zip(jobs, mapper(process_window, jobs), strict=True):
                    state.add(res)
                    grown = [s for s in res.seeds if not _within(s, job.region)]
                    if grown:
                        region = job.region
                        for s in grown:
                            region = _bbox_union(region, s)
                        if job.window != (0, ny, 0, nx):
                            again.append(region)
                regions = _merge_boxes(again)
            timings["fallback"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        step("stitch")
        catalog = state.finish()
        segmap, path = out.finish(len(catalog))
        timings["stitch"] = time.perf_counter() - t0
    except BaseException:
        out.abort()
        raise
    catalog.meta["tiling"] = {
        "tile": int(tile),
        "overlap": int(overlap),
        "ntiles": len(tiles),
        "fallback_windows": nfallback,
    }
    return TiledResult(
        catalog=catalog,
        segmap=segmap,
        segmap_path=path,
        params=state.params,
        method=state.method or method,
        ntiles=len(tiles),
        nfallback=nfallback,
        timings=timings,
        parent=state.parent,
    )


class _Stitch:
    """Writes provisional labels as windows arrive; relabels by first pixel at the end."""

    def __init__(self, segmap: np.ndarray, shape: tuple[int, int], meas_opts: Mapping):
        self.meas_opts = meas_opts
        self.segmap = segmap
        self.flat = segmap.reshape(-1)
        self.shape = shape
        self.tables: list[Table] = []
        self.keys: list[np.ndarray] = []
        self.pkeys: list[np.ndarray] = []
        self.parent = np.zeros(1, np.int32)
        self.seen: set[int] = set()
        self.count = 0
        self.params: dict = {}
        self.method = ""

    def add(self, res: _WindowResult) -> None:
        if res.params and not self.params:
            self.params, self.method = res.params, res.method
        if res.rows is None or len(res.rows) == 0:
            return
        keep = np.array([int(k) not in self.seen for k in res.parent_key])
        if not keep.any():
            return
        self.seen.update(int(k) for k in np.unique(res.parent_key[keep]))
        rows = np.flatnonzero(keep)
        prov = np.zeros(len(res.rows), np.int64)
        prov[rows] = self.count + 1 + np.arange(rows.size)
        self.count += rows.size
        pix = keep[res.pix_row]
        self.flat[res.pix_index[pix]] = prov[res.pix_row[pix]]
        table = res.rows[rows]
        table["label"] = prov[rows]
        self.tables.append(table)
        self.keys.append(res.source_key[rows])
        self.pkeys.append(res.parent_key[rows])

    def finish(self) -> Table:
        if not self.tables:
            from ..measure.core import COLUMNS, NONPARAMETRIC_COLUMNS, SERSIC_COLUMNS

            cols = dict(COLUMNS)
            if self.meas_opts.get("nonparametric", True):
                cols.update(NONPARAMETRIC_COLUMNS)
                if self.meas_opts.get("sersic", True):
                    cols.update(SERSIC_COLUMNS)
            ints = ("label", "flag", "flag_statmorph", "flag_sersic")
            return Table({k: np.zeros(0, int if k in ints else float) for k in cols})
        cat = vstack(self.tables, metadata_conflicts="silent")
        keys = np.concatenate(self.keys)
        order = np.argsort(keys, kind="stable")
        cat = cat[order]
        _, inv = np.unique(np.concatenate(self.pkeys)[order], return_inverse=True)
        self.parent = np.concatenate([[0], inv + 1]).astype(np.int32)
        lut = np.zeros(self.count + 1, np.int32)
        lut[np.asarray(cat["label"], np.int64)] = np.arange(1, len(cat) + 1, dtype=np.int32)
        cat["label"] = np.arange(1, len(cat) + 1)
        rows = max(1, (1 << 24) // max(1, self.shape[1]))
        for r0 in range(0, self.shape[0], rows):
            block = np.asarray(self.segmap[r0 : r0 + rows])
            self.segmap[r0 : r0 + rows] = lut[block]
        return cat


def maybe_run_tiled(
    bands: list,
    det_name: str,
    *,
    tile,
    overlap: int | None,
    scheduler: str | None,
    workers: int | str | None,
    segment_options: Mapping | None,
    measure_options: Mapping | None,
    out_dir: str | os.PathLike | None,
    progress: Callable[[str], None] | None = None,
    config: Mapping | None = None,
):
    """The tiled branch of :func:`~morphoscope.pipeline.run_pipeline`.

    Returns a :class:`~morphoscope.pipeline.PipelineResult`, or None when the run is not
    tiled (``tile`` None/0, or ``"auto"`` on an image small enough to process whole, or
    ``"auto"`` with several bands, which are processed whole). With ``out_dir``, writes
    ``segmap.fits``, ``catalog.ecsv``, ``catalog.fits`` and ``log.json`` (seconds per step,
    the tiling, the segmentation parameters, the measurement keywords and ``config``, the
    run's configuration as plain data, when given).
    """
    import astropy.units as u

    from ..io import ImageData
    from ..io.fits import _celestial_wcs
    from ..segment.core import SegmentationResult
    from .run import PipelineResult

    step = progress or (lambda name: None)
    det_band = next(b for b in bands if b.name == det_name)
    try:
        shape = image_shape(det_band)
    except InputError:
        if tile == "auto" and scheduler is None:
            return None  # the untiled path reports the problem with the input
        raise
    size = tiling_requested(shape, tile, scheduler=scheduler, workers=workers)
    if size is None:
        return None
    if len(bands) > 1:
        if tile == "auto" and scheduler is None:
            return None
        raise ParameterError("tile", tile, "None for a multi-band run (tiling takes one band)")
    t0 = time.perf_counter()
    step("read")
    header = fits.Header()
    plane = _Plane.of(det_band.image)
    if plane.path is not None:
        with fits.open(plane.path, memmap=True, do_not_scale_image_data=True) as hdul:
            hdu = _first_image_hdu(hdul, plane.ext)
            header = hdu.header.copy()
    wcs = _celestial_wcs(header)
    timings = {"read": time.perf_counter() - t0}
    out = Path(out_dir) if out_dir is not None else None
    step("detect")
    res = run_tiled(
        det_band,
        tile=size,
        overlap=DEFAULT_OVERLAP if overlap is None else int(overlap),
        segment_options=segment_options,
        measure_options=measure_options,
        segmap_path=None if out is None else out / "segmap.fits",
        header=wcs.to_header() if wcs is not None else None,
        scheduler=scheduler,
        workers=workers,
    )
    step("measure")
    catalog = res.catalog
    catalog.meta["detection_band"] = det_name
    catalog.meta["segment"] = dict(res.params)
    if wcs is not None and len(catalog):
        ra, dec = wcs.pixel_to_world_values(catalog["xc_centroid"], catalog["yc_centroid"])
        catalog.add_column(np.asarray(ra) * u.deg, name="ra", index=3)
        catalog.add_column(np.asarray(dec) * u.deg, name="dec", index=4)
    timings.update({k: v for k, v in res.timings.items()})
    flags = np.zeros(len(catalog) + 1, np.int64)
    if len(catalog):
        flags[1:] = np.asarray(catalog["flag"], np.int64)
    seg = SegmentationResult(
        segmap=res.segmap,
        background=None,  # type: ignore[arg-type]
        rms=None,  # type: ignore[arg-type]
        image=None,  # type: ignore[arg-type]
        bad=None,  # type: ignore[arg-type]
        flags=flags,
        parent=res.parent,
        method=res.method,
        params=dict(res.params),
    )
    data = plane.array
    if data is None:
        hdul = fits.open(plane.path, memmap=True, do_not_scale_image_data=True)
        data = _first_image_hdu(hdul, plane.ext).data
    band = ImageData(data=data, bad=None, wcs=wcs, header=header, name=det_name)  # type: ignore[arg-type]
    result = PipelineResult(
        catalog=catalog,
        segmentation=seg,
        bands={det_name: band},
        detection_band=det_name,
        timings=timings,
    )
    if out is not None:
        from ..io import write_catalog

        t0 = time.perf_counter()
        step("write")
        result.outputs["segmap"] = res.segmap_path
        result.outputs["catalog"] = write_catalog(out / "catalog.ecsv", catalog)
        result.outputs["catalog_fits"] = write_catalog(out / "catalog.fits", catalog)
        result.timings["write"] = time.perf_counter() - t0
        result.outputs["log"] = _write_log(
            out / "log.json", result, measure_options=measure_options, config=config
        )
    return result


def _write_log(path: Path, result, *, measure_options, config) -> Path:
    """``log.json`` of a tiled run: steps, tiling, parameters and configuration."""
    import json

    from .. import __version__
    from ..io.write import atomic_write

    log = {
        "morphoscope": __version__,
        "detection": result.detection_band,
        "n_sources": len(result.catalog),
        "tiling": plain_data(result.catalog.meta.get("tiling", {})),
        "seconds": {k: round(float(v), 3) for k, v in result.timings.items()},
        "segment": plain_data(result.segmentation.params),
        "measure_options": plain_data(dict(measure_options or {})),
        "config": plain_data(dict(config)) if config is not None else None,
    }
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(log, indent=2), encoding="utf-8")
    return path
