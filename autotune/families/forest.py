"""Random forests and extremely randomised trees, which share one search space."""

from __future__ import annotations

from typing import Any, ClassVar

from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

from autotune.data import DataProfile
from autotune.families._base import ModelFamily
from autotune.families._portfolio import portfolio
from autotune.families._space import Space

__all__ = ["ExtraTreesFamily", "RandomForestFamily"]


class _ForestFamily(ModelFamily):
    preprocessing = "trees"
    resource = "n_estimators"
    classifier: ClassVar[type[BaseEstimator]]
    regressor: ClassVar[type[BaseEstimator]]

    def _max_trees(self, profile: DataProfile) -> int:
        # Tree count is the family's cost; keep it affordable on large data.
        if profile.n_rows <= 5_000:
            return 500
        return 300 if profile.n_rows <= 20_000 else 150

    def suggest(self, space: Space, profile: DataProfile) -> dict[str, Any]:
        params: dict[str, Any] = {
            "n_estimators": space.int("n_estimators", 50, self._max_trees(profile), log=True),
            "max_features": space.float("max_features", 0.05, 1.0),
            "min_samples_leaf": space.int(
                "min_samples_leaf", 1, max(1, min(50, profile.n_rows // 20)), log=True
            ),
            "max_depth": space.categorical("max_depth", [None, 8, 16, 32]),
        }
        if profile.is_classification:
            params["class_weight"] = space.categorical("class_weight", [None, "balanced"])
        return params

    def build(self, params: dict[str, Any], profile: DataProfile, seed: int) -> BaseEstimator:
        cls = self.regressor if profile.task == "regression" else self.classifier
        return cls(**params, n_jobs=-1, random_state=seed)

    def starting_points(self, profile: DataProfile) -> list[dict[str, Any]]:
        return [self.fit_point(point, profile) for point in portfolio(self.name, profile)]


class RandomForestFamily(_ForestFamily):
    """``RandomForest*``: bootstrapped trees, robust with little tuning."""

    name = "rf"
    classifier = RandomForestClassifier
    regressor = RandomForestRegressor


class ExtraTreesFamily(_ForestFamily):
    """``ExtraTrees*``: random split points, faster and often smoother than a forest."""

    name = "et"
    classifier = ExtraTreesClassifier
    regressor = ExtraTreesRegressor
