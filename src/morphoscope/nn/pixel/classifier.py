"""PixelClassifier: morphological class probabilities for every pixel of an image."""

from __future__ import annotations

import numbers
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from astropy.table import Table

from ...exceptions import InputError, ParameterError
from ...io.validate import as_image
from .model import UNet, inference_copy

__all__ = [
    "CLASS_NAMES",
    "PixelClassifier",
    "aggregate_segments",
    "blend_window",
    "noise_sigma",
    "prepare_input",
]

#: Output channels of the network, in order (index = class id of the simulator).
CLASS_NAMES: tuple[str, ...] = ("background", "spheroid", "disk", "irregular", "point_source")

#: Default tile side of the tiled inference (pixels); the default overlap is a quarter.
DEFAULT_TILE = 512

#: File names of the shipped weights and model card, next to this module.
WEIGHTS_FILE = "pixel_classifier.pt"


def noise_sigma(image: np.ndarray, bad: np.ndarray | None = None) -> tuple[float, float]:
    """Robust sky level and noise of an image: 3-sigma-clipped median and MAD-sigma.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image.
    bad : numpy.ndarray of bool, optional
        Pixels to ignore.

    Returns
    -------
    level, sigma : float
        Median and standard deviation (1.4826 MAD) of the sky pixels after three
        clipping passes. At most 10^6 pixels (a regular subsample) are used: O(N).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).normal(5.0, 2.0, (200, 200))
    >>> level, sigma = noise_sigma(img)
    >>> round(level), round(sigma, 1)
    (5, 2.0)
    """
    data = image[~bad] if bad is not None else image.ravel()
    step = max(1, data.size // 1_000_000)
    data = np.asarray(data[::step], dtype=np.float64)
    level = float(np.median(data))
    sigma = 1.4826 * float(np.median(np.abs(data - level)))
    for _ in range(3):
        if not sigma > 0:
            break
        keep = data[np.abs(data - level) < 3.0 * sigma]
        if keep.size < 10:
            break
        level = float(np.median(keep))
        sigma = 1.4826 * float(np.median(np.abs(keep - level)))
    if not sigma > 0:
        sigma = float(np.std(data)) or 1.0
    return level, sigma


def _band_list(images, n_bands: int) -> list:
    """Turn the accepted image containers into a list of 2-D arrays or None."""
    if isinstance(images, np.ndarray) or (
        not isinstance(images, Sequence | str) and hasattr(images, "__array__")
    ):
        arr = np.asarray(images)
        if arr.ndim == 2:
            bands = [arr]
        elif arr.ndim == 3:
            bands = list(arr)
        else:
            raise InputError(
                "images",
                f"expected a 2-D image, a (bands, ny, nx) cube or a list of images, "
                f"got {arr.ndim}-D data of shape {arr.shape}",
            )
    elif isinstance(images, Sequence) and not isinstance(images, str):
        bands = list(images)
    else:
        raise InputError(
            "images", f"expected an array or a list of arrays, got {type(images).__name__}"
        )
    if not bands:
        raise InputError("images", "no band given")
    if len(bands) > n_bands:
        raise InputError(
            "images", f"{len(bands)} bands given but the model takes at most {n_bands}"
        )
    if all(b is None for b in bands):
        raise InputError("images", "every band is missing (None); give at least one image")
    return bands + [None] * (n_bands - len(bands))


def prepare_input(
    images, n_bands: int, *, noise=None, stretch: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Scale the bands into the network's input channels.

    Every present band becomes ``asinh((image - sky) / (stretch * sigma))`` with the
    sky level and noise ``sigma`` of :func:`noise_sigma` (or the given ``noise``),
    followed by a constant channel 1; a missing band is two channels of 0.

    Parameters
    ----------
    images : array_like or list
        One 2-D image, a ``(bands, ny, nx)`` cube or a list of 2-D images in which
        ``None`` marks a missing band; at most ``n_bands`` bands, in the band order of
        the model (bluest first), missing trailing bands may be left out.
    n_bands : int
        Band slots of the model.
    noise : float, array_like or list, optional
        Per-band 1-sigma sky noise: one number per band (None: estimated), or rms maps
        (their median is used). Default: estimated from every image.
    stretch : float
        Softening of the asinh in units of sigma.

    Returns
    -------
    x : numpy.ndarray of float32, shape (2 * n_bands, ny, nx)
        Network input. Non-finite pixels are set to the sky (0).
    weight : numpy.ndarray of float32, shape (ny, nx)
        Sum over present bands of the non-negative S/N, used to weight pixels when
        aggregating over segments.
    """
    bands = _band_list(images, n_bands)
    if noise is None:
        noises = [None] * n_bands
    elif isinstance(noise, numbers.Real) or (isinstance(noise, np.ndarray) and noise.ndim == 2):
        noises = [noise] + [None] * (n_bands - 1)
    else:
        noises = list(noise) + [None] * max(0, n_bands - len(noise))
        if len(noises) > n_bands:
            raise ParameterError("noise", f"{len(noise)} values", f"at most {n_bands} values")
    shape = None
    x = None
    weight = None
    for i, (band, nz) in enumerate(zip(bands, noises, strict=False)):
        if band is None:
            continue
        img, bad = as_image(band, f"images[{i}]")
        if shape is None:
            shape = img.shape
            x = np.zeros((2 * n_bands, *shape), dtype=np.float32)
            weight = np.zeros(shape, dtype=np.float32)
        elif img.shape != shape:
            raise InputError(
                f"images[{i}]", f"shape {img.shape} differs from the first band's {shape}"
            )
        level, sigma = noise_sigma(img, bad)
        if nz is not None:
            nz_arr = np.asarray(nz, dtype=float)
            val = float(np.nanmedian(nz_arr)) if nz_arr.size else float("nan")
            if not (np.isfinite(val) and val > 0):
                raise ParameterError(f"noise[{i}]", nz, "a positive number or rms map")
            sigma = val
        snr = (img - level) / sigma
        snr[bad] = 0.0
        x[2 * i] = np.arcsinh(snr / stretch)
        x[2 * i + 1] = 1.0
        weight += np.clip(snr, 0.0, None).astype(np.float32)
    return x, weight


def blend_window(length: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    """1-D blending weights of a tile: raised-cosine ramps on sides shared with a neighbour.

    Within ``overlap`` pixels of an inner edge the weight is 0 over the first quarter
    (the pixels that see the tile edge), rises as a raised cosine over the next half
    and is 1 beyond; sides on the image border keep weight 1.

    Examples
    --------
    >>> w = blend_window(8, 4, at_start=False, at_end=True)
    >>> w.round(2).tolist()
    [0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    d = np.arange(length, dtype=np.float64)
    w = np.ones(length)

    def ramp(dist):
        t = np.clip((dist - overlap / 4.0) / (overlap / 2.0), 0.0, 1.0)
        return 0.5 - 0.5 * np.cos(np.pi * t)

    if overlap > 0:
        if not at_start:
            w *= ramp(d)
        if not at_end:
            w *= ramp(length - 1 - d)
    return w


def _starts(n: int, tile: int, overlap: int) -> list[int]:
    if n <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, n - tile, stride))
    starts.append(n - tile)
    return starts


def aggregate_segments(
    proba: np.ndarray, segmap: np.ndarray, weight: np.ndarray | None = None
) -> Table:
    """Flux-weighted class probabilities of every segment of a segmentation map.

    Parameters
    ----------
    proba : numpy.ndarray, shape (5, ny, nx)
        Per-pixel probabilities (:meth:`PixelClassifier.predict_proba`).
    segmap : numpy.ndarray of int, shape (ny, nx)
        0 = background, labels 1..N.
    weight : numpy.ndarray, shape (ny, nx), optional
        Non-negative pixel weights (the flux or S/N); uniform when omitted, and for
        segments whose weights sum to zero.

    Returns
    -------
    table : astropy.table.Table
        One row per label present: ``id``, ``npix``, ``p_background``, ``p_spheroid``,
        ``p_disk``, ``p_irregular``, ``p_point_source`` (weighted means, summing to 1),
        ``class`` and ``class_id``: the most probable of the four source classes
        (ids 1-4), and ``class_prob``: its probability among the source classes.

    Notes
    -----
    One pass of ``numpy.bincount`` per class: O(ny * nx), no per-segment loop.

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.zeros((5, 4, 4)); proba[4] = 1.0
    >>> seg = np.zeros((4, 4), int); seg[1:3, 1:3] = 7
    >>> t = aggregate_segments(proba, seg)
    >>> t["id"][0], t["class"][0]
    (np.int32(7), np.str_('point_source'))
    """
    seg = np.asarray(segmap)
    if seg.shape != proba.shape[1:]:
        raise InputError("segmap", f"shape {seg.shape} differs from the image's {proba.shape[1:]}")
    if seg.dtype.kind not in "iu" or (seg.size and seg.min() < 0):
        raise InputError("segmap", "expected non-negative integer labels (0 = background)")
    flat = seg.ravel().astype(np.int64)
    nlab = int(flat.max()) + 1 if flat.size else 1
    npix = np.bincount(flat, minlength=nlab)
    w = np.ones(flat.size) if weight is None else np.clip(weight.ravel(), 0.0, None)
    wsum = np.bincount(flat, weights=w, minlength=nlab)
    uniform = wsum <= 0
    ids = np.flatnonzero(npix)
    ids = ids[ids > 0]
    probs = np.empty((len(CLASS_NAMES), ids.size))
    for k in range(len(CLASS_NAMES)):
        pk = proba[k].ravel().astype(np.float64)
        num = np.bincount(flat, weights=w * pk, minlength=nlab)
        mean = np.bincount(flat, weights=pk, minlength=nlab) / np.maximum(npix, 1)
        probs[k] = np.where(uniform, mean, num / np.where(uniform, 1.0, wsum))[ids]
    probs /= probs.sum(axis=0, keepdims=True)
    src = probs[1:]
    best = np.argmax(src, axis=0) if ids.size else np.zeros(0, int)
    t = Table()
    t["id"] = ids.astype(np.int32)
    t["npix"] = npix[ids].astype(np.int64)
    for k, name in enumerate(CLASS_NAMES):
        t[f"p_{name}"] = probs[k].astype(np.float32)
    t["class"] = np.array([CLASS_NAMES[b + 1] for b in best], dtype="U12")
    t["class_id"] = (best + 1).astype(np.int16)
    with np.errstate(invalid="ignore", divide="ignore"):
        t["class_prob"] = (src.max(axis=0) / src.sum(axis=0)).astype(np.float32) if ids.size else []
    t.meta["class_names"] = list(CLASS_NAMES)
    return t


class PixelClassifier:
    """Morphological class probabilities of every pixel, from a small U-Net.

    The network gives every pixel the probabilities of ``background, spheroid, disk,
    irregular, point_source`` (:data:`CLASS_NAMES`). It takes 1 to ``n_bands`` images
    on one pixel grid; any band may be missing (each band slot carries a presence
    flag and the network was trained with random bands dropped). Images of any size
    are processed in overlapping tiles whose predictions are blended with smooth
    windows, so the result does not depend on where the tiles fall.

    Parameters
    ----------
    n_bands : int
        Band slots (bluest first).
    widths : sequence of int
        Channels at each resolution of the U-Net (full resolution first).
    dilation : int
        Dilation of the coarsest convolution.
    stretch : float
        Softening (in noise sigma) of the asinh scaling of the inputs.
    logit_bias : sequence of 5 floats, optional
        Added to the network's logits before the softmax. Training sets it to
        ``-log(class_weights)``, which undoes the class weighting of the pixel loss
        term (the object-balanced and per-object terms, and the object-centred crops,
        still shift the balance towards the source classes). Default zeros.
    seed : int
        Seed of the initial weights.

    Attributes
    ----------
    net : torch.nn.Module
        The :class:`~morphoscope.nn.pixel.model.UNet`.
    meta : dict
        Free-form metadata saved with the weights (training configuration, metrics).

    Examples
    --------
    >>> from morphoscope.nn import PixelClassifier
    >>> from morphoscope.simulate import simulate_scene
    >>> scene = simulate_scene((96, 96), n_sources=3, seed=2)
    >>> clf = PixelClassifier.pretrained()
    >>> proba = clf.predict_proba([scene.images[b] for b in scene.band_names])
    >>> proba.shape
    (5, 96, 96)
    >>> cat = clf.classify_segments(list(scene.images.values()), scene.segmap)
    >>> list(cat.colnames[:3])
    ['id', 'npix', 'p_background']
    """

    class_names = CLASS_NAMES

    def __init__(
        self,
        n_bands: int = 3,
        widths: Sequence[int] = (8, 16, 32, 64),
        dilation: int = 2,
        stretch: float = 1.0,
        logit_bias: Sequence[float] | None = None,
        seed: int = 0,
    ) -> None:
        if isinstance(n_bands, bool) or not isinstance(n_bands, numbers.Integral) or n_bands < 1:
            raise ParameterError("n_bands", n_bands, "a positive integer")
        try:
            widths = [int(w) for w in widths]
        except (TypeError, ValueError):
            raise ParameterError("widths", widths, "a sequence of positive integers") from None
        if len(widths) < 2 or min(widths) < 1:
            raise ParameterError("widths", widths, "at least two positive integers")
        if not (isinstance(stretch, numbers.Real) and stretch > 0):
            raise ParameterError("stretch", stretch, "a positive number")
        bias = [0.0] * len(CLASS_NAMES) if logit_bias is None else logit_bias
        try:
            bias = [float(b) for b in bias]
        except (TypeError, ValueError):
            bias = []
        if len(bias) != len(CLASS_NAMES) or not np.all(np.isfinite(bias)):
            raise ParameterError("logit_bias", logit_bias, "5 finite numbers or None")
        self.config = {
            "n_bands": int(n_bands),
            "widths": widths,
            "dilation": int(dilation),
            "stretch": float(stretch),
            "logit_bias": bias,
        }
        torch.manual_seed(int(seed))
        self.net = UNet(2 * int(n_bands), len(CLASS_NAMES), widths, int(dilation))
        self.net.eval()
        self.meta: dict = {}

    @property
    def n_bands(self) -> int:
        """Number of band slots."""
        return self.config["n_bands"]

    # ------------------------------------------------------------------ I/O
    def save(self, path: str | os.PathLike) -> Path:
        """Write the architecture, weights and metadata to a ``.pt`` file (atomically)."""
        from ...io.write import atomic_write

        payload = {
            "config": dict(self.config),
            "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "meta": self.meta,
        }
        with atomic_write(path) as tmp:
            torch.save(payload, tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PixelClassifier:
        """Read a classifier written by :meth:`save`.

        Raises
        ------
        InputError
            If the file is missing or is not a PixelClassifier file.
        """
        p = Path(path)
        if not p.is_file():
            raise InputError(str(path), "no such weights file")
        try:
            payload = torch.load(p, map_location="cpu", weights_only=True)
            clf = cls(**payload["config"])
            clf.net.load_state_dict(payload["state_dict"])
        except (KeyError, TypeError, RuntimeError, EOFError, ValueError,
                pickle.UnpicklingError) as exc:  # fmt: skip
            raise InputError(str(path), f"not a PixelClassifier weights file ({exc})") from None
        clf.meta = payload.get("meta", {}) or {}
        clf.net.eval()
        return clf

    @classmethod
    def pretrained(cls) -> PixelClassifier:
        """The classifier shipped with morphoscope (3 bands, trained on simulated scenes).

        See ``pixel_classifier.md`` next to this module for the training data and metrics.
        """
        return cls.load(Path(__file__).with_name(WEIGHTS_FILE))

    # ------------------------------------------------------------ inference
    def predict_proba(
        self,
        images,
        *,
        noise=None,
        tile: int = DEFAULT_TILE,
        overlap: int | None = None,
        batch_size: int = 4,
    ) -> np.ndarray:
        """Class probabilities of every pixel.

        Parameters
        ----------
        images : array_like or list
            One 2-D image, a ``(bands, ny, nx)`` cube, or a list of 2-D images with
            ``None`` for missing bands (see :func:`prepare_input`). Images are
            sky-subtracted here by a clipped median; a varying background should be
            removed beforehand. NaN pixels are treated as empty sky.
        noise : float or list, optional
            Per-band sky noise (numbers or rms maps); estimated when omitted.
        tile : int
            Tile side in pixels (>= 32, default 512; rounded down to a multiple of the
            network's pooling factor, 8); images up to this size run in one pass.
        overlap : int
            Overlap of neighbouring tiles (0 <= overlap <= tile / 2; default tile / 4,
            i.e. 128; rounded down to a multiple of 8); the outer
            quarter of every overlap is discarded and the rest blended smoothly.
        batch_size : int
            Tiles per forward pass.

        Returns
        -------
        proba : numpy.ndarray of float32, shape (5, ny, nx)
            Probabilities in the order of :data:`CLASS_NAMES`; they sum to 1.

        Notes
        -----
        Time O(ny * nx) with a factor ``(tile / (tile - overlap))**2`` for the
        overlaps; memory: the input and output arrays plus one batch of tiles.
        """
        x, _ = prepare_input(images, self.n_bands, noise=noise, stretch=self.config["stretch"])
        return self._proba(x, tile, overlap, batch_size)

    def _proba(
        self, x: np.ndarray, tile: int, overlap: int | None, batch_size: int
    ) -> np.ndarray:
        for name, value, lo in (("tile", tile, 32), ("batch_size", batch_size, 1)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
                raise ParameterError(name, value, f"an integer >= {lo}")
        if overlap is None:
            overlap = tile // 4
        if (
            isinstance(overlap, bool)
            or not isinstance(overlap, numbers.Integral)
            or not 0 <= overlap <= tile // 2
        ):
            raise ParameterError("overlap", overlap, f"an integer in [0, {tile // 2}]")
        # The U-Net pools by ``factor``: tiles start on multiples of it (and the image is
        # zero-padded, like the network pads a whole image) so that every tile sees the
        # same pooling grid as a single pass over the whole image.
        f = self.net.factor
        _, ny0, nx0 = x.shape
        ny, nx = ny0 + (-ny0) % f, nx0 + (-nx0) % f
        if (ny, nx) != (ny0, nx0):
            x = np.pad(x, ((0, 0), (0, ny - ny0), (0, nx - nx0)))
        tile = max(f, tile - tile % f)
        overlap = min(overlap - overlap % f, tile // 2 - (tile // 2) % f)
        ty, tx = min(tile, ny), min(tile, nx)
        ys, xs = _starts(ny, ty, overlap), _starts(nx, tx, overlap)
        out = np.zeros((len(CLASS_NAMES), ny, nx), dtype=np.float64)
        wsum = np.zeros((ny, nx), dtype=np.float64)
        boxes = [(y0, x0) for y0 in ys for x0 in xs]
        self.net.eval()
        net = inference_copy(self.net)  # folded batch norms, channels-last: ~2x faster
        bias = torch.tensor(self.config["logit_bias"], dtype=torch.float32).view(1, -1, 1, 1)
        with torch.inference_mode():
            for b in range(0, len(boxes), batch_size):
                chunk = boxes[b : b + batch_size]
                batch = np.stack([x[:, y0 : y0 + ty, x0 : x0 + tx] for y0, x0 in chunk])
                inp = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
                logits = net(inp).contiguous() + bias
                prob = torch.softmax(logits, dim=1).numpy()
                for (y0, x0), p in zip(chunk, prob, strict=True):
                    wy = blend_window(ty, overlap, y0 == 0, y0 + ty == ny)
                    wx = blend_window(tx, overlap, x0 == 0, x0 + tx == nx)
                    w = wy[:, None] * wx[None, :]
                    out[:, y0 : y0 + ty, x0 : x0 + tx] += p * w
                    wsum[y0 : y0 + ty, x0 : x0 + tx] += w
        out /= wsum
        return out[:, :ny0, :nx0].astype(np.float32)

    def predict(self, images, **kwargs) -> np.ndarray:
        """Most probable class of every pixel (uint8 ids of :data:`CLASS_NAMES`).

        Keywords are those of :meth:`predict_proba`.
        """
        return np.argmax(self.predict_proba(images, **kwargs), axis=0).astype(np.uint8)

    def classify_segments(
        self,
        images,
        segmap,
        *,
        noise=None,
        proba: np.ndarray | None = None,
        tile: int = DEFAULT_TILE,
        overlap: int | None = None,
        batch_size: int = 4,
    ) -> Table:
        """Class of every segment: flux-weighted mean of its pixels' probabilities.

        Parameters
        ----------
        images : array_like or list
            As in :meth:`predict_proba`.
        segmap : array_like of int
            Segmentation map (0 = background, labels 1..N), same shape as the images.
        noise : float or list, optional
            Per-band sky noise (see :meth:`predict_proba`).
        proba : numpy.ndarray, optional
            Probabilities already computed by :meth:`predict_proba` (skips the network).
        tile, overlap, batch_size : int
            As in :meth:`predict_proba`.

        Returns
        -------
        table : astropy.table.Table
            See :func:`aggregate_segments`; pixels are weighted by their summed
            non-negative S/N over the present bands.
        """
        x, weight = prepare_input(images, self.n_bands, noise=noise, stretch=self.config["stretch"])
        if proba is None:
            proba = self._proba(x, tile, overlap, batch_size)
        elif np.shape(proba) != (len(CLASS_NAMES), *x.shape[1:]):
            raise InputError("proba", f"expected shape {(len(CLASS_NAMES), *x.shape[1:])}")
        return aggregate_segments(np.asarray(proba), np.asarray(segmap), weight)
