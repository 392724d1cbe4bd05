"""Tables in, feature matrices and labels out.

Reading accepts a file (ECSV, FITS, CSV), an :class:`astropy.table.Table`, a
:class:`pandas.DataFrame` (pandas itself is optional) or a mapping of column name to
values. Feature extraction turns masked, infinite and flagged values into NaN, which the
model pipelines then impute.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..exceptions import InputError, ParameterError
from ..flags import Flag

__all__ = [
    "CLASS_ORDER",
    "DEFAULT_BAD_FLAGS",
    "EXCLUDED_COLUMNS",
    "default_features",
    "feature_matrix",
    "join_labels",
    "read_table",
    "source_name",
]

#: Morphological classes in the order used everywhere in morphoscope.
CLASS_ORDER: tuple[str, ...] = ("background", "spheroid", "disk", "irregular", "point_source")

#: Flag bits that make all features of a row unusable: they become NaN before imputation.
DEFAULT_BAD_FLAGS: int = int(Flag.NONPOSITIVE_FLUX | Flag.SMALL | Flag.MEASURE_FAILED)

#: Columns never used as default features: identifiers, positions, angles, flags, labels.
EXCLUDED_COLUMNS: frozenset[str] = frozenset(
    {
        "label", "id", "source_id", "segment_id", "objid", "object_id", "parent", "parent_id",
        "x", "y", "xc_centroid", "yc_centroid", "xcentroid", "ycentroid", "x_centroid",
        "y_centroid", "xc_asymmetry", "yc_asymmetry", "xc", "yc", "ra", "dec", "sky_centroid",
        "orientation_centroid", "orientation_asymmetry", "theta", "pa",
        "flag", "flags", "flag_sersic", "class", "class_id", "class_name", "truth_class",
        "target", "band",
    }
)  # fmt: skip

# statmorph-named quantities that later versions of ``measure`` may add.
_STATMORPH_FEATURES = frozenset(
    {
        "ellipticity_asymmetry", "elongation_asymmetry", "rpetro_circ", "rpetro_ellip",
        "rmax_circ", "rmax_ellip", "rhalf_ellip", "gini_m20_bulge", "gini_m20_merger",
        "smoothness", "multimode", "intensity", "deviation", "outer_asymmetry",
        "shape_asymmetry", "sersic_amplitude", "sersic_rhalf", "sersic_n",
        "sersic_ellip", "sn_per_pixel", "concentration", "asymmetry", "gini", "m20",
    }
)  # fmt: skip

_FLOAT32_MAX = float(np.finfo(np.float32).max)

_FORMATS = {
    ".ecsv": "ascii.ecsv",
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".csv": "ascii.csv",
}


def measured_columns() -> frozenset[str]:
    """Names of the numeric columns :func:`morphoscope.measure` writes (and statmorph's)."""
    try:
        from ..measure import COLUMNS
    except Exception:  # pragma: no cover - measure unavailable
        names: set[str] = set()
    else:
        names = set(COLUMNS)
    return frozenset((names | _STATMORPH_FEATURES) - EXCLUDED_COLUMNS)


def source_name(source) -> str:
    """What to call ``source`` in error messages: its file name, or ``"table"``."""
    if isinstance(source, str | os.PathLike):
        return str(source)
    return "table"


def read_table(source, *, name: str | None = None) -> Table:
    """Read a catalog from a file or accept an in-memory table.

    Parameters
    ----------
    source : str, path-like, astropy.table.Table, pandas.DataFrame or mapping
        A file (``.ecsv``, ``.fits``/``.fit``/``.fts`` optionally ``.gz``, ``.csv``;
        other suffixes are left to astropy's format guessing), a Table (returned as is,
        not copied), a DataFrame or a ``{column: values}`` mapping.
    name : str, optional
        Name used in error messages (default: the file name, or ``"table"``).

    Returns
    -------
    astropy.table.Table

    Raises
    ------
    morphoscope.exceptions.InputError
        The file is missing or cannot be read as a table.

    Examples
    --------
    >>> t = read_table({"a": [1.0, 2.0], "kind": ["x", "y"]})
    >>> t.colnames
    ['a', 'kind']
    """
    if isinstance(source, Table):
        return source
    label = name or source_name(source)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise InputError(label, "no such file")
        suffixes = [s.lower() for s in path.suffixes]
        if suffixes and suffixes[-1] == ".gz":
            suffixes = suffixes[:-1]
        fmt = _FORMATS.get(suffixes[-1]) if suffixes else None
        try:
            return Table.read(path, format=fmt) if fmt else Table.read(path)
        except Exception as exc:
            kind = f"a {fmt} table" if fmt else "a table"
            raise InputError(label, f"cannot read as {kind} ({exc})") from exc
    if hasattr(source, "columns") and hasattr(source, "to_numpy"):  # pandas.DataFrame
        try:
            return Table.from_pandas(source)
        except Exception as exc:
            raise InputError(label, f"cannot convert the DataFrame to a table ({exc})") from exc
    if isinstance(source, Mapping):
        try:
            return Table(dict(source))
        except Exception as exc:
            raise InputError(label, f"cannot make a table from the mapping ({exc})") from exc
    raise ParameterError(
        "table", source, "a file name, an astropy Table, a pandas DataFrame or a mapping"
    )


def _is_numeric_column(col) -> bool:
    dtype = np.asarray(col).dtype
    return dtype.kind in "biuf" and getattr(col, "ndim", 1) == 1


def default_features(table: Table, label: str | None = None) -> list[str]:
    """The feature columns used when none are given.

    The numeric one-dimensional columns that :func:`morphoscope.measure` (or statmorph)
    writes, in table order; if the table has none of those (a catalog from elsewhere),
    every numeric one-dimensional column. In both cases the ``label`` column,
    identifiers, positions, angles, flags, ``*_err`` columns of positions and earlier
    ``pred_*``/``prob_*`` outputs are left out (:data:`EXCLUDED_COLUMNS`).

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({"label": [1, 2], "xc_centroid": [3.0, 4.0], "gini": [0.4, 0.6],
    ...            "m20": [-1.0, -2.0], "flag": [0, 1], "class": ["disk", "spheroid"]})
    >>> default_features(t, "class")
    ['gini', 'm20']
    """
    candidates = []
    for name in table.colnames:
        low = name.lower()
        if name == label or low in EXCLUDED_COLUMNS or low.startswith(("pred_", "prob_")):
            continue
        if _is_numeric_column(table[name]) and np.asarray(table[name]).dtype.kind != "b":
            candidates.append(name)
    measured = measured_columns()
    known = [name for name in candidates if name in measured]
    return known if known else candidates


def check_features(table: Table, features: Sequence[str], source: str) -> None:
    """Raise InputError listing the feature columns that are missing or not numeric."""
    missing = [f for f in features if f not in table.colnames]
    if missing:
        raise InputError(source, "missing feature columns: " + ", ".join(missing))
    bad = [f for f in features if not _is_numeric_column(table[f])]
    if bad:
        raise InputError(source, "feature columns are not numeric 1-D columns: " + ", ".join(bad))


def feature_matrix(
    table: Table,
    features: Sequence[str],
    *,
    source: str = "table",
    bad_flags: int = DEFAULT_BAD_FLAGS,
    flag_column: str = "flag",
) -> np.ndarray:
    """Return the ``(n_rows, n_features)`` float64 matrix of ``features`` (a new array).

    Masked entries, non-finite values and values beyond float32's range become NaN. If the
    table has an integer ``flag_column``, every feature of a row whose flag has any bit of
    ``bad_flags`` set becomes NaN as well (the model's imputer then fills them in).

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({"a": [1.0, 2.0], "b": [3.0, float("inf")], "flag": [0, 16]})
    >>> feature_matrix(t, ["a", "b"]).tolist()
    [[1.0, 3.0], [nan, nan]]
    """
    check_features(table, features, source)
    n = len(table)
    x = np.empty((n, len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        col = table[name]
        values = np.array(np.ma.getdata(col), dtype=np.float64, copy=True).reshape(n)
        mask = np.ma.getmaskarray(col) if np.ma.isMaskedArray(col) or hasattr(col, "mask") else None
        if mask is not None:
            values[np.asarray(mask, bool).reshape(n)] = np.nan
        # Non-finite values, and values beyond float32's range (tree models work in float32;
        # e.g. the error of a diverged fit), are missing.
        with np.errstate(invalid="ignore"):
            values[~(np.abs(values) <= _FLOAT32_MAX)] = np.nan
        x[:, j] = values
    if bad_flags and flag_column in table.colnames:
        flag = np.asarray(
            np.ma.filled(table[flag_column], 0)
            if hasattr(table[flag_column], "mask")
            else table[flag_column]
        )
        if flag.dtype.kind in "iub":
            x[(flag.astype(np.int64) & int(bad_flags)) != 0] = np.nan
    return x


def label_column(table: Table, label: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(values, valid)`` of the label column; missing labels are not valid.

    Masked entries, NaN and empty strings count as missing. String labels are stripped.
    """
    if not isinstance(label, str) or not label:
        raise ParameterError("label", label, "the name of a column")
    if label not in table.colnames:
        raise InputError(
            source, f"missing label column {label!r} (columns: {', '.join(table.colnames)})"
        )
    col = table[label]
    if getattr(col, "ndim", 1) != 1:
        raise InputError(source, f"label column {label!r} must be one-dimensional")
    mask = np.ma.getmaskarray(col) if hasattr(col, "mask") else np.zeros(len(col), bool)
    data = np.asarray(np.ma.getdata(col))
    if data.dtype.kind in "SO":
        data = data.astype(str)
    if data.dtype.kind == "U":
        data = np.char.strip(data)
        valid = ~mask & (data != "")
    elif data.dtype.kind == "f":
        valid = ~mask & np.isfinite(data)
    elif data.dtype.kind in "iub":
        valid = ~mask
    else:
        raise InputError(source, f"label column {label!r} has unsupported dtype {data.dtype}")
    return data, np.asarray(valid, bool)


def ordered_classes(values: np.ndarray) -> np.ndarray:
    """Distinct labels, in morphoscope's class order when they are class names, else sorted."""
    classes = np.unique(values)
    if classes.dtype.kind == "U" and set(classes.tolist()) <= set(CLASS_ORDER):
        classes = np.array([c for c in CLASS_ORDER if c in set(classes.tolist())])
    return classes


def _id_strings(col) -> list[str]:
    data = np.asarray(np.ma.getdata(col))
    if data.dtype.kind == "S":
        data = np.char.decode(data, "utf-8", "replace")
    return [str(v).strip() for v in data.tolist()]


def join_labels(
    table: Table,
    labels,
    *,
    id_column: str | None = None,
    label: str = "decision",
    drop: Sequence[str] = ("unsure",),
    source: str = "table",
) -> Table:
    """The rows of ``table`` that have a label in ``labels``, with the label as a column.

    ``labels`` is a table (or file) whose first column holds source identifiers and which
    has a ``label`` column, such as the ``decisions.csv`` exported by the inspection page
    (``id,decision``). Rows are matched on the identifiers as text: ``table``'s column
    ``id_column`` (default: the column named like the first column of ``labels``; the name
    ``row`` means the row numbers). Rows of ``table`` without a label, and labels in
    ``drop``, are left out.

    Returns
    -------
    astropy.table.Table
        A new table: the labelled rows of ``table``, in its order, plus the ``label``
        column (replacing a column of that name).

    Raises
    ------
    morphoscope.exceptions.InputError
        Missing columns, an identifier given twice in ``labels``, or no row matched.

    Examples
    --------
    >>> from astropy.table import Table
    >>> cat = Table({"id": [1, 2, 3], "gini": [0.4, 0.5, 0.6]})
    >>> dec = Table({"id": [3, 1, 2], "decision": ["accept", "reject", "unsure"]})
    >>> out = join_labels(cat, dec)
    >>> out["id"].tolist(), out["decision"].tolist()
    ([1, 3], ['reject', 'accept'])
    """
    lab = read_table(labels)
    lab_name = source_name(labels) if not isinstance(labels, Table) else "labels"
    if not lab.colnames or label not in lab.colnames:
        raise InputError(lab_name, f"no {label!r} column (columns: {', '.join(lab.colnames)})")
    key = id_column or lab.colnames[0]
    lab_key = lab.colnames[0] if lab.colnames[0] != label else key
    if lab_key not in lab.colnames:
        raise InputError(lab_name, f"no identifier column {lab_key!r}")
    if key == "row" and key not in table.colnames:
        ids = [str(i) for i in range(len(table))]
    elif key in table.colnames:
        ids = _id_strings(table[key])
    else:
        raise InputError(
            source, f"no identifier column {key!r} to join the labels on (use --id-column)"
        )
    values, valid = label_column(lab, label, lab_name)
    by_id: dict[str, object] = {}
    dropped = {str(d) for d in drop}
    for k, v, ok in zip(_id_strings(lab[lab_key]), values, valid, strict=True):
        if k in by_id:
            raise InputError(lab_name, f"identifier {k!r} is given twice")
        by_id[k] = v if ok and str(v) not in dropped else None
    rows = [i for i, k in enumerate(ids) if by_id.get(k) is not None]
    if not rows:
        raise InputError(lab_name, f"no identifier matches the {key!r} column of {source}")
    out = table[rows]
    out[label] = [by_id[ids[i]] for i in rows]
    return out
