"""Single-Sérsic fits convolved with the PSF, many galaxies at once (batched Levenberg-Marquardt).

The model is statmorph's (astropy ``Sersic2D`` evaluated at pixel centres, convolved with the
PSF by FFT, ``mode='same'``)::

    I(x, y) = amplitude * exp(-b_n * ((z / r_eff) ** (1 / n) - 1)),
    z**2 = x_maj**2 + (x_min / (1 - ellip))**2,

with ``x_maj, x_min`` the offsets from ``(x_0, y_0)`` along and across ``theta`` and ``b_n``
the solution of ``gammainc(2n, b_n) = 1/2``. Stamps of one shape are fitted together as one
array: the model and its analytic derivatives with respect to the seven parameters are
evaluated for the whole batch, convolved with each galaxy's PSF by batched real FFTs, and
each galaxy takes its own damped Gauss-Newton (Levenberg-Marquardt) step with its own
damping factor, so one iteration costs eight batched FFT convolutions whatever the number
of galaxies. The FFTs are as short as the 'same'-mode output allows (about stamp + PSF/2,
not stamp + PSF), and the derivatives, which only set each step's direction, are evaluated
and convolved in single precision; the residuals, which decide whether a step is taken and
where the fit stops, and the final derivatives behind the uncertainties are in double
precision. Parameter uncertainties are the square roots of the diagonal of
``(J^T W J)^-1`` at the solution, scaled by ``sqrt(chi2_dof)`` when that exceeds 1.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import fft
from scipy.special import gammaincinv

__all__ = ["PARAMS", "SersicProblem", "fit_sersic_batch"]

#: Parameter order of the fit.
PARAMS = ("amplitude", "rhalf", "n", "xc", "yc", "ellip", "theta")
N_MIN, N_MAX = 0.01, 20.0
#: Initial Levenberg-Marquardt damping (relative to the diagonal of J^T J).
LAMBDA0 = 1e-3
#: Iterations at most: statmorph's budget. Its fitter (astropy's ``LevMarLSQFitter``, MINPACK's
#: ``lmdif``) stops after 500 evaluations of the model and spends at least 8 per iteration
#: (7 for the finite-difference derivatives, 1 for the step), so at most 62 iterations.
MAX_ITER = 62


class SersicProblem:
    """One galaxy to fit: stamp, per-pixel weights (1/sigma, 0 = ignore), start, PSF."""

    def __init__(self, image, weights, start, psf=None):
        self.image = np.asarray(image, float)
        self.weights = np.asarray(weights, float)
        self.start = np.asarray(start, float)
        self.psf = None if psf is None else np.asarray(psf, float)


def _bn(n):
    return gammaincinv(2.0 * n, 0.5)


def _postfit(p):
    """statmorph's ``_postfitting_fix``: positive r_eff, ellipticity in [0, 1), theta in [0, pi)."""
    a, e, t = p[:, 1].copy(), p[:, 5].copy(), p[:, 6].copy()
    a = np.abs(a)
    e = np.where(e > 1, 2.0 - e, e)
    neg = e < 0
    a = np.where(neg, (1 - e) * a, a)
    t = np.where(neg, t + np.pi / 2, t)
    e = np.where(neg, e / (e - 1), e)
    out = p.copy()
    out[:, 1], out[:, 5], out[:, 6] = a, e, t - np.floor(t / np.pi) * np.pi
    return out


