"""The simulated annotator: how many boxes a person must draw to annotate a sequence to a quality ``tau``.

Protocol (same for trackers and baselines):
- The first valid frame gets a manual box.
- On each later valid frame the method proposes a box.  If IoU(proposal, truth) < tau the annotator corrects
  it: one manual box, the frame becomes the truth, and the method continues from the corrected box.
- Absent (invalid) frames are neither counted nor corrected.  A tracker still sees them (it runs through the
  video as in the app); their proposals are ignored.
- Reported per sequence: ``manual`` boxes, ``frames`` (valid frames), ``manual_per_1000`` = 1000 * manual /
  frames, ``mean_iou`` = mean IoU of the final annotation with the truth over valid frames (manual boxes count
  as 1).  Over a dataset both are pooled over frames (a long sequence weighs more), because the question is
  how much work a given amount of video costs.

Methods
- a tracker: continues after a correction through ``tracker.update_with_box(frame, box)``; what that does is
  the app's policy and the tracker reports it in ``correction_policy`` (default ``"reinitialize"``).
- ``interpolation``: greedy keyframes.  From keyframe a, the next keyframe b is the farthest valid frame such
  that linear interpolation of x, y, w, h (in frame time) from truth(a) to truth(b) keeps IoU >= tau on every
  valid frame between them; the last valid frame is always a keyframe.  Keyframes are the manual boxes.
- ``copy``: each frame keeps the last manual box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..boxes import Box, iou, iou_matrix
from ..trackers import TrackerSpec, build_tracker

BASELINES = ("interpolation", "copy")


@dataclass
class AnnotateOutcome:
    """One sequence under one method and tau."""

    manual: int
    frames: int
    iou_sum: float
    manual_frames: list[int] | None = None  # frame indices that got a manual box

    @property
    def manual_per_1000(self) -> float:
        return 1000.0 * self.manual / self.frames if self.frames else float("nan")

    @property
    def mean_iou(self) -> float:
        return self.iou_sum / self.frames if self.frames else float("nan")

    def as_dict(self) -> dict:
        return {"manual": self.manual, "frames": self.frames, "manual_per_1000": self.manual_per_1000,
                "mean_iou": self.mean_iou}


def _valid(gt: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    gt = np.asarray(gt, dtype=np.float64)
    ok = np.all(np.isfinite(gt), axis=1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
    return ok if valid is None else ok & np.asarray(valid, dtype=bool)


# ---- copy -------------------------------------------------------------------------------------------------

def copy_baseline(gt: np.ndarray, tau: float, valid: np.ndarray | None = None) -> AnnotateOutcome:
    """Each frame keeps the last manual box; a frame where that box has IoU < tau gets a new manual box."""
    gt = np.asarray(gt, dtype=np.float64)
    idx = np.flatnonzero(_valid(gt, valid))
    if idx.size == 0:
        return AnnotateOutcome(0, 0, 0.0, [])
    last = gt[idx[0]]
    manual, iou_sum, frames = 1, 1.0, [int(idx[0])]
    for t in idx[1:]:
        v = iou(last, gt[t])
        if v < tau:
            manual += 1
            iou_sum += 1.0
            last = gt[t]
            frames.append(int(t))
        else:
            iou_sum += v
    return AnnotateOutcome(manual, int(idx.size), iou_sum, frames)


# ---- interpolation ----------------------------------------------------------------------------------------

def interpolate(gt: np.ndarray, a: int, b: int, t: np.ndarray) -> np.ndarray:
    """Boxes at frames ``t`` on the straight line from gt[a] to gt[b] (x, y, w, h each linear in time)."""
    alpha = (np.asarray(t, dtype=np.float64) - a) / (b - a)
    return gt[a] + alpha[:, None] * (gt[b] - gt[a])


def _farthest_keyframe(gt: np.ndarray, idx: np.ndarray, ia: int, tau: float, window: int = 64) -> int:
    """Position (in ``idx``) of the farthest valid frame b > a whose interpolation from a holds tau.

    Exact, without trying every (b, between-frame) pair: candidates b are tested against the between-frames in
    windows of ``window`` frames, nearest first, and a candidate is dropped at its first failing frame.  Far
    candidates usually fail within the first window, so the survivors shrink fast.  A candidate all of whose
    between-frames were checked is feasible; b = a + 1 (nothing between) always is.
    """
    a = int(idx[ia])
    cand = np.arange(ia + 1, len(idx))
    best = ia + 1
    pos = ia + 1  # next position (in idx) of a between-frame to check
    while cand.size:
        done = cand[cand <= pos]
        if done.size:
            best = max(best, int(done.max()))
        cand = cand[cand > pos]
        if not cand.size:
            break
        hi = min(pos + window, int(cand.max()))
        tpos = np.arange(pos, hi)
        t = idx[tpos].astype(np.float64)
        b = idx[cand]
        alpha = (t[None, :] - a) / (b[:, None] - a)  # (C, W)
        boxes = gt[a] + alpha[..., None] * (gt[b][:, None, :] - gt[a])  # (C, W, 4)
        ious = iou_matrix(boxes, gt[idx[tpos]][None, :, :])
        relevant = tpos[None, :] < cand[:, None]
        keep = np.all((ious >= tau) | ~relevant, axis=1)
        cand = cand[keep]
        pos = hi
    return best


def interpolation_keyframes(gt: np.ndarray, tau: float, valid: np.ndarray | None = None,
                            window: int = 64) -> list[int]:
    """Frame indices of the greedy keyframes (first and last valid frames included)."""
    gt = np.asarray(gt, dtype=np.float64)
    idx = np.flatnonzero(_valid(gt, valid))
    if idx.size == 0:
        return []
    keys, ia = [0], 0
    while ia < idx.size - 1:
        ia = _farthest_keyframe(gt, idx, ia, tau, window)
        keys.append(ia)
    return [int(idx[k]) for k in keys]


def interpolation_baseline(gt: np.ndarray, tau: float, valid: np.ndarray | None = None) -> AnnotateOutcome:
    gt = np.asarray(gt, dtype=np.float64)
    idx = np.flatnonzero(_valid(gt, valid))
    keys = interpolation_keyframes(gt, tau, valid)
    if not keys:
        return AnnotateOutcome(0, 0, 0.0, [])
    iou_sum = 1.0  # the first keyframe
    for a, b in zip(keys[:-1], keys[1:]):
        between = idx[(idx > a) & (idx < b)]
        if between.size:
            iou_sum += float(iou_matrix(interpolate(gt, a, b, between), gt[between]).sum())
        iou_sum += 1.0  # keyframe b
    return AnnotateOutcome(len(keys), int(idx.size), iou_sum, keys)


# ---- a tracker --------------------------------------------------------------------------------------------

def simulate_tracker(tracker, read: Callable[[int], np.ndarray], gt: np.ndarray, tau: float,
                     valid: np.ndarray | None = None) -> AnnotateOutcome:
    """Run the annotator protocol with a tracker; ``read(i)`` returns frame i as RGB uint8."""
    gt = np.asarray(gt, dtype=np.float64)
    ok = _valid(gt, valid)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return AnnotateOutcome(0, 0, 0.0, [])
    first = int(idx[0])
    tracker.initialize(read(first), Box.from_seq(gt[first]))
    manual, iou_sum, frames = 1, 1.0, [first]
    for t in range(first + 1, len(gt)):
        frame = read(t)
        pred = tracker.track(frame).box
        if not ok[t]:
            continue
        v = iou(tuple(pred), gt[t])
        if v < tau:
            manual += 1
            iou_sum += 1.0
            frames.append(t)
            tracker.update_with_box(frame, Box.from_seq(gt[t]))
        else:
            iou_sum += v
    return AnnotateOutcome(manual, int(idx.size), iou_sum, frames)


# ---- tasks and aggregation --------------------------------------------------------------------------------

@dataclass
class AnnotateTask:
    label: str  # tracker or baseline name
    spec: TrackerSpec | None  # None for a baseline
    sequence: object  # datasets.Sequence
    tau: float


def run_annotate_task(task: AnnotateTask) -> AnnotateOutcome:
    """One (method, sequence, tau) in a worker."""
    seq = task.sequence
    valid = seq.valid_mask()
    if not seq.gt_complete:
        raise ValueError(f"{seq.name}: the ground truth holds only the first frame")
    if task.spec is None:
        fn = {"interpolation": interpolation_baseline, "copy": copy_baseline}[task.label]
        out = fn(seq.gt, task.tau, valid)
    else:
        from ..datasets import read_frame

        tracker = build_tracker(task.spec)
        out = simulate_tracker(tracker, lambda i: read_frame(seq.frames[i]), seq.gt, task.tau, valid)
    out.manual_frames = None  # keep the result small when it crosses process boundaries
    return out


def aggregate(outcomes: dict[str, AnnotateOutcome]) -> dict:
    """The annotate.json entry for one method and tau: frame-pooled totals and the per-sequence values."""
    manual = sum(o.manual for o in outcomes.values())
    frames = sum(o.frames for o in outcomes.values())
    iou_sum = sum(o.iou_sum for o in outcomes.values())
    pooled = AnnotateOutcome(manual, frames, iou_sum)

    def num(v):
        return v if np.isfinite(v) else None

    return {"manual_per_1000": num(pooled.manual_per_1000), "mean_iou": num(pooled.mean_iou),
            "sequences": {name: {k: (num(v) if isinstance(v, float) else v) for k, v in o.as_dict().items()}
                          for name, o in outcomes.items()}}


def tau_key(tau: float) -> str:
    """JSON key of a tau: '0.5', '0.7' (shortest exact decimal)."""
    return repr(float(tau))
