"""What a new user hit (issue 14), each checked through the real window and widgets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gui_fakes import square_box, write_frame_folder
from PySide6.QtWidgets import QFileDialog, QMessageBox
from test_window import drag, set_first_box, track, tracked_frames

from atom_gui.actions import ACTION_SPECS, MENUS, ActionContext
from atom_gui.file_commands import usable_start_dir
from atom_gui.frame_view import overlay_lookup_table
from atom_gui.import_export import export_to, missing_frames_text
from atom_gui.project_files import default_project_path, display_name
from atom_gui.settings import AppSettings
from atom_gui.tracking_worker import END_OF_RANGE, LOW_CONFIDENCE
from tracker_core.annotation import Flag, Source
from tracker_core.boxes import Box
from tracker_core.result import Status, TrackResult


def test_actions_are_declared_once_and_build_menus_toolbar_and_enabling(make_window):
    window = make_window()
    names = [spec.name for spec in ACTION_SPECS]
    assert len(names) == len(set(names))
    menu_actions = {}
    for menu in window.menuBar().actions():
        for action in menu.menu().actions():
            if not action.isSeparator():
                menu_actions.setdefault(action.objectName() or action.text(), 0)
                menu_actions[action.objectName() or action.text()] += 1
    assert [m.text().replace("&", "") for m in window.menuBar().actions()] == list(MENUS)
    assert all(menu_actions.get(name) == 1 for name in names)  # every action in exactly one menu
    # Enabling follows the declared conditions: nothing needing a video before one is open.
    for spec in ACTION_SPECS:
        assert window.actions[spec.name].isEnabled() == getattr(ActionContext(), spec.when), spec.name
    assert window.actions["open"].isEnabled() and not window.actions["track"].isEnabled()


def test_enabling_follows_the_video_and_the_run(opened, qtbot):
    window = opened(delay=0.05)
    assert window.actions["track"].isEnabled() and not window.actions["stop"].isEnabled()
    set_first_box(window)
    with qtbot.waitSignal(window.controller.runEnded, timeout=20000):
        window.correction.start_tracking(1, 20)
        assert window.actions["stop"].isEnabled()
        window.actions["stop"].trigger()
    assert not window.actions["stop"].isEnabled() and window.actions["undo"].isEnabled()


def test_an_occluded_frame_shows_its_box_dashed(opened):
    window = opened()
    set_first_box(window)
    window.correction.toggle_flag(Flag.OCCLUDED)
    view = window.frame_view
    assert not view.roi.isVisible()  # not the editable box ...
    assert view.flagged_box.isVisible()  # ... but the box LaSOT exports, dashed
    rect = view.flagged_box.rect()
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == pytest.approx(square_box(0).as_tuple())
    assert view.flagged_box.pen().style().name == "DashLine" and "occluded" in view.flagged_label.toPlainText()
    assert view.draw_mode  # a drag there draws a visible box
    window.correction.toggle_flag(Flag.OCCLUDED)
    assert view.roi.isVisible() and not view.flagged_box.isVisible()


def test_a_drag_draws_on_a_frame_without_a_box_even_when_others_have_one(opened):
    window = opened()
    set_first_box(window, 0)
    window.go_to(20)
    assert window.frame_view.draw_mode
    assert "drag to draw" in window.frame_view.hint.text()
    drag(window, (60, 50), (84, 74))
    state = window.document.state(window.current_object, 20)
    assert state is not None and state.source is Source.MANUAL and state.box.w == pytest.approx(24, abs=1.5)
    assert not window.frame_view.draw_mode  # now it has a box: a drag moves it or pans


def test_space_after_an_auto_pause_tracks_on_through_the_low_confidence(opened, qtbot):
    window = opened(settings=AppSettings(tracker="atom", auto_pause=True, pause_below=0.3), lose_after=6)
    set_first_box(window)
    reason, frames, _ = track(window, qtbot)
    assert reason == LOW_CONFIDENCE and window.current_frame == 7
    message = window.message()
    assert "press Space to track on through the low confidence" in message
    assert window.frame_view.notice.isVisible() and window.frame_view.notice.text() == message
    with qtbot.waitSignal(window.controller.runEnded, timeout=20000) as blocker:
        window.actions["track"].trigger()  # Space on the paused frame
    assert blocker.args[0] == END_OF_RANGE  # no pause on the next low frames: on to the end
    assert tracked_frames(window) == list(range(1, 40))
    # A Space elsewhere (not where it paused) is a normal run again, with auto-pause.
    window.go_to(0)
    window.correction.apply_box(square_box(0))
    window.go_to(0)
    reason, frames, _ = track(window, qtbot)
    assert reason == LOW_CONFIDENCE


def test_undo_and_redo_say_what_they_did(opened, qtbot):
    window = opened()
    set_first_box(window)
    track(window, qtbot, frames=5)
    window.actions["undo"].trigger()
    assert window.message().startswith("Undone: track 5 frames from frame 0")
    assert window.frame_view.notice.isVisible()
    window.actions["redo"].trigger()
    assert window.message().startswith("Redone: track 5 frames from frame 0")


def test_recovery_and_the_end_of_a_fill_are_announced(opened, make_window, synthetic_video, qtbot):
    window = opened(lose_after=6)
    set_first_box(window, 0)
    window.go_to(20)
    window.correction.apply_box(square_box(20))
    window.go_to(10)
    window.correction.fill_between_keyframes()
    qtbot.waitUntil(lambda: window.correction.fill is None and not window.controller.is_running, timeout=20000)
    assert window.message().startswith("Filled frames 0–20:") and window.frame_view.notice.isVisible()
    window.video.autosave_soon()
    qtbot.waitUntil(lambda: window.video.autosaver.path.is_file() and not window.video.autosaver.dirty,
                    timeout=10000)
    window.video.save_on_close = lambda: None  # a crash
    window.close()
    again = make_window()
    with qtbot.waitSignal(again.frameShown, timeout=10000):
        again.open_path(synthetic_video)
    assert again.message().startswith("Recovered the unsaved work of square.avi from its autosave: 1 object, "
                                      "21 annotated frames")


def test_a_recovered_single_box_is_counted_in_the_singular(opened, make_window, synthetic_video, qtbot):
    window = opened()
    set_first_box(window, 0)
    window.video.autosave_soon()
    qtbot.waitUntil(lambda: window.video.autosaver.path.is_file() and not window.video.autosaver.dirty,
                    timeout=10000)
    window.video.save_on_close = lambda: None  # a crash
    window.close()
    again = make_window()
    with qtbot.waitSignal(again.frameShown, timeout=10000):
        again.open_path(synthetic_video)
    assert "from its autosave: 1 object, 1 annotated frame (written to the project" in again.message()


def test_the_score_plot_draws_only_the_rules_the_states_use(make_window):
    window = make_window(settings=AppSettings(tracker="atom", low_score=0.25, low_iou=0.5))
    curves = window.panels.curves
    assert not hasattr(curves, "hard_negative_line")  # not a rule on the peak score
    assert curves.not_found_line.value() == 0.25 and "peak < 0.25" in curves.not_found_line.label.format
    assert not curves.low_score_line.isVisible()  # the same threshold: one line, both rules on it
    assert curves.low_iou_line.value() == 0.5 and "IoU < 0.50" in curves.low_iou_line.label.format
    window.apply_settings(AppSettings(tracker="atom", low_score=0.4))
    assert curves.low_score_line.isVisible() and "score < 0.40" in curves.low_score_line.label.format
    window.apply_settings(AppSettings(tracker="kcf"))
    assert not curves.not_found_line.isVisible()  # OpenCV's trackers decide "lost" themselves
    assert curves.plot.plotItem.legend is None  # the caption names the curves: nothing covers them


def test_the_evidence_dock_gives_way_to_the_video_in_a_small_window(make_window, qtbot):
    window = make_window()
    window.resize(900, 600)
    qtbot.waitUntil(lambda: window.evidence_dock.width() < 0.4 * window.width(), timeout=3000)
    assert window.frame_view.width() > 0.55 * window.width()
    captions = [window.panels.confidence.caption, window.panels.iou.caption, window.panels.curves.caption]
    assert all(c.wordWrap() for c in captions)  # a caption wider than the dock wraps instead of being cut


def test_the_frame_axis_ticks_whole_frames_only(make_window):
    axis = make_window().panels.curves.plot.getAxis("bottom")
    short = [v for _, values in axis.tickValues(0.0, 2.0, 300) for v in values]  # a 3-frame video
    assert short and all(float(v).is_integer() for v in short) and {0.0, 1.0, 2.0} <= set(short)
    long = [v for _, values in axis.tickValues(0.0, 250.0, 300) for v in values]
    assert 100.0 in long and all(float(v).is_integer() for v in long)


def test_frames_per_second_and_evidence_texts_belong_to_their_video_and_frame(opened, synthetic_video, qtbot):
    window = opened()
    set_first_box(window)
    track(window, qtbot, frames=10)
    assert "frames/s" in window.fps_label.text()
    window.go_to(20)
    assert "Not tracked: no box on this frame" in window.panels.iou.placeholder.toPlainText().replace("\n", " ")
    window.go_to(0)
    assert "A keyframe" in window.panels.confidence.placeholder.toPlainText()
    with qtbot.waitSignal(window.frameShown, timeout=10000):
        window.open_path(synthetic_video)  # another video (here the same one again)
    assert window.fps_label.text() == ""


def test_the_search_area_and_the_map_stay_inside_the_image(opened):
    window = opened()
    view = window.frame_view
    scores = np.zeros((18, 18), np.float32)
    scores[9, 9] = 1.0
    result = TrackResult(box=Box(140, 100, 20, 20), status=Status.NORMAL, max_score=1.0, score_map=scores,
                         score_map_rect=Box(100, 60, 100, 100))  # reaches 40 px past the right and bottom edges
    view.set_evidence(result)
    image = view.image_rect()
    assert image.contains(view.search_region.rect())
    shown = view.confidence_item.mapRectToParent(view.confidence_item.boundingRect())
    assert shown.right() <= image.right() + 100 / 192 + 1e-6 and shown.bottom() <= image.bottom() + 100 / 192 + 1e-6


def test_the_hint_sits_at_the_top_of_the_view_whole(make_window, qtbot):
    window = make_window()
    view = window.frame_view
    view.set_frame(np.zeros((2160, 3840, 3), np.uint8))  # 4K: the hint must not scale with the image
    view.set_hint("Drag on the frame to draw the box around object 1, then press Space to track")
    hint = view.hint
    assert hint.isVisible() and hint.y() < 0.2 * view.viewport().height()
    assert 0 <= hint.x() and hint.x() + hint.width() <= view.viewport().width()
    assert hint.height() >= hint.heightForWidth(hint.width())  # nothing cut off


def test_the_confidence_overlay_is_a_heat_map_with_clear_low_scores():
    lut = overlay_lookup_table()
    assert lut.shape == (256, 4) and lut[0, 3] == 0 and lut[40, 3] == 0  # low scores leave the frame as it is
    assert lut[-1, 3] >= 180 and lut[-1, 0] > 200 and lut[-1, 1] > 200  # the peak: bright, pale yellow
    assert lut[160, 0] > lut[160, 1] > lut[160, 2]  # the middle: orange-red (not green)


def test_export_makes_its_folder_and_writes_single_file_formats_to_a_file(opened, qtbot, tmp_path, monkeypatch):
    window = opened()
    set_first_box(window)
    track(window, qtbot, frames=10)
    asked = []

    def ask(parent, title, text, buttons):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    out = tmp_path / "new" / "nested" / "lasot"
    no = export_to(window, window.document, "lasot", str(out), ask=lambda *args: QMessageBox.StandardButton.No)
    assert no.startswith("Export cancelled") and not (tmp_path / "new").exists()  # no empty folder left behind
    export_to(window, window.document, "lasot", str(out), ask=ask)
    assert (out / "object_1" / "object_1-1" / "groundtruth.txt").is_file()
    assert asked and "object 1: no box and no flag on 29 of 40 frames (11-39)" in asked[0]
    assert "(object 1)" not in asked[0] and "missing=" not in asked[0]
    xml = tmp_path / "cvat" / "mine.xml"
    assert "mine.xml" in export_to(window, window.document, "cvat", str(xml), ask=ask)
    assert xml.is_file() and not (xml.parent / "annotations.xml").exists()
    # From the menu: a file dialog for CVAT, and the place is remembered for the next export.
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "menu" / "a.xml"), ""))
    window.files.export_annotations("cvat")
    assert (tmp_path / "menu" / "a.xml").is_file() and window.message().startswith("Exported CVAT")
    assert window.files.start_dir("export") == str(tmp_path / "menu")


def test_missing_frames_are_described_per_object(opened):
    window = opened()
    set_first_box(window, 3)
    text = missing_frames_text(window.document)
    assert text == "object 1: no box and no flag on 39 of 40 frames (0-2, 4-39)"


def test_dialogs_never_start_inside_the_installation(opened, tmp_path):
    window = opened()
    site = Path(np.__file__).parent  # .../site-packages/numpy
    assert usable_start_dir(site) is None and usable_start_dir(site.parent) is None
    assert usable_start_dir(tmp_path) == str(tmp_path)
    assert "site-packages" not in window.files.start_dir("open")
    window.files.remember_dir("open", tmp_path)
    assert window.files.start_dir("open") == str(tmp_path)


def test_names_settings_and_projects_are_not_doubled(tmp_path):
    from PySide6.QtCore import QStandardPaths

    from atom_gui.settings import APP_NAME, default_project_dir, user_qsettings

    folder = tmp_path / "Soccer" / "img"
    folder.mkdir(parents=True)
    assert display_name(folder) == "Soccer/img" and display_name(tmp_path / "bikes.mp4") == "bikes.mp4"
    assert default_project_path(folder, tmp_path).name.startswith("Soccer_img-")
    settings_file = Path(user_qsettings().fileName())
    assert settings_file.parent.name != APP_NAME and settings_file.stem == APP_NAME
    QStandardPaths.setTestModeEnabled(True)
    try:
        projects = default_project_dir()
        assert projects.name == "projects" and projects.parent.name == APP_NAME
        assert projects.parent.parent.name != APP_NAME
    finally:
        QStandardPaths.setTestModeEnabled(False)


def test_a_frame_folder_is_titled_with_its_sequence(make_window, qtbot, tmp_path, synthetic_video):
    folder = write_frame_folder(synthetic_video, tmp_path / "Soccer" / "img", 3)
    window = make_window()
    with qtbot.waitSignal(window.frameShown, timeout=10000):
        window.open_path(folder)
        assert window.frame_view.hint.text() == "Opening Soccer/img…"  # while it opens, named as it will be
    assert window.windowTitle().endswith("Soccer/img") and window.message().startswith("Opened Soccer/img:")
