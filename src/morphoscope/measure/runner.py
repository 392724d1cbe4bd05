"""Run the statmorph set and the Sersic fits over many sources (optionally in parallel)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from scipy import ndimage as ndi
from scipy.special import gammaincinv

from .nonparametric import QUANTITIES, morphology_one, sersic_start
from .sersic import DOUBLE_PARAMS, PARAMS, SersicProblem, fit_sersic_batch

__all__ = ["run_doublesersic", "run_nonparametric", "run_sersic"]

#: statmorph's double-Sersic set-up (``doublesersic_rsep_over_rhalf``): the initial inner and
#: outer single fits are separated by the ellipse of semi-major axis 2 ``rhalf_ellip``.
RSEP_OVER_RHALF = 2.0
#: Iteration budgets and tolerances. The initial inner and outer fits have statmorph's
#: (``LevMarLSQFitter(maxiter=100, acc=1e-4)``: 100 model evaluations, at least 6 per
#: iteration with 5 free parameters). The double fit has statmorph's tolerance (``acc=1e-5``)
#: but 100 iterations instead of the ~38 that its 500 evaluations allow with 12 free
#: parameters: with that budget statmorph stops short on most galaxies (38 of 60 simulated
#: stamps flagged 2), and so would this fit (a noiseless bulge and disk needs 49).
GUESS_ITER, GUESS_TOL = 100 // 6, 1e-4
DOUBLE_ITER, DOUBLE_TOL = 100, 1e-5
#: The columns of DOUBLE_PARAMS in the tied model's parameters (DOUBLE_TIED_PARAMS).
_UNTIE = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 5, 6]

# The arrays of the current call, per thread (measure may run in several threads at once,
# e.g. on the workers of a threaded Dask cluster).
_LOCAL = threading.local()


def _init(image, segmap, mask, weightmap, gain, nsig):
    _LOCAL.shared = dict(
        image=image, segmap=segmap, mask=mask, weightmap=weightmap, gain=gain, nsig=nsig
    )


def _one(label, bbox, want_sersic):
    sh = _LOCAL.shared
    try:
        values, st, src = morphology_one(
            sh["image"],
            sh["segmap"],
            int(label),
            bbox,
            mask=sh["mask"],
            weightmap=sh["weightmap"],
            gain=sh["gain"],
            n_sigma_outlier=sh["nsig"],
        )
    except Exception as exc:  # any failure of one source becomes a flag, never an exception
        values = dict.fromkeys(QUANTITIES, np.nan)
        return values, 4, [f"measurement failed ({type(exc).__name__}: {exc})"], None, True
    fit = None
    if want_sersic:
        if src is None:
            fit = (None, None, None, 4, [])
        else:
            try:
                fit = sersic_start(src, values)
            except Exception as exc:
                fit = (None, None, None, 4, [f"[sersic] setup failed ({exc})"])
        if fit[0] is not None:
            fit = (
                np.ascontiguousarray(fit[0]),
                fit[1],
                fit[2],
                fit[3],
                fit[4],
                (src.xmin, src.ymin),
            )
        else:
            fit = (*fit, (0, 0))
    return values, st.flag, st.messages, fit, False


def _chunk(args):
    return [_one(*a) for a in args]


def run_nonparametric(
    image, segmap, labels, *, mask, weightmap, gain, n_sigma_outlier, sersic, n_jobs
):
    """statmorph's quantities for ``labels``: (values dict of arrays, flags, messages, fits)."""
    n = len(labels)
    boxes = ndi.find_objects(segmap, max_label=int(max(labels, default=0)))
    tasks = []
    for lab in labels:
        bb = boxes[int(lab) - 1] if 0 < lab <= len(boxes) else None
        tasks.append((int(lab), bb, sersic))
    results: list = [None] * n
    todo = [i for i in range(n) if tasks[i][1] is not None]
    if n_jobs is None or n_jobs < 1:
        n_jobs = os.cpu_count() or 1
    if n_jobs > 1 and len(todo) > 1:
        chunks = [todo[k::n_jobs] for k in range(n_jobs)]
        with ProcessPoolExecutor(
            max_workers=n_jobs,
            initializer=_init,
            initargs=(image, segmap, mask, weightmap, gain, n_sigma_outlier),
        ) as ex:
            outs = ex.map(_chunk, [[tasks[i] for i in ch] for ch in chunks])
            for ch, out in zip(chunks, outs, strict=True):
                for i, r in zip(ch, out, strict=True):
                    results[i] = r
    else:
        _init(image, segmap, mask, weightmap, gain, n_sigma_outlier)
        for i in todo:
            results[i] = _one(*tasks[i])
        _LOCAL.shared = None
    block = np.full((len(QUANTITIES), n), np.nan)
    flags = np.full(n, 4, np.int64)
    messages: list[list[str]] = [["label not in the segmentation map"] for _ in range(n)]
    failed = np.zeros(n, bool)
    fits: list = [None] * n
    for i, r in enumerate(results):
        if r is None:
            continue
        v, f, m, fit, err = r
        block[:, i] = [v[q] for q in QUANTITIES]
        flags[i], messages[i], fits[i], failed[i] = f, m, fit, err
    values = dict(zip(QUANTITIES, block, strict=True))
    return values, flags, messages, fits, failed


