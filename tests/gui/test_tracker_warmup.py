"""The tracker made ready before Space: the first box is learnt while the person looks, and the run reuses it."""

from __future__ import annotations

import threading

import numpy as np
from gui_fakes import FakeTracker, square_box

from atom_gui.tracker_warmup import TrackerWarmup, warm_frame
from tracker_core.boxes import Box
from tracker_core.trackers import TrackerSpec
from tracker_core.video import open_video

CHOICE = TrackerSpec("fake")


class SlowFake(FakeTracker):
    """A fake whose initialisation waits for ``release`` (to catch the worker arriving mid-preparation)."""

    def __init__(self, started: threading.Event, release: threading.Event):
        super().__init__()
        self.started, self.release = started, release

    def initialize(self, frame, box):
        self.started.set()
        self.release.wait(10)
        super().initialize(frame, box)


def made_trackers():
    made = []

    def factory(name, model_path=None, preset=None, device="auto", correction_policy=None):
        made.append(FakeTracker())
        return made[-1]

    return made, factory


def test_a_prepared_box_is_not_learnt_twice(qtbot, synthetic_video):
    made, factory = made_trackers()
    warmup = TrackerWarmup(factory)
    frame = open_video(synthetic_video).read(0)
    stages = []
    warmup.progress.connect(lambda text, expected: stages.append(text))
    try:
        warmup.prepare(CHOICE, frame, square_box(0), "frame 0")
        qtbot.waitUntil(lambda: not warmup.busy and made and made[0].initializations == 1, timeout=5000)
        tracker = warmup.factory("fake")  # what the tracking worker calls at Space
        assert len(made) == 1 and tracker.tracker is made[0]
        tracker.initialize(frame.copy(), square_box(0))  # the worker's initialisation: already done
        assert made[0].initializations == 1
        assert tracker.track(frame).box is not None  # the tracker is usable as ever
        qtbot.waitUntil(lambda: "Learning the target on frame 0…" in stages and stages[-1] == "", timeout=5000)
        # A second run makes a fresh tracker, which learns its box itself.
        again = warmup.factory("fake")
        again.initialize(frame, square_box(0))
        assert len(made) == 2 and made[1].initializations == 1
    finally:
        warmup.close()


def test_another_box_or_frame_is_learnt_by_the_run(qtbot, synthetic_video):
    made, factory = made_trackers()
    warmup = TrackerWarmup(factory)
    video = open_video(synthetic_video)
    try:
        warmup.prepare(CHOICE, video.read(0), square_box(0), "frame 0")
        qtbot.waitUntil(lambda: not warmup.busy and made and made[0].initializations == 1, timeout=5000)
        moved = Box(square_box(0).x + 2, square_box(0).y, square_box(0).w, square_box(0).h)
        warmup.factory("fake").initialize(video.read(0), moved)  # corrected before Space
        assert made[0].initializations == 2
        warmup.prepare(CHOICE, video.read(0), square_box(0), "frame 0")
        qtbot.waitUntil(lambda: not warmup.busy and len(made) == 2, timeout=5000)
        warmup.factory("fake").initialize(video.read(3), square_box(0))  # Space on another frame
        assert made[1].initializations == 2
    finally:
        warmup.close()


def test_the_worker_waits_for_the_preparation_it_needs(qtbot, synthetic_video):
    started, release = threading.Event(), threading.Event()
    made = []

    def factory(name, **kwargs):
        made.append(SlowFake(started, release))
        return made[-1]

    warmup = TrackerWarmup(factory)
    frame = open_video(synthetic_video).read(0)
    got = []
    try:
        warmup.prepare(CHOICE, frame, square_box(0), "frame 0")
        assert started.wait(5)  # learning the box now
        worker = threading.Thread(target=lambda: got.append(warmup.factory("fake")))
        worker.start()
        worker.join(0.2)
        assert worker.is_alive() and not got  # Space during the preparation: the run waits for it ...
        release.set()
        worker.join(5)
        got[0].initialize(frame, square_box(0))
        assert len(made) == 1 and made[0].initializations == 1  # ... and does not learn the box again
    finally:
        release.set()
        warmup.close()


def test_discarded_or_other_choices_are_not_handed_out(qtbot, synthetic_video):
    made, factory = made_trackers()
    warmup = TrackerWarmup(factory)
    frame = open_video(synthetic_video).read(0)
    try:
        warmup.prepare(CHOICE, frame, square_box(0), "frame 0")
        qtbot.waitUntil(lambda: not warmup.busy and bool(made), timeout=5000)
        warmup.discard()  # the tracker settings changed
        assert warmup.factory("fake").tracker is not made[0]
        warmup.prepare(CHOICE, frame, square_box(0), "frame 0")
        qtbot.waitUntil(lambda: not warmup.busy and len(made) == 3, timeout=5000)
        assert warmup.factory("other").tracker is not made[2]  # prepared for another tracker
    finally:
        warmup.close()


def test_the_warm_up_runs_on_a_small_frame():
    big = np.zeros((2160, 3840, 3), np.uint8)
    small = warm_frame(big)
    assert small.shape == (360, 640, 3)
    frame = np.zeros((120, 160, 3), np.uint8)
    assert warm_frame(frame) is frame


def test_the_window_learns_the_first_box_before_space(opened, qtbot):
    FakeTracker.instances.clear()
    window = opened()
    window.correction.apply_box(square_box(0))
    qtbot.waitUntil(lambda: not window.video.warmup.busy and bool(FakeTracker.instances)
                    and FakeTracker.instances[-1].initializations == 1, timeout=5000)
    prepared = FakeTracker.instances[-1]
    with qtbot.waitSignal(window.controller.runEnded, timeout=20000):
        assert window.correction.start_tracking(1, 5)
    assert prepared.initializations == 1 and prepared.calls == 5  # the run used it, without learning again
    assert window.document.box(window.current_object, 5) is not None


def test_the_warm_up_pays_the_one_time_costs_before_waiting_for_a_quiet_moment(qtbot, synthetic_video):
    """A tracker's warm_up() (tracing, lazy imports) runs as soon as it is loaded, not after the quiet delay: any
    first box needs it."""
    warmed = []

    class WarmableFake(FakeTracker):
        def warm_up(self):
            warmed.append(self)

    made = []

    def factory(name, model_path=None, preset=None, device="auto", correction_policy=None):
        made.append(WarmableFake())
        return made[-1]

    warmup = TrackerWarmup(factory)
    try:
        warmup.warm(CHOICE, open_video(synthetic_video).read(0))
        qtbot.waitUntil(lambda: bool(warmed), timeout=2000)  # well within the quiet delay (WARM_DELAY_S)
        assert warmed == made and made[0].initializations == 0
    finally:
        warmup.close()
