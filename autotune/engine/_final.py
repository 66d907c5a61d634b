"""The model a run ends with: the greedy ensemble or the best trial, calibrated where that
helps; and each family's best model, kept with the study."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from autotune.artifacts import MODELS_KEY, estimated_save_seconds, save_model
from autotune.data import DataProfile
from autotune.engine._calibration import TemperatureScaled, calibrate
from autotune.engine._ensemble import EnsembleModel, choose_ensemble
from autotune.engine._objective import holdout_scored
from autotune.engine._refit import fit_final_model, past_deadline, trial_family
from autotune.engine._run import Run, fold_time

__all__ = ["FinalModel", "final_model", "save_family_bests"]


@dataclass
class FinalModel:
    """The model a run ends with, and what it is (stored with the study as ``FINAL_KEY``)."""

    model: Any
    family: str
    info: dict[str, Any]

    def describe(self, metric: str) -> list[str]:
        info = self.info
        lines = []
        if info["kind"] == "ensemble":
            members = ", ".join(f"{n} ({w:.2f})" for n, w in info["weights"].items())
            lines.append(
                f"final model: an ensemble of trials {members}; out-of-fold {metric} "
                f"{info['score']:.4g} against {info['best_single']:.4g} for the best single trial"
            )
        elif info.get("bagged"):
            lines.append(f"final model: trial {info['trial']}, its fold models averaged")
        if info.get("temperature"):
            lines.append(
                f"calibrated probabilities (temperature {info['temperature']:.3g}): out-of-fold "
                f"{metric} {info['uncalibrated']:.4g} -> {info['calibrated']:.4g}"
            )
        return lines


def final_model(
    study: optuna.Study,
    run: Run,
    best: FrozenTrial,
    profile: DataProfile,
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int,
    strategy: str,
) -> FinalModel:
    """The ensemble when it beats the best trial out of fold, else the best trial (or its
    stand-in); then temperature-scaled where that improves the out-of-fold score."""
    ensemble = _fit_ensemble(study, run, best, profile, X, y, seed, strategy)
    if ensemble is None:
        trial = run.stand_in(study, best)
        if trial is not best:
            run.listener.on_message(
                f"no time left to refit trial {best.number} ({trial_family(best)}): the final "
                f"model is trial {trial.number} ({trial_family(trial)}), from its fold models"
            )
        family, model = run.fit_member(trial, X, y, seed, strategy)
        info = {"kind": "trial", "trial": trial.number, "bagged": isinstance(model, EnsembleModel)}
        final = FinalModel(model, family.name, info)
        item = run.objective.oof.items.get(trial.number)
        oof = None if item is None else item[1]
    else:
        model, info, oof = ensemble
        final = FinalModel(model, "ensemble", {"kind": "ensemble", **info})
    if oof is not None and profile.task != "regression":
        classes = np.asarray(profile.classes, dtype=object)
        found = calibrate(oof, y, run.metric, classes)
        if found is not None:
            temperature, before, after = found
            final.model = TemperatureScaled(final.model, temperature, profile.n_classes).fit()
            final.info.update(temperature=temperature, uncalibrated=before, calibrated=after)
    return final


def _fit_ensemble(
    study: optuna.Study,
    run: Run,
    best: FrozenTrial,
    profile: DataProfile,
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int,
    strategy: str,
) -> tuple[EnsembleModel, dict[str, Any], np.ndarray] | None:
    """The greedy ensemble of this run's trials, fitted on all the data, when
    ``choose_ensemble`` takes it (over the study's ``best`` too, if an earlier run
    cross-validated that) and the budget leaves time to fit it.

    Returns:
        The ensemble, its description and its pooled out-of-fold predictions.
    """
    classes = np.asarray(profile.classes, dtype=object)
    oof = run.objective.oof
    # A network's score is on the holdout its early stopping watched: optimistic, so no
    # rival to out-of-fold scores. A trial of an earlier run, cross-validated, is one.
    watched = holdout_scored(best)
    rival = None if best.number in oof.items or watched else best.value
    chosen = choose_ensemble(oof, y, classes, rival, seed)
    if chosen is None:
        return None
    weights, score, best_single = chosen
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    order = _affordable(run, sorted(weights, key=weights.__getitem__, reverse=True))
    if len(order) < len(weights):
        # the members the time left allows, reweighted: still the final model if they
        # beat the best single trial without the others
        if len(order) < 2:
            return None
        weights, score = _reweighted(run, weights, order, y, classes)
        beaten = [best_single] if rival is None else [best_single, rival]
        if not all(run.metric.better(score, b) for b in beaten):
            return None
    members: list[Any] = []
    for number in order:
        reserve = estimated_save_seconds(members)
        member = run.fit_member(trials[number], X, y, seed, strategy, reserve)[1]
        if members and past_deadline(run.deadline, [*members, member]):
            break  # the deadline holds, saving included: the heaviest members, reweighted
        members.append(member)
        if past_deadline(run.deadline, members):
            break
    kept = order[: len(members)]
    if len(kept) < len(order):
        if len(kept) < 2:
            return None
        weights, score = _reweighted(run, weights, kept, y, classes)
        if not run.metric.better(score, best_single):
            return None
    prediction = _blend(run, weights)
    model = EnsembleModel(
        members,
        [weights[n] for n in kept],
        regression=profile.task == "regression",
        n_classes=profile.n_classes,
    ).fit(X)
    info = {
        "bagged": run.bagging,
        "weights": {str(n): weights[n] for n in kept},
        "score": score,
        "best_single": best_single,
    }
    return model, info, prediction


def _blend(run: Run, weights: dict[int, float]) -> np.ndarray:
    """The weighted average of the members' out-of-fold predictions."""
    items = run.objective.oof.items
    return np.asarray(sum(w * items[n][1] for n, w in weights.items()))


