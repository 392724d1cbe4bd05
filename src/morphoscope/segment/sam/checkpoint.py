"""Finding and loading Segment Anything weights from disk (nothing is ever downloaded)."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np

from ...exceptions import InputError

__all__ = ["ENV_VAR", "EXPECTED", "SamBackend", "config", "load_sam", "resolve_checkpoint"]

#: Environment variable read when neither the argument nor ``config["checkpoint"]`` is set.
ENV_VAR = "MORPHOSCOPE_SAM_CHECKPOINT"

#: Settings of the ``"sam"`` method: ``config["checkpoint"]`` is used when no
#: ``checkpoint`` argument is given (before the environment variable).
config: dict = {"checkpoint": None}

#: What a checkpoint must be, and where the weights are published (part of every error).
EXPECTED = (
    "expected a Segment Anything checkpoint in Hugging Face form: a directory written by "
    "transformers' save_pretrained (config.json with model_type 'sam' and model.safetensors), "
    "e.g. facebook/sam-vit-base, sam-vit-large or sam-vit-huge, published at "
    "https://huggingface.co/facebook/sam-vit-base; on a machine with internet run "
    "`SamModel.from_pretrained('facebook/sam-vit-base').save_pretrained(DIR)` and pass DIR "
    "(Meta's original .pth files, https://github.com/facebookresearch/segment-anything, are "
    "accepted only where the segment-anything and torchvision packages import). Give it as "
    f"checkpoint=PATH, morphoscope.segment.sam.config['checkpoint'] or ${ENV_VAR}; "
    "nothing is downloaded"
)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def resolve_checkpoint(checkpoint=None) -> str:
    """Return the checkpoint to use: the argument, else ``config["checkpoint"]``, else $ENV_VAR.

    Raises
    ------
    InputError
        When none is set, with the message :data:`EXPECTED`.

    Examples
    --------
    >>> resolve_checkpoint("/data/sam-vit-base")
    '/data/sam-vit-base'
    """
    for value in (checkpoint, config.get("checkpoint"), os.environ.get(ENV_VAR)):
        if value is not None and str(value).strip():
            return os.fspath(value) if not isinstance(value, str) else value.strip()
    raise InputError("checkpoint", "no Segment Anything checkpoint was given; " + EXPECTED)


def _require_transformers():
    try:
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "method='sam' needs the optional dependency transformers (>=4.40): "
            "pip install 'morphoscope[sam]'"
        ) from exc


class SamBackend:
    """A loaded SAM: ``embed`` a normalised picture, ``decode`` point prompts into masks.

    Attributes
    ----------
    image_size : int
        Side of the square input (1024 for the published weights).
    mean, std : tuple of float
        Per-channel normalisation of pixel values in [0, 1].
    name : str
        Where the weights came from.
    """

    pad_label = -10

    def __init__(self, model, name: str, mean=_IMAGENET_MEAN, std=_IMAGENET_STD) -> None:
        self.model = model
        self.name = name
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.image_size = int(model.config.vision_config.image_size)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def embed(self, pixel_values):
        """Image embedding of a ``(1, 3, S, S)`` tensor."""
        import torch

        with torch.inference_mode():
            return self.model.get_image_embeddings(pixel_values.to(self.device))

    def decode(self, embedding, points, labels, multimask: bool = True):
        """Low-resolution mask logits ``(P, M, r, r)`` and predicted IoUs ``(P, M)``.

        ``points`` ``(P, K, 2)`` are (x, y) in input pixels, ``labels`` ``(P, K)`` are 1
        (object), 0 (not this object) or ``pad_label`` (no point).
        """
        import torch

        with torch.inference_mode():
            out = self.model(
                image_embeddings=embedding,
                input_points=points[None].to(self.device, torch.float32),
                input_labels=labels[None].to(self.device, torch.long),
                multimask_output=multimask,
            )
        return out.pred_masks[0].float().cpu(), out.iou_scores[0].float().cpu()


class _MetaSamBackend(SamBackend):
    """Meta's ``segment_anything`` model behind the same interface."""

    pad_label = -1

    def __init__(self, sam, name: str) -> None:
        self.model = sam
        self.name = name
        self.mean = tuple(float(m) / 255.0 for m in sam.pixel_mean.flatten())
        self.std = tuple(float(s) / 255.0 for s in sam.pixel_std.flatten())
        self.image_size = int(sam.image_encoder.img_size)

    def embed(self, pixel_values):
        import torch

        with torch.inference_mode():
            return self.model.image_encoder(pixel_values.to(self.device))

    def decode(self, embedding, points, labels, multimask: bool = True):
        import torch

        with torch.inference_mode():
            sparse, dense = self.model.prompt_encoder(
                points=(points.to(self.device, torch.float32), labels.to(self.device, torch.int)),
                boxes=None,
                masks=None,
            )
            low, iou = self.model.mask_decoder(
                image_embeddings=embedding,
                image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
            )
        return low.float().cpu(), iou.float().cpu()


def _wrong(path: str, problem: str) -> InputError:
    return InputError(path, f"{problem}; {EXPECTED}")


