"""The Keras family: real training on tiny data, pruning, divergence, deadline, saving."""

from __future__ import annotations

import gc
import itertools
import os
import subprocess
import sys
import textwrap
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression

import autotune
from autotune.data import profile_data
from autotune.engine._objective import BEHIND_KEY, PASSED_OVER_KEY
from autotune.families import FitContext, ModelFamily, Space, get_family
from autotune.families.keras import (
    OPTIMIZERS,
    SCHEDULES,
    KerasFamily,
    KerasMLPClassifier,
    KerasMLPRegressor,
    TrainingDiverged,
)

if TYPE_CHECKING:
    from autotune.engine import Objective

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def classification() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(400, 12, n_informative=8, n_classes=3, class_sep=1.5, random_state=0)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), y


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_regression(400, 8, noise=5.0, random_state=0)
    return X.astype(np.float32), 100.0 * y


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )


def _sample(family: KerasFamily, profile, strategy: str = "auto", seed: int = 0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    return trial, family.suggest(Space(trial, family.name, strategy=strategy), profile)


# -- no TensorFlow until it is needed ---------------------------------------------------------
def test_import_autotune_loads_no_tensorflow_or_keras() -> None:
    done = _run_python(
        """
        import sys
        import autotune
        from autotune.families import get_family
        get_family("keras")
        loaded = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
        assert not loaded, loaded
        """
    )
    assert done.returncode == 0, done.stderr


def test_registered_and_reported_by_auto_choice(classification) -> None:
    family = get_family("keras")
    assert isinstance(family, KerasFamily)
    assert family.fidelity == "epochs" and family.preprocessing == "scaled"
    X, y = classification
    _, _, small = profile_data(X, y)
    assert "rows" in family.suitability(small, None)
    X_big, y_big = make_classification(2000, 10, random_state=0)
    _, _, big = profile_data(X_big, y_big)
    assert family.suitability(big, None) is None
    assert family.suitability(big, 120) is None
    assert "budget" in family.suitability(big, 20)
    _, line = autotune.families.choose_families(small, "auto", 60)
    assert "keras (" in line  # left out, with the reason printed


# -- the search space -------------------------------------------------------------------------
def test_space_replays_and_gradient_strategy_forces_hypergradient(classification) -> None:
    X, y = classification
    _, _, profile = profile_data(X, y)
    family = KerasFamily()
    seen_schedules, seen_optimizers = set(), set()
    for seed in range(40):
        trial, params = _sample(family, profile, seed=seed)
        seen_schedules.add(params["schedule"])
        seen_optimizers.add(params["optimizer"])
        replay = family.suggest(Space(optuna.trial.FixedTrial(trial.params), "keras"), profile)
        assert replay == params
        assert 1 <= len(params["hidden_units"]) <= 4
    assert seen_schedules == set(SCHEDULES) and seen_optimizers == set(OPTIMIZERS)

    trial, params = _sample(family, profile, strategy="gradient")
    assert params["schedule"] == "hypergradient" and "keras.schedule" not in trial.params
    replay = family.suggest(
        Space(optuna.trial.FixedTrial(trial.params), "keras", strategy="gradient"), profile
    )
    assert replay == params


def test_starting_points_are_points_of_the_space(classification) -> None:
    X, y = classification
    _, _, profile = profile_data(X, y)
    family = KerasFamily()
    points = family.starting_points(profile)
    assert {p["optimizer"] for p in points} >= {"adam", "sgd"}
    for point in points:
        study = optuna.create_study()
        study.enqueue_trial({f"keras.{k}": v for k, v in point.items()})
        trial = study.ask()
        with _NoRangeWarning():
            params = family.suggest(Space(trial, "keras"), profile)
        assert {k.removeprefix("keras.") for k in trial.params} == set(point)
        assert params["optimizer"] == point["optimizer"]


class _NoRangeWarning:
    """Fails on any 'out of range' warning, which would mean a point leaves the space."""

    def __enter__(self) -> None:
        import warnings

        self._catch = warnings.catch_warnings(record=True)
        self._log = self._catch.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc: object) -> None:
        self._catch.__exit__(*exc)
        messages = [str(w.message) for w in self._log if "out of range" in str(w.message)]
        assert not messages, messages


