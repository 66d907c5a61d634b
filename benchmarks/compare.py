"""Compare autotune with an untuned HistGradientBoosting and a hand-written Optuna loop.

Each system gets the same data, the same 75/25 split, the same metric and the same
wall-clock budget. Scores are on the held-out 25 %: roc_auc (binary, higher is better),
log_loss (multiclass, lower is better), rmse (regression, lower is better).

    python benchmarks/compare.py                      # every task, 30 s budget, seed 0
    python benchmarks/compare.py --task wine --budget 10 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd
from sklearn import datasets
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score
from sklearn.model_selection import cross_val_score, train_test_split

from autotune import auto_tune


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # binary, multiclass or regression
    load: Callable[[], tuple[pd.DataFrame, pd.Series]]


def _sk(loader: Callable[..., object]) -> Callable[[], tuple[pd.DataFrame, pd.Series]]:
    return lambda: loader(return_X_y=True, as_frame=True)  # type: ignore[return-value]


def _mixed(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Turn the first column into a category that carries signal, add a noisy
    high-cardinality category, and blank 5 % of all cells."""
    n = len(frame)
    frame = frame.copy()
    frame["colour"] = pd.Categorical(np.where(frame["x0"] > 0, "red", rng.choice(["g", "b"], n)))
    frame["region"] = pd.Categorical(rng.choice([f"r{i}" for i in range(40)], n))
    frame = frame.drop(columns=["x0"])
    return frame.mask(rng.random(frame.shape) < 0.05)


def _generated(n: int = 3000) -> tuple[pd.DataFrame, pd.Series]:
    """Mixed numeric and categorical columns with missing values, binary target."""
    X, y = datasets.make_classification(n_samples=n, n_features=12, n_informative=6, random_state=0)
    frame = _mixed(pd.DataFrame(X, columns=[f"x{i}" for i in range(12)]), np.random.default_rng(0))
    return frame, pd.Series(y, name="target")


def _generated_regression() -> tuple[pd.DataFrame, pd.Series]:
    X, y = datasets.make_friedman1(n_samples=2000, n_features=8, noise=1.0, random_state=0)
    frame = _mixed(pd.DataFrame(X, columns=[f"x{i}" for i in range(8)]), np.random.default_rng(1))
    return frame, pd.Series(y, name="target")


TASKS = [
    Task("breast_cancer", "binary", _sk(datasets.load_breast_cancer)),
    Task("wine", "multiclass", _sk(datasets.load_wine)),
    Task("digits", "multiclass", _sk(datasets.load_digits)),
    Task("diabetes", "regression", _sk(datasets.load_diabetes)),
    Task("generated_mixed", "binary", _generated),
    Task("friedman_mixed", "regression", _generated_regression),
    Task("large_mixed", "binary", lambda: _generated(54_000)),
]

METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def score(kind: str, model: object, X: pd.DataFrame, y: pd.Series) -> float:
    if kind == "binary":
        return float(roc_auc_score(y, model.predict_proba(X)[:, 1]))  # type: ignore[attr-defined]
    if kind == "multiclass":
        proba = model.predict_proba(X)  # type: ignore[attr-defined]
        return float(log_loss(y, proba, labels=model.classes_))  # type: ignore[attr-defined]
    return float(np.sqrt(mean_squared_error(y, model.predict(X))))  # type: ignore[attr-defined]


def hgb(kind: str, **params: object) -> object:
    cls = HistGradientBoostingRegressor if kind == "regression" else HistGradientBoostingClassifier
    return cls(**params)


def run_untuned(task: Task, X, y, budget: float, seed: int) -> object:
    return hgb(task.kind, random_state=seed).fit(X, y)


def run_optuna_loop(task: Task, X, y, budget: float, seed: int) -> object:
    """What a practitioner writes by hand: TPE over HGB with 3-fold CV, then a refit."""
    scoring = {"binary": "roc_auc", "multiclass": "neg_log_loss"}.get(
        task.kind, "neg_root_mean_squared_error"
    )

    def objective(trial: optuna.Trial) -> float:
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_iter": trial.suggest_int("max_iter", 50, 500, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 4, 128, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 2, 100, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 10, log=True),
        }
        return cross_val_score(
            hgb(task.kind, **params, random_state=seed), X, y, cv=3, scoring=scoring
        ).mean()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, timeout=budget * 0.85)
    return hgb(task.kind, **study.best_params, random_state=seed).fit(X, y)


def run_autotune(task: Task, X, y, budget: float, seed: int) -> object:
    with tempfile.TemporaryDirectory() as folder:
        return auto_tune(
            X,
            y,
            timeout=budget,
            metric=METRIC[task.kind],
            seed=seed,
            show=False,
            storage=f"sqlite:///{folder}/bench.db",
        )


SYSTEMS = {"autotune": run_autotune, "untuned_hgb": run_untuned, "optuna_loop": run_optuna_loop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", nargs="*", default=[t.name for t in TASKS])
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--systems", nargs="*", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--csv", default=None, help="also write the rows to this CSV file")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    for task in [t for t in TASKS if t.name in args.task]:
        X, y = task.load()
        for seed in args.seeds:
            split = train_test_split(
                X,
                y,
                test_size=0.25,
                random_state=seed,
                stratify=y if task.kind != "regression" else None,
            )
            X_train, X_test, y_train, y_test = split
            for system in args.systems:
                run = SYSTEMS[system]
                started = time.monotonic()
                model = run(task, X_train, y_train, args.budget, seed)
                elapsed = time.monotonic() - started
                rows.append(
                    {
                        "task": task.name,
                        "metric": METRIC[task.kind],
                        "seed": seed,
                        "system": system,
                        "score": score(task.kind, model, X_test, y_test),
                        "seconds": elapsed,
                        "budget": args.budget,
                    }
                )
                print(
                    f"{task.name:16s} seed {seed} {system:12s} {rows[-1]['score']:.4f} "
                    f"in {elapsed:5.1f} s",
                    flush=True,
                )
    table = pd.DataFrame(rows)
    summary = table.pivot_table(index=["task", "metric"], columns="system", values="score")
    print("\nmean held-out score per task (roc_auc: higher is better; log_loss, rmse: lower)")
    print(summary.round(4).to_string())
    print("\nwall time per system (s): mean / max")
    print(table.groupby("system")["seconds"].agg(["mean", "max"]).round(1).to_string())
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
