"""OpenCV's classic trackers behind the project's tracker interface.

CSRT and MIL cost about 0.1 s a frame on this machine, so the sequences here are short.
"""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from tracker_core.boxes import Box, from_one_based, iou
from tracker_core.classic import KINDS, ClassicTracker, available_kinds
from tracker_core.result import Status, TrackResult
from tracker_core.video import open_video

SIDE = 32


def _texture(shape, seed: int, sigma: float) -> np.ndarray:
    """Blurred noise stretched to the full 0..255 range (MIL's Haar features need the contrast)."""
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (0, 0), sigma).astype(np.float32)
    return ((t - t.min()) / (t.max() - t.min()) * 255).astype(np.uint8)


BACKGROUND = _texture((150, 200, 3), 0, 3.0)
TARGET = _texture((SIDE, SIDE, 3), 1, 1.5)


def square_frame(i: int) -> tuple[np.ndarray, Box]:
    """Frame ``i`` of a textured square moving right and up and down on a textured background (RGB)."""
    x, y = 20 + 3 * i, 50 + int(round(20 * np.sin(i / 8)))
    frame = BACKGROUND.copy()
    frame[y:y + SIDE, x:x + SIDE] = TARGET
    return frame, Box(x, y, SIDE, SIDE)


def run(tracker: ClassicTracker, n: int) -> list[TrackResult]:
    frame, box = square_frame(0)
    tracker.initialize(frame, box)
    return [tracker.track(square_frame(i)[0]) for i in range(1, n)]


_RUNS: dict[str, list[TrackResult]] = {}


def square_run(kind: str) -> list[TrackResult]:
    """The 25-frame run of ``kind`` on the moving square, computed once (CSRT and MIL are slow)."""
    if kind not in _RUNS:
        _RUNS[kind] = run(ClassicTracker(kind), 25)
    return _RUNS[kind]


def test_available_kinds_and_names():
    assert set(available_kinds()) == set(KINDS)  # the contrib build is a dependency
    for kind in KINDS:
        assert ClassicTracker(kind).name == kind
    assert ClassicTracker("CSRT").name == "csrt"
    with pytest.raises(ValueError, match="unknown classic tracker"):
        ClassicTracker("boosting")


@pytest.mark.parametrize("kind", KINDS)
def test_follows_a_moving_square(kind):
    results = square_run(kind)
    ious = [iou(r.box, square_frame(i)[1]) for i, r in enumerate(results, start=1)]
    assert np.mean(np.array(ious) > 0.5) >= 0.9, ious
    for r in results:
        assert isinstance(r, TrackResult) and isinstance(r.box, Box)
        assert r.status in (Status.NORMAL, Status.NOT_FOUND)
        assert 0.0 <= r.max_score <= 1.0
        assert set(r.timings) == {"total"} and r.timings["total"] >= 0
        assert r.score_map is None and r.iou is None
    assert sum(r.status == Status.NORMAL for r in results) >= 0.9 * len(results)


def test_mil_is_repeatable():
    # MIL draws random Haar features; seeding makes two runs (even in one process) identical.
    first = [r.box for r in square_run("mil")[:7]]
    again = [r.box for r in run(ClassicTracker("mil"), 8)]
    assert again == first


def test_float_box_survives_the_integer_edge():
    frame = BACKGROUND
    box = Box(50.3, 40.7, 30.4, 20.2)
    t = ClassicTracker("kcf")
    t.initialize(frame, box)
    assert t.box == box
    r = t.track(frame)
    # KCF keeps its size: the float size comes back exactly, the position within a pixel of a still target.
    assert (r.box.w, r.box.h) == pytest.approx((30.4, 20.2))
    assert abs(r.box.x - box.x) <= 1.0 and abs(r.box.y - box.y) <= 1.0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", KINDS)
