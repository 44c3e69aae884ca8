"""VOT: ``<seq>/groundtruth.txt`` (+ ``<seq>/color/00000001.jpg...``).

Each line is a region in 0-based pixels: an 8-value polygon ``x1,y1,...,x4,y4`` (rotated boxes, VOT2015-2019)
or a 4-value rectangle ``x,y,w,h`` (VOT2020 and later). A polygon imports as its axis-aligned bounding box, the
convention ``tracker_core.boxes.polygon_to_box`` states. NaN or empty regions mark absent frames and import as
out-of-view. Export writes exact ``x,y,w,h`` rectangles (absent: ``0,0,0,0``); occlusion is not kept. The label
is the sequence folder's name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from ...boxes import polygon_to_box
from ..document import Document
from ..frame_state import FrameState, Source
from ..video_ref import VideoRef
from ._common import (
    ParsedObject,
    apply_parsed,
    check_frame,
    dense_rows,
    fail,
    format_number,
    numbered_lines,
    parse_number,
    read_text,
    safe_name,
    select_objects,
    sequence_length,
    split_fields,
    target_limit,
    valid_box,
    write_frames,
)

NAME = "vot"
GROUNDTRUTH = "groundtruth.txt"


def export(document: Document, obj_ids: Iterable[int] | None, out_dir: str | Path, *, missing: str = "error",
           video_source=None) -> list[Path]:
    """Write ``out_dir/<label>/groundtruth.txt`` per object (``<label>-<k>`` when labels repeat)."""
    ids = select_objects(document, obj_ids)
    length = sequence_length(document, ids)
    rows_by_obj = {obj_id: dense_rows(document, obj_id, length, missing) for obj_id in ids}
    files, used = [], set()
    for obj_id in ids:
        base = safe_name(document.object(obj_id).label)
        name, k = base, 1
        while name in used:
            k += 1
            name = f"{base}-{k}"
        used.add(name)
        folder = Path(out_dir) / name
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for row in rows_by_obj[obj_id]:
            box = None if row.out_of_view else row.box
            lines.append("0,0,0,0" if box is None else ",".join(format_number(v) for v in box.as_tuple()))
        (folder / GROUNDTRUTH).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        files.append(folder / GROUNDTRUTH)
        if video_source is not None:
            write_frames(video_source, folder / "color", length, lambda i: f"{i + 1:08d}.jpg")
    return files


def parse(path: str | Path, *, limit: int = 0, source: Source = Source.MANUAL, first_frame: int = 0
          ) -> ParsedObject:
    path = Path(path)
    gt = path / GROUNDTRUTH if path.is_dir() else path
    obj = ParsedObject(gt.parent.name)
    for i, (lineno, line) in enumerate(numbered_lines(read_text(gt), gt)):
        frame = first_frame + i
        check_frame(frame, limit, gt, lineno)
        fields = split_fields(line)
        if len(fields) not in (4, 8):
            raise fail(gt, lineno, f"expected 4 (x,y,w,h) or 8 (polygon) numbers, got {len(fields)} fields")
        values = [parse_number(f, gt, lineno, "a number", allow_nan=True) for f in fields]
        if len(values) == 8:
            if any(math.isnan(v) for v in values):
                box = None
            else:
                poly = polygon_to_box(values)
                box = valid_box(poly.as_tuple(), False, gt, lineno)
        else:
            box = valid_box(tuple(values), False, gt, lineno)
        obj.states[frame] = (FrameState(box, Source(source)) if box is not None
                             else FrameState(out_of_view=True))
    return obj


def import_(path: str | Path, *, video: VideoRef | None = None, document: Document | None = None,
            source: Source = Source.MANUAL, first_frame: int = 0) -> Document:
    """Import a VOT sequence (its groundtruth.txt) as one object."""
    parsed = parse(path, limit=target_limit(video, document), source=source, first_frame=first_frame)
    return apply_parsed([parsed], video, document)
