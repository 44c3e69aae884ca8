"""The run engine without Qt: planning, the loop and its end reasons, the stale-box rule, the fill."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tracker_core.annotation import Document, Flag, ReplacePolicy, Source, VideoRef
from tracker_core.annotation.formats import IncompleteAnnotationError, get_format
from tracker_core.boxes import Box
from tracker_core.errors import VideoError
from tracker_core.result import Status, TrackResult
from tracker_core.runs import (
    END_OF_RANGE,
    FAILED,
    FLAGGED,
    KEYFRAME,
    LOW_CONFIDENCE,
    STOPPED,
    UNREADABLE,
    RunObserver,
    RunOptions,
    RunRecorder,
    TrackerPool,
    plan_run,
    run_loop,
    write_fill,
)

N = 60


class Reader:
    """A video of N black frames; ``broken`` frames raise VideoError like a truncated file."""

    def __init__(self, num_frames: int = N, broken: frozenset[int] = frozenset()):
        self.num_frames, self.broken = num_frames, broken

    def read(self, index: int) -> np.ndarray:
        if index in self.broken:
            raise VideoError(f"cannot decode frame {index} of {self.num_frames} (the file looks truncated)")
        return np.full((4, 4, 3), index % 256, np.uint8)


class ScriptedTracker:
    """Returns ``path(frame)`` as its box; scores from ``scores`` (default 0.9); raises at ``fail_at``."""

    def __init__(self, path=None, scores=None, fail_at=None):
        self.path = path or (lambda f: Box(10 + f, 20, 30, 40))
        self.scores, self.fail_at = scores or {}, fail_at
        self.inits, self.updates, self.tracked = 0, [], []

    def initialize(self, frame, box):
        self.inits += 1
        return TrackResult(box, max_score=1.0)

    def update_with_box(self, frame, box):
        self.updates.append(int(frame[0, 0, 0]))

    def track(self, frame):
        index = int(frame[0, 0, 0])
        if index == self.fail_at:
            raise RuntimeError("the tracker broke on purpose")
        self.tracked.append(index)
        score = self.scores.get(index, 0.9)
        return TrackResult(self.path(index), Status.NORMAL if score >= 0.25 else Status.NOT_FOUND, score, 0.8)


class Collect(RunObserver):
    def __init__(self, stop_after=None, stop=None):
        self.results, self.initial, self.stop_after, self.stop = [], "unset", stop_after, stop

    def started(self, initial):
        self.initial = initial

    def result(self, frame, result, image):
        self.results.append((frame, result))
        if self.stop_after is not None and len(self.results) >= self.stop_after:
            self.stop.set()


def pool_of(tracker) -> TrackerPool:
    return TrackerPool(lambda name, **kwargs: tracker)


def document(keyframes=(0,)) -> tuple[Document, int]:
    doc = Document(VideoRef("clip.mp4", N, 25.0, 640, 360))
    obj = doc.add_object("person")
    for k in keyframes:
        doc.set_box(obj, k, Box(10 + k, 20, 30, 40))
    return doc, obj


def track(doc, obj, frame, tracker, direction=1, max_frames=None, options=None, reader=None,
          stop_after=None):
    """Plan, run and write one run as the app and `atom track` do; returns (outcome, recorder)."""
    spec = plan_run(doc, obj, frame, direction, max_frames, options or RunOptions())
    stop = threading.Event()
    seen = Collect(stop_after, stop)
    outcome = run_loop(spec, reader or Reader(), pool_of(tracker), seen, stop)
    recorder = RunRecorder(doc, spec)
    recorder.apply(seen.results)
    recorder.finish()
    return outcome, recorder


# ---- planning and the loop ---------------------------------------------------------------------------------

def test_plan_stops_before_keyframes_and_flags_and_explains_why_it_cannot_start():
    doc, obj = document((0, 30))
    spec = plan_run(doc, obj, 0, 1, None, RunOptions())
    assert (spec.stop_frame, spec.end_reason, spec.start_is_manual) == (29, KEYFRAME, True)
    spec = plan_run(doc, obj, 0, 1, None, RunOptions(replace_policy=ReplacePolicy.TO_END))
    assert (spec.stop_frame, spec.end_reason, set(spec.manual_boxes)) == (N - 1, END_OF_RANGE, {30})
    doc.set_flag(obj, Flag.OCCLUDED, 12)
    assert plan_run(doc, obj, 0, 1, None, RunOptions()).end_reason == FLAGGED
    assert plan_run(doc, obj, 0, 1, 5, RunOptions()).stop_frame == 5
    assert plan_run(doc, obj, 30, -1, None, RunOptions()).stop_frame == 13
    with pytest.raises(ValueError, match="no box"):
        plan_run(doc, obj, 5, 1, None, RunOptions())
    with pytest.raises(ValueError, match="flagged"):
        doc.set_box(obj, 12, Box(1, 1, 5, 5))
        plan_run(doc, obj, 12, 1, None, RunOptions())
    with pytest.raises(ValueError, match="last frame"):
        doc.set_box(obj, N - 1, Box(1, 1, 5, 5))
        plan_run(doc, obj, N - 1, 1, None, RunOptions())


@pytest.mark.parametrize("case, expected", [
    ("range", (END_OF_RANGE, 10, 10)),
    ("keyframe", (KEYFRAME, 19, 19)),
    ("flag", (FLAGGED, 4, 4)),
    ("low", (LOW_CONFIDENCE, 7, 7)),
    ("stop", (STOPPED, 3, 3)),
    ("unreadable", (UNREADABLE, 13, 13)),
    ("failed", (FAILED, 5, 5)),
])
def test_every_end_reason_keeps_what_was_tracked(case, expected):
    doc, obj = document((0, 20))
    tracker = ScriptedTracker(scores={7: 0.1}, fail_at=6 if case == "failed" else None)
    reader = Reader(broken=frozenset({14}) if case == "unreadable" else frozenset())
    if case == "flag":
        doc.set_flag(obj, Flag.OUT_OF_VIEW, 5)
    options = RunOptions(pause_below=0.25 if case == "low" else None)
    outcome, recorder = track(doc, obj, 0, tracker, max_frames=10 if case == "range" else None,
                              options=options, reader=reader, stop_after=3 if case == "stop" else None)
    assert (outcome.reason, outcome.frames, outcome.last_frame) == expected
    assert recorder.frames == outcome.frames
    tracked = [f for f, s in doc.states(obj) if s.source is Source.TRACKED]
    assert tracked == list(range(1, outcome.frames + 1))
    if case == "unreadable":
        assert "frame 14 cannot be read" in outcome.error and "truncated" in outcome.error
    if case == "failed":
        assert "RuntimeError: the tracker broke on purpose" in outcome.error and "Traceback" in outcome.details


def test_the_pool_continues_updates_or_initialises_the_tracker():
    doc, obj = document((0, 10))
    tracker = ScriptedTracker()
    pool = pool_of(tracker)
    seen = Collect()
    spec = plan_run(doc, obj, 0, 1, 3, RunOptions())
    run_loop(spec, Reader(), pool, seen)
    assert tracker.inits == 1 and isinstance(seen.initial, TrackResult)
    RunRecorder(doc, spec).apply(seen.results)
    again = plan_run(doc, obj, 3, 1, 3, RunOptions())  # from the tracker's own box: a continue
    run_loop(again, Reader(), pool, Collect())
    assert tracker.inits == 1 and tracker.updates == []
    run_loop(plan_run(doc, obj, 10, -1, 2, RunOptions()), Reader(), pool, Collect())  # a keyframe: update
    assert tracker.inits == 1 and tracker.updates == [10]
    to_end = plan_run(doc, obj, 0, 1, 15, RunOptions(replace_policy=ReplacePolicy.TO_END))
    outcome = run_loop(to_end, Reader(), pool, Collect())
    assert 10 not in tracker.tracked[-14:] and tracker.updates[-2:] == [0, 10]  # re-anchored on keyframe 10
    assert outcome.frames == 14


# ---- the stale-box rule ------------------------------------------------------------------------------------

def wrong_after(frame: int, wrong_x: float = 600.0):
    """A tracker that jumps to another object (x=600) from ``frame`` on."""
    return lambda f: Box(wrong_x, 20, 30, 40) if f >= frame else Box(10 + f, 20, 30, 40)


def test_a_retrack_from_a_correction_marks_the_old_tail_stale_and_one_undo_restores_it():
    """The issue's scenario: run 1 jumps to another person at 35 and pauses at 50; the correction at 38 and run 2
    pause at 45; frames 46-50 keep run 1's wrong boxes. They are marked stale, left out of the export, and
    restored as they were by undoing run 2."""
    doc, obj = document((0,))
    track(doc, obj, 0, ScriptedTracker(wrong_after(35), scores={50: 0.1}), options=RunOptions(pause_below=0.25))
    before = {f: doc.state(obj, f) for f in range(39, 51)}
    assert doc.box(obj, 50).x == 600 and not doc.stale_frames(obj)
    doc.set_box(obj, 38, Box(48, 20, 30, 40))  # the correction
    outcome, recorder = track(doc, obj, 38, ScriptedTracker(scores={45: 0.1}), options=RunOptions(pause_below=0.25))
    assert (outcome.reason, outcome.last_frame) == (LOW_CONFIDENCE, 45)
    assert doc.stale_frames(obj) == list(range(46, 51))
    assert doc.spans(obj)[-1].kind.value == "stale"
    with pytest.raises(IncompleteAnnotationError, match=r"5 of them \(46-50\) hold stale boxes"):
        get_format("lasot").export(doc, None, "/nonexistent", missing="error")
    doc.restore(recorder.snapshot())  # undo run 2: run 1's boxes come back, not stale
    assert {f: doc.state(obj, f) for f in range(39, 51)} == before


def test_stale_boxes_are_left_out_of_every_export_until_kept(tmp_path):
    doc, obj = document((0,))
    track(doc, obj, 0, ScriptedTracker(wrong_after(20)), max_frames=30)
    doc.set_box(obj, 22, Box(32, 20, 30, 40))
    track(doc, obj, 22, ScriptedTracker(), max_frames=3)  # 26..30 stale
    assert doc.stale_frames(obj) == list(range(26, 31))
    lasot = get_format("lasot").export(doc, None, tmp_path / "lasot", missing="absent")[0]
    lines = (lasot / "groundtruth.txt").read_text().splitlines()
    assert lines[25] != "0,0,0,0" and lines[26:31] == ["0,0,0,0"] * 5
    assert (lasot / "out_of_view.txt").read_text().strip().split(",")[26:31] == ["1"] * 5
    gt = get_format("mot").export(doc, None, tmp_path / "mot")[0].read_text()
    assert {int(r.split(",")[0]) for r in gt.splitlines()} == set(range(1, 27))  # frames 0..25, 1-based
    cvat = get_format("cvat").export(doc, None, tmp_path / "cvat")[0].read_text()
    assert 'frame="26" keyframe="1" outside="1"' in cvat and 'frame="27"' not in cvat
    doc.keep_stale(obj)
    kept = get_format("lasot").export(doc, None, tmp_path / "kept", missing="absent")[0]
    lines = (kept / "groundtruth.txt").read_text()
    assert lines.splitlines()[26:31] == ["601,21,30,40"] * 5  # the person kept run 1's boxes: exported


def test_no_stale_boxes_after_a_continue_a_keyframe_or_a_flag():
    doc, obj = document((0, 40))
    track(doc, obj, 0, ScriptedTracker())  # 1..39
    track(doc, obj, 5, ScriptedTracker(), max_frames=3)  # from a tracked box: nothing stale
    assert doc.stale_frames(obj) == []
    doc.set_flag(obj, Flag.OCCLUDED, 30)
    doc.set_box(obj, 10, Box(20, 20, 30, 40))
    track(doc, obj, 10, ScriptedTracker(), max_frames=5)
    assert doc.stale_frames(obj) == list(range(16, 30))  # up to the flag, not past it
    doc.keep_stale(obj)
    doc.set_box(obj, 20, Box(30, 20, 30, 40))
    track(doc, obj, 20, ScriptedTracker(), max_frames=20, options=RunOptions(replace_policy=ReplacePolicy.TO_END))
    assert doc.stale_frames(obj) == []  # reached the flag: nothing beyond it is stale
    doc.set_box(obj, 45, Box(55, 20, 30, 40))
    track(doc, obj, 40, ScriptedTracker())
    doc.set_box(obj, 35, Box(45, 20, 30, 40))
    track(doc, obj, 35, ScriptedTracker(), max_frames=7, options=RunOptions(replace_policy=ReplacePolicy.TO_END))
    assert doc.stale_frames(obj) == []  # it passed keyframe 40: what follows came from that keyframe


def test_backward_runs_mark_the_tail_before_them():
    doc, obj = document((0, 40))
    track(doc, obj, 40, ScriptedTracker(), direction=-1)  # 39..1
    doc.set_box(obj, 30, Box(40, 20, 30, 40))
    track(doc, obj, 30, ScriptedTracker(), direction=-1, max_frames=10)  # 29..20
    assert doc.stale_frames(obj) == list(range(1, 20))


# ---- the fill ----------------------------------------------------------------------------------------------

def test_fill_writes_each_frame_with_the_evidence_of_the_pass_whose_box_it_kept():
    doc, obj = document((0, 10))
    forward = {f: TrackResult(Box(10 + f, 20, 30, 40), Status.NORMAL, 0.83, 0.8) for f in range(1, 10)}
    backward = {f: TrackResult(Box(500, 20, 30, 40), Status.UNCERTAIN, 0.28, 0.4) for f in range(1, 10)}
    backward[9] = TrackResult(Box(19.5, 20, 30, 40), Status.NORMAL, 0.95, 0.9)
    forward[5] = TrackResult(Box(0, 0, 5, 5), Status.NOT_FOUND, 0.1, 0.1)
    backward[5] = TrackResult(Box(0, 0, 5, 5), Status.NOT_FOUND, 0.1, 0.1)
    decisions, snapshot = write_fill(doc, obj, 0, 10, forward, backward, 0.25)
    assert [d.kind for d in decisions] == ["forward"] * 4 + ["interpolated"] + ["forward"] * 3 + ["backward"]
    for d in decisions:
        state = doc.state(obj, d.frame)
        if d.result is None:
            assert state.source is Source.INTERPOLATED and state.score is None
        else:
            assert (state.box, state.score, state.status) == (d.result.box, d.result.max_score,
                                                              d.result.status.value)
    assert doc.state(obj, 1).score == 0.83 and doc.state(obj, 9).status == "normal"
    doc.restore(snapshot)
    assert all(doc.state(obj, f) is None for f in range(1, 10))
