"""Choose the starting portfolio of each family from tuning runs on the benchmark tasks.

The configurations that ``auto_tune`` tries first decide what a short budget ends with, so
they are chosen by measurement, in three stages:

1. **Candidates.** On the training part of every benchmark task (split seed 0), tune each
   family alone for ``--budget`` seconds and keep its best configuration. The family's
   current starting points join the candidates.
2. **Cross-evaluation.** Score every candidate of a family on every task by K-fold
   cross-validation of the training part (one repeat), and time it.
3. **Greedy selection** per data size (up to and above ``SMALL_ROWS`` training rows), after
   Feurer et al. (2022), "Auto-sklearn 2.0": a candidate's regret on a task is its distance
   to the best candidate there, scaled by the spread of all candidates; add the candidate
   that most lowers the mean over tasks of the portfolio's smallest regret. The first pick
   opens the search, so it must also be cheap: its median fit time may be at most
   ``FIRST_COST`` times that of scikit-learn's defaults.

The chosen configurations are printed as Python, for ``autotune/families/_portfolio.py``.
Stages 1 and 2 are cached in ``results/``, so that selection can be rerun alone.

Usage:
    python benchmarks/portfolio.py [--families hgb rf et] [--budget 20] [--select-only]
"""

from __future__ import annotations

import argparse
import json
import pprint
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tasks import TASKS, Task
from compare import RESULTS, make_split

from autotune import auto_tune
from autotune.data import DataProfile, profile_data
from autotune.engine import encode_target, family_params, predict_scores
from autotune.engine._cv import choose_n_splits, make_splits
from autotune.families import get_family
from autotune.families._portfolio import SMALL_ROWS
from autotune.families._preprocess import make_pipeline_for
from autotune.metrics import Metric, get_metric

FIRST_COST = 2.0
PICKS = {"hgb": 3, "rf": 2, "et": 2}
CANDIDATES = RESULTS / "portfolio_candidates.json"
SCORES = RESULTS / "portfolio_scores.csv"


def training_part(task: Task) -> tuple[pd.DataFrame, pd.Series]:
    X, y = task.load()
    split = make_split(task, X, y, seed=0)
    return split.X_train, split.y_train


def find_candidates(families: list[str], budget: float) -> dict[str, list[dict[str, Any]]]:
    """Stage 1: each family's best configuration per task, and its current starting points."""
    found: dict[str, list[dict[str, Any]]] = (
        json.loads(CANDIDATES.read_text()) if CANDIDATES.exists() else {}
    )
    for name in families:
        if name in found:
            continue
        points: list[dict[str, Any]] = []
        for task in TASKS:
            X, y = training_part(task)
            folder = tempfile.mkdtemp()
            result = auto_tune(
                X,
                y,
                families=[name],
                timeout=budget,
                metric=task.metric,
                show=False,
                storage=f"sqlite:///{folder}/portfolio.db",
            )
            best = result.study.best_trial.params
            prefix = f"{name}."
            points.append({k[len(prefix) :]: v for k, v in best.items() if k.startswith(prefix)})
            print(f"  {name} {task.name}: {points[-1]}", flush=True)
        _, _, profile = profile_data(*training_part(TASKS[0]))
        found[name] = points + get_family(name).starting_points(profile)
        CANDIDATES.write_text(json.dumps(found, indent=1))
    return found


