"""The compiled MID kernels (:mod:`morphoscope.measure._mid`) checked against the scipy /
scikit-image code of ``nonparametric._mid`` they replace: every comparison is exact."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.optimize as opt
import scipy.optimize._basinhopping as bh_module
from numba import njit
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.morphology._util import _offsets_to_raveled_neighbors
from skimage.segmentation import watershed

from morphoscope.measure import _mid
from morphoscope.measure.nonparametric import morphology_one

EIGHT = np.ones((3, 3), bool)


# ----------------------------------------------------------------- scipy references
def _scipy_counts_ratio(msub, sorted_mid, n_cut, invalid):
    """``counts`` and ``ratio`` exactly as ``nonparametric._mid`` defines them."""
    cache = {}

    def counts(q):
        k = int(q * (len(sorted_mid) - 1))
        if k not in cache:
            thr = sorted_mid[k]
            if thr <= 0:
                cache[k] = np.array([n_cut])
            else:
                lab, nf = ndi.label(msub >= thr, structure=EIGHT)
                c = np.bincount(lab.ravel(), minlength=nf + 1)[1:]
                cache[k] = np.sort(c)[::-1]
        return cache[k]

    def ratio(q):
        q = float(np.asarray(q).ravel()[0])
        if q < 0 or q > 1:
            return invalid
        c = counts(q)
        if len(c) == 1:
            return invalid
        return -1.0 * float(c[1]) ** 2 / float(c[0])

    return counts, ratio


def _scipy_grid(ratio):
    """The quantile grid of ``nonparametric._mid``: (q0, rmin, step, single clump)."""
    step = 0.02
    while True:
        qs = np.arange(0.0, 1.0, step)
        rs = np.array([ratio(q) for q in qs])
        k = int(np.argmin(rs))
        q0, rmin = qs[k], rs[k]
        if rmin < 0:
            return q0, rmin, step, False
        if step < 1e-3:
            return q0, rmin, step, True
        step /= 2.0


def _scipy_multimode(msub, sorted_mid, n_cut, invalid, options=None):
    """The multimode block of ``nonparametric._mid``: (value, single clump, basinhopping
    result or None); ``options`` of Nelder-Mead are added for the tests only."""
    counts, ratio = _scipy_counts_ratio(msub, sorted_mid, n_cut, invalid)
    q0, rmin, step, single = _scipy_grid(ratio)
    if single:
        return 0.0, True, None
    kwargs = {"method": "Nelder-Mead"}
    if options is not None:
        kwargs["options"] = options
    res = opt.basinhopping(
        ratio,
        q0,
        minimizer_kwargs=kwargs,
        niter=5,
        T=-0.5 * rmin,
        stepsize=step,
        interval=5 / 2,
        disp=False,
        seed=0,
    )
    c = counts(res.x[0])
    return float(c[1]) / float(c[0]), False, res


def _mid_inputs(s):
    """``msub``, ``sorted_mid``, ``n_cut``, ``invalid`` and ``cut_mid`` as ``_mid`` builds
    them from a measured source and its MID segmap."""
    nonneg = np.where(s.cut_nobg > 0, s.cut_nobg, 0.0)
    cut_mid = np.where(s.seg_mid, nonneg, 0.0)
    sorted_mid = np.sort(cut_mid[~s.mask_nobg])
    ys, xs = np.nonzero(s.seg_mid)
    mb = (slice(max(ys.min() - 1, 0), ys.max() + 2), slice(max(xs.min() - 1, 0), xs.max() + 2))
    return cut_mid[mb], sorted_mid, cut_mid.size, float(np.sum(cut_mid)), cut_mid


def _direct_inputs(img):
    """Kernel inputs for an image used as its own ``cut_mid`` (zero border, no mask)."""
    cut = np.pad(np.where(img > 0, img, 0.0), 1)
    return cut, np.sort(cut.ravel()), cut.size, float(cut.sum())


def _blobs(rng, n, size=48, noise=0.02):
    y, x = np.mgrid[:size, :size].astype(float)
    img = np.zeros((size, size))
    for _ in range(n):
        x0, y0 = rng.uniform(10, size - 10, 2)
        img += rng.uniform(0.3, 1.0) * np.exp(
            -((x - x0) ** 2 + (y - y0) ** 2) / (2 * rng.uniform(1.5, 3.5) ** 2)
        )
    return img + rng.normal(0, noise, img.shape)


@pytest.fixture(scope="module")
def galaxies():
    """60 simulated galaxies measured by ``morphology_one``: (values, state, source)."""
    from morphoscope.simulate import simulate_stamps

    st = simulate_stamps(60, size=64, seed=7, snr_range=(10, 1000))
    out = []
    for i in range(60):
        img = st.images[i].astype(float)
        seg = st.segmaps[i].astype(int)
        rms = np.full(img.shape, float(st.rms[i]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values, state, s = morphology_one(img, seg, 1, ndi.find_objects(seg)[0], weightmap=rms)
        assert s is not None and s.seg_mid is not None
        out.append((values, state, s))
    return out


# ----------------------------------------------------------------------- labelling
def test_component_at_equals_label_of_the_pixel():
    rng = np.random.default_rng(0)
    below = 0
    for t in range(300):
        ny, nx = rng.integers(1, 25, 2)
        values = rng.uniform(0, 1, (ny, nx))
        if t % 3 == 0:
            values = np.round(values * 4) / 4
        if t % 7 == 0:
            values[rng.random(values.shape) < 0.1] = np.nan
        thr = float(rng.uniform(0, 1))
        i, j = int(rng.integers(0, ny)), int(rng.integers(0, nx))
        lab, _ = ndi.label(values >= thr, structure=EIGHT)
        got = _mid.component_at(values, thr, i, j)
        assert got.dtype == bool
        assert np.array_equal(got, lab == lab[i, j])
        below += not values[i, j] >= thr
    assert below > 50  # the label-0 case (pixel below the threshold) is exercised
    values = rng.uniform(0, 1, (9, 11))
    lab, _ = ndi.label(values >= 0.5, structure=EIGHT)
    assert np.array_equal(_mid.component_at(values, 0.5, -1, -2), lab == lab[-1, -2])


def test_top_two_sizes_equal_bincount_of_labels():
    rng = np.random.default_rng(1)
    for t in range(300):
        ny, nx = rng.integers(1, 30, 2)
        values = ndi.gaussian_filter(rng.normal(size=(ny, nx)), rng.uniform(0, 2))
        if t % 4 == 0:
            values[rng.random(values.shape) < 0.1] = np.nan
        thr = float(rng.uniform(-1, 1) * np.nanstd(values))
        lab, nf = ndi.label(values >= thr, structure=EIGHT)
        c = np.sort(np.bincount(lab.ravel(), minlength=nf + 1)[1:])[::-1]
        want = (int(c[0]) if nf else 0, int(c[1]) if nf > 1 else 0, nf)
        assert _mid.top_two_sizes(values, thr) == want


def test_component_table_equals_label_at_every_level():
    rng = np.random.default_rng(2)
    for t in range(150):
        ny, nx = rng.integers(1, 30, 2)
        values = rng.uniform(-0.5, 1, (ny, nx))
        if t % 2:
            values = np.round(values * 5) / 5  # ties: several pixels join at one level
        if t % 3 == 0:
            values = ndi.gaussian_filter(values, 1.0)
        levels, table = _mid._component_table(values)
        assert np.array_equal(levels, np.sort(values[values > 0])[::-1])
        assert tuple(table[0]) == (0, 0, 0)
        for thr in np.unique(levels):
            m = int(np.sum(levels >= thr))
            assert tuple(table[m]) == _mid.top_two_sizes(values, thr)


# ----------------------------------------------------------- scipy's basinhopping
def test_basinhopping_seed_0_draws_these_uniforms(monkeypatch):
    """scipy's basinhopping(seed=0) draws from one RandomState(0): per hop one displacement
    ``uniform(-s, s, (1,))`` then one Metropolis ``uniform()``."""
    assert np.array_equal(_mid.BASINHOPPING_UNIFORMS, np.random.RandomState(0).random_sample(10))
    draws = []
    wrapped = {}

    class Recorder:
        def __init__(self, rng):
            self.rng = rng

        def uniform(self, low=0.0, high=1.0, size=None):
            out = self.rng.uniform(low, high, size)
            draws.append((low, high, size, out))
            return out

    original = bh_module.check_random_state

    def recording(seed):
        if isinstance(seed, Recorder):  # RandomDisplacement and Metropolis get the first
            return seed
        rng = original(seed)
        assert type(rng) is np.random.RandomState
        return wrapped.setdefault(id(rng), Recorder(rng))

    monkeypatch.setattr(bh_module, "check_random_state", recording)
    opt.basinhopping(
        lambda q: float(np.sin(40 * q[0])),
        0.3,
        minimizer_kwargs={"method": "Nelder-Mead"},
        niter=_mid.NITER,
        T=0.5,
        stepsize=0.05,
        interval=5 / 2,
        disp=False,
        seed=0,
    )
    assert len(wrapped) == 1  # displacement and Metropolis share one generator
    assert len(draws) == 2 * _mid.NITER
    u = _mid.BASINHOPPING_UNIFORMS
    for i in range(_mid.NITER):
        low, high, size, out = draws[2 * i]
        assert size == (1,) and low == -high
        assert out[0] == low + (high - low) * u[2 * i]
        assert draws[2 * i + 1][:3] == (0.0, 1.0, None)
        assert draws[2 * i + 1][3] == u[2 * i + 1]


def test_compiled_arange_equals_numpy_on_the_grid_steps():
    grid = njit(lambda step: np.arange(0.0, 1.0, step))
    step = 0.02
    while step >= 1e-3 / 2:
        assert np.array_equal(grid(step), np.arange(0.0, 1.0, step))
        step /= 2.0


def test_neldermead_equals_scipy_minimize(galaxies):
    starts = [0.0, 1e-9, 0.001, 0.05, 0.2, 0.37, 0.5, 0.73, 0.9, 0.999, 1.0, 1.02, -0.01, 3.0]
    cases = [_mid_inputs(s)[:4] for _, _, s in galaxies[::3]]
    rng = np.random.default_rng(3)
    cases += [_direct_inputs(_blobs(rng, 3)) for _ in range(5)]
    n = 0
    for msub, sorted_mid, n_cut, invalid in cases:
        _, ratio = _scipy_counts_ratio(msub, sorted_mid, n_cut, invalid)
        for x0 in starts + list(rng.uniform(0, 1, 6)):
            ref = opt.minimize(ratio, x0, method="Nelder-Mead")
            got = _mid._neldermead_alone(
                msub, sorted_mid, n_cut, float(invalid), float(x0), 200, 200
            )
            assert got[5] == 0  # no error
            assert got[:5] == (ref.x[0], ref.fun, ref.success, ref.nfev, ref.nit)
            n += 1
    assert n > 300


def test_neldermead_stops_as_scipy_at_maxfev_and_maxiter(galaxies):
    """The aborted iterations (scipy's _MaxFuncCallError) and the failure flags: the default
    limits (200) are never reached by ``ratio``, smaller ones are."""
    rng = np.random.default_rng(8)
    failures = 0
    for _, _, s in galaxies[1::4]:
        msub, sorted_mid, n_cut, invalid = _mid_inputs(s)[:4]
        _, ratio = _scipy_counts_ratio(msub, sorted_mid, n_cut, invalid)
        for x0 in rng.uniform(0, 1, 4):
            for maxfev, maxiter in (
                (1, 200),
                (2, 200),
                (3, 200),
                (4, 200),
                (5, 9),
                (200, 1),
                (200, 2),
                (200, 4),
                (7, 5),
                (8, 200),
                (11, 200),
            ):
                options = {"maxfev": maxfev, "maxiter": maxiter}
                ref = opt.minimize(ratio, x0, method="Nelder-Mead", options=options)
                got = _mid._neldermead_alone(
                    msub, sorted_mid, n_cut, float(invalid), float(x0), maxfev, maxiter
                )
                assert got[:5] == (ref.x[0], ref.fun, ref.success, ref.nfev, ref.nit)
                failures += not ref.success
    assert failures > 50


def test_basinhopping_with_failed_minimisations_equals_scipy(galaxies):
    """Metropolis and the storage of the lowest minimum when local minimisations fail (a
    small maxfev): the success flags take part in both."""
    compared = failed = 0
    for _, _, s in galaxies:
        msub, sorted_mid, n_cut, invalid = _mid_inputs(s)[:4]
        ctx = _mid._context(np.ascontiguousarray(msub), sorted_mid, n_cut, invalid)
        q0, rmin, step, status = _mid._grid(ctx)
        if status != 0:
            continue
        counts, ratio = _scipy_counts_ratio(msub, sorted_mid, n_cut, invalid)
        assert (q0, rmin, step, False) == _scipy_grid(ratio)
        for maxfev in (3, 25, 27, 28, 30, 32):
            res = opt.basinhopping(
                ratio,
                q0,
                minimizer_kwargs={"method": "Nelder-Mead", "options": {"maxfev": maxfev}},
                niter=5,
                T=-0.5 * rmin,
                stepsize=step,
                interval=5 / 2,
                disp=False,
                seed=0,
            )
            got = _mid._basinhopping(
                q0, rmin, step, _mid.BASINHOPPING_UNIFORMS, ctx, maxfev, 1 << 62
            )
            want = (res.x[0], res.fun, res.success, res.nfev, res.minimization_failures)
            assert got == want
            compared += 1
            failed += 0 < res.minimization_failures < 6
    assert compared > 200 and failed > 30


def _check_multimode(msub, sorted_mid, n_cut, invalid):
    value, single, res = _scipy_multimode(msub, sorted_mid, n_cut, invalid)
    assert _mid.multimode(msub, sorted_mid, n_cut, invalid) == (value, single)
    got = _mid._multimode(
        np.ascontiguousarray(msub), sorted_mid, n_cut, float(invalid), _mid.BASINHOPPING_UNIFORMS
    )
    if res is not None:  # the same basinhopping result, not only the same statistic
        assert got[2:] == (res.x[0], res.fun, res.nfev)
    return value, single


def test_multimode_equals_scipy_on_simulated_galaxies(galaxies):
    singles = 0
    for values, state, s in galaxies:
        msub, sorted_mid, n_cut, invalid, _ = _mid_inputs(s)
        value, single = _check_multimode(msub, sorted_mid, n_cut, invalid)
        assert value == values["multimode"]  # what morphology_one reports
        assert single == ("[M statistic] Single clump!" in state.messages)
        singles += single
    assert 5 < singles < 50  # both branches are exercised


def test_multimode_equals_scipy_on_multiple_clumps():
    rng = np.random.default_rng(4)
    values = []
    for t in range(40):
        img = _blobs(rng, 2 + t % 2, noise=0.0 if t % 5 == 0 else 0.02)
        value, single = _check_multimode(*_direct_inputs(img))
        values.append(value)
    assert max(values) > 0.5  # large multimode cases are in the sample


def test_multimode_equals_scipy_on_rugged_noise():
    """Noise fields: many components at every level, a rugged ratio(q) where the hops are
    accepted and rejected."""
    rng = np.random.default_rng(5)
    for t in range(40):
        img = ndi.gaussian_filter(rng.normal(size=(24, 24)), 0.7 + 0.05 * t) + 0.1
        _check_multimode(*_direct_inputs(img))


def test_multimode_single_clump():
    y, x = np.mgrid[:31, :31].astype(float)
    img = np.exp(-((x - 15.2) ** 2 + (y - 14.7) ** 2) / 18.0)
    inputs = _direct_inputs(img)
    assert _scipy_multimode(*inputs)[:2] == (0.0, True)
    assert _mid.multimode(*inputs) == (0.0, True)


def test_multimode_raises_as_scipy_on_empty_values():
    msub = np.zeros((3, 3))
    with pytest.raises(IndexError):
        _scipy_multimode(msub, np.empty(0), 9, 0.0)
    with pytest.raises(IndexError):
        _mid.multimode(msub, np.empty(0), 9, 0.0)


# --------------------------------------------------------- intensity and deviation
def _skimage_peak_basin_sums(smooth):
    peaks = peak_local_max(smooth, num_peaks=np.inf)
    npk = peaks.shape[0]
    markers = np.zeros(smooth.shape, np.int64)
    if npk:
        markers[peaks[:, 0], peaks[:, 1]] = np.arange(1, npk + 1)
    labels = watershed(-smooth, markers, connectivity=2, mask=smooth > 0)
    return peaks, np.bincount(labels.ravel(), weights=smooth.ravel(), minlength=npk + 1)[1:]


def _check_peak_basin_sums(smooth):
    peaks, sums = _mid.peak_basin_sums(smooth)
    ref_peaks, ref_sums = _skimage_peak_basin_sums(smooth)
    assert np.array_equal(peaks, ref_peaks)
    assert np.array_equal(sums, ref_sums)
    return len(peaks)


def test_watershed_neighbour_order_is_skimage_order():
    got = _offsets_to_raveled_neighbors((7, 9), EIGHT, (1, 1))
    assert np.array_equal(got, [-9, -1, 1, 9, -10, -8, 8, 10])


def test_peak_basin_sums_equal_skimage_on_galaxies(galaxies):
    for values, _, s in galaxies:
        cut_mid = _mid_inputs(s)[4]
        _check_peak_basin_sums(ndi.gaussian_filter(cut_mid, 1.0))
        intensity, deviation, msg = _mid.intensity_deviation(cut_mid, s.seg_mid)
        assert intensity == values["intensity"]
        assert deviation == values["deviation"] or (
            np.isnan(deviation) and np.isnan(values["deviation"])
        )


def test_peak_basin_sums_equal_skimage_with_plateaus_and_ties():
    """Quantised fields: plateau peaks, equal markers and equal costs, where the heap order
    (value, then age) and the cost clamp decide the labels."""
    rng = np.random.default_rng(6)
    many = 0
    for t in range(240):
        ny, nx = rng.integers(1, 40, 2)
        img = ndi.gaussian_filter(rng.normal(size=(ny, nx)), rng.uniform(0.5, 3))
        if t % 3 == 1:
            img = np.round(img / (img.std() + 1e-12) * 2) / 2
        elif t % 3 == 2:
            img = np.round(img * 4)
            img[img < 0] = 0
        many += _check_peak_basin_sums(img) > 5
    assert many > 20
    for img in (np.zeros((8, 8)), np.ones((5, 6)), np.ones((1, 1)), np.zeros((2, 9))):
        assert _check_peak_basin_sums(img) == 0


def test_intensity_deviation_on_multiple_clumps():
    rng = np.random.default_rng(7)
    for t in range(20):
        img = _blobs(rng, 2 + t % 3)
        cut_mid = np.where(img > 0.1, img, 0.0)
        seg = cut_mid > 0
        peaks, sums = _skimage_peak_basin_sums(ndi.gaussian_filter(cut_mid, 1.0))
        order = np.argsort(sums)[::-1]
        want = float(sums[order[1]] / sums[order[0]]) if len(sums) > 1 else 0.0
        intensity, deviation, msg = _mid.intensity_deviation(cut_mid, seg)
        assert intensity == want and msg == ""
        assert np.isfinite(deviation)
