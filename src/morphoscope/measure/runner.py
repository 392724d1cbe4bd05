"""Run the statmorph set and the Sersic fits over many sources (optionally in parallel)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from scipy import ndimage as ndi

from .nonparametric import QUANTITIES, morphology_one, sersic_start
from .sersic import PARAMS, SersicProblem, fit_sersic_batch

__all__ = ["run_nonparametric", "run_sersic"]

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
    cols = {f"sersic_{p}": np.full(n, np.nan) for p in PARAMS}
    cols.update({f"sersic_{p}_err": np.full(n, np.nan) for p in PARAMS})
    cols["sersic_chi2_dof"] = np.full(n, np.nan)
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
            p, e = res["params"][k], res["errors"][k]
            if not np.all(np.isfinite(p)):
                flag[i] = 2
                msgs[i].append("[sersic] fit failed.")
                continue
            for j, name in enumerate(PARAMS):
                cols[f"sersic_{name}"][i] = p[j]
                cols[f"sersic_{name}_err"][i] = e[j]
            cols["sersic_xc"][i] += offsets[k][0]
            cols["sersic_yc"][i] += offsets[k][1]
            cols["sersic_chi2_dof"][i] = res["chi2_dof"][k]
            if not res["converged"][k]:
                flag[i] = 2
                msgs[i].append("[sersic] fit did not converge.")
            elif res["at_bound"][k]:
                flag[i] = max(flag[i], 1)
    return cols, flag, msgs
