"""One tuning run: open or resume the study, search within the budget, fit the final model."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState
from sklearn.pipeline import Pipeline

from autotune.artifacts import MODELS_KEY, estimated_save_seconds, save_model
from autotune.data import DataProfile, profile_data
from autotune.engine._calibration import TemperatureScaled, calibrate
from autotune.engine._cv import choose_n_repeats, choose_n_splits, make_splits
from autotune.engine._ensemble import EnsembleModel, choose_ensemble
from autotune.engine._events import Listener, RunInfo, TrialReport
from autotune.engine._objective import FAMILY_PARAM, Objective, fit_threads
from autotune.engine._pruning import first_prune_step
from autotune.engine._samplers import check_strategy, make_pruner, make_sampler
from autotune.engine._warmstart import WarmStart, find_warm_start
from autotune.exceptions import AutotuneWarning, ConfigError, StudyMismatchError, TuningFailedError
from autotune.families import (
    FitContext,
    ModelFamily,
    Space,
    choose_families,
    get_family,
    make_pipeline_for,
)
from autotune.metrics import Metric, get_metric, secondary_metrics
from autotune.store import (
    FINAL_KEY,
    check_resumable,
    check_study_name,
    fail_orphaned_trials,
    mask_url,
    open_storage,
    read_meta,
    study_name_for,
    write_meta,
)

__all__ = ["TuneOutcome", "build_final_model", "default_timeout", "tune"]

#: The family that ``strategy="gradient"`` tunes (by hypergradient descent on its step size).
GRADIENT_FAMILY = "keras"
#: How many of the best candidates' refits the time reserve covers, for an ensemble.
ENSEMBLE_MEMBERS = 4
#: Safety factor on the measured fold time when reserving time for the final fit.
FINAL_FIT_MARGIN = 1.5
#: Share of the budget also kept back for the end: saving the model, and a busy machine.
BUDGET_SLACK = 0.02
#: Up to this many rows, the final model averages the fold models instead of refitting.
BAG_ROWS = 1_000


@dataclass
class TuneOutcome:
    """Everything a tuning run produced."""

    study: optuna.Study
    profile: DataProfile
    metric: Metric
    families: list[str]
    model: Pipeline
    best_trial: FrozenTrial
    resumed: bool
    n_new_trials: int
    elapsed: float
    storage_url: str


def default_timeout(profile: DataProfile) -> float:
    """The budget used when neither ``timeout`` nor ``n_trials`` is given."""
    cells = profile.n_rows * profile.n_cols
    return 60.0 if cells <= 1_000_000 else 300.0


def _check_budget(timeout: float | None, n_trials: int | None) -> None:
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ConfigError(f"timeout must be a number of seconds; got {timeout!r}.")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ConfigError(f"timeout must be a positive number of seconds; got {timeout!r}.")
    if n_trials is not None:
        if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer):
            raise ConfigError(f"n_trials must be a whole number; got {n_trials!r}.")
        if n_trials <= 0:
            raise ConfigError(f"n_trials must be positive; got {n_trials!r}.")


def encode_target(y: pd.Series, profile: DataProfile) -> np.ndarray:
    """Class indices for classification (in the profile's class order), floats otherwise."""
    if profile.task == "regression":
        return y.to_numpy(dtype=float)
    index = {c: i for i, c in enumerate(profile.classes)}
    return np.asarray([index[v.item() if isinstance(v, np.generic) else v] for v in y])


def trial_family(trial: FrozenTrial) -> str | None:
    return trial.params.get(FAMILY_PARAM)


def family_params(
    trial: FrozenTrial | dict[str, Any],
    family: ModelFamily,
    profile: DataProfile,
    strategy: str = "auto",
) -> dict[str, Any]:
    """The estimator parameters of a trial, rebuilt by replaying the family's sampling."""
    params = trial if isinstance(trial, dict) else trial.params
    fixed = optuna.trial.FixedTrial(dict(params))
    return family.suggest(Space(fixed, family.name, strategy=strategy), profile)


def build_final_model(
    trial: FrozenTrial, profile: DataProfile, seed: int, strategy: str = "auto"
) -> tuple[ModelFamily, Pipeline]:
    """An unfitted pipeline for a trial's configuration."""
    family = get_family(trial.params[FAMILY_PARAM])
    model = family.build(family_params(trial, family, profile, strategy), profile, seed)
    return family, make_pipeline_for(family.preprocessing, model, profile, seed)


def fit_final_model(
    trial: FrozenTrial,
    profile: DataProfile,
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int,
    deadline: float | None = None,
    strategy: str = "auto",
) -> tuple[ModelFamily, Pipeline]:
    """Fit a trial's configuration on all the data, through the family's own ``fit``."""
    family, model = build_final_model(trial, profile, seed, strategy)
    preprocess = Pipeline(model.steps[:-1])
    with warnings.catch_warnings(), fit_threads(profile):
        warnings.simplefilter("ignore")
        X_ready = preprocess.fit_transform(X, y)
        family.fit(
            model.steps[-1][1],
            X_ready,
            y,
            FitContext(deadline=deadline, seed=seed, n_classes=profile.n_classes),
        )
    return family, model


def fit_bagged_model(
    trial: FrozenTrial,
    profile: DataProfile,
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    deadline: float | None = None,
    strategy: str = "auto",
) -> tuple[ModelFamily, EnsembleModel]:
    """The average of a configuration's models fitted on each fold's training rows.

    On small data this is the model the out-of-fold score actually measured, and the
    fold models disagree where the data is thin, which tempers over-confident answers.
    """
    members: list[Any] = []
    for train, _ in splits:
        started = time.monotonic()
        family, model = fit_final_model(
            trial, profile, X.iloc[train], y[train], seed, deadline, strategy
        )
        if members and _past(deadline, [*members, model]):
            break  # the deadline holds, saving included: fewer fold models
        members.append(model)
        if _past(deadline, members, time.monotonic() - started):
            break
    weights = [1.0 / len(members)] * len(members)
    bag = EnsembleModel(
        members, weights, regression=profile.task == "regression", n_classes=profile.n_classes
    )
    return family, bag.fit(X)


def _past(deadline: float | None, models: Sequence[Any], next_fit: float = 0.0) -> bool:
    """Whether saving ``models``, after one more fit of ``next_fit`` seconds, would end
    past the deadline."""
    if deadline is None:
        return False
    return time.monotonic() + next_fit + estimated_save_seconds(models) > deadline


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="optuna")
            yield
    finally:
        optuna.logging.set_verbosity(previous)


