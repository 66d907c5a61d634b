"""The state of one search and its stop rules: counts, best trial, time reserve, deadline."""

from __future__ import annotations

import contextlib
import gc
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from autotune.data import DataProfile
from autotune.engine._cv import make_splits
from autotune.engine._events import Listener, TrialReport
from autotune.engine._objective import (
    FAMILY_PARAM,
    PASSED_OVER_KEY,
    Objective,
    holdout_scored,
    weigh_network,
)
from autotune.engine._parallel import FoldPool, fold_workers
from autotune.engine._pruning import first_prune_step, uses_early_looks
from autotune.engine._refit import (
    affordable,
    bag_of,
    fit_bagged_model,
    fit_final_model,
    trial_family,
)
from autotune.engine._samplers import make_pruner, make_sampler
from autotune.exceptions import AutotuneWarning
from autotune.families import ModelFamily, get_family
from autotune.metrics import Metric, secondary_metrics
from autotune.store import fail_orphaned_trials

__all__ = [
    "BAG_ROWS",
    "BUDGET_KEY",
    "FINAL_FIT_MARGIN",
    "Run",
    "fold_time",
    "make_run",
    "optimize",
    "quiet_optuna",
    "quota",
]

#: How many families' best candidates the time reserve covers, for an ensemble.
ENSEMBLE_MEMBERS = 4
#: Safety factor on the measured fold time when reserving time for the final fit. A refit
#: is costed as ``Run.grow`` fold fits, its rounds grown or not: in 60 s runs on the large
#: tasks (``grow`` 1.5, early-stopped rounds grown as much), the refits of trials whose
#: folds took over 1 s took 0.99 to 1.84 fold fits, since a fold also scores its
#: validation rows every round; quicker ones up to 2.2, a fixed cost that the reserve's
#: 0.5 s covers. Costed as 2.25 fold fits before this margin, r_diamonds_cut's search
#: stopped at 27 s and its run ended at 36.5 s.
FINAL_FIT_MARGIN = 1.5
#: Share of the budget also kept back for the end: saving the model, and a busy machine.
BUDGET_SLACK = 0.02
#: The longest a network's trial trains, as a share of the budget. On randhie_visits
#: (15,000 rows, 60 s) one network trained 24 s for a score below every other family's,
#: and left the search a third of its time.
NETWORK_TRIAL_SHARE = 0.2
#: Up to this many rows, the final model averages the fold models instead of refitting.
BAG_ROWS = 1_000
#: With this many folds or fewer, each fold model saw at most two-thirds of the rows, and
#: the final model refits on all of them, its boosting rounds grown in step (``Run.grow``).
#: In 60 s runs (3 seeds) on the benchmark's seven tasks of 10,000 rows or more, against
#: keeping the fold models, it gained most where the same people recur in the rows:
#: r_doctorcontacts_health's mean test log loss went from 0.247 to 0.164, r_diamonds_cut's
#: from 0.531 to 0.525 and multiclass_mixed's from 0.537 to 0.533; the other four moved by
#: under 0.2 %. Refitting without growing the rounds reached 0.190 and 0.532 (seed 0).
REFIT_SPLITS = 3


def fold_time(trial: FrozenTrial) -> float:
    """A trial's mean fold fit time, as its record keeps it (0 if it has none)."""
    return float(trial.user_attrs.get("fit_time", 0.0))


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="optuna")
            yield
    finally:
        optuna.logging.set_verbosity(previous)


