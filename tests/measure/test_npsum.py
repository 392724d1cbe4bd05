"""The compiled pairwise summation equals numpy's ``np.sum`` bit for bit."""

import numpy as np

from morphoscope.measure._npsum import np_sum, np_sums


def test_equals_numpy_sum_for_every_length():
    rng = np.random.default_rng(0)
    for n in [*range(0, 300), 513, 1000, 1601, 4097, 20000]:
        a = rng.standard_normal(n) * 10.0 ** rng.uniform(-6, 6, n)
        assert np_sum(a, n) == np.sum(a), n
        if n % 9 == 0 and n:
            assert np_sum(a, n) == np.sum(a.reshape(9, -1)), n
        rows = rng.standard_normal((3, n + 5))
        assert list(np_sums(rows, 3, n)) == [np.sum(r[:n]) for r in rows], n


def test_differs_from_a_plain_loop():
    """The summation order matters: a sequential sum of these values is another float."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal(5000) * 10.0 ** rng.uniform(-8, 8, 5000)
    plain = 0.0
    for v in a:
        plain += v
    assert np_sum(a, a.size) == np.sum(a) != plain