def cross_validate(
    name: str,
    params: dict[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    profile: DataProfile,
    metric: Metric,
) -> tuple[float, float]:
    """Out-of-fold score and median fit time of one configuration."""
    family = get_family(name)
    splits = make_splits(profile, y, choose_n_splits(profile), seed=0)
    shape = (len(y), profile.n_classes) if profile.is_classification else (len(y),)
    oof = np.zeros(shape)
    times = []
    for train, valid in splits:
        model = family.build(dict(params), profile, seed=0)
        pipe = make_pipeline_for(family.preprocessing, model, profile)
        start = time.perf_counter()
        pipe.fit(X.iloc[train], y[train])
        times.append(time.perf_counter() - start)
        oof[valid] = predict_scores(pipe, X.iloc[valid], profile)
    classes = np.asarray(profile.classes, dtype=object)
    return metric.score(y, oof, classes), float(np.median(times))


def evaluate(
    candidates: dict[str, list[dict[str, Any]]], tasks: list[Task], path: Path
) -> pd.DataFrame:
    """Stage 2: every candidate of every family on every task."""
    done = pd.read_csv(path) if path.exists() else pd.DataFrame()
    rows = done.to_dict("records")
    seen = {(r["family"], r["candidate"], r["task"]) for r in rows}
    for task in tasks:
        X, y_raw = training_part(task)
        X, y_series, profile = profile_data(X, y_raw)
        y = encode_target(y_series, profile)
        metric = get_metric(task.metric, profile.task)
        for name, points in candidates.items():
            family = get_family(name)
            for index, raw in enumerate(points):
                if (name, index, task.name) in seen:
                    continue
                point = family.fit_point(raw, profile)
                prefixed = {f"{name}.{k}": v for k, v in point.items()}
                params = family_params(prefixed, family, profile)
                score, seconds = cross_validate(name, params, X, y, profile, metric)
                rows.append(
                    {
                        "family": name,
                        "candidate": index,
                        "task": task.name,
                        "rows": profile.n_rows,
                        "greater_is_better": metric.greater_is_better,
                        "score": score,
                        "fit_s": seconds,
                    }
                )
                print(f"  {task.name} {name}#{index}: {score:.4g} in {seconds:.2f} s", flush=True)
                pd.DataFrame(rows).to_csv(path, index=False)
    return pd.DataFrame(rows)


def regrets(scores: pd.DataFrame) -> pd.DataFrame:
    """Candidate × task regret in [0, 1]: 0 for the task's best candidate, 1 for its worst."""
    loss = scores["score"].where(~scores["greater_is_better"], -scores["score"])
    table = scores.assign(loss=loss).pivot_table(index="candidate", columns="task", values="loss")
    spread = (table.max() - table.min()).replace(0.0, 1.0)
    return (table - table.min()) / spread


def select(scores: pd.DataFrame, picks: int, default: int) -> list[int]:
    """Stage 3: greedy portfolio, its first member no costlier than ``FIRST_COST`` × default."""
    regret = regrets(scores)
    cost = scores.pivot_table(index="candidate", columns="task", values="fit_s")
    relative = (cost / cost.loc[default]).median(axis=1)
    chosen: list[int] = []
    best = pd.Series(np.inf, index=regret.columns)
    for _ in range(picks):
        allowed = regret.index if chosen else relative.index[relative <= FIRST_COST]
        gains = {c: np.minimum(best, regret.loc[c]).mean() for c in allowed if c not in chosen}
        pick = min(gains, key=gains.__getitem__)
        chosen.append(int(pick))
        best = np.minimum(best, regret.loc[pick])
        print(f"    + #{pick}: mean regret {gains[pick]:.3f}, cost {relative[pick]:.2f}× default")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=list(PICKS))
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per tuning run")
    parser.add_argument("--select-only", action="store_true", help="reuse cached scores")
    parser.add_argument("--task", nargs="+", help="cross-validate on these tasks only")
    parser.add_argument("--scores", type=Path, nargs="+", default=[SCORES], help="score CSVs")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    RESULTS.mkdir(exist_ok=True)
    with threadpool_limits(1):
        candidates = json.loads(CANDIDATES.read_text()) if args.select_only else None
        candidates = candidates or find_candidates(args.families, args.budget)
        if args.select_only:
            scores = pd.concat([pd.read_csv(path) for path in args.scores], ignore_index=True)
            scores = scores.drop_duplicates(["family", "candidate", "task"])
        else:
            tasks = [t for t in TASKS if not args.task or t.name in args.task]
            scores = evaluate(candidates, tasks, args.scores[0])
    portfolio: dict[str, dict[str, list[dict[str, Any]]]] = {}
    small = scores.rows <= SMALL_ROWS
    for name in args.families:
        portfolio[name] = {}
        for size, part in (("small", small), ("large", ~small)):
            print(f"{name}, {size} data:")
            # the candidates are one per task, then the family's earlier starting points
            chosen = select(scores[part & (scores.family == name)], PICKS[name], len(TASKS))
            portfolio[name][size] = [candidates[name][c] for c in chosen]
    print("PORTFOLIO = " + pprint.pformat(portfolio, sort_dicts=False))


if __name__ == "__main__":
    main()
