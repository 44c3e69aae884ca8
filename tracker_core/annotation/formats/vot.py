"""VOT: ``<seq>/{sequence, groundtruth.txt, color/00000001.jpg...}`` plus ``list.txt`` naming the sequences.

Each groundtruth line is a region in 0-based pixels: an 8-value polygon ``x1,y1,...,x4,y4`` (rotated boxes,
VOT2015-2019) or a 4-value rectangle ``x,y,w,h`` (VOT2020 and later). A polygon imports as its axis-aligned
bounding box, the convention ``tracker_core.boxes.polygon_to_box`` states. NaN, empty regions and one-value
"special" lines (``0``) mark absent frames and import as out-of-view. The label is the ``label`` entry of the
``sequence`` file, else the sequence folder's name.

Export writes what the VOT toolkit reads (checked with vot-toolkit 0.9.0's ``vot.dataset.common.read_sequence``
and ``list_sequences``): the ``sequence`` metadata file (``channels.color=color/%08d.jpg``, fps, length, frame
size, our label), exact ``x,y,w,h`` rectangles clipped to the image when its size is known (absent:
``0,0,0,0``, an empty rectangle), the frames in ``color/`` with ``--frames``, and ``list.txt``. Occlusion is not
kept. The sequence is named ``name``, else the video's name, else the label; several objects get
``<name>-<label>``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from ...atomic_files import atomic_files
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
    lines_text,
    numbered_lines,
    one_line,
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


def _sequence_text(document: Document, label: str, length: int) -> str:
    video = document.video
    entries = {"channels.color": "color/%08d.jpg", "channel.default": "color", "format": "default",
               "fps": f"{round(video.fps)}" if video.fps else "30", "length": str(length), "label": one_line(label)}
    if video.size is not None:
        entries["width"], entries["height"] = str(video.width), str(video.height)
    return lines_text(f"{key}={value}" for key, value in entries.items())


def export(document: Document, obj_ids: Iterable[int] | None, out_dir: str | Path, *, missing: str = "error",
           video_source=None, name: str | None = None) -> list[Path]:
    """Write ``out_dir/<sequence>/{sequence, groundtruth.txt}`` per object and ``out_dir/list.txt``; returns the
    groundtruth files. All files or none are written."""
    ids = select_objects(document, obj_ids)
    length = sequence_length(document, ids)
    rows_by_obj = {obj_id: dense_rows(document, obj_id, length, missing) for obj_id in ids}
    files, used = [], []
    base = name or document.video.name
    with atomic_files(make_folders=True) as written:
        for obj_id in ids:
            label = document.object(obj_id).label
            if base and len(ids) > 1:
                seq = safe_name(f"{base}-{label}")
            else:
                seq = safe_name(base or label)
            unique, k = seq, 1
            while unique in used:
                k += 1
                unique = f"{seq}-{k}"
            used.append(unique)
            folder = Path(out_dir) / unique
            lines = []
            for row in rows_by_obj[obj_id]:
                box = None if row.out_of_view else row.box
                lines.append("0,0,0,0" if box is None else ",".join(format_number(v) for v in box.as_tuple()))
            files.append(written.write_text(folder / GROUNDTRUTH, lines_text(lines)))
            written.write_text(folder / "sequence", _sequence_text(document, label, length))
            if video_source is not None:
                write_frames(video_source, written, folder / "color", length, lambda i: f"{i + 1:08d}.jpg")
        written.write_text(Path(out_dir) / "list.txt", lines_text(used))
    return files


def _sequence_label(folder: Path) -> str:
    """The ``label`` entry of a ``sequence`` file (ours), else the folder's name."""
    path = folder / "sequence"
    if path.is_file():
        for _, line in numbered_lines(read_text(path), path, allow_blank=True):
            key, sep, value = line.partition("=")
            if sep and key.strip() == "label" and value.strip():
                return value.strip()
    return folder.name


def parse(path: str | Path, *, limit: int = 0, source: Source = Source.MANUAL, first_frame: int = 0
          ) -> ParsedObject:
    path = Path(path)
    gt = path / GROUNDTRUTH if path.is_dir() else path
    obj = ParsedObject(_sequence_label(gt.parent))
    for i, (lineno, line) in enumerate(numbered_lines(read_text(gt), gt)):
        frame = first_frame + i
        check_frame(frame, limit, gt, lineno)
        fields = split_fields(line)
        if len(fields) not in (1, 4, 8):
            raise fail(gt, lineno, f"expected 4 (x,y,w,h) or 8 (polygon) numbers, got {len(fields)} fields")
        values = [parse_number(f, gt, lineno, "a number", allow_nan=True) for f in fields]
        if len(values) == 1:
            box = None  # a special region (0: unknown, 1: initialise, 2: failure): no box here
        elif len(values) == 8:
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
