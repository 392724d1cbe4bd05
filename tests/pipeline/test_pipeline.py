"""Every tier of Pipeline(config).run on a small simulated multi-band field, against truth."""

import json
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

import morphoscope as ms
from morphoscope.exceptions import InputError
from morphoscope.pipeline import (
    BandInput,
    Pipeline,
    PipelineConfig,
    detection_metrics,
    load_config,
    match_sources,
    parse_band,
)
from morphoscope.pipeline.demo import tier_accuracy

STAGE_FLAGS = ("flag_segment", "flag_measure", "flag_sersicnet", "flag_pixel", "flag_emission",
               "flag_classifier")  # fmt: skip


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """A 256x256 three-band scene (F200W, F335M with line emission, F356W) on disk."""
    scene = ms.simulate.simulate_scene(
        (256, 256), n_sources=22, seed=5, emission_band="F335M", emission_fraction=0.4,
        flux_range=(500.0, 20000.0),
    )  # fmt: skip
    data = tmp_path_factory.mktemp("field")
    scene.write(data)
    return scene, data


def _bands(data, names=("F200W", "F335M", "F356W")):
    return [BandInput(n, data / f"{n}_sci.fits", rms=data / f"{n}_rms.fits",
                      psf=data / f"{n}_psf.fits") for n in names]  # fmt: skip


@pytest.fixture(scope="module")
def model_file(field, tmp_path_factory):
    """A classifier of the truth class, trained on the field's measured catalog."""
    from morphoscope import classify

    scene, data = field
    cfg = PipelineConfig(bands=_bands(data, ("F200W",)),
                         stages={"sersicnet": False, "pixel": False, "emission": False},
                         measure={"sersic": False})  # fmt: skip
    cat = Pipeline(cfg).run().catalog
    truth = scene.truth
    d, t = match_sources(cat["xc_centroid"], cat["yc_centroid"], truth["x"], truth["y"], 3.0)
    table = cat[d]
    table["class"] = np.asarray(truth["class"]).astype(str)[t]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feats = ["gini", "m20", "concentration", "r50", "ellipticity_centroid"]
        model = classify.train(table, "class", features=feats, cv=None, importance=False)
    path = tmp_path_factory.mktemp("model") / "model.zip"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def run(field, model_file, tmp_path_factory):
    scene, data = field
    out = tmp_path_factory.mktemp("run") / "out"
    cfg = PipelineConfig(
        bands=_bands(data),
        emission_medium="F335M",
        emission_reference=["F356W"],
        classifier={"model": str(model_file)},
    )
    result = Pipeline(cfg).run(out=out, truth=scene.truth)
    return scene, result, out


def test_every_tier_against_truth(run):
    scene, res, _ = run
    truth, cat = scene.truth, res.catalog
    # detection: bright sources found, few spurious
    s = detection_metrics(res.segmap, truth, image=res.segmentation.image,
                          truth_segmap=scene.segmap, snr_column="snr_F200W", snr_min=20,
                          centroid="either")  # fmt: skip
    assert s["completeness"] >= 0.8
    assert s["purity"] >= 0.8
    # measurement: RA/Dec from the WCS agree with the truth's, fluxes and colours sensible
    d, t = match_sources(cat["xc_centroid"], cat["yc_centroid"], truth["x"], truth["y"], 3.0)
    assert d.size >= 0.7 * len(truth)
    sep = np.hypot((np.asarray(cat["ra"])[d] - np.asarray(truth["ra"])[t])
                   * np.cos(np.radians(np.asarray(truth["dec"])[t])),
                   np.asarray(cat["dec"])[d] - np.asarray(truth["dec"])[t]) * 3600  # fmt: skip
    assert np.median(sep) < 0.03  # arcsec: one pixel
    assert cat["ra"].unit == "deg" and cat["color_F200W_F335M"].unit == "mag"
    # compact isolated sources: the segment holds the whole flux (extended ones lose wings)
    sel = ~np.asarray(truth["blended"])[t] & (np.asarray(truth["snr_F200W"])[t] > 50)
    compact = sel & (np.asarray(truth["r_e"])[t] < 4)
    ratio = np.asarray(cat["flux_F200W"])[d] / np.asarray(truth["flux_F200W"])[t]
    assert compact.sum() >= 3 and np.all(np.abs(ratio[compact] - 1) < 0.1)
    assert np.all(ratio[sel] < 1.1)
    acc = tier_accuracy(res, truth, truth_segmap=scene.segmap, truth_classmap=scene.classmap,
                        band="F200W", snr_min=30)  # fmt: skip
    # SersicNet: half-light radii of single-Sersic galaxies within ~0.15 dex
    assert acc["sersicnet"]["n"] >= 3
    assert abs(acc["sersicnet"]["rhalf_bias_dex"]) < 0.15
    # pixel classes: every source has a class, the map is the classes inside the segments
    assert np.all(np.isin(cat["pixel_class"], ["spheroid", "disk", "irregular", "point_source"]))
    assert np.all(res.classmap[res.segmap == 0] == 0)
    assert acc["pixel"]["pixel_accuracy_in_footprints"] > 0.4
    # emission: truth emitters found, few non-emitters flagged
    e = acc["emission"]
    assert e["n_emitters"] >= 3 and e["completeness"] >= 0.5
    assert e["false_positive_rate"] <= 0.25
    # classifier: its predictions are in the catalog and beat chance
    assert acc["classifier"]["accuracy"] > 0.4
    for c in STAGE_FLAGS:
        assert c in cat.colnames
    assert all(v.status == "ok" for v in res.log.values()), res.log