class Run:
    """The mutable state of one search: counts, best, time reserve, stop decisions."""

    def __init__(
        self,
        objective: Objective,
        metric: Metric,
        listener: Listener,
        *,
        started: float,
        timeout: float | None,
        n_trials: int | None,
        n_splits: int,
        extra_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.extra_stop = extra_stop
        self.objective = objective
        self.metric = metric
        self.listener = listener
        self.started = started
        self.deadline = started + timeout if timeout is not None else None
        self.n_trials = n_trials
        self.n_splits = n_splits
        self.n_new = 0
        self.counts = {"complete": 0, "pruned": 0, "failed": 0}
        self.by_family: dict[str, int] = {}
        self.best_by_folds: FrozenTrial | None = None
        self.best_network: FrozenTrial | None = None
        self.n_time_prunes = 0
        self.pool_error_announced = False

    def seed_from(self, trials: Sequence[FrozenTrial]) -> None:
        for trial in trials:
            self._count(trial)

    def _count(self, trial: FrozenTrial) -> None:
        if trial.state == TrialState.COMPLETE:
            self.counts["complete"] += 1
            family = trial_family(trial) or "?"
            self.by_family[family] = self.by_family.get(family, 0) + 1
            if holdout_scored(trial):
                self.best_network = self._better(self.best_network, trial)
            else:
                self.best_by_folds = self._better(self.best_by_folds, trial)
        elif trial.state == TrialState.PRUNED:
            self.counts["pruned"] += 1
        elif trial.state == TrialState.FAIL:
            self.counts["failed"] += 1

    @property
    def best(self) -> FrozenTrial | None:
        """The best trial so far, by the rule of the final choice (``best_trial``): a
        network's holdout score is weighed on its own fold, so that the live display does
        not report as best a network that the final model will pass over."""
        return weigh_network(self.best_network, self.best_by_folds, self.metric.greater_is_better)

    def _better(self, best: FrozenTrial | None, trial: FrozenTrial) -> FrozenTrial:
        return trial if best is None or self.metric.better(trial.value, best.value) else best

    def final_fit_reserve(self) -> float:
        """Time kept back for the final model: the best trial's, or an ensemble's members'."""
        if self.best is None:
            return 0.0
        oof = self.objective.oof
        members = sum(self.member_seconds(n) for n in oof.family_bests(ENSEMBLE_MEMBERS))
        best = self.member_seconds(self.best.number, fold_time(self.best))
        if holdout_scored(self.best) and oof.models:
            # a network's refit is not worth stopping the search early: if it does not
            # fit in the end, a trial with kept fold models stands in (``stand_in``)
            best = min(best, min(self.member_seconds(n) for n in oof.models))
        slack = 0.0 if self.deadline is None else BUDGET_SLACK * (self.deadline - self.started)
        return max(best, members) + 0.5 + slack

    def stand_in(self, study: optuna.Study, best: FrozenTrial) -> FrozenTrial:
        """The trial whose model ends the run when no ensemble does: the best, unless it was
        scored on a holdout, refitting it would overrun the deadline, and the best trial
        with kept fold models can take its place at once."""
        oof = self.objective.oof
        if self.deadline is None or not oof.models or not holdout_scored(best):
            return best
        needed = self.member_seconds(best.number, fold_time(best))
        if time.monotonic() + needed <= self.deadline:
            return best
        number = next(n for n in oof.best(len(oof.items)) if n in oof.models)
        return study.get_trials(deepcopy=False)[number]

    def uses_kept_models(self, number: int) -> bool:
        """Whether a trial joins the final model as its kept fold models, averaged, rather
        than refitted: always on small data (the refit would make the same bag), never with
        ``REFIT_SPLITS`` folds or fewer, else when saving the bag is quicker than refitting
        on all rows and saving that."""
        oof = self.objective.oof
        if self._kept_network(number) is not None:
            return True
        if number not in oof.models:
            return False
        if self.bagging:
            return True
        if self.n_splits <= REFIT_SPLITS:
            return False
        bag = oof.save_seconds(number)
        return bag <= self._refit_seconds(oof.fit_times[number]) + bag / len(oof.models[number])

    def _kept_network(self, number: int) -> Any:
        kept = self.objective.holdout_best
        return kept[2] if kept is not None and kept[0] == number else None

    def member_seconds(self, number: int, fit_time: float | None = None) -> float:
        """The expected time to add a trial to the final model."""
        if self.uses_kept_models(number):
            return self.objective.oof.save_seconds(number)
        seconds = self.objective.oof.fit_times.get(number, fit_time or 0.0)
        return self._refit_seconds(float(seconds))

    def _refit_seconds(self, seconds: float) -> float:
        """A refit's cost from a fold's fit ``seconds`` (``FINAL_FIT_MARGIN``)."""
        return FINAL_FIT_MARGIN * seconds * (self.n_splits if self.bagging else self.grow)

    @property
    def grow(self) -> float:
        """How many times the rows of a fold model a refit on all of them sees."""
        return self.n_splits / max(self.n_splits - 1, 1)

    @property
    def bagging(self) -> bool:
        """Whether the final model bags the fold models instead of refitting (small data)."""
        return self.objective.profile.n_rows <= BAG_ROWS

    def fit_member(
        self,
        trial: FrozenTrial,
        X: pd.DataFrame,
        y: np.ndarray,
        seed: int,
        strategy: str,
        reserve: float = 0.0,
    ) -> tuple[ModelFamily, Any]:
        """One configuration of the final model: its kept fold models, bagged over the folds,
        or refitted; done ``reserve`` seconds before the deadline (to save the members
        fitted before it)."""
        profile = self.objective.profile
        family = get_family(trial.params[FAMILY_PARAM])
        network = self._kept_network(trial.number)
        if network is not None:
            return family, network
        deadline = None if self.deadline is None else self.deadline - reserve
        if self.uses_kept_models(trial.number):
            models = self.objective.oof.models[trial.number]
            return family, bag_of(models[: affordable(models, deadline)], profile, X)
        if self.bagging and not family.self_saving:
            splits = self.objective.splits[: self.n_splits]
            return fit_bagged_model(trial, profile, X, y, seed, splits, deadline, strategy)
        return fit_final_model(trial, profile, X, y, seed, deadline, strategy, self.grow)

    def update_deadline(self) -> None:
        if self.deadline is not None:
            self.objective.deadline = self.deadline - self.final_fit_reserve()

    def callback(self, study: optuna.Study, trial: FrozenTrial) -> None:
        skipped = "skipped" in trial.user_attrs or PASSED_OVER_KEY in trial.user_attrs
        if not skipped:
            self.n_new += 1
            self._count(trial)
        if trial.state == TrialState.PRUNED and trial.user_attrs.get("stopped"):
            # a trial stopped for the deadline; a network that used up its own share of
            # the budget completed, and says nothing about the time left for the others
            self.n_time_prunes += 1
        family = trial_family(trial) or "?"
        if not skipped and holdout_scored(trial):
            # A network leaves garbage that only a full collection frees. Collecting after
            # every trial instead cost 0.1-0.4 s each once TensorFlow was loaded: about 8 s
            # of a 60 s run of cheap trials (r_cracker_choice: 40 trials, now 49).
            gc.collect()
        self.update_deadline()
        message = trial.user_attrs.get("error") or trial.user_attrs.get("stopped") or ""
        if not skipped:
            self.listener.on_trial_end(
                TrialReport(
                    number=trial.number,
                    family=family,
                    state=trial.state.name.lower(),
                    score=trial.value,
                    duration=(trial.duration.total_seconds() if trial.duration else 0.0),
                    params=dict(trial.params),
                    best_score=self.best.value if self.best else None,
                    best_family=trial_family(self.best) if self.best else None,
                    n_complete=self.counts["complete"],
                    n_pruned=self.counts["pruned"],
                    n_failed=self.counts["failed"],
                    n_new=self.n_new,
                    elapsed=time.monotonic() - self.started,
                    message=message,
                    counts_by_family=dict(self.by_family),
                )
            )
        if self.objective.pool_error and not self.pool_error_announced:
            self.pool_error_announced = True
            self.listener.on_message(
                f"fitting folds one at a time from now on: the fold processes failed "
                f"({self.objective.pool_error[:200]})"
            )
        dropped = [(name, s.dropped) for name, s in self.objective.stats.items() if s.dropped]
        for name, reason in dropped:
            if not self.objective.stats[name].announced:
                self.objective.stats[name].announced = True
                warnings.warn(f"family {name!r} dropped: {reason}", AutotuneWarning, stacklevel=1)
                self.listener.on_message(f"dropped family {name}: {reason}")
        if self.should_stop(dropped_all=len(dropped) == len(self.objective.stats)):
            study.stop()

    def should_stop(self, dropped_all: bool = False) -> bool:
        if dropped_all or self.listener.should_stop():
            return True
        if self.extra_stop is not None and self.extra_stop():
            return True
        if self.n_trials is not None and self.n_new >= self.n_trials:
            return True
        if self.deadline is None:
            return False
        if self.counts["complete"] == 0:
            return False  # keep going past the budget rather than return no model at all
        if self.n_time_prunes >= 3:
            return True
        expected = [
            s.expected_fold_time() or 0.0 for s in self.objective.stats.values() if not s.dropped
        ]
        cheapest = min(expected) if expected else 0.0
        return time.monotonic() + self.final_fit_reserve() + cheapest > self.deadline


BUDGET_KEY = "autotune_budget"


def quota(n_trials: int | None, n_jobs: int, index: int) -> int | None:
    """Worker ``index``'s share of ``n_trials``, so that the shares add up exactly."""
    if n_trials is None:
        return None
    return n_trials // n_jobs + (1 if index < n_trials % n_jobs else 0)


def make_run(
    study: optuna.Study,
    frame: pd.DataFrame,
    y_encoded: np.ndarray,
    profile: DataProfile,
    metric: Metric,
    families: Sequence[ModelFamily],
    meta: dict[str, Any],
    *,
    seed: int,
    listener: Listener,
    started: float,
    timeout: float | None,
    n_trials: int | None,
    seed_offset: int = 0,
    extra_stop: Callable[[], bool] | None = None,
    keep_fold_models: bool = True,
    fold_pool: bool = False,
) -> Run:
    """Set up the objective and the run state for this process's share of a study.

    With ``fold_pool`` (a run that has the machine to itself), small data's folds are
    fitted side by side in worker processes, one per usable core.
    """
    strategy = meta.get("strategy", "auto")
    n_splits = int(meta["cv"]["n_splits"])
    with quiet_optuna():
        optuna.storages.fail_stale_trials(study)
        orphans = fail_orphaned_trials(study)
    if orphans:
        listener.on_message(f"retrying trial(s) {orphans} left running by a stopped process")
    earlier = study.get_trials(deepcopy=False)
    with quiet_optuna():
        costs = {f.name: f.relative_cost for f in families}
        study.sampler = make_sampler(strategy, seed + seed_offset + len(earlier), costs)
        n_repeats = int(meta["cv"].get("n_repeats", 1))
        study.pruner = make_pruner({f.name: f.fidelity for f in families}, n_repeats)
    splits = make_splits(profile, y_encoded, n_splits, int(meta["cv"]["seed"]), n_repeats)
    n_workers = fold_workers(profile, len(splits)) if fold_pool else 1
    if n_workers > 1:
        listener.on_message(f"fitting folds in {n_workers} processes side by side")
    objective = Objective(
        frame,
        y_encoded,
        profile,
        families,
        metric,
        secondary_metrics(profile.task, metric),
        splits,
        seed=seed,
        grid=strategy == "grid",
        strategy=strategy,
        on_trial_start=listener.on_trial_start,
        first_prune_step=first_prune_step(n_splits, n_repeats),
        early_looks=uses_early_looks(n_splits, n_repeats),
        # the first repeat's folds: each row predicted once
        bag_folds=n_splits if keep_fold_models else 0,
        pool=FoldPool(n_workers) if n_workers > 1 else None,
        trial_seconds=None if timeout is None else NETWORK_TRIAL_SHARE * timeout,
    )
    run = Run(
        objective,
        metric,
        listener,
        started=started,
        timeout=timeout,
        n_trials=n_trials,
        n_splits=n_splits,
        extra_stop=extra_stop,
    )
    run.seed_from(earlier)
    for trial in earlier:
        family = trial_family(trial)
        if family in objective.stats and "fit_time" in trial.user_attrs:
            objective.stats[family].fold_times.append(float(trial.user_attrs["fit_time"]))
            if trial.state == TrialState.COMPLETE:
                objective.stats[family].n_ok += 1
    return run


def optimize(run: Run, study: optuna.Study) -> None:
    """Run trials until the run's budget, a stop request or an interrupt ends it."""
    run.update_deadline()
    if run.should_stop():
        return
    with quiet_optuna():
        try:
            study.optimize(run.objective, callbacks=[run.callback], catch=(Exception,))
        except KeyboardInterrupt:
            run.listener.on_message("interrupted: finishing with the best trial so far")
