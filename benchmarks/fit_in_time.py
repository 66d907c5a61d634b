"""What growing a model by warm start costs when time allows, and how close it stops.

``fit_in_time`` trains a first share of a model's iterations or trees to time them, then
the rest in a second ``fit``. With a far deadline it builds the same model, so the ratio
of its wall time to a plain ``fit`` is its overhead; both run alternately in one process
(one thread, as fold fits on small data do), so that a busy machine slows both alike.
Then each configuration is fitted with a deadline at half its plain fit time, to show how
far past the deadline the fit ends.

    python benchmarks/fit_in_time.py
    python benchmarks/fit_in_time.py --task large_mixed --repeats 2
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np
from _tasks import TASKS
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from autotune.data import profile_data
from autotune.families import get_family
from autotune.families._in_time import fit_in_time
from autotune.families._preprocess import make_preprocessor

#: Configurations of the families whose fits grow by warm start: (family, parameters).
CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("hgb", {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31}),
    ("hgb", {"learning_rate": 0.03, "max_iter": 600, "max_leaf_nodes": 64}),
    ("rf", {"n_estimators": 300, "max_features": 0.5, "min_samples_leaf": 1}),
    ("et", {"n_estimators": 300, "max_features": 0.5, "min_samples_leaf": 1}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="digits")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    task = next(t for t in TASKS if t.name == args.task)
    X, y = task.load()
    X, y, profile = profile_data(X, y)
    target = np.asarray(y)
    if profile.is_classification:
        target = np.unique(target.astype(str), return_inverse=True)[1]
    X_train, _, y_train, _ = train_test_split(X, target, random_state=0)
    print(f"{task.name}: {len(X_train)} training rows, {X.shape[1]} columns")
    print(f"{'family':8} {'parameters':62} {'plain s':>8} {'in time s':>10} {'ratio':>6}")
    warnings.simplefilter("ignore")
    with threadpool_limits(1):
        for name, params in CONFIGS:
            family = get_family(name)
            point = family.fit_point(params, profile)
            model = family.build(point, profile, 0)
            data = make_preprocessor(family.preprocessing, profile, 0).fit_transform(
                X_train, y_train
            )
            plain, grown = [], []
            for _ in range(args.repeats):
                started = time.monotonic()
                clone(model).fit(data, y_train)
                plain.append(time.monotonic() - started)
                started = time.monotonic()
                fit_in_time(clone(model), data, y_train, family.resource, started + 3600.0)
                grown.append(time.monotonic() - started)
            cost, cost_grown = float(np.median(plain)), float(np.median(grown))
            print(f"{name:8} {params!s:62} {cost:8.2f} {cost_grown:10.2f} {cost_grown / cost:6.2f}")
            started = time.monotonic()
            deadline = started + cost / 2
            fit_in_time(clone(model), data, y_train, family.resource, deadline)
            print(
                f"{'':8} deadline at half the plain fit ({cost / 2:.2f} s): ended "
                f"{time.monotonic() - deadline:+.2f} s from it"
            )


if __name__ == "__main__":
    main()
