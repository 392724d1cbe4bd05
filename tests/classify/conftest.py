"""Shared data of the classify tests: iris as a Table, small synthetic catalogs."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def iris_table() -> Table:
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=False)
    table = Table(iris.data, names=IRIS_FEATURES)
    table["species"] = iris.target_names[iris.target]
    return table


@pytest.fixture(autouse=True, scope="session")
def _one_openmp_thread():
    # Histogram gradient boosting busy-waits in OpenMP barriers when the cores are shared
    # with other processes; one thread keeps these small fits fast and predictable.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="session")
def iris():
    return iris_table()


def blobs(n_per_class: int = 30, seed: int = 0, names=("spheroid", "disk", "irregular")) -> Table:
    """Three well separated classes in 3 morphology-named features, plus nuisance columns."""
    rng = np.random.default_rng(seed)
    centres = {
        "spheroid": (0.6, -2.2, 3.5),
        "disk": (0.4, -1.7, 2.6),
        "irregular": (0.5, -1.1, 2.2),
    }
    rows = []
    for k, name in enumerate(names):
        c = np.array(centres.get(name, (0.2 * k, -1.0 - 0.5 * k, 2.0 + k)))
        rows.append(c + rng.normal(0, [0.03, 0.12, 0.25], size=(n_per_class, 3)))
    x = np.vstack(rows)
    t = Table()
    t["label"] = np.arange(1, len(x) + 1)
    t["xc_centroid"] = rng.uniform(0, 100, len(x))
    t["yc_centroid"] = rng.uniform(0, 100, len(x))
    t["gini"] = x[:, 0]
    t["m20"] = x[:, 1]
    t["concentration"] = x[:, 2]
    t["flag"] = np.zeros(len(x), np.int64)
    t["class"] = np.repeat(list(names), n_per_class)
    return t


@pytest.fixture()
def blob_table():
    return blobs()
