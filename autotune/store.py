"""The study store: the only module that knows storage URLs.

It resolves where studies live, opens Optuna storages with safe settings (SQLite busy
timeout and WAL journal, heartbeats for processes that run trials), names studies,
records what a study is about, and refuses to resume a study with data or settings that
no longer match.

Where the default store is: ``$AUTOTUNE_STORAGE`` when set (any Optuna storage URL);
otherwise ``studies/autotune.db`` in the nearest folder, from the working folder upwards,
that already has a ``studies/`` folder; otherwise ``studies/autotune.db`` in the working
folder. A notebook in ``notebooks/`` of a project with a top-level ``studies/`` folder
therefore shares the project's store.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import optuna
import pandas as pd
from sqlalchemy import event, text

from autotune._version import __version__
from autotune.exceptions import StoreError, StudyMismatchError

__all__ = [
    "FINAL_KEY",
    "META_KEY",
    "StudyMeta",
    "check_resumable",
    "default_storage_url",
    "delete_study",
    "export_study",
    "fail_orphaned_trials",
    "list_studies",
    "load_study",
    "mask_url",
    "open_storage",
    "read_meta",
    "run_dashboard",
    "sqlite_path",
    "study_name_for",
    "write_meta",
]

META_KEY = "autotune"
#: Study user attr that says what the final model is: one trial or an ensemble, calibrated?
FINAL_KEY = "autotune_final"
#: Seconds between heartbeats of a running trial, and how long before it counts as dead;
#: ``$AUTOTUNE_HEARTBEAT_INTERVAL`` and ``$AUTOTUNE_GRACE_PERIOD`` override them. The grace
#: period must be longer than the slowest pause of a trial's process.
HEARTBEAT_INTERVAL = 10
GRACE_PERIOD = 60
SQLITE_TIMEOUT = 60

StudyMeta = dict[str, Any]


def default_storage_url(start: Path | None = None) -> str:
    """The storage URL used when ``storage=None`` (see the module docstring)."""
    env = os.environ.get("AUTOTUNE_STORAGE")
    if env:
        return env
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "studies").is_dir():
            return f"sqlite:///{folder / 'studies' / 'autotune.db'}"
    return f"sqlite:///{here / 'studies' / 'autotune.db'}"


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``, safe to print or store."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<storage>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL, or None for other storages and in-memory SQLite."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :]
    if not path or path == ":memory:":
        return None
    return Path(path)


def _check_sqlite_file(path: Path) -> None:
    if path.exists():
        if path.is_dir():
            raise StoreError(f"The store {path} is a folder; pass the path of a .db file.")
        with open(path, "rb") as fh:
            header = fh.read(16)
        if header and header != b"SQLite format 3\x00":
            raise StoreError(
                f"{path} is not an SQLite database; it was left untouched. Pass another path "
                "with storage='sqlite:///other.db'."
            )
        if not _writable(path):
            raise StoreError(f"The store {path} is read-only; make it writable or copy it.")
        return
    parent = path.parent
    if not parent.exists():
        try:
            parent.mkdir(parents=True)
        except OSError as error:
            raise StoreError(f"Cannot create the folder {parent} for the store: {error}") from None
    if not _writable(parent):
        raise StoreError(f"The folder {parent} is read-only; choose a writable store location.")


def _writable(path: Path) -> bool:
    """Writable by permission bits, not only by privilege: a store its owner made read-only
    stays untouched even for root."""
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)


def _enable_wal(engine: Any) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_TIMEOUT * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()


def open_storage(url: str | None = None, *, heartbeat: bool = False) -> optuna.storages.BaseStorage:
    """Open an Optuna storage for a URL, with settings that keep it safe to share.

    Args:
        url: Any Optuna storage URL; None for :func:`default_storage_url`.
        heartbeat: Enable Optuna's heartbeat, for processes that run trials, so that a
            trial of a killed process is failed and retried by the next run.

    Raises:
        StoreError: the store cannot be opened; the message never contains a password.
    """
    url = url or default_storage_url()
    path = sqlite_path(url)
    engine_kwargs: dict[str, Any] = {}
    if path is not None:
        _check_sqlite_file(path)
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT}
    elif url.startswith(("postgresql", "mysql")):
        engine_kwargs["pool_pre_ping"] = True
    heartbeat_kwargs: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if heartbeat:
            heartbeat_kwargs = {
                "heartbeat_interval": int(
                    os.environ.get("AUTOTUNE_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL)
                ),
                "grace_period": int(os.environ.get("AUTOTUNE_GRACE_PERIOD", GRACE_PERIOD)),
                "heartbeat_stale_trial_callback": (
                    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)
                ),
            }
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, **heartbeat_kwargs
            )
    except Exception as error:
        raise StoreError(
            f"Cannot open the study store {mask_url(url)}: {_clean_message(error, url)}"
        ) from None
    if path is not None:
        _enable_wal(storage.engine)
        storage.engine.dispose()
    return storage


def _clean_message(error: Exception, url: str) -> str:
    text = str(error).split("\n")[0][:300]
    password = urlsplit(url).password if "://" in url else None
    if password:
        text = text.replace(password, "***")
    return f"{type(error).__name__}: {text}"


_SLUG = re.compile(r"[^A-Za-z0-9_]+")


def study_name_for(prefix: str | None, fingerprint: str) -> str:
    """A readable study name: a prefix made safe, a dash, and 8 characters of fingerprint."""
    slug = _SLUG.sub("_", prefix or "study").strip("_").lower()[:40] or "study"
    return f"{slug}-{fingerprint[:8]}"


def check_study_name(name: str) -> str:
    """Reject names that could be mistaken for paths.

    Raises:
        StoreError: the name contains path characters or is empty.
    """
    if not name or any(ch in name for ch in "/\\\0") or name in (".", ".."):
        raise StoreError(
            f"Study name {name!r} must not be empty or contain path characters ('/', '\\')."
        )
    return name


def read_meta(study: optuna.Study) -> StudyMeta:
    """What autotune recorded about a study (empty for studies it did not make)."""
    meta = study.user_attrs.get(META_KEY)
    return dict(meta) if isinstance(meta, Mapping) else {}


def write_meta(study: optuna.Study, meta: StudyMeta) -> None:
    """Record a study's metadata, with the autotune version that wrote it."""
    study.set_user_attr(META_KEY, {**meta, "autotune_version": __version__})
    for key in ("task", "metric", "fingerprint"):
        if key in meta:
            study.set_user_attr(key, meta[key])


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def check_resumable(name: str, old: StudyMeta, new: StudyMeta) -> None:
    """Refuse to resume a study whose data or settings differ from this call's.

    Raises:
        StoreError: the study was written by a newer autotune.
        StudyMismatchError: the data, schema, task, metric, families or strategy differ.
    """
    if not old:
        raise StudyMismatchError(
            f"Study {name!r} exists but was not made by autotune; pass another study_name."
        )
    version = old.get("autotune_version", "0")
    if _version_tuple(version) > _version_tuple(__version__):
        raise StoreError(
            f"Study {name!r} was written by autotune {version}, newer than this {__version__}; "
            "upgrade autotune to resume it."
        )
    fresh = f"Pass study_name='{name}-2' (or another new name) to start a fresh study."
    if old.get("schema") != new.get("schema"):
        old_cols, new_cols = old.get("schema", {}), new.get("schema", {})
        gone = [c for c in old_cols if c not in new_cols]
        added = [c for c in new_cols if c not in old_cols]
        changed = [c for c in old_cols if c in new_cols and old_cols[c] != new_cols[c]]
        raise StudyMismatchError(
            f"Study {name!r} was tuned on other columns (missing now: {gone[:5]}, new: "
            f"{added[:5]}, changed kind: {changed[:5]}). {fresh}"
        )
    if old.get("fingerprint") != new.get("fingerprint"):
        raise StudyMismatchError(
            f"Study {name!r} was tuned on different data (fingerprint "
            f"{str(old.get('fingerprint'))[:8]}, now {str(new.get('fingerprint'))[:8]}). {fresh}"
        )
    for key in ("task", "metric", "families"):
        if key in new and old.get(key) != new[key]:
            raise StudyMismatchError(
                f"Study {name!r} was tuned with {key}={old.get(key)!r}, not {new[key]!r}. "
                f"Pass {key}={old.get(key)!r} (or 'auto') to resume it. {fresh}"
            )
    if (old.get("strategy") == "grid") != (new.get("strategy") == "grid"):
        raise StudyMismatchError(
            f"Study {name!r} used strategy={old.get('strategy')!r}; a grid search and a sampled "
            f"search cannot share a study. {fresh}"
        )


