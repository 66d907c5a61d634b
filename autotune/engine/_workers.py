"""Worker processes: more processes, or more machines, running trials of one study.

A worker re-reads (or receives) the data, checks its fingerprint against the study's,
rebuilds the objective from what the study recorded (task, metric, families, folds,
seed) and runs trials until its own budget or the study's runs out. This is Optuna's own
distributed mode: the store is the only thing workers share.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any

import optuna
import pandas as pd

from autotune.data import profile_data
from autotune.engine._events import Listener
from autotune.engine._run import BUDGET_KEY, make_run, optimize
from autotune.engine._search import encode_target
from autotune.exceptions import ConfigError, StudyMismatchError
from autotune.families import get_family
from autotune.metrics import Metric, get_metric
from autotune.store import load_study, read_meta

__all__ = ["join_study", "start_workers"]


def _study_budget_reached(study: optuna.Study) -> bool:
    budget = study.user_attrs.get(BUDGET_KEY) or {}
    until_time = budget.get("until_time")
    if until_time is not None and time.time() >= until_time:
        return True
    until_trials = budget.get("until_trials")
    if until_trials is None:
        return False
    finished = study._storage.get_n_trials(
        study._study_id,
        state=(
            optuna.trial.TrialState.COMPLETE,
            optuna.trial.TrialState.PRUNED,
            optuna.trial.TrialState.FAIL,
        ),
    )
    return finished >= until_trials


def join_study(
    name: str,
    storage: str | None,
    X: Any,
    y: Any,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    metric: Metric | None = None,
    follow_study_budget: bool = True,
    seed_offset: int = 1000,
    listener: Listener | None = None,
) -> int:
    """Run trials of an existing study on this machine; returns how many it ran.

    Args:
        name: The study to join.
        storage: Its storage URL.
        X, y: The study's data, read again on this machine.
        n_trials, timeout: This worker's own budget (None: no limit of its own).
        metric: The metric object, needed only for studies tuned with a custom metric.
        follow_study_budget: Also stop when the study's recorded budget is used up.
        seed_offset: Keeps workers' samplers apart from each other.
        listener: Receives progress.

    Raises:
        StudyMismatchError: the data is not the study's data.
    """
    listener = listener or Listener()
    started = time.monotonic()
    study = load_study(name, storage, heartbeat=True)  # this process runs trials
    meta = read_meta(study)
    if not meta:
        raise StudyMismatchError(f"Study {name!r} was not made by autotune; it cannot be joined.")
    frame, target, profile = profile_data(X, y, meta["task"])
    if profile.fingerprint != meta.get("fingerprint"):
        raise StudyMismatchError(
            f"This data does not match study {name!r} (fingerprint {profile.fingerprint[:8]}, "
            f"study {str(meta.get('fingerprint'))[:8]}); give the worker the study's data file."
        )
    if metric is None:
        try:
            metric = get_metric(meta["metric"], profile.task)
        except ConfigError:
            raise StudyMismatchError(
                f"Study {name!r} uses the custom metric {meta['metric']!r}; workers need it "
                "passed as metric=."
            ) from None
    families = [get_family(n) for n in meta["families"]]
    run = make_run(
        study,
        frame,
        encode_target(target, profile),
        profile,
        metric,
        families,
        meta,
        seed=int(meta["cv"]["seed"]),
        listener=listener,
        started=started,
        timeout=timeout,
        n_trials=n_trials,
        seed_offset=seed_offset,
        extra_stop=(lambda: _study_budget_reached(study)) if follow_study_budget else None,
        keep_fold_models=False,  # a worker fits no final model
    )
    optimize(run, study)
    return run.n_new


def threads_per_process(n_processes: int) -> int:
    """Native threads each process may use, so that processes do not oversubscribe cores."""
    return max(1, (os.cpu_count() or 1) // n_processes)


def _worker_main(payload: dict[str, Any]) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads_per_process(payload["n_processes"]))
    timeout = None
    if payload["timeout_until"] is not None:
        timeout = max(payload["timeout_until"] - time.time(), 0.1)
    join_study(
        payload["name"],
        payload["storage"],
        payload["X"],
        payload["y"],
        n_trials=payload["n_trials"],
        timeout=timeout,
        metric=payload["metric"],
        follow_study_budget=False,
        seed_offset=1000 * payload["index"],
    )


def start_workers(
    n_workers: int,
    *,
    name: str,
    storage: str,
    X: pd.DataFrame,
    y: pd.Series,
    metric: Metric,
    n_trials: list[int | None],
    timeout_until: float | None,
    seed: int,
) -> list[multiprocessing.Process]:
    """Start worker processes on a study; each runs its share of the trials.

    Processes are spawned, not forked, so that no database connection or thread of this
    process is shared with them.
    """
    context = multiprocessing.get_context("spawn")
    processes = []
    for index in range(n_workers):
        payload = {
            "name": name,
            "storage": storage,
            "X": X,
            "y": y,
            "metric": metric,
            "n_trials": n_trials[index],
            "timeout_until": timeout_until,
            "index": index + 1,
            "n_processes": n_workers + 1,
        }
        process = context.Process(target=_worker_main, args=(payload,), daemon=False)
        process.start()
        processes.append(process)
    return processes
