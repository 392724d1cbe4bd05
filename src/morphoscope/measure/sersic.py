"""Sérsic fits convolved with the PSF, many galaxies at once (batched Levenberg-Marquardt).

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

The same machinery fits two components sharing one centre (statmorph's ``DoubleSersic2D``,
``model="double"``; ``"double_tied"`` shares also the ellipticity and angle), holds chosen
parameters fixed (``SersicProblem(fixed=...)``), and runs on numpy arrays with scipy's FFTs
(default) or on PyTorch tensors on any device (``device="cuda"``): the algorithm is written
once against a small set of array operations (``_NumpyOps``, ``_TorchOps``).
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import fft
from scipy.special import gammaincinv

from ..exceptions import ParameterError

__all__ = ["DOUBLE_PARAMS", "DOUBLE_TIED_PARAMS", "PARAMS", "SersicProblem", "fit_sersic_batch"]

#: Parameter order of the fit.
PARAMS = ("amplitude", "rhalf", "n", "xc", "yc", "ellip", "theta")
#: Parameter order of the double-Sersic fit (statmorph's ``DoubleSersic2D``: two components
#: sharing one centre).
DOUBLE_PARAMS = (
    "xc",
    "yc",
    "amplitude1",
    "rhalf1",
    "n1",
    "ellip1",
    "theta1",
    "amplitude2",
    "rhalf2",
    "n2",
    "ellip2",
    "theta2",
)
#: Parameter order of the double-Sersic fit whose components share one ellipticity and angle
#: (statmorph's ``doublesersic_tied_ellip=True``).
DOUBLE_TIED_PARAMS = DOUBLE_PARAMS[:10]
#: For each model, the columns of every component's (amplitude, r_eff, n, x_0, y_0, ellip,
#: theta) in the model's parameter vector (a column in several components is shared).
_COMPONENTS = {
    "single": (np.arange(7),),
    "double": (np.array([2, 3, 4, 0, 1, 5, 6]), np.array([7, 8, 9, 0, 1, 10, 11])),
    "double_tied": (np.array([2, 3, 4, 0, 1, 5, 6]), np.array([7, 8, 9, 0, 1, 5, 6])),
}
_MODEL_PARAMS = {"single": PARAMS, "double": DOUBLE_PARAMS, "double_tied": DOUBLE_TIED_PARAMS}
N_MIN, N_MAX = 0.01, 20.0
#: Initial Levenberg-Marquardt damping (relative to the diagonal of J^T J).
LAMBDA0 = 1e-3
#: Iterations at most. statmorph's fitter (astropy's ``LevMarLSQFitter``, MINPACK's ``lmdif``)
#: stops after 500 model evaluations, at least 8 per iteration (7 for the finite-difference
#: derivatives), so after at most 62 of its iterations; its trust-region steps make more
#: progress per iteration than these damped steps, and with 62 this fit gives up on galaxies
#: that statmorph completes (one of the tests' needs 68), hence 100.
MAX_ITER = 100


class _NumpyOps:
    """The array operations of the fit on the CPU: numpy arrays, scipy's FFTs."""

    float32, float64, complex64 = np.float32, np.float64, np.complex64
    LinAlgError = np.linalg.LinAlgError
    cos, sin, sqrt, exp, log = np.cos, np.sin, np.sqrt, np.exp, np.log
    maximum, isfinite = np.maximum, np.isfinite
    where, empty = staticmethod(np.where), staticmethod(np.empty)
    einsum, flatnonzero = staticmethod(np.einsum), staticmethod(np.flatnonzero)
    clip = staticmethod(np.clip)
    solve, pinv = staticmethod(np.linalg.solve), staticmethod(np.linalg.pinv)

    def __init__(self, workers=1):
        self.workers = workers

    @staticmethod
    def errstate():
        return np.errstate(divide="ignore", invalid="ignore", over="ignore")

    @staticmethod
    def asarray(a):
        return np.asarray(a)

    @staticmethod
    def to_numpy(a):
        return a

    @staticmethod
    def astype(a, dtype):
        return a.astype(dtype)

    @staticmethod
    def copy(a):
        return a.copy()

    @staticmethod
    def zeros(n, dtype):
        return np.zeros(n, dtype)

    @staticmethod
    def full(n, value):
        return np.full(n, value)

    @staticmethod
    def eye(k):
        return np.eye(k)

    def rfft2(self, a, s):
        return fft.rfft2(a, s=s, axes=(-2, -1), workers=self.workers)

    def irfft2(self, a, s):
        return fft.irfft2(a, s=s, axes=(-2, -1), workers=self.workers)


