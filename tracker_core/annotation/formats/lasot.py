"""LaSOT: ``<class>/<class>-<n>/{groundtruth.txt, full_occlusion.txt, out_of_view.txt, nlp.txt, img/}``.

- groundtruth.txt: one ``x,y,w,h`` line per frame, integers, 1-based (LaSOT toolkit #14).
- full_occlusion.txt, out_of_view.txt: a single line of comma-separated 0/1 values, one per frame.
- nlp.txt: one sentence describing the target (our object's description).
- img/00000001.jpg...: the frames (optional here).

Absent frames still have a groundtruth line (``0,0,0,0`` or a stale box): the flags are authoritative. On import a
line without a usable box and without a flag becomes an out-of-view frame; a stale box on a flagged frame is
kept (so that re-exporting reproduces the line).

Export rule for boxes (``_common.integer_box``): the box is clipped to the image when its size is known (LaSOT
annotates the visible part; a box wholly outside is written as an absent, out-of-view frame), then written as
1-based integers, the corner rounded, the width and height rounded but at least 1: a sub-pixel box stays a box
(``0`` would read as absent). Boxes the tracker left as stale (``FrameState.stale``) are not written.
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
    inside_image,
    integer_box,
    lines_text,
    numbered_lines,
    one_line,
    parse_box_line,
    read_text,
    safe_name,
    select_objects,
    sequence_length,
    target_limit,
    valid_box,
    write_frames,
)

NAME = "lasot"
GROUNDTRUTH = "groundtruth.txt"
FLAG_FILES = {"occluded": "full_occlusion.txt", "out_of_view": "out_of_view.txt"}


def export(document: Document, obj_ids: Iterable[int] | None, out_dir: str | Path, *, missing: str = "error",
           video_source=None, first_index: int = 1, name: str | None = None) -> list[Path]:
    """Write one LaSOT sequence per object under ``out_dir/<class>/<class>-<n>``; returns the sequence folders.

    ``<class>`` is the object's label (made file-system safe); objects sharing a label are numbered from
    ``first_index``. ``name`` replaces ``<class>-<n>`` (one object only). ``missing``: see
    :func:`._common.dense_rows`. ``video_source``: a VideoSource-like object whose frames are written to
    ``img/00000001.jpg...``. Every file of the export is written, or none (a full disk leaves nothing).
    """
    ids = select_objects(document, obj_ids)
    if name is not None and len(ids) != 1:
        raise AtomError(f"a sequence name names one LaSOT sequence, but {len(ids)} objects are exported")
    length = sequence_length(document, ids)
    rows_by_obj = {obj_id: dense_rows(document, obj_id, length, missing) for obj_id in ids}  # fail before writing
    counters: dict[str, int] = {}
    folders = []
    with atomic_files(make_folders=True) as files:
        for obj_id in ids:
            obj = document.object(obj_id)
            cls = safe_name(obj.label)
            n = counters.get(cls, first_index)
            counters[cls] = n + 1
            folder = Path(out_dir) / cls / (safe_name(name) if name is not None else f"{cls}-{n}")
            rows = rows_by_obj[obj_id]
            files.write_text(folder / GROUNDTRUTH,
                             lines_text(groundtruth_line(row.box, document.video.size) for row in rows))
            files.write_text(folder / FLAG_FILES["occluded"], ",".join("1" if r.occluded else "0" for r in rows)
                             + "\n")
            files.write_text(folder / FLAG_FILES["out_of_view"],
                             ",".join("1" if r.out_of_view else "0" for r in rows) + "\n")
            files.write_text(folder / "nlp.txt", one_line(obj.description) + "\n")
            if video_source is not None:
                write_frames(video_source, files, folder / "img", length, lambda i: f"{i + 1:08d}.jpg")
            folders.append(folder)
    return folders


def groundtruth_line(box: Box | None, size: tuple[int, int] | None) -> str:
    """One groundtruth.txt line: ``0,0,0,0`` for no box, else the box clipped to the image (when its size is
    known) in 1-based integers with a width and height of at least 1 (``_common.integer_box``). ``atom track``
    writes its groundtruth.txt with this too."""
    if box is not None:
        box, _ = inside_image(box, size)
    if box is None:
        return "0,0,0,0"
    return ",".join(str(v) for v in integer_box(box, size))


def _read_flags(path: Path, expected: int) -> list[bool]:
    """A one-line 0/1 flag file; its length must match the groundtruth's."""
    lines = numbered_lines(read_text(path), path)
    if len(lines) > 1:
        raise fail(path, lines[1][0], "expected a single line of comma-separated 0/1 values")
    values = [] if not lines else [v.strip() for v in lines[0][1].split(",")]
    for v in values:
        if v not in ("0", "1"):
            raise fail(path, 1, f"expected 0 or 1, got {v[:20]!r}")
    if len(values) != expected:
        raise fail(path, 1, f"{len(values)} values, but {GROUNDTRUTH} has {expected} lines")
    return [v == "1" for v in values]


def parse(path: str | Path, *, limit: int = 0, source: Source = Source.MANUAL, first_frame: int = 0
          ) -> ParsedObject:
    """Parse a LaSOT sequence folder (or its groundtruth.txt) without touching any document."""
    path = Path(path)
    folder = path.parent if path.name == GROUNDTRUTH or path.is_file() else path
    gt_path = path if path.is_file() else folder / GROUNDTRUTH
    lines = numbered_lines(read_text(gt_path), gt_path)
    flags = {}
    for key, filename in FLAG_FILES.items():
        flag_path = folder / filename
        flags[key] = _read_flags(flag_path, len(lines)) if flag_path.is_file() else [False] * len(lines)
    description = ""
    if (folder / "nlp.txt").is_file():
        description = one_line(read_text(folder / "nlp.txt"))
    match = re.fullmatch(r"(.+)-(\d+)", folder.name)
    label = match.group(1) if match else folder.name
    obj = ParsedObject(label, description=description)
    for i, (lineno, line) in enumerate(lines):
        frame = first_frame + i
        check_frame(frame, limit, gt_path, lineno)
        box = valid_box(parse_box_line(line, gt_path, lineno), True, gt_path, lineno)
        occluded, out_of_view = flags["occluded"][i], flags["out_of_view"][i]
        if box is None and not occluded:
            out_of_view = True  # an absent frame without a flag: absent all the same
        obj.states[frame] = FrameState(box, None if box is None else Source(source), None, None, occluded,
                                       out_of_view)
    return obj


def import_(path: str | Path, *, video: VideoRef | None = None, document: Document | None = None,
            source: Source = Source.MANUAL, first_frame: int = 0) -> Document:
    """Import one LaSOT sequence as one object into ``document`` (or a new document).

    ``first_frame``: the video frame of the groundtruth's first line. Raises FormatError (file and line) and
    leaves ``document`` unchanged on bad input.
    """
    parsed = parse(path, limit=target_limit(video, document), source=source, first_frame=first_frame)
    return apply_parsed([parsed], video, document)
