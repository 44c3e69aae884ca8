"""MOTChallenge: ``<seq>/gt/gt.txt`` (+ ``gt/labels.txt``, ``seqinfo.ini``, ``img1/000001.jpg...``), several
objects in one file.

gt.txt rows: ``frame,id,left,top,width,height,flag,class,visibility``; frames are 1-based, boxes are 1-based
pixels like the MATLAB devkit (``one_based=False`` for files written 0-based, as CVAT/Datumaro do); ``flag`` 1
means "evaluated"; ``class`` indexes ``labels.txt`` (1-based; the MOT16/17 class table without one);
``visibility`` is the visible fraction: 0 imports as occluded, and occluded frames export as 0.

Only frames where an object is visible have rows, so out-of-view frames write no row, and on import the
frames missing between an object's first and last rows become out-of-view. Numbers are written exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

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


def export(document: Document, obj_ids: Iterable[int] | None, out_dir: str | Path, *, video_source=None,
           one_based: bool = True, name: str | None = None) -> list[Path]:
    """Write ``out_dir/<name>/gt/gt.txt`` with every selected object, ``gt/labels.txt``, and ``seqinfo.ini``
    when the video's frame count, fps and size are known; returns ``[gt.txt]``. ``name`` defaults to the
    video's name."""
    ids = select_objects(document, obj_ids)
    labels: list[str] = []
    for obj_id in ids:
        label = " ".join(document.object(obj_id).label.split()) or "object"
        if label not in labels:
            labels.append(label)
    shift = 1.0 if one_based else 0.0
    rows = []
    for obj_id in ids:
        class_id = labels.index(" ".join(document.object(obj_id).label.split()) or "object") + 1
        for frame, state in document.states(obj_id):
            if state.exported_box is None or state.out_of_view:
                continue
            x, y, w, h = state.exported_box.as_tuple()
            numbers = ",".join(format_number(v) for v in (x + shift, y + shift, w, h))
            rows.append((frame, obj_id, f"{frame + 1},{obj_id},{numbers},1,{class_id},"
                                        f"{0 if state.occluded else 1}"))
    seq = Path(out_dir) / safe_name(name or document.video.name or "sequence", "sequence")
    gt = seq / "gt"
    gt.mkdir(parents=True, exist_ok=True)
    (gt / "gt.txt").write_text("".join(row + "\n" for _, _, row in sorted(rows)), encoding="utf-8")
    (gt / "labels.txt").write_text("".join(label + "\n" for label in labels), encoding="utf-8")
    video = document.video
    if video.num_frames and video.fps and video.size:
        (seq / "seqinfo.ini").write_text(
            f"[Sequence]\nname={seq.name}\nimDir=img1\nframeRate={format_number(round(video.fps, 3))}\n"
            f"seqLength={video.num_frames}\nimWidth={video.width}\nimHeight={video.height}\nimExt=.jpg\n",
            encoding="utf-8")
    if video_source is not None and video.num_frames:
        write_frames(video_source, seq / "img1", video.num_frames, lambda i: f"{i + 1:06d}.jpg")
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


def parse(path: str | Path, *, limit: int = 0, source: Source = Source.MANUAL, one_based: bool = True,
          gaps_out_of_view: bool = True) -> tuple[list[ParsedObject], VideoRef | None]:
    """Parse gt.txt (with labels.txt and seqinfo.ini when present): objects in id order and the video info."""
    gt = _locate(Path(path))
    labels = list(MOT_CLASSES)
    if (gt.parent / "labels.txt").is_file():
        labels = [line for _, line in numbered_lines(read_text(gt.parent / "labels.txt"), gt.parent / "labels.txt",
                                                     allow_blank=True)]
    seqinfo = gt.parent.parent / "seqinfo.ini"
    file_video = _read_seqinfo(seqinfo) if seqinfo.is_file() else None
    if not limit and file_video is not None:
        limit = file_video.num_frames
    shift = 1.0 if one_based else 0.0
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
            frames = sorted(obj.states)
            for a, b in zip(frames, frames[1:]):
                for frame in range(a + 1, b):
                    obj.states[frame] = FrameState(out_of_view=True)
    return [objects[k] for k in sorted(objects)], file_video


def import_(path: str | Path, *, video: VideoRef | None = None, document: Document | None = None,
            source: Source = Source.MANUAL, one_based: bool = True) -> Document:
    """Import every track of a MOT gt.txt (or a sequence folder) as objects, keeping their ids when free."""
    parsed, file_video = parse(path, limit=target_limit(video, document), source=source, one_based=one_based)
    return apply_parsed(parsed, video, document, file_video)
