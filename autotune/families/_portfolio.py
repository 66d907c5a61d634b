"""Proven starting configurations per family and data size.

They were chosen by ``benchmarks/portfolio.py``: on the training part of each of the
benchmark's 15 tasks, every family was tuned alone and its best configuration kept; every
such candidate (and the earlier hand-picked defaults) was then cross-validated on every
task, and a greedy selection per data size kept the few that together come closest to
the best candidate on most tasks. The first configuration of each list opens the search,
so it was also required to cost at most twice scikit-learn's defaults. Values outside a
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
                "learning_rate": 0.1,
                "max_iter": 100,
                "max_leaf_nodes": 31,
                "min_samples_leaf": 20,
                "l2_regularization": 1e-6,
                "max_features": 1.0,
            },
            {
                "learning_rate": 0.05,
                "max_iter": 400,
                "max_leaf_nodes": 15,
                "min_samples_leaf": 20,
                "l2_regularization": 1.0,
                "max_features": 0.7,
            },
        ],
    },
    "rf": {"small": [{"n_estimators": 200, "max_features": 0.3, "min_samples_leaf": 1}]},
    "et": {"small": [{"n_estimators": 200, "max_features": 0.3, "min_samples_leaf": 1}]},
}


def portfolio(family: str, profile: DataProfile) -> list[dict[str, Any]]:
    """The family's starting configurations for data of this size (unclipped)."""
    sizes = PORTFOLIO.get(family, {})
    size = "small" if profile.n_rows <= SMALL_ROWS else "large"
    return [dict(point) for point in sizes.get(size, sizes.get("small", []))]
