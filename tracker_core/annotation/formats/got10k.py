"""GOT-10k: ``<sequence>/{groundtruth.txt, absence.label, cover.label, cut_by_image.label, meta_info.ini,
00000001.jpg...}`` plus ``list.txt`` naming the sequences.

- groundtruth.txt: ``x,y,w,h`` per frame, 1-based, four decimals (the test split has only the first line).
- absence.label: 0/1 per line (1 = absent) -> our ``out_of_view``.
- cover.label: 0..8 per line, the visible fraction in eighths; 0 on a present frame -> our ``occluded``.
  Export writes 8 for visible frames and 0 for occluded or absent ones (finer cover bins are not kept).
- cut_by_image.label: 0/1 per line: 1 where the box reached past the image's edge.
- meta_info.ini: ``[METAINFO]`` then ``key: value`` lines in a fixed order (loaders index them by line number):
  url, begin, end, anno_fps, object_class, motion_class, major_class, root_class, motion_adverb, resolution.
  ``object_class`` is our label; the other keys round-trip through the object's attributes.

Export rule for boxes: clipped to the image (``_common.dense_rows``; GOT-10k annotates the visible part and
cut_by_image says where the edge cut it), 1-based, four decimals, a width and height of at least 0.0001 so that a
sub-pixel box stays a box. The frame size is required: without it there is no resolution to write, and the
got10k toolkit cannot read meta_info.ini (checked with got10k 0.1.3's ``GOT10k(root, subset, return_meta=True)``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ...atomic_files import atomic_files
from ...boxes import Box
from ...errors import AtomError
from ..document import Document
from ..frame_state import FrameState, Source
from ..video_ref import VideoRef
from ._common import (
    ParsedObject,
    apply_parsed,
    check_frame,
    dense_rows,
    fail,
    lines_text,
    numbered_lines,
    one_line,
    parse_box_line,
    parse_int,
    read_text,
    safe_name,
    select_objects,
    sequence_length,
    target_limit,
    valid_box,
    write_frames,
)

NAME = "got10k"
GROUNDTRUTH = "groundtruth.txt"
META_KEYS = ("url", "begin", "end", "anno_fps", "object_class", "motion_class", "major_class", "root_class",
             "motion_adverb", "resolution")


def _meta_text(document: Document, obj_id: int) -> str:
    obj = document.object(obj_id)
    values = {key: one_line(obj.attributes.get(key, "")) for key in META_KEYS}
    values["object_class"] = one_line(obj.label)
    if not values["anno_fps"] and document.video.fps:
        values["anno_fps"] = f"{document.video.fps:g}Hz"
    values["resolution"] = f"({document.video.width}, {document.video.height})"
    # every line ends with a newline: loaders strip the last character of each line
    return "[METAINFO]\n" + lines_text(f"{key}: {values[key]}" for key in META_KEYS)


def _box_line(box: Box | None) -> str:
    """1-based, four decimals; a width or height that would print as 0.0000 (absent) is written 0.0001."""
    if box is None:
        return "0.0000,0.0000,0.0000,0.0000"
    return f"{box.x + 1:.4f},{box.y + 1:.4f},{max(box.w, 1e-4):.4f},{max(box.h, 1e-4):.4f}"


def export(document: Document, obj_ids: Iterable[int] | None, out_dir: str | Path, *, missing: str = "error",
           video_source=None, first_index: int = 1, name: str | None = None) -> list[Path]:
    """Write one GOT-10k sequence per object under ``out_dir/<label>-<n>`` (``name``: one object's folder name)
    and a ``list.txt``; returns the sequence folders. ``video_source``: frames written as ``00000001.jpg...``
    beside the labels. The frame size must be known (meta_info's resolution, cut_by_image.label). All files or
    none are written."""
    ids = select_objects(document, obj_ids)
    if name is not None and len(ids) != 1:
        raise AtomError(f"a sequence name names one GOT-10k sequence, but {len(ids)} objects are exported")
    if document.video.size is None:
        raise AtomError("GOT-10k needs the frame size (meta_info.ini's resolution, cut_by_image.label), and this "
                        "project does not know it: give it its video (atom import --video, or open it in the app)")
    length = sequence_length(document, ids)
    rows_by_obj = {obj_id: dense_rows(document, obj_id, length, missing) for obj_id in ids}
    counters: dict[str, int] = {}
    folders = []
    with atomic_files(make_folders=True) as files:
        for obj_id in ids:
            label = safe_name(document.object(obj_id).label)
            n = counters.get(label, first_index)
            counters[label] = n + 1
            folder = Path(out_dir) / (safe_name(name) if name is not None else f"{label}-{n}")
            rows = rows_by_obj[obj_id]
            files.write_text(folder / "groundtruth.txt", lines_text(_box_line(row.box) for row in rows))
            files.write_text(folder / "absence.label", lines_text("1" if r.out_of_view else "0" for r in rows))
            files.write_text(folder / "cover.label", lines_text(
                "0" if r.out_of_view or r.occluded or r.box is None else "8" for r in rows))
            files.write_text(folder / "cut_by_image.label", lines_text("1" if r.cut else "0" for r in rows))
            files.write_text(folder / "meta_info.ini", _meta_text(document, obj_id))
            if video_source is not None:
                write_frames(video_source, files, folder, length, lambda i: f"{i + 1:08d}.jpg")
            folders.append(folder)
        files.write_text(Path(out_dir) / "list.txt", lines_text(f.name for f in folders))
    return folders


def _read_labels(path: Path, expected: int, maximum: int) -> list[int]:
    """One integer 0..maximum per line, as many lines as the groundtruth."""
    lines = numbered_lines(read_text(path), path)
    values = [parse_int(line, path, lineno, f"an integer 0..{maximum}", minimum=0) for lineno, line in lines]
    for (lineno, _), value in zip(lines, values):
        if value > maximum:
            raise fail(path, lineno, f"expected an integer 0..{maximum}, got {value}")
    if len(values) > expected:
        raise fail(path, lines[expected][0], f"more lines than {GROUNDTRUTH} ({expected})")
    if len(values) < expected:
        raise fail(path, len(values) + 1, f"{len(values)} lines, but {GROUNDTRUTH} has {expected}")
    return values


def _read_meta(path: Path) -> dict[str, tuple[int, str]]:
    """``key -> (line number, value)``."""
    meta: dict[str, tuple[int, str]] = {}
    for lineno, line in numbered_lines(read_text(path), path, allow_blank=True):
        if lineno == 1 and line.upper() == "[METAINFO]":
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise fail(path, lineno, f"expected 'key: value', got {line[:60]!r}")
        meta[key.strip()] = (lineno, value.strip())
    return meta


def parse(path: str | Path, *, limit: int = 0, source: Source = Source.MANUAL, first_frame: int = 0
          ) -> tuple[ParsedObject, tuple[int, int] | None]:
    """Parse a GOT-10k sequence folder (or its groundtruth.txt): the object and the meta_info resolution."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    gt_path = path if path.is_file() else folder / GROUNDTRUTH
    lines = numbered_lines(read_text(gt_path), gt_path)
    absence = [0] * len(lines)
    cover = [8] * len(lines)
    if (folder / "absence.label").is_file():
        absence = _read_labels(folder / "absence.label", len(lines), 1)
    if (folder / "cover.label").is_file():
        cover = _read_labels(folder / "cover.label", len(lines), 8)
    meta_path = folder / "meta_info.ini"
    meta = _read_meta(meta_path) if meta_path.is_file() else {}
    resolution = None
    if meta.get("resolution", (0, ""))[1]:
        lineno, text = meta["resolution"]
        match = re.fullmatch(r"\(\s*([0-9]{1,6})\s*,\s*([0-9]{1,6})\s*\)", text)
        if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
            raise fail(meta_path, lineno, f"resolution: expected (width, height), got {text[:40]!r}")
        resolution = (int(match.group(1)), int(match.group(2)))
    label = meta.get("object_class", (0, ""))[1] or folder.name
    attributes = {k: v for k, (_, v) in meta.items() if k not in ("object_class", "resolution") and v}
    obj = ParsedObject(label, attributes=attributes)
    for i, (lineno, line) in enumerate(lines):
        frame = first_frame + i
        check_frame(frame, limit, gt_path, lineno)
        box = valid_box(parse_box_line(line, gt_path, lineno), True, gt_path, lineno)
        # a frame without a box is absent, unless it is marked as covered (occluded): then it stays occluded
        out_of_view = absence[i] == 1 or (box is None and cover[i] != 0)
        occluded = cover[i] == 0 and not out_of_view
        obj.states[frame] = FrameState(box, None if box is None else Source(source), None, None, occluded,
                                       out_of_view)
    return obj, resolution


def import_(path: str | Path, *, video: VideoRef | None = None, document: Document | None = None,
            source: Source = Source.MANUAL, first_frame: int = 0) -> Document:
    """Import one GOT-10k sequence as one object into ``document`` (or a new document)."""
    parsed, resolution = parse(path, limit=target_limit(video, document), source=source, first_frame=first_frame)
    file_video = VideoRef(None, 0, None, *resolution) if resolution else None
    return apply_parsed([parsed], video, document, file_video)
