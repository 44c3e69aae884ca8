"""The window driven like a person would: open, draw, track, stop, fail, correct, undo."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
from gui_fakes import FakeTracker, square_box, write_frame_folder
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from atom_gui.settings import AppSettings
from atom_gui.timeline import MANUAL, NOT_FOUND, TRACKED
from atom_gui.tracking_worker import FLAGGED, KEYFRAME, LOW_CONFIDENCE, STOPPED
from tracker_core.annotation import Flag, Source
from tracker_core.boxes import Box, iou


def widget_point(window, x: float, y: float):
    """Viewport coordinates of image pixel position (x, y)."""
    view = window.frame_view
    return view.mapFromScene(view.view.mapViewToScene(QPointF(x, y)))


def drag(window, start: tuple[float, float], end: tuple[float, float], steps: int = 5) -> None:
    """A left-button drag on the frame, in image coordinates, at a hand's pace (pyqtgraph drops mouse moves
    that come faster than its rate limit, as a real mouse's never do)."""
    viewport = window.frame_view.viewport()
    p0, p1 = widget_point(window, *start), widget_point(window, *end)
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p0)
    for k in range(1, steps + 1):
        QTest.qWait(25)
        QTest.mouseMove(viewport, p0 + (p1 - p0) * (k / steps))
    QTest.qWait(25)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p1)


def track(window, qtbot, direction: int = 1, frames: int | None = None, timeout: int = 20000):
    """Start a run and wait for its end; returns (reason, frames, fps)."""
    with qtbot.waitSignal(window.controller.runEnded, timeout=timeout) as blocker:
        assert window.correction.start_tracking(direction, frames)
    return tuple(blocker.args)


def set_first_box(window, frame: int = 0) -> Box:
    box = square_box(frame)
    window.go_to(frame)
    window.correction.apply_box(box, corrected=False)
    return box


def tracked_frames(window) -> list[int]:
    doc = window.document
    return [f for f, s in doc.states(window.current_object) if s.source is Source.TRACKED]


def test_open_video_shows_the_first_frame(opened):
    window = opened()
    assert window.source.num_frames == 40
    assert window.frame_view.image_item.image.shape == (120, 160, 3)
    assert window.timeline.slider.maximum() == 39
    assert window.frame_view.draw_mode  # no box yet: a drag draws one
    assert "Drag on the frame" in window.frame_view.hint.text()


def test_a_broken_video_gives_a_clear_message(make_window, qtbot, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 100)
    window = make_window()
    with qtbot.waitSignal(window.errorShown, timeout=10000) as blocker:
        window.open_path(broken)
    title, text = blocker.args
    assert title == "Cannot open the video"
    assert "broken.mp4" in text and "cannot open" in text.lower()
    assert window.source is None  # nothing half-open


def test_drawing_a_box_with_the_mouse_makes_a_keyframe(opened):
    window = opened()
    drag(window, (20, 30), (44, 54))
    state = window.document.state(window.current_object, 0)
    assert state is not None and state.source is Source.MANUAL
    assert iou(state.box, square_box(0)) > 0.85
    assert window.frame_view.roi.isVisible()
    assert not window.frame_view.draw_mode
    assert window.undo_stack.count() == 1


def test_moving_the_box_with_the_mouse_is_a_correction(opened):
    window = opened()
    set_first_box(window)
    before = window.document.state(window.current_object, 0).box
    drag(window, (32, 42), (42, 47))  # grab the middle of the box, move it by (10, 5)
    after = window.document.state(window.current_object, 0).box
    assert after.x == pytest.approx(before.x + 10, abs=1.5)
    assert after.y == pytest.approx(before.y + 5, abs=1.5)
    assert window.undo_stack.count() == 2


