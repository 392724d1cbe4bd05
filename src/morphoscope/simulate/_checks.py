"""Parameter checks shared by the simulators (uniform :class:`ParameterError` messages)."""

from __future__ import annotations

import numbers

import numpy as np

from ..exceptions import ParameterError

__all__ = [
    "check_fraction",
    "check_positive",
    "check_range",
    "check_seed",
    "check_shape",
]


def check_fraction(name: str, value: object) -> float:
    """Return ``value`` as a float in [0, 1] or raise :class:`ParameterError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ParameterError(name, value, "a number in [0, 1]")
    return float(value)


def check_positive(name: str, value: object, *, allow_none: bool = False) -> float | None:
    """Return ``value`` as a finite positive float (or None when allowed)."""
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not np.isfinite(value)
        or value <= 0
    ):
        expected = "a finite positive number" + (" or None" if allow_none else "")
        raise ParameterError(name, value, expected)
    return float(value)


def check_range(name: str, value: object, *, minimum: float = 0.0) -> tuple[float, float]:
    """Return ``(lo, hi)`` with ``minimum < lo <= hi`` finite, or raise."""
    try:
        lo, hi = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ParameterError(name, value, "a pair of numbers (low, high)") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and minimum < lo <= hi):
        raise ParameterError(name, value, f"a pair (low, high) with {minimum:g} < low <= high")
    return lo, hi


def check_shape(value: object) -> tuple[int, int]:
    """Return ``(ny, nx)`` as two positive ints, or raise."""
    try:
        items = tuple(value)  # type: ignore[arg-type]
    except TypeError:
        items = ()
    if len(items) != 2 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 8 for v in items
    ):
        raise ParameterError("shape", value, "two positive integers >= 8 (ny, nx)")
    return int(items[0]), int(items[1])


def check_seed(value: object) -> int:
    """Return the seed as a non-negative int, or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ParameterError("seed", value, "a non-negative integer")
    return int(value)
