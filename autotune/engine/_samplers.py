"""Search strategies (``strategy=``) mapped onto Optuna samplers and the pruner."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Mapping

import optuna

from autotune.engine._allocation import CostAwareSampler
from autotune.engine._pruning import GroupedPruner
from autotune.exceptions import ConfigError, MissingDependencyError

__all__ = ["STRATEGIES", "make_pruner", "make_sampler"]

STRATEGIES = ("auto", "tpe", "random", "grid", "cmaes", "gp", "gradient")


def _require(module: str, package: str, strategy: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(
            f"strategy={strategy!r} needs the {package!r} package; install it with "
            f"`pip install {package}` or choose strategy='auto'."
        )


def check_strategy(strategy: str) -> None:
    """Reject unknown strategies and those whose optional package is missing.

    Raises:
        ConfigError: the strategy is unknown.
        MissingDependencyError: it needs a package that is not installed.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"Unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}.")
    if strategy == "cmaes":
        _require("cmaes", "cmaes", strategy)
    if strategy == "gp":
        _require("torch", "torch", strategy)


def make_sampler(
    strategy: str, seed: int, costs: Mapping[str, float] | None = None
) -> optuna.samplers.BaseSampler:
    """The sampler behind a strategy.

    ``auto``, ``tpe`` and ``gradient`` use TPE, multivariate and grouped so that each
    family's conditional parameters are modelled together, with a constant liar for
    parallel workers. ``auto`` also shares the budget among the families (``costs``: name
    → relative cost) by their measured promise and cost. ``grid`` searches a discretised
    space exhaustively.
    """
    check_strategy(strategy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if strategy in ("auto", "tpe", "gradient"):
            tpe = optuna.samplers.TPESampler(
                seed=seed,
                multivariate=True,
                group=True,
                constant_liar=True,
                n_startup_trials=10,
            )
            if strategy == "auto" and costs is not None and len(costs) > 1:
                return CostAwareSampler(tpe, costs, seed)
            return tpe
        if strategy == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if strategy == "grid":
            return optuna.samplers.BruteForceSampler(seed=seed)
        if strategy == "cmaes":
            return optuna.samplers.CmaEsSampler(
                seed=seed, warn_independent_sampling=False, n_startup_trials=5
            )
        return optuna.samplers.GPSampler(seed=seed)


def make_pruner(fidelities: Mapping[str, str], n_repeats: int = 1) -> optuna.pruners.BasePruner:
    """Paired Wilcoxon tests on folds, and a per-family median rule on epochs."""
    return GroupedPruner(fidelities, n_repeats)
