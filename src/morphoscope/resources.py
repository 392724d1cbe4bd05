"""Memory budgets of the pixel stages, and a check before large allocations.

The peak memory of :func:`~morphoscope.segment.segment` and
:func:`~morphoscope.measure.measure` grows linearly with the image. The bounds below
were measured with :mod:`tracemalloc` on 2048 x 2048 and 1024 x 1024 synthetic fields
(``tests/robustness/test_memory.py`` checks them):

============================ ==================================================
stage                        peak memory (bytes)
============================ ==================================================
``segment`` (``"saddle"``)   50 per image pixel (measured 42)
``segment`` (``"zhu"``)      70 per image pixel (measured 60)
``measure``                  160 per image pixel + 160 per segment pixel
                             (measured 110-133 per image pixel on fields with
                             3 % of the pixels in sources, 178-199 when every
                             pixel is in one segment), plus at most 64 MiB for
                             the statmorph set and the Sersic fits (cutouts)
============================ ==================================================

Before allocating, both stages compare their budget with the memory available
(:func:`available_memory`) and raise :class:`~morphoscope.exceptions.InputError`
instead of running the machine into swap or the out-of-memory killer. Set the
environment variable ``MORPHOSCOPE_MAX_MEMORY`` (bytes, or with a ``K``/``M``/``G``
suffix) to impose a smaller limit, e.g. on a shared node.

>>> from morphoscope.resources import check_memory
>>> check_memory(1024, "segment", "image")  # 1 KiB is always available
"""

from __future__ import annotations

import math
import os

from .exceptions import InputError

__all__ = [
    "MEASURE_BYTES_PER_PIXEL",
    "MEASURE_BYTES_PER_SEGMENT_PIXEL",
    "MEASURE_FIXED_BYTES",
    "SEGMENT_BYTES_PER_PIXEL",
    "available_memory",
    "check_memory",
    "n_pixels",
]

#: Peak bytes per image pixel of ``segment`` by method.
SEGMENT_BYTES_PER_PIXEL = {"saddle": 50, "zhu": 70, "sam": 70}
#: Peak bytes per image pixel of ``measure`` (plus the per-segment-pixel term).
MEASURE_BYTES_PER_PIXEL = 160
#: Peak bytes per segment pixel of ``measure``.
MEASURE_BYTES_PER_SEGMENT_PIXEL = 160
#: Fixed peak bytes of ``measure``'s statmorph set and Sersic fits (cutout buffers).
MEASURE_FIXED_BYTES = 64 * 2**20

_SUFFIX = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _parse_bytes(text: str) -> int:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    factor = 1
    if text and text[-1] in _SUFFIX:
        factor = _SUFFIX[text[-1]]
        text = text[:-1]
    try:
        value = float(text)
    except ValueError:
        raise InputError(
            "MORPHOSCOPE_MAX_MEMORY", f"expected a number of bytes like 8G, got {text!r}"
        ) from None
    return int(value * factor)


def available_memory() -> int | None:
    """Bytes that can be allocated now: ``MORPHOSCOPE_MAX_MEMORY``, else the system's.

    The system value is ``MemAvailable`` of ``/proc/meminfo`` (Linux), else the free
    physical pages (``os.sysconf``), capped by a cgroup (container) limit when there is
    one. None when it cannot be determined (the check is then skipped).
    """
    env = os.environ.get("MORPHOSCOPE_MAX_MEMORY")
    if env:
        return _parse_bytes(env)
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = None
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        with open("/sys/fs/cgroup/memory.current") as fh:
            used = int(fh.read().strip())
        if limit != "max":
            room = int(limit) - used
            avail = room if avail is None else min(avail, room)
    except (OSError, ValueError):
        pass
    return avail


def n_pixels(data) -> int:
    """Number of elements of an array-like without copying it (0 if it has no shape)."""
    try:
        return math.prod(getattr(data, "shape", None) or ())
    except TypeError:
        return 0


#: Requests below this many bytes are not checked against the system's free memory.
_ALWAYS_AVAILABLE = 64 * 2**20


def check_memory(nbytes: float, stage: str, source: str) -> None:
    """Raise :class:`InputError` naming ``source`` if ``nbytes`` exceed the available memory.

    Parameters
    ----------
    nbytes : float
        Estimated peak memory of the stage.
    stage : str
        What needs it (``"segment"``), for the message.
    source : str
        The input that is too large (``"image"``).
    """
    if nbytes < _ALWAYS_AVAILABLE and not os.environ.get("MORPHOSCOPE_MAX_MEMORY"):
        return  # not worth reading the system's figures (measure_stamps checks every stamp)
    avail = available_memory()
    if avail is None or nbytes <= avail:
        return
    raise InputError(
        source,
        f"{stage} needs about {nbytes / 2**30:.2f} GiB of memory but only "
        f"{avail / 2**30:.2f} GiB are available; cut the image into tiles, free memory, "
        "or raise MORPHOSCOPE_MAX_MEMORY",
    )
