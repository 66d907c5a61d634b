"""The cross-validated objective: sample a family and its parameters, fit and score folds."""

from __future__ import annotations

import contextlib
import math
import pickle
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from sklearn.pipeline import Pipeline

from autotune.data import DataProfile, coerce_frame
from autotune.engine._ensemble import OutOfFold
from autotune.engine._fit import fit_predict
from autotune.engine._parallel import FoldPool
from autotune.engine._pruning import (
    HALVING_RATE,
    WILCOXON_MIN_STEPS,
    Standing,
    clearly_worse,
    halving_prunes,
    hopeless,
    hopeless_bar,
)
from autotune.exceptions import ConfigError
from autotune.families import FitContext, ModelFamily, Space, get_family
from autotune.families._preprocess import SchemaAdapter, make_preprocessor
from autotune.metrics import Metric

__all__ = [
    "BEHIND_KEY",
    "FAMILY_PARAM",
    "LOOK_KEY",
    "PASSED_OVER_KEY",
    "SEARCH_KEY",
    "STARTING_POINT_KEY",
    "STOPPED_AT_KEY",
    "FamilyStats",
    "Objective",
    "best_by_folds",
    "holdout_scored",
    "weigh_network",
]

FAMILY_PARAM = "family"
#: A fold's fitted model, its prediction of the validation rows and the seconds they took.
FoldFit = tuple[Any, np.ndarray, float]
#: The user attribute that holds a trial's early-look score (see ``Objective``).
LOOK_KEY = "early_look"
#: The user attribute that marks a queued starting point (portfolio or warm start).
STARTING_POINT_KEY = "starting_point"
#: The user attribute of a sampled trial that says how it was drawn (a local step).
SEARCH_KEY = "search"
#: The user attribute of a starting point not run because its family is clearly behind.
PASSED_OVER_KEY = "passed_over"
#: The user attribute of a trial found clearly worse than the best (``clearly_worse``).
BEHIND_KEY = "clearly_behind"
#: The user attribute of the mean resource at which a trial's fold models stopped early.
STOPPED_AT_KEY = "stopped_at"
#: A family whose folds fit faster than this fits them in the tuning process, even with a
#: pool: sending the data and the model to a worker and back costs a few milliseconds.
POOL_MIN_FOLD_SECONDS = 0.05
#: After this many failures without a single success, a family is dropped from the study.
MAX_FAILURES = 3


def holdout_scored(trial: FrozenTrial) -> bool:
    """Whether a trial is a network's, scored on the first fold's holdout that its early
    stopping watched, rather than on every fold."""
    try:
        return get_family(trial.params.get(FAMILY_PARAM, "")).fidelity == "epochs"
    except ConfigError:  # a family no longer registered: scored by folds, as most are
        return False


