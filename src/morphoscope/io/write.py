"""Atomic writers for segmentation maps, catalogs and other outputs.

Every file is written to a temporary file in the destination folder and then
renamed over the destination (:func:`os.replace`), so a crash or a full disk
never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.table import Table
from astropy.wcs import WCS

__all__ = ["atomic_write", "write_catalog", "write_fits_image", "write_segmap"]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    Parameters
    ----------
    path : str or path-like
        Final destination. Its folder is created if missing.
    mode : str
        Unused; kept for symmetry with :func:`open`. Write to the yielded path
        with any library.

    Yields
    ------
    tmp : pathlib.Path
        Temporary file in the same folder (same file system, so the rename is atomic).
        On an exception it is removed and the destination is left untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
    >>> with atomic_write(out) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> out.read_text()
    'hello'
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp creates the file private (0600); give it the permissions of a normal file.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_fits_image(
    path: str | os.PathLike,
    data: np.ndarray,
    *,
    wcs: WCS | None = None,
    header: fits.Header | None = None,
    extname: str | None = None,
) -> Path:
    """Write one 2-D array as a FITS primary HDU, atomically, with an optional WCS."""
    hdr = fits.Header() if header is None else header.copy()
    if wcs is not None:
        hdr.update(wcs.to_header())
    if extname:
        hdr["EXTNAME"] = extname
    with atomic_write(path) as tmp:
        fits.PrimaryHDU(data=np.asarray(data), header=hdr).writeto(tmp, overwrite=True)
    return Path(path)


def write_segmap(path: str | os.PathLike, segmap: np.ndarray, *, wcs: WCS | None = None) -> Path:
    """Write a segmentation map (int32, 0 = background) as FITS carrying the input WCS.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from astropy.io import fits
    >>> seg = np.zeros((4, 4), int); seg[1:3, 1:3] = 1
    >>> p = write_segmap(pathlib.Path(tempfile.mkdtemp()) / "seg.fits", seg)
    >>> int(fits.getdata(p).max())
    1
    """
    header = fits.Header()
    header["BUNIT"] = ("label", "0 = background, 1..N = sources")
    header["NSOURCES"] = (int(np.unique(segmap[segmap > 0]).size), "number of labels")
    return write_fits_image(
        path, np.asarray(segmap, dtype=np.int32), wcs=wcs, header=header, extname="SEGMAP"
    )


def write_catalog(path: str | os.PathLike, table: Table) -> Path:
    """Write a catalog atomically; the format follows the suffix (``.ecsv``, ``.fits``, ``.csv``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from astropy.table import Table
    >>> p = write_catalog(pathlib.Path(tempfile.mkdtemp()) / "cat.ecsv", Table({"label": [1, 2]}))
    >>> Table.read(p)["label"].tolist()
    [1, 2]
    """
    path = Path(path)
    suffix = path.suffix.lower()
    fmt = {".ecsv": "ascii.ecsv", ".fits": "fits", ".fit": "fits", ".csv": "ascii.csv"}.get(suffix)
    if fmt is None:
        raise ValueError(f"{path}: unknown catalog format {suffix!r}; use .ecsv, .fits or .csv")
    if fmt == "fits":
        # FITS headers hold scalars only: nested metadata is stored as JSON text, and long
        # keys become HIERARCH cards (valid FITS, so the warning about them is silenced).
        table = table.copy(copy_data=False)
        table.meta = {
            k: (json.dumps(v, default=str) if isinstance(v, dict | list | tuple) else v)
            for k, v in table.meta.items()
        }
    with atomic_write(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        table.write(tmp, format=fmt, overwrite=True)
    return path
