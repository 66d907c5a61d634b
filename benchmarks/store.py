"""Store benchmarks: per-trial overhead, load time of a large study, parallel throughput.

    python benchmarks/store.py                 # all three
    python benchmarks/store.py --only overhead --trials 500

1. autotune against a bare Optuna loop on the same SQLite file, 500 trials of a trivial
   model each: the same 5-fold cross-validation of a DummyClassifier, the same sampler,
   and per-fold reports to a Wilcoxon pruner as Optuna documents it. What remains is
   autotune's own cost per trial (families, pipelines, heartbeats, metrics, records).
   The two run alternately in blocks so that machine noise hits both alike.
2. ``autotune.load()`` of a study holding 5,000 trials.
3. Trials per second with ``n_jobs`` = 1, 2 and 4 on one SQLite file.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState, create_trial
from sklearn.datasets import load_breast_cancer
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import StratifiedKFold

import autotune
from autotune import auto_tune
from autotune.engine import make_sampler
from autotune.families import ModelFamily, register_family


class DummyFamily(ModelFamily):
    """A model that costs nothing, so that only the tuning machinery is measured."""

    name = "dummy"
    tasks = ("binary", "multiclass")
    preprocessing = "scaled"

    def suggest(self, space, profile):
        return {
            "strategy": space.categorical("strategy", ["prior", "stratified"]),
            "x": space.float("x", 0.0, 1.0),
        }

    def build(self, params, profile, seed):
        return DummyClassifier(strategy=params["strategy"], random_state=seed)


def _data():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:200, :5], y.iloc[:200]


def bench_overhead(n_trials: int, blocks: int = 2) -> None:
    register_family(DummyFamily())
    X, y = _data()
    Xn, yn = X.to_numpy(), y.to_numpy()
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(Xn, yn))

    def bare_objective(trial: optuna.Trial) -> float:
        # The loop Optuna's documentation shows for cross-validation with the Wilcoxon
        # pruner: sample, fit each fold, report it, ask the pruner.
        strategy = trial.suggest_categorical("strategy", ["prior", "stratified"])
        trial.suggest_float("x", 0.0, 1.0)
        scores = []
        for step, (train, valid) in enumerate(folds):
            model = DummyClassifier(strategy=strategy, random_state=0).fit(Xn[train], yn[train])
            scores.append(model.score(Xn[valid], yn[valid]))
            trial.report(scores[-1], step)
            if step >= 3 and trial.should_prune():
                return float(np.mean(scores))
        return float(np.mean(scores))

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        bare = optuna.create_study(
            storage=url,
            study_name="bare",
            direction="maximize",
            sampler=make_sampler("auto", 0),
            pruner=optuna.pruners.WilcoxonPruner(p_threshold=0.1),
        )
        times = {"bare": 0.0, "autotune": 0.0}
        per_block = n_trials // blocks
        for _ in range(blocks):
            started = time.perf_counter()
            bare.optimize(bare_objective, n_trials=per_block)
            times["bare"] += time.perf_counter() - started
            started = time.perf_counter()
            auto_tune(
                X,
                y,
                n_trials=per_block,
                families=["dummy"],
                metric="accuracy",
                storage=url,
                study_name="autotune",
                show=False,
            )
            times["autotune"] += time.perf_counter() - started
        ratio = times["autotune"] / times["bare"]
        print(
            f"per-trial time over {n_trials} trials on one SQLite file: "
            f"bare Optuna {1000 * times['bare'] / n_trials:.1f} ms, "
            f"autotune {1000 * times['autotune'] / n_trials:.1f} ms, ratio {ratio:.2f}x"
        )


def bench_load(n_trials: int = 5000) -> None:
    X, y = _data()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'big.db'}"
        result = auto_tune(
            X, y, n_trials=3, families=["linear"], storage=url, study_name="big", show=False
        )
        template = next(t for t in result.study.trials if t.state == TrialState.COMPLETE)
        rng = np.random.default_rng(0)
        trials = []
        for _ in range(n_trials - len(result.study.trials)):
            params = dict(template.params)
            params["linear.C"] = float(np.exp(rng.uniform(np.log(1e-4), np.log(1e3))))
            trials.append(
                create_trial(
                    params=params,
                    distributions=template.distributions,
                    value=float(rng.uniform(0.8, 0.99)),
                    intermediate_values={i: float(rng.uniform(0.8, 0.99)) for i in range(5)},
                    user_attrs=template.user_attrs,
                )
            )
        result.study.add_trials(trials)
        started = time.perf_counter()
        loaded = autotune.load("big", url)
        elapsed = time.perf_counter() - started
        started = time.perf_counter()
        board = loaded.leaderboard
        board_time = time.perf_counter() - started
        print(
            f"autotune.load() of a {len(board)}-trial study: {elapsed:.2f} s "
            f"(leaderboard of all trials: {board_time:.2f} s more)"
        )


def bench_parallel(n_trials: int = 40) -> None:
    X, y = _data()
    rates = {}
    with tempfile.TemporaryDirectory() as folder:
        for n_jobs in (1, 2, 4):
            url = f"sqlite:///{Path(folder) / f'p{n_jobs}.db'}"
            started = time.perf_counter()
            auto_tune(
                X,
                y,
                n_trials=n_trials,
                n_jobs=n_jobs,
                families=["linear", "knn"],
                storage=url,
                show=False,
            )
            rates[n_jobs] = n_trials / (time.perf_counter() - started)
    print(
        "trials per second (with process start-up): "
        + ", ".join(f"n_jobs={k}: {v:.2f}" for k, v in rates.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["overhead", "load", "parallel"], default=None)
    parser.add_argument("--trials", type=int, default=500)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.only in (None, "overhead"):
        bench_overhead(args.trials)
    if args.only in (None, "load"):
        bench_load()
    if args.only in (None, "parallel"):
        bench_parallel()


if __name__ == "__main__":
    main()