def test_tracking_n_frames_updates_boxes_panels_and_timeline(opened, qtbot):
    window = opened()
    set_first_box(window)
    reason, frames, fps = track(window, qtbot, frames=20)
    assert frames == 20 and fps > 0
    assert tracked_frames(window) == list(range(1, 21))
    # The boxes follow the target.
    for f in (5, 12, 20):
        assert iou(window.document.box(window.current_object, f), square_box(f)) > 0.7
    # The view followed the run to its last frame, with the box and the panels of that frame.
    assert window.current_frame == 20
    qtbot.waitUntil(lambda: window.displayed_frame == 20)
    assert iou(window.frame_view.current_box(), square_box(20)) > 0.7
    assert window.panels.confidence.image.image is not None
    assert "peak" in window.panels.confidence.caption.text()
    assert "IoU" in window.panels.iou.caption.text() and window.panels.iou._items
    assert window.frame_view.confidence_item.isVisible()
    # Timeline and curves.
    qtbot.waitUntil(lambda: window.timeline.strip.code_at(20) == TRACKED)
    assert window.timeline.strip.code_at(0) == MANUAL
    _, score = window.panels.curves.score_curve.getData()
    assert np.isfinite(score).sum() == 20
    assert window.panels.curves.current_line.value() == 20
    # One run, one undo step.
    assert window.undo_stack.count() == 2
    window.correction.undo()
    assert tracked_frames(window) == []
    window.correction.redo()
    assert tracked_frames(window) == list(range(1, 21))


def test_stopping_in_the_middle_keeps_every_tracked_box(opened, qtbot):
    window = opened(delay=0.05)
    set_first_box(window)
    with qtbot.waitSignal(window.controller.runEnded, timeout=20000) as blocker:
        window.correction.start_tracking(1)
        qtbot.waitUntil(lambda: len(tracked_frames(window)) >= 5, timeout=10000)
        window.correction.stop()
    reason, frames, _ = blocker.args
    assert reason == STOPPED
    assert 5 <= frames < 39
    assert tracked_frames(window) == list(range(1, frames + 1))  # every result the worker made is stored
    assert window.undo_stack.count() == 2
    # Space continues from the last tracked box.
    window.go_to(frames)
    reason, more, _ = track(window, qtbot, frames=3)
    assert tracked_frames(window) == list(range(1, frames + 4))


def test_an_exception_in_the_worker_shows_an_error_and_keeps_the_boxes(opened, qtbot):
    window = opened(fail_at=8)
    set_first_box(window)
    with qtbot.waitSignal(window.errorShown, timeout=20000) as blocker:
        window.correction.start_tracking(1)
    title, text = blocker.args
    assert "error" in title.lower()
    assert "broke on purpose" in text and "7 frames" in text
    assert tracked_frames(window) == list(range(1, 8))
    assert not window.controller.is_running
    assert window.actions["track"].isEnabled()


def test_auto_pause_on_low_confidence(opened, qtbot):
    window = opened(settings=AppSettings(tracker="atom", auto_pause=True, pause_below=0.3), lose_after=6)
    set_first_box(window)
    reason, frames, _ = track(window, qtbot)
    assert reason == LOW_CONFIDENCE and frames == 7
    assert window.current_frame == 7
    qtbot.waitUntil(lambda: window.timeline.strip.code_at(7) == NOT_FOUND)
    assert window.timeline.strip._low[7]
    assert "Paused on low confidence" in window.message()


def test_correct_and_continue_is_one_undo_step_and_never_overwrites_keyframes(opened, qtbot):
    window = opened()
    set_first_box(window)
    window.go_to(30)
    window.correction.apply_box(square_box(30), corrected=False)  # a later keyframe
    window.go_to(0)
    reason, frames, _ = track(window, qtbot)
    assert reason == KEYFRAME and frames == 29  # up to the keyframe, never over it
    doc = window.document
    obj = window.current_object
    assert doc.state(obj, 30).source is Source.MANUAL
    original = {f: doc.box(obj, f) for f in range(11, 30)}
    steps_before = window.undo_stack.count()
    # Correct frame 10 (moved by 3 px) and track on from it.
    window.go_to(10)
    corrected = Box(square_box(10).x + 3, square_box(10).y, 24, 24)
    window.correction.apply_box(corrected, corrected=True)
    reason, frames, _ = track(window, qtbot)
    assert doc.state(obj, 10).source is Source.MANUAL
    assert window.undo_stack.count() == steps_before + 1  # the correction and the run: one step
    assert "Correct frame 10" in window.undo_stack.undoText()
    window.correction.undo()
    assert doc.state(obj, 10).source is Source.TRACKED
    assert {f: doc.box(obj, f) for f in range(11, 30)} == original