def _load_hf_dir(path: Path, device: str) -> SamBackend:
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise _wrong(str(path), "the directory has no config.json")
    try:
        cfg = json.loads(cfg_file.read_text())
    except (OSError, ValueError) as exc:
        raise _wrong(str(path), f"config.json cannot be read ({exc})") from None
    if cfg.get("model_type") != "sam":
        raise _wrong(str(path), f"config.json has model_type {cfg.get('model_type')!r}, not 'sam'")
    _require_transformers()
    from transformers import SamModel

    try:
        model = SamModel.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # missing or mismatched weight files
        problem = f"the weights cannot be loaded ({type(exc).__name__}: {exc})"
        raise _wrong(str(path), problem) from None
    mean, std = _IMAGENET_MEAN, _IMAGENET_STD
    pre = path / "preprocessor_config.json"
    if pre.is_file():
        try:
            p = json.loads(pre.read_text())
            mean, std = p.get("image_mean", mean), p.get("image_std", std)
        except (OSError, ValueError):
            pass
    return SamBackend(model.eval().to(device), str(path), mean, std)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a module without a spec already in sys.modules
        return name in sys.modules


def _load_meta_pth(path: Path, device: str) -> SamBackend:
    missing = [m for m in ("segment_anything", "torchvision") if not _importable(m)]
    problem = None
    if missing:
        problem = f"a Meta .pth file needs {' and '.join(missing)}, which cannot be imported here"
    else:
        try:
            import segment_anything  # noqa: F401
        except Exception as exc:
            problem = f"a Meta .pth file needs segment-anything, whose import fails ({exc})"
    if problem:
        raise _wrong(str(path), problem)
    import torch
    from segment_anything import sam_model_registry

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        width = state["image_encoder.patch_embed.proj.weight"].shape[0]
        kind = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}[int(width)]
        sam = sam_model_registry[kind](checkpoint=None)
        sam.load_state_dict(state)
    except Exception as exc:
        problem = f"not a Segment Anything .pth ({type(exc).__name__}: {exc})"
        raise _wrong(str(path), problem) from None
    return _MetaSamBackend(sam.eval().to(device), str(path))


@functools.lru_cache(maxsize=2)
def _load_cached(path: str, stamp: float, device: str) -> SamBackend:
    p = Path(path)
    if p.is_dir():
        return _load_hf_dir(p, device)
    if p.suffix.lower() in (".pth", ".pt"):
        return _load_meta_pth(p, device)
    if p.name == "config.json" or p.suffix == ".safetensors":
        return _load_hf_dir(p.parent, device)
    raise _wrong(path, "not a directory nor a .pth file")


def load_sam(checkpoint=None, *, device: str = "cpu") -> SamBackend:
    """Load SAM weights from disk: a ``save_pretrained`` directory or, optionally, a Meta ``.pth``.

    Parameters
    ----------
    checkpoint : str, path, ``transformers.SamModel`` or SamBackend, optional
        Resolved by :func:`resolve_checkpoint` when None. A Hugging Face id such as
        ``"facebook/sam-vit-base"`` that is not a path is looked up in the local Hugging Face
        cache only. A model already in memory is used as it is.
    device : str
        torch device ("cpu", "cuda", ...).

    Returns
    -------
    SamBackend

    Raises
    ------
    InputError
        Missing or unusable checkpoint; the message says what is expected and where the
        weights are published.
    ImportError
        transformers is not installed (``pip install 'morphoscope[sam]'``).

    Notes
    -----
    The last two checkpoints loaded are kept in memory (keyed on path, modification time and
    device). ViT-B weights take 375 MB, ViT-H 2.5 GB.

    Examples
    --------
    >>> load_sam("/nonexistent/sam-vit-base")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    morphoscope.exceptions.InputError: /nonexistent/sam-vit-base: no such file or directory; ...
    """
    if isinstance(checkpoint, SamBackend):
        return checkpoint
    if hasattr(checkpoint, "get_image_embeddings") and hasattr(checkpoint, "config"):
        return SamBackend(checkpoint.eval(), type(checkpoint).__name__)
    path = resolve_checkpoint(checkpoint)
    p = Path(path).expanduser()
    if p.exists():
        return _load_cached(str(p.resolve()), p.stat().st_mtime, str(device))
    if path.count("/") == 1 and not path.startswith((".", "/", "~")):
        # A Hub id: the local cache only (local_files_only), never a download.
        _require_transformers()
        from transformers import SamModel

        try:
            model = SamModel.from_pretrained(path, local_files_only=True)
        except Exception:
            problem = "no such directory, and not in the local Hugging Face cache"
            raise _wrong(path, problem) from None
        return SamBackend(model.eval().to(device), path)
    raise _wrong(path, "no such file or directory")


def normalise(tile_rgb: np.ndarray, backend: SamBackend, scale: float):
    """``(h, w, 3)`` uint8 -> ``(1, 3, S, S)`` float tensor: resize by ``scale``, normalise, pad."""
    import torch
    import torch.nn.functional as F

    h, w = tile_rgb.shape[:2]
    size = backend.image_size
    hs, ws = min(round(h * scale), size), min(round(w * scale), size)
    x = torch.from_numpy(np.ascontiguousarray(tile_rgb)).permute(2, 0, 1)[None].float() / 255.0
    if (hs, ws) != (h, w):
        x = F.interpolate(x, size=(hs, ws), mode="bilinear", align_corners=False)
    mean = torch.tensor(backend.mean).view(1, 3, 1, 1)
    std = torch.tensor(backend.std).view(1, 3, 1, 1)
    x = (x - mean) / std
    out = torch.zeros((1, 3, size, size))
    out[:, :, :hs, :ws] = x
    return out, (hs, ws)
