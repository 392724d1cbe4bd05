"""Progress display shared by the sub-commands."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["StageProgress"]


class StageProgress:
    """A progress bar over named pipeline stages; call it with each stage's name.

    The bar is drawn on a terminal only (standard error must be a TTY), so that logs and
    pipes get the final summary without carriage-return noise; ``disable=True`` hides it.
    """

    def __init__(self, stages: list[str], *, disable: bool = False) -> None:
        self.stages = list(stages)
        self.bar = tqdm(
            total=len(self.stages),
            desc="morphoscope",
            unit="stage",
            file=sys.stderr,
            disable=True if disable else None,
            bar_format="{desc:<28} {bar:20} {n_fmt}/{total_fmt} [{elapsed}]",
        )
        self._seen: set[str] = set()

    def __call__(self, name: str) -> None:
        if self._seen:
            self.bar.update(1)
        self._seen.add(name)
        self.bar.set_description_str(f"morphoscope: {name}")

    def close(self) -> None:
        """Finish the bar."""
        if self._seen:
            self.bar.update(max(0, self.bar.total - self.bar.n))
        self.bar.set_description_str("morphoscope: done")
        self.bar.close()

    def __enter__(self) -> StageProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