def test_grabbing_the_box_during_a_run_pauses_and_continues_from_the_correction(opened, qtbot):
    window = opened(delay=0.05)
    set_first_box(window)
    with qtbot.waitSignal(window.controller.runEnded, timeout=20000):
        window.correction.start_tracking(1)
        qtbot.waitUntil(lambda: len(tracked_frames(window)) >= 4, timeout=10000)
        window.frame_view.editStarted.emit()  # the person grabs the box
    frame = window.current_frame
    box = window.document.box(window.current_object, frame)
    with qtbot.waitSignal(window.controller.runStarted, timeout=5000):
        window.frame_view.boxEdited.emit(Box(box.x + 1, box.y, box.w, box.h))  # and releases it
    assert window.document.state(window.current_object, frame).source is Source.MANUAL
    qtbot.waitUntil(lambda: len(tracked_frames(window)) > frame + 3, timeout=10000)
    window.correction.stop()
    qtbot.waitUntil(lambda: not window.controller.is_running, timeout=10000)


def test_flags_stop_the_tracker_and_delete_keeps_the_track(opened, qtbot):
    window = opened()
    set_first_box(window)
    window.go_to(6)
    window.correction.toggle_flag(Flag.OCCLUDED)
    assert window.document.state(window.current_object, 6).occluded
    window.go_to(0)
    reason, frames, _ = track(window, qtbot)
    assert reason == FLAGGED and frames == 5
    window.go_to(3)
    window.correction.delete_box()
    state = window.document.state(window.current_object, 3)
    assert state.out_of_view and state.box is not None  # the box stays, flagged
    assert not window.frame_view.roi.isVisible()
    window.correction.undo()
    assert not window.document.state(window.current_object, 3).out_of_view