def list_studies(storage: str | None = None) -> pd.DataFrame:
    """The studies in a store: name, task, metric, trials, best score and last update."""
    opened = open_storage(storage)
    rows = []
    for summary in optuna.get_all_study_summaries(opened, include_best_trial=True):
        attrs = summary.user_attrs.get(META_KEY, {}) if summary.user_attrs else {}
        best = summary.best_trial.value if summary.best_trial is not None else None
        trials = opened.get_all_trials(summary._study_id, deepcopy=False)
        stamps = [t.datetime_complete or t.datetime_start for t in trials]
        stamps = [s for s in stamps if s is not None]
        rows.append(
            {
                "name": summary.study_name,
                "task": attrs.get("task"),
                "metric": attrs.get("metric"),
                "trials": sum(t.state.is_finished() for t in trials),
                "best_score": best,
                "started": summary.datetime_start,
                "updated": max(stamps) if stamps else None,
            }
        )
    columns = ["name", "task", "metric", "trials", "best_score", "started", "updated"]
    return pd.DataFrame(rows, columns=columns)


def load_study(name: str, storage: str | None = None, *, heartbeat: bool = False) -> optuna.Study:
    """Open an existing study by name, for inspection or to continue it.

    Args:
        name: The study.
        storage: The store's URL; None for the default store.
        heartbeat: Open with heartbeats, for a process that will run trials.

    Raises:
        StoreError: no study of that name exists in the store (the message lists some).
    """
    opened = open_storage(storage, heartbeat=heartbeat)
    names = optuna.get_all_study_names(opened)
    if name not in names:
        shown = ", ".join(sorted(names)[:10]) or "none"
        raise StoreError(
            f"No study named {name!r} in {mask_url(storage or opened.url)}; studies there: {shown}."
        )
    return optuna.load_study(study_name=name, storage=opened)


