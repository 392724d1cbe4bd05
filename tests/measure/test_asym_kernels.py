"""The compiled asymmetry function and Nelder-Mead (measure._asym) against the Python
originals: ``statmorph_reference.asym_fn`` (the former ``_Source.asym_fn``) and
``scipy.optimize.fmin``."""

import numpy as np
import pytest
import scipy.optimize as opt
import statmorph_reference
from numba import njit
from scipy import ndimage as ndi

from morphoscope.measure import _asym
from morphoscope.measure.nonparametric import (
    PETRO_CAS,
    XTOL_CENTER,
    MorphologyState,
    _Invalid,
    morphology_one,
)
from morphoscope.simulate import simulate_stamps

KINDS = ("cas", "rms", "outer", "shape")


@pytest.fixture(scope="module")
def sources():
    """``(source, values)`` of the statmorph set on simulated stamps (neighbours masked)."""
    st = simulate_stamps(40, size=64, seed=11, snr_range=(10, 1000), neighbours=0.5)
    out = []
    for img, seg in zip(st.images, st.segmaps, strict=True):
        img = img.astype(float)
        bbox = ndi.find_objects(seg)[0]
        values, _, s = morphology_one(img, seg, 1, bbox)
        if s is not None:
            out.append((s, values))
    assert len(out) >= 30
    return out


def _sky(s):
    have = s.sky_asym is not None
    return (
        s.sky_asym if have else 0.0,
        s.sky_sigma**2 if s.sky_sigma is not None else 0.0,
        have,
    )


def _shape_image(s):
    """A binary image to rotate for the 'shape' kind (any image will do)."""
    return (s.cut > np.median(s.cut) + 2.0 * np.std(s.cut)).astype(float)


def _params(s, kind):
    """The aperture arguments of asymmetry_value for ``kind``, from the source's state."""
    from morphoscope.measure.nonparametric import EXTENT_CAS

    r = s.rmax_circ_v if kind == "shape" else EXTENT_CAS * s.rpetro_centroid
    return r, s.rhalf_ellip_v, s.rmax_ellip_v, s.elong_a, s.theta_a


def _compiled(s, image, c, kind):
    sky_asym, sky2, have = _sky(s)
    r, a_in, a_out, el, th = _params(s, kind)
    return _asym.asymmetry_value(
        image,
        s.mask,
        s.any_mask,
        float(c[0]),
        float(c[1]),
        _asym.KINDS[kind],
        r,
        a_in,
        a_out,
        el,
        th,
        sky_asym,
        sky2,
        have,
    )


def _python(s, image, c, kind):
    """asym_fn's value (NaN when invalid) and the codes of its warnings."""
    s.st = MorphologyState()
    try:
        v = statmorph_reference.asym_fn(s, np.array(c, float), image, kind)
    except _Invalid:
        v = np.nan
        if kind == "outer":
            return v, _asym.CODE_INVALID_OUTER
    return v, _codes(s.st.messages)


def _codes(messages):
    by_msg = {m: c for c, (m, _) in _asym.MESSAGES.items() if m is not None}
    code = 0
    for m in messages:
        code |= by_msg[m]
    return code


def _events(messages):
    by_msg = {m: c for c, (m, _) in _asym.MESSAGES.items() if m is not None}
    return [by_msg[m] for m in messages]


def test_constants_match_nonparametric():
    from morphoscope.measure import nonparametric as npm

    assert (_asym.PETRO_CAS, _asym.EXTENT_CAS) == (npm.PETRO_CAS, npm.EXTENT_CAS)


def test_sources_cover_the_paths(sources):
    assert any(s.any_mask for s, _ in sources)
    assert any(not s.any_mask for s, _ in sources)
    assert any(np.any(s.seg_stamp > 1) for s, _ in sources)  # a masked neighbour


