"""Per-source quality flags.

Catalogs carry an integer ``flag`` column whose bits say what went wrong or
what is unusual about a source. A source with a flag still has a row: values
that could not be computed are NaN. Combine bits with ``|`` and test them with
``&``::

    >>> from morphoscope.flags import Flag
    >>> bad = Flag.MASKED_PIXELS | Flag.EDGE
    >>> bool(bad & Flag.EDGE)
    True
    >>> Flag.describe(int(bad))
    ['MASKED_PIXELS', 'EDGE']
"""

from __future__ import annotations

import enum

__all__ = ["Flag"]


class Flag(enum.IntFlag):
    """Bit flags of the ``flag`` column.

    ========================= ===== ==========================================================
    name                      value meaning
    ========================= ===== ==========================================================
    ``MASKED_PIXELS``           1   the footprint touches masked, NaN or infinite pixels
    ``EDGE``                    2   the footprint touches the image border
    ``DEBLENDED``               4   the source was split from a larger detection
    ``DEBLEND_FAILED``          8   de-blending failed; the parent segment was kept whole
    ``NONPOSITIVE_FLUX``       16   the total flux in the footprint is <= 0
    ``SMALL``                  32   fewer pixels than needed for a reliable measurement
    ``MEASURE_FAILED``         64   a measurement raised internally; its values are NaN
    ``LOW_SN``                128   mean signal-to-noise per pixel below 1 (noise-dominated)
    ``CENTROID_OUTSIDE``      256   the flux-weighted centroid lies outside the footprint
    ========================= ===== ==========================================================
    """

    MASKED_PIXELS = 1
    EDGE = 2
    DEBLENDED = 4
    DEBLEND_FAILED = 8
    NONPOSITIVE_FLUX = 16
    SMALL = 32
    MEASURE_FAILED = 64
    LOW_SN = 128
    CENTROID_OUTSIDE = 256

    @classmethod
    def describe(cls, value: int) -> list[str]:
        """Names of the bits set in ``value``, lowest bit first."""
        return [f.name for f in cls if value & f and f.name is not None]
