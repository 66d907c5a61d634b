"""Shared fixtures: small real datasets and a fresh SQLite store per test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris


@pytest.fixture
def storage(tmp_path) -> str:
    """A real SQLite study store in the test's own folder."""
    return f"sqlite:///{tmp_path / 'studies' / 'autotune.db'}"


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch) -> None:
    """Never let a test write into the repository's own studies/ folder."""
    monkeypatch.setenv("AUTOTUNE_STORAGE", f"sqlite:///{tmp_path / 'default' / 'autotune.db'}")


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for the whole session (started on first use)."""
    from tests.pg import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """The shared store suite runs over SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'studies' / 'autotune.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def binary_data() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:300, :10], y.iloc[:300]


@pytest.fixture(scope="session")
def multiclass_data() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y.map({0: "setosa", 1: "versicolor", 2: "virginica"})


@pytest.fixture(scope="session")
def regression_data() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:300], y.iloc[:300]


def make_mixed(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Numeric, categorical (pandas category), boolean and datetime columns with gaps."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue", "teal"], n)
    city = rng.choice([f"city{i}" for i in range(30)], n)
    x1 = rng.normal(size=n)
    x2 = rng.uniform(0, 10, size=n)
    flag = rng.random(n) > 0.5
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    logit = 1.5 * x1 + (colour == "red") * 1.0 - 0.2 * x2 + flag * 0.5
    y = pd.Series(np.where(logit + rng.normal(scale=0.5, size=n) > -0.5, "yes", "no"), name="buy")
    X = pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "colour": pd.Categorical(colour),
            "city": pd.Categorical(city),
            "flag": flag,
            "when": when,
        }
    )
    X.loc[rng.random(n) < 0.1, "x1"] = np.nan
    X.loc[rng.random(n) < 0.1, "colour"] = np.nan
    return X, y


@pytest.fixture(scope="session")
def mixed_data() -> tuple[pd.DataFrame, pd.Series]:
    return make_mixed()
