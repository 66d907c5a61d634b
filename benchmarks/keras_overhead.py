"""Per-epoch cost of the Keras family's training wrapper against a bare ``model.fit``.

Both sides train the same network (same layers, optimizer, compile settings and seed) on
the same data. The bare side is ``model.fit(..., validation_data=...)``, the standard way
to watch a validation loss for early stopping, with the validation set in one batch as the
wrapper does it (plain Keras defaults and no validation at all are printed for reference).
The wrapper side is ``KerasFamily.fit`` inside a real trial of a SQLite study with
autotune's pruner and 20 finished trials to compare against, so every epoch pays for what
tuning adds: the validation pass and metric, early-stopping bookkeeping, the divergence
and deadline checks, and the report and pruning decision written to the study. Runs
alternate between the two sides to cancel drift on a shared machine, and each side's
per-epoch time is its median over runs.

Usage::

    python benchmarks/keras_overhead.py [--rows 20000] [--epochs 12] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from autotune.engine._pruning import GroupedPruner
from autotune.families import FitContext
from autotune.families.keras import (
    PREDICT_CHUNK,
    KerasFamily,
    KerasMLPClassifier,
    import_keras,
)
from autotune.metrics import get_metric
from autotune.store import open_storage

PARAMS = {
    "hidden_units": (128, 128),
    "activation": "relu",
    "dropout": 0.1,
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "batch_size": 64,
}


@dataclass
class _StampedContext(FitContext):
    """Records the end of each epoch, after the report and the pruning decision."""

    stamps: list[float] | None = None

    def report(self, value: float, step: int) -> None:
        super().report(value, step)
        assert self.stamps is not None
        self.stamps.append(time.perf_counter())


def _per_epoch(stamps: list[float]) -> float:
    # The first epoch carries graph tracing; later epochs are the steady state.
    return float(np.median(np.diff(stamps)))


def bare_epoch_time(
    data: tuple[np.ndarray, ...], epochs: int, *, validation: str = "one batch"
) -> float:
    """Steady-state seconds per epoch of plain ``model.fit`` on the same network."""
    keras = import_keras()
    X, y, X_valid, y_valid = data
    template = KerasMLPClassifier(**PARAMS, max_epochs=epochs, random_state=0)
    keras.backend.clear_session(free_memory=True)
    keras.utils.set_random_seed(0)
    template.classes_ = np.unique(y)
    model = template._build_network(keras, X.shape[1], 0)
    steps = int(np.ceil(len(X) / PARAMS["batch_size"]))
    model.compile(
        optimizer=template._make_optimizer(keras, steps),
        loss=template._keras_loss(),
        jit_compile=False,
        steps_per_execution=min(8, steps),
    )
    stamps: list[float] = []
    stamp = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: stamps.append(time.perf_counter())
    )
    model.fit(
        X,
        y,
        batch_size=PARAMS["batch_size"],
        epochs=epochs,
        validation_data=(X_valid, y_valid) if validation != "none" else None,
        validation_batch_size=PREDICT_CHUNK if validation == "one batch" else None,
        verbose=0,
        callbacks=[stamp],
    )
    return _per_epoch(stamps)


def wrapper_epoch_time(data: tuple[np.ndarray, ...], epochs: int, study: optuna.Study) -> float:
    """Steady-state seconds per epoch of ``KerasFamily.fit`` inside a real trial."""
    X, y, X_valid, y_valid = data
    metric = get_metric("accuracy", "multiclass")
    classes = np.unique(y)
    trial = study.ask({"family": optuna.distributions.CategoricalDistribution(["keras"])})
    stamps: list[float] = []
    context = _StampedContext(
        X_valid=X_valid,
        y_valid=y_valid,
        score=lambda p: metric.score(y_valid, p, classes),
        trial=trial,
        deadline=time.monotonic() + 3600,
        seed=0,
        stamps=stamps,
    )
    model = KerasMLPClassifier(**PARAMS, max_epochs=epochs, patience=epochs, random_state=0)
    KerasFamily().fit(model, X, y, context)
    study.tell(trial, metric.score(y_valid, model.predict_proba(X_valid), classes))
    return _per_epoch(stamps)


def make_study(folder: Path, epochs: int) -> optuna.Study:
    """A SQLite study like autotune's, with finished trials for the pruner to read."""
    storage = open_storage(f"sqlite:///{folder / 'bench.db'}", heartbeat=False)
    study = optuna.create_study(
        storage=storage,
        study_name="overhead",
        direction="maximize",
        pruner=GroupedPruner({"keras": "epochs"}),
    )
    family = {"family": optuna.distributions.CategoricalDistribution(["keras"])}
    for _ in range(20):
        # Weak finished trials: the pruner reads them every epoch but never prunes ours.
        trial = study.ask(family)
        for step in range(epochs):
            trial.report(0.0, step)
        study.tell(trial, 0.0)
    return study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    X, y = make_classification(
        args.rows, args.features, n_informative=20, n_classes=5, random_state=0
    )
    X = StandardScaler().fit_transform(X)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.2, random_state=0)
    data = (X_train, y_train, X_valid, y_valid)
    import_keras()

    bare: list[float] = []
    wrapped: list[float] = []
    reference: dict[str, list[float]] = {"keras defaults": [], "none": []}
    with tempfile.TemporaryDirectory() as folder:
        study = make_study(Path(folder), args.epochs)
        for repeat in range(args.repeats):
            # Alternate which side goes first so that warm-up and drift hit both alike.
            order = ["bare", "wrapper"] if repeat % 2 == 0 else ["wrapper", "bare"]
            for side in order:
                if side == "bare":
                    bare.append(bare_epoch_time(data, args.epochs))
                else:
                    wrapped.append(wrapper_epoch_time(data, args.epochs, study))
            for kind, times in reference.items():
                times.append(bare_epoch_time(data, args.epochs, validation=kind))
            print(
                f"repeat {repeat + 1}: bare {bare[-1] * 1e3:7.1f} ms/epoch   "
                f"wrapper {wrapped[-1] * 1e3:7.1f} ms/epoch"
            )

    b, w = statistics.median(bare), statistics.median(wrapped)
    print(
        f"\n{len(X_train):,} training rows, {len(X_valid):,} validation rows, "
        f"network {PARAMS['hidden_units']}, batch {PARAMS['batch_size']}, "
        f"{args.epochs} epochs x {args.repeats} repeats"
    )
    print(f"bare model.fit, validation in one batch: {b * 1e3:.1f} ms/epoch")
    print(f"KerasFamily.fit in a SQLite trial:       {w * 1e3:.1f} ms/epoch")
    print(f"overhead ratio wrapper / bare: {w / b:.3f}  ({(w / b - 1) * 100:+.1f}%)")
    for kind, times in reference.items():
        t = statistics.median(times)
        print(
            f"  reference, bare with validation {kind}: {t * 1e3:.1f} ms/epoch (ratio {w / t:.3f})"
        )


if __name__ == "__main__":
    main()