def delete_study(name: str, storage: str | None = None) -> None:
    """Remove a study and the artifact files of its stored models.

    Raises:
        StoreError: no such study.
    """
    study = load_study(name, storage)
    folder = study.user_attrs.get("autotune_artifact_dir")
    ids = [
        value
        for record in (study.user_attrs.get("autotune_models") or {}).values()
        for key, value in record.items()
        if key in ("model", "preprocess", "estimator")
    ]
    optuna.delete_study(study_name=name, storage=open_storage(storage))
    if folder:
        for artifact_id in set(ids):
            path = Path(folder) / artifact_id
            if path.is_file():
                path.unlink()


def export_study(name: str, to: str | Path, storage: str | None = None) -> Path:
    """Copy one study into a standalone SQLite file (Optuna's ``copy_study``).

    Raises:
        StoreError: no such study, or the target file already holds a study of that name.
    """
    load_study(name, storage)
    path = Path(to).resolve()
    target = open_storage(f"sqlite:///{path}")
    if name in optuna.get_all_study_names(target):
        raise StoreError(f"{path} already holds a study named {name!r}; choose another file.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.copy_study(
            from_study_name=name, from_storage=open_storage(storage), to_storage=target
        )
    return path


def run_dashboard(storage: str | None = None, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve optuna-dashboard on the store, with the stored models as artifacts."""
    from optuna.artifacts import FileSystemArtifactStore

    try:
        from optuna_dashboard import run_server
    except ImportError:
        from autotune.exceptions import MissingDependencyError

        raise MissingDependencyError(
            "The dashboard needs optuna-dashboard; install it with `pip install optuna-dashboard`."
        ) from None
    from autotune.artifacts import artifact_dir_for

    url = storage or default_storage_url()
    folder = artifact_dir_for(url)
    folder.mkdir(parents=True, exist_ok=True)
    print(f"optuna-dashboard on http://{host}:{port} for {mask_url(url)}")
    run_server(
        open_storage(url), host=host, port=port, artifact_store=FileSystemArtifactStore(folder)
    )


def fail_orphaned_trials(study: optuna.Study) -> list[int]:
    """Fail and retry RUNNING trials that a killed process left without any heartbeat.

    Optuna's heartbeat fails stale trials only when they have a heartbeat row. A process
    killed between starting a trial and its first heartbeat leaves a trial RUNNING forever;
    once such a trial is older than the grace period, no live process can own it.

    Returns:
        The numbers of the trials failed.
    """
    storage = study._storage
    backend = getattr(storage, "_backend", storage)  # under Optuna's cache wrapper
    grace = getattr(backend, "grace_period", None)
    engine = getattr(backend, "engine", None)
    if grace is None or engine is None:
        return []
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    old = [
        t for t in running if t.datetime_start and (now - t.datetime_start).total_seconds() > grace
    ]
    if not old:
        return []
    ids = ",".join(str(t._trial_id) for t in old)
    with engine.connect() as connection:
        beating = {
            row[0]
            for row in connection.execute(
                text(f"SELECT trial_id FROM trial_heartbeats WHERE trial_id IN ({ids})")
            )
        }
    failed = []
    retry = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)
    for trial in old:
        if trial._trial_id in beating:
            continue
        if storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL):
            failed.append(trial.number)
            retry(study, storage.get_trial(trial._trial_id))
    return failed
