"""The cross-validated objective: sample a family and its parameters, fit and score folds."""

from __future__ import annotations

import contextlib
import math
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from autotune.data import DataProfile, coerce_frame
from autotune.engine._ensemble import OutOfFold
from autotune.engine._pruning import HALVING_RATE, WILCOXON_MIN_STEPS, halving_prunes
from autotune.families import FitContext, ModelFamily, Space
from autotune.families._preprocess import SchemaAdapter, make_preprocessor
from autotune.metrics import Metric

__all__ = [
    "FAMILY_PARAM",
    "LOOK_KEY",
    "FamilyStats",
    "Objective",
    "fit_threads",
    "predict_scores",
]

FAMILY_PARAM = "family"
#: The user attribute that holds a trial's early-look score (see ``Objective``).
LOOK_KEY = "early_look"
#: After this many failures without a single success, a family is dropped from the study.
MAX_FAILURES = 3
#: Up to this many rows, models fit and predict on one thread (OpenMP and BLAS).
SERIAL_ROWS = 10_000


def fit_threads(profile: DataProfile) -> contextlib.AbstractContextManager[Any]:
    """One thread on small data: there, starting and synchronising threads costs more than
    it saves, and spinning OpenMP threads slow a fit tenfold when other processes share
    the cores."""
    if profile.n_rows <= SERIAL_ROWS:
        return threadpool_limits(1)
    return contextlib.nullcontext()


@dataclass
class FamilyStats:
    """What the run has measured about one family: cost per fold and failures."""

    fold_times: list[float] = field(default_factory=list)
    look_times: list[float] = field(default_factory=list)
    n_ok: int = 0
    n_failed: int = 0
    dropped: str | None = None
    announced: bool = False

    def expected_fold_time(self) -> float | None:
        if self.fold_times:
            return float(np.median(self.fold_times[-10:]))
        if self.look_times:  # a family whose trials all stopped at their early look
            return HALVING_RATE * float(np.median(self.look_times[-10:]))
        return None


class DeadlineReached(Exception):
    """Raised inside a trial when its next fold would overrun the time budget."""


def predict_scores(model: Any, X: Any, profile: DataProfile) -> np.ndarray:
    """Class probabilities aligned to all classes, or regression values."""
    if profile.task == "regression":
        return np.asarray(model.predict(X), dtype=float).ravel()
    proba = np.asarray(model.predict_proba(X), dtype=float)
    seen = np.asarray(getattr(model, "classes_", np.arange(proba.shape[1])), dtype=int)
    if proba.shape[1] == profile.n_classes and np.array_equal(seen, np.arange(len(seen))):
        return proba
    full = np.zeros((proba.shape[0], profile.n_classes))
    full[:, seen] = proba
    return full