@pytest.mark.parametrize("kind", KINDS)
def test_asymmetry_value_matches_asym_fn(sources, kind):
    rng = np.random.default_rng(1)
    n_checked = n_bounds = 0
    worst = 0.0
    for s, _ in sources:
        if kind in ("outer", "shape") and not hasattr(s, "rmax_circ_v"):
            continue
        image = _shape_image(s) if kind == "shape" else s.cut
        ca = np.asarray(s.ca)
        centres = [ca, ca + 0.5, (0.0, 0.0), (s.nx - 1e-9, s.ny / 2.0)]
        centres += list(ca + rng.normal(0.0, 3.0, (12, 2)))
        centres += list(rng.uniform(-2.0, [s.nx + 2.0, s.ny + 2.0], (12, 2)))
        centres += [(-1e-12, 5.0), (5.0, s.ny), (s.nx + 0.3, 3.0), (0.25, 0.75), (2.5, 1.5)]
        for c in centres:
            v_py, code_py = _python(s, image, c, kind)
            v, code = _compiled(s, image, c, kind)
            assert code == code_py, (c, kind)
            if np.isnan(v_py):
                assert np.isnan(v)
                continue
            n_bounds += code == _asym.CODE_BOUNDS
            rel = abs(v - v_py) / max(abs(v_py), 1e-300)
            worst = max(worst, rel)
            assert rel <= 1e-12, (c, kind, v, v_py)
            n_checked += 1
    assert n_checked > 500
    assert n_bounds > 20
    assert worst == 0.0  # same operations in the same order: bit-identical


@pytest.mark.parametrize("kind", KINDS)
def test_asymmetry_value_with_masked_edges(sources, kind):
    """Random masked pixels, the stamp's border masked: the rotated mask at every edge."""
    rng = np.random.default_rng(3)
    n_masked = 0
    for s, _ in sources[:8]:
        if not hasattr(s, "rmax_circ_v"):
            continue
        saved = s.mask, s.any_mask
        try:
            m = rng.random(s.mask.shape) < 0.05
            m[[0, -1], :] = m[:, [0, -1]] = True
            s.mask, s.any_mask = m, True
            image = _shape_image(s) if kind == "shape" else s.cut
            edges = [(0.4, 0.2), (s.nx - 0.6, s.ny - 0.3), (s.nx - 0.5, 2.0), (3.0, s.ny - 0.5)]
            for c in [*edges, *rng.uniform(0.0, [s.nx, s.ny], (20, 2))]:
                v_py, code_py = _python(s, image, c, kind)
                v, code = _compiled(s, image, c, kind)
                assert code == code_py
                assert v == v_py or (np.isnan(v) and np.isnan(v_py)), (c, kind, v, v_py)
                n_masked += 1
        finally:
            s.mask, s.any_mask = saved
    assert n_masked >= 100


def test_asymmetry_value_invalid_paths(sources):
    s, _ = sources[0]
    c = np.asarray(s.ca)
    saved = s.rmax_circ_v, s.rhalf_ellip_v
    try:
        s.rmax_circ_v = 0.0
        v_py, code_py = _python(s, s.cut, c, "shape")
        assert code_py == _asym.CODE_INVALID_RMAX_CIRC
        v, code = _compiled(s, s.cut, c, "shape")
        assert code == code_py and np.isnan(v)
        s.rhalf_ellip_v = np.nan
        with pytest.raises(_Invalid):
            statmorph_reference.asym_fn(s, c, s.cut, "outer")
        v, code = _compiled(s, s.cut, c, "outer")
        assert code == _asym.CODE_INVALID_OUTER and np.isnan(v)
    finally:
        s.rmax_circ_v, s.rhalf_ellip_v = saved
    # outside the stamp the bounds test comes first, whatever the kind
    assert _compiled(s, s.cut, (-0.5, 3.0), "shape") == (100.0, _asym.CODE_BOUNDS)
    # NaN centre: Python raises (int(NaN)); compiled returns NaN and a code
    with pytest.raises(ValueError):
        statmorph_reference.asym_fn(s, np.array([np.nan, 3.0]), s.cut, "cas")
    v, code = _compiled(s, s.cut, (np.nan, 3.0), "cas")
    assert np.isnan(v) and code == _asym.CODE_NONFINITE
    # an aperture that misses the image: zero flux sum
    saved = s.rpetro_centroid
    try:
        s.rpetro_centroid = 0.0
        v_py, code_py = _python(s, s.cut, c, "cas")
        assert (v_py, code_py) == (100.0, _asym.CODE_ZERO_FLUX)
        assert _compiled(s, s.cut, c, "cas") == (v_py, code_py)
    finally:
        s.rpetro_centroid = saved
    # a zero image: zero flux sum after the sums
    z = np.zeros_like(s.cut)
    v_py, code_py = _python(s, z, c, "rms")
    assert (v_py, code_py) == (100.0, _asym.CODE_ZERO_FLUX)
    assert _compiled(s, z, c, "rms") == (v_py, code_py)