# -- training ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("optimizer", "schedule"),
    [
        ("sgd", "constant"),
        ("adam", "cosine"),
        ("adamw", "exponential"),
        ("rmsprop", "plateau"),
        ("sgd", "hypergradient"),
        ("adamw", "hypergradient"),
    ],
)
def test_every_optimizer_and_schedule_trains(classification, optimizer, schedule) -> None:
    X, y = classification
    model = KerasMLPClassifier(
        hidden_units=(32, 16),
        optimizer=optimizer,
        nesterov=True,
        schedule=schedule,
        learning_rate=0.05 if optimizer == "sgd" else 3e-3,
        decay_rate=0.8,
        plateau_factor=0.5,
        hypergradient_beta=0.02,
        batchnorm=optimizer == "adamw",
        dropout=0.1,
        l1=1e-6,
        l2=1e-5,
        activation="selu" if optimizer == "rmsprop" else "gelu",
        max_epochs=6,
        patience=100,
        random_state=0,
    )
    assert model.fit(X[:300], y[:300], validation_data=(X[300:], y[300:])) is model
    loss, rates = model.history_["loss"], model.history_["lr"]
    assert model.n_epochs_ == 6 and loss[-1] < loss[0]
    proba = model.predict_proba(X[300:])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert (model.predict(X[300:]) == y[300:]).mean() > 0.5
    if schedule == "constant":
        assert len(set(rates)) == 1
    elif schedule in ("cosine", "exponential"):
        assert all(b < a for a, b in itertools.pairwise(rates))
    elif schedule == "hypergradient":
        assert rates[-1] != pytest.approx(rates[0], rel=1e-3)


def test_regressor_and_sampled_configurations_train(regression) -> None:
    X, y = regression
    _, _, profile = profile_data(X, y)
    family = KerasFamily()
    for seed in range(3):
        _, params = _sample(family, profile, seed=seed)
        model = clone(family.build({**params, "max_epochs": 3}, profile, seed=0))
        family.fit(model, X, y, FitContext(seed=0))
        prediction = model.predict(X)
        assert prediction.shape == (len(X),) and np.isfinite(prediction).all()
    good = KerasMLPRegressor(hidden_units=(64,), learning_rate=3e-3, max_epochs=60, random_state=0)
    assert good.fit(X, y).score(X, y) > 0.9  # trained on a standardised target


def test_classifier_keeps_original_labels(classification) -> None:
    X, y = classification
    labels = np.array(["cat", "dog", "eel"])[y]
    model = KerasMLPClassifier(hidden_units=(16,), max_epochs=3, random_state=0)
    model.fit(X, labels)
    assert list(model.classes_) == ["cat", "dog", "eel"]
    assert set(model.predict(X)) <= set(labels)
    assert model.predict_proba(X).shape == (len(X), 3)


def test_hypergradient_beats_the_fixed_poor_learning_rate(classification) -> None:
    X, y = classification
    losses, rates = {}, {}
    for name, schedule in (("fixed", "constant"), ("hypergradient", "hypergradient")):
        model = KerasMLPClassifier(
            hidden_units=(32,),
            optimizer="sgd",
            momentum=0.0,
            learning_rate=1e-4,
            schedule=schedule,
            hypergradient_beta=0.05,
            max_epochs=8,
            patience=100,
            validation_fraction=0.0,
            batch_size=32,
            random_state=0,
        ).fit(X, y)
        losses[name], rates[name] = model.history_["loss"][-1], model.history_["lr"][-1]
    assert rates["hypergradient"] > 10 * 1e-4  # it moved far from the poor start ...
    assert losses["hypergradient"] < losses["fixed"] - 0.01  # ... to a lower training loss


def test_additive_rule_of_the_paper_raises_a_poor_sgd_rate(classification) -> None:
    from autotune.families._hypergradient import hypergradient_optimizer
    from autotune.families.keras import import_keras

    keras = import_keras()
    X, y = classification
    finals = {}
    for beta in (0.0, 0.01):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((X.shape[1],)), keras.layers.Dense(3, "softmax")])
        optimizer = hypergradient_optimizer(
            "sgd", 1e-4, hypergradient_beta=beta, hypergradient_rule="additive"
        )
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        history = model.fit(X, y, epochs=5, batch_size=32, verbose=0)
        finals[beta] = (history.history["loss"][-1], float(optimizer.learning_rate))
    assert finals[0.0][1] == pytest.approx(1e-4)
    assert finals[0.01][1] > 2e-4 and finals[0.01][0] < finals[0.0][0]


# -- robustness -------------------------------------------------------------------------------
def test_nan_loss_raises_a_clear_error(regression) -> None:
    X, y = regression
    model = KerasMLPRegressor(optimizer="sgd", learning_rate=1e3, max_epochs=5, random_state=0)
    with pytest.raises(TrainingDiverged, match="loss became"):
        model.fit(X, y)


