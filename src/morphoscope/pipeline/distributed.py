"""Running the windows of a tiled run on ``dask.distributed``.

:func:`task_mapper` gives :func:`~morphoscope.pipeline.tiling.run_tiled` a ``map`` over its
tasks: in this process (no scheduler, one worker), on an existing cluster
(``scheduler="tcp://host:8786"``) or on a :class:`~distributed.LocalCluster` started for
the run (``workers=N`` or ``"auto"`` for the machine's cores).

Tasks are small: a description of the input files (paths, extensions) and of the window
to process; every worker opens the FITS files itself, memory-mapped, and reads only its
window, so no image-sized array passes through the scheduler. Results (catalog rows and
the pixel indices of their sources) come back as they complete and are stitched by the
client, which alone writes the output files.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator

from ..exceptions import ParameterError

__all__ = ["default_workers", "task_mapper"]


def default_workers() -> int:
    """Number of cores available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _serial(func: Callable, items: Iterable) -> Iterator:
    for item in items:
        yield func(item)


@contextlib.contextmanager
def task_mapper(
    *,
    scheduler: str | None = None,
    workers: int | str | None = None,
    processes: bool = True,
) -> Iterator[Callable[[Callable, Iterable], Iterator]]:
    """A ``map(func, items)`` that runs in this process or on a Dask cluster.

    Parameters
    ----------
    scheduler : str or distributed.Client, optional
        Address of a running ``dask.distributed`` scheduler (``"tcp://host:8786"``), the
        path of its scheduler file (JSON), or a connected client.
    workers : int or "auto", optional
        Without ``scheduler``: start a ``LocalCluster`` of this many single-threaded
        workers (``"auto"``: one per core). None or 1: run in this process.
    processes : bool
        LocalCluster workers as processes (default) or threads.

    Yields
    ------
    map : callable
        ``map(func, items)`` returns an iterator of results in the order of ``items``;
        tasks run concurrently, results are fetched one at a time.

    Examples
    --------
    >>> with task_mapper() as run:
    ...     list(run(abs, [-1, 2, -3]))
    [1, 2, 3]
    """
    if workers == "auto":
        nworkers = default_workers()
    elif workers is None:
        nworkers = 1
    elif isinstance(workers, int) and workers >= 1:
        nworkers = int(workers)
    else:
        raise ParameterError("workers", workers, "a positive integer, 'auto' or None")
    client = scheduler if hasattr(scheduler, "submit") else None
    if client is None and scheduler is None and nworkers == 1:
        yield _serial
        return
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if client is None:
            if scheduler is not None:
                if str(scheduler).endswith(".json") and os.path.exists(scheduler):
                    client = stack.enter_context(Client(scheduler_file=str(scheduler)))
                else:
                    client = stack.enter_context(Client(str(scheduler)))
            else:
                cluster = stack.enter_context(
                    LocalCluster(
                        n_workers=nworkers,
                        threads_per_worker=1,
                        processes=processes,
                        dashboard_address=":0",
                        memory_limit=0,
                    )
                )
                client = stack.enter_context(Client(cluster))

        def run(func: Callable, items: Iterable) -> Iterator:
            items = list(items)
            if not items:
                return
            futures = client.map(func, items, pure=False)
            try:
                for fut in futures:
                    yield fut.result()
                    fut.release()
            finally:
                client.cancel(futures)

        yield run
