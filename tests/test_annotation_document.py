"""The annotation document: keyframe rules, interpolation, tracked batches, flags, spans, events, undo."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tracker_core.annotation import (
    ChangeEvent,
    ChangeKind,
    Document,
    Flag,
    FrameState,
    ReplacePolicy,
    Snapshot,
    Source,
    SpanKind,
    VideoRef,
)
from tracker_core.boxes import Box
from tracker_core.result import Status, TrackResult


@pytest.fixture
def doc() -> Document:
    return Document(VideoRef(path="clip.mp4", num_frames=100, fps=25.0, width=640, height=360))


def tracked(frames, x0=0.0, score=0.9, iou=0.8):
    """TrackResults whose x equals x0 + frame, so a test can tell which run wrote a frame."""
    return [(f, TrackResult(Box(x0 + f, 5.0, 10.0, 10.0), Status.NORMAL, score, iou)) for f in frames]


def test_the_annotation_layer_imports_without_torch_or_qt():
    # A fresh interpreter: this test process has long imported torch.
    code = ("import sys, tracker_core.annotation, tracker_core.annotation.formats; "
            "print(sorted(m for m in ('torch', 'PySide6', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- objects and boxes ------------------------------------------------------------------------------------

def test_objects_get_ids_labels_and_descriptions(doc):
    a = doc.add_object("car", "a red car")
    b = doc.add_object("person")
    assert (a, b) == (1, 2)
    assert doc.object(a).description == "a red car"
    assert doc.set_label(b, "cyclist") == "person"
    assert doc.object(b).label == "cyclist"
    with pytest.raises(ValueError):
        doc.add_object("x", obj_id=a)
    with pytest.raises(KeyError):
        doc.object(99)


def test_states_are_sparse_and_boxes_are_validated(doc):
    o = doc.add_object("car")
    doc.set_box(o, 7, (1, 2, 3, 4))
    assert doc.frames(o) == [7]
    assert doc.state(o, 3) is None
    assert doc.state(o, 7) == FrameState(Box(1, 2, 3, 4), Source.MANUAL)
    for bad in [(0, 0, 0, 5), (0, 0, 5, -1), (float("nan"), 0, 5, 5)]:
        with pytest.raises(ValueError):
            doc.set_box(o, 8, bad)
    with pytest.raises(ValueError):
        doc.set_box(o, 100, (1, 2, 3, 4))  # past the last frame
    with pytest.raises(ValueError):
        doc.set_box(o, -1, (1, 2, 3, 4))
    assert doc.frames(o) == [7]


def test_remove_and_insert_object_round_trip(doc):
    o = doc.add_object("car")
    doc.set_box(o, 3, (1, 2, 3, 4))
    removed = doc.remove_object(o)
    assert o not in doc
    doc.insert_object(removed)
    assert doc.box(o, 3) == Box(1, 2, 3, 4)


# ---- keyframes and navigation -----------------------------------------------------------------------------

def test_copy_is_independent_of_the_original(doc):
    a = doc.add_object("car", attributes={"colour": "red"})
    doc.set_box(a, 3, Box(1, 2, 3, 4))
    doc.metadata["settings"] = {"tracker": "atom"}
    events = []
    doc.subscribe(events.append)
    copy = doc.copy()
    assert events == [] and copy.video == doc.video and copy.object_ids == [a]
    assert copy.state(a, 3) == doc.state(a, 3) and copy.object(a).attributes == {"colour": "red"}
    doc.set_box(a, 4, Box(5, 6, 7, 8))
    doc.set_box(a, 3, Box(9, 9, 9, 9))
    doc.object(a).attributes["colour"] = "blue"
    doc.metadata["settings"]["tracker"] = "kcf"
    doc.add_object("person")
    assert copy.keyframes(a) == [3] and copy.box(a, 3) == Box(1, 2, 3, 4)
    assert copy.object(a).attributes == {"colour": "red"} and copy.metadata == {"settings": {"tracker": "atom"}}
    assert copy.object_ids == [a]


def test_keyframes_and_navigation(doc):
    o = doc.add_object("car")
    for f in (10, 30, 50):
        doc.set_box(o, f, (f, 0, 5, 5))
    doc.apply_tracked(o, tracked(range(11, 20)), start=10)
    assert doc.keyframes(o) == [10, 30, 50]
    assert doc.next_keyframe(o, 10) == 30
    assert doc.next_keyframe(o, 0) == 10
    assert doc.next_keyframe(o, 50) is None
    assert doc.previous_keyframe(o, 30) == 10
    assert doc.previous_keyframe(o, 31) == 30
    assert doc.previous_keyframe(o, 10) is None


def test_next_low_confidence_frame(doc):
    o = doc.add_object("car")
    doc.set_box(o, 0, (0, 0, 5, 5))
    results = tracked(range(1, 20))
    results[4] = (5, TrackResult(Box(1, 1, 5, 5), Status.NORMAL, max_score=0.1, iou=0.9))  # low score
    results[11] = (12, TrackResult(Box(1, 1, 5, 5), Status.NORMAL, max_score=0.9, iou=0.2))  # low IoU
    results[15] = (16, TrackResult(Box(1, 1, 5, 5), Status.NOT_FOUND, max_score=0.9, iou=0.9))
    doc.apply_tracked(o, results, start=0)
    assert doc.next_low_confidence(o, 0) == 5
    assert doc.next_low_confidence(o, 5) == 12
    assert doc.next_low_confidence(o, 12) == 16
    assert doc.next_low_confidence(o, 16) is None
    assert doc.next_low_confidence(o, 16, backward=True) == 12
    assert doc.next_low_confidence(o, 0, min_score=0.05, min_iou=0.1) == 16


# ---- interpolation ----------------------------------------------------------------------------------------

def test_interpolation_values_by_hand(doc):
    o = doc.add_object("car")
    doc.set_box(o, 10, (100, 50, 20, 40))
    doc.set_box(o, 14, (120, 30, 40, 20))
    doc.interpolate(o)
    # t = 1/4, 2/4, 3/4 between (100,50,20,40) and (120,30,40,20)
    assert doc.box(o, 11) == Box(105, 45, 25, 35)
    assert doc.box(o, 12) == Box(110, 40, 30, 30)
    assert doc.box(o, 13) == Box(115, 35, 35, 25)
    assert all(doc.state(o, f).source is Source.INTERPOLATED for f in (11, 12, 13))
    assert doc.keyframes(o) == [10, 14]


def test_interpolation_never_overwrites_manual_and_respects_flags(doc):
    o = doc.add_object("car")
    doc.set_box(o, 0, (0, 0, 10, 10))
    doc.set_box(o, 4, (40, 0, 10, 10))
    doc.set_box(o, 8, (0, 0, 10, 10))
    doc.set_box(o, 12, (0, 0, 10, 10))
    doc.set_flag(o, Flag.OUT_OF_VIEW, 2)  # out of view between 0 and 4: no interpolation across it
    doc.set_flag(o, Flag.OCCLUDED, 7)  # occluded: interpolated, and still occluded
    doc.delete_box(o, 12)  # a pair whose end is out of view is not interpolated
    doc.apply_tracked(o, tracked([5, 6]), start=4)
    doc.interpolate(o, overwrite_tracked=False)
    assert doc.box(o, 4) == Box(40, 0, 10, 10) and doc.state(o, 4).source is Source.MANUAL
    assert doc.state(o, 1) is None and doc.state(o, 3) is None
    assert doc.state(o, 2) == FrameState(out_of_view=True)
    assert doc.state(o, 5).source is Source.TRACKED  # kept: overwrite_tracked=False
    assert doc.state(o, 7) == FrameState(Box(10, 0, 10, 10), Source.INTERPOLATED, occluded=True)
    assert all(doc.state(o, f) is None for f in (9, 10, 11))
    doc.interpolate(o, first=4, last=8)
    assert doc.state(o, 5).source is Source.INTERPOLATED


# ---- tracked batches --------------------------------------------------------------------------------------

def test_tracked_results_never_overwrite_manual_boxes(doc):
    o = doc.add_object("car")
    doc.set_box(o, 0, (0, 0, 10, 10))
    doc.set_box(o, 20, (50, 50, 10, 10))
    doc.apply_tracked(o, tracked(range(0, 40)), start=0)  # UNTIL_KEYFRAME: stops at 20
    assert doc.box(o, 0) == Box(0, 0, 10, 10)
    assert doc.box(o, 20) == Box(50, 50, 10, 10)
    assert doc.frames(o) == list(range(0, 21))
    assert doc.state(o, 19) == FrameState(Box(19, 5, 10, 10), Source.TRACKED, 0.9, 0.8, status="normal")


def test_correction_replaces_tracked_frames_until_next_keyframe(doc):
    o = doc.add_object("car")
    doc.set_box(o, 0, (0, 0, 10, 10))
    doc.set_box(o, 60, (0, 0, 10, 10))
    doc.apply_tracked(o, tracked(range(1, 100)), policy=ReplacePolicy.TO_END, start=0)
    assert doc.state(o, 60).source is Source.MANUAL and doc.box(o, 80).x == 80
    doc.set_box(o, 30, (300, 0, 10, 10))  # correction: frame 30 becomes a keyframe
    assert doc.tracking_limit(o, 30) == 59
    doc.apply_tracked(o, tracked(range(31, 100), x0=1000), start=30)
    assert doc.box(o, 59).x == 1059
    assert doc.box(o, 61).x == 61  # beyond the next keyframe: the old run stays
    doc.set_box(o, 40, (400, 0, 10, 10))
    assert doc.tracking_limit(o, 40, policy=ReplacePolicy.TO_END) == 99
    doc.apply_tracked(o, tracked(range(41, 100), x0=2000), policy=ReplacePolicy.TO_END, start=40)
    assert doc.box(o, 61).x == 2061 and doc.box(o, 99).x == 2099
    assert doc.box(o, 60) == Box(0, 0, 10, 10)  # stepped over, not overwritten


def test_tracked_results_stop_at_flagged_frames_and_go_backward(doc):
    o = doc.add_object("car")
    doc.set_box(o, 50, (0, 0, 10, 10))
    doc.set_flag(o, Flag.OCCLUDED, 40, 42)
    assert doc.tracking_limit(o, 50, direction=-1) == 43
    assert doc.tracking_limit(o, 50, direction=1) == 99
    doc.apply_tracked(o, tracked(range(49, 30, -1)), start=50)
    assert doc.frames(o)[0] == 40 and doc.box(o, 43).x == 43
    assert doc.state(o, 42) == FrameState(occluded=True)


def test_invalid_tracked_batch_changes_nothing(doc):
    o = doc.add_object("car")
    results = tracked(range(0, 5)) + [(5, Box(0, 0, 0, 0))]
    with pytest.raises(ValueError):
        doc.apply_tracked(o, results)
    assert doc.frames(o) == []


def test_clear_by_source_keeps_flags(doc):
    o = doc.add_object("car")
    doc.set_box(o, 0, (0, 0, 10, 10))
    doc.apply_tracked(o, tracked(range(1, 10)), start=0)
    doc.set_flag(o, Flag.OCCLUDED, 5)
    doc.clear(o, 0, 99, sources={Source.TRACKED})
    assert doc.frames(o) == [0, 5]
    assert doc.state(o, 5) == FrameState(occluded=True)
    doc.clear(o, 0, 99)
    assert doc.frames(o) == []


# ---- flags ------------------------------------------------------------------------------------------------

def test_flags_over_ranges_keep_boxes_and_delete_sets_out_of_view(doc):
    o = doc.add_object("car")
    doc.set_box(o, 5, (0, 0, 10, 10))
    doc.delete_box(o, 5, 9)
    assert doc.box(o, 5) == Box(0, 0, 10, 10)  # the track is not deleted
    assert all(doc.state(o, f).out_of_view for f in range(5, 10))
    doc.set_flag(o, Flag.OUT_OF_VIEW, 9, 5, value=False)  # reversed range is fine
    assert doc.frames(o) == [5] and not doc.state(o, 5).out_of_view
    doc.set_flag(o, "occluded", 5)
    assert doc.state(o, 5).occluded
    doc.set_flag(o, Flag.OUT_OF_VIEW, 6)
    doc.set_box(o, 6, (1, 1, 5, 5))  # a manual box means the object is visible again
    assert not doc.state(o, 6).out_of_view


# ---- spans ------------------------------------------------------------------------------------------------

def test_spans_for_the_timeline(doc):
    o = doc.add_object("car")
    doc.set_box(o, 0, (0, 0, 10, 10))
    results = tracked(range(1, 8))
    results[3] = (4, TrackResult(Box(1, 1, 5, 5), Status.UNCERTAIN, 0.1, 0.3))
    doc.apply_tracked(o, results, start=0)
    doc.set_box(o, 10, (0, 0, 10, 10))
    doc.set_box(o, 12, (0, 0, 10, 10))
    doc.interpolate(o, 10, 12)
    doc.set_flag(o, Flag.OCCLUDED, 13, 14)
    doc.set_flag(o, Flag.OUT_OF_VIEW, 14, 15)
    spans = [(s.kind, s.first, s.last) for s in doc.spans(o)]
    assert spans == [
        (SpanKind.MANUAL, 0, 0),
        (SpanKind.TRACKED, 1, 3),
        (SpanKind.LOW_CONFIDENCE, 4, 4),
        (SpanKind.TRACKED, 5, 7),  # frames 8, 9 have no state: a gap
        (SpanKind.MANUAL, 10, 10),
        (SpanKind.INTERPOLATED, 11, 11),
        (SpanKind.MANUAL, 12, 12),
        (SpanKind.OCCLUDED, 13, 13),
        (SpanKind.OUT_OF_VIEW, 14, 15),
    ]
    assert [s.kind for s in doc.spans(o, first=5, last=10)] == [SpanKind.TRACKED, SpanKind.MANUAL]
    assert SpanKind.OCCLUDED.is_flag and not SpanKind.MANUAL.is_flag


# ---- events -----------------------------------------------------------------------------------------------

def test_events_fire_per_change(doc):
    events: list[ChangeEvent] = []
    unsubscribe = doc.subscribe(events.append)
    o = doc.add_object("car")
    doc.set_box(o, 3, (0, 0, 5, 5))
    doc.set_flag(o, Flag.OCCLUDED, 4, 8)
    doc.set_label(o, "truck")
    assert events == [
        ChangeEvent(ChangeKind.OBJECT_ADDED, o),
        ChangeEvent(ChangeKind.FRAMES, o, 3, 3),
        ChangeEvent(ChangeKind.FRAMES, o, 4, 8),
        ChangeEvent(ChangeKind.OBJECT_CHANGED, o),
    ]
    assert events[2].frames == range(4, 9)
    unsubscribe()
    doc.set_box(o, 9, (0, 0, 5, 5))
    assert len(events) == 4


def test_no_event_when_nothing_changes(doc):
    o = doc.add_object("car")
    doc.set_box(o, 3, (0, 0, 5, 5))
    events = []
    doc.subscribe(events.append)
    revision = doc.revision
    assert doc.set_box(o, 3, (0, 0, 5, 5)).is_empty()
    assert doc.clear(o, 50, 60).is_empty()
    assert events == [] and doc.revision == revision


def test_batch_coalesces_events(doc):
    o = doc.add_object("car")
    p = doc.add_object("dog")
    events = []
    doc.subscribe(events.append)
    with doc.batch():
        doc.set_box(o, 10, (0, 0, 5, 5))
        with doc.batch():  # nested batches flush once, at the outermost end
            doc.set_box(o, 2, (0, 0, 5, 5))
            doc.set_box(p, 7, (0, 0, 5, 5))
        doc.set_flag(o, Flag.OCCLUDED, 20, 25)
        assert events == []
    assert events == [ChangeEvent(ChangeKind.FRAMES, o, 2, 25), ChangeEvent(ChangeKind.FRAMES, p, 7, 7)]


def test_batch_emits_even_when_the_body_raises(doc):
    o = doc.add_object("car")
    events = []
    doc.subscribe(events.append)
    with pytest.raises(RuntimeError):
        with doc.batch():
            doc.set_box(o, 1, (0, 0, 5, 5))
            raise RuntimeError("boom")
    assert events == [ChangeEvent(ChangeKind.FRAMES, o, 1, 1)]


# ---- snapshot / restore (undo and redo) -------------------------------------------------------------------

def test_every_mutation_can_be_undone_and_redone(doc):
    o = doc.add_object("car")
    doc.set_box(o, 0, (0, 0, 10, 10))
    doc.set_box(o, 10, (10, 0, 10, 10))
    doc.apply_tracked(o, tracked(range(11, 30)), start=10)
    edits = [
        lambda: doc.set_box(o, 5, (3, 3, 3, 3)),
        lambda: doc.clear(o, 12, 15),
        lambda: doc.set_flag(o, Flag.OCCLUDED, 8, 40),
        lambda: doc.delete_box(o, 0, 3),
        lambda: doc.interpolate(o),
        lambda: doc.apply_tracked(o, tracked(range(1, 10), x0=500), start=0),
        lambda: doc.apply_tracked(o, tracked(range(11, 60), x0=700), policy=ReplacePolicy.TO_END, start=10),
    ]
    for edit in edits:
        before = dict(doc.object(o).states)
        undo = edit()
        after = dict(doc.object(o).states)
        redo = doc.restore(undo)
        assert doc.object(o).states == before
        doc.restore(redo)
        assert doc.object(o).states == after


def test_snapshot_and_merge_make_a_run_one_undo_step(doc):
    o = doc.add_object("car")
    doc.set_box(o, 0, (0, 0, 10, 10))
    before = doc.snapshot(o, range(0, 20))
    original = dict(doc.object(o).states)
    macro = Snapshot()
    for frame, result in tracked(range(1, 20)):  # the worker streams one result per frame
        macro = macro.merge(doc.apply_tracked(o, [(frame, result)]))
    macro = macro.merge(doc.set_box(o, 5, (1, 1, 1, 1)))  # touched twice: the earliest state wins
    assert macro.frames(o) == list(range(1, 20))
    assert macro.states[o][5] is None
    doc.restore(macro)
    assert doc.object(o).states == original
    doc.set_box(o, 3, (9, 9, 9, 9))
    doc.restore(before)
    assert doc.object(o).states == original


def test_restore_of_a_missing_object_changes_nothing(doc):
    o = doc.add_object("car")
    undo = doc.set_box(o, 1, (0, 0, 5, 5))
    doc.remove_object(o)
    with pytest.raises(KeyError):
        doc.restore(undo)


def test_frame_state_invariants():
    with pytest.raises(ValueError):
        FrameState(Box(0, 0, 1, 1))  # a box needs a source
    with pytest.raises(ValueError):
        FrameState(source=Source.MANUAL)
    assert FrameState().is_empty and not FrameState(occluded=True).is_empty
    assert FrameState(Box(0, 0, 1, 1), "tracked").source is Source.TRACKED
