"""Test doubles for the GUI tests: a synthetic video and a fast template-matching tracker with real evidence."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np

from tracker_core.boxes import Box, iou
from tracker_core.result import Status, TrackResult

SQUARE = 24  # side of the moving target, pixels


def square_box(frame: int) -> Box:
    """Where the synthetic target is in ``frame`` (moves 2 px right and 1 px down per frame)."""
    return Box(20.0 + 2 * frame, 30.0 + frame, SQUARE, SQUARE)


def write_synthetic_video(path: Path, num_frames: int = 40, width: int = 160, height: int = 120) -> Path:
    """An MJPG .avi of a checkerboard-textured square moving over a fixed noise background."""
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(40, 110, (height, width, 3), dtype=np.uint8), (5, 5), 0)
    yy, xx = np.mgrid[0:SQUARE, 0:SQUARE]
    texture = np.where(((yy // 6) + (xx // 6)) % 2 == 0, 230, 20).astype(np.uint8)
    texture = np.stack([texture, 255 - texture, np.full_like(texture, 200)], axis=-1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (width, height))
    assert writer.isOpened(), "OpenCV cannot write MJPG here"
    for i in range(num_frames):
        frame = background.copy()
        x, y = int(square_box(i).x), int(square_box(i).y)
        frame[y:y + SQUARE, x:x + SQUARE] = texture
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_frame_folder(video: Path, folder: Path, count: int) -> Path:
    """The first ``count`` frames of ``video`` as numbered PNGs in ``folder`` (made here)."""
    folder.mkdir(parents=True)
    capture = cv2.VideoCapture(str(video))
    for i in range(count):
        ok, frame = capture.read()
        cv2.imwrite(str(folder / f"{i + 1:08d}.png"), frame)
    capture.release()
    return folder


class FakeTracker:
    """Template matching in a search region, reporting evidence like ATOM: a score map over the search region,
    proposals with IoUs, a distractor when a second peak is close.

    fail_at: raise RuntimeError on this call of track() (1-based, counted from the last initialize/update).
    lose_after: after this many calls since the last initialize/update, report NOT_FOUND with a low score.
    delay: seconds to sleep per frame (to stop a run in the middle).
    """

    instances: list[FakeTracker] = []

    def __init__(self, fail_at: int | None = None, lose_after: int | None = None, delay: float = 0.0,
                 gate: threading.Event | None = None):
        self.fail_at, self.lose_after, self.delay, self.gate = fail_at, lose_after, delay, gate
        self.calls = 0
        self.initializations = 0
        self.updates = 0
        FakeTracker.instances.append(self)

    def initialize(self, frame: np.ndarray, box: Box) -> None:
        self.initializations += 1
        self._set(frame, box)

    def update_with_box(self, frame: np.ndarray, box: Box) -> None:
        self.updates += 1
        self._set(frame, box)

    def _set(self, frame: np.ndarray, box: Box) -> None:
        x, y = int(round(box.x)), int(round(box.y))
        self.calls = 0
        self.box = box
        self.template = cv2.cvtColor(frame[y:y + int(box.h), x:x + int(box.w)], cv2.COLOR_RGB2GRAY)

    def track(self, frame: np.ndarray) -> TrackResult:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(5)
        if self.delay:
            time.sleep(self.delay)
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError("the fake tracker broke on purpose")
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        th, tw = self.template.shape
        cx, cy = self.box.center
        side = 3 * max(self.box.w, self.box.h)
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
        region = gray[y0:y1, x0:x1]
        scores = cv2.matchTemplate(region, self.template, cv2.TM_CCOEFF_NORMED)
        i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
        box = Box(x0 + j, y0 + i, tw, th)
        peak = float(scores.max())
        lost = self.lose_after is not None and self.calls > self.lose_after
        if not lost:
            self.box = box
        rng = np.random.default_rng(self.calls)
        proposals = np.array([[box.x + dx, box.y + dy, box.w, box.h] for dx, dy in rng.normal(0, 3, (8, 2))],
                             np.float32)
        ious = np.array([iou(p, box) for p in proposals], np.float32)
        rect = Box(x0 + tw / 2, y0 + th / 2, scores.shape[1], scores.shape[0])  # centres of the positions
        return TrackResult(box=box, status=Status.NOT_FOUND if lost else Status.NORMAL,
                           max_score=0.1 if lost else peak, iou=float(ious.max()),
                           score_map=np.clip(scores, 0, 1).astype(np.float32), score_map_rect=rect,
                           proposals=proposals, proposal_ious=ious,
                           distractor=(rect.x + 2.0, rect.y + 2.0) if lost else None)


def fake_factory(**options):
    """A tracker factory (make_tracker's signature) that builds FakeTrackers with ``options``."""

    def factory(name, model_path=None, preset=None, device="auto", correction_policy=None):
        return FakeTracker(**options)

    return factory
