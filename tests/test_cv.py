"""Fixed cross-validation splits, repeated on small data."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd

from autotune.data import profile_data
from autotune.engine import Objective, encode_target, make_splits
from autotune.engine._cv import choose_n_repeats
from autotune.families import get_family
from autotune.metrics import get_metric
from tests.conftest import make_mixed


def test_repeats_on_small_data_only():
    small = profile_data(*make_mixed(n=300))[2]
    large = profile_data(*make_mixed(n=4000))[2]
    assert choose_n_repeats(small) == 3 and choose_n_repeats(large) == 1
    assert choose_n_repeats(small, timeout=60) == 3


def test_no_repeats_under_a_short_budget_or_for_costly_fits():
    small = profile_data(*make_mixed(n=300))[2]
    assert choose_n_repeats(small, timeout=10) == 1
    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.normal(size=(1_000, 64)), columns=[f"p{i}" for i in range(64)])
    ten_classes = pd.Series(rng.integers(0, 10, 1_000), name="digit")
    assert choose_n_repeats(profile_data(wide, ten_classes)[2]) == 1
    two_classes = pd.Series(rng.integers(0, 2, 1_000), name="flag")
    assert choose_n_repeats(profile_data(wide, two_classes)[2]) == 3


def test_repeated_splits_cover_every_row_once_per_repeat():
    X, y = make_mixed(n=300)
    profile = profile_data(X, y)[2]
    codes = (np.asarray(y) == profile.classes[1]).astype(int)
    splits = make_splits(profile, codes, 5, seed=0, n_repeats=3)
    assert len(splits) == 15
    for repeat in range(3):
        valid = np.concatenate([v for _, v in splits[repeat * 5 : (repeat + 1) * 5]])
        assert sorted(valid) == list(range(300))
    # each repeat shuffles differently, and the first repeat is the unrepeated split
    assert not np.array_equal(splits[0][1], splits[5][1])
    single = make_splits(profile, codes, 5, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(single, splits[:5], strict=True))
    # the same arguments give the same splits: a resumed study scores on the same folds
    again = make_splits(profile, codes, 5, seed=0, n_repeats=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(again, splits, strict=True))


def test_a_trial_scores_every_repeat_and_averages_its_out_of_fold_predictions():
    X, y = make_mixed(n=300)
    frame, target, profile = profile_data(X, y)
    codes = encode_target(target, profile)
    splits = make_splits(profile, codes, 5, seed=0, n_repeats=3)
    objective = Objective(
        frame,
        codes,
        profile,
        [get_family("linear")],
        get_metric("roc_auc", profile.task),
        [],
        splits,
        seed=0,
    )
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert sorted(trial.intermediate_values) == list(range(15))
    assert trial.value == np.mean(list(trial.intermediate_values.values()))
    oof = objective.oof.items[0][1]
    assert oof.shape == (300, 2) and np.allclose(oof.sum(axis=1), 1.0)
