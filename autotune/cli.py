"""The ``autotune`` command: tune a CSV or Parquet file, and look after the study store."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from autotune.exceptions import AutotuneError, DataError

__all__ = ["main", "read_table"]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame.

    Raises:
        DataError: the file is missing or of another format.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"Data file {path} does not exist.")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".txt", ".gz"):
        return pd.read_csv(path)
    raise DataError(f"Cannot read {path}: use a .csv or .parquet file.")


def split_target(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.Series]:
    """Split a table into features and the named target column.

    Raises:
        DataError: the target column is absent.
    """
    if target not in frame.columns:
        raise DataError(
            f"Target column {target!r} is not in the data; columns are {list(frame.columns)[:20]}."
        )
    return frame.drop(columns=[target]), frame[target]


def _cmd_tune(args: argparse.Namespace) -> int:
    from autotune import auto_tune
    from autotune.data import profile_data
    from autotune.store import study_name_for

    frame = read_table(args.data)
    X, y = split_target(frame, args.target)
    study = args.study
    if study is None:
        fingerprint = profile_data(X, y, args.task)[2].fingerprint
        study = study_name_for(args.name or Path(args.data).stem, fingerprint)
    result = auto_tune(
        X,
        y,
        timeout=args.timeout,
        n_trials=args.n_trials,
        metric=args.metric,
        families=args.families.split(",") if args.families else "auto",
        strategy=args.strategy,
        storage=args.storage,
        study_name=study,
        task=args.task,
        n_jobs=args.n_jobs,
        seed=args.seed,
        show=not args.quiet,
    )
    _print_leaderboard(result.leaderboard, args.top)
    if args.report:
        path = result.report(args.report)
        print(f"report: {path}")
    return 0


def _print_leaderboard(board: pd.DataFrame, top: int) -> None:
    columns = [c for c in board.columns if "." not in c and c != "error"]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(board[columns].head(top).to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def _cmd_studies(args: argparse.Namespace) -> int:
    from autotune.store import list_studies

    table = list_studies(args.storage)
    if table.empty:
        print("no studies")
    else:
        print(table.to_string(index=False))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from autotune import load

    result = load(args.name, args.storage)
    meta = result.study.user_attrs.get("autotune", {})
    print(f"study {args.name}: {meta.get('task')} task, metric {meta.get('metric')}")
    if hasattr(result, "best_score_"):
        print(f"best {result.best_score_:.4g} by {result.best_family_}: {result.best_params_}")
    _print_leaderboard(result.leaderboard, args.top)
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from autotune.engine._workers import join_study
    from autotune.store import load_study, read_meta
    from autotune.ui import make_listener

    meta = read_meta(load_study(args.study, args.storage))
    target = args.target or meta.get("target_column")
    if not target:
        raise DataError("The study does not record its target column; pass --target COLUMN.")
    X, y = split_target(read_table(args.data), target)
    n = join_study(
        args.study,
        args.storage,
        X,
        y,
        n_trials=args.n_trials,
        timeout=args.timeout,
        follow_study_budget=args.n_trials is None and args.timeout is None,
        listener=make_listener(not args.quiet) if not args.quiet else None,
    )
    print(f"worker ran {n} trials of study {args.study}")
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    from autotune.store import delete_study

    if not args.yes:
        answer = input(f"Delete study {args.name!r} and its stored models? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return 1
    delete_study(args.name, args.storage)
    print(f"deleted {args.name}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from autotune.store import export_study

    path = export_study(args.name, args.to, args.storage)
    print(f"exported {args.name} to {path}")
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from autotune.store import run_dashboard

    run_dashboard(args.storage, host=args.host, port=args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autotune", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    tune = sub.add_parser("tune", help="tune models on a CSV or Parquet file")
    tune.add_argument("data", help="path of a .csv or .parquet file")
    tune.add_argument("--target", required=True, help="name of the target column")
    tune.add_argument("--timeout", type=float, default=None, help="budget in seconds")
    tune.add_argument("--n-trials", type=int, default=None, help="number of new trials")
    tune.add_argument("--metric", default="auto")
    tune.add_argument("--task", default="auto")
    tune.add_argument("--families", default=None, help="comma-separated family names")
    tune.add_argument("--strategy", default="auto")
    tune.add_argument("--storage", default=None, help="Optuna storage URL")
    tune.add_argument("--study", default=None, help="study name")
    tune.add_argument(
        "--name", default=None, help="readable prefix of the study name (default: file name)"
    )
    tune.add_argument("--n-jobs", type=int, default=1)
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--top", type=int, default=10, help="leaderboard rows to print")
    tune.add_argument("--report", default=None, help="write an HTML report to this path")
    tune.add_argument("--quiet", action="store_true", help="no progress output")
    tune.set_defaults(func=_cmd_tune)

    studies = sub.add_parser("studies", help="list the studies in the store")
    studies.add_argument("--storage", default=None)
    studies.set_defaults(func=_cmd_studies)

    show = sub.add_parser("show", help="print a study's summary and leaderboard")
    show.add_argument("name")
    show.add_argument("--storage", default=None)
    show.add_argument("--top", type=int, default=10)
    show.set_defaults(func=_cmd_show)

    worker = sub.add_parser("worker", help="join a study from this machine and run trials")
    worker.add_argument("--study", required=True)
    worker.add_argument("--storage", required=True, help="the study's storage URL")
    worker.add_argument("--data", required=True, help="the study's data, .csv or .parquet")
    worker.add_argument("--target", default=None, help="target column (default: the study's)")
    worker.add_argument(
        "--n-trials", type=int, default=None, help="own budget (default: the study's budget)"
    )
    worker.add_argument("--timeout", type=float, default=None, help="own budget in seconds")
    worker.add_argument("--quiet", action="store_true")
    worker.set_defaults(func=_cmd_worker)

    delete = sub.add_parser("delete", help="remove a study and its stored models")
    delete.add_argument("name")
    delete.add_argument("--storage", default=None)
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(func=_cmd_delete)

    export = sub.add_parser("export", help="copy a study into a standalone SQLite file")
    export.add_argument("name")
    export.add_argument("--to", required=True, help="path of the new .db file")
    export.add_argument("--storage", default=None)
    export.set_defaults(func=_cmd_export)

    dashboard = sub.add_parser("dashboard", help="serve optuna-dashboard on the store")
    dashboard.add_argument("--storage", default=None)
    dashboard.add_argument("--host", default="127.0.0.1")
    dashboard.add_argument("--port", type=int, default=8080)
    dashboard.set_defaults(func=_cmd_dashboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``autotune`` command; errors print one line and exit with 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except AutotuneError as error:
        print(f"autotune: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("autotune: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
