"""One-pass evaluation (OPE) metrics, as pytracking and the LaSOT toolkit compute them.

Conventions (pytracking ``analysis/extract_results.py: calc_seq_err_robust`` and ``analysis/plot_results.py``;
LaSOT MATLAB toolkit), with the few places where we deliberately differ marked *ours*:

Per frame
- Frame 1's prediction is replaced by the ground truth (every toolkit does this: the tracker was given it).
- A prediction with w <= 0, h <= 0 or a non-finite value is replaced by the previous frame's prediction (LaSOT
  toolkit; pytracking does it for w or h == 0 and raises on NaN).
- A prediction longer than the ground truth is truncated; missing frames at the end count as failures
  (pytracking pads with zero boxes, which also fail).
- valid frame = finite ground truth with w > 0 and h > 0, and visible when the dataset has flags.
- IoU is continuous (x2 = x + w).  pytracking's inclusive-pixel form (x2 = x + w - 1, +1 on sizes) is the same
  number, so there is nothing to convert.
- Centre error is the Euclidean distance between box centres.  pytracking's centre x + (w - 1) / 2 differs from
  ours by the same 0.5 px on both boxes, which cancels in the difference.
- Normalised centre error divides each axis of the centre difference by the ground-truth w and h.

Absent (invalid) frames, ``absent=``
- ``"lasot"`` (default): they stay in the denominator and count as failures on every curve (IoU -1, centre
  errors +inf).  This is the LaSOT toolkit and pytracking with ``exclude_invalid_frames=False``.  *Ours*:
  pytracking gives invalid frames a normalised error of -1 outside LaSOT (a hit) and a centre error of -1 on
  UAV123 (a hit); we treat every dataset alike.
- ``"got10k"``: they are left out of the denominator (GOT-10k evaluates only frames with cover > 0).
  *Ours*: scores are still averaged per sequence like the other benchmarks; GOT-10k's own AO pools frames.

Curves per sequence and scores
- Success: fraction of frames with IoU **>** t for the 21 thresholds t = 0, 0.05, ..., 1 (so the point at 1 is
  always 0 and IoU exactly at a threshold does not count).
- Precision: fraction of frames with centre error **<=** d, d = 0, 1, ..., 50 px.
- Normalised precision: fraction with normalised error <= d, d = 0, 0.01, ..., 0.50.
- Scores average the per-sequence curves over sequences (every sequence weighs the same), x100, then:
  AUC = mean of the 21 success values; OP50 / OP75 = success at 0.50 / 0.75; precision = precision curve at
  20 px; normalised precision = curve at 0.20.  All scores are percentages (0-100).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..boxes import center_error, iou_matrix

# Built exactly like pytracking's torch.arange(0, 1 + 0.05, 0.05, float64) so threshold ties behave the same.
SUCCESS_THRESHOLDS = np.arange(0.0, 1.0 + 0.05, 0.05, dtype=np.float64)  # 21 values
PRECISION_THRESHOLDS = np.arange(0, 51, dtype=np.float64)  # pixels
NORM_PRECISION_THRESHOLDS = np.arange(0.0, 0.5 + 0.01, 0.01, dtype=np.float64)  # 51 values
OP50_INDEX, OP75_INDEX = 10, 15
PRECISION_INDEX, NORM_PRECISION_INDEX = 20, 20  # 20 px, 0.20

ABSENT_CONVENTIONS = ("lasot", "got10k")
SCORE_KEYS = ("auc", "op50", "op75", "precision", "norm_precision")

assert len(SUCCESS_THRESHOLDS) == 21 and len(NORM_PRECISION_THRESHOLDS) == 51


def clean_predictions(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prediction rows aligned with ``gt`` after the toolkits' clean-up.

    Returns (pred (N, 4), missing (N,) bool): ``missing`` marks frames the tracker produced no row for.
    """
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    pred = np.array(pred, dtype=np.float64).reshape(-1, 4)
    n = len(gt)
    pred = pred[:n]
    missing = np.zeros(n, dtype=bool)
    missing[len(pred):] = True
    if len(pred) < n:
        pred = np.concatenate([pred, np.zeros((n - len(pred), 4))])
    if n:
        pred[0] = gt[0]
    bad = ~(np.all(np.isfinite(pred), axis=1) & (pred[:, 2] > 0) & (pred[:, 3] > 0))
    for i in np.flatnonzero(bad):
        if i > 0 and not missing[i]:
            pred[i] = pred[i - 1]
    return pred, missing