def test_deadline_stops_training(classification) -> None:
    X, y = classification
    KerasMLPClassifier(hidden_units=(16,), max_epochs=1).fit(X, y)  # load and warm up Keras
    model = KerasMLPClassifier(hidden_units=(16,), max_epochs=100_000, patience=100_000)
    started = time.monotonic()
    KerasFamily().fit(model, X, y, FitContext(deadline=started + 2.0, seed=0))
    elapsed = time.monotonic() - started
    assert model.stopped_by_ == "deadline"
    assert 0 < model.n_epochs_ < 100_000
    assert elapsed < 2.0 + 5.0  # set-up plus at most one epoch past the deadline
    assert model.predict_proba(X).shape == (len(X), 3)


def test_study_prunes_poor_trials_and_goes_on_after_divergence(tmp_path, classification) -> None:
    X, y = classification
    options = {
        "families": ["keras"],
        "storage": f"sqlite:///{tmp_path}/s.db",
        "study_name": "keras_pruning",
        "show": False,
    }
    first = autotune.auto_tune(X, y, n_trials=3, **options)  # the three starting points
    assert all(t.state == TrialState.COMPLETE for t in first.study.trials)
    slow = {**KerasFamily().starting_points(first.profile_)[0]}
    slow.update(optimizer="sgd", learning_rate=1e-4, max_epochs=50, schedule="constant")
    slow.pop("beta_1")
    slow.update(momentum=0.0, nesterov=False)
    diverging = {**slow, "learning_rate": 1e3}  # out of range on purpose: Optuna warns, uses it
    for point in (slow, diverging):
        params = {f"keras.{k}": v for k, v in point.items()}
        first.study.enqueue_trial({"family": "keras", **params})

    second = autotune.auto_tune(X, y, n_trials=3, **options)
    trials = second.study.trials
    assert len(trials) == 6
    pruned, diverged, after = trials[3], trials[4], trials[5]
    assert pruned.state == TrialState.PRUNED
    assert 2 <= len(pruned.intermediate_values) < 50
    assert diverged.state == TrialState.PRUNED
    assert diverged.user_attrs["error"].startswith("diverged: the training loss became")
    assert after.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert np.isfinite(second.predict(X)).all()


def test_gradient_strategy_tunes_keras_with_hypergradient(tmp_path, classification) -> None:
    X, y = classification
    result = autotune.auto_tune(
        X,
        y,
        strategy="gradient",
        n_trials=1,
        storage=f"sqlite:///{tmp_path}/g.db",
        show=False,
    )
    assert result.best_family_ == "keras"
    assert result.best_params_["schedule"] == "hypergradient"
    assert "keras.schedule" not in result.best_trial_.params


def test_a_full_collection_follows_each_network_trial_and_no_other(tmp_path, classification):
    """A network leaves garbage only a full collection frees; after other trials, one would
    cost tenths of a second each once TensorFlow is loaded."""
    from autotune.engine._run import Run

    collected_after: list[int] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        frame = sys._getframe(1)
        while frame is not None:
            full = phase == "start" and info["generation"] == 2
            if full and frame.f_code is Run.callback.__code__:
                collected_after.append(frame.f_locals["trial"].number)
            frame = frame.f_back

    X, y = classification
    gc.callbacks.append(on_gc)
    try:
        result = autotune.auto_tune(
            X[:300],
            y[:300],
            families=["keras", "linear"],
            n_trials=6,
            storage=f"sqlite:///{tmp_path}/gc.db",
            show=False,
        )
    finally:
        gc.callbacks.remove(on_gc)
    trials = result.study.get_trials(deepcopy=False)
    networks = [
        t.number
        for t in trials
        if t.params["family"] == "keras" and PASSED_OVER_KEY not in t.user_attrs
    ]
    assert networks and len(networks) < len(trials)
    assert sorted(set(collected_after)) == networks


def test_the_best_network_is_the_final_model_as_trained_without_a_refit(
    tmp_path, classification
) -> None:
    X, y = classification
    url = f"sqlite:///{tmp_path}/n.db"
    result = autotune.auto_tune(X, y, families=["keras"], n_trials=2, storage=url, show=False)
    assert result.final_ == {"kind": "trial", "trial": result.best_trial_.number, "bagged": False}
    network = result.model_.steps[-1][1]
    # the trial's own network: early stopping watched its holdout (a refit has none)
    assert network.history_["val_loss"]
    assert network.n_epochs_ == result.best_trial_.user_attrs["epochs"]
    loaded = autotune.load(result.study.study_name, url)
    np.testing.assert_allclose(loaded.predict_proba(X), result.predict_proba(X), atol=1e-5)


