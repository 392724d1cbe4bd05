"""Shared checks of the robustness suite: one outcome contract for every bad input.

Every call on bad input must end in one of two ways:

- a result (the caller checks its per-source flags), or
- a :class:`~morphoscope.exceptions.MorphoscopeError` whose message names the input
  and the problem;

never an exception from deep inside numpy, scipy, astropy or torch, and the inputs
(arrays and files) must be byte-for-byte unchanged afterwards.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from morphoscope.exceptions import InputError, MorphoscopeError, ParameterError


def digest(value) -> str | None:
    """Hash of an array (values, dtype, shape, byte order) or a file; None for other values."""
    if isinstance(value, np.ndarray):
        h = hashlib.sha256(value.dtype.str.encode() + str(value.shape).encode())
        h.update(np.ascontiguousarray(value).tobytes())
        return h.hexdigest()
    if isinstance(value, str | Path) and Path(str(value).split("[")[0]).is_file():
        return hashlib.sha256(Path(str(value).split("[")[0]).read_bytes()).hexdigest()
    return None


def outcome(func, *args, names: tuple[str, ...] = (), **kwargs):
    """Call ``func``; return ``("ok", result)`` or ``("error", exc)``.

    Fails the test on any exception that is not a MorphoscopeError, on an error message
    that does not name one of ``names`` (when given), and when any array or file argument
    changed.
    """
    inputs = list(args) + list(kwargs.values())
    before = [digest(v) for v in inputs]
    try:
        result = func(*args, **kwargs)
        status = ("ok", result)
    except MorphoscopeError as exc:
        assert isinstance(exc, InputError | ParameterError), type(exc)
        message = str(exc)
        assert ": " in message or "parameter" in message, message
        if names:
            assert any(n in message for n in names), (names, message)
        status = ("error", exc)
    after = [digest(v) for v in inputs]
    assert before == after, "an input array or file was modified"
    return status
