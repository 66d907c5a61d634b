"""A standalone HTML report of a study: summary, leaderboard and plots, readable offline.

plotly.js is embedded once, in the first figure, so the file opens without a network and
without a Jupyter server; the other figures reuse it.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autotune import plots
from autotune._version import __version__
from autotune.store import read_meta

if TYPE_CHECKING:
    from autotune.result import TuneResult

__all__ = ["write_report"]

#: Leaderboard rows written into the report.
N_ROWS = 50

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f6f6f6; } dl { display: grid; grid-template-columns: max-content auto; }
dt { font-weight: 600; margin-right: 1em; } dd { margin: 0 0 0.3em 0; }
.scroll { overflow-x: auto; }
"""


def _summary(result: TuneResult) -> list[tuple[str, str]]:
    study = result.study
    meta = read_meta(study)
    frame = result.leaderboard
    if not frame.empty:
        frame = frame[frame["trial"].notna()]  # the ensemble row is not a trial
    counts = frame["state"].value_counts().to_dict() if not frame.empty else {}
    rows = [
        ("study", study.study_name),
        ("task", str(meta.get("task", "?"))),
        ("metric", f"{meta.get('metric', '?')} ({meta.get('direction', '?')})"),
        ("families", ", ".join(meta.get("families", []))),
        ("strategy", str(meta.get("strategy", "?"))),
        ("trials", f"{len(frame)} (" + ", ".join(f"{n} {s}" for s, n in counts.items()) + ")"),
    ]
    best = getattr(result, "best_score_", None)
    if best is not None:
        params = ", ".join(f"{k}={v!r}" for k, v in result.best_params_.items())
        rows.append(
            ("best", f"{best:.6g} by {result.best_family_} (trial {result.best_trial_.number})")
        )
        rows.append(("best parameters", params))
    final = getattr(result, "final_", None) or {}
    if final.get("kind") == "ensemble":
        members = ", ".join(f"trial {n} ({w:.2f})" for n, w in final["weights"].items())
        rows.append(("final model", f"ensemble of {members}"))
    elif final.get("kind") == "trial":
        how = "its fold models averaged" if final.get("bagged") else "refitted on all the data"
        rows.append(("final model", f"trial {final['trial']}, {how}"))
    if final.get("temperature"):
        rows.append(("calibration", f"temperature {final['temperature']:.3g}"))
    profile = getattr(result, "profile_", None)
    if profile is not None:
        rows.append(("data", profile.summary()))
    rows.append(("written", f"{dt.datetime.now():%Y-%m-%d %H:%M} by autotune {__version__}"))
    return rows


def _figures(result: TuneResult) -> list[tuple[str, Any]]:
    study = result.study
    best = getattr(result, "best_family_", None)
    figures: list[tuple[str, Any]] = [
        ("Parameter importance, overall", plots.plot_importance(study)),
    ]
    for family in plots.family_names(study):
        fig = plots.plot_importance(study, family)
        if fig.data:  # families with too few trials are left out rather than shown empty
            figures.append((f"Importance within {family}", fig))
    figures += [
        ("Optimisation history", plots.plot_history(study)),
        ("Families compared", plots.plot_families(study)),
        (f"Parallel coordinates ({best})", plots.plot_parallel(study, best)),
        (f"Slice ({best})", plots.plot_slice(study, best)),
        (f"Contour ({best})", plots.plot_contour(study, best)),
        ("Intermediate values", plots.plot_intermediate(study)),
    ]
    return figures


def write_report(result: TuneResult, path: str | Path) -> str:
    """Write one self-contained HTML file about a result's study.

    Args:
        result: A fitted result, or one opened with :func:`autotune.load` (no data needed).
        path: Where to write; missing folders are created.

    Returns:
        The path written, as a string.

    Example:
        >>> autotune.load("target-3f9a1c2e").report("studies/report.html")  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    study = result.study
    summary = "".join(
        f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in _summary(result)
    )
    frame = result.leaderboard.head(N_ROWS).dropna(axis=1, how="all")
    table = frame.to_html(index=False, float_format=lambda v: f"{v:.5g}", na_rep="", border=0)
    sections = []
    for i, (title, fig) in enumerate(_figures(result)):
        body = fig.to_html(full_html=False, include_plotlyjs=i == 0, default_width="100%")
        sections.append(f"<h2>{html.escape(title)}</h2>\n{body}")
    name = html.escape(study.study_name)
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>autotune report: {name}</title>
<style>{_STYLE}</style></head>
<body>
<h1>autotune report: {name}</h1>
<h2>Summary</h2><dl>{summary}</dl>
<h2>Leaderboard (best {N_ROWS})</h2><div class="scroll">{table}</div>
{"".join(sections)}
</body></html>
"""
    path.write_text(document, encoding="utf-8")
    return str(path)
