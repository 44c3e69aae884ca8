"""Why a tracker loses a target: per-frame traces of full ATOM's box refinement, and one-step tracking.

``trace_sequence`` runs one OPE pass and records, per frame, what the classifier and the IoU-Net each did:

- ``start_iou``: IoU with the truth of the box refinement started from (the classifier's new centre with the
  previous size), ``final_iou``: of the box the frame ends with; their difference is what refinement gained;
- ``size_change``: ``log(sqrt(area_final / area_start))``, the scale step refinement took (0.1 = 10.5 % larger);
- ``size_error``: ``log(sqrt(area_final / area_truth))``, the scale error left (negative: the box is too small);
- ``pred_iou``: the IoU-Net's own prediction for the final box, to compare with ``final_iou``;
- ``learns``: whether the frame's box became a classifier training sample (normal and hard-negative frames).

``one_step`` starts the tracker on the true box of frame ``t`` and tracks frame ``t + 1`` only: how much a
correct box is spoiled by one frame of tracking (the corrections of an annotator start exactly there).

``summarise`` turns traces into the figures of the diagnosis table (``atom bench diagnose``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from ..boxes import Box, iou

__all__ = ["DiagnoseTask", "FrameTrace", "one_step", "run_diagnose_task", "summarise", "trace_sequence"]


@dataclass
class FrameTrace:
    frame: int
    status: str
    max_score: float
    start_iou: float | None
    final_iou: float
    size_change: float | None
    size_error: float
    pred_iou: float | None
    learns: bool

    def as_dict(self) -> dict:
        return asdict(self)


def _log_scale(a: Box | tuple, b: Box | tuple) -> float:
    """log(sqrt(area(a) / area(b))), NaN when either area is not positive."""
    a = a.as_tuple() if isinstance(a, Box) else a
    b = b.as_tuple() if isinstance(b, Box) else b
    aa, ab = float(a[2]) * float(a[3]), float(b[2]) * float(b[3])
    return 0.5 * math.log(aa / ab) if aa > 0 and ab > 0 else float("nan")


def trace_sequence(tracker, read: Callable[[int], np.ndarray], gt: np.ndarray,
                   valid: np.ndarray | None = None) -> list[FrameTrace]:
    """One OPE pass from frame 0's true box; a :class:`FrameTrace` for every later frame with a valid truth."""
    gt = np.asarray(gt, dtype=np.float64)
    ok = np.all(np.isfinite(gt), 1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    tracker.initialize(read(0), Box.from_seq(gt[0]))
    out = []
    for t in range(1, len(gt)):
        r = tracker.track(read(t))
        if not ok[t]:
            continue
        start = getattr(r, "refine_start", None)
        status = getattr(r.status, "value", str(r.status))
        out.append(FrameTrace(
            frame=t, status=status, max_score=float(r.max_score),
            start_iou=None if start is None else float(iou(start.as_tuple(), gt[t])),
            final_iou=float(iou(Box.from_seq(tuple(r.box)).as_tuple(), gt[t])),
            size_change=None if start is None else _log_scale(r.box, start),
            size_error=_log_scale(r.box, gt[t]),
            pred_iou=None if r.iou is None else float(r.iou),
            learns=status in ("normal", "hard_negative")))
    return out


def one_step(make_tracker: Callable[[], object], read: Callable[[int], np.ndarray], gt: np.ndarray,
             frames: list[int]) -> list[float]:
    """IoU with the truth of frame ``t + 1`` after starting a fresh tracker on the truth of frame ``t``."""
    out = []
    for t in frames:
        if not (np.all(np.isfinite(gt[t])) and np.all(np.isfinite(gt[t + 1]))):
            continue
        tracker = make_tracker()
        tracker.initialize(read(t), Box.from_seq(gt[t]))
        out.append(float(iou(Box.from_seq(tuple(tracker.track(read(t + 1)).box)).as_tuple(), gt[t + 1])))
    return out


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else None


def summarise(traces: list[FrameTrace]) -> dict:
    """Figures over frames (pooled): how refinement moves boxes, how well it predicts, what the classifier learns."""
    refined = [f for f in traces if f.start_iou is not None]
    gains = [f.final_iou - f.start_iou for f in refined]
    learn = [f for f in traces if f.learns]
    pred = np.array([[f.pred_iou, f.final_iou] for f in refined if f.pred_iou is not None], dtype=np.float64)
    pearson = None
    if len(pred) > 2 and pred[:, 0].std() > 0 and pred[:, 1].std() > 0:
        pearson = float(np.corrcoef(pred[:, 0], pred[:, 1])[0, 1])
    errors = np.array([f.size_error for f in traces if np.isfinite(f.size_error)])
    return {
        "frames": len(traces),
        "mean_iou": _mean(f.final_iou for f in traces),
        "lost_fraction": float(np.mean([f.final_iou == 0.0 for f in traces])) if traces else None,
        "refined_frames": len(refined),
        "refinement_gain": _mean(gains),
        "refinement_lowers_fraction": float(np.mean([g < 0 for g in gains])) if gains else None,
        "mean_abs_size_change": _mean(abs(f.size_change) for f in refined),
        "mean_size_error": float(errors.mean()) if errors.size else None,
        "mean_abs_size_error": float(np.abs(errors).mean()) if errors.size else None,
        "pred_iou_mean": _mean(f.pred_iou for f in refined),
        "pred_vs_true_pearson": pearson,
        "learn_frames": len(learn),
        "learn_iou": _mean(f.final_iou for f in learn),
        "learn_below_half_fraction": float(np.mean([f.final_iou < 0.5 for f in learn])) if learn else None,
    }


@dataclass
class DiagnoseTask:
    label: str
    spec: object  # trackers.TrackerSpec
    sequence: object  # datasets.Sequence
    one_step_frames: int  # frames t per sequence for the one-step test (evenly spaced)


def run_diagnose_task(task: DiagnoseTask) -> dict:
    """One (tracker, sequence) in a worker: {"summary": ..., "one_step": [IoU...], "frames": [FrameTrace dicts]}."""
    from ..datasets import read_frame
    from ..trackers import build_tracker

    seq = task.sequence
    cache: dict[int, np.ndarray] = {}

    def read(i: int) -> np.ndarray:
        if i not in cache:
            if len(cache) > 4:
                cache.pop(next(iter(cache)))
            cache[i] = read_frame(seq.frames[i])
        return cache[i]

    traces = trace_sequence(build_tracker(task.spec), read, seq.gt, seq.valid_mask())
    n = len(seq.frames)
    steps = []
    if task.one_step_frames > 0 and n > 2:
        picks = sorted({int(round(v)) for v in np.linspace(0, n - 2, task.one_step_frames)})
        steps = one_step(lambda: build_tracker(task.spec), read, seq.gt, picks)
    return {"summary": summarise(traces), "one_step": steps, "frames": [f.as_dict() for f in traces]}
