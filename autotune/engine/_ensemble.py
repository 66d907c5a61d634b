"""Greedy ensemble selection over out-of-fold predictions (Caruana et al., 2004).

Every finished trial leaves its out-of-fold predictions; the ensemble adds, with
replacement, whichever trial most improves the pooled out-of-fold score. It becomes the
final model only when that score beats the best single trial's on the same predictions
(and, for regression, on rows that did not make the choice: ``holds_out``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold, StratifiedKFold

from autotune.artifacts import estimated_bytes, estimated_save_seconds
from autotune.metrics import Metric

__all__ = ["EnsembleModel", "OutOfFold", "choose_ensemble", "holds_out", "select_ensemble"]

#: Candidates kept per run (best by score), each family's best kept besides, and greedy
#: rounds of selection.
MAX_CANDIDATES = 20
FAMILY_CANDIDATES = 2
ROUNDS = 25
#: The fold models of this many of the best candidates are kept, within this much memory.
KEEP_MODELS = 8
MAX_MODEL_BYTES = 600_000_000


class OutOfFold:
    """The out-of-fold predictions of the best trials of this run, in row order, and the
    fold models of the very best: averaged, those are a final model without a refit.

    Each family's ``FAMILY_CANDIDATES`` best trials stay candidates even outside the
    ``limit`` best: a greedy ensemble gains from different models, and on small data the
    many near-equal trials of one family can fill the list (on wine, twenty logistic
    regressions pushed out gradient boosting, whose blend with them was the better model).
    """

    def __init__(self, metric: Metric, limit: int = MAX_CANDIDATES) -> None:
        self.metric = metric
        self.limit = limit
        self.items: dict[int, tuple[float, np.ndarray]] = {}
        self.fit_times: dict[int, float] = {}
        self.groups: dict[int, str] = {}
        self.models: dict[int, list[Any]] = {}
        self._bytes: dict[int, int] = {}

    def _ranked(self) -> list[int]:
        return sorted(
            self.items, key=lambda n: self.items[n][0], reverse=self.metric.greater_is_better
        )

    def add(
        self,
        number: int,
        score: float,
        prediction: np.ndarray,
        fit_time: float,
        models: Sequence[Any] = (),
        family: str = "",
    ) -> None:
        self.items[number] = (score, prediction)
        self.fit_times[number] = fit_time
        self.groups[number] = family
        if models:
            self.models[number] = list(models)
            self._bytes[number] = sum(estimated_bytes(m) for m in models)
        ranked = self._ranked()
        candidates, seen = set(ranked[: self.limit]), Counter[str]()
        for n in ranked:
            seen[self.groups[n]] += 1
            if seen[self.groups[n]] <= FAMILY_CANDIDATES:
                candidates.add(n)
        for dropped in set(ranked) - candidates:
            del self.items[dropped], self.fit_times[dropped], self.groups[dropped]
        kept, total = set(), 0
        for n in [n for n in ranked if n in candidates and n in self.models][:KEEP_MODELS]:
            if total + self._bytes[n] <= MAX_MODEL_BYTES:
                kept.add(n)
                total += self._bytes[n]
        for n in set(self.models) - kept:
            del self.models[n], self._bytes[n]

    def best(self, k: int) -> list[int]:
        """The k best candidates, best first."""
        return self._ranked()[:k]

    def family_bests(self, k: int) -> list[int]:
        """The best candidate of each of the k best families, best first: a greedy ensemble
        blends different models, so these are the members it most likely takes."""
        firsts: dict[str, int] = {}
        for n in self._ranked():
            firsts.setdefault(self.groups[n], n)
        return list(firsts.values())[:k]

    def save_seconds(self, number: int) -> float:
        """How long saving a candidate's kept fold models takes (0 without any)."""
        return estimated_save_seconds(self.models.get(number, ()))


def _greedy(
    metric: Metric, predictions: list[np.ndarray], y: np.ndarray, classes: np.ndarray, rounds: int
) -> np.ndarray:
    """How many times each prediction is picked, adding with replacement the one that most
    improves the running average."""
    counts = np.zeros(len(predictions))
    total = np.zeros_like(predictions[0])
    for step in range(1, rounds + 1):
        scores = [metric.score(y, (total + p) / step, classes) for p in predictions]
        pick = _best_index(metric, scores)
        counts[pick] += 1
        total = total + predictions[pick]
    return counts


