"""MOTChallenge: ``<seq>/gt/gt.txt`` (+ ``gt/labels.txt``, ``seqinfo.ini``, ``img1/000001.jpg...``), several
objects in one file.

gt.txt rows: ``frame,id,left,top,width,height,flag,class,visibility``; frames are 1-based; ``flag`` 1 means
"evaluated"; ``visibility`` is the visible fraction: 0 imports as occluded, and occluded frames export as 0.

- Origin (``origin``): the MOTChallenge devkit and TrackEval read the box corner 1-based (MATLAB pixels), the
  default here; CVAT and Datumaro write and read it 0-based (``origin=0``; ``atom export/import --origin 0``).
- Class column (``classes``): ``"mot"`` (default) writes MOTChallenge's class table, which MOT tools read
  whatever labels.txt says: a label naming a MOT class (pedestrian, person, car, bicycle, ...) gets its id, any
  other label 1 (pedestrian, the class MOTChallenge evaluates; TrackEval refuses tracker rows of any other
  class), and labels.txt lists that table so Datumaro reads the same. ``"labels"`` writes the index into
  labels.txt of our own labels (CVAT's and Datumaro's use). Import reads labels.txt when present, else the table.
- Only frames where an object is visible have rows, so out-of-view frames write no row. On import, the frames
  without a row from an object's first row on become out of view, up to the sequence's last frame when its
  length is known (seqinfo.ini or the video), else up to the object's last row. Numbers are written exactly and
  boxes are not clipped (MOTChallenge annotates the whole extent of a partly visible object).
- seqinfo.ini is written when the frame count, fps and size are known (TrackEval needs its seqLength).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ...atomic_files import atomic_files
from ...boxes import Box
from ...errors import FormatError
from ..document import Document
from ..frame_state import FrameState, Source
from ..video_ref import VideoRef
from ._common import (
    ParsedObject,
    apply_parsed,
    check_frame,
    checked_box,
    fail,
    format_number,
    lines_text,
    numbered_lines,
    parse_number,
    read_text,
    safe_name,
    select_objects,
    target_limit,
    write_frames,
)

NAME = "mot"
MOT_CLASSES = ("pedestrian", "person on vehicle", "car", "bicycle", "motorbike", "non motorized vehicle",
               "static person", "distractor", "occluder", "occluder on the ground", "occluder full", "reflection")


def mot_class(label: str) -> int:
    """The MOTChallenge class id of a label: its entry in the table (``person`` is a pedestrian), else 1."""
    name = " ".join(label.lower().replace("_", " ").split())
    if name in ("person", "people", "pedestrian"):
        return 1
    return MOT_CLASSES.index(name) + 1 if name in MOT_CLASSES else 1


def export(document: Document, obj_ids: Iterable[int] | None, out_dir: str | Path, *, video_source=None,
           origin: int = 1, name: str | None = None, classes: str = "mot") -> list[Path]:
    """Write ``out_dir/<name>/gt/gt.txt`` with every selected object, ``gt/labels.txt``, and ``seqinfo.ini``
    when the video's frame count, fps and size are known; returns ``[gt.txt]``. ``name`` defaults to the
    video's name. All files or none are written."""
    if origin not in (0, 1):
        raise ValueError(f"origin must be 0 or 1, got {origin!r}")
    if classes not in ("mot", "labels"):
        raise ValueError(f"classes must be 'mot' or 'labels', got {classes!r}")
    ids = select_objects(document, obj_ids)
    labels: list[str] = list(MOT_CLASSES) if classes == "mot" else []
    for obj_id in ids:
        label = " ".join(document.object(obj_id).label.split()) or "object"
        if classes == "labels" and label not in labels:
            labels.append(label)
    rows = []
    for obj_id in ids:
        label = " ".join(document.object(obj_id).label.split()) or "object"
        class_id = mot_class(label) if classes == "mot" else labels.index(label) + 1
        for frame, state in document.states(obj_id):
            box = state.exported_box
            if box is None or state.out_of_view:
                continue
            x, y, w, h = box.as_tuple()
            numbers = ",".join(format_number(v) for v in (x + origin, y + origin, w, h))
            rows.append((frame, obj_id, f"{frame + 1},{obj_id},{numbers},1,{class_id},"
                                        f"{0 if state.occluded else 1}"))
    seq = Path(out_dir) / safe_name(name or document.video.name or "sequence", "sequence")
    gt = seq / "gt"
    video = document.video
    with atomic_files(make_folders=True) as files:
        files.write_text(gt / "gt.txt", lines_text(row for _, _, row in sorted(rows)))
        files.write_text(gt / "labels.txt", lines_text(labels))
        if video.num_frames and video.fps and video.size:
            fps = format_number(round(video.fps, 3))
            files.write_text(seq / "seqinfo.ini",
                             f"[Sequence]\nname={seq.name}\nimDir=img1\nframeRate={fps}\nseqLength={video.num_frames}\n"
                             f"imWidth={video.width}\nimHeight={video.height}\nimExt=.jpg\n")
        if video_source is not None and video.num_frames:
            write_frames(video_source, files, seq / "img1", video.num_frames, lambda i: f"{i + 1:06d}.jpg")
    return [gt / "gt.txt"]


