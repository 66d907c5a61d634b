"""Memory of a long Keras study: peak RSS after 60 trials against the peak after 10.

Every trial builds, compiles and traces a new network. Each traced train step (its
gradient all-reduce) and each swish activation register a ``tf.custom_gradient`` closure
in TensorFlow's global gradient registry, which ``keras.backend.clear_session`` does not
clear and which keeps the whole traced graph alive; unless the Keras family unregisters
them after training, the process grows by a few MiB with every trial. The script runs
one study of ``--first`` trials, resumes it in the same process up to ``--total`` trials,
and prints the peak resident set size after each part, plus the current RSS every ten
trials. Acceptance: the ratio is at most 1.3.

Usage::

    python benchmarks/keras_memory.py [--first 10] [--total 60] [--rows 1500]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification

from autotune import TuneResult
from autotune.engine import Listener
from autotune.engine._events import TrialReport


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float:
    """Resident set size now, in MiB (Linux; falls back to the peak elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return peak_rss_mb()
    return pages * resource.getpagesize() / 1024**2


class _Progress(Listener):
    def __init__(self) -> None:
        self.n_trials = 0

    def on_trial_end(self, report: TrialReport) -> None:
        self.n_trials += 1
        if self.n_trials % 10 == 0:
            print(
                f"  after {self.n_trials:3d} trials of this run: current RSS "
                f"{current_rss_mb():7.1f} MiB, peak {peak_rss_mb():7.1f} MiB",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", type=int, default=10)
    parser.add_argument("--total", type=int, default=60)
    parser.add_argument("--rows", type=int, default=1500)
    args = parser.parse_args()

    X, y = make_classification(args.rows, 20, n_informative=10, n_classes=3, random_state=0)
    with tempfile.TemporaryDirectory() as folder:
        options = {
            "families": ["keras"],
            "storage": f"sqlite:///{Path(folder) / 'memory.db'}",
            "study_name": "keras_memory",
            "show": False,
        }
        started = time.monotonic()
        result = TuneResult(n_trials=args.first, **options).fit(X, y, listener=_Progress())
        after_first = peak_rss_mb()
        print(f"{len(result.study.trials)} trials: peak RSS {after_first:.1f} MiB")
        result = TuneResult(n_trials=args.total - args.first, **options).fit(
            X, y, listener=_Progress()
        )
        after_total = peak_rss_mb()
        states = [t.state.name for t in result.study.trials]
        print(
            f"{len(states)} trials: peak RSS {after_total:.1f} MiB "
            f"({states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, "
            f"{states.count('FAIL')} failed) in {time.monotonic() - started:.0f} s"
        )
    ratio = after_total / after_first
    print(f"peak RSS ratio {args.total} / {args.first} trials: {ratio:.3f} (acceptance <= 1.3)")
    print(f"best validation score {result.best_score_:.4f}; {np.unique(y).size} classes")


if __name__ == "__main__":
    main()
