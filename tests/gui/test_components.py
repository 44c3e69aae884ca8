"""GUI parts on their own: the Qt binding, the frame cache, the timeline strip, the undo commands, the CLI."""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytest
from gui_fakes import square_box

from atom_gui.annotation_model import AnnotationModel
from atom_gui.app import qt_binding_problem
from atom_gui.frame_cache import FrameCache
from atom_gui.timeline import INTERPOLATED, MANUAL, NOT_FOUND, OUT_OF_VIEW, TRACKED, column_max, strip_codes
from tracker_core.annotation import Document, Flag, Source, VideoRef
from tracker_core.errors import CommandError
from tracker_core.result import Status, TrackResult
from tracker_core.video import open_video


def test_qt_binding_is_safe():
    assert qt_binding_problem() is None


def test_frame_cache_decodes_in_the_background_and_stays_bounded(qtbot, synthetic_video):
    source = open_video(synthetic_video)
    frame_bytes = 160 * 120 * 3
    cache = FrameCache(source.clone(), max_bytes=10 * frame_bytes, prefetch=3)
    try:
        assert cache.prefetch == 3
        assert cache.request(5) is None  # not decoded yet: it comes through frameReady
        with qtbot.waitSignal(cache.frameReady, timeout=5000, check_params_cb=lambda i, f: i == 5) as blocker:
            pass
        np.testing.assert_array_equal(blocker.args[1], source.read(5))
        qtbot.waitUntil(lambda: cache.get(8) is not None, timeout=5000)  # prefetched ahead
        for i in range(0, 40, 2):
            cache.request(i)
            qtbot.waitUntil(lambda i=i: cache.get(i) is not None, timeout=5000)
        assert cache.nbytes <= cache.max_bytes and len(cache) == 10  # bounded by bytes: 10 frames' worth
        frame = source.read(39)
        cache.put(39, frame)
        assert cache.get(39) is frame
    finally:
        cache.close()
        source.close()