def test_keyboard_shortcuts(opened, qtbot):
    window = opened()
    set_first_box(window)
    window.frame_view.setFocus()
    QTest.keyClick(window, Qt.Key.Key_F)
    QTest.keyClick(window, Qt.Key.Key_F)
    assert window.current_frame == 2
    QTest.keyClick(window, Qt.Key.Key_D)
    assert window.current_frame == 1
    QTest.keyClick(window, Qt.Key.Key_V)
    assert window.current_frame == 11
    QTest.keyClick(window, Qt.Key.Key_E)  # previous keyframe
    assert window.current_frame == 0
    with qtbot.waitSignal(window.controller.runEnded, timeout=20000):
        QTest.keyClick(window, Qt.Key.Key_T)  # track N frames
    assert len(tracked_frames(window)) == window.settings.track_frames or tracked_frames(window)[-1] == 39
    window.go_to(5)
    QTest.keyClick(window, Qt.Key.Key_K)
    assert window.document.state(window.current_object, 5).source is Source.MANUAL
    QTest.keyClick(window, Qt.Key.Key_O)
    assert window.document.state(window.current_object, 5).out_of_view
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not window.document.state(window.current_object, 5).out_of_view
    QTest.keyClick(window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert window.document.state(window.current_object, 5).out_of_view
    QTest.keyClick(window, Qt.Key.Key_F1)
    assert window.cheat_sheet.isVisible() and "Next keyframe" in window.cheat_sheet.text()
    # Space tracks forward from a box, Shift+Space backward (here from the keyframe at 5, over frames 4..1).
    window.undo_stack.undo()  # frame 5 visible again
    with qtbot.waitSignal(window.controller.runEnded, timeout=20000):
        QTest.keyClick(window, Qt.Key.Key_Space, Qt.KeyboardModifier.ShiftModifier)
    assert window.document.state(window.current_object, 4).source is Source.TRACKED


def test_backward_tracking(opened, qtbot):
    window = opened()
    set_first_box(window, frame=30)
    reason, frames, _ = track(window, qtbot, direction=-1, frames=10)
    assert tracked_frames(window) == list(range(20, 30))
    assert iou(window.document.box(window.current_object, 22), square_box(22)) > 0.7


def test_a_second_object_and_interpolation(opened, qtbot):
    window = opened()
    set_first_box(window)
    window.correction.new_object()
    second = window.current_object
    assert second != window.document.object_ids[0] and window.frame_view.draw_mode
    window.correction.apply_box(Box(100, 10, 20, 20), corrected=False)
    window.go_to(10)
    window.correction.apply_box(Box(110, 20, 20, 20), corrected=False)
    window.go_to(5)
    window.correction.interpolate()
    assert window.document.state(second, 5).source is Source.INTERPOLATED
    assert window.document.box(second, 5).x == pytest.approx(105)
    window.go_to(0)
    assert len(window.frame_view._other_items) >= 1  # object 1 drawn beside the current one


def test_project_is_saved_on_close_and_reopened(opened, make_window, synthetic_video, qtbot, tmp_path):
    window = opened()
    set_first_box(window)
    track(window, qtbot, frames=5)
    project = window.video.project_path
    window.close()
    assert project.is_file()
    again = make_window()
    with qtbot.waitSignal(again.frameShown, timeout=10000):
        again.open_path(synthetic_video)
    assert [f for f, s in again.document.states(again.current_object)] == list(range(0, 6))


def test_autosave_is_offered_back_after_a_crash(opened, make_window, synthetic_video, qtbot):
    window = opened()
    set_first_box(window)
    track(window, qtbot, frames=5)  # autosaves after the run, in the background
    qtbot.waitUntil(lambda: window.video.autosaver.path.is_file() and not window.video.autosaver.dirty, timeout=10000)
    # A crash: the window goes away without its close-time save.
    window.video.save_on_close = lambda: None
    window.close()
    again = make_window()
    asked = []
    again.ask_recovery = lambda path: asked.append(path) or True
    with qtbot.waitSignal(again.frameShown, timeout=10000):
        again.open_path(synthetic_video)
    assert asked
    assert len([f for f, s in again.document.states(again.current_object)]) == 6


def test_real_kcf_tracker_runs_in_the_worker(opened, qtbot):
    from atom_gui.core_adapters import make_tracker

    window = opened(tracker_factory=make_tracker, settings=AppSettings(tracker="kcf", auto_pause=False))
    set_first_box(window)
    reason, frames, fps = track(window, qtbot, frames=10)
    assert frames == 10
    assert iou(window.document.box(window.current_object, 10), square_box(10)) > 0.5
    assert "KCF has no score map" in window.panels.confidence.placeholder.toPlainText()


def test_fake_tracker_instances_do_not_leak():
    FakeTracker.instances.clear()


def test_bidirectional_fill_between_keyframes_is_one_undo_step(opened, qtbot):
    window = opened(lose_after=6)  # each run loses the target after 6 frames: the middle gets interpolated
    set_first_box(window, 0)
    window.go_to(20)
    window.correction.apply_box(square_box(20), corrected=False)
    window.go_to(10)
    steps = window.undo_stack.count()
    with qtbot.waitSignal(window.controller.runStarted, timeout=5000):
        window.correction.fill_between_keyframes()
    qtbot.waitUntil(lambda: window.correction.fill is None and not window.controller.is_running, timeout=20000)
    doc, obj = window.document, window.current_object
    sources = [doc.state(obj, f).source for f in range(1, 20)]
    assert sources[:6] == [Source.TRACKED] * 6  # forward run, strong near frame 0
    assert sources[-6:] == [Source.TRACKED] * 6  # backward run, strong near frame 20
    assert Source.INTERPOLATED in sources[6:13]  # both lost in the middle
    assert iou(doc.box(obj, 17), square_box(17)) > 0.7
    assert window.undo_stack.count() == steps + 1 and "both ways" in window.undo_stack.undoText()
    # The evidence of each frame is that of the pass whose box was kept (both passes tracked every frame).
    for f in range(1, 20):
        state, evidence = doc.state(obj, f), window.controller.evidence_for(obj, f)
        if state.source is Source.INTERPOLATED:
            assert evidence is None
        else:
            assert evidence.box == state.box and evidence.max_score == state.score
            assert evidence.status.value == state.status
    window.go_to(3)
    assert f"peak {doc.state(obj, 3).score:.2f}" in window.panels.confidence.caption.text()
    window.correction.undo()
    assert all(doc.state(obj, f) is None for f in range(1, 20))


def test_settings_dialog_round_trip_and_apply(opened):
    from atom_gui.settings import SettingsDialog

    window = opened()
    wanted = AppSettings(tracker="kcf", auto_pause=True, pause_below=0.4, low_score=0.3, follow_tracking=False,
                         show_confidence_overlay=False, step_frames=25, track_frames=7, replace_policy="to_end")
    dialog = SettingsDialog(wanted, window)
    assert dialog.settings() == wanted
    window.apply_settings(dialog.settings())
    assert not window.actions["follow"].isChecked() and not window.frame_view.show_confidence
    assert AppSettings.load(window.qsettings) == wanted  # persisted
    window.step(1)
    window.actions["step_forward"].trigger()
    assert window.current_frame == 26


def test_settings_dialog_shows_the_preset_each_tracker_runs(qtbot):
    from atom_gui.settings import SettingsDialog

    dialog = SettingsDialog(AppSettings(tracker="atom", preset="fast"))
    qtbot.addWidget(dialog)
    assert dialog.preset.isEnabled() and dialog.preset.currentText() == "fast"
    dialog.tracker.setCurrentIndex(dialog.tracker.findData("atom-damped"))
    # the name implies its preset: shown, not editable, and the plain tracker's choice is not lost
    assert not dialog.preset.isEnabled() and dialog.preset.currentText() == "damped"
    assert dialog.settings().tracker == "atom-damped" and dialog.settings().preset == "fast"
    dialog.tracker.setCurrentIndex(dialog.tracker.findData("atom"))
    assert dialog.preset.isEnabled() and dialog.preset.currentText() == "fast"
    dialog.preset.setCurrentText("damped")
    assert dialog.settings().preset == "damped"


def test_shortcuts_can_be_remapped(opened):
    from atom_gui.actions import apply_keys
    from atom_gui.shortcuts import conflicts, load_keys, save_keys

    window = opened()
    keys = dict(window.keys, next_frame="J")
    assert conflicts(keys) == []
    assert conflicts(dict(keys, prev_frame="J"))  # a key given twice is refused by the dialog
    save_keys(window.qsettings, keys)
    apply_keys(window.actions, keys)
    assert load_keys(window.qsettings)["next_frame"] == "J"
    QTest.keyClick(window, Qt.Key.Key_J)
    assert window.current_frame == 1
    QTest.keyClick(window, Qt.Key.Key_F)  # F no longer moves
    assert window.current_frame == 1


def test_a_folder_of_frames_and_drag_and_drop(make_window, qtbot, tmp_path, synthetic_video):
    from PySide6.QtCore import QMimeData, QPoint, QUrl
    from PySide6.QtGui import QDropEvent

    folder = write_frame_folder(synthetic_video, tmp_path / "frames", 6)
    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    drop = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.frameShown, timeout=10000):
        window.dropEvent(drop)
    assert window.source.num_frames == 6
    assert str(folder) in window.files.recent()


