"""The compiled reverse-communication brentq against scipy.optimize.brentq."""

import math

import numpy as np
import pytest
import scipy.optimize as opt
from numba import njit

from morphoscope.measure import _roots

FUNCS = [
    (lambda x: x**3 - 2.0, 0.0, 2.0),
    (lambda x: math.cos(x) - x, 0.0, 1.0),
    (lambda x: math.exp(x) - 5.0, -3.0, 4.0),
    (lambda x: (x - 0.3) ** 5, -1.0, 2.0),  # flat root: many bisections
    (lambda x: math.tanh(50 * (x - 0.77)) + 0.01, 0.0, 1.0),
    (lambda x: x - 1.0, 1.0, 3.0),  # root at a bracket end
    (lambda x: x - 3.0, 1.0, 3.0),
    (lambda x: 1.0 / (x - 0.5) if x != 0.5 else 1e300, 0.0, 1.0),  # pole, no root
    (lambda x: math.floor(4 * x) - 1.5, 0.0, 1.0),  # step function
    (lambda x: x**2 - 4.0, 5.0, 0.0),  # reversed bracket
]


@pytest.mark.parametrize("k", range(len(FUNCS)))
@pytest.mark.parametrize("xtol", [2e-12, 1e-6, 0.1])
def test_same_root_as_scipy(k, xtol):
    f, a, b = FUNCS[k]
    ref, res = opt.brentq(f, a, b, xtol=xtol, full_output=True, disp=False)
    x, status, calls = _roots.brentq(f, a, b, xtol=xtol)
    assert x == ref  # bit for bit
    assert calls == res.function_calls
    assert status == (_roots.CONVERGED if res.converged else _roots.CONVERR)


def test_sign_error():
    with pytest.raises(ValueError, match="different signs") as exc:
        opt.brentq(lambda x: x * x + 1.0, -1.0, 2.0)
    x, status, calls = _roots.brentq(lambda x: x * x + 1.0, -1.0, 2.0)
    assert status == _roots.SIGNERR and calls == 2
    assert _roots.error_message(status) == str(exc.value)


@pytest.mark.parametrize("maxiter", [0, 1, 3])
def test_no_convergence(maxiter):
    f = lambda x: (x - 0.3) ** 5  # noqa: E731
    with pytest.raises(RuntimeError) as exc:
        opt.brentq(f, -1.0, 2.0, maxiter=maxiter)
    ref = opt.brentq(f, -1.0, 2.0, maxiter=maxiter, disp=False)
    x, status, calls = _roots.brentq(f, -1.0, 2.0, maxiter=maxiter)
    assert status == _roots.CONVERR and x == ref
    assert _roots.error_message(status, maxiter=maxiter) == str(exc.value)


@pytest.mark.parametrize("nan_at", [0.0, 1.0, None])
def test_nan_raises_like_scipy(nan_at):
    def f(x):
        if (nan_at is None and 0.4 < x < 0.6) or x == nan_at:
            return float("nan")
        return x - 0.5

    with pytest.raises(ValueError, match="is NaN") as exc:
        opt.brentq(f, 0.0, 1.0)
    x, status, _ = _roots.brentq(f, 0.0, 1.0)
    assert status == _roots.NANERR
    assert _roots.error_message(status, x) == str(exc.value)


@njit
def _cubic_root_njit(c, xtol):
    state = _roots.brentq_state()
    x = _roots.brentq_start(state, 0.0, 10.0, xtol, _roots.RTOL, _roots.MAXITER)
    n = 0
    while True:
        n += 1
        x, status = _roots.brentq_step(state, x * x * x - c)
        if status != _roots.CONTINUE:
            return x, status, n


def test_usable_inside_njit():
    for c in np.linspace(0.5, 900.0, 25):
        ref, res = opt.brentq(lambda x, c=c: x * x * x - c, 0.0, 10.0, xtol=1e-6, full_output=True)
        x, status, n = _cubic_root_njit(c, 1e-6)
        assert x == ref and status == _roots.CONVERGED and n == res.function_calls