def run_sersic(fits, psf, n_jobs=1, device=None):
    """Batch-fit the prepared problems; returns a dict of column arrays (image coordinates)."""
    n = len(fits)
    cols = _nan_columns("sersic", PARAMS, n)
    flag = np.full(n, 4, np.int64)
    msgs: list[list[str]] = [[] for _ in range(n)]
    problems, where, offsets = [], [], []
    for i, fit in enumerate(fits):
        if fit is None:
            continue
        img, w, start, f, m, off = fit
        flag[i] = f
        msgs[i] = list(m)
        if img is None:
            continue
        problems.append(SersicProblem(img, w, start, psf[i] if isinstance(psf, list) else psf))
        where.append(i)
        offsets.append(off)
    if problems:
        try:
            res = fit_sersic_batch(problems, workers=n_jobs, device=device)
        except Exception as exc:  # a numerical failure of the batch flags its fits
            for i in where:
                flag[i] = 2
                msgs[i].append(f"[sersic] fit failed ({type(exc).__name__}: {exc}).")
            return cols, flag, msgs
        for k, i in enumerate(where):
            if not _store(cols, "sersic", PARAMS, res, k, i, offsets[k]):
                flag[i] = 2
                msgs[i].append("[sersic] fit failed.")
                continue
            if not res["converged"][k]:
                flag[i] = 2
                msgs[i].append("[sersic] fit did not converge.")
            elif res["at_bound"][k]:
                flag[i] = max(flag[i], 1)
    return cols, flag, msgs


def _nan_columns(prefix, names, n):
    """The NaN columns that :func:`_store` fills: ``<prefix>_<name>``, ``<prefix>_<name>_err``,
    ``<prefix>_chi2_dof``, ``_aic`` and ``_bic`` for ``n`` sources."""
    cols = {f"{prefix}_{p}": np.full(n, np.nan) for p in names}
    cols.update({f"{prefix}_{p}_err": np.full(n, np.nan) for p in names})
    for extra in ("chi2_dof", "aic", "bic"):
        cols[f"{prefix}_{extra}"] = np.full(n, np.nan)
    return cols


def _store(cols, prefix, names, res, k, i, offset, n_free=None):
    """Copy fit ``k`` of ``res`` into row ``i`` of the ``<prefix>_*`` columns (centre shifted
    by the stamp's ``offset``; ``n_free`` parameters, default one per name, for the
    information criteria); False (nothing stored) when the fit has no parameters."""
    p, e = res["params"][k], res["errors"][k]
    if not np.all(np.isfinite(p)):
        return False
    for j, name in enumerate(names):
        cols[f"{prefix}_{name}"][i] = p[j]
        cols[f"{prefix}_{name}_err"][i] = e[j]
    cols[f"{prefix}_xc"][i] += offset[0]
    cols[f"{prefix}_yc"][i] += offset[1]
    cols[f"{prefix}_chi2_dof"][i] = res["chi2_dof"][k]
    aic, bic = _information(res, k, len(names) if n_free is None else n_free)
    cols[f"{prefix}_aic"][i], cols[f"{prefix}_bic"][i] = aic, bic
    return True