def _scipy_fmin(s, c0):
    """scipy's fmin on asym_fn, with its evaluation count and the warnings' codes."""
    s.st = MorphologyState()
    calls = [0]

    def fn(c):
        calls[0] += 1
        return statmorph_reference.asym_fn(s, c, s.cut, "cas")

    x = opt.fmin(fn, np.asarray(c0, float), xtol=XTOL_CENTER, disp=False)
    return x, calls[0], _codes(s.st.messages)


def _fmin(s, c0):
    sky_asym, _, have = _sky(s)
    return _asym.fmin(
        s.cut,
        s.mask,
        s.any_mask,
        float(c0[0]),
        float(c0[1]),
        s.rpetro_centroid,
        sky_asym,
        have,
        XTOL_CENTER,
    )


def test_fmin_matches_scipy_on_the_asymmetry(sources):
    rng = np.random.default_rng(2)
    n_bounds = 0
    for s, _ in sources:
        xc, yc = s.centroid()
        starts = [(xc, yc), (float(s.xmax_pix), float(s.ymax_pix))]
        starts += list(np.array([xc, yc]) + rng.normal(0.0, 4.0, (2, 2)))
        starts += [(0.3, 0.2), (s.nx - 0.7, yc), (0.0, yc)]  # walks out of bounds / zdelt
        for c0 in starts:
            x_py, nf_py, codes_py = _scipy_fmin(s, c0)
            x, y, codes, nfev = _fmin(s, c0)
            assert (x, y) == (x_py[0], x_py[1]), c0  # bit-identical
            assert nfev == nf_py
            assert codes == codes_py
            n_bounds += bool(codes & _asym.CODE_BOUNDS)
    assert n_bounds > 0


def _python_center(s, c0, cb):
    """The asymmetry-centre step of morphology_one (copied), with its warnings."""
    s.st = st = MorphologyState()
    c0 = np.asarray(c0, float)
    fn = lambda c: statmorph_reference.asym_fn(s, c, s.cut, "cas")  # noqa: E731
    ca = opt.fmin(fn, c0, xtol=XTOL_CENTER, disp=False)
    dist = PETRO_CAS * s.rpetro_centroid
    if np.linalg.norm(ca - c0) > dist:
        st.warn(_asym.MESSAGES[_asym.CODE_DRIFT][0], 1)
        cb = np.array([float(cb[0]), float(cb[1])])
        ca = opt.fmin(fn, cb, xtol=XTOL_CENTER, disp=False)
        if np.linalg.norm(ca - cb) > dist:
            st.warn(_asym.MESSAGES[_asym.CODE_USE_CENTROID][0], 2)
            ca = c0
    return ca, st.messages, st.flag


def _center(s, c0, cb):
    sky_asym, _, have = _sky(s)
    return _asym.asymmetry_center(
        s.cut,
        s.mask,
        s.any_mask,
        float(c0[0]),
        float(c0[1]),
        cb[0],
        cb[1],
        s.rpetro_centroid,
        sky_asym,
        have,
        XTOL_CENTER,
    )