def test_frame_cache_counts_bytes_not_frames(synthetic_video):
    """Frames of any size: the budget holds as many as fit, the newest always; prefetch fits in half of it."""
    source = open_video(synthetic_video)
    frame_bytes = 160 * 120 * 3
    cache = FrameCache(source.clone(), max_bytes=4 * frame_bytes, prefetch=8)
    try:
        assert cache.prefetch == 2  # half the budget: two frames of this video
        small, big = np.zeros(frame_bytes // 3, np.uint8), np.zeros(2 * frame_bytes, np.uint8)
        for i in range(6):
            cache.put(i, small)  # a third of a frame each: all six fit (2 frames' worth)
        assert len(cache) == 6 and cache.nbytes == 6 * small.nbytes
        cache.put(6, big)  # 2 frames more: still within 4
        assert len(cache) == 7
        cache.put(7, big)  # 6 frames' worth: the oldest go until it fits
        assert cache.nbytes <= cache.max_bytes and cache.get(7) is big and cache.get(6) is big
        assert all(cache.get(i) is None for i in range(6))
        huge = np.zeros(10 * frame_bytes, np.uint8)
        cache.put(8, huge)  # larger than the whole budget: kept alone (it is on screen)
        assert len(cache) == 1 and cache.get(8) is huge
    finally:
        cache.close()
        source.close()


def test_strip_codes_and_columns():
    doc = Document(VideoRef("v.avi", 10))
    obj = doc.add_object("a")
    model = AnnotationModel(doc)
    doc.set_box(obj, 0, square_box(0))
    doc.apply_tracked(obj, [(f, TrackResult(square_box(f), max_score=0.9)) for f in range(1, 4)], start=0)
    doc.apply_tracked(obj, [(4, TrackResult(square_box(4), status=Status.NOT_FOUND, max_score=0.1))])
    doc.set_box(obj, 8, square_box(8))
    doc.interpolate(obj, 0, 8, overwrite_tracked=False)  # tracked frames 1-4 stay
    doc.set_flag(obj, Flag.OUT_OF_VIEW, 9)
    codes, low = strip_codes(model.arrays(obj))
    assert list(codes) == [MANUAL, TRACKED, TRACKED, TRACKED, NOT_FOUND, INTERPOLATED, INTERPOLATED,
                           INTERPOLATED, MANUAL, OUT_OF_VIEW]
    assert list(np.flatnonzero(low)) == [4]
    # Three columns over ten frames: each column shows its most important frame.
    assert list(column_max(codes, 3)) == [MANUAL, NOT_FOUND, OUT_OF_VIEW]
    assert len(column_max(codes, 25)) == 25  # more columns than frames: each still gets one


def test_model_mirrors_follow_the_document_and_undo():
    from PySide6.QtGui import QUndoStack

    from atom_gui.editing import AnnotationEditor

    doc = Document(VideoRef("v.avi", 20, width=160, height=120))
    obj = doc.add_object("a")
    model = AnnotationModel(doc)
    stack = QUndoStack()
    editor = AnnotationEditor(doc, stack)
    changes = []
    model.framesChanged.connect(lambda o, a, b: changes.append((a, b)))
    editor.set_box(obj, 3, square_box(3))
    assert model.arrays(obj).source[3] == 1 and changes[-1] == (3, 3)
    editor.toggle_flag(obj, Flag.OCCLUDED, 5, 9)
    assert model.arrays(obj).flags[5:10].tolist() == [1] * 5
    editor.delete_box(obj, 3, 3)
    assert doc.state(obj, 3).out_of_view and doc.state(obj, 3).box is not None
    stack.undo()
    stack.undo()
    assert model.arrays(obj).flags.sum() == 0
    stack.undo()
    assert np.isnan(model.arrays(obj).boxes[3, 0])
    stack.redo()
    assert doc.state(obj, 3).source is Source.MANUAL


def test_worker_stops_before_flags_and_reanchors_on_keyframes(qtbot, synthetic_video):
    from gui_fakes import FakeTracker

    from atom_gui.tracking_worker import KEYFRAME, RunSpec, TrackingWorker
    from tracker_core.trackers import TrackerSpec

    source = open_video(synthetic_video)
    made = []

    def factory(name, **kwargs):
        made.append(FakeTracker())
        return made[-1]

    worker = TrackingWorker(source, factory)
    results = []
    worker.resultReady.connect(lambda run, f, r, img: results.append(f))
    ends = []
    worker.runFinished.connect(lambda run, reason, n: ends.append((reason, n)))
    spec = RunSpec(1, 1, 0, square_box(0), stop_frame=12, manual_boxes={5: square_box(5)},
                   stop_at_keyframe=False, blocked_frames=frozenset({10}), tracker=TrackerSpec("fake"))
    worker.run(spec)  # synchronously: the loop itself, without a thread
    assert results == [1, 2, 3, 4, 6, 7, 8, 9]
    assert ends == [("flagged", 8)] and made[0].updates == 1
    worker.run(RunSpec(2, 1, 0, square_box(0), stop_frame=12, manual_boxes={3: square_box(3)},
                       tracker=TrackerSpec("fake")))
    assert ends[-1] == (KEYFRAME, 2)
    # A continued run (the tracker's own last frame, same direction) neither re-creates nor re-initialises it.
    inits = made[0].initializations + made[0].updates
    worker.run(RunSpec(3, 1, 2, square_box(2), stop_frame=3, start_is_manual=False,
                       tracker=TrackerSpec("fake")))
    assert len(made) == 1 and made[0].initializations + made[0].updates == inits
    source.close()


def test_gui_command_parses_and_checks_paths(tmp_path):
    from atom_gui import command

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    command.add_parser(sub)
    args = parser.parse_args(["gui", str(tmp_path / "missing.mp4"), "--preset", "fast", "--device", "cpu"])
    assert args.func is command.run and args.preset == "fast"
    with pytest.raises(CommandError, match="no such file"):
        command.run(args)
    args = parser.parse_args(["gui", "--model", str(tmp_path / "nope.pth")])
    with pytest.raises(CommandError, match="model"):
        command.run(args)


def test_responsiveness_probe_measures_lateness(qtbot):
    from atom_gui.responsiveness import LatencyProbe

    probe = LatencyProbe(interval_ms=10)
    probe.start()
    qtbot.wait(150)
    time.sleep(0.06)  # a blocked event loop shows up as one late tick
    qtbot.wait(50)
    stats = probe.stop()
    assert stats["ticks"] >= 5
    assert stats["max_ms"] >= 40


def test_bidirectional_merge_keeps_the_more_confident_result_and_interpolates_weak_frames():
    from atom_gui.bidirectional_fill import merge_bidirectional

    a, b = square_box(0), square_box(4)
    forward = {1: TrackResult(square_box(1), max_score=0.9), 2: TrackResult(square_box(2), max_score=0.4),
               3: TrackResult(square_box(3), max_score=0.1)}
    backward = {3: TrackResult(square_box(3), max_score=0.8), 2: TrackResult(square_box(2), max_score=0.6),
                1: TrackResult(square_box(1), status=Status.NOT_FOUND, max_score=0.95)}
    kinds = [d.kind for d in merge_bidirectional(0, 4, a, b, forward, backward, 0.25)]
    assert kinds == ["forward", "backward", "backward"]
    both_weak = merge_bidirectional(0, 4, a, b, {}, {2: TrackResult(square_box(2), max_score=0.1)}, 0.25)
    assert [d.kind for d in both_weak] == ["interpolated"] * 3
    assert both_weak[1].box.x == pytest.approx((a.x + b.x) / 2)