def test_playback_and_low_confidence_navigation(opened, qtbot):
    window = opened(lose_after=4)
    set_first_box(window)
    track(window, qtbot, frames=8)
    window.go_to(0)
    window.jump_low_confidence(1)
    assert window.current_frame == 5  # the first frame the fake lost the target
    window.go_to(30)
    window.toggle_play()
    qtbot.waitUntil(lambda: window.current_frame >= 33, timeout=5000)
    window.toggle_play()
    assert not window.playing


def test_export_import_and_review_video(opened, qtbot, tmp_path):
    from PySide6.QtWidgets import QMessageBox

    from atom_gui.import_export import ImportCommand, export_review_video_in_background, export_to, import_into

    window = opened()
    set_first_box(window)
    track(window, qtbot, frames=10)
    doc = window.document
    asked = []
    message = export_to(window, doc, "lasot", str(tmp_path / "lasot"),
                        ask=lambda *a: asked.append(a) or QMessageBox.StandardButton.Yes)
    assert asked  # frames 11..39 have no box: exported as absent after asking
    sequence = next((tmp_path / "lasot").glob("*/*"))
    assert (sequence / "groundtruth.txt").read_text().count("\n") == 40
    added, message = import_into(doc, "lasot", str(sequence), Source.TRACKED)
    window.undo_stack.push(ImportCommand(doc, added, "Import"))
    assert len(added) == 1 and doc.state(added[0], 5).source is Source.TRACKED
    assert doc.state(added[0], 5).box.as_tuple() == pytest.approx(
        tuple(round(v) for v in doc.box(window.current_object, 5).as_tuple()), abs=1)
    window.correction.undo()
    assert added[0] not in doc
    window.correction.redo()
    assert added[0] in doc
    done = []
    export_review_video_in_background(doc, doc.video.path, str(tmp_path / "review.mp4"), done.append,
                                      lambda exc: done.append(exc))
    qtbot.waitUntil(lambda: bool(done), timeout=30000)
    assert not isinstance(done[0], Exception), done[0]
    assert (tmp_path / "review.mp4").stat().st_size > 1000


