"""The project's reference to its video: where it is and what shape it has (never the pixels)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
        """A short name for the video (the file or folder name without extension), '' when unknown."""
        return Path(self.path).stem if self.path else ""


def describe_source(source, path: str | None = None) -> VideoRef:
    """A VideoRef from a VideoSource-like object (duck-typed: ``num_frames`` or ``len()``, ``fps``, and
    ``width``/``height`` or ``size`` or the shape of frame 0), so that this module does not depend on how
    ``tracker_core.video`` names its attributes."""
    num_frames = getattr(source, "num_frames", None)
    if num_frames is None:
        try:
            num_frames = len(source)
        except TypeError:
            num_frames = 0
    fps = getattr(source, "fps", None)
    width, height = getattr(source, "width", None), getattr(source, "height", None)
    if width is None or height is None:
        size = getattr(source, "size", None)
        if isinstance(size, tuple) and len(size) == 2:
            width, height = size
    if (width is None or height is None) and num_frames and hasattr(source, "read"):
        frame = source.read(0)
        height, width = int(frame.shape[0]), int(frame.shape[1])
    return VideoRef(
        path=path,
        num_frames=int(num_frames or 0),
        fps=float(fps) if fps else None,
        width=int(width) if width is not None else None,
        height=int(height) if height is not None else None,
    )


def probe_video(path: str | Path) -> VideoRef:
    """Open a video file or frame folder just long enough to read its frame count, fps and size.

    Uses ``tracker_core.video.open_video`` (exact frame counts, image folders); raises its VideoError (an
    AtomError) for a file that cannot be read.
    """
    try:
        from ..video import open_video  # lazy: video decoding pulls in cv2
    except ModuleNotFoundError as exc:
        if exc.name != "tracker_core.video":
            raise
        return _probe_with_cv2(Path(path))
    source = open_video(str(path))
    try:
        return describe_source(source, str(Path(path).resolve()))
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _probe_with_cv2(path: Path) -> VideoRef:
    """Fallback probe while ``tracker_core.video`` is absent: a frame folder or whatever cv2 reports."""
    import cv2

    from ..errors import VideoError

    if path.is_dir():
        frames = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not frames:
            raise VideoError(f"{path}: no image frames in this folder")
        first = cv2.imread(str(frames[0]))
        if first is None:
            raise VideoError(f"{frames[0]}: cannot read this image")
        return VideoRef(str(path.resolve()), len(frames), None, int(first.shape[1]), int(first.shape[0]))
    capture = cv2.VideoCapture(str(path))
    try:
        if not path.is_file() or not capture.isOpened():
            raise VideoError(f"{path}: cannot open this video")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS)) or None
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) or None
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) or None
        return VideoRef(str(path.resolve()), max(count, 0), fps, width, height)
    finally:
        capture.release()
