"""Dense neural networks built with Keras 3 on TensorFlow, pruned epoch by epoch.

TensorFlow takes seconds to import and prints start-up noise, so nothing here imports it
until a network is trained or loaded: :func:`import_keras` does, once, quietly. The
estimators follow the scikit-learn contract, so a fitted network sits in the same
pipeline as every other family and the ``TuneResult`` treats it alike.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import optuna
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from autotune.data import DataProfile
from autotune.exceptions import MissingDependencyError
from autotune.families._base import FitContext, ModelFamily
from autotune.families._space import Space

__all__ = [
    "KerasFamily",
    "KerasMLPClassifier",
    "KerasMLPRegressor",
    "TrainingDiverged",
    "import_keras",
]

ACTIVATIONS = ("relu", "gelu", "tanh", "selu", "swish")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "cosine", "exponential", "plateau", "hypergradient")
SHAPES = ("constant", "funnel", "per_layer")
MAX_LAYERS = 4
#: Below this many rows, trees and linear models nearly always beat a network.
MIN_ROWS = 1_000
#: A budget below this leaves a network too few epochs after TensorFlow has started.
MIN_TIMEOUT = 60.0
#: More than this share of categorical columns makes one-hot input too sparse to learn well.
MAX_CATEGORICAL_SHARE = 0.5
#: Rows per forward pass when predicting, so that large inputs do not exhaust memory.
PREDICT_CHUNK = 8192
_META_FILE = "autotune_estimator.json"


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite: the configuration cannot be trained as it is."""


# -- lazy, quiet Keras -----------------------------------------------------------------------
@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: TensorFlow's C++ start-up logs bypass Python."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def import_keras() -> Any:
    """Import Keras on the TensorFlow backend, once and without start-up noise.

    Returns:
        The ``keras`` module.

    Raises:
        MissingDependencyError: TensorFlow or Keras is missing, or Keras already runs on
            another backend.
    """
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        keras = sys.modules["keras"]
    else:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        try:
            with _stderr_silenced():
                import keras
                import tensorflow as tf
        except ImportError as error:
            raise MissingDependencyError(
                f"The keras family needs TensorFlow and Keras 3 ({error}); install them with "
                "`pip install tensorflow keras` or leave 'keras' out of families=."
            ) from None
        tf.get_logger().setLevel(logging.ERROR)
        with contextlib.suppress(ImportError):
            import absl.logging

            absl.logging.set_verbosity(absl.logging.ERROR)
    if keras.backend.backend() != "tensorflow":
        raise MissingDependencyError(
            f"The keras family runs on the TensorFlow backend, but Keras was started with "
            f"{keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow before importing keras."
        )
    return keras


#: ``tf.custom_gradient`` registers each gradient function under this prefix and a new uid.
_CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


def _gradient_registry() -> dict[str, Any] | None:
    """TensorFlow's global table of gradient functions, or None if its layout has changed."""
    from tensorflow.python.framework import ops

    table = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return table if isinstance(table, dict) else None


@contextlib.contextmanager
def _custom_gradients_released() -> Iterator[None]:
    """Unregister the custom gradients that tracing registers inside the block.

    Each ``tf.custom_gradient`` call in a traced function (the all-reduce of the gradients
    in every Keras train step, ``tf.nn.silu`` behind the swish activation) registers a
    closure in TensorFlow's global gradient registry. Nothing ever removes it, not even
    ``clear_session``, and it holds the whole traced graph: a few MiB per trained network
    (tensorflow/tensorflow#27492, #97697), so a study grew with every trial. An entry is
    read only when its graph is differentiated, which Keras does while tracing the train
    step and never for the predict step, so after the block the new entries can only keep
    dead graphs alive.
    """
    registry = _gradient_registry()
    before = set(registry) if registry is not None else set()
    try:
        yield
    finally:
        if registry is not None:
            # Only custom-gradient uids: op gradients registered by a lazy import must stay.
            # list() copies the keys in one step, safe from another thread's registration.
            for name in list(registry):
                if name.startswith(_CUSTOM_GRADIENT_PREFIX) and name not in before:
                    registry.pop(name, None)


