"""Proven starting configurations per family and data size.

They were chosen by ``benchmarks/portfolio.py``: on the training part of each of the
benchmark's 15 tasks, every family was tuned alone and its best configuration kept; every
such candidate (and the earlier hand-picked defaults) was then cross-validated on every
task, and a greedy selection per data size kept the few that together come closest to
the best candidate on most tasks. The first configuration of each list opens the search,
so it was also required to cost at most twice the earlier default (scikit-learn's, for
gradient boosting). Values outside a
dataset's search space are clipped into it (see ``ModelFamily.fit_point``).
"""

from __future__ import annotations

from typing import Any

from autotune.data import DataProfile

__all__ = ["SMALL_ROWS", "portfolio"]

#: Datasets up to this many rows use the "small" portfolio, larger ones the "large" one.
SMALL_ROWS = 2_000

PORTFOLIO: dict[str, dict[str, list[dict[str, Any]]]] = {
    "hgb": {
        "small": [
            {
                "learning_rate": 0.06904,
                "max_iter": 800,
                "max_leaf_nodes": 5,
                "min_samples_leaf": 2,
                "l2_regularization": 1.385e-06,
                "max_features": 0.8828,
            },
            {
                "learning_rate": 0.01495,
                "max_iter": 339,
                "max_leaf_nodes": 5,
                "min_samples_leaf": 19,
                "l2_regularization": 0.004497,
                "max_features": 0.5903,
            },
            {
                "learning_rate": 0.0443,
                "max_iter": 723,
                "max_leaf_nodes": 219,
                "min_samples_leaf": 10,
                "l2_regularization": 0.3484,
                "max_features": 0.6702,
            },
        ],
        "large": [
            {
                "learning_rate": 0.0443,
                "max_iter": 723,
                "max_leaf_nodes": 31,
                "min_samples_leaf": 3,
                "l2_regularization": 0.3484,
                "max_features": 0.6702,
            },
            {
                "learning_rate": 0.0443,
                "max_iter": 723,
                "max_leaf_nodes": 219,
                "min_samples_leaf": 10,
                "l2_regularization": 0.3484,
                "max_features": 0.6702,
            },
            {
                "learning_rate": 0.1653,
                "max_iter": 486,
                "max_leaf_nodes": 4,
                "min_samples_leaf": 32,
                "l2_regularization": 2.998,
                "max_features": 0.6658,
            },
        ],
    },
    "rf": {
        "small": [
            {
                "n_estimators": 200,
                "max_features": 0.3,
                "min_samples_leaf": 1,
                "max_depth": None,
                "class_weight": None,
            },
            {"n_estimators": 176, "max_features": 0.7294, "min_samples_leaf": 3, "max_depth": 16},
        ],
        "large": [
            {
                "n_estimators": 176,
                "max_features": 0.7294,
                "min_samples_leaf": 2,
                "max_depth": 16,
                "class_weight": "balanced",
            },
            {
                "n_estimators": 120,
                "max_features": 0.8021,
                "min_samples_leaf": 6,
                "max_depth": 8,
                "class_weight": "balanced",
            },
        ],
    },
    "et": {
        "small": [
            {
                "n_estimators": 176,
                "max_features": 0.7294,
                "min_samples_leaf": 2,
                "max_depth": 16,
                "class_weight": "balanced",
            },
            {"n_estimators": 176, "max_features": 0.7294, "min_samples_leaf": 4, "max_depth": 16},
        ],
        "large": [
            {"n_estimators": 247, "max_features": 0.9655, "min_samples_leaf": 3, "max_depth": 32},
            {"n_estimators": 390, "max_features": 0.9655, "min_samples_leaf": 2, "max_depth": 32},
        ],
    },
}


#: LightGBM's names for gradient boosting's knobs. Its portfolio is gradient boosting's,
#: renamed: the same kind of model with the same knobs, chosen by the same benchmark runs
#: (``LightGBMFamily.starting_points`` says where LightGBM's learning rate differs).
LIGHTGBM_NAMES = {
    "learning_rate": "learning_rate",
    "max_iter": "n_estimators",
    "max_leaf_nodes": "num_leaves",
    "min_samples_leaf": "min_child_samples",
    "l2_regularization": "reg_lambda",
    "max_features": "colsample_bynode",
}
PORTFOLIO["lgbm"] = {
    size: [{LIGHTGBM_NAMES[k]: v for k, v in point.items()} for point in points]
    for size, points in PORTFOLIO["hgb"].items()
}


def portfolio(family: str, profile: DataProfile) -> list[dict[str, Any]]:
    """The family's starting configurations for data of this size (unclipped)."""
    sizes = PORTFOLIO.get(family, {})
    size = "small" if profile.n_rows <= SMALL_ROWS else "large"
    return [dict(point) for point in sizes.get(size, sizes.get("small", []))]
