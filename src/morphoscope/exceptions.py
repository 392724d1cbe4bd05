"""Exceptions and warnings raised by morphoscope.

Every problem with a whole input (a file, an array, a parameter) raises one
:class:`MorphoscopeError` subclass whose message names the input and the problem.
Problems with a single source never raise: they set bits in the catalog's ``flag``
column (see :mod:`morphoscope.flags`).
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "MorphoscopeError",
    "MorphoscopeWarning",
    "ParameterError",
]


class MorphoscopeError(Exception):
    """Base class of every error raised on purpose by morphoscope."""


class InputError(MorphoscopeError, ValueError):
    """An input image, map, catalog or file is unusable.

    Parameters
    ----------
    source : str
        What the input is: a file name (``"f200w.fits[SCI]"``) or an argument name
        (``"rms"``).
    problem : str
        What is wrong with it, in words a user can act on.
    """

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


class ParameterError(MorphoscopeError, ValueError):
    """A parameter has an invalid value (uniform message, as in scikit-learn)."""

    def __init__(self, name: str, value: object, expected: str) -> None:
        self.name = name
        self.value = value
        super().__init__(f"The '{name}' parameter must be {expected}. Got {value!r} instead.")


class MorphoscopeWarning(UserWarning):
    """Warning about a result that is usable but degraded."""