def _best_index(metric: Metric, scores: Sequence[float]) -> int:
    return int(np.argmax(scores) if metric.greater_is_better else np.argmin(scores))


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
    counts = _greedy(metric, predictions, y, classes, rounds)
    weights = {numbers[i]: float(c / counts.sum()) for i, c in enumerate(counts) if c}
    final = metric.score(y, sum(w * oof.items[n][1] for n, w in weights.items()), classes)
    return weights, float(final), float(singles[_best_index(metric, singles)])


def holds_out(
    oof: OutOfFold, y: np.ndarray, classes: np.ndarray, seed: int = 0, rounds: int = ROUNDS
) -> bool:
    """Whether the ensemble still beats the best single trial on rows it was not chosen on.

    Choosing among many trials by their score on the very rows that score them flatters
    the choice, and an ensemble, with more freedom, more so: on a few hundred rows it can
    look better out of fold and be worse on new data. So each half of the rows makes both
    choices (the ensemble's weights, the best single trial) and the other half scores them;
    the ensemble holds when its mean held-out score is the better.
    """
    metric = oof.metric
    predictions = [p for _, p in oof.items.values()]
    stratify = classes.size > 0 and np.bincount(y.astype(int)).min(initial=2) >= 2
    splitter = (
        StratifiedKFold(2, shuffle=True, random_state=seed)
        if stratify
        else KFold(2, shuffle=True, random_state=seed)
    )
    ensemble, single = [], []
    try:
        for choose, check in splitter.split(np.zeros(len(y)), y):
            chosen = [p[choose] for p in predictions]
            counts = _greedy(metric, chosen, y[choose], classes, rounds)
            blend = sum(c * p[check] for c, p in zip(counts, predictions, strict=True))
            ensemble.append(metric.score(y[check], blend / counts.sum(), classes))
            singles = [metric.score(y[choose], p, classes) for p in chosen]
            best = predictions[_best_index(metric, singles)]
            single.append(metric.score(y[check], best[check], classes))
    except ValueError:  # a half without every class: no check is possible, keep the choice
        return True
    return metric.better(float(np.mean(ensemble)), float(np.mean(single)))


def choose_ensemble(
    oof: OutOfFold,
    y: np.ndarray,
    classes: np.ndarray,
    rival: float | None = None,
    seed: int = 0,
) -> tuple[dict[int, float], float, float] | None:
    """The ensemble's weights and scores (as ``select_ensemble``) when it should be the final
    model, else None.

    It must have two members or more, beat the best single trial out of fold, and beat
    ``rival``: the score of a better trial without out-of-fold predictions (scored on a
    holdout, or in an earlier run). A regression ensemble must also beat the best single
    trial on rows it was not chosen on. Classifiers skip that check: averaging the
    probabilities of different models tempers the over-confident answers that a few
    hundred out-of-fold rows cannot show (one confident mistake in a hundred new rows costs
    more log loss than all the rest), so there the ensemble's small out-of-fold edge is
    worth more than it looks.
    """
    weights, score, best_single = select_ensemble(oof, y, classes)
    metric = oof.metric
    if len(weights) < 2 or not metric.better(score, best_single):
        return None
    if rival is not None and not metric.better(score, rival):
        return None
    if metric.needs == "value" and not holds_out(oof, y, classes, seed):
        return None
    return weights, score, best_single


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
        if method == "predict_proba":
            parts = [self._all_classes(m, p) for m, p in zip(self.members, parts, strict=True)]
        return sum(w * p for w, p in zip(self.weights, parts, strict=True))

    def _all_classes(self, member: Any, proba: np.ndarray) -> np.ndarray:
        """A member fitted on a fold without some rare class gives it probability zero."""
        if proba.shape[1] == self.n_classes:
            return proba
        full = np.zeros((proba.shape[0], self.n_classes))
        full[:, np.asarray(member.classes_, dtype=int)] = proba
        return full

    def predict_proba(self, X: Any) -> np.ndarray:
        return self._average("predict_proba", X)

    def predict(self, X: Any) -> np.ndarray:
        if self.regression:
            return self._average("predict", X)
        return np.argmax(self.predict_proba(X), axis=1)
