"""Our own project JSON (see :mod:`..project_io`) as an export/import format: exact, with scores and sources."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ...atomic_files import atomic_files
from ..document import Document
from ..project_io import load_project, project_text
from ..video_ref import VideoRef
from ._common import ParsedObject, apply_parsed, fail, safe_name, select_objects, target_limit

NAME = "json"


def export(document: Document, obj_ids: Iterable[int] | None, out_dir: str | Path, *, name: str | None = None
           ) -> list[Path]:
    """Write ``out_dir/<name>.json`` (default: the video's name) holding the selected objects."""
    ids = select_objects(document, obj_ids)
    subset = Document(document.video)
    subset.metadata = dict(document.metadata)
    for obj_id in ids:
        subset.insert_object(document.object(obj_id))
    target = Path(out_dir) / f"{safe_name(name or document.video.name or 'project', 'project')}.json"
    with atomic_files(make_folders=True) as files:  # a failed write leaves no file and no new folder
        files.write_text(target, project_text(subset, target))
    return [target]


def import_(path: str | Path, *, video: VideoRef | None = None, document: Document | None = None) -> Document:
    """Load a project file; with ``document``, add its objects there (new ids where they collide)."""
    loaded = load_project(path)
    if document is None and video is None:
        return loaded
    limit = target_limit(video, document)
    if limit:
        for obj in loaded.objects():
            if obj.states and max(obj.states) >= limit:
                raise fail(path, None, f"object {obj.id} has frame {max(obj.states)}, past the video's last "
                                       f"frame ({limit - 1})")
    parsed = [ParsedObject(o.label, dict(o.states), o.description, dict(o.attributes), o.id)
              for o in loaded.objects()]
    return apply_parsed(parsed, video, document, loaded.video)
