"""Folds fitted side by side in worker processes, and the run going on when they fail."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import optuna
import pytest
from sklearn.linear_model import LogisticRegression

from autotune.data import profile_data
from autotune.engine import Listener, encode_target, make_splits, tune
from autotune.engine._objective import Objective
from autotune.engine._parallel import FOLD_WORKERS_VARIABLE, FoldPool, fold_workers
from autotune.exceptions import ConfigError
from autotune.families import ModelFamily, get_family
from autotune.metrics import get_metric


class Recorder(Listener):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def on_message(self, text: str) -> None:
        self.messages.append(text)


class LockedLinear(ModelFamily):
    """A user family holding a lock: it cannot be sent to another process."""

    name = "locked"

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def suggest(self, space: Any, profile: Any) -> dict[str, Any]:
        return {"C": space.float("C", 0.1, 10.0, log=True)}

    def build(self, params: dict[str, Any], profile: Any, seed: int) -> LogisticRegression:
        return LogisticRegression(C=params["C"], max_iter=500)


class DiesInWorker(LockedLinear):
    """Kills any process but the tuning process that fits it, as a crash would."""

    name = "dies"

    def __init__(self) -> None:
        self.home = os.getpid()

    def fit(self, model: Any, X: Any, y: np.ndarray, context: Any) -> Any:
        if os.getpid() != self.home:
            os._exit(3)
        return model.fit(X, y)


def _objective(X, y, families, pool) -> Objective:
    _, target, profile = profile_data(X, y, "auto")
    y_encoded = encode_target(target, profile)
    splits = make_splits(profile, y_encoded, 5, seed=0)
    metric = get_metric("auto", profile.task)
    return Objective(X, y_encoded, profile, families, metric, [], splits, seed=0, pool=pool)


def test_fold_workers_follow_cores_data_size_and_the_setting(binary_data, monkeypatch) -> None:
    X, y = binary_data
    profile = profile_data(X, y, "auto")[2]
    monkeypatch.delenv(FOLD_WORKERS_VARIABLE, raising=False)
    import joblib

    assert fold_workers(profile, 5) == min(joblib.cpu_count(), 5)
    assert fold_workers(profile, 1) == 1
    large = profile_data(np.zeros((10_001, 2)), np.arange(10_001) % 2, "auto")[2]
    assert fold_workers(large, 3) == 1  # there every fit uses all cores itself
    monkeypatch.setenv(FOLD_WORKERS_VARIABLE, "1")
    assert fold_workers(profile, 5) == 1
    monkeypatch.setenv(FOLD_WORKERS_VARIABLE, "two")
    with pytest.raises(ConfigError, match=FOLD_WORKERS_VARIABLE):
        fold_workers(profile, 5)


def test_pool_scores_every_trial_as_the_serial_run_does(binary_data, tmp_path, monkeypatch) -> None:
    X, y = binary_data
    values = {}
    for workers in ("2", "1"):
        monkeypatch.setenv(FOLD_WORKERS_VARIABLE, workers)
        recorder = Recorder()
        outcome = tune(
            X,
            y,
            n_trials=5,
            families=["hgb", "linear"],
            storage=f"sqlite:///{tmp_path / workers}.db",
            listener=recorder,
        )
        values[workers] = [(t.params, t.value, t.state) for t in outcome.study.trials]
        used = any("fitting folds in 2 processes" in m for m in recorder.messages)
        assert used == (workers == "2")
    assert values["2"] == values["1"]
    assert sum(state == optuna.trial.TrialState.COMPLETE for *_, state in values["2"]) >= 2


@pytest.mark.parametrize("family", [LockedLinear(), DiesInWorker()], ids=["unpicklable", "crash"])
def test_run_goes_on_without_the_pool_when_it_fails(binary_data, family) -> None:
    X, y = binary_data
    objective = _objective(X, y, [family, get_family("linear")], FoldPool(2))
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"family": family.name, f"{family.name}.C": 1.0})
    study.optimize(objective, n_trials=1)
    serial = _objective(X, y, [family, get_family("linear")], None)
    check = optuna.create_study(direction="maximize")
    check.enqueue_trial({"family": family.name, f"{family.name}.C": 1.0})
    check.optimize(serial, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE
    assert study.trials[0].value == pytest.approx(check.trials[0].value)
    assert objective.pool is None
    assert objective.pool_error is not None
    assert ("PicklingError" if family.name == "locked" else "Terminated") in objective.pool_error
