"""k-nearest neighbours: a strong local model on small, low-dimensional data."""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from autotune.data import DataProfile
from autotune.families._base import ModelFamily
from autotune.families._space import Space

__all__ = ["KNeighborsFamily"]

MAX_ROWS = 20_000
MAX_COLUMNS = 200


class KNeighborsFamily(ModelFamily):
    """``KNeighbors*`` on scaled features."""

    name = "knn"
    preprocessing = "scaled"
    relative_cost = 0.5

    def suitability(self, profile: DataProfile, timeout: float | None) -> str | None:
        if profile.n_rows > MAX_ROWS:
            return f"more than {MAX_ROWS:,} rows makes prediction slow"
        if profile.n_cols > MAX_COLUMNS:
            return f"more than {MAX_COLUMNS} columns dilutes distances"
        return None

    def suggest(self, space: Space, profile: DataProfile) -> dict[str, Any]:
        high = max(2, min(100, profile.n_rows // 5))
        return {
            "n_neighbors": space.int("n_neighbors", 1, high, log=True),
            "weights": space.categorical("weights", ["uniform", "distance"]),
            "p": space.categorical("p", [1, 2]),
        }

    def build(self, params: dict[str, Any], profile: DataProfile, seed: int) -> BaseEstimator:
        cls = KNeighborsRegressor if profile.task == "regression" else KNeighborsClassifier
        return cls(**params, n_jobs=-1)

    def starting_points(self, profile: DataProfile) -> list[dict[str, Any]]:
        return [
            {"n_neighbors": min(15, max(1, profile.n_rows // 5)), "weights": "distance", "p": 2}
        ]
