"""One tuning run: open or resume the study, search within the budget, fit the final model."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState
from sklearn.pipeline import Pipeline

from autotune.artifacts import part_record, save_model
from autotune.data import DataProfile, profile_data
from autotune.engine._cv import choose_n_repeats, choose_n_splits, is_short_budget
from autotune.engine._events import Listener, RunInfo
from autotune.engine._final import final_model, save_family_bests
from autotune.engine._refit import best_trial, trial_family
from autotune.engine._run import BUDGET_KEY, make_run, optimize, quiet_optuna, quota
from autotune.engine._samplers import check_strategy
from autotune.engine._starting import enqueue_starting_points, warm_start
from autotune.exceptions import ConfigError, StudyMismatchError, TuningFailedError
from autotune.families import choose_families, get_family
from autotune.metrics import Metric, get_metric, implied_task
from autotune.store import (
    FINAL_KEY,
    check_resumable,
    check_study_name,
    mask_url,
    open_storage,
    read_meta,
    study_name_for,
    write_meta,
)

__all__ = ["TuneOutcome", "default_timeout", "encode_target", "tune"]

#: The family that ``strategy="gradient"`` tunes (by hypergradient descent on its step size).
GRADIENT_FAMILY = "keras"


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
    frame, target, profile = profile_data(X, y, task, implied_task(metric))
    listener.on_message(f"data: {profile.summary()}")
    if timeout is None and n_trials is None:
        timeout = default_timeout(profile)
        listener.on_message(
            f"no budget given: tuning for {timeout:.0f} s (pass timeout= or n_trials=)"
        )

    storage_obj = open_storage(storage, heartbeat=True)
    url = storage or storage_obj.url
    name = check_study_name(study_name or study_name_for(profile.target_name, profile.fingerprint))
    with quiet_optuna():
        resumed = name in optuna.get_all_study_names(storage_obj)
        old_meta: dict[str, Any] = {}
        if resumed:
            old_meta = read_meta(optuna.load_study(study_name=name, storage=storage_obj))
            if not old_meta:
                raise StudyMismatchError(
                    f"Study {name!r} exists but was not made by autotune; pass another study_name."
                )
    same_data = old_meta.get("fingerprint") == profile.fingerprint
    if task == "auto" and same_data and old_meta.get("task") not in (None, profile.task):
        # The study's task was settled when it began, say by metric="rmse" on integer
        # scores; resuming it on the same data without that metric keeps the task.
        frame, target, profile = profile_data(X, y, old_meta["task"])
        listener.on_message(f"task: {profile.task}, as in the resumed study")

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
        "cv": {
            "n_splits": n_splits,
            "seed": int(seed),
            "n_repeats": choose_n_repeats(profile, timeout),
        },
        "strategy": strategy,
        "target_column": None if target.name is None else str(target.name),
    }
    if resumed:
        check_resumable(name, old_meta, meta)
        meta["cv"] = old_meta.get("cv", meta["cv"])

    with quiet_optuna():
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
        n_trials=n_trials if n_jobs == 1 else quota(n_trials, n_jobs, 0),
        fold_pool=n_jobs == 1,
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
            warm = warm_start(storage_obj, name, profile, chosen_metric, chosen, strategy)
        short = is_short_budget(timeout)
        added = enqueue_starting_points(study, chosen, profile, warm, short_budget=short)
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
            n_trials=[quota(n_trials, n_jobs, i) for i in range(1, n_jobs)],
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
    final = final_model(study, run, best, profile, frame, y_encoded, int(seed), strategy)
    study.set_user_attr(FINAL_KEY, final.info)
    for line in final.describe(chosen_metric.name):
        listener.on_message(line)
    if final.info["kind"] == "trial" and final.info["trial"] != best.number:
        final_trial = study.get_trials(deepcopy=False)[final.info["trial"]]  # a stand-in
    else:
        final_trial = best
    record = save_model(
        study,
        final.model,
        role="final",
        family=final.info["kind"] if final.info["kind"] == "ensemble" else final.family,
        trial_number=final_trial.number,
        storage_url=url,
    )
    family_record = None
    if final.info["kind"] == "trial":
        # the final trial's model is its family's best; calibrated, the pipeline inside is
        family_record = part_record(record, "model") if final.info.get("temperature") else record
    save_family_bests(
        study,
        run,
        final_trial,
        family_record,
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
    return best_trial(study)
