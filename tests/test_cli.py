"""The autotune command, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
import uuid

import optuna
import pytest
from optuna.trial import TrialState

import autotune


def _cli(*args: str, stdin: str | None = None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autotune.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
    )


@pytest.fixture
def csv(tmp_path, mixed_data):
    X, y = mixed_data
    path = tmp_path / "shop.csv"
    X.assign(buy=y).to_csv(path, index=False)
    return path


def _tuned(csv, url: str, n_trials: str) -> str:
    """Tune the CSV into the store and return the study's name."""
    run = _cli("tune", str(csv), "--target", "buy", "--n-trials", n_trials, "--storage", url)
    assert run.returncode == 0, run.stderr
    return autotune.studies(url)["name"].iloc[0]


def test_tune_studies_show_delete(csv, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    run = _cli("tune", str(csv), "--target", "buy", "--n-trials", "4", "--storage", url)
    assert run.returncode == 0, run.stderr
    assert "new study 'shop-" in run.stdout
    assert "family" in run.stdout and "score" in run.stdout  # the leaderboard
    assert "shop-" in run.stderr  # the progress bar
    name = autotune.studies(url)["name"].iloc[0]
    listed = _cli("studies", "--storage", url)
    assert name in listed.stdout and "roc_auc" in listed.stdout
    shown = _cli("show", name, "--storage", url)
    assert shown.returncode == 0 and "best" in shown.stdout
    kept = _cli("delete", name, "--storage", url, stdin="n\n")
    assert kept.returncode == 1 and name in set(autotune.studies(url)["name"])
    gone = _cli("delete", name, "--storage", url, stdin="y\n")
    assert gone.returncode == 0 and autotune.studies(url).empty


def test_errors_are_one_line(csv, tmp_path):
    run = _cli("tune", str(csv), "--target", "nope", "--n-trials", "1")
    assert run.returncode == 2
    assert "Target column 'nope' is not in the data" in run.stderr
    assert "Traceback" not in run.stderr
    missing = _cli("tune", str(tmp_path / "missing.csv"), "--target", "x")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_export(csv, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    name = _tuned(csv, url, "2")
    out = tmp_path / "copy.db"
    run = _cli("export", name, "--to", str(out), "--storage", url)
    assert run.returncode == 0, run.stderr
    assert optuna.get_all_study_names(f"sqlite:///{out}") == [name]


@pytest.mark.slow
def test_three_workers_on_postgres(postgres_url, csv):
    name = f"w-{uuid.uuid4().hex[:8]}"
    first = _cli(
        "tune",
        str(csv),
        "--target",
        "buy",
        "--n-trials",
        "2",
        "--storage",
        postgres_url,
        "--study",
        name,
        "--families",
        "linear,knn",
        "--quiet",
    )
    assert first.returncode == 0, first.stderr
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "autotune.cli",
                "worker",
                "--study",
                name,
                "--storage",
                postgres_url,
                "--data",
                str(csv),
                "--n-trials",
                "6",
                "--quiet",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        assert "worker ran 6 trials" in out
    study = optuna.load_study(
        study_name=name, storage=postgres_url.replace("postgresql://", "postgresql+psycopg://")
    )
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 2 + 3 * 6
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    values = [t.value for t in study.trials if t.state == TrialState.COMPLETE]
    assert study.best_value == max(values)


def test_worker_refuses_other_data(csv, tmp_path, binary_data):
    url = f"sqlite:///{tmp_path / 's.db'}"
    name = _tuned(csv, url, "1")
    other = tmp_path / "other.csv"
    X, y = binary_data
    X.assign(buy=y).to_csv(other, index=False)
    run = _cli("worker", "--study", name, "--storage", url, "--data", str(other), "--n-trials", "1")
    assert run.returncode == 2 and "does not match study" in run.stderr
