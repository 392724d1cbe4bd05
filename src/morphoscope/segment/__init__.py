"""Detection and de-blending: images in, integer segmentation maps out.

``segment(image, rms=..., psf=..., method=...)`` is the entry point; ``segment_image``
returns the background, rms and per-source flags as well. Methods: ``"saddle"``
(default: matched filter, threshold, watershed with saddle-significance merging),
``"zhu"`` (the reference distance-transform watershed recipe) and ``"sam"`` (Segment
Anything on weights on disk, :mod:`morphoscope.segment.sam`).
"""

from .background import estimate_background
from .core import METHODS, SegmentationResult, segment, segment_image
from .deblend import deblend_saddle
from .detect import detect, detect_sources, psf_fwhm, smooth, smooth_image
from .zhu import segment_zhu

__all__ = [
    "METHODS",
    "SegmentationResult",
    "deblend_saddle",
    "detect",
    "detect_sources",
    "estimate_background",
    "psf_fwhm",
    "segment",
    "segment_image",
    "segment_zhu",
    "smooth",
    "smooth_image",
]
