"""The leaderboard: one row per trial, best first, as a pandas DataFrame."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from autotune.store import FINAL_KEY

__all__ = ["leaderboard"]

BASE_COLUMNS = ["trial", "family", "state", "score"]


def leaderboard(study: optuna.Study) -> pd.DataFrame:
    """Trials as rows: ``trial, family, state, score``, the secondary metrics, ``duration``,
    ``error``, ``final`` and one column per parameter; complete trials first, best first.

    When the final model is an ensemble it is the first row, with family ``ensemble``, no
    trial number and its pooled out-of-fold score. ``final`` marks the row of the model
    that ``predict`` uses.
    """
    # queued starting points that no process has run yet are not results
    trials = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    rows = []
    secondary_names: list[str] = []
    param_names: list[str] = []
    for t in trials:
        secondary = t.user_attrs.get("secondary", {}) or {}
        for key in secondary:
            if key not in secondary_names:
                secondary_names.append(key)
        for key in t.params:
            if key != "family" and key not in param_names:
                param_names.append(key)
        rows.append(
            {
                "trial": t.number,
                "family": t.params.get("family"),
                "state": t.state.name.lower(),
                "score": t.value if t.state == TrialState.COMPLETE else np.nan,
                **secondary,
                "duration": t.duration.total_seconds() if t.duration else np.nan,
                "error": t.user_attrs.get("error") or t.user_attrs.get("stopped"),
                **{k: v for k, v in t.params.items() if k != "family"},
            }
        )
    columns = [*BASE_COLUMNS, *secondary_names, "duration", "error", *sorted(param_names)]
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame
    ascending = study.direction == optuna.study.StudyDirection.MINIMIZE
    frame["_done"] = frame["state"] != "complete"
    frame = frame.sort_values(["_done", "score"], ascending=[True, ascending], kind="stable")
    frame = frame.drop(columns="_done").reset_index(drop=True)
    frame["trial"] = frame["trial"].astype("Int64")
    return _mark_final(frame, study.user_attrs.get(FINAL_KEY) or {})


def _mark_final(frame: pd.DataFrame, final: dict[str, Any]) -> pd.DataFrame:
    frame.insert(frame.columns.get_loc("error") + 1, "final", False)
    if final.get("kind") == "trial":
        frame.loc[frame["trial"] == final.get("trial"), "final"] = True
    elif final.get("kind") == "ensemble":
        members = ", ".join(f"{n} ({w:.2f})" for n, w in final.get("weights", {}).items())
        row = {
            "trial": pd.NA,
            "family": "ensemble",
            "state": "complete",
            "score": final.get("score", np.nan),
            "error": None,
            "final": True,
            "members": members,
        }
        frame.insert(frame.columns.get_loc("final") + 1, "members", None)
        frame = pd.concat([pd.DataFrame([row]), frame], ignore_index=True)[frame.columns]
        frame["trial"] = frame["trial"].astype("Int64")
        frame["final"] = frame["final"].astype(bool)
    return frame
