"""What a tracker returns for one frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from .boxes import Box


class Status(str, Enum):
    """The classifier's verdict on a frame (the paper's advanced localisation)."""

    NORMAL = "normal"
    UNCERTAIN = "uncertain"
    HARD_NEGATIVE = "hard_negative"
    NOT_FOUND = "not_found"


@dataclass
class TrackResult:
    """One frame's result.

    box: the estimated target box (image coordinates, xywh).
    status: the localisation verdict.
    max_score: the classifier's peak score (1.0 for a confident match; trackers without one report a proxy).
    iou: the IoU-Net's predicted IoU of ``box`` in [0, 1]; None without an IoU-Net.
    score_map: (Hs, Ws) float32 classifier scores, None for trackers without one.
    score_map_rect: the image rectangle that ``score_map`` covers (the search region).
    proposals: (P, 4) float32 image-space xywh boxes after refinement; None without an IoU-Net.
    proposal_ious: (P,) predicted IoUs of ``proposals``.
    refine_start: the box IoU maximisation started from (the classifier's new centre with the previous size);
        None when the frame was not refined.  ``box`` minus this is what the IoU-Net changed.
    timings: milliseconds per stage (backbone, iou_features, refinement, classifier_update, localisation, ...).
    """

    box: Box
    status: Status = Status.NORMAL
    max_score: float = 1.0
    iou: float | None = None
    score_map: np.ndarray | None = None
    score_map_rect: Box | None = None
    proposals: np.ndarray | None = None
    proposal_ious: np.ndarray | None = None
    refine_start: Box | None = None
    distractor: tuple[float, float] | None = None  # image (x, y) of a second peak, when one was found
    timings: dict[str, float] = field(default_factory=dict)
