"""Regularised linear models: logistic regression, ridge and elastic net."""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator
from sklearn.linear_model import ElasticNet, LogisticRegression, Ridge

from autotune.data import DataProfile
from autotune.families._base import ModelFamily
from autotune.families._space import Space

__all__ = ["LinearFamily"]


class LinearFamily(ModelFamily):
    """Logistic regression for classes; ridge or elastic net for regression."""

    name = "linear"
    preprocessing = "scaled"
    relative_cost = 0.2

    def suggest(self, space: Space, profile: DataProfile) -> dict[str, Any]:
        if profile.is_classification:
            return {
                "C": space.float("C", 1e-4, 1e3, log=True),
                "class_weight": space.categorical("class_weight", [None, "balanced"]),
            }
        model = space.categorical("model", ["ridge", "elasticnet"])
        if model == "ridge":
            return {"model": model, "alpha": space.float("ridge_alpha", 1e-4, 1e3, log=True)}
        return {
            "model": model,
            "alpha": space.float("enet_alpha", 1e-5, 10.0, log=True),
            "l1_ratio": space.float("l1_ratio", 0.05, 1.0),
        }

    def build(self, params: dict[str, Any], profile: DataProfile, seed: int) -> BaseEstimator:
        if profile.is_classification:
            return LogisticRegression(
                C=params["C"],
                class_weight=params.get("class_weight"),
                l1_ratio=0.0,
                max_iter=2000,
                random_state=seed,
            )
        if params["model"] == "ridge":
            return Ridge(alpha=params["alpha"], random_state=seed)
        return ElasticNet(
            alpha=params["alpha"], l1_ratio=params["l1_ratio"], max_iter=5000, random_state=seed
        )

    def starting_points(self, profile: DataProfile) -> list[dict[str, Any]]:
        if profile.is_classification:
            return [{"C": 1.0, "class_weight": None}]
        return [{"model": "ridge", "ridge_alpha": 1.0}]
