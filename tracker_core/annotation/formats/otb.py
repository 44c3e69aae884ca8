"""OTB: ``<Seq>/groundtruth_rect.txt`` (``groundtruth_rect.1.txt``, ``.2.txt`` for several targets) and
``<Seq>/img/0001.jpg...``.

Boxes are ``x,y,w,h`` per frame, 1-based (MATLAB), separated by commas, tabs or spaces; we write integers with
commas (the evaluation toolkits read integers; pass ``delimiter="\\t"`` for tabs), with LaSOT's rule: clipped
to the image when its size is known, width and height at least 1 (``_common.integer_box``). OTB has no flags: an absent
frame is written ``0,0,0,0`` and such lines (or NaN) import as out-of-view frames; occlusion is not kept. The
label is the sequence folder's name. Some sequences start late (BlurCar1 at frame 247): pass ``first_frame``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ...atomic_files import atomic_files
from ...errors import FormatError
from ..document import Document
from ..frame_state import Source
from ..video_ref import VideoRef
from ._common import (
    ParsedObject,
    apply_parsed,
    box_states,
    dense_rows,
    integer_box,
    lines_text,
    parse_box_file,
    safe_name,
    select_objects,
    sequence_length,
    target_limit,
    write_frames,
)

NAME = "otb"
_GT_NAME = re.compile(r"groundtruth_rect(?:\.(\d+))?\.txt\Z")


def export(document: Document, obj_ids: Iterable[int] | None, out_dir: str | Path, *, missing: str = "error",
           video_source=None, name: str | None = None, delimiter: str = ",") -> list[Path]:
    """Write ``out_dir/<name>/groundtruth_rect.txt`` (one object) or ``groundtruth_rect.<k>.txt`` (several, k
    from 1 in order); returns the files. ``name`` defaults to the video's name, else the first label. All files
    or none are written."""
    ids = select_objects(document, obj_ids)
    length = sequence_length(document, ids)
    rows_by_obj = {obj_id: dense_rows(document, obj_id, length, missing) for obj_id in ids}
    if name is None:
        name = document.video.name or (document.object(ids[0]).label if ids else "sequence")
    folder = Path(out_dir) / safe_name(name, "sequence")
    files = []
    with atomic_files(make_folders=True) as written:
        for k, obj_id in enumerate(ids, start=1):
            lines = []
            for row in rows_by_obj[obj_id]:
                if row.box is None or row.out_of_view:
                    lines.append(delimiter.join("0000"))
                else:
                    lines.append(delimiter.join(str(v) for v in integer_box(row.box, document.video.size)))
            filename = "groundtruth_rect.txt" if len(ids) == 1 else f"groundtruth_rect.{k}.txt"
            files.append(written.write_text(folder / filename, lines_text(lines)))
        if video_source is not None:
            digits = max(4, len(str(length)))
            write_frames(video_source, written, folder / "img", length, lambda i: f"{i + 1:0{digits}d}.jpg")
    return files


def groundtruth_files(path: Path) -> list[Path]:
    """The groundtruth files of a sequence folder, target 1 first (``groundtruth_rect.txt`` counts as 1)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FormatError(f"{path}: no such file or folder")
    found = [(int(m.group(1) or 1), p.name, p) for p in path.iterdir() if (m := _GT_NAME.match(p.name))]
    if not found:
        raise FormatError(f"{path}: no groundtruth_rect*.txt in this folder")
    return [p for _, _, p in sorted(found)]


def parse(path: str | Path, *, limit: int = 0, source: Source = Source.MANUAL, first_frame: int = 0
          ) -> list[ParsedObject]:
    """One object per groundtruth file of an OTB sequence folder (or one given file)."""
    path = Path(path)
    label = (path.parent if path.is_file() else path).name
    return [ParsedObject(label, box_states(parse_box_file(f, limit, first_frame, one_based=True), source))
            for f in groundtruth_files(path)]


def import_(path: str | Path, *, video: VideoRef | None = None, document: Document | None = None,
            source: Source = Source.MANUAL, first_frame: int = 0) -> Document:
    """Import an OTB sequence (every target) or one groundtruth file into ``document`` (or a new one)."""
    parsed = parse(path, limit=target_limit(video, document), source=source, first_frame=first_frame)
    return apply_parsed(parsed, video, document)