def test_outputs(run):
    scene, res, out = run
    names = {p.name for p in out.iterdir()}
    assert {"catalog.ecsv", "catalog.fits", "segmap.fits", "classmap.fits", "sources.reg",
            "log.json", "report.html", "emission_inspect.html"} <= names  # fmt: skip
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]
    cat = Table.read(out / "catalog.ecsv")
    assert len(cat) == len(res.catalog) and cat["nn_sersic_rhalf"].unit == "pix"
    assert len(Table.read(out / "catalog.fits")) == len(cat)
    for name in ("segmap.fits", "classmap.fits"):
        with fits.open(out / name) as hdul:
            w = WCS(hdul[0].header)
            assert np.allclose(w.wcs.crval, scene.wcs.wcs.crval)
            assert hdul[0].data.shape == scene.segmap.shape
    with fits.open(out / "classmap.fits") as hdul:
        assert np.array_equal(hdul[0].data, res.classmap)
    regions = (out / "sources.reg").read_text().splitlines()
    assert sum(r.startswith("ellipse(") for r in regions) == len(res.catalog)
    log = json.loads((out / "log.json").read_text())
    assert set(log["stages"]) >= {"read", "detect", "measure", "sersicnet", "pixel", "emission",
                                  "classifier", "write", "report"}  # fmt: skip
    assert log["config"]["emission"]["medium"] == "F335M"
    page = (out / "report.html").read_text()
    for section in ('id="classes"', 'id="sersicnet"', 'id="diagrams"', 'id="emission"',
                    'id="classifier"', 'id="stages"', 'href="emission_inspect.html"'):  # fmt: skip
        assert section in page
    assert "http://" not in page and "https://" not in page


def _assert_nothing_written(out):
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("problem", ["corrupt", "missing_psf", "shape"])
def test_whole_input_problem_stops_before_writing(field, tmp_path, problem):
    _, data = field
    bands = _bands(data)
    if problem == "corrupt":
        bad = tmp_path / "F335M_sci.fits"
        bad.write_bytes(b"SIMPLE  =                    T" + b"\x00garbage" * 50)
        bands[1] = BandInput("F335M", bad, psf=data / "F335M_psf.fits")
    elif problem == "missing_psf":
        bands[1] = BandInput("F335M", data / "F335M_sci.fits", psf=tmp_path / "nope_psf.fits")
    else:
        small = tmp_path / "small.fits"
        fits.writeto(small, np.zeros((100, 120), np.float32))
        bands[1] = BandInput("F335M", small)
    out = tmp_path / "out"
    with pytest.raises(InputError, match="band F335M"):
        Pipeline(PipelineConfig(bands=bands)).run(out=out)
    _assert_nothing_written(out)


def test_cli_missing_psf_names_band(field, tmp_path, capsys):
    from morphoscope.cli import main

    _, data = field
    out = tmp_path / "out"
    rc = main(["run", "--band", f"F200W={data / 'F200W_sci.fits'}",
               "--band", f"F356W={data / 'F356W_sci.fits'},psf={tmp_path / 'gone.fits'}",
               "--out", str(out), "--quiet"])  # fmt: skip
    assert rc != 0
    assert "band F356W" in capsys.readouterr().err
    _assert_nothing_written(out)


