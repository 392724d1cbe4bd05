"""``morphoscope nn``: train and apply the neural networks.

Each network registers its own actions from a private module of this package:
``_nn_sersic`` (SersicNet: ``train``, ``predict``) and ``_nn_pixel``
(PixelClassifier: ``train-pixel``, ``classify-pixels``).
"""

from __future__ import annotations

import importlib

__all__ = ["add_parser"]

#: Modules that add actions to ``morphoscope nn``, in help order.
ACTION_MODULES: tuple[str, ...] = ("_nn_sersic", "_nn_pixel")


def add_parser(subparsers) -> None:
    """Register ``morphoscope nn`` and the actions of every network."""
    p = subparsers.add_parser(
        "nn",
        help="train and apply the neural networks (SersicNet, PixelClassifier)",
        description="Train the neural networks on simulated data and apply them to images.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])
    for name in ACTION_MODULES:
        importlib.import_module(f".{name}", __package__).add_actions(sub)