class _TorchOps:
    """The same operations with PyTorch tensors on ``device`` (e.g. ``"cuda"``)."""

    def __init__(self, device):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.float32, self.float64, self.complex64 = torch.float32, torch.float64, torch.complex64
        self.LinAlgError = torch.linalg.LinAlgError
        self.cos, self.sin, self.sqrt = torch.cos, torch.sin, torch.sqrt
        self.exp, self.log, self.isfinite = torch.exp, torch.log, torch.isfinite
        self.einsum, self.solve, self.pinv = torch.einsum, torch.linalg.solve, torch.linalg.pinv

    @staticmethod
    def errstate():
        return contextlib.nullcontext()

    def maximum(self, a, lo):
        return self.torch.clamp(a, min=lo)

    def clip(self, a, lo, hi):
        return self.torch.clamp(a, lo, hi)

    def where(self, cond, a, b):
        return self.torch.where(cond, a, b)

    def empty(self, shape, dtype):
        return self.torch.empty(shape, dtype=dtype, device=self.device)

    def flatnonzero(self, a):
        return self.torch.nonzero(a).flatten()

    def asarray(self, a):
        return self.torch.as_tensor(np.asarray(a), device=self.device)

    @staticmethod
    def to_numpy(a):
        return a.detach().cpu().numpy()

    @staticmethod
    def astype(a, dtype):
        return a.to(dtype)

    @staticmethod
    def copy(a):
        return a.clone()

    def zeros(self, n, dtype):
        dt = {bool: self.torch.bool, int: self.torch.int64}[dtype]
        return self.torch.zeros(n, dtype=dt, device=self.device)

    def full(self, n, value):
        return self.torch.full((n,), value, dtype=self.torch.float64, device=self.device)

    def eye(self, k):
        return self.torch.eye(k, dtype=self.torch.float64, device=self.device)

    def rfft2(self, a, s):
        return self.torch.fft.rfft2(a, s=s, dim=(-2, -1))

    def irfft2(self, a, s):
        return self.torch.fft.irfft2(a, s=s, dim=(-2, -1))


_NUMPY = _NumpyOps()


class SersicProblem:
    """One galaxy to fit: stamp, per-pixel weights (1/sigma, 0 = ignore), start, PSF, and
    optionally which parameters are held at their start values (``fixed``, booleans in the
    order of the start vector)."""

    def __init__(self, image, weights, start, psf=None, fixed=None):
        self.image = np.asarray(image, float)
        self.weights = np.asarray(weights, float)
        self.start = np.asarray(start, float)
        self.psf = None if psf is None else np.asarray(psf, float)
        self.fixed = np.zeros(self.start.size, bool) if fixed is None else np.asarray(fixed, bool)


def _bn(n):
    return gammaincinv(2.0 * n, 0.5)


def _postfit(p, model="single"):
    """statmorph's ``_postfitting_fix`` of every component: positive r_eff, ellipticity in
    [0, 1), theta in [0, pi)."""
    out = p.copy()
    for idx in _COMPONENTS[model]:
        ia, ie, it = idx[1], idx[5], idx[6]
        a, e, t = p[:, ia].copy(), p[:, ie].copy(), p[:, it].copy()
        a = np.abs(a)
        e = np.where(e > 1, 2.0 - e, e)
        neg = e < 0
        a = np.where(neg, (1 - e) * a, a)
        t = np.where(neg, t + np.pi / 2, t)
        e = np.where(neg, e / (e - 1), e)
        out[:, ia], out[:, ie], out[:, it] = a, e, t - np.floor(t / np.pi) * np.pi
    return out


