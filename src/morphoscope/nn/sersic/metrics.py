"""Accuracy and coverage of Sérsic predictions against simulation truth."""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["RESOLUTION_BINS", "SNR_BINS", "residual_stats", "sersic_metrics"]

#: Edges of the S/N bins of :func:`sersic_metrics`.
SNR_BINS: tuple[float, ...] = (5.0, 15.0, 30.0, 100.0, 300.0, 1000.0)

#: Edges of the bins in resolution, true ``r_e / psf_fwhm``, of :func:`sersic_metrics`.
RESOLUTION_BINS: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 100.0)


def residual_stats(resid, err=None) -> dict[str, float]:
    """Median bias, robust scatter (1.4826 MAD), standard deviation and 68 % coverage.

    ``coverage`` is the fraction of finite residuals with ``|resid| <= err`` (NaN when
    ``err`` is None).

    Examples
    --------
    >>> import numpy as np
    >>> s = residual_stats(np.array([-1.0, 0.0, 1.0]), np.ones(3))
    >>> s["bias"], s["coverage"]
    (0.0, 1.0)
    """
    resid = np.asarray(resid, dtype=np.float64)
    ok = np.isfinite(resid)
    if err is not None:
        err = np.asarray(err, dtype=np.float64)
        ok &= np.isfinite(err)
    r = resid[ok]
    if r.size == 0:
        nan = float("nan")
        return {"bias": nan, "scatter": nan, "std": nan, "coverage": nan, "count": 0}
    med = float(np.median(r))
    return {
        "bias": med,
        "scatter": float(1.4826 * np.median(np.abs(r - med))),
        "std": float(np.std(r)),
        "coverage": float(np.mean(np.abs(r) <= err[ok])) if err is not None else float("nan"),
        "count": int(r.size),
    }


def _wrap_pa(d):
    return (np.asarray(d) + np.pi / 2) % np.pi - np.pi / 2


def _summary(pred, truth, sel, size) -> dict[str, dict[str, float]]:
    c = (size - 1) / 2.0
    out = {
        "n": residual_stats(
            np.log10(pred["sersic_n"][sel]) - np.log10(truth["n"][sel]),
            pred["sersic_n_err_dex"][sel],
        ),
        "r_e": residual_stats(
            np.log10(pred["sersic_rhalf"][sel]) - np.log10(truth["r_e"][sel]),
            pred["sersic_rhalf_err_dex"][sel],
        ),
        "q": residual_stats(pred["sersic_q"][sel] - truth["q"][sel], pred["sersic_q_err"][sel]),
    }
    if "sersic_flux" in pred.colnames and "flux" in truth:
        out["flux"] = residual_stats(
            np.log10(pred["sersic_flux"][sel]) - np.log10(truth["flux"][sel]),
            pred["sersic_flux_err_dex"][sel],
        )
    if "sersic_theta" in pred.colnames and "pa" in truth:
        elong = sel & (np.asarray(truth["q"]) < 0.8)
        out["pa"] = residual_stats(
            _wrap_pa(np.asarray(pred["sersic_theta"])[elong] - np.asarray(truth["pa"])[elong]),
            pred["sersic_theta_err"][elong],
        )
    if "sersic_xc" in pred.colnames and "x_offset" in truth:
        dx = np.asarray(pred["sersic_xc"])[sel] - c - np.asarray(truth["x_offset"])[sel]
        dy = np.asarray(pred["sersic_yc"])[sel] - c - np.asarray(truth["y_offset"])[sel]
        ex = np.asarray(pred["sersic_xc_err"])[sel]
        ey = np.asarray(pred["sersic_yc_err"])[sel]
        out["centre"] = residual_stats(np.concatenate([dx, dy]), np.concatenate([ex, ey]))
    return out


def sersic_metrics(pred, truth, *, snr_min: float = 30.0, size: int = 64) -> dict:
    """Bias, scatter and coverage of predicted Sérsic parameters, overall and per S/N.

    Parameters
    ----------
    pred : astropy.table.Table
        Output of :meth:`SersicNet.predict` (or any table with ``sersic_n``,
        ``sersic_rhalf``, ``sersic_q`` and their ``_err_dex``/``_err`` columns).
    truth : mapping or Table
        Columns ``n``, ``r_e``, ``q``, ``snr`` (and optionally ``flux``, ``pa``,
        ``x_offset``, ``y_offset``).
    snr_min : float
        Only stamps with ``snr > snr_min`` enter ``summary`` and ``by_resolution``.
    size : int
        Stamp size (the centre is at ``(size - 1) / 2``).

    Returns
    -------
    metrics : dict
        ``count``, ``summary`` (per parameter: ``bias``, ``scatter`` = 1.4826 MAD,
        ``std``, ``coverage``, ``count``; in dex for n, r_e, flux), ``by_snr`` (the
        same for n, r_e, q in the bins :data:`SNR_BINS`) and ``by_resolution`` (the
        same for n, r_e, q of the stamps with ``snr > snr_min``, in bins of true
        ``r_e / psf_fwhm`` :data:`RESOLUTION_BINS`; the PSF FWHM is the truth's
        ``psf_fwhm`` column, else the prediction's).
    """
    if hasattr(truth, "colnames"):  # a Table: `in` would test rows, not columns
        truth = {c: np.asarray(truth[c]) for c in truth.colnames}
    snr = np.asarray(truth["snr"])
    sel = snr > snr_min

    def binned(key, x, edges, within):
        """n, r_e, q metrics of the stamps in ``within`` per bin ``(lo, hi]`` of ``x``."""
        rows = []
        for lo, hi in itertools.pairwise(edges):
            b = within & (x > lo) & (x <= hi)
            if b.any():
                s = _summary(pred, truth, b, size)
                rows.append({key: [lo, hi], **{k: s[k] for k in ("n", "r_e", "q")}})
        return rows

    by_snr = binned("snr", snr, SNR_BINS, np.ones(snr.shape, bool))
    fwhm = np.asarray(truth["psf_fwhm"] if "psf_fwhm" in truth else pred["psf_fwhm"])
    by_res = binned("r_e_over_fwhm", np.asarray(truth["r_e"]) / fwhm, RESOLUTION_BINS, sel)
    return {
        "count": int(sel.sum()),
        "summary": _summary(pred, truth, sel, size),
        "by_snr": by_snr,
        "by_resolution": by_res,
    }
