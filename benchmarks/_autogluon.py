"""AutoGluon-Tabular for ``compare.py``, run by the interpreter that has AutoGluon.

AutoGluon pins its own versions of pandas and pyarrow (1.6 wants pandas < 2.4), so it
usually lives in an environment of its own and ``compare.py`` calls this script there.
Data travels as Parquet, which keeps categories and missing values across pandas versions.

    python _autogluon.py fit FOLDER METRIC BUDGET SEED THREADS   # reads FOLDER/train.parquet
    python _autogluon.py predict FOLDER                          # reads FOLDER/test.parquet

``fit`` writes the predictor to FOLDER/predictor and its fit seconds to FOLDER/fit.json;
``predict`` writes FOLDER/predictions.npy: class probabilities, columns in sorted label
order, or values for regression. This script imports nothing from autotune.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

LABEL = "__label__"
EVAL_METRIC = {"roc_auc": "roc_auc", "log_loss": "log_loss", "rmse": "root_mean_squared_error"}
PROBLEM_TYPE = {"roc_auc": "binary", "log_loss": "multiclass", "rmse": "regression"}


def fit(folder: Path, metric: str, budget: float, seed: int, threads: int) -> None:
    from autogluon.tabular import TabularPredictor

    train = pd.read_parquet(folder / "train.parquet")
    started = time.perf_counter()
    predictor = TabularPredictor(
        label=LABEL,
        eval_metric=EVAL_METRIC[metric],
        problem_type=PROBLEM_TYPE[metric],
        path=str(folder / "predictor"),
        verbosity=0,
    )
    predictor.fit(train, time_limit=budget, num_cpus=threads, ag_args_fit={"random_seed": seed})
    seconds = time.perf_counter() - started
    (folder / "fit.json").write_text(json.dumps({"fit_seconds": seconds}))


def predict(folder: Path) -> None:
    from autogluon.tabular import TabularPredictor

    predictor = TabularPredictor.load(str(folder / "predictor"))
    test = pd.read_parquet(folder / "test.parquet")
    if predictor.problem_type == "regression":
        values = predictor.predict(test).to_numpy(dtype=float)
    else:
        proba = predictor.predict_proba(test, as_multiclass=True)
        values = proba[sorted(proba.columns)].to_numpy(dtype=float)
    np.save(folder / "predictions.npy", values)


def main() -> None:
    warnings.filterwarnings("ignore")
    command, folder, *rest = sys.argv[1:]
    if command == "fit":
        metric, budget, seed, threads = rest
        fit(Path(folder), metric, float(budget), int(seed), int(threads))
    elif command == "predict":
        predict(Path(folder))
    else:
        raise SystemExit(f"unknown command {command!r}: use fit or predict")


if __name__ == "__main__":
    main()