def _model_and_jac(p, bn, dbn, yy, xx, want_jac=True, xp=None):
    """Sersic images (B, H, W) and their derivatives (B, 7, H, W) for parameters p (B, 7)."""
    xp = _NUMPY if xp is None else xp
    # Extreme trial parameters overflow (z ** (1 / n) for n near its floor) or give inf * 0
    # far out; those pixels are floored or zeroed below.
    with xp.errstate():
        amp, reff, n, x0, y0, ellip, theta = (p[:, i, None, None] for i in range(7))
        bn = bn[:, None, None]
        ct, st = xp.cos(theta), xp.sin(theta)
        dx, dy = xx - x0, yy - y0
        xmaj = dx * ct + dy * st
        xmin = -dx * st + dy * ct
        q = 1.0 - ellip
        z2 = (xmaj / reff) ** 2 + (xmin / (q * reff)) ** 2
        z = xp.sqrt(xp.maximum(z2, 1e-24))
        u = z ** (1.0 / n)
        # The exponent is floored (at -300, a relative level of 5e-131, in double precision; at
        # -80, 2e-35, in single): far outside the galaxy the profile would otherwise underflow to
        # subnormal numbers, whose arithmetic is ~100 times slower on most CPUs.
        floor = -80.0 if z.dtype == xp.float32 else -300.0
        e = xp.maximum(-bn * (u - 1.0), floor)
        m = amp * xp.exp(e)
        if not want_jac:
            return m, None
        live = e > floor
        jac = xp.empty((p.shape[0], 7, *m.shape[1:]), m.dtype)
        dm_dz = xp.where(live, -m * bn * u / (n * z), 0.0)
        jac[:, 0] = xp.exp(e)
        jac[:, 1] = dm_dz * (-z / reff)
        dE_dn = -dbn[:, None, None] * (u - 1.0) + bn * u * xp.log(z) / n**2
        jac[:, 2] = xp.where(live, m * dE_dn, 0.0)
        r2 = reff**2
        jac[:, 3] = dm_dz * (-xmaj * ct / r2 + xmin * st / (q**2 * r2)) / z
        jac[:, 4] = dm_dz * (-xmaj * st / r2 - xmin * ct / (q**2 * r2)) / z
        jac[:, 5] = dm_dz * (xmin**2 / (q**3 * r2)) / z
        jac[:, 6] = dm_dz * (xmaj * xmin * (1.0 - 1.0 / q**2) / r2) / z
        jac[~xp.isfinite(jac)] = 0.0
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


