"""Tracking runs without Qt: what a run is and where it stops (:mod:`.plan`), the frame loop and why it ended
(:mod:`.loop`), what a run writes into the document, stale boxes included (:mod:`.writing`), and the
bidirectional fill between two keyframes (:mod:`.fill`).

The app's tracking thread and ``atom track`` both run tracking through this package, so a run follows the same
rules wherever it runs, and the rules are tested without Qt.
"""

from .fill import FillDecision, fill_range, is_weak, merge_bidirectional, write_fill
from .loop import RunObserver, RunOutcome, TrackerPool, run_loop
from .plan import (
    END_OF_RANGE,
    FAILED,
    FLAGGED,
    KEYFRAME,
    LOW_CONFIDENCE,
    STOPPED,
    UNREADABLE,
    RunOptions,
    RunSpec,
    plan_run,
)
from .writing import RunRecorder, stale_range

__all__ = [
    "END_OF_RANGE",
    "FAILED",
    "FLAGGED",
    "KEYFRAME",
    "LOW_CONFIDENCE",
    "STOPPED",
    "UNREADABLE",
    "FillDecision",
    "RunObserver",
    "RunOptions",
    "RunOutcome",
    "RunRecorder",
    "RunSpec",
        "TrackerPool",
    "fill_range",
    "is_weak",
    "merge_bidirectional",
    "plan_run",
    "run_loop",
    "stale_range",
    "write_fill",
]