class Objective:
    """Scores one trial by K-fold cross-validation with a report after every fold.

    With ``early_looks`` (large data, where folds are too few for the Wilcoxon test), a
    trial first trains cheaply on the first fold, and successive halving across all
    families decides whether it goes on. Preprocessing is fitted once per fold and kind,
    then reused by every trial that needs it, because it does not depend on the
    hyperparameters. The models of the first ``bag_folds`` folds of the best trials are
    kept (see ``OutOfFold``), so that the final model need not refit them.
    """

    def __init__(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        profile: DataProfile,
        families: Sequence[ModelFamily],
        metric: Metric,
        secondary: Sequence[Metric],
        splits: list[tuple[np.ndarray, np.ndarray]],
        *,
        seed: int,
        grid: bool = False,
        strategy: str = "auto",
        deadline: float | None = None,
        on_trial_start: Any = None,
        first_prune_step: int = WILCOXON_MIN_STEPS,
        early_looks: bool = False,
        bag_folds: int | None = None,
    ) -> None:
        self.X = coerce_frame(X, profile.schema)
        self.y = y
        self.profile = profile
        self.families = {f.name: f for f in families}
        self.metric = metric
        self.secondary = list(secondary)
        self.splits = splits
        self.seed = seed
        self.grid = grid
        self.strategy = strategy
        self.deadline = deadline
        self.on_trial_start = on_trial_start
        self.first_prune_step = first_prune_step
        self.early_looks = early_looks
        self.bag_folds = bag_folds
        self.stats: dict[str, FamilyStats] = {name: FamilyStats() for name in self.families}
        self.classes = np.asarray(profile.classes, dtype=object)
        self.oof = OutOfFold(metric)
        #: The best network of the run, trained on the first fold's rows, with its score:
        #: early stopping chose its epochs on the rest, so it is a final model as it is.
        self.holdout_best: tuple[int, float, Pipeline] | None = None
        self._cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        self._preps: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()

    # -- preprocessing cache -------------------------------------------------------------
    def _fold_data(self, kind: str, fold: int) -> tuple[np.ndarray, np.ndarray]:
        key = (kind, fold)
        with self._lock:
            if key not in self._cache:
                train, valid = self.splits[fold]
                prep = make_preprocessor(kind, self.profile, self.seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    X_train = prep.fit_transform(self.X.iloc[train], self.y[train])
                    X_valid = prep.transform(self.X.iloc[valid])
                self._cache[key] = (
                    np.asarray(X_train, dtype=float),
                    np.asarray(X_valid, dtype=float),
                )
                self._preps[key] = prep
            return self._cache[key]

    def _fold_pipeline(self, family: ModelFamily, fold: int, model: Any) -> Pipeline:
        """A fold's model with the preprocessor fitted on the same rows: it takes raw data."""
        return Pipeline(
            [
                ("schema", SchemaAdapter(dict(self.profile.schema))),
                ("prep", self._preps[(family.preprocessing, fold)]),
                ("model", model),
            ]
        )

    # -- the objective -------------------------------------------------------------------
    def sample(self, trial: optuna.Trial) -> tuple[ModelFamily, dict[str, Any]]:
        name = trial.suggest_categorical(FAMILY_PARAM, list(self.families))
        family = self.families[name]
        params = family.suggest(
            Space(trial, name, grid=self.grid, strategy=self.strategy), self.profile
        )
        return family, params

    def _first_fold_estimate(self, stats: FamilyStats) -> float | None:
        """A family's fold time, or for an untried family a cautious guess: three times the
        slowest family measured so far, so that an unknown cost cannot overrun the budget."""
        known = stats.expected_fold_time()
        if known is not None:
            return known
        measured = [s.expected_fold_time() for s in self.stats.values()]
        measured = [m for m in measured if m is not None]
        return 3.0 * max(measured) if measured else None

    def _first_past_deadline(self, expected: float | None) -> bool:
        """Whether no trial has finished yet and the next fold would end past the deadline."""
        if self.deadline is None or any(s.n_ok for s in self.stats.values()):
            return False
        return time.monotonic() + (expected or 0.0) > self.deadline

    def _check_time(self, expected: float | None) -> None:
        if self.deadline is None or expected is None:
            return
        if not any(s.n_ok for s in self.stats.values()):
            return  # without one finished trial there is no model: finish this one first
        if time.monotonic() + expected > self.deadline:
            raise DeadlineReached

    def __call__(self, trial: optuna.Trial) -> float:
        family, params = self.sample(trial)
        stats = self.stats[family.name]
        if stats.dropped:
            trial.set_user_attr("skipped", stats.dropped)
            raise optuna.TrialPruned(f"family {family.name} was dropped: {stats.dropped}")
        if self.on_trial_start is not None:
            self.on_trial_start(trial.number, family.name)
        try:
            return self._evaluate(trial, family, params, stats)
        except (optuna.TrialPruned, DeadlineReached):
            raise
        except Exception as error:
            stats.n_failed += 1
            message = f"{type(error).__name__}: {error}"[:2000]
            trial.set_user_attr("error", message)
            if stats.n_ok == 0 and stats.n_failed >= MAX_FAILURES:
                stats.dropped = f"failed {stats.n_failed} times, last with {message[:200]}"
            raise

    def _evaluate(
        self,
        trial: optuna.Trial,
        family: ModelFamily,
        params: dict[str, Any],
        stats: FamilyStats,
    ) -> float:
        epochs = family.fidelity == "epochs"
        splits = self.splits[:1] if epochs else self.splits
        fold_scores: list[float] = []
        predictions: list[np.ndarray] = []
        fit_times: list[float] = []
        models: list[Any] = []
        for fold, (train, valid) in enumerate(splits):
            expected = max(fit_times) if fit_times else self._first_fold_estimate(stats)
            look = fold == 0 and self.early_looks and not epochs
            if look:
                self._look_in_time(trial, family, params, stats, expected)
                expected = stats.expected_fold_time()
            if fold_scores and self._first_past_deadline(expected):
                # The run's first model: score it on the folds done rather than overrun.
                trial.set_user_attr("folds", f"{fold} of {len(splits)}: time budget reached")
                break
            self._in_time(trial, expected)
            X_train, X_valid = self._fold_data(family.preprocessing, fold)
            y_valid = self.y[valid]
            context = FitContext(
                X_valid=X_valid,
                y_valid=y_valid,
                score=lambda p, y_valid=y_valid: self.metric.score(y_valid, p, self.classes),
                trial=trial if epochs else None,
                deadline=self.deadline,
                seed=self.seed,
                n_classes=self.profile.n_classes,
            )
            started = time.monotonic()
            model, prediction = self._fit_predict(family, params, X_train, self.y[train], context)
            models.append(model)
            fit_times.append(time.monotonic() - started)
            stats.fold_times.append(fit_times[-1])
            score = self.metric.score(y_valid, prediction, self.classes)
            if not math.isfinite(score):
                raise ValueError(f"the {self.metric.name} of fold {fold} is not finite ({score})")
            fold_scores.append(score)
            predictions.append(prediction)
            if epochs:
                continue
            trial.report(score, fold)
            if self.first_prune_step <= fold + 1 < len(splits) and trial.should_prune():
                trial.set_user_attr("fit_time", float(np.mean(fit_times)))
                raise optuna.TrialPruned(f"pruned after fold {fold}")
        stats.n_ok += 1
        done = splits[: len(predictions)]
        trial.set_user_attr("fit_time", float(np.mean(fit_times)))
        trial.set_user_attr("secondary", self._secondary(done, predictions))
        value = float(np.mean(fold_scores))
        best = self.holdout_best
        keep = epochs and self.bag_folds != 0 and bool(models)
        if keep and (best is None or self.metric.better(value, best[1])):
            self.holdout_best = (trial.number, value, self._fold_pipeline(family, 0, models[0]))
        if not epochs and not family.self_saving and len(done) == len(splits):
            self.oof.add(
                trial.number,
                value,
                self._in_row_order(splits, predictions),
                float(np.mean(fit_times)),
                [self._fold_pipeline(family, k, m) for k, m in enumerate(models[: self.bag_folds])],
            )
        return value

    def _fit_predict(
        self,
        family: ModelFamily,
        params: dict[str, Any],
        X_train: np.ndarray,
        y_train: np.ndarray,
        context: FitContext,
    ) -> tuple[Any, np.ndarray]:
        """Fit a fresh model of the configuration; return it and its prediction of
        ``context.X_valid``."""
        model = clone(family.build(params, self.profile, self.seed))
        with warnings.catch_warnings(), fit_threads(self.profile):
            warnings.simplefilter("ignore")
            family.fit(model, X_train, y_train, context)
            return model, predict_scores(model, context.X_valid, self.profile)

    def _in_time(self, trial: optuna.Trial, expected: float | None) -> None:
        try:
            self._check_time(expected)
        except DeadlineReached:
            trial.set_user_attr("stopped", "time budget reached")
            raise optuna.TrialPruned("time budget reached") from None

    def _look_in_time(
        self,
        trial: optuna.Trial,
        family: ModelFamily,
        params: dict[str, Any],
        stats: FamilyStats,
        expected: float | None,
    ) -> None:
        """Take the early look if it ends in time: for a family not measured yet, the
        look (a third of a fold) is allowed what the cautious guess gives a whole fold
        divided by three; then the look itself measures the family."""
        if expected is not None:
            known = stats.expected_fold_time() is not None
            expected = expected * (1 + 1 / HALVING_RATE) if known else expected / HALVING_RATE
        self._in_time(trial, expected)
        self._early_look(trial, family, params)

    def _early_look(self, trial: optuna.Trial, family: ModelFamily, params: dict[str, Any]) -> None:
        """Train on the first fold with a third of the family's resource (its iterations or
        trees, else its rows) and stop the trial unless successive halving keeps it."""
        train, valid = self.splits[0]
        X_train, X_valid = self._fold_data(family.preprocessing, 0)
        y_train = self.y[train]
        if family.resource in params:
            params = {**params, family.resource: max(1, params[family.resource] // HALVING_RATE)}
        else:
            rows = np.random.default_rng(self.seed).permutation(len(train))
            rows = rows[: max(2, len(train) // HALVING_RATE)]
            X_train, y_train = X_train[rows], y_train[rows]
        context = FitContext(X_valid=X_valid, seed=self.seed, n_classes=self.profile.n_classes)
        started = time.monotonic()
        _, prediction = self._fit_predict(family, params, X_train, y_train, context)
        self.stats[family.name].look_times.append(time.monotonic() - started)
        score = self.metric.score(self.y[valid], prediction, self.classes)
        if not math.isfinite(score):
            raise optuna.TrialPruned("its early look scored no finite value")
        trial.set_user_attr(LOOK_KEY, score)
        others = [
            t.user_attrs[LOOK_KEY]
            for t in trial.study.get_trials(deepcopy=False)
            if t.number != trial.number and LOOK_KEY in t.user_attrs
        ]
        if halving_prunes(score, others, self.metric.greater_is_better):
            raise optuna.TrialPruned("stopped by successive halving after an early look")

    def _in_row_order(
        self, splits: Sequence[tuple[np.ndarray, np.ndarray]], predictions: list[np.ndarray]
    ) -> np.ndarray:
        shape = (len(self.y), *predictions[0].shape[1:])
        full = np.zeros(shape)
        counts = np.zeros(len(self.y))
        for (_, valid), prediction in zip(splits, predictions, strict=True):
            full[valid] += prediction
            counts[valid] += 1
        # with repeated folds every row was predicted once per repeat: average them
        counts = counts.reshape(-1, *([1] * (full.ndim - 1)))
        return full / np.maximum(counts, 1)

    def _secondary(
        self, splits: Sequence[tuple[np.ndarray, np.ndarray]], predictions: list[np.ndarray]
    ) -> dict[str, float]:
        """Secondary metrics on the pooled out-of-fold predictions (one call per metric)."""
        y_true = np.concatenate([self.y[valid] for _, valid in splits])
        pooled = np.concatenate(predictions)
        values = {}
        for m in self.secondary:
            try:
                values[m.name] = float(m.score(y_true, pooled, self.classes))
            except ValueError:
                values[m.name] = float("nan")
        return values
