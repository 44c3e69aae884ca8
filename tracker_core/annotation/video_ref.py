"""The project's reference to its video: where it is and what shape it has (never the pixels)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Frame folders that benchmarks name generically inside the sequence's folder (OTB/LaSOT img, VOT color, MOT img1).
FRAME_FOLDER_NAMES = frozenset({"img", "imgs", "images", "color", "img1"})


@dataclass(frozen=True)
class VideoRef:
    """A video file or frame folder.

    path: as the user gave it or as resolved on load (absolute when it could be resolved); None when unknown.
    num_frames: the frame count; 0 when unknown (frame indices are then not bounded).
    fps: frames per second, None when unknown.
    width / height: frame size in pixels, None when unknown.
    """

    path: str | None = None
    num_frames: int = 0
    fps: float | None = None
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height), or None when unknown."""
        if self.width is None or self.height is None:
            return None
        return (self.width, self.height)

    @property
    def name(self) -> str:
        """A short name for the video, '' when unknown: the file name without extension, or the folder's name;
        for a frame folder with a benchmark's generic name (``Crossing/img``, ``bag/color``, ``MOT17-02/img1``)
        the name of the folder holding it, which is the sequence's name."""
        if not self.path:
            return ""
        path = Path(self.path)
        if path.name.lower() in FRAME_FOLDER_NAMES and path.parent.name:
            return path.parent.name
        return path.stem


def describe_source(source, path: str | None = None) -> VideoRef:
    """A VideoRef for an open ``tracker_core.video.VideoSource`` (its ``num_frames``, ``fps``, ``width``,
    ``height``); taken as an argument so that this module needs no video decoding."""
    return VideoRef(path=path, num_frames=int(source.num_frames), fps=float(source.fps) if source.fps else None,
                    width=int(source.width), height=int(source.height))


def probe_video(path: str | Path) -> VideoRef:
    """Open a video file or frame folder just long enough to read its frame count, fps and size.

    Uses ``tracker_core.video.open_video`` (exact frame counts, image folders); raises its VideoError (an
    AtomError) for a file that cannot be read.
    """
    from ..video import open_video  # lazy: video decoding pulls in cv2

    source = open_video(str(path))
    try:
        return describe_source(source, str(Path(path).resolve()))
    finally:
        source.close()
