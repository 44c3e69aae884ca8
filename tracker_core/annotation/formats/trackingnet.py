"""TrackingNet: ``<chunk>/anno/<video>.txt`` and ``<chunk>/frames/<video>/0.jpg, 1.jpg...``.

The annotation holds ``x,y,w,h`` per frame, comma-separated floats in 0-based pixels (the boxes of YouTube-BB,
drawn as-is by the TrackingNet devkit); the TEST chunk has only the first line. Frame files are named from 0 and
sort numerically. There are no flags: absent frames are written ``0,0,0,0`` and such lines import as
out-of-view frames. Floats are written exactly (shortest round-trip text), clipped to the image when its size is
known (``_common.dense_rows``). The label is the video name.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ...atomic_files import atomic_files
from ..document import Document
from ..frame_state import Source
from ..video_ref import VideoRef
from ._common import (
    ParsedObject,
    apply_parsed,
    box_states,
    dense_rows,
    format_number,
    lines_text,
    parse_box_file,
    safe_name,
    select_objects,
    sequence_length,
    target_limit,
    write_frames,
)

NAME = "trackingnet"


def export(document: Document, obj_ids: Iterable[int] | None, out_dir: str | Path, *, missing: str = "error",
           video_source=None, name: str | None = None) -> list[Path]:
    """Write ``out_dir/anno/<name>.txt`` per object (``<name>_<k>`` when several) and, with a video source,
    ``out_dir/frames/<name>/0.jpg...``; returns the annotation files. ``name`` defaults to the video's name,
    else the object's label. All files or none are written."""
    ids = select_objects(document, obj_ids)
    length = sequence_length(document, ids)
    rows_by_obj = {obj_id: dense_rows(document, obj_id, length, missing) for obj_id in ids}
    anno = Path(out_dir) / "anno"
    files = []
    with atomic_files(make_folders=True) as written:
        for k, obj_id in enumerate(ids, start=1):
            base = safe_name(name or document.video.name or document.object(obj_id).label, "video")
            stem = base if len(ids) == 1 else f"{base}_{k}"
            lines = []
            for row in rows_by_obj[obj_id]:
                box = None if row.out_of_view else row.box
                lines.append("0,0,0,0" if box is None else ",".join(format_number(v) for v in box.as_tuple()))
            files.append(written.write_text(anno / f"{stem}.txt", lines_text(lines)))
            if video_source is not None:
                write_frames(video_source, written, Path(out_dir) / "frames" / stem, length, lambda i: f"{i}.jpg")
    return files


def parse(path: str | Path, *, limit: int = 0, source: Source = Source.MANUAL, first_frame: int = 0
          ) -> ParsedObject:
    path = Path(path)
    return ParsedObject(path.stem, box_states(parse_box_file(path, limit, first_frame, one_based=False), source))


def import_(path: str | Path, *, video: VideoRef | None = None, document: Document | None = None,
            source: Source = Source.MANUAL, first_frame: int = 0) -> Document:
    """Import one TrackingNet annotation file (``anno/<video>.txt``) as one object."""
    parsed = parse(path, limit=target_limit(video, document), source=source, first_frame=first_frame)
    return apply_parsed([parsed], video, document)
