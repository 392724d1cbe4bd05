"""io.read_image, classify load/predict and catalogs on a corpus of bad files."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from astropy.table import Table
from robustness.checks import digest, outcome
from robustness.corpus import write_fits_corpus

from morphoscope import classify
from morphoscope.exceptions import InputError, MorphoscopeWarning
from morphoscope.io import read_image

CORPUS_NAMES = [
    "good", "no_wcs", "broken_wcs", "sci_extension", "empty_primary_only", "empty_image_ext",
    "table_only", "cube", "cube_one_plane", "one_d", "int16_bscale", "int16_scaled", "int32",
    "uint8", "float64", "all_nan", "all_zero", "constant", "nan_border", "tiny_2x2",
    "truncated_half", "truncated_header", "truncated_one_block", "zero_bytes", "text_file",
    "html_error_page", "bit_flipped_header", "garbage_data", "gzipped", "truncated_gzip",
    "is_a_folder", "missing_file", "missing_extension", "extension_number_too_big",
    "extension_by_name", "extension_by_number", "empty_primary_by_number", "table_extension",
]  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_fits_corpus(tmp_path_factory.mktemp("fits_corpus"))


def test_corpus_names_are_complete(corpus):
    assert sorted(corpus) == sorted(CORPUS_NAMES)


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_read_image_corpus(corpus, name):
    path, expect = corpus[name]
    file_name = path.name.split("[")[0]
    status = outcome(read_image, str(path), rms=1.0, names=(file_name,))
    if expect == "ok":
        assert status[0] == "ok", status[1]
        im = status[1]
        assert im.data.dtype == np.float64 and im.data.dtype.isnative and im.data.ndim == 2
        assert np.all(np.isfinite(im.data))
        assert (im.wcs is not None) == (name in ("good", "gzipped"))
    elif expect == "error":
        assert status[0] == "error", f"{name} was read"


def test_scaled_integers_are_physical(corpus):
    im = read_image(corpus["int16_scaled"][0])
    raw = read_image(corpus["int16_bscale"][0])
    np.testing.assert_allclose(im.data, raw.data * 0.1, rtol=1e-6)


@pytest.mark.parametrize("kind", ["rms", "weight", "mask", "psf"])
@pytest.mark.parametrize(
    "name", ["truncated_half", "cube", "all_zero", "missing_file", "tiny_2x2", "table_only"]
)
def test_companion_files(corpus, kind, name):
    """A bad rms/weight/mask/PSF file names that file, not the image."""
    path, _ = corpus[name]
    image = corpus["good"][0]
    status = outcome(read_image, str(image), **{kind: str(path)}, names=(path.name,))
    if kind == "mask" and name == "all_zero":
        assert status[0] == "ok"  # an all-zero mask masks nothing
    elif kind == "psf" and name in ("tiny_2x2", "cube"):
        pass  # a 2x2 PSF is padded to 3x3; a 3-plane PSF cube is an error either way
    else:
        assert status[0] == "error"


@pytest.mark.parametrize("kind", ["rms", "weight", "mask"])
def test_companion_shape_mismatch(corpus, tmp_path, kind):
    from astropy.io import fits

    small = tmp_path / f"{kind}_small.fits"
    fits.writeto(small, np.ones((32, 32), np.float32))
    status = outcome(read_image, str(corpus["good"][0]), **{kind: str(small)}, names=("small",))
    assert status[0] == "error" and "shape" in str(status[1])


# --- classify model files and catalogs ------------------------------------------------


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 60
    t = Table()
    t["gini"] = np.r_[rng.normal(0.6, 0.03, n // 2), rng.normal(0.4, 0.03, n // 2)]
    t["m20"] = np.r_[rng.normal(-2.2, 0.1, n // 2), rng.normal(-1.6, 0.1, n // 2)]
    t["flag"] = np.zeros(n, int)
    t["class"] = np.repeat(["spheroid", "disk"], n // 2)
    model = classify.train(t, "class", model="logreg", cv=None, importance=False)
    path = tmp_path_factory.mktemp("model") / "model.zip"
    model.save(path)
    return path, t


def _rewrite(src, dst, meta=None, arrays=None, drop=None, extra=None):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if item.filename == drop:
                continue
            content = zin.read(item.filename)
            if item.filename == "morphoscope_model.json" and meta is not None:
                content = json.dumps(meta(json.loads(content))).encode()
            if item.filename == "training.npz" and arrays is not None:
                content = arrays
            zout.writestr(item.filename, content)
        for name, content in (extra or {}).items():
            zout.writestr(name, content)


def _npz(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


MODEL_CASES = {
    "random_bytes": lambda good, dst: dst.write_bytes(b"\x00garbage" * 50),
    "truncated": lambda good, dst: dst.write_bytes(good.read_bytes()[:300]),
    "truncated_end": lambda good, dst: dst.write_bytes(good.read_bytes()[:-40]),
    "empty_file": lambda good, dst: dst.write_bytes(b""),
    "empty_zip": lambda good, dst: zipfile.ZipFile(dst, "w").close(),
    "no_json": lambda good, dst: _rewrite(good, dst, drop="morphoscope_model.json"),
    "no_arrays": lambda good, dst: _rewrite(good, dst, drop="training.npz"),
    "json_not_object": lambda good, dst: _rewrite(good, dst, meta=lambda m: [1, 2]),
    "future_version": lambda good, dst: _rewrite(
        good, dst, meta=lambda m: {**m, "format_version": 99}
    ),
    "version_as_string": lambda good, dst: _rewrite(
        good, dst, meta=lambda m: {**m, "format_version": "1"}
    ),
    "foreign_format": lambda good, dst: _rewrite(good, dst, meta=lambda m: {**m, "format": "x"}),
    "unknown_model": lambda good, dst: _rewrite(good, dst, meta=lambda m: {**m, "model": "nn"}),
    "unknown_task": lambda good, dst: _rewrite(good, dst, meta=lambda m: {**m, "task": "cluster"}),
    "features_not_list": lambda good, dst: _rewrite(
        good, dst, meta=lambda m: {**m, "features": "gini"}
    ),
    "feature_count_mismatch": lambda good, dst: _rewrite(
        good, dst, meta=lambda m: {**m, "features": ["gini"]}
    ),
    "missing_label_key": lambda good, dst: _rewrite(
        good, dst, meta=lambda m: {k: v for k, v in m.items() if k != "label"}
    ),
    "object_arrays": lambda good, dst: _rewrite(
        good, dst, arrays=_npz(x=np.array([object()]), y=np.zeros(1), fingerprint=np.zeros(1))
    ),
    "arrays_missing_y": lambda good, dst: _rewrite(
        good, dst, arrays=_npz(x=np.zeros((4, 2)), fingerprint=np.zeros(1))
    ),
    "npz_garbage": lambda good, dst: _rewrite(good, dst, arrays=b"PK\x03\x04broken"),
    "string_training_labels": lambda good, dst: _rewrite(
        good, dst, arrays=_npz(x=np.ones((4, 2)), y=np.array(["a", "b", "a", "b"]),
                               fingerprint=np.zeros(1)),
    ),
    "one_class_only": lambda good, dst: _rewrite(
        good, dst, arrays=_npz(x=np.ones((4, 2)), y=np.zeros(4, int), fingerprint=np.zeros(1)),
    ),
    "a_folder": lambda good, dst: dst.mkdir(),
}


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_model_file_corpus(model_file, tmp_path, case):
    good, _ = model_file
    bad = tmp_path / f"{case}.zip"
    MODEL_CASES[case](good, bad)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MorphoscopeWarning)
        status = outcome(classify.load, bad, names=(str(bad),))
    assert status[0] == "error", f"{case} was loaded"


def test_model_from_another_library_version_warns(model_file, tmp_path):
    good, table = model_file
    old = tmp_path / "old.zip"
    _rewrite(good, old, meta=lambda m: {**m, "versions": {**m["versions"], "numpy": "1.0.0"}})
    with pytest.warns(MorphoscopeWarning, match="numpy"):
        model = classify.load(old)
    assert len(model.predict(table)) == len(table)


PREDICT_TABLES = {
    "missing_column": lambda t: t[["gini", "flag"]],
    "no_columns": lambda t: Table(),
    "empty_rows": lambda t: t[:0],
    "string_feature": lambda t: Table({"gini": ["a"] * 3, "m20": [1.0] * 3}),
    "nan_features": lambda t: Table({"gini": [np.nan] * 3, "m20": [np.nan] * 3}),
    "inf_features": lambda t: Table({"gini": [np.inf, 0.5], "m20": [-1.0, -np.inf]}),
    "masked_features": lambda t: Table({"gini": [0.5, 0.6], "m20": [-1.0, -2.0]}, masked=True),
    "flagged_rows": lambda t: Table({"gini": [0.5], "m20": [-1.0], "flag": [64]}),
    "extra_columns": lambda t: Table({"gini": [0.5], "m20": [-1.0], "other": ["x"]}),
    "bool_feature": lambda t: Table({"gini": [True, False], "m20": [-1.0, -2.0]}),
    "big_endian": lambda t: Table({"gini": np.array([0.5], ">f8"), "m20": np.array([-1.0], ">f4")}),
    "two_d_column": lambda t: Table({"gini": np.ones((2, 3)), "m20": [-1.0, -2.0]}),
}


@pytest.mark.parametrize("case", sorted(PREDICT_TABLES))
def test_predict_bad_tables(model_file, case):
    good, table = model_file
    model = classify.load(good)
    bad = PREDICT_TABLES[case](table)
    before = digest(np.asarray(bad.as_array())) if len(bad.colnames) else None
    status = outcome(model.predict, bad, names=("table", "gini", "m20"))
    if status[0] == "ok":
        out = status[1]
        assert len(out) == len(bad)
        probs = np.column_stack([np.asarray(out[f"prob_{c}"]) for c in model.classes])
        assert np.all(np.isfinite(probs)), "NaN probabilities without an error"
        np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    if case == "missing_column":
        assert status[0] == "error" and "m20" in str(status[1])
    if before is not None:
        assert digest(np.asarray(bad.as_array())) == before


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("catalog.ecsv", b"# %ECSV 1.0\n# ---\n# datatype:\n# - {name: gini\n"),
        ("catalog.csv", b""),
        ("catalog.fits", b"SIMPLE  =                    T" + b" " * 50),
        ("catalog.ecsv.gz", b"\x1f\x8b\x08broken"),
        ("catalog.txt", b"\x00\x01\x02"),
    ],
)
def test_predict_bad_catalog_files(model_file, tmp_path, name, content):
    good, _ = model_file
    path = tmp_path / name
    path.write_bytes(content)
    status = outcome(classify.load(good).predict, path, names=(name,))
    assert status[0] == "error"


def test_read_image_missing_file_message(tmp_path):
    with pytest.raises(InputError, match="absent.fits: file not found"):
        read_image(tmp_path / "absent.fits")