def _psf_transform(psfs, shape, workers=1, xp=None):
    """Real FFTs of a stack of PSFs for :func:`_convolve_same` on stamps of ``shape``."""
    xp = _NumpyOps(workers) if xp is None else xp
    full = _same_fft_shape(shape, psfs.shape[1:])
    off = ((psfs.shape[1] - 1) // 2, (psfs.shape[2] - 1) // 2)
    return xp.rfft2(psfs, full), full, off


def _convolve_same(img, kern, full, off, workers=1, xp=None):
    """'Same'-mode convolution (as ``scipy.signal.fftconvolve(..., mode='same')``) of every
    stamp ``img[b, ...]`` with the PSF whose transform is ``kern[b]`` (broadcast over any
    middle axes, e.g. the seven derivatives), in the precision of ``img`` and ``kern``."""
    xp = _NumpyOps(workers) if xp is None else xp
    h, w = img.shape[-2:]
    f = xp.rfft2(img, full)
    f *= kern
    out = xp.irfft2(f, full)
    return out[..., off[0] : off[0] + h, off[1] : off[1] + w]


def fit_sersic_batch(
    problems: list[SersicProblem],
    *,
    max_iter: int = MAX_ITER,
    tol: float = 1e-7,
    workers: int = 1,
    device: str | None = None,
    model: str = "single",
) -> dict[str, np.ndarray]:
    """Fit a PSF-convolved Sérsic profile (or two) to every problem, batched by stamp shape.

    Parameters
    ----------
    problems : list of SersicProblem
        Stamps (float), weights ``1/sigma`` (0 = pixel not fitted), start parameters in
        :data:`PARAMS` order (:data:`DOUBLE_PARAMS`, :data:`DOUBLE_TIED_PARAMS` for the
        double models; stamp coordinates), optional PSF (odd-sized, centred) and parameters
        held fixed.
    max_iter : int
        Levenberg-Marquardt iterations at most (default :data:`MAX_ITER`); a galaxy still
        improving then is returned with ``converged`` False.
    tol : float
        A galaxy has converged when a step improves its chi^2 by less than ``tol``
        (relative) or no damped step improves it.
    workers : int
        Threads (-1 or 0: all cores); the batches are split between them. The result does
        not depend on it beyond the last bits of ill-conditioned fits.
    device : str, optional
        A PyTorch device (``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"cpu"``): the same
        algorithm runs on PyTorch tensors there, one batch after the other (``workers`` is
        ignored). None (default): numpy and scipy's FFTs on the CPU, the faster choice
        without a GPU. The two give the same fits within the fits' convergence tolerance
        (different FFT and reduction orders change the last bits, which can move the end
        point of a fit along a flat valley of chi^2).
    model : {"single", "double", "double_tied"}
        One Sérsic component, two sharing one centre (statmorph's ``DoubleSersic2D``), or two
        sharing also their ellipticity and angle (:data:`DOUBLE_TIED_PARAMS`).

    Returns
    -------
    dict
        ``params`` (n, p), ``errors`` (n, p) (0 for fixed parameters), ``chi2`` (n,),
        ``n_valid`` (n,) fitted pixels, ``chi2_dof`` (n,) (``chi2 / (n_valid - free
        parameters)``), ``converged`` (n,) bool, ``at_bound`` (n,) bool (a Sérsic index
        stuck at its limits), ``n_iter`` (n,) iterations. NaN rows for problems with no more
        valid pixels than free parameters.

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
    if model not in _COMPONENTS:
        raise ParameterError("model", model, f"one of {list(_COMPONENTS)}")
    n = len(problems)
    npar = len(_MODEL_PARAMS[model])
    out = {
        "params": np.full((n, npar), np.nan),
        "errors": np.full((n, npar), np.nan),
        "chi2": np.full(n, np.nan),
        "n_valid": np.zeros(n, int),
        "chi2_dof": np.full(n, np.nan),
        "converged": np.zeros(n, bool),
        "at_bound": np.zeros(n, bool),
        "n_iter": np.zeros(n, int),
    }
    groups: dict[tuple, list[int]] = {}
    for i, pb in enumerate(problems):
        nvalid = int(np.count_nonzero(pb.weights))
        if pb.start.size != npar:
            raise ParameterError(
                "problems", f"start of {pb.start.size} values", f"{npar} values for {model!r}"
            )
        if nvalid <= npar - int(pb.fixed.sum()) or not np.all(np.isfinite(pb.start)):
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
    if device is not None:
        xp = _TorchOps(device)
        workers = 1
    else:
        xp = _NUMPY
    tasks = []
    for (shape, kshape), idx in sorted(groups.items(), key=lambda kv: kv[0][0]):
        step = max(1, int(4_000_000 // (shape[0] * shape[1] * 8)))
        if workers > 1:  # one batch per thread at least
            step = min(step, -(-len(idx) // workers))
        tasks += [(shape, kshape, idx[lo : lo + step]) for lo in range(0, len(idx), step)]

    def run(task):
        shape, kshape, sub = task
        pbs = [problems[i] for i in sub]
        return sub, _fit_group(pbs, shape, kshape, max_iter, tol, xp, model)

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


def _fit_group(pbs, shape, kshape, max_iter, tol, xp=_NUMPY, model="single"):
    comps = _COMPONENTS[model]
    npar = len(_MODEL_PARAMS[model])
    n_idx = [int(c[2]) for c in comps]
    # columns of several components (the centre; ellipticity and angle when tied)
    shared = {int(k) for k in comps[0]} & {int(k) for c in comps[1:] for k in c}
    amp_idx = [int(c[0]) for c in comps]
    # Every derivative is convolved but the last amplitude's: the model is linear in it, so
    # w conv(S_last) = (w data - res) - sum of the other components' w conv(S_c).
    conv_cols = (
        slice(1, None) if model == "single" else [k for k in range(npar) if k != amp_idx[-1]]
    )
    n_conv = npar - 1
    B = len(pbs)
    H, W = shape
    data_np = np.zeros((B, H, W))
    wts_np = np.zeros((B, H, W))
    support_np = np.zeros((B, H, W))
    for k, pb in enumerate(pbs):
        h, w = pb.image.shape
        data_np[k, :h, :w] = pb.image
        wts_np[k, :h, :w] = pb.weights
        support_np[k, :h, :w] = 1.0
    padded = bool((support_np == 0).any())
    nvalid = (wts_np > 0).sum(axis=(1, 2)).astype(float)
    fixed_np = np.stack([pb.fixed for pb in pbs])
    any_fixed = bool(fixed_np.any())
    free = xp.asarray((~fixed_np).astype(float))[:, :, None]
    data, wts, support = xp.asarray(data_np), xp.asarray(wts_np), xp.asarray(support_np)
    yy_np, xx_np = np.mgrid[0:H, 0:W].astype(float)
    yy, xx = xp.asarray(yy_np), xp.asarray(xx_np)
    yy32, xx32 = xp.astype(yy, xp.float32), xp.astype(xx, xp.float32)
    p = xp.asarray(np.stack([pb.start for pb in pbs]).astype(float))
    if kshape is None:
        kf = kf32 = kf4 = None
    else:
        kf, full, off = _psf_transform(xp.asarray(np.stack([pb.psf for pb in pbs])), shape, xp=xp)
        kf32 = xp.astype(kf, xp.complex64)[:, None]
        kf4 = kf[:, None]

    def bn_coeffs(nn):
        bn, dbn = _bn_coeffs(xp.to_numpy(nn))
        return xp.asarray(bn), xp.asarray(dbn)

    def component(pp, idx):
        """A component's (amplitude, r_eff, n, x_0, y_0, ellip, theta)."""
        return pp if model == "single" else pp[:, idx]

    def clamp(pp):
        pp = xp.copy(pp)
        for k in n_idx:
            pp[:, k] = xp.clip(pp[:, k], N_MIN, N_MAX)
        return pp

    def residuals(pp, sel):
        m = None
        for idx in comps:
            q = component(pp, idx)
            bn, _ = bn_coeffs(q[:, 2])
            mc, _ = _model_and_jac(q, bn, bn, yy, xx, want_jac=False, xp=xp)
            m = mc if m is None else m + mc
        if padded:
            m = m * support[sel]
        return wts[sel] * (data[sel] - conv_sel(m, kf, sel))

    def conv_sel(img, kern, sel):
        return img if kern is None else _convolve_same(img, kern[sel], full, off, xp=xp)

    def jacobian(pp, sel, res, single_precision=True):
        """Derivatives of the weighted residuals ``res`` (at ``pp``) for the stamps ``sel``."""
        b = len(pp)
        jac = None
        for idx in comps:
            q = component(pp, idx)
            bn, dbn = bn_coeffs(q[:, 2])
            if single_precision:
                f32 = xp.float32
                q, bn, dbn = xp.astype(q, f32), xp.astype(bn, f32), xp.astype(dbn, f32)
                _, jc = _model_and_jac(q, bn, dbn, yy32, xx32, xp=xp)
            else:
                _, jc = _model_and_jac(q, bn, dbn, yy, xx, xp=xp)
            if model == "single":
                jac = jc
                continue
            if jac is None:
                jac = xp.empty((b, npar, H, W), jc.dtype)
                for k in shared:
                    jac[:, k] = 0.0
            for k in range(7):
                if int(idx[k]) in shared:
                    jac[:, idx[k]] += jc[:, k]
                else:
                    jac[:, idx[k]] = jc[:, k]
        if padded:
            jac *= support[sel][:, None]
        # During the iterations the derivatives only set the step direction, so they are
        # convolved in single precision (half the FFT cost); the residuals, which decide
        # whether a step is taken and where the fit ends, and the final derivatives, which
        # give the uncertainties, are in double precision.
        out = xp.empty((b, npar, H * W), xp.float64)
        out[:, conv_cols] = -(
            wts[sel][:, None] * conv_sel(jac[:, conv_cols], kf32 if single_precision else kf4, sel)
        ).reshape(b, n_conv, -1)
        num = res - (wts[sel] * data[sel]).reshape(b, -1)
        for c in amp_idx[:-1]:
            num = num - pp[:, c, None] * out[:, c]
        out[:, amp_idx[-1]] = num / pp[:, amp_idx[-1], None]
        if any_fixed:  # fixed parameters: no derivative, hence no step
            out *= free[sel]
        return out

    all_idx = xp.asarray(np.arange(B))
    p = clamp(p)
    r = residuals(p, all_idx).reshape(B, -1)
    chi2 = (r**2).sum(1)
    lam = xp.full(B, LAMBDA0)
    # The double models' damping follows the gain ratio (Nielsen 1999): a step that the
    # linear model predicted badly keeps the damping up, which keeps two-component fits out
    # of the runaway toward n -> 20 that a fixed shrink factor allows. The single fit keeps
    # the fixed factor (its end points are those compared with statmorph's).
    nielsen = model != "single"
    active = xp.isfinite(chi2)
    converged = xp.zeros(B, bool)
    n_iter = xp.zeros(B, int)
    eye = xp.eye(npar)
    for _ in range(max_iter):
        a = xp.flatnonzero(active)
        if len(a) == 0:
            break
        n_iter[a] += 1
        J = jacobian(p[a], a, r[a])  # (b, 7, N)
        A = xp.einsum("bkn,bln->bkl", J, J)
        g = xp.einsum("bkn,bn->bk", J, r[a])
        diag = xp.maximum(xp.einsum("bkk->bk", A), 1e-30)
        improved = xp.zeros(len(a), bool)
        la = xp.copy(lam[a])
        if nielsen:
            nu = xp.full(len(a), 2.0)
            fac = xp.full(len(a), 1.0 / 3.0)
        for _try in range(8):
            pend = ~improved
            M = A[pend] + la[pend, None, None] * (diag[pend, :, None] * eye)
            try:
                stp = xp.solve(M, -g[pend][..., None])[..., 0]
            except xp.LinAlgError:  # a singular system: pseudo-inverse step
                stp = (xp.pinv(M) @ -g[pend][..., None])[..., 0]
            pn = clamp(p[a][pend] + stp)
            sel = a[pend]
            rn = residuals(pn, sel).reshape(len(sel), -1)
            cn = (rn**2).sum(1)
            ok = xp.isfinite(cn) & (cn <= chi2[sel])
            if ok.any():
                s_ok = sel[ok]
                pos = xp.flatnonzero(pend)[ok]
                if nielsen:  # gain ratio: actual over predicted reduction of chi^2
                    h = stp[ok]
                    pred = -(g[pend][ok] * h).sum(1) + la[pos] * (diag[pos] * h**2).sum(1)
                    rho = (chi2[s_ok] - cn[ok]) / xp.maximum(pred, 1e-300)
                    fac[pos] = xp.maximum(1.0 - (2.0 * rho - 1.0) ** 3, 1.0 / 3.0)
                rel = (chi2[s_ok] - cn[ok]) / xp.maximum(chi2[s_ok], 1e-300)
                p[s_ok], r[s_ok], chi2[s_ok] = pn[ok], rn[ok], cn[ok]
                done = rel < tol
                converged[s_ok[done]] = True
                active[s_ok[done]] = False
                improved[pos] = True
            if nielsen:
                la = xp.where(improved, la, la * nu)
                nu = xp.where(improved, nu, nu * 2.0)
            else:
                la = xp.where(improved, la, la * 10.0)
            if improved.all():
                break
        shrink = fac if nielsen else 0.3
        lam[a] = xp.where(improved, xp.maximum(la * shrink, 1e-12), la)
        stuck = a[~improved]
        converged[stuck] = True  # no downhill step even with heavy damping
        active[stuck] = False
    J = jacobian(p, all_idx, r, single_precision=False)
    A = xp.to_numpy(xp.einsum("bkn,bln->bkl", J, J))
    p = xp.to_numpy(p)
    dof = np.maximum(nvalid - (npar - fixed_np.sum(axis=1)), 1)
    chi2 = xp.to_numpy(chi2)
    chi2_dof = chi2 / dof
    cov = np.linalg.pinv(A)
    err = np.sqrt(np.clip(np.einsum("bkk->bk", cov), 0, None))
    err *= np.sqrt(np.maximum(chi2_dof, 1.0))[:, None]
    err[fixed_np] = 0.0
    at_bound = np.zeros(B, bool)
    for k in n_idx:
        at_bound |= (p[:, k] <= N_MIN * (1 + 1e-9)) | (p[:, k] >= N_MAX * (1 - 1e-9))
    return {
        "params": _postfit(p, model),
        "errors": err,
        "chi2": chi2,
        "n_valid": nvalid.astype(int),
        "chi2_dof": chi2_dof,
        "converged": xp.to_numpy(converged),
        "at_bound": at_bound,
        "n_iter": xp.to_numpy(n_iter),
    }
