"""What every format shares: reading text with line-numbered errors, parsed objects that are applied to a
document only after the whole input parsed, dense per-frame rows for export, file names, frame images."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ...atomic_files import AtomicFileSet
from ...boxes import Box, box_problem
from ...errors import AtomError, FormatError
from ..document import Document, TrackedObject
from ..frame_state import FrameState, Source
from ..video_ref import VideoRef


class IncompleteAnnotationError(AtomError):
    """A dense format needs a box or a flag in every frame, and some frames have neither."""


# ---- reading ----------------------------------------------------------------------------------------------

def fail(name: str | Path, line: int | None, problem: str) -> FormatError:
    """The one error shape of every parser: ``<file>, line <n>: <problem>``."""
    where = f"{name}, line {line}" if line is not None else f"{name}"
    return FormatError(f"{where}: {problem}")


def read_text(path: Path) -> str:
    """The file's text (UTF-8, BOM allowed), or a FormatError naming the file (and the line of bad bytes)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise fail(path, None, f"cannot read the file ({exc.strerror or exc})") from None
    return decode_text(data, path)


def decode_text(data: bytes, name: str | Path) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(name, data.count(b"\n", 0, exc.start) + 1, "not UTF-8 text") from None


def numbered_lines(text: str, name: str | Path, allow_blank: bool = False) -> list[tuple[int, str]]:
    """``(line number, stripped line)`` pairs; trailing blank lines are dropped. A blank line in the middle
    would shift every later frame, so it is an error unless ``allow_blank`` (then it is skipped)."""
    # split on \n only, so line numbers match what an editor shows (str.splitlines also splits on \x0c, \x1c..)
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    out = []
    for i, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            if allow_blank:
                continue
            raise fail(name, i, "empty line (every frame needs a line)")
        out.append((i, line))
    return out


_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")  # ASCII digits only
_NAN = {"nan", "+nan", "-nan"}
_SPLIT = re.compile(r"\s*,\s*|\s+")


def parse_number(token: str, name: str | Path, line: int, what: str = "a number", allow_nan: bool = False
                 ) -> float:
    """A strict decimal number (no ``inf``, ``1_000`` or non-ASCII digits that Python's float() accepts)."""
    if allow_nan and token.lower() in _NAN:
        return math.nan
    if not _NUMBER.match(token):
        raise fail(name, line, f"expected {what}, got {token[:40]!r}")
    value = float(token)
    if not math.isfinite(value):
        raise fail(name, line, f"the number {token[:40]!r} is too large")
    return value


def parse_int(token: str, name: str | Path, line: int, what: str = "an integer", minimum: int | None = None
              ) -> int:
    if not re.fullmatch(r"[+-]?[0-9]{1,18}", token):
        raise fail(name, line, f"expected {what}, got {token[:40]!r}")
    value = int(token)
    if minimum is not None and value < minimum:
        raise fail(name, line, f"expected {what} >= {minimum}, got {value}")
    return value


def split_fields(line: str) -> list[str]:
    """Fields separated by commas, tabs or spaces (OTB uses all three; LaSOT and GOT-10k use commas)."""
    return _SPLIT.split(line.strip())


def parse_box_line(line: str, name: str | Path, lineno: int) -> tuple[float, float, float, float]:
    """Four numbers ``x, y, w, h`` (NaN allowed: some datasets mark absent frames that way)."""
    fields = split_fields(line)
    if len(fields) != 4:
        raise fail(name, lineno, f"expected 4 numbers x,y,w,h, got {len(fields)} fields: {line[:60]!r}")
    return tuple(parse_number(f, name, lineno, "a number (x,y,w,h)", allow_nan=True) for f in fields)


def valid_box(values: tuple[float, float, float, float], one_based: bool, name: str | Path, line: int
              ) -> Box | None:
    """The box in our convention, or None for absent-frame markers (NaN, zero or negative width/height).
    A box beyond any image (``boxes.MAX_COORDINATE``) is damage: a FormatError naming the file and line."""
    x, y, w, h = values
    if not all(math.isfinite(v) for v in values) or w <= 0 or h <= 0:
        return None
    return checked_box(Box(x - 1.0, y - 1.0, w, h) if one_based else Box(x, y, w, h), name, line)


def checked_box(box: Box, name: str | Path, line: int | None) -> Box:
    """``box`` if usable, else a FormatError naming the file and line (``boxes.box_problem``)."""
    problem = box_problem(box)
    if problem is not None:
        raise fail(name, line, problem)
    return box


# Without a video to bound them, frame numbers above this are taken as damage, not as a 4-day video.
MAX_FRAMES_WITHOUT_VIDEO = 10_000_000