def _locate(path: Path) -> Path:
    """gt.txt itself, or the sequence folder holding ``gt/gt.txt`` (or ``gt.txt``)."""
    if path.is_file():
        return path
    for candidate in (path / "gt" / "gt.txt", path / "gt.txt"):
        if candidate.is_file():
            return candidate
    raise FormatError(f"{path}: no gt/gt.txt here")


def _read_seqinfo(path: Path) -> VideoRef:
    fields: dict[str, tuple[int, str]] = {}
    for lineno, line in numbered_lines(read_text(path), path, allow_blank=True):
        if line.startswith("[") or line.startswith(";") or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise fail(path, lineno, f"expected key=value, got {line[:60]!r}")
        fields[key.strip().lower()] = (lineno, value.strip())

    def number(key: str, integer: bool):
        if key not in fields:
            return None
        lineno, text = fields[key]
        value = parse_number(text, path, lineno, f"a number for {key}")
        if integer and (not value.is_integer() or value < 1):
            raise fail(path, lineno, f"{key}: expected a positive integer, got {text[:20]!r}")
        return int(value) if integer else value

    fps = number("framerate", False)
    return VideoRef(None, number("seqlength", True) or 0, fps if fps else None, number("imwidth", True),
                    number("imheight", True))


def _integral(token: str, name: Path, lineno: int, what: str) -> int:
    value = parse_number(token, name, lineno, what)
    if not value.is_integer() or abs(value) > 2**53:
        raise fail(name, lineno, f"expected {what} (an integer), got {token[:20]!r}")
    return int(value)


def parse(path: str | Path, *, limit: int = 0, source: Source = Source.MANUAL, origin: int = 1,
          gaps_out_of_view: bool = True) -> tuple[list[ParsedObject], VideoRef | None]:
    """Parse gt.txt (with labels.txt and seqinfo.ini when present): objects in id order and the video info.
    ``limit``: the video's frame count (0: unknown); with it (or seqinfo's seqLength), the frames after an
    object's last row are out of view too."""
    if origin not in (0, 1):
        raise ValueError(f"origin must be 0 or 1, got {origin!r}")
    gt = _locate(Path(path))
    labels = list(MOT_CLASSES)
    if (gt.parent / "labels.txt").is_file():
        labels = [line for _, line in numbered_lines(read_text(gt.parent / "labels.txt"), gt.parent / "labels.txt",
                                                     allow_blank=True)]
    seqinfo = gt.parent.parent / "seqinfo.ini"
    file_video = _read_seqinfo(seqinfo) if seqinfo.is_file() else None
    if not limit and file_video is not None:
        limit = file_video.num_frames
    shift = float(origin)
    objects: dict[int, ParsedObject] = {}
    for lineno, line in numbered_lines(read_text(gt), gt, allow_blank=True):
        fields = [f.strip() for f in line.split(",")]
        if not 6 <= len(fields) <= 10:
            raise fail(gt, lineno, f"expected 6 to 10 comma-separated fields "
                                   f"(frame,id,left,top,width,height,flag,class,visibility), got {len(fields)}")
        frame = _integral(fields[0], gt, lineno, "a frame number") - 1
        if frame < 0:
            raise fail(gt, lineno, f"frame numbers start at 1, got {frame + 1}")
        check_frame(frame, limit, gt, lineno)
        obj_id = _integral(fields[1], gt, lineno, "a track id")
        if obj_id < 0:
            raise fail(gt, lineno, f"track id {obj_id}: ground truth rows need a track id (is this det.txt?)")
        x, y, w, h = (parse_number(f, gt, lineno, "a number (left,top,width,height)") for f in fields[2:6])
        if w <= 0 or h <= 0:
            raise fail(gt, lineno, f"the box needs a positive width and height, got {w:g}x{h:g}")
        if len(fields) > 6:
            parse_number(fields[6], gt, lineno, "a number (flag or confidence)")
        class_id = _integral(fields[7], gt, lineno, "a class number") if len(fields) > 7 else 1
        visibility = parse_number(fields[8], gt, lineno, "a visibility", allow_nan=False) if len(fields) > 8 else 1
        obj = objects.get(obj_id)
        if obj is None:
            label = labels[class_id - 1] if 1 <= class_id <= len(labels) else f"class {class_id}"
            obj = objects[obj_id] = ParsedObject(label, preferred_id=obj_id)
        if frame in obj.states:
            raise fail(gt, lineno, f"track {obj_id} has a second row for frame {frame + 1}")
        box = checked_box(Box(x - shift, y - shift, w, h), gt, lineno)
        obj.states[frame] = FrameState(box, Source(source), occluded=visibility == 0)
    if gaps_out_of_view:
        for obj in objects.values():
            first, last = min(obj.states), max(limit - 1, max(obj.states))
            for frame in range(first + 1, last + 1):
                if frame not in obj.states:
                    obj.states[frame] = FrameState(out_of_view=True)
    return [objects[k] for k in sorted(objects)], file_video


def import_(path: str | Path, *, video: VideoRef | None = None, document: Document | None = None,
            source: Source = Source.MANUAL, origin: int = 1) -> Document:
    """Import every track of a MOT gt.txt (or a sequence folder) as objects, keeping their ids when free.
    ``origin``: 1 for MOTChallenge files (default), 0 for CVAT's and Datumaro's."""
    parsed, file_video = parse(path, limit=target_limit(video, document), source=source, origin=origin)
    return apply_parsed(parsed, video, document, file_video)