def test_trained_graphs_are_freed_with_the_estimator(classification) -> None:
    # Traced train steps (their gradient all-reduce) and swish register custom gradients in
    # TensorFlow's global table, which would keep every trial's graph alive in a study.
    from tensorflow.python.framework import ops
    from tensorflow.python.framework.func_graph import FuncGraph

    X, y = classification
    KerasMLPClassifier(hidden_units=(8,), max_epochs=1).fit(X, y)  # lazy imports first
    registry = ops._gradient_registry._registry

    def custom_gradients() -> set[str]:
        return {name for name in registry if name.startswith("CustomGradient-")}

    registered = custom_gradients()
    gc.collect()
    existing = weakref.WeakSet(o for o in gc.get_objects() if isinstance(o, FuncGraph))

    model = KerasMLPClassifier(hidden_units=(16, 8), activation="swish", max_epochs=3)
    model.fit(X, y).predict_proba(X[:7])

    def prune(epoch: int, prediction: np.ndarray) -> None:
        raise optuna.TrialPruned(f"pruned at epoch {epoch}")

    pruned = KerasMLPClassifier(hidden_units=(16,), activation="swish", max_epochs=5)
    with pytest.raises(optuna.TrialPruned):
        pruned.fit(X[:300], y[:300], validation_data=(X[300:], y[300:]), on_epoch=prune)
    assert custom_gradients() == registered
    gc.collect()
    traced = [
        weakref.ref(o) for o in gc.get_objects() if isinstance(o, FuncGraph) and o not in existing
    ]
    assert any("step" in ref().name for ref in traced)  # train and predict steps were traced
    del model, pruned
    gc.collect()
    assert [ref().name for ref in traced if ref() is not None] == []


# -- saving -----------------------------------------------------------------------------------
def test_save_and_reload_in_a_new_process(tmp_path, classification, regression) -> None:
    for name, (X, y), cls in (
        ("clf", classification, KerasMLPClassifier),
        ("reg", regression, KerasMLPRegressor),
    ):
        model = cls(hidden_units=(16, 8), batchnorm=True, dropout=0.2, max_epochs=3)
        model.fit(X, y)
        expected = model.predict_proba(X) if name == "clf" else model.predict(X)
        model.save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}_X.npy", X)
        np.save(tmp_path / f"{name}_expected.npy", expected)
    done = _run_python(
        f"""
        import sys
        from pathlib import Path
        import numpy as np
        from autotune.families.keras import KerasMLPClassifier, KerasMLPRegressor, import_keras

        folder = Path({str(tmp_path)!r})
        clf = KerasMLPClassifier.load(folder / "clf.keras")
        reg = KerasMLPRegressor.load(folder / "reg.keras")
        X = np.load(folder / "clf_X.npy")
        np.testing.assert_array_equal(clf.predict_proba(X), np.load(folder / "clf_expected.npy"))
        X = np.load(folder / "reg_X.npy")
        np.testing.assert_array_equal(reg.predict(X), np.load(folder / "reg_expected.npy"))
        plain = import_keras().saving.load_model(folder / "clf.keras", compile=False)
        assert plain.output_shape == (None, 3)
        print("same predictions")
        """
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "same predictions" in done.stdout
    assert "oneDNN" not in done.stderr and "cuda" not in done.stderr.lower()


def test_pickle_round_trip(classification) -> None:
    import pickle

    X, y = classification
    model = KerasMLPClassifier(hidden_units=(8,), max_epochs=2).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    assert isinstance(again.model_, type(model.model_))


def _log_loss_objective(
    classification: tuple[np.ndarray, np.ndarray],
    families: list[str | ModelFamily],
    **options: Any,
) -> Objective:
    """An objective over 3 folds of the classification rows, scored by log loss."""
    from autotune.engine import Objective, encode_target, make_splits
    from autotune.metrics import get_metric

    X, y = classification
    frame, target, profile = profile_data(X, y)
    codes = encode_target(target, profile)
    splits = make_splits(profile, codes, 3, seed=0)
    metric = get_metric("log_loss", profile.task)
    chosen = [
        family if isinstance(family, ModelFamily) else get_family(family) for family in families
    ]
    return Objective(frame, codes, profile, chosen, metric, [], splits, seed=0, **options)


def test_a_network_trial_trains_at_most_its_share_of_the_budget(classification) -> None:
    X, y = classification
    objective = _log_loss_objective(classification, ["keras"], trial_seconds=2.0)
    KerasMLPClassifier(hidden_units=(16,), max_epochs=1).fit(X, y)  # load and warm up Keras
    # Out of range on purpose (Optuna warns, uses it): only the time can stop this network.
    # Every knob is fixed so that Adam's tiny steps improve the validation loss each epoch;
    # a sampled SGD with batch norm and dropout could plateau and stop early instead.
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(
        {
            "family": "keras",
            "keras.max_epochs": 100_000,
            "keras.learning_rate": 1e-5,
            "keras.n_layers": 1,
            "keras.shape": "constant",
            "keras.units": 16,
            "keras.activation": "relu",
            "keras.dropout": 0.0,
            "keras.batchnorm": False,
            "keras.optimizer": "adam",
            "keras.beta_1": 0.9,
            "keras.schedule": "constant",
        }
    )
    started = time.monotonic()
    study.optimize(objective, n_trials=1, catch=())
    elapsed = time.monotonic() - started
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["stopped"].startswith("time budget reached")
    assert 0 < trial.user_attrs["epochs"] < 100_000
    assert elapsed < 2.0 + 5.0  # set-up plus at most one epoch past its share


def test_a_network_trial_share_starts_after_the_framework_is_imported(classification) -> None:
    class SlowImport(KerasFamily):
        """Keras whose import takes a second, as TensorFlow's first import does."""

        imported_at: float | None = None
        deadline: float | None = None

        def import_libraries(self) -> None:
            super().import_libraries()
            time.sleep(1.0)
            self.imported_at = time.monotonic()

        def fit(self, model: Any, X: Any, y: np.ndarray, context: FitContext) -> Any:
            self.deadline = context.deadline
            return super().fit(model, X, y, context)

    family = SlowImport()
    objective = _log_loss_objective(classification, [family], trial_seconds=2.0)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"family": "keras", "keras.max_epochs": 2})
    study.optimize(objective, n_trials=1, catch=())
    assert family.imported_at is not None and family.deadline is not None
    assert family.deadline >= family.imported_at + 2.0  # the whole share is left to train


