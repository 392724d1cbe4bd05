"""Segment Anything (SAM) as a segmentation method: ``segment(image, method="sam", ...)``.

Runs Meta's Segment Anything through the Hugging Face ``transformers`` implementation
(``SamModel``), on weights the user has on disk; nothing is downloaded. ``transformers`` is an
optional dependency (``pip install 'morphoscope[sam]'``), imported only when a model is
loaded. The pieces:

``segment_sam``
    the method itself (called by :func:`morphoscope.segment.segment` with ``method="sam"``);
``stretch_to_rgb``
    one or three bands -> 8-bit RGB (asinh or zscale);
``plan_tiles``, ``assign_points``
    overlapping tiles of SAM's input size and the tile each prompt is run in;
``masks_to_segmap``
    masks -> integer map, overlaps to the higher predicted IoU;
``load_sam``, ``resolve_checkpoint``, ``config``
    where the weights come from: the ``checkpoint`` argument, ``config["checkpoint"]`` or the
    environment variable ``MORPHOSCOPE_SAM_CHECKPOINT``.
"""

from .checkpoint import ENV_VAR, EXPECTED, SamBackend, config, load_sam, resolve_checkpoint
from .core import PROMPTS, detection_peaks, masks_to_segmap, segment_sam
from .stretch import STRETCHES, band_limits, stretch_to_rgb
from .tiles import Tile, assign_points, plan_tiles, tile_origins

__all__ = [
    "ENV_VAR",
    "EXPECTED",
    "PROMPTS",
    "STRETCHES",
    "SamBackend",
    "Tile",
    "assign_points",
    "band_limits",
    "config",
    "detection_peaks",
    "load_sam",
    "masks_to_segmap",
    "plan_tiles",
    "resolve_checkpoint",
    "segment_sam",
    "stretch_to_rgb",
    "tile_origins",
]