@dataclass
class FrameErrors:
    """Per-frame measures of one sequence: IoU, centre error (px), normalised centre error, valid mask."""

    iou: np.ndarray
    center: np.ndarray
    norm_center: np.ndarray
    valid: np.ndarray


def frame_errors(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray | None = None) -> FrameErrors:
    """Per-frame errors after :func:`clean_predictions`; invalid frames get IoU -1 and errors +inf."""
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    pred, missing = clean_predictions(pred, gt)
    valid = np.all(np.isfinite(gt), axis=1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
    if visible is not None:
        visible = np.asarray(visible, dtype=bool)
        if len(visible) != len(gt):
            raise ValueError(f"visible flags have {len(visible)} rows for {len(gt)} ground-truth boxes")
        valid &= visible
    safe_gt = np.where(valid[:, None], gt, 1.0)  # keeps the arithmetic finite on invalid rows
    iou = iou_matrix(pred, safe_gt)
    center = center_error(pred, safe_gt)
    diff = (pred[:, :2] + pred[:, 2:] / 2) - (safe_gt[:, :2] + safe_gt[:, 2:] / 2)
    norm_center = np.linalg.norm(diff / safe_gt[:, 2:], axis=1)
    iou[missing] = 0.0
    center[missing] = np.inf
    norm_center[missing] = np.inf
    iou[~valid] = -1.0
    center[~valid] = np.inf
    norm_center[~valid] = np.inf
    return FrameErrors(iou, center, norm_center, valid)


@dataclass
class SequenceCurves:
    """Success (21,), precision (51,) and normalised precision (51,) curves as fractions, and the frame count
    they were computed over (the denominator)."""

    success: np.ndarray
    precision: np.ndarray
    norm_precision: np.ndarray
    frames: int


def curves_from_errors(err: FrameErrors, absent: str = "lasot") -> SequenceCurves | None:
    """The three curves of one sequence; None when no frame is left to score."""
    if absent not in ABSENT_CONVENTIONS:
        raise ValueError(f"absent must be one of {ABSENT_CONVENTIONS}, got {absent!r}")
    iou, center, norm = err.iou, err.center, err.norm_center
    if absent == "got10k":
        iou, center, norm = iou[err.valid], center[err.valid], norm[err.valid]
    n = len(iou)
    if n == 0:
        return None
    success = (iou[:, None] > SUCCESS_THRESHOLDS[None, :]).sum(0) / n
    precision = (center[:, None] <= PRECISION_THRESHOLDS[None, :]).sum(0) / n
    norm_precision = (norm[:, None] <= NORM_PRECISION_THRESHOLDS[None, :]).sum(0) / n
    return SequenceCurves(success, precision, norm_precision, n)


def sequence_curves(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray | None = None,
                    absent: str = "lasot") -> SequenceCurves | None:
    """Curves of one sequence from raw predictions and ground truth (both 0-based xywh)."""
    return curves_from_errors(frame_errors(pred, gt, visible), absent)


def scores(curves: Iterable[SequenceCurves]) -> dict[str, float]:
    """AUC, OP50, OP75, precision@20px and normalised precision@0.20 (percent) over sequences.

    The curves are averaged over sequences first (each sequence weighs the same, as in pytracking's
    plot_results and the OTB/LaSOT toolkits), then read off.  Empty input gives NaN scores.
    """
    curves = list(curves)
    if not curves:
        return {k: float("nan") for k in SCORE_KEYS}
    success = 100.0 * np.mean([c.success for c in curves], axis=0)
    precision = 100.0 * np.mean([c.precision for c in curves], axis=0)
    norm = 100.0 * np.mean([c.norm_precision for c in curves], axis=0)
    return {
        "auc": float(success.mean()),
        "op50": float(success[OP50_INDEX]),
        "op75": float(success[OP75_INDEX]),
        "precision": float(precision[PRECISION_INDEX]),
        "norm_precision": float(norm[NORM_PRECISION_INDEX]),
    }


def mean_curves(curves: Iterable[SequenceCurves]) -> dict[str, np.ndarray]:
    """Sequence-averaged curves in percent (for the plots)."""
    curves = list(curves)
    return {
        "success": 100.0 * np.mean([c.success for c in curves], axis=0),
        "precision": 100.0 * np.mean([c.precision for c in curves], axis=0),
        "norm_precision": 100.0 * np.mean([c.norm_precision for c in curves], axis=0),
    }
