"""Does the user's own history help? A second, similar task with and without it.

Each task's rows are split in two disjoint halves, as when the same kind of data
arrives again next month. The first half is tuned once into a store (the history,
``--history-budget`` seconds). The second half is then tuned at a small budget twice per
seed: in a copy of that store, where autotune warm-starts from the first study, and in
an empty store. Both are scored on the same held-out 25 % of the second half:
roc_auc (binary, higher is better), log_loss (multiclass) and rmse (regression, lower
is better).

    python benchmarks/warmstart.py                           # default tasks, 10 s, 3 seeds
    python benchmarks/warmstart.py --task fair_affairs --budget 5 --seeds 0
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _tasks import TASKS, Task
from compare import score
from sklearn.model_selection import train_test_split

from autotune import auto_tune

SHOW = False
DEFAULT_TASKS = ["fair_affairs", "multiclass_mixed", "randhie_visits"]


def _halves(task: Task) -> tuple[tuple[pd.DataFrame, pd.Series], tuple[pd.DataFrame, pd.Series]]:
    X, y = task.load()
    order = np.random.default_rng(0).permutation(len(X))
    first, second = order[: len(X) // 2], order[len(X) // 2 :]
    return (X.iloc[first], y.iloc[first]), (X.iloc[second], y.iloc[second])


def _copy_store(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite store, including what still sits in its WAL file."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def _run(task: Task, X: pd.DataFrame, y: pd.Series, budget: float, url: str, seed: int):
    started = time.monotonic()
    result = auto_tune(X, y, timeout=budget, metric=task.metric, seed=seed, storage=url, show=SHOW)
    return result, time.monotonic() - started


def compare_task(task: Task, budget: float, history_budget: float, seeds: list[int]) -> list[dict]:
    (X_old, y_old), (X_new, y_new) = _halves(task)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        history = Path(folder) / "history.db"
        _run(task, X_old, y_old, history_budget, f"sqlite:///{history}", 0)
        for seed in seeds:
            stratify = None if task.kind == "regression" else y_new
            X_train, X_test, y_train, y_test = train_test_split(
                X_new, y_new, test_size=0.25, random_state=seed, stratify=stratify
            )
            for mode in ("with history", "no history"):
                path = Path(folder) / f"{mode.replace(' ', '_')}_{seed}.db"
                if mode == "with history":
                    _copy_store(history, path)
                result, wall = _run(task, X_train, y_train, budget, f"sqlite:///{path}", seed)
                first = result.study.trials[0].params.get("family")
                rows.append(
                    {
                        "task": task.name,
                        "metric": task.metric,
                        "seed": seed,
                        "mode": mode,
                        "score": score(task, result, X_test, y_test),
                        "wall_s": wall,
                        "trials": sum(t.state.is_finished() for t in result.study.trials),
                        "first_family": first,
                    }
                )
                print(
                    f"{task.name:18s} seed {seed} {mode:12s} {rows[-1]['score']:.4f} "
                    f"in {wall:5.1f} s, {rows[-1]['trials']} trials",
                    flush=True,
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", nargs="+", default=DEFAULT_TASKS)
    parser.add_argument("--budget", type=float, default=10.0, help="seconds per new run")
    parser.add_argument("--history-budget", type=float, default=60.0)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--csv", default="benchmarks/results/warmstart.csv")
    args = parser.parse_args()
    by_name = {t.name: t for t in TASKS}
    rows = []
    for name in args.task:
        rows += compare_task(by_name[name], args.budget, args.history_budget, args.seeds)
    frame = pd.DataFrame(rows)
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.csv, index=False)
    table = frame.pivot_table(index=["task", "metric"], columns="mode", values="score")
    print("\nmean held-out score (roc_auc: higher is better; log_loss, rmse: lower)")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