def _model_and_jac(p, bn, dbn, yy, xx, want_jac=True):
    """Sersic images (B, H, W) and their derivatives (B, 7, H, W) for parameters p (B, 7)."""
    amp, reff, n, x0, y0, ellip, theta = (p[:, i, None, None] for i in range(7))
    bn = bn[:, None, None]
    ct, st = np.cos(theta), np.sin(theta)
    dx, dy = xx - x0, yy - y0
    xmaj = dx * ct + dy * st
    xmin = -dx * st + dy * ct
    q = 1.0 - ellip
    z2 = (xmaj / reff) ** 2 + (xmin / (q * reff)) ** 2
    z = np.sqrt(np.maximum(z2, 1e-24))
    u = z ** (1.0 / n)
    # The exponent is floored (at -300, a relative level of 5e-131, in double precision; at
    # -80, 2e-35, in single): far outside the galaxy the profile would otherwise underflow to
    # subnormal numbers, whose arithmetic is ~100 times slower on most CPUs.
    floor = -80.0 if z.dtype == np.float32 else -300.0
    e = np.maximum(-bn * (u - 1.0), floor)
    m = amp * np.exp(e)
    if not want_jac:
        return m, None
    live = e > floor
    dm_dz = np.where(live, -m * bn * u / (n * z), 0.0)
    jac = np.empty((p.shape[0], 7, *m.shape[1:]), m.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        jac[:, 0] = np.exp(e)
        jac[:, 1] = dm_dz * (-z / reff)
        dE_dn = -dbn[:, None, None] * (u - 1.0) + bn * u * np.log(z) / n**2
        jac[:, 2] = np.where(live, m * dE_dn, 0.0)
        r2 = reff**2
        jac[:, 3] = dm_dz * (-xmaj * ct / r2 + xmin * st / (q**2 * r2)) / z
        jac[:, 4] = dm_dz * (-xmaj * st / r2 - xmin * ct / (q**2 * r2)) / z
        jac[:, 5] = dm_dz * (xmin**2 / (q**3 * r2)) / z
        jac[:, 6] = dm_dz * (xmaj * xmin * (1.0 - 1.0 / q**2) / r2) / z
    jac[~np.isfinite(jac)] = 0.0
    return m, jac


def _bn_coeffs(n):
    h = 1e-6 * np.maximum(n, 0.05)
    lo = np.maximum(n - h, 1e-4)
    return _bn(n), (_bn(n + h) - _bn(lo)) / (n + h - lo)


def _same_fft_shape(shape, kshape):
    """Smallest fast real-FFT shape whose circular convolution gives the 'same'-mode output.

    The 'same' output of an ``H x W`` image with a ``kh x kw`` kernel is the window
    ``[oy, oy + H)`` of the full linear convolution (``oy = (kh - 1) // 2``). A circular
    convolution of length ``L`` folds index ``k + L`` of the linear one onto ``k``, so the
    window is exact when ``L >= max(H + oy, H + kh - 1 - oy)`` — about ``H + kh / 2`` instead
    of the ``H + kh - 1`` of a full linear convolution (a 48 px stamp with a 37 px PSF: 72
    instead of 90 points per axis).
    """
    out = []
    for h, k in zip(shape, kshape, strict=True):
        o = (k - 1) // 2
        out.append(fft.next_fast_len(max(h + o, h + k - 1 - o), real=True))
    return tuple(out)


def _psf_transform(psfs, shape, workers=1):
    """Real FFTs of a stack of PSFs for :func:`_convolve_same` on stamps of ``shape``."""
    full = _same_fft_shape(shape, psfs.shape[1:])
    off = ((psfs.shape[1] - 1) // 2, (psfs.shape[2] - 1) // 2)
    return fft.rfft2(psfs, s=full, axes=(-2, -1), workers=workers), full, off


def _convolve_same(img, kern, full, off, workers=1):
    """'Same'-mode convolution (as ``scipy.signal.fftconvolve(..., mode='same')``) of every
    stamp ``img[b, ...]`` with the PSF whose transform is ``kern[b]`` (broadcast over any
    middle axes, e.g. the seven derivatives), in the precision of ``img`` and ``kern``."""
    h, w = img.shape[-2:]
    f = fft.rfft2(img, s=full, axes=(-2, -1), workers=workers)
    f *= kern
    out = fft.irfft2(f, s=full, axes=(-2, -1), workers=workers)
    return out[..., off[0] : off[0] + h, off[1] : off[1] + w]


def fit_sersic_batch(
    problems: list[SersicProblem], *, max_iter: int = MAX_ITER, tol: float = 1e-7, workers: int = 1
) -> dict[str, np.ndarray]:
    """Fit a PSF-convolved single Sérsic profile to every problem, batched by stamp shape.

    Parameters
    ----------
    problems : list of SersicProblem
        Stamps (float), weights ``1/sigma`` (0 = pixel not fitted), start parameters in
        :data:`PARAMS` order (stamp coordinates) and optional PSF (odd-sized, centred).
    max_iter : int
        Levenberg-Marquardt iterations at most (default :data:`MAX_ITER`, statmorph's
        budget); a galaxy still improving then is returned with ``converged`` False.
    tol : float
        A galaxy has converged when a step improves its chi^2 by less than ``tol``
        (relative) or no damped step improves it.
    workers : int
        Threads (-1 or 0: all cores); the batches are split between them. The result does
        not depend on it beyond the last bits of ill-conditioned fits.

    Returns
    -------
    dict
        ``params`` (n, 7), ``errors`` (n, 7), ``chi2_dof`` (n,), ``converged`` (n,) bool,
        ``at_bound`` (n,) bool (n stuck at its limits), ``n_iter`` (n,) iterations.
        NaN rows for problems with no more valid pixels than parameters.

    Notes
    -----
    Memory is O(B * H * W * 8) floats per batch of B stamps of H x W pixels (batches hold at
    most ~4 million pixels); time is dominated by the batched FFTs.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import gammaincinv
    >>> y, x = np.mgrid[:48, :48].astype(float)
    >>> bn = gammaincinv(2.0, 0.5)  # n = 1
    >>> z = np.hypot(x - 24.2, (y - 23.7) / 0.6)
    >>> img = 10 * np.exp(-bn * (z / 6.0 - 1))
    >>> pb = SersicProblem(img, np.ones_like(img), [8, 5, 2, 24, 24, 0.3, 0.1])
    >>> res = fit_sersic_batch([pb])
    >>> np.round(res["params"][0, [1, 2, 5]], 3)
    array([6. , 1. , 0.4])
    """
    n = len(problems)
    out = {
        "params": np.full((n, 7), np.nan),
        "errors": np.full((n, 7), np.nan),
        "chi2_dof": np.full(n, np.nan),
        "converged": np.zeros(n, bool),
        "at_bound": np.zeros(n, bool),
        "n_iter": np.zeros(n, int),
    }
    groups: dict[tuple, list[int]] = {}
    for i, pb in enumerate(problems):
        nvalid = int(np.count_nonzero(pb.weights))
        if nvalid <= 7 or not np.all(np.isfinite(pb.start)):
            continue
        kshape = None if pb.psf is None else pb.psf.shape
        # Stamps are padded (bottom/right) to a multiple of 16 pixels so that stamps of
        # similar sizes share a batch; padded pixels have zero weight and the model is
        # zeroed there before the convolution, which keeps each fit identical to an
        # unpadded one.
        padded = tuple(int(-(-d // 16) * 16) for d in pb.image.shape)
        groups.setdefault((padded, kshape), []).append(i)
    if workers is None or workers < 1:
        workers = os.cpu_count() or 1
    tasks = []
    for (shape, kshape), idx in sorted(groups.items(), key=lambda kv: kv[0][0]):
        step = max(1, int(4_000_000 // (shape[0] * shape[1] * 8)))
        if workers > 1:  # one batch per thread at least
            step = min(step, -(-len(idx) // workers))
        tasks += [(shape, kshape, idx[lo : lo + step]) for lo in range(0, len(idx), step)]

    def run(task):
        shape, kshape, sub = task
        return sub, _fit_group([problems[i] for i in sub], shape, kshape, max_iter, tol)

    if workers > 1 and len(tasks) > 1:
        # numpy's array operations and scipy's FFTs release the GIL: threads share the work
        with ThreadPoolExecutor(workers) as ex:
            done = list(ex.map(run, tasks))
    else:
        done = [run(t) for t in tasks]
    for sub, res in done:
        for key in out:
            out[key][sub] = res[key]
    return out


def _fit_group(pbs, shape, kshape, max_iter, tol):
    B = len(pbs)
    H, W = shape
    data = np.zeros((B, H, W))
    wts = np.zeros((B, H, W))
    support = np.zeros((B, H, W))
    for k, pb in enumerate(pbs):
        h, w = pb.image.shape
        data[k, :h, :w] = pb.image
        wts[k, :h, :w] = pb.weights
        support[k, :h, :w] = 1.0
    padded = bool((support == 0).any())
    yy, xx = np.mgrid[0:H, 0:W].astype(float)
    yy32, xx32 = yy.astype(np.float32), xx.astype(np.float32)
    p = np.stack([pb.start for pb in pbs]).astype(float)
    if kshape is None:
        kf = kf32 = kf4 = None
    else:
        kf, full, off = _psf_transform(np.stack([pb.psf for pb in pbs]), shape)
        kf32 = kf.astype(np.complex64)[:, None]
        kf4 = kf[:, None]
    nvalid = (wts > 0).sum(axis=(1, 2)).astype(float)

    def clamp(pp):
        pp = pp.copy()
        pp[:, 2] = np.clip(pp[:, 2], N_MIN, N_MAX)
        return pp

    def residuals(pp, sel):
        bn, _ = _bn_coeffs(pp[:, 2])
        m, _ = _model_and_jac(pp, bn, bn, yy, xx, want_jac=False)
        if padded:
            m = m * support[sel]
        return wts[sel] * (data[sel] - conv_sel(m, kf, sel))

    def conv_sel(img, kern, sel):
        return img if kern is None else _convolve_same(img, kern[sel], full, off)

    def jacobian(pp, sel, res, single=True):
        """Derivatives of the weighted residuals ``res`` (at ``pp``) for the stamps ``sel``."""
        bn, dbn = _bn_coeffs(pp[:, 2])
        if single:
            f32 = np.float32
            _, jac = _model_and_jac(pp.astype(f32), bn.astype(f32), dbn.astype(f32), yy32, xx32)
        else:
            _, jac = _model_and_jac(pp, bn, dbn, yy, xx)
        if padded:
            jac *= support[sel][:, None]
        # During the iterations the derivatives only set the step direction, so they are
        # convolved in single precision (half the FFT cost); the residuals, which decide
        # whether a step is taken and where the fit ends, and the final derivatives, which
        # give the uncertainties, are in double precision. The model is linear in the
        # amplitude, so that derivative needs no convolution: w conv(m) = w data - res.
        out = np.empty((len(pp), 7, H * W))
        out[:, 1:] = -(
            wts[sel][:, None] * conv_sel(jac[:, 1:], kf32 if single else kf4, sel)
        ).reshape(len(pp), 6, -1)
        out[:, 0] = (res - (wts[sel] * data[sel]).reshape(len(pp), -1)) / pp[:, 0, None]
        return out

    all_idx = np.arange(B)
    p = clamp(p)
    r = residuals(p, all_idx).reshape(B, -1)
    chi2 = np.sum(r**2, axis=1)
    lam = np.full(B, LAMBDA0)
    active = np.isfinite(chi2)
    converged = np.zeros(B, bool)
    n_iter = np.zeros(B, int)
    for _ in range(max_iter):
        a = np.flatnonzero(active)
        if a.size == 0:
            break
        n_iter[a] += 1
        J = jacobian(p[a], a, r[a])  # (b, 7, N)
        A = np.einsum("bkn,bln->bkl", J, J)
        g = np.einsum("bkn,bn->bk", J, r[a])
        diag = np.maximum(np.einsum("bkk->bk", A), 1e-30)
        improved = np.zeros(a.size, bool)
        la = lam[a].copy()
        for _try in range(8):
            pend = ~improved
            M = A[pend] + la[pend, None, None] * (diag[pend, :, None] * np.eye(7))
            try:
                stp = np.linalg.solve(M, -g[pend][..., None])[..., 0]
            except np.linalg.LinAlgError:  # a singular system: pseudo-inverse step
                stp = (np.linalg.pinv(M) @ -g[pend][..., None])[..., 0]
            pn = clamp(p[a][pend] + stp)
            sel = a[pend]
            rn = residuals(pn, sel).reshape(sel.size, -1)
            cn = np.sum(rn**2, axis=1)
            ok = np.isfinite(cn) & (cn <= chi2[sel])
            if ok.any():
                s_ok = sel[ok]
                rel = (chi2[s_ok] - cn[ok]) / np.maximum(chi2[s_ok], 1e-300)
                p[s_ok], r[s_ok], chi2[s_ok] = pn[ok], rn[ok], cn[ok]
                done = rel < tol
                converged[s_ok[done]] = True
                active[s_ok[done]] = False
                pos = np.flatnonzero(pend)[ok]
                improved[pos] = True
            la = np.where(improved, la, la * 10.0)
            if improved.all():
                break
        lam[a] = np.where(improved, np.maximum(la * 0.3, 1e-12), la)
        stuck = a[~improved]
        converged[stuck] = True  # no downhill step even with heavy damping
        active[stuck] = False
    J = jacobian(p, all_idx, r, single=False)
    A = np.einsum("bkn,bln->bkl", J, J)
    dof = np.maximum(nvalid - 7, 1)
    chi2_dof = chi2 / dof
    cov = np.linalg.pinv(A)
    err = np.sqrt(np.clip(np.einsum("bkk->bk", cov), 0, None))
    err *= np.sqrt(np.maximum(chi2_dof, 1.0))[:, None]
    at_bound = (p[:, 2] <= N_MIN * (1 + 1e-9)) | (p[:, 2] >= N_MAX * (1 - 1e-9))
    return {
        "params": _postfit(p),
        "errors": err,
        "chi2_dof": chi2_dof,
        "converged": converged,
        "at_bound": at_bound,
        "n_iter": n_iter,
    }