def test_tiny_box_works_without_hanging(kind):
    # MIL hangs inside OpenCV on a 4x4 box and CSRT fails on 1x1: tiny boxes go through a larger rectangle.
    t = ClassicTracker(kind)
    t.initialize(BACKGROUND, Box(100.0, 100.0, 2.0, 2.0))
    r = t.track(BACKGROUND)
    assert r.box.w == pytest.approx(2.0, rel=0.25) and r.box.h == pytest.approx(2.0, rel=0.25)
    assert iou(r.box, Box(100, 100, 2, 2)) > 0 or r.status == Status.NOT_FOUND


def test_box_is_clipped_to_the_image():
    t = ClassicTracker("kcf")
    t.initialize(BACKGROUND, Box(-10, -5, 40, 40))
    assert t.box == Box(0, 0, 30, 35)
    assert (t.track(BACKGROUND).box.w, t.box.h) == pytest.approx((30, 35))


def test_bad_inputs():
    t = ClassicTracker("kcf")
    with pytest.raises(RuntimeError, match="initialize"):
        t.track(BACKGROUND)
    with pytest.raises(ValueError, match="outside"):
        t.initialize(BACKGROUND, Box(500, 500, 10, 10))
    with pytest.raises(ValueError, match="positive size"):
        t.initialize(BACKGROUND, Box(10, 10, 0, 10))
    with pytest.raises(ValueError, match="uint8"):
        t.initialize(BACKGROUND.astype(np.float32), Box(10, 10, 20, 20))
    t.initialize(BACKGROUND, (10, 10, 20, 20))  # a plain sequence is accepted
    with pytest.raises(ValueError, match="200x150"):
        t.track(BACKGROUND[:100])


def test_mil_refuses_a_full_frame_box_clearly():
    with pytest.raises(ValueError, match="background"):
        ClassicTracker("mil").initialize(BACKGROUND, Box(0, 0, 200, 150))


def test_grey_frames_are_accepted():
    grey = cv2.cvtColor(BACKGROUND, cv2.COLOR_RGB2GRAY)
    t = ClassicTracker("kcf")
    t.initialize(grey, Box(40, 40, 30, 30))
    assert t.track(grey).status == Status.NORMAL


def test_lost_target_is_not_found_and_keeps_the_last_box():
    t = ClassicTracker("kcf")
    frame, box = square_frame(0)
    t.initialize(frame, box)
    before = t.track(square_frame(1)[0])
    assert before.status == Status.NORMAL and before.max_score == 1.0
    r = t.track(np.full_like(frame, 128))  # nothing to find in a flat frame
    assert r.status == Status.NOT_FOUND and r.max_score == 0.0
    assert r.box == before.box


def test_update_with_box_reinitialises():
    t = ClassicTracker("kcf")
    t.initialize(*square_frame(0))
    t.track(square_frame(1)[0])
    # A correction to a different (wrong) place: tracking then goes on from the corrected box.
    frame, _ = square_frame(2)
    t.update_with_box(frame, Box(120, 10, 30, 30))
    assert t.correction_policy == "reinitialize"
    assert t.box == Box(120, 10, 30, 30)
    r = t.track(frame)
    assert iou(r.box, Box(120, 10, 30, 30)) > 0.8


def _otb_boxes(path) -> list[Box]:
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    return [from_one_based([float(v) for v in re.split(r"[,\s]+", r.strip())]) for r in rows]


@pytest.mark.parametrize("kind", KINDS)
def test_real_sequence(shared_data, kind):
    """A few dozen frames of OTB Woman (a walking person, easy at its start) with each tracker."""
    seq = shared_data / "OTB" / "Woman"
    if not seq.is_dir():
        pytest.skip(f"{seq} is absent from the shared data")
    gt = _otb_boxes(seq / "groundtruth_rect.txt")
    n = 20
    with open_video(seq) as video:
        frames = [video.read(i) for i in range(n)]
    t = ClassicTracker(kind)
    t.initialize(frames[0], gt[0])
    ious = [iou(t.track(frames[i]).box, gt[i]) for i in range(1, n)]
    assert np.mean(np.array(ious) > 0.5) >= 0.8, ious