def _resolve_metric(
    metric: str | Metric | Callable[..., Any], profile: DataProfile, meta: dict[str, Any]
) -> Metric:
    if isinstance(metric, str) and metric == "auto" and meta.get("metric"):
        try:
            return get_metric(meta["metric"], profile.task)
        except ConfigError:
            raise StudyMismatchError(
                f"The study was tuned with the custom metric {meta['metric']!r}; pass the same "
                "metric= again to resume it."
            ) from None
    return get_metric(metric, profile.task)


class _Run:
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
        self.best: FrozenTrial | None = None
        self.n_time_prunes = 0

    def seed_from(self, trials: Sequence[FrozenTrial]) -> None:
        for trial in trials:
            self._count(trial)

    def _count(self, trial: FrozenTrial) -> None:
        if trial.state == TrialState.COMPLETE:
            self.counts["complete"] += 1
            family = trial_family(trial) or "?"
            self.by_family[family] = self.by_family.get(family, 0) + 1
            if self.best is None or self.metric.better(trial.value, self.best.value):
                self.best = trial
        elif trial.state == TrialState.PRUNED:
            self.counts["pruned"] += 1
        elif trial.state == TrialState.FAIL:
            self.counts["failed"] += 1

    def final_fit_reserve(self) -> float:
        """Time kept back for the final model: the best trial's refit, or an ensemble's."""
        if self.best is None:
            return 0.0
        fold_time = float(self.best.user_attrs.get("fit_time", 0.0))
        fold_time = max(fold_time, self.objective.oof.fit_time_of_best(ENSEMBLE_MEMBERS))
        scale = self.n_splits if self.bagging else self.n_splits / max(self.n_splits - 1, 1)
        slack = 0.0 if self.deadline is None else BUDGET_SLACK * (self.deadline - self.started)
        return FINAL_FIT_MARGIN * fold_time * scale + 0.5 + slack

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
        """One configuration of the final model: bagged over the folds, or refitted; done
        ``reserve`` seconds before the deadline (to save the members fitted before it)."""
        profile = self.objective.profile
        family = get_family(trial.params[FAMILY_PARAM])
        deadline = None if self.deadline is None else self.deadline - reserve
        if self.bagging and not family.self_saving:
            splits = self.objective.splits[: self.n_splits]
            return fit_bagged_model(trial, profile, X, y, seed, splits, deadline, strategy)
        return fit_final_model(trial, profile, X, y, seed, deadline, strategy)

    def update_deadline(self) -> None:
        if self.deadline is not None:
            self.objective.deadline = self.deadline - self.final_fit_reserve()

    def callback(self, study: optuna.Study, trial: FrozenTrial) -> None:
        skipped = "skipped" in trial.user_attrs
        if not skipped:
            self.n_new += 1
            self._count(trial)
        if trial.user_attrs.get("stopped"):
            self.n_time_prunes += 1
        self.update_deadline()
        family = trial_family(trial) or "?"
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
#: How many configurations of the opening family run before the other families' first:
#: for gradient boosting, the portfolio's pick and scikit-learn's defaults.
OPENING_POINTS = 2