def test_config_file_and_stage_switches(field, tmp_path):
    _, data = field
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text(
        f"bands:\n"
        f"  F200W: {{image: {data / 'F200W_sci.fits'}, rms: {data / 'F200W_rms.fits'}}}\n"
        f"  F356W: {{image: {data / 'F356W_sci.fits'}, rms: {data / 'F356W_rms.fits'}}}\n"
        "detection: stack\n"
        "stages: {sersicnet: false, pixel: false, emission: false}\n"
        "segment: {npixels: 8}\n"
        "measure: {sersic: false}\n"
    )
    cfg = load_config(cfg_file)
    assert cfg.band_names == ["F200W", "F356W"] and cfg.detection == "stack"
    res = Pipeline(cfg).run()
    assert res.detection == "stack(F200W+F356W)"
    assert res.log["sersicnet"].status == "off" and res.classmap is None
    assert not np.any(res.catalog["flag_pixel"]) and "nn_sersic_n" not in res.catalog.colnames
    assert len(res.catalog) > 10 and "flux_F356W" in res.catalog.colnames
    # bad configurations name what is wrong
    with pytest.raises(InputError, match="detection"):
        Pipeline(cfg, detection="F999W").run()
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[bands]\nF200W = "x.fits"\nF356W = "{data / "F356W_sci.fits"}"\n'
                   '[emission]\nmedium = "F335M"\nreference = ["F200W"]\n')  # fmt: skip
    with pytest.raises(InputError, match="band F200W"):
        Pipeline(bad).run()


def test_measure_sets():
    from morphoscope.exceptions import ParameterError
    from morphoscope.pipeline import MEASURE_SETS, measure_set_options

    assert PipelineConfig().measure_options == MEASURE_SETS["full"] == {
        "nonparametric": True, "sersic": True}  # fmt: skip
    cfg = PipelineConfig.from_dict({"measure_set": "fast", "measure": {"asymmetry": False}})
    assert cfg.measure_options == {"nonparametric": False, "sersic": False, "asymmetry": False}
    logged = cfg.to_dict()
    assert logged["measure_set"] == "fast" and logged["measure_options"] == cfg.measure_options
    # explicit keywords override the set's
    assert measure_set_options("full", {"sersic": False})["sersic"] is False
    with pytest.raises(ParameterError, match="measure_set"):
        PipelineConfig(measure_set="quick")


def test_parse_band():
    b = parse_band("F200W=a.fits[SCI],rms=0.5,psf=p.fits")
    assert (b.name, b.image, b.rms, b.psf) == ("F200W", "a.fits[SCI]", 0.5, "p.fits")
    with pytest.raises(InputError, match="F200W"):
        parse_band("F200W=a.fits,psff=p.fits")


def test_stage_failure_flags_sources(field, monkeypatch):
    """A stage that fails as a whole flags every source in its column, the others go on."""
    scene, _ = field
    import morphoscope.nn as nn

    def broken(*args, **kwargs):
        raise RuntimeError("no weights")

    monkeypatch.setattr(nn.PixelClassifier, "pretrained", classmethod(broken))
    cfg = PipelineConfig(stages={"emission": False}, measure={"sersic": False})
    with pytest.warns(ms.MorphoscopeWarning, match="pixel stage failed"):
        res = Pipeline(cfg).run(scene)
    assert res.log["pixel"].status == "failed"
    assert np.all(res.catalog["flag_pixel"] == int(ms.Flag.MEASURE_FAILED))
    assert res.log["sersicnet"].status == "ok" and np.isfinite(res.catalog["nn_sersic_n"]).any()


def test_pipeline_psf_fwhm_is_the_segment_estimate():
    # The FWHM the pipeline gives SersicNet is the one detection uses (one estimator).
    from morphoscope.pipeline.pipeline import psf_fwhm
    from morphoscope.segment import psf_fwhm as segment_psf_fwhm

    y, x = np.mgrid[-10:11, -10:11]
    psf = (1 + (x**2 + y**2) / 1.6**2) ** -3.0  # Moffat beta 3, FWHM 1.63 px
    assert psf_fwhm(psf) == segment_psf_fwhm(psf)
    assert psf_fwhm(psf) == pytest.approx(2 * 1.6 * np.sqrt(2 ** (1 / 3) - 1), rel=0.06)
