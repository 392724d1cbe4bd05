"""The compiled per-stamp helpers (:mod:`morphoscope.measure._stamp`) checked against the
numpy / scipy code of ``nonparametric``, ``moments`` and ``pixels`` they replace: every
comparison is exact (``np.array_equal`` / ``==`` on floats)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.optimize as opt
from scipy import ndimage as ndi

from morphoscope.measure import _stamp
from morphoscope.measure import nonparametric as npm
from morphoscope.measure.moments import centroids, shape_from_moments
from morphoscope.measure.pixels import group_pixels
from morphoscope.simulate import simulate_stamps

S8 = ndi.generate_binary_structure(2, 2)


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


@pytest.fixture(scope="module")
def sources():
    """``_Source`` objects of simulated stamps (neighbours, NaN pixels, a user mask)."""
    st = simulate_stamps(24, size=64, seed=3, snr_range=(3.0, 500.0), neighbours=0.7)
    rng = np.random.default_rng(5)
    out = []
    for i in range(24):
        img = st.images[i].copy()
        seg = np.asarray(st.segmaps[i], np.int64)
        for _ in range(i % 4):
            img[rng.integers(0, 64), rng.integers(0, 64)] = np.nan
        mask = rng.random(img.shape) < 0.01 if i % 3 == 0 else None
        rms = np.full(img.shape, float(np.ravel(st.rms[i])[0])) if i % 2 else None
        boxes = ndi.find_objects(seg)
        if not boxes or boxes[0] is None:
            continue
        bbox = boxes[0]
        s = npm._Source(img, seg, 1, mask, rms, None, bbox, 10.0 if i % 5 else 0.0)
        out.append((s, img, seg, mask, rms, bbox))
    return out


# --------------------------------------------------------------------------- the stamp
def _badpixels_reference(image, nsigma):
    w = np.ones((3, 3))
    w[1, 1] = 0
    w /= 8.0
    img = np.where(np.isfinite(image), image, 0.0)
    m1 = ndi.convolve(img, w, mode="nearest")
    m2 = ndi.convolve(img**2, w, mode="nearest")
    with np.errstate(invalid="ignore"):
        std = np.sqrt(m2 - m1**2)
        return np.abs(image - m1) > nsigma * std


def _prepare_reference(image, segmap, label, mask, weightmap, sl, nsigma):
    """The former ``_Source.__init__``."""
    img = np.asarray(image[sl], dtype=float)
    seg = segmap[sl]
    bad = ~np.isfinite(img)
    if weightmap is not None:
        bad |= ~np.isfinite(np.asarray(weightmap[sl], dtype=float))
    if nsigma > 0:
        bad |= _badpixels_reference(img, nsigma)
    usermask = np.zeros(seg.shape, bool) if mask is None else mask[sl]
    m = ((seg != 0) & (seg != label)) | usermask | bad
    mask_nobg = m | (seg == 0)
    img = np.where(np.isfinite(img), img, 0.0)
    cut = np.where(~m, img, 0.0)
    cut_nobg = np.where(~mask_nobg, img, 0.0)
    ys, xs = np.nonzero(~mask_nobg)
    box = (
        [max(ys.min() - 1, 0), ys.max() + 2, max(xs.min() - 1, 0), xs.max() + 2]
        if ys.size
        else [0, 0, 0, 0]
    )
    ny, nx = seg.shape
    box = [min(box[0], ny), min(box[1], ny), min(box[2], nx), min(box[3], nx)]
    return m, mask_nobg, img, cut, cut_nobg, (~m).astype(float), box


def test_prepare_equals_the_numpy_stamp():
    rng = np.random.default_rng(0)
    for trial in range(60):
        ny, nx = rng.integers(8, 40, 2)
        image = rng.standard_normal((ny, nx)) * 10.0 ** rng.uniform(-2, 2)
        image[rng.random((ny, nx)) < 0.02] = 1e3  # outliers
        image[rng.random((ny, nx)) < 0.02] = np.nan
        image[rng.random((ny, nx)) < 0.01] = np.inf
        segmap = rng.integers(0, 3, (ny, nx)).astype(np.int64)
        mask = rng.random((ny, nx)) < 0.05 if trial % 2 else None
        wm = rng.random((ny, nx)) + 0.1 if trial % 3 else None
        if wm is not None:
            wm[rng.random((ny, nx)) < 0.02] = np.nan
        y0, x0 = rng.integers(0, 4, 2)
        sl = (slice(y0, ny - rng.integers(0, 3)), slice(x0, nx - rng.integers(0, 3)))
        nsigma = [10.0, 2.0, 0.0, 0.5][trial % 4]
        ref = _prepare_reference(image, segmap, 1, mask, wm, sl, nsigma)
        got = _stamp.prepare(
            image,
            segmap,
            1,
            np.zeros((1, 1), bool) if mask is None else mask,
            mask is not None,
            np.zeros((1, 1)) if wm is None else wm,
            wm is not None,
            sl[0].start,
            sl[0].stop,
            sl[1].start,
            sl[1].stop,
            nsigma,
        )
        mask_, mask_nobg, raw, cut, cut_nobg, omask, box, any_mask, total, imax, jmax = got
        for a, b in zip((mask_, mask_nobg, raw, cut, cut_nobg, omask), ref[:6], strict=True):
            assert np.array_equal(a, b), trial
        assert list(box) == ref[6], trial
        assert any_mask == bool(ref[0].any())
        assert total == np.sum(ref[4])
        i, j = np.argwhere(ref[4] == np.max(ref[4]))[0]
        assert (imax, jmax) == (i, j)


def test_badpixels_are_found():
    """The outlier test masks an isolated spike (and the reference agrees)."""
    image = np.random.default_rng(1).standard_normal((20, 20))
    image[7, 9] = 500.0
    seg = np.ones((20, 20), np.int64)
    no_mask, no_wm = np.zeros((1, 1), bool), np.zeros((1, 1))
    out = _stamp.prepare(image, seg, 1, no_mask, False, no_wm, False, 0, 20, 0, 20, 10.0)
    assert out[0][7, 9] and out[0].sum() == _badpixels_reference(image, 10.0).sum() >= 1


def _skybox_reference(seg, usermask, size=32):
    bad = ((seg != 0) | usermask).astype(np.int64)
    ny, nx = seg.shape
    sat = np.zeros((ny + 1, nx + 1), np.int64)
    sat[1:, 1:] = bad.cumsum(0).cumsum(1)
    while True:
        ni, nj = ny - size, nx - size
        if ni > 0 and nj > 0:
            i = np.arange(ni)[:, None]
            j = np.arange(nj)[None, :]
            cnt = sat[i + size, j + size] - sat[i, j + size] - sat[i + size, j] + sat[i, j]
            hit = np.flatnonzero(cnt.ravel() == 0)
            if hit.size:
                bi, bj = divmod(int(hit[0]), nj)
                return bi, bj, size
        if size <= 2:
            return 0, 0, 0
        size //= 2


def test_skybox_equals_the_summed_area_search():
    rng = np.random.default_rng(2)
    for trial in range(80):
        n = int(rng.integers(4, 70))
        seg = (rng.random((n, n)) < rng.uniform(0.0, 0.6)).astype(np.int64)
        um = rng.random((n, n)) < 0.02
        use = bool(trial % 2)
        ref = _skybox_reference(seg, um if use else np.zeros_like(um))
        assert _stamp.skybox(seg, um, use, 0, n, 0, n, 32) == ref, trial


def test_sky_stats_equal_numpy():
    rng = np.random.default_rng(3)
    for trial in range(100):
        cut = rng.standard_normal((64, 64)) * 10.0 ** rng.uniform(-6, 6, (64, 64))
        size = [32, 16, 8, 4, 2][trial % 5]
        by, bx = rng.integers(0, 64 - size, 2)
        bkg = cut[by : by + size, bx : bx + size]
        ref = (
            np.mean(bkg),
            np.median(bkg),
            np.std(bkg),
            np.sum(np.abs(bkg[::-1, ::-1] - bkg)) / bkg.size,
        )
        assert _stamp.sky_stats(cut, by, bx, size) == ref, trial


# ------------------------------------------------------------------------------ filters
@pytest.mark.parametrize("shape", [(64, 64), (32, 32), (7, 9), (3, 20)])
def test_uniform_filter_equals_scipy(shape):
    rng = np.random.default_rng(4)
    a = rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 3, shape)
    for size in range(0, 2 * max(shape) + 3):
        assert np.array_equal(_stamp.uniform_filter(a, size), ndi.uniform_filter(a, size)), size


def test_uniform_filter_order_matters():
    """Dividing the running sum at each step (another order) gives other floats."""
    a = np.random.default_rng(5).standard_normal((16, 16))
    ref = ndi.uniform_filter(a, 3)
    other = ndi.uniform_filter1d(ndi.uniform_filter1d(a, 3, axis=1), 3, axis=0)
    assert np.array_equal(_stamp.uniform_filter(a, 3), ref) and not np.array_equal(other, ref)


def test_smoothness_residuals_equal_numpy():
    rng = np.random.default_rng(7)
    cut = rng.standard_normal((64, 64))
    for size in range(0, 12):
        d = cut - ndi.uniform_filter(cut, size=size)
        d[d < 0] = 0.0
        assert np.array_equal(_stamp.smooth_residual(cut, size), d), size
        bkg = cut[5:21, 30:46]
        d = bkg - ndi.uniform_filter(bkg, size=size)
        d[d < 0] = 0.0
        assert _stamp.sky_smoothness(cut, 5, 30, 16, size) == np.sum(d) / bkg.size, size


# ----------------------------------------------------------------------- Gini and M20
def _gini_segmap_reference(sm, thr):
    above = sm >= thr
    lab, nf = ndi.label(above, structure=S8)
    if nf == 0:
        return above, _stamp.GINI_EMPTY
    if above.all():
        return above, _stamp.GINI_FULL
    if nf > 1:
        ic, jc = np.argwhere(sm == np.max(sm))[0]
        if lab[ic, jc] == 0:
            return above, _stamp.GINI_OUTSIDE
        return lab == lab[ic, jc], _stamp.GINI_MULTI
    return above, _stamp.GINI_SINGLE


def test_gini_segmap_equals_labelling():
    rng = np.random.default_rng(8)
    codes = set()
    for trial in range(200):
        sm = ndi.gaussian_filter(rng.standard_normal((30, 40)), rng.uniform(0.5, 3.0))
        q = rng.uniform(-0.1, 1.1)
        thr = float(np.quantile(sm, min(max(q, 0.0), 1.0))) + (q < 0) * -1.0 + (q > 1) * 1.0
        if trial % 5 == 0:  # ties of the brightest value: the first one counts
            sm[25, 35] = sm[2, 3] = sm.max() + 1.0
        ref_seg, ref_code = _gini_segmap_reference(sm, thr)
        seg, code = _stamp.gini_segmap(np.ascontiguousarray(sm), thr)
        assert code == ref_code, trial
        assert np.array_equal(seg, ref_seg), trial
        codes.add(code)
    assert {_stamp.GINI_EMPTY, _stamp.GINI_FULL, _stamp.GINI_SINGLE, _stamp.GINI_MULTI} <= codes


def test_gini_m20_sn_sums_equal_numpy():
    rng = np.random.default_rng(9)
    for trial in range(100):
        cut = rng.standard_normal((40, 40)) * 10.0 ** rng.uniform(-3, 3)
        cut[rng.random(cut.shape) < 0.05] = 0.0
        if trial % 10 == 0:
            cut[5, 5] = -0.0
        seg = ndi.gaussian_filter(rng.standard_normal((40, 40)), 2.0) > rng.uniform(-0.1, 0.2)
        # _gini
        v = np.sort(np.abs(cut[seg]))
        n = v.size
        idx = np.arange(1, n + 1)
        assert _stamp.gini(cut, seg) == (n, np.sum(v), np.sum((2 * idx - n - 1) * v)), trial
        # _m20 after its centroid
        img = np.where(seg, cut, 0.0)
        xc, yc = rng.uniform(10, 30, 2)
        ys, xs = np.nonzero(seg)
        vals = img[ys, xs]
        r2 = (xs - xc) ** 2 + (ys - yc) ** 2
        sv = np.sort(img.ravel())
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.cumsum(sv) / np.sum(sv)
        top = sv[frac >= 0.8]
        mtot, m20v, found = _stamp.m20_sums(img, seg, float(xc), float(yc))
        assert mtot == np.sum(vals * r2) and found == (top.size > 0), trial
        if found:
            sel = vals >= top[0]
            assert m20v == np.sum(vals[sel] * r2[sel]), trial
        # sn_per_pixel
        wmap = rng.uniform(-1, 2, cut.shape)
        wm = np.abs(wmap)
        locs = seg & (cut >= 0) & (wm > 0)
        nsn, sn = _stamp.sn_per_pixel(cut, seg, wmap)
        assert nsn == locs.sum()
        if nsn:
            assert sn == np.mean(cut[locs] / wm[locs])


# -------------------------------------------------------------------------------- MID
def _mid_reference(s):
    """The former ``_mid`` segmap search: (seg_mid or None, warnings)."""
    msgs = []
    nonneg = np.where(s.cut_nobg > 0, s.cut_nobg, 0.0)
    sorted_nn = np.sort(nonneg[~s.mask_nobg])
    ic, jc = s.ymax_pix, s.xmax_pix

    def main_clump(q):
        thr = sorted_nn[int(q * (len(sorted_nn) - 1))]
        lab, _ = ndi.label(nonneg >= thr, structure=S8)
        return lab == lab[ic, jc], thr

    def seg_fn(q):
        clump, thr = main_clump(q)
        mean = np.mean(nonneg[clump])
        if mean == 0:
            msgs.append("zero")
            return 1.0 - npm.ETA
        return thr / mean - npm.ETA

    if seg_fn(0.0) > 0.0:
        return None, msgs, nonneg, sorted_nn
    q = opt.brentq(seg_fn, 0.0, 1.0, xtol=1.0 / float(sorted_nn.size))
    clump, _ = main_clump(q)
    seg = ndi.uniform_filter(clump.astype(float), size=3.0) > 0.5
    if not seg[ic, jc]:
        msgs.append("added")
        seg[ic, jc] = True
    lab, _ = ndi.label(seg, structure=S8)
    return lab == lab[ic, jc], msgs, nonneg, sorted_nn


def test_mid_segmap_equals_scipy_search(sources):
    n_search = 0
    for s, *_ in sources:
        if not np.sum(s.cut_nobg) > 0:
            continue
        ref, msgs, nonneg, sorted_nn = _mid_reference(s)
        status, nzero, added, seg_mid, nn, srt, q = _stamp.mid_segmap(
            s.cut_nobg, s.mask_nobg, s.ymax_pix, s.xmax_pix, s.seg_box_arr, npm.ETA
        )
        assert np.array_equal(nn, nonneg) and np.array_equal(srt, sorted_nn)
        assert nzero == msgs.count("zero") and added == ("added" in msgs)
        if ref is None:
            assert status == -1
            continue
        n_search += 1
        assert status == 0 and np.array_equal(seg_mid, ref)
        assert 0.0 <= q <= 1.0
        cut_mid, sorted_mid, mb, invalid = _stamp.mid_cut(nn, seg_mid, s.mask_nobg)
        ref_cut = np.where(ref, nonneg, 0.0)
        ys, xs = np.nonzero(ref)
        assert np.array_equal(cut_mid, ref_cut)
        assert np.array_equal(sorted_mid, np.sort(ref_cut[~s.mask_nobg]))
        assert invalid == np.sum(ref_cut)
        assert np.array_equal(
            cut_mid[mb[0] : mb[1], mb[2] : mb[3]],
            ref_cut[max(ys.min() - 1, 0) : ys.max() + 2, max(xs.min() - 1, 0) : xs.max() + 2],
        )
    assert n_search >= 5


# ----------------------------------------------------------------------- shape asymmetry
def test_shape_asymmetry_helpers_equal_numpy(sources):
    rng = np.random.default_rng(10)
    for s, *_ in sources:
        ny, nx = s.cut.shape
        xc, yc = rng.uniform(20, 44, 2)
        r_in = rng.uniform(2, 12)
        if rng.random() < 0.5:  # pixels exactly on both circles
            xc, yc, r_in = float(rng.integers(20, 44)), float(rng.integers(20, 44)), 5.0
        r_out = 2 * r_in
        yy, xx = np.mgrid[0:ny, 0:nx]
        d = np.hypot(xx - xc, yy - yc)
        ann = (d < r_out) & ~(d < r_in)
        ref = s.cut[~(s.mask | ~ann)]
        assert np.array_equal(_stamp.shape_annulus_values(s.cut, s.mask, xc, yc, r_in, r_out), ref)
        thr = float(np.quantile(s.cut, rng.uniform(0.5, 1.0)))
        sm = ndi.uniform_filter(s.cut, size=3.0)
        above = sm >= thr
        ic, jc = np.argwhere(sm == np.max(sm))[0]
        was_above = bool(above[ic, jc])
        above[ic, jc] = True
        lab, _ = ndi.label(above, structure=S8)
        seg, added = _stamp.shape_segmap(s.cut, thr)
        assert np.array_equal(seg, lab == lab[ic, jc]) and added == (not was_above)
        th = rng.uniform(-np.pi / 2, np.pi / 2)
        el = rng.uniform(1.0, 3.0)
        ys, xs = np.nonzero(seg)
        rc = np.max(np.hypot(ys - yc, xs - xc))
        xp = (xs - xc) * np.cos(th) + (ys - yc) * np.sin(th)
        yp = -(xs - xc) * np.sin(th) + (ys - yc) * np.cos(th)
        re = np.max(np.sqrt(xp**2 + (yp * el) ** 2))
        assert _stamp.rmax(seg, xc, yc, float(np.cos(th)), float(np.sin(th)), el) == (
            ys.size,
            rc,
            re,
        )


# ------------------------------------------------------------------ first-order catalog
def test_grouping_and_moments_equal_numpy():
    rng = np.random.default_rng(12)
    for _ in range(30):
        ny, nx = rng.integers(5, 50, 2)
        seg = rng.integers(0, 6, (ny, nx)).astype(np.int64)
        image = rng.standard_normal((ny, nx)) * 10.0 ** rng.uniform(-3, 3)
        labels = np.array(rng.permutation(np.arange(1, 8))[: rng.integers(1, 7)], np.int64)
        g = group_pixels(image, seg, labels)
        # the numpy grouping
        lut = np.full(int(max(seg.max(), labels.max())) + 1, -1, np.int64)
        lut[labels] = np.arange(labels.size)
        flat = seg.ravel()
        sel = np.flatnonzero(flat > 0)
        idx = lut[flat[sel]]
        sel, idx = sel[idx >= 0], idx[idx >= 0]
        order = np.argsort(idx, kind="stable")
        sel, idx = sel[order], idx[order]
        assert np.array_equal(g.index, idx) and g.index.dtype == idx.dtype
        assert np.array_equal(g.flux, image.ravel()[sel])
        assert np.array_equal(g.count, np.bincount(idx, minlength=labels.size))
        # centroids and second moments (the former numpy code)
        w = np.clip(g.flux, 0, None)
        wsum = g.sum(w)
        with np.errstate(invalid="ignore", divide="ignore"):
            xc = g.sum(w * g.x) / wsum
            yc = g.sum(w * g.y) / wsum
        got = centroids(g)
        assert _same(got[0], xc) and _same(got[1], yc) and _same(got[2], wsum)
        dx = g.x - xc[g.index]
        dy = g.y - yc[g.index]
        with np.errstate(invalid="ignore", divide="ignore"):
            mxx = g.sum(w * dx * dx) / wsum
            myy = g.sum(w * dy * dy) / wsum
            mxy = g.sum(w * dx * dy) / wsum
            half_sum = 0.5 * (mxx + myy)
            root = np.sqrt((0.5 * (mxx - myy)) ** 2 + mxy**2)
            a = np.sqrt(np.clip(half_sum + root, 0, None))
            b = np.sqrt(np.clip(half_sum - root, 0, None))
            ratio = np.where(a > 0, b / a, np.nan)
            elongation = np.where(b > 0, a / b, np.inf)
        shape = shape_from_moments(g, xc, yc)
        assert _same(shape["a"], a) and _same(shape["b"], b)
        assert _same(shape["ellipticity"], 1.0 - ratio)
        assert _same(shape["elongation"], elongation)
        assert _same(shape["orientation"], 0.5 * np.arctan2(2.0 * mxy, mxx - myy))


def test_morphology_one_still_warns_in_order(sources):
    """A full measurement runs and keeps its flag / message bookkeeping."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, img, seg, mask, rms, bbox in sources[:6]:
            values, state, _ = npm.morphology_one(img, seg, 1, bbox, mask=mask, weightmap=rms)
            assert set(values) == set(npm.QUANTITIES)
            assert state.flag in (0, 1, 2, 4) and all(isinstance(m, str) for m in state.messages)