def test_review_video_from_the_menu_shows_progress_and_can_be_cancelled(opened, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    window = opened()
    set_first_box(window)
    out = tmp_path / "review.mp4"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    bar = window.review_progress
    seen = []
    bar.valueChanged.connect(seen.append)
    window.actions["export_review"].trigger()
    assert bar.isVisible() and window.review_cancel_button.isVisible() and bar.maximum() == 40
    assert not window.actions["export_review"].isEnabled()  # one at a time
    qtbot.waitUntil(lambda: not bar.isVisible(), timeout=30000)
    assert seen[-1] == 40 and seen == sorted(seen) and len(seen) > 2  # frame by frame, up to the last
    assert out.stat().st_size > 1000 and window.actions["export_review"].isEnabled()
    assert "Review video written" in window.message()

    # Cancel before the first frame is written (a 40-frame clip encodes faster than a test can click, so the
    # click is simulated by an event that starts set): no file, no error dialog, a message saying so.
    import atom_gui.file_commands as file_commands

    def clicked_event():
        event = threading.Event()
        event.set()
        return event

    monkeypatch.setattr(file_commands, "threading", SimpleNamespace(Event=clicked_event))  # this module's only
    stopped = tmp_path / "stopped.mp4"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(stopped), ""))
    window.actions["export_review"].trigger()
    qtbot.waitUntil(lambda: not bar.isVisible(), timeout=30000)
    assert window.message().startswith("Review video cancelled")
    assert window.last_error is None
    assert not stopped.exists() and not list(tmp_path.glob(".stopped*"))


