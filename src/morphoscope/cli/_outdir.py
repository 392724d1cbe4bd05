"""Output folders of ``run`` and ``demo``: never write into a used folder by accident."""

from __future__ import annotations

from pathlib import Path

from ..exceptions import InputError

__all__ = ["check_output_dir"]


def check_output_dir(path: str, overwrite: bool) -> Path:
    """Refuse a non-empty existing folder (or a file) unless ``overwrite`` is set.

    Raises
    ------
    InputError
        ``--out`` is a file, or a folder that already holds files and ``--overwrite``
        was not given.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(str(out), "--out names a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(
            str(out),
            "output folder exists and is not empty; pass --overwrite to replace its files "
            "or choose another --out",
        )
    return out
