"""Greedy ensemble selection over out-of-fold predictions (Caruana et al., 2004).

Every finished trial leaves its out-of-fold predictions; the ensemble adds, with
replacement, whichever trial most improves the pooled out-of-fold score. It becomes the
final model only when that score beats the best single trial's on the same predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from autotune.metrics import Metric

__all__ = ["EnsembleModel", "OutOfFold", "select_ensemble"]

#: Candidates kept per run (best by score) and greedy rounds of selection.
MAX_CANDIDATES = 20
ROUNDS = 25


class OutOfFold:
    """The out-of-fold predictions of the best trials of this run, in row order."""

    def __init__(self, metric: Metric, limit: int = MAX_CANDIDATES) -> None:
        self.metric = metric
        self.limit = limit
        self.items: dict[int, tuple[float, np.ndarray]] = {}
        self.fit_times: dict[int, float] = {}

    def add(self, number: int, score: float, prediction: np.ndarray, fit_time: float) -> None:
        self.items[number] = (score, prediction)
        self.fit_times[number] = fit_time
        if len(self.items) > self.limit:
            ranked = sorted(
                self.items, key=lambda n: self.items[n][0], reverse=self.metric.greater_is_better
            )
            for dropped in ranked[self.limit :]:
                del self.items[dropped]
                del self.fit_times[dropped]

    def fit_time_of_best(self, k: int) -> float:
        """Summed fold fit time of the k best candidates: what refitting an ensemble costs."""
        ranked = sorted(
            self.items, key=lambda n: self.items[n][0], reverse=self.metric.greater_is_better
        )
        return sum(self.fit_times[n] for n in ranked[:k])


def select_ensemble(
    oof: OutOfFold, y: np.ndarray, classes: np.ndarray, rounds: int = ROUNDS
) -> tuple[dict[int, float], float, float]:
    """Pick ensemble weights greedily.

    Returns:
        Trial number → weight, the ensemble's pooled out-of-fold score, and the best single
        trial's pooled out-of-fold score.
    """
    metric = oof.metric
    numbers = list(oof.items)
    if not numbers:
        return {}, float("nan"), float("nan")
    predictions = [oof.items[n][1] for n in numbers]
    singles = [metric.score(y, p, classes) for p in predictions]
    best_single = max(singles) if metric.greater_is_better else min(singles)
    counts = np.zeros(len(numbers))
    total = np.zeros_like(predictions[0])
    best_score = float("nan")
    for step in range(1, rounds + 1):
        scores = [metric.score(y, (total + p) / step, classes) for p in predictions]
        pick = int(np.argmax(scores) if metric.greater_is_better else np.argmin(scores))
        counts[pick] += 1
        total = total + predictions[pick]
        if np.isnan(best_score) or metric.better(scores[pick], best_score):
            best_score = scores[pick]
    weights = {numbers[i]: float(c / counts.sum()) for i, c in enumerate(counts) if c}
    final = metric.score(y, sum(w * oof.items[n][1] for n, w in weights.items()), classes)
    return weights, float(final), float(best_single)


class EnsembleModel(BaseEstimator):
    """A weighted average of fitted pipelines' probabilities (or values, for regression).

    Args:
        members: Fitted pipelines that take raw data.
        weights: One weight per member, summing to one.
        regression: Average ``predict`` instead of ``predict_proba``.
        n_classes: Number of classes, for the probability matrix.
    """

    def __init__(
        self,
        members: Sequence[Any] = (),
        weights: Sequence[float] = (),
        regression: bool = False,
        n_classes: int = 0,
    ) -> None:
        self.members = members
        self.weights = weights
        self.regression = regression
        self.n_classes = n_classes

    def fit(self, X: Any, y: Any = None) -> EnsembleModel:
        """Members arrive fitted; fitting only records the classes."""
        self.classes_ = np.arange(self.n_classes)
        return self

    def _average(self, method: str, X: Any) -> np.ndarray:
        parts = [np.asarray(getattr(m, method)(X), dtype=float) for m in self.members]
        return sum(w * p for w, p in zip(self.weights, parts, strict=True))

    def predict_proba(self, X: Any) -> np.ndarray:
        return self._average("predict_proba", X)

    def predict(self, X: Any) -> np.ndarray:
        if self.regression:
            return self._average("predict", X)
        return np.argmax(self.predict_proba(X), axis=1)