def _information(res, k, n_free):
    """Akaike and Bayesian information criteria of fit ``k`` (statmorph's ``sersic_aic``,
    ``sersic_bic``: least-squares forms of astropy.stats)."""
    from astropy.stats import akaike_info_criterion_lsq, bayesian_info_criterion_lsq

    chi2, n_valid = float(res["chi2"][k]), int(res["n_valid"][k])
    if not (chi2 > 0 and np.isfinite(chi2)) or n_valid <= n_free + 1:
        return np.nan, np.nan  # a perfect fit, or too few pixels for the AIC's correction
    return (
        akaike_info_criterion_lsq(chi2, n_free, n_valid),
        bayesian_info_criterion_lsq(chi2, n_free, n_valid),
    )


def _bulge_disk_start(p1, tied):
    """A bulge (n = 4, r_e / 2) and a disk (n = 1, 1.5 r_e), each giving half the single
    fit's ``p1`` surface brightness at its own effective radius, with the single fit's centre,
    ellipticity and angle (DOUBLE_PARAMS order, or DOUBLE_TIED_PARAMS when ``tied``)."""
    amp, reff, n, xc, yc, ellip, theta = p1
    bn = gammaincinv(2.0 * n, 0.5)

    def single_at(r):
        return amp * np.exp(-bn * ((r / reff) ** (1.0 / n) - 1.0))

    bulge = [0.5 * single_at(0.5 * reff), 0.5 * reff, 4.0]
    disk = [0.5 * single_at(1.5 * reff), 1.5 * reff, 1.0]
    shape = [ellip, theta]
    return np.array([xc, yc, *bulge, *shape, *disk, *([] if tied else shape)])


