"""The study store: one suite over SQLite and PostgreSQL, plus SQLite-specific safety."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
import uuid

import numpy as np
import optuna
import pandas as pd
import pytest

import autotune
from autotune import auto_tune
from autotune.artifacts import saved_models
from autotune.exceptions import StoreError
from autotune.store import (
    default_storage_url,
    export_study,
    list_studies,
    mask_url,
    open_storage,
    study_name_for,
)
from tests.pg import PASSWORD


def _name() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def test_tune_resume_and_list(store_url, binary_data):
    X, y = binary_data
    name = _name()
    first = auto_tune(X, y, n_trials=3, storage=store_url, study_name=name, show=False)
    second = auto_tune(X, y, n_trials=2, storage=store_url, study_name=name, show=False)
    assert second.resumed_ and not first.resumed_
    finished = [t for t in second.study.trials if t.state.is_finished()]
    assert len(finished) == 5
    row = list_studies(store_url).set_index("name").loc[name]
    assert row["trials"] == 5 and row["metric"] == "roc_auc"
    meta = second.study.user_attrs["autotune"]
    assert {"task", "metric", "families", "fingerprint", "schema", "cv", "autotune_version"} <= set(
        meta
    )


def test_load_predicts_in_a_fresh_process_without_data(store_url, binary_data, tmp_path):
    X, y = binary_data
    name = _name()
    result = auto_tune(X, y, n_trials=4, storage=store_url, study_name=name, show=False)
    assert "final" in saved_models(result.study)
    expected = result.predict_proba(X)
    X.to_csv(tmp_path / "new.csv", index=False)
    code = (
        "import sys, numpy as np, pandas as pd, autotune\n"
        f"r = autotune.load({name!r}, {store_url!r})\n"
        f"p = r.predict_proba(pd.read_csv({str(tmp_path / 'new.csv')!r}))\n"
        f"np.save({str(tmp_path / 'p.npy')!r}, p)\n"
        "print(r.best_family_, 'tensorflow' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), expected)
    assert run.stdout.split()[0] == result.best_family_


def test_export_and_delete(store_url, binary_data, tmp_path):
    X, y = binary_data
    name = _name()
    result = auto_tune(X, y, n_trials=3, storage=store_url, study_name=name, show=False)
    path = export_study(name, tmp_path / "one.db", store_url)
    copy = optuna.load_study(study_name=name, storage=f"sqlite:///{path}")
    assert len(copy.trials) == len(result.study.trials)
    assert copy.user_attrs["autotune"]["fingerprint"] == result.profile_.fingerprint
    with pytest.raises(StoreError, match="already holds"):
        export_study(name, path, store_url)
    from autotune.store import delete_study

    delete_study(name, store_url)
    assert name not in set(list_studies(store_url)["name"])
    with pytest.raises(StoreError, match=f"No study named '{name}'"):
        autotune.load(name, store_url)


def test_parallel_workers_give_exactly_the_requested_trials(store_url, multiclass_data):
    X, y = multiclass_data
    name = _name()
    result = auto_tune(
        X,
        y,
        n_trials=100,
        n_jobs=4,
        families=["linear", "knn"],
        storage=store_url,
        study_name=name,
        show=False,
    )
    trials = result.study.trials
    finished = [t for t in trials if t.state.is_finished()]
    assert len(finished) == 100  # 4 processes x 25 trials
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    errors = [t.user_attrs.get("error", "") for t in trials]
    assert not [e for e in errors if "locked" in e]
    complete = [t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert result.best_score_ == pytest.approx(min(complete))  # log loss: lower is better


def test_sqlite_store_uses_wal_and_a_busy_timeout(tmp_path, binary_data):
    url = f"sqlite:///{tmp_path / 's.db'}"
    X, y = binary_data
    auto_tune(X, y, n_trials=2, storage=url, show=False)
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_default_store_resolves_to_the_nearest_studies_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOTUNE_STORAGE")
    (tmp_path / "studies").mkdir()
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    assert default_storage_url(notebooks) == f"sqlite:///{tmp_path / 'studies' / 'autotune.db'}"
    elsewhere = tmp_path / "x" / "y"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    (tmp_path / "studies").rmdir()
    assert default_storage_url() == f"sqlite:///{elsewhere / 'studies' / 'autotune.db'}"


def test_not_sqlite_or_corrupted_files_are_refused_and_untouched(tmp_path):
    text = tmp_path / "notes.db"
    text.write_text("these are my notes, not a database")
    with pytest.raises(StoreError, match="not an SQLite database"):
        open_storage(f"sqlite:///{text}")
    assert text.read_text() == "these are my notes, not a database"
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"SQLite format 3\x00" + b"\x07" * 4000)
    before = broken.read_bytes()
    with pytest.raises(StoreError, match="Cannot open the study store"):
        open_storage(f"sqlite:///{broken}")
    assert broken.read_bytes() == before


def test_read_only_store_and_folder(tmp_path, binary_data):
    X, y = binary_data
    url = f"sqlite:///{tmp_path / 'ro.db'}"
    auto_tune(X, y, n_trials=1, storage=url, show=False)
    (tmp_path / "ro.db").chmod(0o444)
    with pytest.raises(StoreError, match="read-only"):
        auto_tune(X, y, n_trials=1, storage=url, show=False)
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    with pytest.raises(StoreError, match="read-only"):
        open_storage(f"sqlite:///{folder / 'new.db'}")


def test_missing_parent_folder_is_created(tmp_path):
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'new.db'}"
    open_storage(url)
    assert (tmp_path / "a" / "b" / "new.db").exists()


def test_store_from_a_newer_autotune_is_refused(tmp_path, binary_data):
    X, y = binary_data
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = auto_tune(X, y, n_trials=1, storage=url, show=False)
    meta = dict(result.study.user_attrs["autotune"], autotune_version="99.0.0")
    result.study.set_user_attr("autotune", meta)
    with pytest.raises(StoreError, match="newer"):
        auto_tune(X, y, n_trials=1, storage=url, show=False)


def test_unreachable_postgres_names_the_host_and_hides_the_password():
    url = f"postgresql://user:{PASSWORD}@127.0.0.1:1/nowhere"
    with pytest.raises(StoreError) as info:
        open_storage(url)
    message = str(info.value)
    assert "127.0.0.1" in message and PASSWORD not in message


def test_password_never_appears_in_output(postgres_url, binary_data, capsys, tmp_path):
    X, y = binary_data
    name = _name()
    result = auto_tune(X, y, n_trials=2, storage=postgres_url, study_name=name, show=True)
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err
    assert PASSWORD not in repr(result)
    assert PASSWORD in postgres_url and "***" in mask_url(postgres_url)
    assert PASSWORD not in list_studies(postgres_url).to_string()
    with pytest.raises(autotune.StudyMismatchError) as info:
        auto_tune(X.iloc[:50], y.iloc[:50], n_trials=1, storage=postgres_url, study_name=name)
    assert PASSWORD not in str(info.value)
    report = result.report(str(tmp_path / "r.html"))
    with open(report) as fh:
        assert PASSWORD not in fh.read()


def test_study_names_are_readable_and_safe():
    assert study_name_for("Breast Cancer!", "3f9a1c2e77") == "breast_cancer-3f9a1c2e"
    assert study_name_for(None, "abcdef1234") == "study-abcdef12"
    with pytest.raises(StoreError, match="path characters"):
        auto_tune(pd.DataFrame({"a": range(10)}), [0, 1] * 5, study_name="../x", n_trials=1)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_trial_killed_before_its_first_heartbeat_is_failed_and_retried(tmp_path, monkeypatch):
    from autotune.store import fail_orphaned_trials

    monkeypatch.setenv("AUTOTUNE_GRACE_PERIOD", "1")
    storage = open_storage(f"sqlite:///{tmp_path / 'o.db'}", heartbeat=True)
    study = optuna.create_study(storage=storage, study_name="o")
    study.enqueue_trial({"x": 1.0})
    orphan = study.ask()  # RUNNING with no heartbeat, as if its process died at once
    orphan.suggest_float("x", 0, 2)
    assert fail_orphaned_trials(study) == []  # still within the grace period
    time.sleep(1.5)
    assert fail_orphaned_trials(study) == [orphan.number]
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    assert study.trials[1].system_attrs["failed_trial"] == orphan.number


def test_model_files_refuse_unknown_callables_but_not_sklearns_own(tmp_path):
    import functools
    import os

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils.validation import check_array

    from autotune.artifacts import _load_skops

    own = tmp_path / "own.skops"
    sio.dump(FunctionTransformer(functools.partial(check_array, dtype=None)), own)
    assert isinstance(_load_skops(own, None), FunctionTransformer)
    foreign = tmp_path / "foreign.skops"
    sio.dump(FunctionTransformer(functools.partial(os.getcwd)), foreign)
    with pytest.raises(StoreError, match="does not know to be safe"):
        _load_skops(foreign, None)


def test_a_model_of_many_trees_saves_through_an_index_and_loads_the_same(tmp_path, binary_data):
    import zipfile

    from sklearn.ensemble import HistGradientBoostingClassifier
    from skops.io import _persist

    from autotune.artifacts import _dump, _IndexedZipFile, _linear_skops_save, _load_skops

    X, y = binary_data
    model = HistGradientBoostingClassifier(max_iter=60, early_stopping=False).fit(X, y)
    with _linear_skops_save():
        assert _persist.ZipFile is _IndexedZipFile  # skops opens its zip file by this name
    assert _persist.ZipFile is zipfile.ZipFile  # and gets its own back afterwards
    path = tmp_path / "many.skops"
    _dump([model, model], path)
    with zipfile.ZipFile(path) as written:  # every array once, each tree's arrays included
        assert sum(name.endswith(".npy") for name in written.namelist()) >= 3 * 60
    loaded = _load_skops(path, None)
    np.testing.assert_array_equal(loaded[0].predict_proba(X), model.predict_proba(X))
