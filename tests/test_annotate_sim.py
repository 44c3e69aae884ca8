"""The simulated annotator: copy and interpolation baselines on hand-made tracks, and the protocol with a fake
tracker.  Boxes are 10x10 and move along x, so a shift of d px has IoU (10 - d) / (10 + d):
d=1 -> 9/11, d=2 -> 8/12, d=3 -> 7/13 (0.538), d=4 -> 6/14 (0.429), d=1.5 -> 8.5/11.5 (0.739)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tracker_core.boxes import Box, iou
from tracker_core.datasets import Sequence
from tracker_core.evaluation import annotate_sim as sim
from tracker_core.result import TrackResult
from tracker_core.trackers import TrackerSpec, correction_policy


def track_x(xs, w=10.0, h=10.0):
    return np.array([(float(x), 0.0, w, h) for x in xs])


# ---- copy -------------------------------------------------------------------------------------------------

def test_copy_baseline_by_hand():
    gt = track_x(range(10))  # 1 px per frame
    out = sim.copy_baseline(gt, tau=0.5)
    # d = 1, 2, 3 pass (7/13 >= 0.5); d = 4 fails -> manual at 0, 4, 8.
    assert out.manual_frames == [0, 4, 8]
    assert out.manual == 3 and out.frames == 10
    expected = 3 * 1.0 + 2 * (9 / 11 + 8 / 12 + 7 / 13) + 9 / 11
    assert out.mean_iou == pytest.approx(expected / 10)
    assert out.manual_per_1000 == pytest.approx(300.0)


def test_copy_baseline_skips_absent_frames():
    gt = track_x([0, 1, 50, 50, 4, 2])
    valid = np.array([True, True, False, False, True, True])
    out = sim.copy_baseline(gt, tau=0.5, valid=valid)
    assert out.frames == 4 and out.manual_frames == [0, 4]  # the absent jump to 50 is neither counted nor fixed


# ---- interpolation ----------------------------------------------------------------------------------------

def brute_force_keyframes(gt, tau, valid=None):
    """The definition, literally: from a, try every later valid b and every valid frame between."""
    ok = sim._valid(gt, valid)
    idx = [int(i) for i in np.flatnonzero(ok)]
    keys = [idx[0]]
    while keys[-1] != idx[-1]:
        a = keys[-1]
        best = None
        for b in idx[idx.index(a) + 1:]:
            between = [t for t in idx if a < t < b]
            boxes = sim.interpolate(gt, a, b, np.array(between)) if between else []
            if all(iou(bx, gt[t]) >= tau for bx, t in zip(boxes, between)):
                best = b
        keys.append(best)
    return keys


def test_linear_motion_needs_only_the_ends():
    gt = np.array([(2.0 * t, 1.0 * t, 10 + t, 20 + 0.5 * t) for t in range(40)])
    out = sim.interpolation_baseline(gt, tau=0.9)
    assert out.manual_frames == [0, 39] and out.manual == 2
    assert out.mean_iou == pytest.approx(1.0)


def test_triangle_track():
    gt = track_x([0, 2, 4, 6, 8, 6, 4, 2, 0])
    # 0 -> 8 interpolates to a constant box (frame 4 is 8 px off); 0 -> 4 and 4 -> 8 are exact lines.
    assert sim.interpolation_keyframes(gt, 0.9) == [0, 4, 8]


def test_farthest_not_first_failure():
    gt = track_x([0, -1, 1, 0, 0])
    tau = 0.75
    # b = 2 fails: the line 0 -> 1 is at 0.5 on frame 1, 1.5 px from -1 (IoU 0.739 < 0.75) ...
    assert iou(sim.interpolate(gt, 0, 2, np.array([1]))[0], gt[1]) < tau
    # ... but b = 4 holds (every frame within 1 px of x = 0), so the greedy step jumps to the last frame.
    assert sim.interpolation_keyframes(gt, tau) == [0, 4]
    out = sim.interpolation_baseline(gt, tau)
    assert out.mean_iou == pytest.approx((1 + 9 / 11 + 9 / 11 + 1 + 1) / 5)


def test_matches_brute_force_on_random_tracks():
    rng = np.random.default_rng(0)
    for _trial, tau, window in itertools.product(range(6), (0.5, 0.7), (2, 64)):
        n = 40
        xy = np.cumsum(rng.normal(0, 2.5, size=(n, 2)), axis=0)
        wh = 20 + np.cumsum(rng.normal(0, 0.8, size=(n, 2)), axis=0)
        gt = np.concatenate([xy, np.clip(wh, 5, None)], axis=1)
        valid = rng.random(n) > 0.15
        valid[0] = True
        assert sim.interpolation_keyframes(gt, tau, valid, window=window) == brute_force_keyframes(gt, tau, valid)


def test_interpolation_in_time_across_absent_frames():
    gt = track_x([0, 1, 0, 0, 4, 5, 6])
    gt[2:4] = 0.0  # absent frames carry no box
    out = sim.interpolation_baseline(gt, tau=0.9)
    assert out.manual_frames == [0, 6] and out.frames == 5 and out.mean_iou == pytest.approx(1.0)


# ---- a tracker --------------------------------------------------------------------------------------------

class DriftTracker:
    """Drifts +3 px in x per frame from its last box; records what the protocol asks of it."""

    def __init__(self, spec=None):
        self.calls = []

    def initialize(self, frame, box):
        self.calls.append(("init", int(frame[0, 0, 0]), tuple(box)))
        self.box = Box.from_seq(tuple(box))

    def track(self, frame):
        self.calls.append(("track", int(frame[0, 0, 0])))
        self.box = Box(self.box.x + 3, self.box.y, self.box.w, self.box.h)
        return TrackResult(self.box)

    def update_with_box(self, frame, box):
        self.calls.append(("update", int(frame[0, 0, 0]), tuple(box)))
        self.box = Box.from_seq(tuple(box))


def test_annotator_protocol_with_a_fake_tracker():
    gt = track_x([0] * 7)
    valid = np.ones(7, dtype=bool)
    valid[2] = False  # absent: the tracker still runs, its 6 px drift there is not corrected
    tracker = DriftTracker()
    out = sim.simulate_tracker(tracker, lambda i: np.full((4, 4, 3), i, np.uint8), gt, 0.5, valid)
    # frame 1: +3 (7/13 ok); 2: absent; 3: +9 (1/19) -> fix; 4: +3 ok; 5: +6 (4/16) -> fix; 6: +3 ok.
    assert out.manual_frames == [0, 3, 5] and out.manual == 3 and out.frames == 6
    assert out.mean_iou == pytest.approx((3 + 3 * 7 / 13) / 6)
    assert [c[1] for c in tracker.calls if c[0] == "track"] == [1, 2, 3, 4, 5, 6]
    assert [c[:2] for c in tracker.calls if c[0] != "track"] == [("init", 0), ("update", 3), ("update", 5)]
    assert all(c[2] == (0.0, 0.0, 10.0, 10.0) for c in tracker.calls if c[0] == "update")
    assert correction_policy(tracker) == "reinitialize"  # trackers without the attribute


def test_tasks_and_pooled_aggregation(tmp_path):
    import cv2

    frames = []
    for i in range(5):
        path = tmp_path / f"{i:04d}.png"
        cv2.imwrite(str(path), np.full((8, 8, 3), i, np.uint8))
        frames.append(str(path))
    seq = Sequence("toy", "otb", frames, track_x([0] * 5))
    tracked = sim.run_annotate_task(sim.AnnotateTask("drift", TrackerSpec("drift", factory=DriftTracker), seq, 0.5))
    assert (tracked.manual, tracked.frames) == (3, 5)  # frames 0, 2, 4
    copy = sim.run_annotate_task(sim.AnnotateTask("copy", None, seq, 0.5))
    assert (copy.manual, copy.mean_iou) == (1, 1.0)
    entry = sim.aggregate({"a": tracked, "b": sim.AnnotateOutcome(1, 15, 15.0)})
    assert entry["manual_per_1000"] == pytest.approx(1000 * 4 / 20)
    assert entry["mean_iou"] == pytest.approx((tracked.iou_sum + 15) / 20)
    assert set(entry["sequences"]["a"]) == {"manual", "frames", "manual_per_1000", "mean_iou"}
    assert sim.tau_key(0.5) == "0.5" and sim.tau_key(0.7) == "0.7"