def run_doublesersic(fits, psf, single, values, n_jobs=1, device=None, tied=False):
    """statmorph's double-Sersic fit of every source whose single fit ran.

    Parameters
    ----------
    fits : list
        The prepared single-fit inputs (:func:`run_sersic`'s ``fits``).
    psf : ndarray, list of ndarray or None
        The PSF (one per source when a list).
    single : dict
        :func:`run_sersic`'s columns (image coordinates).
    values : dict
        The statmorph set (asymmetry centre, ``orientation_asymmetry``,
        ``elongation_asymmetry`` and ``rhalf_ellip`` set the inner and outer regions).
    tied : bool
        One ellipticity and angle for both components (statmorph's
        ``doublesersic_tied_ellip``; the second component's columns repeat the first's).

    Returns
    -------
    cols : dict
        ``doublesersic_*`` columns (image coordinates), with ``_err`` uncertainties.
    flag : ndarray
        ``flag_doublesersic``: 0 good, 1 an n at its limit, 2 failed, 4 not run.
    msgs : list of list of str
        Messages per source.

    Notes
    -----
    As statmorph: single-Sersic fits with the centre fixed at the single fit's, started from
    the single fit, to the pixels inside and outside the ellipse of semi-major axis
    :data:`RSEP_OVER_RHALF` ``* rhalf_ellip`` (asymmetry centre, orientation and elongation)
    give the two components' starting points; the double fit (shared centre) then uses the
    single fit's weights. A fit that ends with an index at its limit or unconverged is tried
    again from a bulge plus a disk (:func:`_bulge_disk_start`); the lower chi^2 is kept.
    """
    n = len(fits)
    cols = _nan_columns("doublesersic", DOUBLE_PARAMS, n)
    flag = np.full(n, 4, np.int64)
    msgs: list[list[str]] = [[] for _ in range(n)]
    inner, outer, starts, where, offsets = [], [], [], [], []
    fixed = np.zeros(7, bool)
    fixed[3:5] = True  # the centre
    for i, fit in enumerate(fits):
        if fit is None or fit[0] is None:
            continue
        img, w, _, _, _, off = fit
        p1 = np.array([single[f"sersic_{q}"][i] for q in PARAMS])
        p1[3] -= off[0]
        p1[4] -= off[1]
        geo = [values[q][i] for q in ("xc_asymmetry", "yc_asymmetry")]
        geo = [geo[0] - off[0], geo[1] - off[1]]
        geo += [values[q][i] for q in ("orientation_asymmetry", "elongation_asymmetry")]
        r_sep = RSEP_OVER_RHALF * values["rhalf_ellip"][i]
        if not (np.all(np.isfinite(p1)) and np.all(np.isfinite(geo)) and r_sep > 0):
            msgs[i].append("[doublesersic] no single-Sersic fit or rhalf_ellip to start from.")
            continue
        xa, ya, theta, elong = geo
        y, x = np.mgrid[0 : img.shape[0], 0 : img.shape[1]].astype(float)
        xprime = (x - xa) * np.cos(theta) + (y - ya) * np.sin(theta)
        yprime = -(x - xa) * np.sin(theta) + (y - ya) * np.cos(theta)
        inside = np.sqrt(xprime**2 + (yprime * elong) ** 2) < r_sep
        k_psf = psf[i] if isinstance(psf, list) else psf
        inner.append(SersicProblem(img, np.where(inside, w, 0.0), p1, k_psf, fixed))
        outer.append(SersicProblem(img, np.where(inside, 0.0, w), p1, k_psf, fixed))
        starts.append(p1)
        where.append(i)
        offsets.append(off)
    if not where:
        return cols, flag, msgs
    try:
        guess = [
            fit_sersic_batch(
                pbs, max_iter=GUESS_ITER, tol=GUESS_TOL, workers=n_jobs, device=device
            )["params"]
            for pbs in (inner, outer)
        ]
        doubles = []
        for k, p1 in enumerate(starts):
            comp = []
            for g, name in zip(guess, ("inner", "outer"), strict=True):
                q = g[k] if np.all(np.isfinite(g[k])) else p1
                if q is p1:
                    msgs[where[k]].append(
                        f"[doublesersic] {name} fit failed; its component starts from the "
                        "single fit."
                    )
                comp.append(q[[0, 1, 2, 5, 6]])
            start = np.concatenate([p1[3:5], comp[0], comp[1][: 3 if tied else 5]])
            doubles.append(SersicProblem(inner[k].image, fits[where[k]][1], start, inner[k].psf))
        model = "double_tied" if tied else "double"
        budget = dict(model=model, max_iter=DOUBLE_ITER, tol=DOUBLE_TOL, workers=n_jobs)
        res = fit_sersic_batch(doubles, device=device, **budget)
        # statmorph's start comes from inner and outer fits that are often far from
        # converged; from it a bright compact bulge can end in a minimum with n at its limit.
        # Those fits (and the unconverged ones) are tried again from a bulge (n = 4, half the
        # single fit's r_e) plus a disk (n = 1, 1.5 r_e) and the lower chi^2 is kept.
        retry = np.flatnonzero(~res["converged"] | res["at_bound"])
        if retry.size:
            alt = [
                SersicProblem(
                    doubles[k].image,
                    doubles[k].weights,
                    _bulge_disk_start(starts[k], tied),
                    doubles[k].psf,
                )
                for k in retry
            ]
            res2 = fit_sersic_batch(alt, device=device, **budget)
            better = np.isfinite(res2["chi2"]) & ~(res2["chi2"] >= res["chi2"][retry])
            better &= res2["converged"] | ~res["converged"][retry]
            for key in res:
                res[key][retry[better]] = res2[key][better]
    except Exception as exc:  # a numerical failure of the batch flags its fits
        for i in where:
            flag[i] = 2
            msgs[i].append(f"[doublesersic] fit failed ({type(exc).__name__}: {exc}).")
        return cols, flag, msgs
    if tied:  # the second component's ellipticity and angle are the first's
        res = {**res, "params": res["params"][:, _UNTIE], "errors": res["errors"][:, _UNTIE]}
    n_free = 10 if tied else 12
    for k, i in enumerate(where):
        if not _store(cols, "doublesersic", DOUBLE_PARAMS, res, k, i, offsets[k], n_free):
            flag[i] = 2
            msgs[i].append("[doublesersic] Not enough data for fit.")
            continue
        flag[i] = 0
        if not res["converged"][k]:
            flag[i] = 2
            msgs[i].append("[doublesersic] fit did not converge.")
        elif res["at_bound"][k]:
            flag[i] = 1
    return cols, flag, msgs
