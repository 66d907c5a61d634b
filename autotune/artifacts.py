"""Fitted models kept with their study as Optuna artifacts, in safe formats.

scikit-learn pipelines are written with skops, which loads without unpickling; an
estimator that saves itself (the Keras family writes ``.keras`` files) is kept as its own
file next to the skops file of the preprocessing. The study records, under the user attr
``autotune_models``, which artifacts make up each model and where the artifact folder is.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Iterator, KeysView, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import skops.io as sio
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact
from sklearn.pipeline import Pipeline

from autotune.exceptions import StoreError
from autotune.store import default_storage_url, sqlite_path

__all__ = [
    "artifact_dir_for",
    "estimated_save_seconds",
    "load_model",
    "part_record",
    "save_model",
    "saved_models",
]

#: skops writes every tree as objects of their own, so the trees set the time a save takes.
#: Measured on 2 cores, with the save made linear (``_linear_skops_save``), in the run's
#: own process after its search, where a save took up to twice as long as in a fresh one:
#: 0.8 ms per tree of histogram gradient boosting; 2.8 ms per tree of a forest, plus 0.03 s
#: per MB of nodes; 15 ms for any other fitted model (a fold's linear model or SVM). On
#: r_participation_lfp at 60 s, with the earlier fresh-process figures (0.6 and 1.5 ms, no
#: cost for other models), the final ensemble's save took 2.4 to 5.7 s where 1.1 to 3.5 s
#: were estimated, and runs ended at up to 67.6 s.
SAVE_SECONDS_PER_BOOSTED_TREE = 0.0008
SAVE_SECONDS_PER_TREE = 0.0028
SAVE_SECONDS_PER_MB = 0.03
SAVE_SECONDS_PER_MODEL = 0.015
#: LightGBM keeps its trees as text. On 15,000 rows of 4 classes, 2,892 trees of 31 and of
#: 219 leaves wrote 10 and 40 MB of skops file in 0.75 and 2.5 s (0.09 s per MB with 1,000
#: leaves) in a fresh process, and 200 trees of 8 leaves on 2,000 rows wrote 0.22 MB. The
#: bytes per tree and per leaf give 0.9 to 1.5 times each of those sizes; the seconds per
#: MB are doubled for the run's own process, as above. Costed as any other model's before,
#: such saves made runs on r_doctorcontacts_health end at 62.7 s.
LIGHTGBM_BYTES_PER_TREE = 1_200
LIGHTGBM_BYTES_PER_LEAF = 64
SAVE_SECONDS_PER_LIGHTGBM_MB = 0.18

MODELS_KEY = "autotune_models"
DIR_KEY = "autotune_artifact_dir"
#: Module prefixes whose types a model file may hold without ``trusted=``.
SAFE_PREFIXES = (
    "sklearn.",
    "numpy.",
    "scipy.",
    "autotune.",
    "builtins.",
    "collections.",
    "lightgbm.",  # a booster is restored from its text model, not unpickled
)
#: Single types a model file may hold without ``trusted=``. scikit-learn's gradient boosting
#: keeps a ``partial`` of its own ``check_array``; skops lists the wrapped function as a
#: type of its own, so it is vetted by the prefixes above like any other.
SAFE_TYPES = ("functools.partial",)


def artifact_dir_for(storage_url: str | None) -> Path:
    """The artifact folder of a store: ``artifacts/`` next to an SQLite file, otherwise
    ``$AUTOTUNE_ARTIFACTS`` or ``artifacts/`` beside the default SQLite store."""
    path = sqlite_path(storage_url or default_storage_url())
    if path is not None:
        return path.resolve().parent / "artifacts"
    env = os.environ.get("AUTOTUNE_ARTIFACTS")
    if env:
        return Path(env)
    default = sqlite_path(default_storage_url())
    assert default is not None
    return default.resolve().parent / "artifacts"


def _store(study: optuna.Study, storage_url: str | None = None) -> FileSystemArtifactStore:
    recorded = study.user_attrs.get(DIR_KEY)
    folder = Path(recorded) if recorded else artifact_dir_for(storage_url)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"Cannot create the artifact folder {folder}: {error}") from None
    if not recorded:
        study.set_user_attr(DIR_KEY, str(folder))
    return FileSystemArtifactStore(str(folder))


def _self_saving(estimator: Any) -> bool:
    return callable(getattr(estimator, "save", None)) and callable(
        getattr(type(estimator), "load", None)
    )


def estimated_save_seconds(models: Sequence[Any]) -> float:
    """How long saving these models will take, so that a final model can stop growing
    while its save still fits in the time budget."""
    return sum(_save_seconds(model) for model in models)


def _leaves(model: Any) -> Iterator[Any]:
    """The estimators a model is made of: a pipeline's last step, an ensemble's members."""
    if isinstance(model, Pipeline):
        yield from _leaves(model.steps[-1][1])
    elif hasattr(model, "members"):  # an ensemble or a bag of fold models
        for member in model.members:
            yield from _leaves(member)
    else:
        yield model


def _save_seconds(model: Any) -> float:
    seconds = 0.0
    for leaf in _leaves(model):
        trees = _trees(leaf)
        if hasattr(leaf, "_predictors"):
            seconds += SAVE_SECONDS_PER_BOOSTED_TREE * trees
        elif _is_lightgbm(leaf):
            seconds += SAVE_SECONDS_PER_LIGHTGBM_MB * _bytes(leaf) / 1e6
        elif trees:
            seconds += SAVE_SECONDS_PER_TREE * trees + SAVE_SECONDS_PER_MB * _bytes(leaf) / 1e6
        else:
            seconds += SAVE_SECONDS_PER_MODEL
    return seconds


def estimated_bytes(model: Any) -> int:
    """Roughly how much memory a fitted model holds: its trees' nodes, else its arrays
    (coefficients, support vectors, a neighbours model's training rows)."""
    return sum(_bytes(leaf) for leaf in _leaves(model))


def _is_lightgbm(estimator: Any) -> bool:
    return hasattr(estimator, "booster_")  # False before the fit too


def _bytes(estimator: Any) -> int:
    if hasattr(estimator, "_predictors"):
        return sum(p.nodes.nbytes for trees in estimator._predictors for p in trees)
    if _is_lightgbm(estimator):  # at most ``num_leaves`` per tree
        per_tree = LIGHTGBM_BYTES_PER_TREE + LIGHTGBM_BYTES_PER_LEAF * estimator.num_leaves
        return int(estimator.booster_.num_trees() * per_tree)
    tree = getattr(estimator, "tree_", None)
    if tree is not None:
        return int(tree.value.nbytes + 64 * tree.node_count)
    estimators = getattr(estimator, "estimators_", None)
    if isinstance(estimators, list):
        return sum(_bytes(e) for e in estimators)
    return sum(v.nbytes for v in vars(estimator).values() if isinstance(v, np.ndarray))


def _count_trees(model: Any) -> int:
    return sum(_trees(leaf) for leaf in _leaves(model))


def _trees(estimator: Any) -> int:
    if hasattr(estimator, "_predictors"):  # histogram gradient boosting: one tree per class
        return sum(len(trees) for trees in estimator._predictors)
    estimators = getattr(estimator, "estimators_", None)
    return len(estimators) if isinstance(estimators, list) else 0


class _IndexedZipFile(zipfile.ZipFile):
    """A zip file whose ``namelist()`` is a live view of its index of names."""

    def namelist(self) -> KeysView[str]:  # type: ignore[override]
        return self.NameToInfo.keys()


@contextlib.contextmanager
def _linear_skops_save() -> Iterator[None]:
    """Make a skops save take time linear in the number of arrays.

    skops (0.16) checks each array's file name against ``ZipFile.namelist()``, a list it
    rebuilds for every array, so a save of n arrays takes O(n²) time. A bag of four
    7-class boosted models (8,400 trees, three arrays each) took 22.6 s to save instead of 4.
    During the save, skops's zip file is given an index for that lookup; the file
    written is the same. If skops changes how it opens its zip file, the patch is skipped.
    """
    from skops.io import _persist

    if getattr(_persist, "ZipFile", None) is not zipfile.ZipFile:
        yield
        return
    _persist.ZipFile = _IndexedZipFile  # type: ignore[misc]
    try:
        yield
    finally:
        _persist.ZipFile = zipfile.ZipFile  # type: ignore[misc]


def _dump(model: Any, path: Path) -> None:
    with _linear_skops_save():
        sio.dump(model, path)


def save_model(
    study: optuna.Study,
    model: Any,
    *,
    role: str,
    family: str,
    trial_number: int,
    storage_url: str | None = None,
) -> dict[str, Any]:
    """Store a fitted pipeline as artifacts of the study under a role (``final``,
    ``best:hgb``, …) and record it; returns the record."""
    store = _store(study, storage_url)
    estimator = model.steps[-1][1] if isinstance(model, Pipeline) else model
    record: dict[str, Any] = {"family": family, "trial": trial_number}
    with tempfile.TemporaryDirectory() as folder:
        if isinstance(model, Pipeline) and _self_saving(estimator):
            prep_path = Path(folder) / "preprocess.skops"
            _dump(Pipeline(model.steps[:-1]), prep_path)
            est_path = Path(estimator.save(Path(folder) / "estimator.keras"))
            record["format"] = "skops+native"
            record["estimator_class"] = f"{type(estimator).__module__}.{type(estimator).__name__}"
            record["preprocess"] = upload_artifact(
                artifact_store=store, file_path=str(prep_path), study_or_trial=study
            )
            record["estimator"] = upload_artifact(
                artifact_store=store, file_path=str(est_path), study_or_trial=study
            )
        else:
            path = Path(folder) / "model.skops"
            _dump(model, path)
            record["format"] = "skops"
            record["model"] = upload_artifact(
                artifact_store=store, file_path=str(path), study_or_trial=study
            )
    models = dict(study.user_attrs.get(MODELS_KEY, {}))
    models[role] = record
    study.set_user_attr(MODELS_KEY, models)
    return record


def part_record(record: dict[str, Any], attribute: str) -> dict[str, Any]:
    """The record of a model held inside a stored one, as its ``attribute`` (the
    uncalibrated pipeline of a temperature-scaled final model): it loads from the same
    files, so the same trees are not written twice."""
    return {**record, "part": attribute}


def saved_models(study: optuna.Study) -> dict[str, dict[str, Any]]:
    """Role → record of the models stored with a study."""
    return dict(study.user_attrs.get(MODELS_KEY, {}))


def _load_skops(path: Path, trusted: list[str] | None) -> Any:
    untrusted = sio.get_untrusted_types(file=path)
    unknown = [t for t in untrusted if not t.startswith(SAFE_PREFIXES) and t not in SAFE_TYPES]
    allowed = set(trusted or [])
    refused = [t for t in unknown if t not in allowed]
    if refused:
        raise StoreError(
            f"The model file holds types autotune does not know to be safe: {refused[:5]}. "
            "If you trust this store, load it with trusted=[...those type names...]."
        )
    return sio.load(path, trusted=list(untrusted))


def load_model(
    study: optuna.Study,
    role: str = "final",
    *,
    trusted: list[str] | None = None,
    storage_url: str | None = None,
) -> Pipeline:
    """Load a model stored with a study, without unpickling anything.

    Args:
        study: The study.
        role: ``"final"`` or ``"best:<family>"``.
        trusted: Extra type names to accept from the skops file (only needed for models
            holding types outside scikit-learn, NumPy, SciPy and autotune).
        storage_url: Where to look for artifacts when the study does not record it.

    Raises:
        StoreError: no such model, or the files are missing or hold unknown types.
    """
    models = saved_models(study)
    if role not in models:
        have = ", ".join(sorted(models)) or "none"
        raise StoreError(
            f"Study {study.study_name!r} has no stored {role!r} model (stored: {have})."
        )
    record = models[role]
    store = _store(study, storage_url)
    with tempfile.TemporaryDirectory() as folder:
        try:
            if record["format"] == "skops":
                path = Path(folder) / "model.skops"
                download_artifact(
                    artifact_store=store, file_path=str(path), artifact_id=record["model"]
                )
                model = _load_skops(path, trusted)
                return getattr(model, record["part"]) if "part" in record else model
            prep_path = Path(folder) / "preprocess.skops"
            est_path = Path(folder) / "estimator.keras"
            download_artifact(
                artifact_store=store, file_path=str(prep_path), artifact_id=record["preprocess"]
            )
            download_artifact(
                artifact_store=store, file_path=str(est_path), artifact_id=record["estimator"]
            )
        except FileNotFoundError:
            raise StoreError(
                f"The artifact files of study {study.study_name!r} are missing from "
                f"{study.user_attrs.get(DIR_KEY)}; copy the artifacts folder with the database."
            ) from None
        prep = _load_skops(prep_path, trusted)
        estimator_cls = _estimator_class(record["estimator_class"])
        estimator = estimator_cls.load(est_path)
    return Pipeline([*prep.steps, ("model", estimator)])


def _estimator_class(qualified: str) -> Any:
    module_name, _, name = qualified.rpartition(".")
    if not module_name.startswith("autotune."):
        raise StoreError(f"Refusing to load an estimator of class {qualified!r}.")
    import importlib

    return getattr(importlib.import_module(module_name), name)