def test_asymmetry_center_matches_morphology_one(sources):
    seen = 0
    for s, values in sources:
        c0 = s.centroid()
        cb = (s.xmax_pix, s.ymax_pix)
        x, y, codes, events, _ = _center(s, c0, cb)
        assert (x + s.xmin, y + s.ymin) == (values["xc_asymmetry"], values["yc_asymmetry"])
        ca, msgs, _ = _python_center(s, c0, cb)
        assert (x, y) == (ca[0], ca[1])
        assert list(events) == _events(msgs)
        seen |= codes
    assert not seen & (_asym.CODE_DRIFT | _asym.CODE_USE_CENTROID)  # the usual path


def test_asymmetry_center_retry_and_fallback(sources):
    """Starting points far from the minimum take the two fallback paths."""
    seen = 0
    for s, _ in sources[:15]:
        ca = np.asarray(s.ca)
        far = ca + 0.6 * s.rpetro_centroid
        for c0, cb in [(far, (int(ca[0]), int(ca[1]))), (far, (int(far[0]), int(far[1])))]:
            if not (0 <= c0[0] < s.nx and 0 <= c0[1] < s.ny):
                continue
            x, y, codes, events, _ = _center(s, c0, cb)
            ca_py, msgs, flag = _python_center(s, c0, cb)
            assert (x, y) == (ca_py[0], ca_py[1])
            assert list(events) == _events(msgs)
            assert max([0] + [_asym.MESSAGES[e][1] for e in events]) == flag
            seen |= codes
    assert seen & _asym.CODE_DRIFT
    assert seen & _asym.CODE_USE_CENTROID


# ------------------------------------------------------------ Nelder-Mead, analytic
@njit
def _rosen(x, y, args):
    return args[0] * (y - x * x) ** 2 + (1.0 - x) ** 2, 0


@njit
def _quadratic(x, y, args):
    return (x - args[0]) ** 2 + 3.0 * (y - args[1]) ** 2 + 0.5 * (x - args[0]) * (y - args[1]), 0


@njit
def _steps(x, y, args):
    """Plateaus (ties between vertices) and a NaN region (NaN sorts last in numpy)."""
    if x > args[0]:
        return np.nan, 1
    return np.floor(4.0 * abs(x - 0.3)) + np.floor(4.0 * abs(y + 0.2)), 0


def _py(fn, args):
    return lambda c: fn(c[0], c[1], args)[0]


@pytest.mark.parametrize(
    ("fn", "args"),
    [(_rosen, (100.0,)), (_quadratic, (0.7, -1.3)), (_steps, (2.0,))],
)
@pytest.mark.parametrize("x0", [(-1.2, 1.0), (0.0, 0.0), (3.0, -2.0), (1e-3, 5.0)])
@pytest.mark.parametrize(
    ("xtol", "ftol", "maxfun", "maxiter"),
    [
        (1e-4, 1e-4, 400, 400),
        (1e-8, 1e-10, 400, 400),
        (1e-8, 1e-10, 37, 400),
        (1e-12, 0.0, 400, 9),
        (0.05, 0.0, 400, 400),  # plateaus: converges on equal values (fatol 0)
    ],
)
def test_nelder_mead_matches_scipy(fn, args, x0, xtol, ftol, maxfun, maxiter):
    x_py, _, nit, nf_py, _ = opt.fmin(
        _py(fn, args),
        np.array(x0),
        xtol=xtol,
        ftol=ftol,
        maxfun=maxfun,
        maxiter=maxiter,
        full_output=True,
        disp=False,
    )
    events = np.zeros(maxfun, np.int64)
    x, y, codes, nfev, nev = _asym.nelder_mead(
        fn, args, x0[0], x0[1], xtol, ftol, maxfun, maxiter, events, 0
    )
    assert (x, y) == (x_py[0], x_py[1])
    assert nfev == nf_py
    assert nev == int(events[:nev].sum()) and (nev > 0) == bool(codes)
