"""Actions of ``morphoscope nn`` for the sersic network."""

from __future__ import annotations

__all__ = ["add_actions"]


def add_actions(sub) -> None:
    """Register this network's actions on the ``morphoscope nn`` sub-parsers."""