# -- the estimators --------------------------------------------------------------------------
class _KerasMLP(BaseEstimator):
    """A dense network with early stopping, shared by the classifier and the regressor.

    Args:
        hidden_units: Units of each hidden layer.
        activation: One of ``relu``, ``gelu``, ``tanh``, ``selu``, ``swish``.
        dropout: Dropout rate after each hidden layer (alpha dropout with ``selu``).
        batchnorm: Batch normalisation before each activation.
        l1, l2: Penalties on the hidden layers' weights.
        optimizer: ``sgd``, ``adam``, ``adamw`` or ``rmsprop``.
        learning_rate: The (starting) learning rate.
        momentum, nesterov: SGD's settings.
        beta_1: Adam's and AdamW's first-moment decay.
        weight_decay: AdamW's decoupled weight decay.
        rho: RMSprop's decay.
        schedule: ``constant``, ``cosine`` (decays to 1% over ``max_epochs``),
            ``exponential`` (``decay_rate`` per epoch), ``plateau`` (times
            ``plateau_factor`` when the validation loss stalls) or ``hypergradient``
            (adapted online, see :mod:`autotune.families._hypergradient`).
        decay_rate, plateau_factor, hypergradient_beta: The schedule's setting.
        max_epochs: The most epochs; early stopping usually ends training sooner.
        batch_size: Rows per gradient step.
        patience: Epochs without a better validation loss before training stops.
        validation_fraction: Share of the rows held out for early stopping when ``fit``
            gets no ``validation_data``.
        random_state: Seed for weights, shuffling and dropout.
    """

    _task: ClassVar[str]

    def __init__(
        self,
        *,
        hidden_units: tuple[int, ...] = (128, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = False,
        l1: float = 0.0,
        l2: float = 0.0,
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        momentum: float = 0.9,
        nesterov: bool = False,
        beta_1: float = 0.9,
        weight_decay: float = 1e-4,
        rho: float = 0.9,
        schedule: str = "constant",
        decay_rate: float = 0.95,
        plateau_factor: float = 0.3,
        hypergradient_beta: float = 0.02,
        max_epochs: int = 100,
        batch_size: int = 32,
        patience: int = 10,
        validation_fraction: float = 0.1,
        random_state: int | None = None,
    ) -> None:
        self.hidden_units = hidden_units
        self.activation = activation
        self.dropout = dropout
        self.batchnorm = batchnorm
        self.l1 = l1
        self.l2 = l2
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.beta_1 = beta_1
        self.weight_decay = weight_decay
        self.rho = rho
        self.schedule = schedule
        self.decay_rate = decay_rate
        self.plateau_factor = plateau_factor
        self.hypergradient_beta = hypergradient_beta
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    # -- subclass hooks ------------------------------------------------------------------
    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _n_outputs(self) -> int:
        raise NotImplementedError

    def _loss(self, output: np.ndarray, target: np.ndarray) -> float:
        raise NotImplementedError

    def _to_prediction(self, output: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- fitting -------------------------------------------------------------------------
    def _check_params(self) -> None:
        for name, value, allowed in (
            ("activation", self.activation, ACTIVATIONS),
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("schedule", self.schedule, SCHEDULES),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
        if not self.hidden_units or any(int(u) < 1 for u in self.hidden_units):
            raise ValueError(f"hidden_units needs positive layer sizes; got {self.hidden_units!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout!r}")
        if int(self.max_epochs) < 1 or int(self.batch_size) < 1 or int(self.patience) < 1:
            raise ValueError("max_epochs, batch_size and patience must be positive")

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        validation_data: tuple[Any, Any] | None = None,
        on_epoch: Callable[[int, np.ndarray], None] | None = None,
        deadline: float | None = None,
    ) -> _KerasMLP:
        """Train with early stopping on ``validation_data`` (or an internal split).

        Args:
            X, y: Training data (numeric).
            validation_data: ``(X_valid, y_valid)`` for early stopping and ``on_epoch``.
            on_epoch: Called after each epoch with the epoch index and the prediction on
                ``X_valid`` (as from ``predict_proba`` or ``predict``); it may raise to stop.
            deadline: ``time.monotonic()`` at which training stops, keeping the best epoch.

        Returns:
            self, fitted.

        Raises:
            TrainingDiverged: the training or validation loss stopped being finite.
        """
        self._check_params()
        keras = import_keras()
        # Each trial builds a new graph; without this, Keras's global state and TensorFlow's
        # function caches grow with every trial of a study.
        keras.backend.clear_session(free_memory=True)
        seed = 0 if self.random_state is None else int(self.random_state)
        keras.utils.set_random_seed(seed)

        X = _as_float32(X)
        target = self._encode_target(np.asarray(y))
        self.n_features_in_ = X.shape[1]
        if validation_data is not None:
            X_valid = _as_float32(validation_data[0])
            y_valid = self._encode_known(np.asarray(validation_data[1]))
        else:
            X, target, X_valid, y_valid = self._split(X, target, seed)

        with _custom_gradients_released():
            self._train(keras, X, target, X_valid, y_valid, seed, deadline, on_epoch)
        return self

    def _train(
        self,
        keras: Any,
        X: np.ndarray,
        target: np.ndarray,
        X_valid: np.ndarray | None,
        y_valid: np.ndarray | None,
        seed: int,
        deadline: float | None,
        on_epoch: Callable[[int, np.ndarray], None] | None,
    ) -> None:
        """Build, compile and train the network, keeping the best epoch's weights."""
        steps_per_epoch = max(1, math.ceil(len(X) / int(self.batch_size)))
        model = self._build_network(keras, X.shape[1], seed)
        model.compile(
            optimizer=self._make_optimizer(keras, steps_per_epoch),
            loss=self._keras_loss(),
            jit_compile=False,
            steps_per_execution=min(8, steps_per_epoch),
        )
        # Built eagerly: built lazily inside the traced train step, the optimizer's slot
        # initialisers leave graph functions in TensorFlow's global registry on every trial.
        model.optimizer.build(model.trainable_variables)
        monitor = _make_monitor(keras)(self, X_valid, y_valid, deadline, on_epoch)
        callbacks = [monitor]
        if self.schedule == "plateau":
            callbacks.append(
                keras.callbacks.ReduceLROnPlateau(
                    monitor="val_loss" if X_valid is not None else "loss",
                    factor=float(self.plateau_factor),
                    patience=max(2, int(self.patience) // 3),
                    min_lr=float(self.learning_rate) * 1e-3,
                    verbose=0,
                )
            )
        self.model_ = model
        model.fit(
            X,
            target,
            batch_size=int(self.batch_size),
            epochs=int(self.max_epochs),
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
        if monitor.best_weights is not None:
            model.set_weights(monitor.best_weights)
        self.n_epochs_ = monitor.n_epochs
        self.best_epoch_ = monitor.best_epoch
        self.stopped_by_ = monitor.stopped_by or "max_epochs"
        self.history_ = monitor.history

    def _encode_known(self, y: np.ndarray) -> np.ndarray:
        return self._encode_target(y)

    def _split(
        self, X: np.ndarray, target: np.ndarray, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        n_valid = round(len(X) * float(self.validation_fraction))
        if n_valid < 10 or len(X) - n_valid < 10:
            return X, target, None, None
        stratify = target if self._task == "classification" else None
        if stratify is not None and np.bincount(stratify).min(initial=2) < 2:
            stratify = None
        X_fit, X_valid, y_fit, y_valid = train_test_split(
            X, target, test_size=n_valid, random_state=seed, stratify=stratify
        )
        return X_fit, y_fit, X_valid, y_valid

    def _build_network(self, keras: Any, n_features: int, seed: int) -> Any:
        layers = keras.layers
        selu = self.activation == "selu"
        regularizer = (
            keras.regularizers.L1L2(l1=float(self.l1), l2=float(self.l2))
            if self.l1 or self.l2
            else None
        )
        stack: list[Any] = [keras.Input((n_features,))]
        for units in self.hidden_units:
            stack.append(
                layers.Dense(
                    int(units),
                    use_bias=not self.batchnorm,
                    kernel_initializer="lecun_normal" if selu else "glorot_uniform",
                    kernel_regularizer=regularizer,
                )
            )
            if self.batchnorm:
                stack.append(layers.BatchNormalization())
            stack.append(layers.Activation(self.activation))
            if self.dropout > 0:
                dropout = layers.AlphaDropout if selu else layers.Dropout
                stack.append(dropout(float(self.dropout), seed=seed))
        n_out = self._n_outputs()
        stack.append(layers.Dense(n_out, activation="softmax" if self._is_classifier() else None))
        return keras.Sequential(stack)

    def _is_classifier(self) -> bool:
        return self._task == "classification"

    def _keras_loss(self) -> str:
        return "sparse_categorical_crossentropy" if self._is_classifier() else "mse"

    def _optimizer_settings(self) -> dict[str, Any]:
        if self.optimizer == "sgd":
            return {"momentum": float(self.momentum), "nesterov": bool(self.nesterov)}
        if self.optimizer == "adam":
            return {"beta_1": float(self.beta_1)}
        if self.optimizer == "adamw":
            return {"beta_1": float(self.beta_1), "weight_decay": float(self.weight_decay)}
        return {"rho": float(self.rho)}

    def _make_optimizer(self, keras: Any, steps_per_epoch: int) -> Any:
        settings = self._optimizer_settings()
        lr = float(self.learning_rate)
        if self.schedule == "hypergradient":
            from autotune.families._hypergradient import hypergradient_optimizer

            return hypergradient_optimizer(
                self.optimizer, lr, hypergradient_beta=float(self.hypergradient_beta), **settings
            )
        schedules = keras.optimizers.schedules
        rate: Any = lr
        if self.schedule == "cosine":
            rate = schedules.CosineDecay(
                lr, decay_steps=int(self.max_epochs) * steps_per_epoch, alpha=0.01
            )
        elif self.schedule == "exponential":
            rate = schedules.ExponentialDecay(
                lr, decay_steps=steps_per_epoch, decay_rate=float(self.decay_rate)
            )
        classes = {
            "sgd": keras.optimizers.SGD,
            "adam": keras.optimizers.Adam,
            "adamw": keras.optimizers.AdamW,
            "rmsprop": keras.optimizers.RMSprop,
        }
        return classes[self.optimizer](learning_rate=rate, **settings)

    # -- predicting ----------------------------------------------------------------------
    def _forward(self, X: Any) -> np.ndarray:
        """The network's output, in chunks, without ``model.predict``'s per-call set-up."""
        X = _as_float32(X)
        if len(X) == 0:
            return np.zeros((0, self._n_outputs()), dtype=np.float32)
        # The first call traces the predict step, which registers gradients like training.
        with _custom_gradients_released():
            parts = [
                np.asarray(self.model_.predict_on_batch(X[i : i + PREDICT_CHUNK]))
                for i in range(0, len(X), PREDICT_CHUNK)
            ]
        return np.concatenate(parts)

    # -- saving --------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        params = self.get_params()
        params["hidden_units"] = [int(u) for u in params["hidden_units"]]
        fitted = {
            key: value.tolist() if isinstance(value, np.ndarray) else value
            for key, value in vars(self).items()
            if key.endswith("_") and not key.startswith("_") and key != "model_"
        }
        return {"class": type(self).__name__, "params": params, "fitted": fitted}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save to a Keras ``.keras`` file that also records the estimator's settings.

        The network is saved without its optimizer, which prediction does not need, so the
        file loads with plain Keras too (``keras.saving.load_model(path, compile=False)``).

        Returns:
            The path written.
        """
        check_is_fitted(self, "model_")
        path = Path(path)
        if path.suffix != ".keras":
            raise ValueError(f"the file name must end in .keras; got {path.name!r}")
        keras = import_keras()
        network = keras.models.clone_model(self.model_)
        network.set_weights(self.model_.get_weights())
        with warnings.catch_warnings():
            # Keras's own saving trips a NumPy 2 deprecation inside TensorFlow; not ours to fix.
            warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
            network.save(path)
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(_META_FILE, json.dumps(self._meta()))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> _KerasMLP:
        """Load an estimator written by :meth:`save`; it predicts exactly as before."""
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read(_META_FILE))
        estimator_cls = _ESTIMATORS[meta["class"]]
        if not issubclass(estimator_cls, cls):
            raise TypeError(f"{path} holds a {meta['class']}, not a {cls.__name__}")
        params = dict(meta["params"])
        params["hidden_units"] = tuple(params["hidden_units"])
        estimator = estimator_cls(**params)
        for key, value in meta["fitted"].items():
            setattr(estimator, key, np.asarray(value) if key == "classes_" else value)
        keras = import_keras()
        estimator.model_ = keras.saving.load_model(path, compile=False)
        return estimator

    def __getstate__(self) -> dict[str, Any]:
        # Pickle (joblib, multiprocessing) carries the network as the bytes of a .keras file.
        state = self.__dict__.copy()
        if "model_" in state:
            with tempfile.TemporaryDirectory() as folder:
                path = self.save(Path(folder) / "model.keras")
                state["model_"] = path.read_bytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        data = state.get("model_")
        if isinstance(data, bytes):
            keras = import_keras()
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "model.keras"
                path.write_bytes(data)
                state["model_"] = keras.saving.load_model(path, compile=False)
        self.__dict__.update(state)


class KerasMLPClassifier(ClassifierMixin, _KerasMLP):
    """A dense network classifier with a softmax output and scikit-learn's interface.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = KerasMLPClassifier(hidden_units=(32,), max_epochs=20).fit(X, y)  # doctest: +SKIP
        >>> clf.predict_proba(X[:2]).shape  # doctest: +SKIP
        (2, 3)
    """

    _task = "classification"

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        self.classes_ = np.unique(y)
        return np.searchsorted(self.classes_, y).astype(np.int32)

    def _encode_known(self, y: np.ndarray) -> np.ndarray:
        # Validation labels unseen in training cannot be scored by this network: mark them -1.
        index = np.searchsorted(self.classes_, y)
        index = np.clip(index, 0, len(self.classes_) - 1)
        known = self.classes_[index] == y
        return np.where(known, index, -1).astype(np.int32)

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def _loss(self, output: np.ndarray, target: np.ndarray) -> float:
        known = target >= 0
        if not known.any():
            return float("nan")
        picked = output[known, target[known]].astype(np.float64)
        return float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))

    def _to_prediction(self, output: np.ndarray) -> np.ndarray:
        return output

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per entry of ``classes_``."""
        check_is_fitted(self, "model_")
        return self._forward(X).astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class KerasMLPRegressor(RegressorMixin, _KerasMLP):
    """A dense network regressor; the target is standardised while training.

    Example:
        >>> from sklearn.datasets import load_diabetes
        >>> X, y = load_diabetes(return_X_y=True)
        >>> reg = KerasMLPRegressor(hidden_units=(32,), max_epochs=20).fit(X, y)  # doctest: +SKIP
    """

    _task = "regression"

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        y = y.astype(np.float64).ravel()
        self.y_mean_ = float(np.mean(y))
        self.y_scale_ = float(np.std(y)) or 1.0
        return ((y - self.y_mean_) / self.y_scale_).astype(np.float32)

    def _encode_known(self, y: np.ndarray) -> np.ndarray:
        return ((y.astype(np.float64).ravel() - self.y_mean_) / self.y_scale_).astype(np.float32)

    def _n_outputs(self) -> int:
        return 1

    def _loss(self, output: np.ndarray, target: np.ndarray) -> float:
        return float(np.mean((output.astype(np.float64).ravel() - target) ** 2))

    def _to_prediction(self, output: np.ndarray) -> np.ndarray:
        return output.astype(np.float64).ravel() * self.y_scale_ + self.y_mean_

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values in the target's units."""
        check_is_fitted(self, "model_")
        return self._to_prediction(self._forward(X))


_ESTIMATORS: dict[str, type[_KerasMLP]] = {
    "KerasMLPClassifier": KerasMLPClassifier,
    "KerasMLPRegressor": KerasMLPRegressor,
}


def _as_float32(X: Any) -> np.ndarray:
    array = np.asarray(X, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D array of features; got shape {array.shape}")
    return array


_MONITOR: dict[str, type] = {}


def _make_monitor(keras: Any) -> type:
    """The epoch callback class, made once Keras is imported (it subclasses Keras's)."""
    if "class" in _MONITOR:
        return _MONITOR["class"]

    class EpochMonitor(keras.callbacks.Callback):
        """Validation, early stopping, divergence, the deadline and reporting, per epoch.

        One forward pass on the validation data per epoch serves all of them, which keeps
        the wrapper's cost close to a bare ``model.fit``. It adds no per-batch-end hook, so
        Keras keeps dispatching batches asynchronously.
        """

        def __init__(
            self,
            estimator: _KerasMLP,
            X_valid: np.ndarray | None,
            y_valid: np.ndarray | None,
            deadline: float | None,
            on_epoch: Callable[[int, np.ndarray], None] | None,
        ) -> None:
            super().__init__()
            self.estimator = estimator
            self.X_valid = X_valid
            self.y_valid = y_valid
            self.deadline = deadline
            self.on_epoch = on_epoch
            self.best_loss = math.inf
            self.best_weights: list[np.ndarray] | None = None
            self.best_epoch = 0
            self.n_epochs = 0
            self.wait = 0
            self.stopped_by: str | None = None
            self.history: dict[str, list[float]] = {"loss": [], "val_loss": [], "lr": []}

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.model.stop_training = True
                self.stopped_by = "deadline"

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs if logs is not None else {}
            self.n_epochs = epoch + 1
            loss = float(logs.get("loss", math.nan))
            self.history["loss"].append(loss)
            self.history["lr"].append(float(self.model.optimizer.learning_rate))
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"the training loss became {loss} in epoch {epoch + 1}; the learning rate "
                    f"{self.estimator.learning_rate:.3g} is probably too large"
                )
            if self.X_valid is None:
                monitored = loss
            else:
                output = self.estimator._forward(self.X_valid)
                monitored = self.estimator._loss(output, self.y_valid)
                if not math.isfinite(monitored):
                    raise TrainingDiverged(
                        f"the validation loss became {monitored} in epoch {epoch + 1}"
                    )
                logs["val_loss"] = monitored
                self.history["val_loss"].append(monitored)
            if monitored < self.best_loss:
                self.best_loss = monitored
                self.best_epoch = epoch
                self.best_weights = self.model.get_weights()
                self.wait = 0
            else:
                self.wait += 1
                if self.wait >= int(self.estimator.patience):
                    self.model.stop_training = True
                    self.stopped_by = self.stopped_by or "early_stopping"
            if self.on_epoch is not None and self.X_valid is not None:
                self.on_epoch(epoch, self.estimator._to_prediction(output))

    _MONITOR["class"] = EpochMonitor
    return EpochMonitor


# -- the family ------------------------------------------------------------------------------
class KerasFamily(ModelFamily):
    """Dense networks with every training knob tuned and poor runs pruned per epoch.

    Each trial trains once on the holdout split, reports the study's metric after every
    epoch, and stops early when the validation loss stalls, the pruner says so, the loss
    diverges or the time budget ends. With ``strategy="gradient"`` the learning rate is
    adapted by hypergradient descent instead of being searched over schedules.
    """

    self_saving = True

    name = "keras"
    tasks = ("binary", "multiclass", "regression")
    preprocessing = "scaled"
    fidelity = "epochs"

    def suitability(self, profile: DataProfile, timeout: float | None) -> str | None:
        if importlib.util.find_spec("tensorflow") is None or not _has_keras3():
            return "TensorFlow or Keras 3 is not installed"
        if profile.n_rows < MIN_ROWS:
            return f"{profile.n_rows:,} rows are too few for a network (needs {MIN_ROWS:,})"
        if profile.categorical_share > MAX_CATEGORICAL_SHARE:
            return "mostly categorical columns suit trees better"
        if timeout is not None and timeout < MIN_TIMEOUT:
            return f"a {timeout:.0f} s budget leaves too few epochs (needs {MIN_TIMEOUT:.0f} s)"
        return None

    def suggest(self, space: Space, profile: DataProfile) -> dict[str, Any]:
        max_units = _max_units(profile)
        n_layers = space.int("n_layers", 1, MAX_LAYERS)
        shape = space.categorical("shape", SHAPES)
        if shape == "per_layer":
            hidden = [space.int(f"units_{i}", 16, max_units, log=True) for i in range(n_layers)]
        else:
            units = space.int("units", 16, max_units, log=True)
            step = 2 if shape == "funnel" else 1
            hidden = [max(8, units // step**i) for i in range(n_layers)]
        params: dict[str, Any] = {
            "hidden_units": tuple(hidden),
            "activation": space.categorical("activation", ACTIVATIONS),
            "dropout": space.float("dropout", 0.0, 0.5),
            "batchnorm": space.categorical("batchnorm", [False, True]),
            "l1": space.float("l1", 1e-8, 1e-3, log=True),
            "l2": space.float("l2", 1e-8, 1e-2, log=True),
            "learning_rate": space.float("learning_rate", 1e-4, 1e-1, log=True),
            "max_epochs": space.int("max_epochs", 20, 200, log=True),
            "batch_size": space.categorical("batch_size", _batch_sizes(profile)),
        }
        optimizer = space.categorical("optimizer", OPTIMIZERS)
        params["optimizer"] = optimizer
        if optimizer == "sgd":
            params["momentum"] = space.float("momentum", 0.0, 0.99)
            params["nesterov"] = space.categorical("nesterov", [False, True])
        elif optimizer in ("adam", "adamw"):
            params["beta_1"] = space.float("beta_1", 0.8, 0.99)
            if optimizer == "adamw":
                params["weight_decay"] = space.float("weight_decay", 1e-6, 1e-1, log=True)
        else:
            params["rho"] = space.float("rho", 0.8, 0.99)
        # Under strategy="gradient" the learning rate is adapted online, so the schedule is
        # not a choice; the parameter is then never suggested, which replays identically.
        if space.strategy == "gradient":
            schedule = "hypergradient"
        else:
            schedule = space.categorical("schedule", SCHEDULES)
        params["schedule"] = schedule
        if schedule == "exponential":
            params["decay_rate"] = space.float("decay_rate", 0.8, 0.99)
        elif schedule == "plateau":
            params["plateau_factor"] = space.float("plateau_factor", 0.1, 0.5)
        elif schedule == "hypergradient":
            params["hypergradient_beta"] = space.float("hypergradient_beta", 1e-3, 5e-2, log=True)
        params["patience"] = _patience(params["max_epochs"])
        return params

    def import_libraries(self) -> None:
        # TensorFlow's first import took 9 s here: most of a network's 12 s share at 60 s.
        import_keras()

    def build(self, params: dict[str, Any], profile: DataProfile, seed: int) -> BaseEstimator:
        cls = KerasMLPRegressor if profile.task == "regression" else KerasMLPClassifier
        return cls(**params, random_state=seed)

    def fit(self, model: Any, X: Any, y: np.ndarray, context: FitContext) -> Any:
        trial = context.trial
        validation = None
        if context.X_valid is not None and context.y_valid is not None:
            validation = (context.X_valid, context.y_valid)
        on_epoch = None
        if trial is not None and validation is not None and context.score is not None:
            score, y_valid = context.score, np.asarray(context.y_valid)

            def on_epoch(epoch: int, prediction: np.ndarray) -> None:
                value = score(_align(model, prediction, y_valid, context.n_classes))
                if math.isfinite(value):
                    context.report(value, epoch)

        try:
            model.fit(
                X, y, validation_data=validation, on_epoch=on_epoch, deadline=context.deadline
            )
        except TrainingDiverged as error:
            if trial is None:
                raise
            trial.set_user_attr("error", f"diverged: {error}")
            raise optuna.TrialPruned(f"diverged: {error}") from None
        if trial is not None:
            trial.set_user_attr("epochs", int(model.n_epochs_))
            if model.stopped_by_ == "deadline":
                trial.set_user_attr(
                    "stopped", f"time budget reached after {model.n_epochs_} epochs"
                )
        return model

    def starting_points(self, profile: DataProfile) -> list[dict[str, Any]]:
        # A well-worn Adam baseline, a regularised AdamW funnel with cosine decay, and SGD
        # with Nesterov momentum whose step size adapts by hypergradient descent.
        sizes = _batch_sizes(profile)
        units = min(128, _max_units(profile))
        return [
            {
                "n_layers": 2,
                "shape": "constant",
                "units": units,
                "activation": "relu",
                "dropout": 0.1,
                "batchnorm": False,
                "l1": 1e-8,
                "l2": 1e-6,
                "learning_rate": 1e-3,
                "max_epochs": 100,
                "batch_size": _closest(sizes, 32),
                "optimizer": "adam",
                "beta_1": 0.9,
                "schedule": "constant",
            },
            {
                "n_layers": 3,
                "shape": "funnel",
                "units": min(256, _max_units(profile)),
                "activation": "swish",
                "dropout": 0.2,
                "batchnorm": True,
                "l1": 1e-8,
                "l2": 1e-5,
                "learning_rate": 3e-3,
                "max_epochs": 100,
                "batch_size": _closest(sizes, 64),
                "optimizer": "adamw",
                "beta_1": 0.9,
                "weight_decay": 1e-4,
                "schedule": "cosine",
            },
            {
                "n_layers": 2,
                "shape": "constant",
                "units": units,
                "activation": "relu",
                "dropout": 0.1,
                "batchnorm": True,
                "l1": 1e-8,
                "l2": 1e-5,
                "learning_rate": 1e-2,
                "max_epochs": 100,
                "batch_size": _closest(sizes, 64),
                "optimizer": "sgd",
                "momentum": 0.9,
                "nesterov": True,
                "schedule": "hypergradient",
                "hypergradient_beta": 0.01,
            },
        ]


def _has_keras3() -> bool:
    try:
        return int(importlib.metadata.version("keras").split(".")[0]) >= 3
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False


def _max_units(profile: DataProfile) -> int:
    """Wider layers only pay off with more rows to fit them."""
    return int(np.clip(2 ** round(math.log2(max(profile.n_rows, 1) / 4)), 32, 512))


def _batch_sizes(profile: DataProfile) -> list[int]:
    """Batch sizes that leave at least about eight steps per epoch."""
    sizes = [b for b in (16, 32, 64, 128, 256, 512) if b <= max(32, profile.n_rows // 8)]
    return sizes


def _closest(choices: list[int], value: int) -> int:
    return min(choices, key=lambda c: abs(c - value))


def _patience(max_epochs: int) -> int:
    return int(np.clip(max_epochs // 8, 5, 15))


def _align(
    model: Any, prediction: np.ndarray, y_valid: np.ndarray, n_classes: int = 0
) -> np.ndarray:
    """Probabilities in the study's class-index columns, even if training missed a class."""
    classes = getattr(model, "classes_", None)
    if classes is None or prediction.ndim == 1:
        return prediction
    classes = np.asarray(classes, dtype=int)
    width = max(
        n_classes, len(classes), int(classes.max()) + 1, int(np.max(y_valid, initial=0)) + 1
    )
    if width == prediction.shape[1] and np.array_equal(classes, np.arange(width)):
        return prediction
    full = np.zeros((prediction.shape[0], width))
    full[:, classes] = prediction
    return full