def check_frame(frame: int, limit: int, name: str | Path, line: int) -> None:
    """Frames past the target video's end mean the file belongs to another video."""
    bound = limit or MAX_FRAMES_WITHOUT_VIDEO
    if frame >= bound:
        raise fail(name, line, f"frame {frame} is past the video's last frame ({bound - 1}); "
                               "is this the annotation of another video?")


# ---- parsed data, applied only after everything parsed ---------------------------------------------------

@dataclass
class ParsedObject:
    """One object read from a file, not yet in any document."""

    label: str
    states: dict[int, FrameState] = field(default_factory=dict)
    description: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    preferred_id: int | None = None  # the file's own id (MOT, CVAT), kept when free


def target_limit(video: VideoRef | None, document: Document | None) -> int:
    """The frame count imported frames must stay under (0: unknown, no limit)."""
    if video is not None and video.num_frames:
        return video.num_frames
    if document is not None:
        return document.num_frames
    return 0


def apply_parsed(objects: list[ParsedObject], video: VideoRef | None = None, document: Document | None = None,
                 file_video: VideoRef | None = None) -> Document:
    """Put parsed objects into ``document`` (or a new one) in one batch of events.

    The video reference: ``video`` if given, else the document's, else what the file said (``file_video``),
    with the frame count at least covering the imported frames.
    """
    if document is None:
        base = video or file_video or VideoRef()
        if not base.num_frames:
            last = max((max(o.states) for o in objects if o.states), default=-1)
            base = VideoRef(base.path, last + 1, base.fps, base.width, base.height)
        document = Document(base)
    with document.batch():
        if video is not None and video != document.video:
            document.set_video(video)
        filled = _fill_unknowns(document.video, file_video)
        if filled != document.video:
            document.set_video(filled)
        for parsed in objects:
            obj_id = parsed.preferred_id
            if obj_id is None or obj_id < 0 or obj_id in document:
                obj_id = max(document.object_ids, default=0) + 1
            document.insert_object(TrackedObject(obj_id, parsed.label, parsed.description,
                                                 dict(parsed.attributes), dict(parsed.states)))
    return document


def _fill_unknowns(video: VideoRef, known: VideoRef | None) -> VideoRef:
    """``video`` with the fields it does not know (0 frames, no fps, no size) taken from ``known``."""
    if known is None:
        return video
    return VideoRef(
        video.path or known.path,
        video.num_frames or known.num_frames,
        video.fps or known.fps,
        video.width if video.size is not None else known.width,
        video.height if video.size is not None else known.height,
    )


# ---- writing ----------------------------------------------------------------------------------------------

def select_objects(document: Document, obj_ids: Iterable[int] | None) -> list[int]:
    """The objects to export, in document order unless given; KeyError names an unknown id."""
    if obj_ids is None:
        return document.object_ids
    ids = list(obj_ids)
    for obj_id in ids:
        document.object(obj_id)
    return ids


def sequence_length(document: Document, obj_ids: list[int]) -> int:
    """Rows a dense export writes: the video's frame count, or up to the last annotated frame if unknown."""
    if document.num_frames:
        return document.num_frames
    return max((document.frames(o)[-1] + 1 for o in obj_ids if document.frames(o)), default=0)


@dataclass(frozen=True)
class DenseRow:
    """One frame of a dense export. ``box`` is clipped to the image when its size is known; ``cut``: the box
    reached past the image's edge (GOT-10k's cut_by_image)."""

    box: Box | None
    occluded: bool
    out_of_view: bool
    cut: bool = False


def inside_image(box: Box, size: tuple[int, int] | None) -> tuple[Box | None, bool]:
    """The part of ``box`` inside a ``size`` (width, height) image and whether the edge cut it; (None, True) when
    nothing of it is inside. With no size known the box is kept as it is."""
    if size is None:
        return box, False
    width, height = size
    cut = box.x < 0 or box.y < 0 or box.x + box.w > width or box.y + box.h > height
    # Clipped only when the edge cuts it: clipping goes through the corners, and x + w - x is not always w in
    # floating point (a tracked box inside the image would be written inexactly and labelled cut).
    inside = box.clipped(width, height) if cut else box
    if inside.w <= 0 or inside.h <= 0:
        return None, True
    return inside, cut


def integer_box(box: Box, size: tuple[int, int] | None) -> tuple[int, int, int, int]:
    """The 1-based integer ``x,y,w,h`` of the integer formats (LaSOT, OTB): the corner rounded, width and height
    rounded but at least 1 (a 0 would read as an absent frame), and, with the image size known, inside it."""
    x, y = round(box.x), round(box.y)
    w, h = max(1, round(box.w)), max(1, round(box.h))
    if size is not None:
        w, h = min(w, size[0]), min(h, size[1])
        x, y = min(max(x, 0), size[0] - w), min(max(y, 0), size[1] - h)
    return x + 1, y + 1, w, h


