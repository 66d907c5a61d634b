"""Trial throughput on small data: folds side by side in processes, and the pruner's cost.

Two measurements, each side by side in one run (alternating, so that a busy machine
slows both alike):

1. The fold-wise Wilcoxon check, Optuna's ``WilcoxonPruner`` against autotune's
   ``FoldWilcoxonPruner``, on n = 5 … 14 paired fold scores of which one ties the best
   trial's (SciPy then falls back to a permutation test for n ≤ 13).
2. The same ``n_trials`` study, seed and data, with the folds fitted in the tuning
   process (``AUTOTUNE_FOLD_WORKERS=1``) and in one worker process per core. The trials
   are identical (the test suite checks this), so the ratio of wall times is the speed-up.

    python benchmarks/folds.py                         # breast_cancer, wine, diabetes
    python benchmarks/folds.py --task digits --trials 8 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

import numpy as np
import optuna
from _tasks import TASKS
from optuna.trial import TrialState, create_trial

from autotune.engine import tune
from autotune.engine._parallel import FOLD_WORKERS_VARIABLE
from autotune.engine._pruning import FoldWilcoxonPruner


def pruner_seconds(pruner: optuna.pruners.BasePruner, n: int, repeats: int = 5) -> float:
    """Mean seconds of one ``prune`` call on ``n`` folds, one of them tied with the best."""
    rng = np.random.default_rng(n)
    best = rng.uniform(0.95, 1.0, 15)
    current = best[:n] - rng.uniform(0.0, 0.02, n)
    current[0] = best[0]
    study = optuna.create_study(direction="maximize")
    study.add_trial(
        create_trial(
            value=float(best.mean()),
            intermediate_values=dict(enumerate(best.tolist())),
            state=TrialState.COMPLETE,
        )
    )
    study.add_trial(
        create_trial(
            intermediate_values=dict(enumerate(current.tolist())), state=TrialState.RUNNING
        )
    )
    trial = study.trials[-1]
    started = time.perf_counter()
    for _ in range(repeats):
        pruner.prune(study, trial)
    return (time.perf_counter() - started) / repeats


def compare_pruners() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    theirs = optuna.pruners.WilcoxonPruner(p_threshold=0.05, n_startup_steps=2)
    ours = FoldWilcoxonPruner(p_threshold=0.05, n_startup_steps=2)
    print("folds  optuna_ms  autotune_ms  ratio")
    for n in range(5, 15):
        a, b = pruner_seconds(theirs, n), pruner_seconds(ours, n)
        print(f"{n:5d}  {a * 1e3:9.1f}  {b * 1e3:11.2f}  {a / b:5.0f}x")


def run_once(task_name: str, n_trials: int, workers: str) -> float:
    task = next(t for t in TASKS if t.name == task_name)
    X, y = task.load()
    os.environ[FOLD_WORKERS_VARIABLE] = workers
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        tune(X, y, n_trials=n_trials, metric=task.metric, storage=f"sqlite:///{folder}/b.db")
        return time.perf_counter() - started


def compare_pool(tasks: list[str], n_trials: int, repeats: int) -> None:
    print(f"\n{n_trials} trials each; wall seconds, median of {repeats}")
    print("task              serial   pool  speed-up")
    for name in tasks:
        run_once(name, 2, "")  # start and warm the pool once, outside the timings
        serial, pool = [], []
        for _ in range(repeats):
            pool.append(run_once(name, n_trials, ""))
            serial.append(run_once(name, n_trials, "1"))
        s, p = float(np.median(serial)), float(np.median(pool))
        print(f"{name:16s} {s:7.1f} {p:6.1f} {s / p:8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", nargs="+", default=["breast_cancer", "wine", "diabetes"])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    compare_pruners()
    compare_pool(args.task, args.trials, args.repeats)


if __name__ == "__main__":
    main()