def _reweighted(
    run: Run, weights: dict[int, float], kept: list[int], y: np.ndarray, classes: np.ndarray
) -> tuple[dict[int, float], float]:
    """The weights of the ``kept`` members alone, scaled to sum to one, and the out-of-fold
    score of their blend."""
    total = sum(weights[n] for n in kept)
    weights = {n: weights[n] / total for n in kept}
    return weights, run.metric.score(y, _blend(run, weights), classes)


def _affordable(run: Run, order: list[int]) -> list[int]:
    """The members, heaviest first, whose fits the time left allows (all without a
    deadline): on digits a member of weight 0.04 that needed 3 s of refitting used to cost
    the whole ensemble (0.081 out of fold against 0.113 for the best single trial)."""
    if run.deadline is None:
        return order
    left = run.deadline - time.monotonic()
    kept: list[int] = []
    for number in order:
        needed = run.member_seconds(number)
        if needed <= left:
            kept.append(number)
            left -= needed
    return kept


def save_family_bests(
    study: optuna.Study,
    run: Run,
    final: FrozenTrial,
    final_record: dict[str, Any] | None,
    profile: DataProfile,
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int,
    strategy: str,
    url: str,
) -> None:
    """Keep the best model of every family, refitting the others while the budget allows."""
    models = dict(study.user_attrs.get(MODELS_KEY, {}))
    if final_record is not None:
        models[f"best:{trial_family(final)}"] = final_record
        study.set_user_attr(MODELS_KEY, models)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    bests: dict[str, FrozenTrial] = {}
    for trial in complete:
        name = trial_family(trial)
        if name and (name not in bests or run.metric.better(trial.value, bests[name].value)):
            bests[name] = trial
    skipped = []
    for name, trial in bests.items():
        if name == trial_family(final) and final_record is not None:
            continue
        if models.get(f"best:{name}", {}).get("trial") == trial.number:
            continue
        kept = run.uses_kept_models(trial.number)
        needed = run.member_seconds(trial.number, fold_time(trial))
        if run.deadline is not None and time.monotonic() + needed > run.deadline:
            skipped.append(name)
            continue
        if kept:
            model = run.fit_member(trial, X, y, seed, strategy)[1]
        else:
            _, model = fit_final_model(trial, profile, X, y, seed, run.deadline, strategy, run.grow)
        save_model(
            study,
            model,
            role=f"best:{name}",
            family=name,
            trial_number=trial.number,
            storage_url=url,
        )
    if skipped:
        run.listener.on_message(
            f"stored the final model; no time left to refit the best {', '.join(skipped)} models"
        )