def test_a_network_that_learns_nothing_stops_at_the_fifth_epoch_marked_behind(
    classification,
) -> None:
    from autotune.engine._pruning import HOPELESS_EPOCHS

    objective = _log_loss_objective(classification, ["linear", "keras"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"family": "linear", "linear.C": 1.0})
    # SGD at a rate of 1e-6 leaves the network where it started: near the class shares
    study.enqueue_trial(
        {
            "family": "keras",
            "keras.max_epochs": 200,
            "keras.learning_rate": 1e-6,
            "keras.optimizer": "sgd",
            "keras.momentum": 0.0,
            "keras.schedule": "constant",
            "keras.batchnorm": False,
        }
    )
    study.optimize(objective, n_trials=2, catch=())
    linear, network = study.trials
    assert linear.state == TrialState.COMPLETE
    assert network.state == TrialState.PRUNED
    assert network.user_attrs[BEHIND_KEY]
    assert sorted(network.intermediate_values) == list(range(HOPELESS_EPOCHS))
    # a network that learns is judged by the same bar and trains on
    study.enqueue_trial(
        {
            "family": "keras",
            "keras.max_epochs": 8,
            "keras.learning_rate": 1e-2,
            "keras.optimizer": "adam",
            "keras.beta_1": 0.9,
            "keras.schedule": "constant",
            "keras.dropout": 0.0,
            "keras.batchnorm": False,
        }
    )
    study.optimize(objective, n_trials=1, catch=())
    learner = study.trials[-1]
    assert learner.state == TrialState.COMPLETE, learner.user_attrs
    assert len(learner.intermediate_values) > HOPELESS_EPOCHS


def test_a_network_far_behind_the_best_passes_over_its_other_starting_points(tmp_path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = X @ np.array([3.0, -2.0, 1.0, 0.5]) + rng.normal(0, 0.01, 300)  # a linear model's data
    result = autotune.auto_tune(
        X,
        y,
        families=["linear", "keras"],
        n_trials=3,
        timeout=20,
        storage=f"sqlite:///{tmp_path / 'studies.db'}",
        show=False,
    )
    networks = [t for t in result.study.trials if t.params["family"] == "keras"]
    first, second = networks[0], networks[1]
    assert first.state == TrialState.COMPLETE and first.user_attrs[BEHIND_KEY]
    assert second.state == TrialState.PRUNED and PASSED_OVER_KEY in second.user_attrs
    assert result.study.trials[-1].params["family"] == "linear"
