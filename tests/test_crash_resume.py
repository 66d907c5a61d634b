"""Kill a real tuning process with SIGKILL mid-trial, five times, and resume each time."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

pytestmark = pytest.mark.slow

SCRIPT = """
import sys, pandas as pd, autotune
d = pd.read_csv(sys.argv[1])
autotune.auto_tune(d.drop(columns="target"), d["target"], n_trials=int(sys.argv[3]),
                   storage=sys.argv[2], study_name="crash", families=["linear", "knn"],
                   show=False)
"""


def _snapshot(url: str) -> dict[int, float]:
    study = optuna.load_study(study_name="crash", storage=url)
    return {
        t.number: t.value
        for t in study.get_trials(deepcopy=False)
        if t.state == TrialState.COMPLETE
    }


def _query(db, sql: str) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute(sql).fetchone()[0] or 0
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def _running(db, after: int) -> int:
    """RUNNING trials newer than ``after``: the live process's, not a stale one."""
    return _query(db, f"SELECT COUNT(*) FROM trials WHERE state = 'RUNNING' AND trial_id > {after}")


def test_kill_and_resume_loses_nothing(tmp_path, binary_data):
    X, y = binary_data
    data = tmp_path / "data.csv"
    X.assign(target=y).to_csv(data, index=False)
    db = tmp_path / "crash.db"
    url = f"sqlite:///{db}"
    env = {**os.environ, "AUTOTUNE_HEARTBEAT_INTERVAL": "1", "AUTOTUNE_GRACE_PERIOD": "3"}
    rng = random.Random(7)
    snapshots: list[dict[int, float]] = []
    for _ in range(5):
        last = _query(db, "SELECT MAX(trial_id) FROM trials") if db.exists() else 0
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(data), url, "1000"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            # Wait until the process is inside a trial, then a random moment more.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                if db.exists() and _running(db, last):
                    break
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.5))
            while _running(db, last) == 0 and proc.poll() is None:
                time.sleep(0.01)
            assert proc.poll() is None, proc.stderr.read().decode()
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        snapshots.append(_snapshot(url))

    time.sleep(4)  # let the last killed trial's heartbeat go stale
    final = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data), url, "3"], env=env, capture_output=True, text=True
    )
    assert final.returncode == 0, final.stderr
    study = optuna.load_study(study_name="crash", storage=url)
    trials = study.get_trials(deepcopy=False)
    complete = {t.number: t.value for t in trials if t.state == TrialState.COMPLETE}

    # no finished trial lost or changed
    for snapshot in snapshots:
        for number, value in snapshot.items():
            assert complete.get(number) == value
    # no trial left running
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    # every kill left a stale trial, failed and retried with the same parameters
    stale = [t for t in trials if t.state == TrialState.FAIL]
    assert len(stale) >= 5
    by_number = {t.number: t for t in trials}
    retries = [t for t in trials if "failed_trial" in t.system_attrs]
    assert retries
    for retry in retries:
        original = by_number[retry.system_attrs["failed_trial"]]
        assert original.state == TrialState.FAIL
        # the retry repeats what the killed trial had sampled (nothing, if it died at once)
        assert original.params.items() <= retry.params.items()
    # no duplicated work: each stale trial completes at most once through its retries
    completed = [t.system_attrs["failed_trial"] for t in retries if t.state == TrialState.COMPLETE]
    assert len(completed) == len(set(completed))
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
