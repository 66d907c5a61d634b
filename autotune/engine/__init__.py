"""The search engine: objective, cross-validation, pruning, time budget and final model.

It reports progress only through :class:`Listener` callbacks and never imports widgets.
"""

from autotune.engine._cv import choose_n_splits, make_splits
from autotune.engine._events import Listener, MultiListener, RunInfo, TrialReport
from autotune.engine._fit import predict_scores
from autotune.engine._objective import FAMILY_PARAM, Objective
from autotune.engine._refit import (
    best_trial,
    build_final_model,
    family_params,
    fit_final_model,
    trial_family,
)
from autotune.engine._run import BUDGET_KEY
from autotune.engine._samplers import STRATEGIES, check_strategy, make_pruner, make_sampler
from autotune.engine._search import TuneOutcome, default_timeout, encode_target, tune

__all__ = [
    "BUDGET_KEY",
    "FAMILY_PARAM",
    "STRATEGIES",
    "Listener",
    "MultiListener",
    "Objective",
    "RunInfo",
    "TrialReport",
    "TuneOutcome",
    "best_trial",
    "build_final_model",
    "check_strategy",
    "choose_n_splits",
    "default_timeout",
    "encode_target",
    "family_params",
    "fit_final_model",
    "make_pruner",
    "make_sampler",
    "make_splits",
    "predict_scores",
    "trial_family",
    "tune",
]