def best_by_folds(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial scored on every fold, which a network is weighed against
    on the first fold; None before there is one."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    scored = [t for t in complete if not holdout_scored(t) and 0 in t.intermediate_values]
    if not scored:
        return None
    sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
    return max(scored, key=lambda t: sign * float(t.value or 0.0))


def weigh_network(
    network: FrozenTrial | None, rival: FrozenTrial | None, maximize: bool
) -> FrozenTrial | None:
    """The better of the best network and ``rival``, the best trial scored by folds: the
    network only where it beats ``rival`` both overall and on the network's own fold, so
    that a holdout score is weighed on the same rows."""
    if network is None or rival is None:
        return network or rival
    sign = 1.0 if maximize else -1.0
    score = sign * float(network.value or 0.0)
    if score <= sign * float(rival.value or 0.0):
        return rival
    if 0 not in rival.intermediate_values:
        return network
    return network if score > sign * rival.intermediate_values[0] else rival


@dataclass
class FamilyStats(Standing):
    """What the run has measured about one family: cost per fold, failures and standing."""

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


class FoldScorer:
    """Scores a prediction of one fold's validation rows in the study's metric. A class
    rather than a closure, so that it travels to a fold worker without the objective."""

    def __init__(self, metric: Metric, y_valid: np.ndarray, classes: np.ndarray) -> None:
        self.metric = metric
        self.y_valid = y_valid
        self.classes = classes

    def __call__(self, prediction: np.ndarray) -> float:
        return float(self.metric.score(self.y_valid, prediction, self.classes))


class DeadlineReached(Exception):
    """Raised inside a trial when its next fold would overrun the time budget."""


class Objective:
    """Scores one trial by K-fold cross-validation with a report after every fold.

    With ``early_looks`` (large data, where folds are too few for the Wilcoxon test), a
    trial first trains cheaply on the first fold, and successive halving across all
    families decides whether it goes on. Preprocessing is fitted once per fold and kind,
    then reused by every trial that needs it, because it does not depend on the
    hyperparameters. The models of the first ``bag_folds`` folds of the best trials are
    kept (see ``OutOfFold``), so that the final model need not refit them. With a
    ``pool``, the folds of families scored by folds are fitted side by side in its worker
    processes, reported in fold order as they finish. A network's trial trains at most
    ``trial_seconds``, keeping its best epoch.

    A family's first trial of the run is not pruned by the folds' tests: it still counts
    as behind where it was clearly worse, but its out-of-fold predictions give the greedy
    ensemble a model unlike the best family's. On r_galtonfamilies_childheight (60 s,
    seed 1) every family but gradient boosting was pruned, the ensemble had four boosted
    trees to choose from and lost to the best single trial; with the first trials kept it
    won, and the test RMSE fell from 1.687 to 1.643.
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
        pool: FoldPool | None = None,
        trial_seconds: float | None = None,
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
        self.pool = pool
        self.trial_seconds = trial_seconds
        #: Why the pool was given up, once it failed; the run reports it.
        self.pool_error: str | None = None
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

    def _fold_pipeline(self, kind: str, fold: int, model: Any) -> Pipeline:
        """A fold's model with the preprocessor fitted on the same rows: it takes raw data."""
        return Pipeline(
            [
                ("schema", SchemaAdapter(dict(self.profile.schema))),
                ("prep", self._preps[(kind, fold)]),
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

    def _has_model(self) -> bool:
        """Whether a trial of this run has finished: until then the run has no model."""
        return any(s.n_ok for s in self.stats.values())

    def _first_past_deadline(self, expected: float | None) -> bool:
        """Whether no trial has finished yet and the next fold would end past the deadline."""
        if self.deadline is None or self._has_model():
            return False
        return time.monotonic() + (expected or 0.0) > self.deadline

    def _check_time(self, expected: float | None) -> None:
        if self.deadline is None or expected is None:
            return
        if not self._has_model():
            return  # without one finished trial there is no model: finish this one first
        if time.monotonic() + expected > self.deadline:
            raise DeadlineReached

    def __call__(self, trial: optuna.Trial) -> float:
        family, params = self.sample(trial)
        stats = self.stats[family.name]
        if stats.dropped:
            trial.set_user_attr("skipped", stats.dropped)
            raise optuna.TrialPruned(f"family {family.name} was dropped: {stats.dropped}")
        if stats.clearly_behind and STARTING_POINT_KEY in trial.user_attrs:
            # More queued points of a family far behind would spend the budget the
            # cost-aware allocation can give to better families.
            message = f"passed over: {family.name} is clearly behind the best trial"
            trial.set_user_attr(PASSED_OVER_KEY, message)
            raise optuna.TrialPruned(message)
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
        judged = False  # whether the pruner found the trial worse than the best
        if self._pooled(family, stats):
            fits = self._parallel_fits(trial, family, params, stats, len(splits))
        else:
            fits = self._serial_fits(trial, family, params, stats, len(splits), epochs)
        with contextlib.closing(fits):
            for fold, model, prediction, seconds in fits:
                models.append(model)
                fit_times.append(seconds)
                stats.fold_times.append(seconds)
                score = self.metric.score(self.y[splits[fold][1]], prediction, self.classes)
                if not math.isfinite(score):
                    raise ValueError(
                        f"the {self.metric.name} of fold {fold} is not finite ({score})"
                    )
                fold_scores.append(score)
                predictions.append(prediction)
                if epochs:
                    continue
                trial.report(score, fold)
                if self.first_prune_step <= fold + 1 < len(splits) and trial.should_prune():
                    if not judged and self._behind_best(trial, fold_scores):
                        self._mark_behind(trial, stats)
                    judged = True
                    if stats.n_ok > 0:
                        trial.set_user_attr("fit_time", float(np.mean(fit_times)))
                        raise optuna.TrialPruned(f"pruned after fold {fold}")
        stats.n_ok += 1
        done = splits[: len(predictions)]
        fit_time = float(np.mean(fit_times))
        trial.set_user_attr("fit_time", fit_time)
        trial.set_user_attr("secondary", self._secondary(done, predictions))
        value = float(np.mean(fold_scores))
        stopped = [family.stopped_at(model) for model in models]
        if stopped and None not in stopped:
            trial.set_user_attr(STOPPED_AT_KEY, float(np.mean(stopped)))
        if epochs and self._behind_best(trial, [value]):
            self._mark_behind(trial, stats)
        elif not judged:
            stats.n_close += 1
        best = self.holdout_best
        keep = epochs and self.bag_folds != 0 and bool(models)
        kind = family.preprocessing_for(params)
        if keep and (best is None or self.metric.better(value, best[1])):
            self.holdout_best = (trial.number, value, self._fold_pipeline(kind, 0, models[0]))
        if not epochs and not family.self_saving and len(done) == len(splits):
            self.oof.add(
                trial.number,
                value,
                self._in_row_order(splits, predictions),
                fit_time,
                [self._fold_pipeline(kind, k, m) for k, m in enumerate(models[: self.bag_folds])],
                family.name,
            )
        return value

    @staticmethod
    def _mark_behind(trial: optuna.Trial, stats: FamilyStats) -> None:
        stats.n_behind += 1
        trial.set_user_attr(BEHIND_KEY, True)

    def _network_behind(
        self, trial: optuna.Trial, stats: FamilyStats
    ) -> Callable[[float, int], bool] | None:
        """Judges a network's epochs against the first fold's score of the best trial
        scored by folds (``hopeless``), marking the network behind when it stops it."""
        best = best_by_folds(trial.study)
        if best is None:
            return None
        maximize = self.metric.greater_is_better
        bar = hopeless_bar(self._constant_score(), best.intermediate_values[0], maximize)
        if bar is None:
            return None

        def behind(value: float, epoch: int) -> bool:
            if not hopeless(value, epoch, bar, maximize):
                return False
            self._mark_behind(trial, stats)
            return True

        return behind

    def _constant_score(self) -> float:
        """The first fold's score of a prediction that ignores the features: the training
        rows' mean, or their class shares (smoothed, so that none is zero)."""
        train, valid = self.splits[0]
        y_train = self.y[train]
        if self.profile.task == "regression":
            prediction = np.full(len(valid), float(np.mean(y_train)))
        else:
            k = max(self.profile.n_classes, 2)
            shares = (np.bincount(y_train.astype(int), minlength=k) + 1) / (len(y_train) + k)
            prediction = np.tile(shares, (len(valid), 1))
        return float(self.metric.score(self.y[valid], prediction, self.classes))

    def _behind_best(self, trial: optuna.Trial, scores: Sequence[float]) -> bool:
        """Whether ``scores``, on folds 0, 1, ... (a network's holdout is fold 0's), trail
        the best trial scored by folds on each of them by more than its spread across
        folds (``clearly_worse``). Wilcoxon's test, which decides from the fourth fold on,
        also stops trials only slightly worse, and those leave their family in play."""
        best = best_by_folds(trial.study)
        if best is None:
            return False
        sign = -1.0 if self.metric.greater_is_better else 1.0
        theirs = best.intermediate_values
        worse_by = [sign * (s - theirs[k]) for k, s in enumerate(scores) if k in theirs]
        folds = np.array(list(theirs.values()))
        return bool(worse_by) and clearly_worse(np.array(worse_by), folds)

    def _pooled(self, family: ModelFamily, stats: FamilyStats) -> bool:
        """Whether the trial's folds go to the pool: not a network's (one holdout, trained
        here), and not those of a family whose folds fit faster than a round trip to a
        worker process costs."""
        if self.pool is None or family.fidelity == "epochs" or self.early_looks:
            return False
        expected = stats.expected_fold_time()
        return expected is None or expected >= POOL_MIN_FOLD_SECONDS

    def _serial_fits(
        self,
        trial: optuna.Trial,
        family: ModelFamily,
        params: dict[str, Any],
        stats: FamilyStats,
        n_folds: int,
        epochs: bool,
    ) -> Iterator[tuple[int, Any, np.ndarray, float]]:
        """Fit the folds one after another in this process, each only if it ends in time."""
        fit_times: list[float] = []
        for fold in range(n_folds):
            expected = max(fit_times) if fit_times else self._first_fold_estimate(stats)
            if fold == 0 and self.early_looks and not epochs:
                self._look_in_time(trial, family, params, stats, expected)
                expected = stats.expected_fold_time()
            if fit_times and self._first_past_deadline(expected):
                # The run's first model: score it on the folds done rather than overrun.
                trial.set_user_attr("folds", f"{fold} of {n_folds}: time budget reached")
                return
            self._in_time(trial, expected)
            X_train, y_train, context = self._fold_inputs(
                family, params, fold, trial if epochs else None
            )
            if epochs:
                context.behind = self._network_behind(trial, stats)
            model, prediction, seconds = fit_predict(
                family, params, self.profile, self.seed, X_train, y_train, context
            )
            fit_times.append(seconds)
            yield fold, model, prediction, seconds

    def _parallel_fits(
        self,
        trial: optuna.Trial,
        family: ModelFamily,
        params: dict[str, Any],
        stats: FamilyStats,
        n_folds: int,
    ) -> Iterator[tuple[int, Any, np.ndarray, float]]:
        """Fit the folds in the pool, as many at once as it has workers, and yield them in
        fold order; a fold starts only if it ends in time. Folds not yet started when the
        trial stops (pruned, failed) are dropped."""
        pending: deque[tuple[int, Future[FoldFit]]] = deque()
        fit_times: list[float] = []
        n_workers = self.pool.n_workers if self.pool is not None else 1
        try:
            for fold in range(n_folds):
                if len(pending) >= n_workers:
                    done, future = pending.popleft()
                    result = self._result(done, future, family, params)
                    fit_times.append(result[2])
                    yield (done, *result)
                expected = max(fit_times) if fit_times else self._first_fold_estimate(stats)
                if fit_times and self._first_past_deadline(expected):
                    trial.set_user_attr("folds", f"{fold} of {n_folds}: time budget reached")
                    break
                self._in_time(trial, expected)
                pending.append((fold, self._submit(family, params, fold)))
            while pending:
                done, future = pending.popleft()
                yield (done, *self._result(done, future, family, params))
        finally:
            # Folds not started are dropped; those running are waited for, so that the next
            # trial, and the final model at the deadline, find every worker free.
            for _, future in pending:
                future.cancel()
            wait([future for _, future in pending])

    def _submit(self, family: ModelFamily, params: dict[str, Any], fold: int) -> Future[FoldFit]:
        """Start a fold's fit in the pool, or once the pool has failed, fit it here."""
        X_train, y_train, context = self._fold_inputs(family, params, fold, None)
        if self.pool is not None:
            try:
                return self.pool.submit(
                    family, params, self.profile, self.seed, X_train, y_train, context
                )
            except (BrokenProcessPool, pickle.PicklingError) as error:
                self._give_up_pool(error)
        future: Future[FoldFit] = Future()
        future.set_result(
            fit_predict(family, params, self.profile, self.seed, X_train, y_train, context)
        )
        return future

    def _result(
        self, fold: int, future: Future[FoldFit], family: ModelFamily, params: dict[str, Any]
    ) -> FoldFit:
        """A fold's fit from the pool. Should the pool itself fail (a worker killed, a
        family that cannot be sent to it), the run goes on without it: the fold is fitted
        here, and so are all later folds. Errors of the fit itself fail the trial."""
        try:
            return future.result()
        except (BrokenProcessPool, pickle.PicklingError) as error:
            self._give_up_pool(error)
            return self._submit(family, params, fold).result()

    def _give_up_pool(self, error: Exception) -> None:
        self.pool = None
        self.pool_error = f"{type(error).__name__}: {error}"

    def _fold_inputs(
        self,
        family: ModelFamily,
        params: dict[str, Any],
        fold: int,
        trial: optuna.Trial | None,
    ) -> tuple[np.ndarray, np.ndarray, FitContext]:
        """A fold's preprocessed training data, its targets and its fit context."""
        train, valid = self.splits[fold]
        kind = family.preprocessing_for(params)
        X_train, X_valid = self._fold_data(kind, fold)
        y_valid = self.y[valid]
        deadline = self.deadline if self._has_model() else None  # the first trains in full
        if trial is not None and self.trial_seconds is not None:
            # A network trains on one fold, and stops at its best epoch so far.
            family.import_libraries()
            ends = time.monotonic() + self.trial_seconds
            deadline = ends if deadline is None else min(deadline, ends)
        context = FitContext(
            X_valid=X_valid,
            y_valid=y_valid,
            score=FoldScorer(self.metric, y_valid, self.classes),
            trial=trial,
            deadline=deadline,
            seed=self.seed,
            n_classes=self.profile.n_classes,
            profile=self.profile,
            preprocessing=kind,
        )
        return X_train, self.y[train], context

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
        kind = family.preprocessing_for(params)
        X_train, X_valid = self._fold_data(kind, 0)
        y_train = self.y[train]
        if family.resource in params:
            params = {**params, family.resource: max(1, params[family.resource] // HALVING_RATE)}
        else:
            rows = np.random.default_rng(self.seed).permutation(len(train))
            rows = rows[: max(2, len(train) // HALVING_RATE)]
            X_train, y_train = X_train[rows], y_train[rows]
        # A look keeps to the deadline like a fold: a family's measured cost is its cheaper
        # configurations' too, and on r_doctorcontacts_health a costly one's look, started
        # 18 s before the end of a 60 s run, took 24 s and ended the run at 67.6 s.
        deadline = self.deadline if self._has_model() else None
        context = FitContext(
            X_valid=X_valid,
            y_valid=self.y[valid],
            deadline=deadline,
            seed=self.seed,
            n_classes=self.profile.n_classes,
            profile=self.profile,
            preprocessing=kind,
        )
        _, prediction, seconds = fit_predict(
            family, params, self.profile, self.seed, X_train, y_train, context
        )
        # cut short by the deadline, the look would misjudge the configuration and its cost
        self._in_time(trial, 0.0)
        self.stats[family.name].look_times.append(seconds)
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