def describe_frames(frames: list[int], limit: int = 8) -> str:
    """``3-7, 12, 20-25`` (first ``limit`` runs)."""
    runs: list[list[int]] = []
    for f in frames:
        if runs and f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit])
    return text + (", ..." if len(runs) > limit else "")


def dense_rows(document: Document, obj_id: int, length: int, missing: str = "error") -> list[DenseRow]:
    """One row per frame ``0..length-1``. A frame with neither box nor flag is "missing": an
    IncompleteAnnotationError (``missing="error"``) or written as out of view (``missing="absent"``). A stale
    box (``FrameState.stale``) is no box here: its frame is missing unless flagged. Boxes are clipped to the
    image when its size is known, and a box wholly outside it makes the frame out of view: every dense format
    (LaSOT, GOT-10k, OTB, TrackingNet, VOT) annotates the visible part of the object."""
    if missing not in ("error", "absent"):
        raise ValueError(f"missing must be 'error' or 'absent', got {missing!r}")
    states = document.object(obj_id).states
    size = document.video.size
    rows, absent, stale = [], [], []
    for frame in range(length):
        state = states.get(frame)
        box = None if state is None else state.exported_box
        if state is None or (box is None and not state.flagged):
            absent.append(frame)
            if state is not None and state.stale:
                stale.append(frame)
            rows.append(DenseRow(None, False, True))
        elif box is None:
            rows.append(DenseRow(None, state.occluded, state.out_of_view))
        else:
            inside, cut = inside_image(box, size)
            rows.append(DenseRow(inside, state.occluded, state.out_of_view or inside is None, cut))
    if absent and missing == "error":
        obj = document.object(obj_id)
        why = ""
        if stale:
            why = (f"; {len(stale)} of them ({describe_frames(stale)}) hold stale boxes, tracked before a "
                   f"correction: re-track them or keep them (the app's Keep stale boxes, atom export --keep-stale)")
        raise IncompleteAnnotationError(
            f"object {obj_id} ({obj.label}) has neither a box nor a flag in {len(absent)} of {length} frames "
            f"({describe_frames(absent)}){why}; annotate them, or export them as absent (missing='absent')")
    return rows


def safe_name(text: str, fallback: str = "object") -> str:
    """A file-system-safe name: letters, digits, ``_``, ``.`` and ``-``; others become ``_``."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text.strip()).strip("._")
    return name or fallback


def one_line(text: str) -> str:
    """Text for a one-line field (nlp.txt, meta_info.ini): newlines become spaces."""
    return " ".join(text.split())


def format_number(value: float) -> str:
    """Shortest exact text for a float (integers without ``.0``), so float formats round-trip exactly."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def write_frames(video_source, files: AtomicFileSet, folder: Path, count: int, name: Callable[[int], str],
                 quality: int = 95) -> None:
    """Write frames ``0..count-1`` of a VideoSource-like object (``read(i)`` -> RGB uint8 HxWx3) as JPEGs, into
    the export's set of files (they appear with the annotation files, or not at all)."""
    import cv2
    import numpy as np

    for i in range(count):
        frame = np.asarray(video_source.read(i))
        if frame.ndim == 3 and frame.shape[2] == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        target = folder / name(i)
        if not cv2.imwrite(str(files.path(target)), frame, [cv2.IMWRITE_JPEG_QUALITY, quality]):
            raise OSError(f"{target}: cannot write this image")


def lines_text(lines: Iterable[str]) -> str:
    """Lines, each ending in a newline (readers that strip the last character of a line need it)."""
    return "".join(line + "\n" for line in lines)


def parse_box_file(path: Path, limit: int, first_frame: int, one_based: bool) -> list[tuple[int, Box | None]]:
    """A box-per-line file (OTB, TrackingNet): ``(frame, box or None for an absent-frame marker)``."""
    out = []
    for i, (lineno, line) in enumerate(numbered_lines(read_text(path), path)):
        frame = first_frame + i
        check_frame(frame, limit, path, lineno)
        out.append((frame, valid_box(parse_box_line(line, path, lineno), one_based, path, lineno)))
    return out


def box_states(boxes: list[tuple[int, Box | None]], source) -> dict[int, FrameState]:
    """States from :func:`parse_box_file`: absent markers become out-of-view frames."""
    return {frame: FrameState(box, Source(source)) if box is not None else FrameState(out_of_view=True)
            for frame, box in boxes}