def test_deleting_an_object_is_one_undo_step_and_drawing_starts_a_new_one(opened, qtbot):
    window = opened()
    first_box = set_first_box(window)
    first = window.current_object
    window.correction.new_object()
    second = window.current_object
    window.correction.apply_box(Box(100, 10, 20, 20), corrected=False)
    window.actions["delete_object"].trigger()
    assert window.document.object_ids == [first] and window.current_object == first
    assert [window.object_combo.itemData(i) for i in range(window.object_combo.count())] == [first]
    assert "1 annotated frame" in window.message()
    window.correction.undo()
    assert window.document.object_ids == [first, second]  # back in its place, with its box
    assert window.document.box(second, 0) == Box(100, 10, 20, 20)
    window.set_current_object(first)
    window.actions["delete_object"].trigger()
    window.set_current_object(second)
    window.actions["delete_object"].trigger()
    assert window.document.object_ids == [] and window.current_object is None
    assert window.frame_view.draw_mode and window.frame_label.text().endswith("no object")
    drag(window, (20, 30), (44, 54))  # with no object left, a drawn box starts one
    assert len(window.document.object_ids) == 1
    assert window.document.box(window.current_object, 0) is not None
    for _ in range(4):  # the new box, the new object, then both deletions
        window.correction.undo()
    assert window.document.object_ids == [first, second]  # in their order, with their boxes
    assert window.document.box(first, 0) == first_box and window.document.box(second, 0) == Box(100, 10, 20, 20)


def test_an_object_being_tracked_is_not_deleted(opened, qtbot):
    window = opened(delay=0.05)
    set_first_box(window)
    assert window.correction.start_tracking(1, 30)
    assert window.controller.is_running  # 30 frames at 50 ms each
    window.actions["delete_object"].trigger()
    assert window.current_object in window.document
    assert "stop tracking" in window.message()
    with qtbot.waitSignal(window.controller.runEnded, timeout=20000):
        window.correction.stop()


def test_object_label_and_description_are_one_undo_step(opened, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    window = opened()
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("cyclist", True))
    monkeypatch.setattr(QInputDialog, "getMultiLineText", lambda *a, **k: ("a cyclist in black", True))
    window.correction.edit_object()
    obj = window.document.object(window.current_object)
    assert (obj.label, obj.description) == ("cyclist", "a cyclist in black")
    assert window.object_combo.currentText() == "cyclist"
    window.correction.undo()
    assert (obj.label, obj.description) == ("object 1", "")


def test_a_correction_leaves_the_old_runs_tail_stale_until_kept_and_one_undo_restores_it(opened, qtbot):
    from atom_gui.import_export import missing_frames_text
    from atom_gui.timeline import STALE, strip_codes

    window = opened()
    set_first_box(window)
    track(window, qtbot)  # frames 1..39
    doc, obj = window.document, window.current_object
    before = {f: doc.state(obj, f) for f in range(10, 40)}
    window.go_to(10)
    window.correction.apply_box(Box(square_box(10).x + 2, square_box(10).y, 24, 24), corrected=True)
    reason, frames, _ = track(window, qtbot, frames=5)  # frames 11..15 re-tracked from the correction
    assert doc.stale_frames(obj) == list(range(16, 40))
    codes, _ = strip_codes(window.video.model.arrays(obj))
    assert set(codes[16:40]) == {STALE} and STALE not in codes[:16]
    window.go_to(20)
    assert "stale" in window.frame_label.text()
    assert missing_frames_text(doc).endswith("24 of them (16-39) hold stale boxes, tracked before a correction: "
                                             "re-track them, or keep them (Shift+K)")
    window.correction.undo()  # the correction and its run, stale marks included: one step
    assert {f: doc.state(obj, f) for f in range(10, 40)} == before
    window.correction.redo()
    assert doc.stale_frames(obj) == list(range(16, 40))
    window.go_to(20)
    QTest.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ShiftModifier)  # keep them
    assert doc.stale_frames(obj) == [] and doc.state(obj, 20).source is Source.TRACKED
    window.correction.undo()
    assert doc.stale_frames(obj) == list(range(16, 40))