def _quota(n_trials: int | None, n_jobs: int, index: int) -> int | None:
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
) -> _Run:
    """Set up the objective and the run state for this process's share of a study."""
    strategy = meta.get("strategy", "auto")
    n_splits = int(meta["cv"]["n_splits"])
    with _quiet_optuna():
        optuna.storages.fail_stale_trials(study)
        orphans = fail_orphaned_trials(study)
    if orphans:
        listener.on_message(f"retrying trial(s) {orphans} left running by a stopped process")
    earlier = study.get_trials(deepcopy=False)
    with _quiet_optuna():
        costs = {f.name: f.relative_cost for f in families}
        study.sampler = make_sampler(strategy, seed + seed_offset + len(earlier), costs)
        n_repeats = int(meta["cv"].get("n_repeats", 1))
        study.pruner = make_pruner({f.name: f.fidelity for f in families}, n_repeats)
    splits = make_splits(profile, y_encoded, n_splits, int(meta["cv"]["seed"]), n_repeats)
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
        early_looks=first_prune_step(n_splits, n_repeats) >= len(splits),
    )
    run = _Run(
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


def optimize(run: _Run, study: optuna.Study) -> None:
    """Run trials until the run's budget, a stop request or an interrupt ends it."""
    run.update_deadline()
    if run.should_stop():
        return
    with _quiet_optuna():
        try:
            # Networks leave garbage that only a collection frees between trials.
            epochs = any(f.fidelity == "epochs" for f in run.objective.families.values())
            study.optimize(
                run.objective, callbacks=[run.callback], catch=(Exception,), gc_after_trial=epochs
            )
        except KeyboardInterrupt:
            run.listener.on_message("interrupted: finishing with the best trial so far")


def tune(
    X: Any,
    y: Any,
    *,
    timeout: float | None = None,
    n_trials: int | None = None,
    metric: str | Metric | Callable[..., Any] = "auto",
    task: str = "auto",
    families: str | Sequence[str] = "auto",
    strategy: str = "auto",
    storage: str | None = None,
    study_name: str | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    listener: Listener | None = None,
    started: float | None = None,
) -> TuneOutcome:
    """Run (or resume) a study on X, y and fit the best configuration on all the data.

    See :func:`autotune.auto_tune` for the arguments; ``listener`` receives progress and
    ``started`` is the ``time.monotonic()`` at which the caller's budget began.
    """
    started = time.monotonic() if started is None else started
    listener = listener or Listener()
    n_jobs = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
    _check_budget(timeout, n_trials)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ConfigError(f"seed must be an integer; got {seed!r}.")
    check_strategy(strategy)
    frame, target, profile = profile_data(X, y, task)
    listener.on_message(f"data: {profile.summary()}")
    if timeout is None and n_trials is None:
        timeout = default_timeout(profile)
        listener.on_message(
            f"no budget given: tuning for {timeout:.0f} s (pass timeout= or n_trials=)"
        )

    storage_obj = open_storage(storage, heartbeat=True)
    url = storage or storage_obj.url
    name = check_study_name(study_name or study_name_for(profile.target_name, profile.fingerprint))
    with _quiet_optuna():
        resumed = name in optuna.get_all_study_names(storage_obj)
        old_meta: dict[str, Any] = {}
        if resumed:
            old_meta = read_meta(optuna.load_study(study_name=name, storage=storage_obj))
            if not old_meta:
                raise StudyMismatchError(
                    f"Study {name!r} exists but was not made by autotune; pass another study_name."
                )

    chosen_metric = _resolve_metric(metric, profile, old_meta)
    if resumed and families == "auto" and old_meta.get("families"):
        chosen = [get_family(n) for n in old_meta["families"]]
        family_line = f"families: {', '.join(old_meta['families'])} (as in the study)"
    else:
        if strategy == "gradient" and families == "auto":
            families = [GRADIENT_FAMILY]
        chosen, family_line = choose_families(profile, families, timeout)
    listener.on_message(family_line)
    n_splits = int(old_meta.get("cv", {}).get("n_splits", 0)) or choose_n_splits(profile)
    meta = {
        "task": profile.task,
        "metric": chosen_metric.name,
        "direction": chosen_metric.direction,
        "families": [f.name for f in chosen],
        "fingerprint": profile.fingerprint,
        "schema": profile.schema,
        "profile": profile.to_dict(),
        "cv": {"n_splits": n_splits, "seed": int(seed), "n_repeats": choose_n_repeats(profile)},
        "strategy": strategy,
        "target_column": None if target.name is None else str(target.name),
    }
    if resumed:
        check_resumable(name, old_meta, meta)
        meta["cv"] = old_meta.get("cv", meta["cv"])

    with _quiet_optuna():
        study = optuna.create_study(
            storage=storage_obj,
            study_name=name,
            direction=chosen_metric.direction,
            load_if_exists=True,
        )
        write_meta(study, meta)

    y_encoded = encode_target(target, profile)
    run = make_run(
        study,
        frame,
        y_encoded,
        profile,
        chosen_metric,
        chosen,
        meta,
        seed=int(seed),
        listener=listener,
        started=started,
        timeout=timeout,
        n_trials=n_trials if n_jobs == 1 else _quota(n_trials, n_jobs, 0),
    )
    earlier = study.get_trials(deepcopy=False)
    if resumed:
        best = f", best {chosen_metric.name} {run.best.value:.4g}" if run.best else ""
        n_done = sum(t.state.is_finished() for t in earlier)
        listener.on_message(f"resumed study '{name}': {n_done} earlier trials{best}")
    else:
        listener.on_message(f"new study '{name}' in {mask_url(url)}")
    if strategy != "grid":
        warm = None
        if not resumed:
            warm = _warm_start(storage_obj, name, profile, chosen_metric, chosen, strategy)
        added = _enqueue_starting_points(study, chosen, profile, warm)
        if warm is not None and added:
            listener.on_message(
                f"warm start: {added} configuration(s) from the most similar earlier "
                f"studies ({', '.join(source.name for source in warm.sources)})"
            )
    n_done_before = sum(t.state.is_finished() for t in earlier)
    budget: dict[str, Any] = {}
    if n_trials is not None:
        budget["until_trials"] = n_done_before + int(n_trials)
    if timeout is not None:
        budget["until_time"] = time.time() + (timeout - (time.monotonic() - started))
    study.set_user_attr(BUDGET_KEY, budget)
    listener.on_start(
        RunInfo(
            study_name=name,
            storage=mask_url(url),
            metric=chosen_metric.name,
            direction=chosen_metric.direction,
            families=tuple(f.name for f in chosen),
            timeout=timeout,
            n_trials=n_trials,
            n_earlier_trials=n_done_before,
        )
    )
    workers = []
    if n_jobs > 1:
        from autotune.engine._workers import start_workers

        listener.on_message(f"running {n_jobs} worker processes on the study")
        workers = start_workers(
            n_jobs - 1,
            name=name,
            storage=url,
            X=frame,
            y=target,
            metric=chosen_metric,
            n_trials=[_quota(n_trials, n_jobs, i) for i in range(1, n_jobs)],
            timeout_until=budget.get("until_time"),
            seed=int(seed),
        )
    try:
        if workers:
            from threadpoolctl import threadpool_limits

            from autotune.engine._workers import threads_per_process

            with threadpool_limits(threads_per_process(n_jobs)):
                optimize(run, study)
        else:
            optimize(run, study)
    finally:
        for process in workers:
            process.join()
    failed_workers = [p.exitcode for p in workers if p.exitcode not in (0, None)]
    if failed_workers:
        listener.on_message(f"{len(failed_workers)} worker process(es) ended with an error")

    best = _best_trial(study, chosen_metric)
    final = _final_model(study, run, best, profile, frame, y_encoded, int(seed), strategy)
    study.set_user_attr(FINAL_KEY, final.info)
    for line in final.describe(chosen_metric.name):
        listener.on_message(line)
    record = save_model(
        study,
        final.model,
        role="final",
        family=final.info["kind"] if final.info["kind"] == "ensemble" else final.family,
        trial_number=best.number,
        storage_url=url,
    )
    if final.info["kind"] == "trial" and final.info.get("temperature"):
        # the uncalibrated pipeline is the family's best model: keep it without a refit
        save_model(
            study,
            final.model.model,
            role=f"best:{final.family}",
            family=final.family,
            trial_number=best.number,
            storage_url=url,
        )
    _save_family_bests(
        study,
        run,
        best,
        record if final.info["kind"] == "trial" and not final.info.get("temperature") else None,
        profile,
        frame,
        y_encoded,
        int(seed),
        strategy,
        url,
    )
    elapsed = time.monotonic() - started
    listener.on_message(
        f"best {chosen_metric.name} {best.value:.4g} by {trial_family(best)} "
        f"(trial {best.number}); {run.n_new} new trials in {elapsed:.1f} s"
    )
    listener.on_finish(elapsed)
    return TuneOutcome(
        study=study,
        profile=profile,
        metric=chosen_metric,
        families=[f.name for f in chosen],
        model=final.model,
        best_trial=best,
        resumed=resumed,
        n_new_trials=run.n_new,
        elapsed=elapsed,
        storage_url=url,
    )


@dataclass
class FinalModel:
    """The model a run ends with, and what it is (stored with the study as ``FINAL_KEY``)."""

    model: Any
    family: str
    info: dict[str, Any]

    def describe(self, metric: str) -> list[str]:
        info = self.info
        lines = []
        if info["kind"] == "ensemble":
            members = ", ".join(f"{n} ({w:.2f})" for n, w in info["weights"].items())
            lines.append(
                f"final model: an ensemble of trials {members}; out-of-fold {metric} "
                f"{info['score']:.4g} against {info['best_single']:.4g} for the best single trial"
            )
        elif info.get("bagged"):
            lines.append(f"final model: trial {info['trial']}, its fold models averaged")
        if info.get("temperature"):
            lines.append(
                f"calibrated probabilities (temperature {info['temperature']:.3g}): out-of-fold "
                f"{metric} {info['uncalibrated']:.4g} -> {info['calibrated']:.4g}"
            )
        return lines


def _final_model(
    study: optuna.Study,
    run: _Run,
    best: FrozenTrial,
    profile: DataProfile,
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int,
    strategy: str,
) -> FinalModel:
    """The ensemble when it beats the best trial out of fold, else the best trial refitted;
    then temperature-scaled where that improves the out-of-fold score."""
    ensemble = _fit_ensemble(study, run, best, profile, X, y, seed, strategy)
    if ensemble is None:
        family, model = run.fit_member(best, X, y, seed, strategy)
        info = {"kind": "trial", "trial": best.number, "bagged": isinstance(model, EnsembleModel)}
        final = FinalModel(model, family.name, info)
        item = run.objective.oof.items.get(best.number)
        oof = None if item is None else item[1]
    else:
        model, info, oof = ensemble
        final = FinalModel(model, "ensemble", {"kind": "ensemble", **info})
    if oof is not None and profile.task != "regression":
        classes = np.asarray(profile.classes, dtype=object)
        found = calibrate(oof, y, run.metric, classes)
        if found is not None:
            temperature, before, after = found
            final.model = TemperatureScaled(final.model, temperature, profile.n_classes).fit()
            final.info.update(temperature=temperature, uncalibrated=before, calibrated=after)
    return final


def _fit_ensemble(
    study: optuna.Study,
    run: _Run,
    best: FrozenTrial,
    profile: DataProfile,
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int,
    strategy: str,
) -> tuple[EnsembleModel, dict[str, Any], np.ndarray] | None:
    """The greedy ensemble of this run's trials, fitted on all the data, when its pooled
    out-of-fold score beats the best single trial's (and the study's ``best``, which may
    have been scored on a holdout or in an earlier run), the choice holds on rows it was not
    made on, and the budget leaves time to fit it.

    Returns:
        The ensemble, its description and its pooled out-of-fold predictions.
    """
    classes = np.asarray(profile.classes, dtype=object)
    oof = run.objective.oof
    rival = None if best.number in oof.items else best.value
    chosen = choose_ensemble(oof, y, classes, rival, seed)
    if chosen is None:
        return None
    weights, score, best_single = chosen
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    folds = run.n_splits if run.bagging else run.n_splits / max(run.n_splits - 1, 1)
    scale = folds * FINAL_FIT_MARGIN
    needed = sum(float(trials[n].user_attrs.get("fit_time", 0.0)) * scale for n in weights)
    if run.deadline is not None and time.monotonic() + needed > run.deadline:
        return None
    members: list[Any] = []
    order = sorted(weights, key=weights.__getitem__, reverse=True)
    for number in order:
        reserve = estimated_save_seconds(members)
        member = run.fit_member(trials[number], X, y, seed, strategy, reserve)[1]
        if members and _past(run.deadline, [*members, member]):
            break  # the deadline holds, saving included: the heaviest members, reweighted
        members.append(member)
        if _past(run.deadline, members):
            break
    kept = order[: len(members)]
    if len(kept) < len(order):
        total = sum(weights[n] for n in kept)
        weights = {n: weights[n] / total for n in kept}
    prediction = np.asarray(sum(weights[n] * oof.items[n][1] for n in kept))
    if len(kept) < len(order):
        score = run.metric.score(y, prediction, classes)
    model = EnsembleModel(
        members,
        [weights[n] for n in kept],
        regression=profile.task == "regression",
        n_classes=profile.n_classes,
    ).fit(X)
    info = {
        "bagged": run.bagging,
        "weights": {str(n): weights[n] for n in kept},
        "score": score,
        "best_single": best_single,
    }
    return model, info, prediction


def _save_family_bests(
    study: optuna.Study,
    run: _Run,
    final: FrozenTrial,
    final_record: dict[str, Any] | None,
    profile: DataProfile,
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int,
    strategy: str,
    url: str,
) -> None:
    """Keep the best model of every family, refitting the others while the budget allows."""
    models = dict(study.user_attrs.get(MODELS_KEY, {}))
    if final_record is not None:
        models[f"best:{trial_family(final)}"] = final_record
        study.set_user_attr(MODELS_KEY, models)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    bests: dict[str, FrozenTrial] = {}
    for trial in complete:
        name = trial_family(trial)
        if name and (name not in bests or run.metric.better(trial.value, bests[name].value)):
            bests[name] = trial
    skipped = []
    for name, trial in bests.items():
        if name == trial_family(final) and final_record is not None:
            continue
        if models.get(f"best:{name}", {}).get("trial") == trial.number:
            continue
        fit_time = float(trial.user_attrs.get("fit_time", 0.0)) * FINAL_FIT_MARGIN * 1.5
        if run.deadline is not None and time.monotonic() + fit_time > run.deadline:
            skipped.append(name)
            continue
        _, model = fit_final_model(trial, profile, X, y, seed, run.deadline, strategy)
        save_model(
            study,
            model,
            role=f"best:{name}",
            family=name,
            trial_number=trial.number,
            storage_url=url,
        )
    if skipped:
        run.listener.on_message(
            f"stored the final model; no time left to refit the best {', '.join(skipped)} models"
        )


def _warm_start(
    storage: optuna.storages.BaseStorage,
    name: str,
    profile: DataProfile,
    metric: Metric,
    families: Sequence[ModelFamily],
    strategy: str,
) -> WarmStart | None:
    """The winners of the most similar earlier studies in the store, or None.

    Only a new study is warm-started: a resumed one learns from its own trials, and its
    next trials should not change because other studies were added to the store since.
    """
    try:
        return find_warm_start(
            storage,
            profile,
            profile.task,
            metric.name,
            [f.name for f in families],
            exclude_study=name,
            direction=metric.direction,
            strategy=strategy,
        )
    except Exception:  # a hint, never a reason to fail the run
        return None


def _enqueue_starting_points(
    study: optuna.Study,
    families: Sequence[ModelFamily],
    profile: DataProfile,
    warm: WarmStart | None = None,
) -> int:
    """Queue each family's strong configurations, round-robin, once per study.

    A family that opens searches (gradient boosting) goes first, else the cheapest, with
    its first ``OPENING_POINTS`` configurations: a run must end with a model, so its first
    trial is allowed to finish past the budget, and that trial should be both strong and
    quick. The winners of similar earlier studies (``warm``) come right after the first,
    because on similar data they are the best bets, and a short budget may not reach the
    rest.

    Returns:
        How many of the warm configurations were newly queued.
    """
    first = min(families, key=lambda f: (not f.opens_search, f.relative_cost))
    ordered = [first, *[f for f in families if f is not first]]
    queues = [
        [(family.name, point) for point in family.starting_points(profile)] for family in ordered
    ]
    pairs, queues[0] = queues[0][:OPENING_POINTS], queues[0][OPENING_POINTS:]
    for level in range(max((len(q) for q in queues), default=0)):
        pairs += [queue[level] for queue in queues if level < len(queue)]
    points = [
        {FAMILY_PARAM: name, **{f"{name}.{k}": v for k, v in point.items()}}
        for name, point in pairs
    ]
    waiting = (TrialState.WAITING,)
    with _quiet_optuna():
        for params in points[:1]:
            study.enqueue_trial(params, skip_if_exists=True)
        before = len(study.get_trials(deepcopy=False, states=waiting))
        for params in warm.configs if warm else []:
            study.enqueue_trial(params, skip_if_exists=True)
        added = len(study.get_trials(deepcopy=False, states=waiting)) - before
        for params in points[1:]:
            study.enqueue_trial(params, skip_if_exists=True)
    return added


def _best_trial(study: optuna.Study, metric: Metric) -> FrozenTrial:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        errors = sorted({t.user_attrs.get("error", "unknown error") for t in failed})[:3]
        detail = f" Errors: {'; '.join(errors)}" if errors else ""
        raise TuningFailedError(
            f"No trial finished in study {study.study_name!r}, so there is no model.{detail} "
            "Give a larger budget (timeout= or n_trials=) or other families."
        )
    return study.best_trial
