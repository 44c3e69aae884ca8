"""Import and export formats, one module per format, each with the same two functions:

- ``export(document, obj_ids, out_dir, **options) -> list[Path]`` (``obj_ids=None``: every object);
- ``import_(path, *, video=None, document=None, **options) -> Document``: into ``document`` when given (its
  other objects untouched), else into a new document. Parsers read everything before changing anything: bad
  input raises FormatError naming the file and line, and the document stays unchanged.

Dense formats (LaSOT, GOT-10k, OTB, TrackingNet) write a row for every frame; a frame with neither a box nor a
flag raises IncompleteAnnotationError unless exported with ``missing="absent"``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from ._common import IncompleteAnnotationError


@dataclass(frozen=True)
class FormatInfo:
    """One annotation format: its command-line name, its name in menus, its module, and how it reads.

    dense: a row for every frame (importing it as keyframes would make every frame a keyframe).
    import_folder: its import reads a sequence folder (a file otherwise).
    """

    name: str
    title: str
    module: str
    dense: bool = False
    import_folder: bool = False


# The one list of formats: `atom import`/`atom export`, the app's menus and the tests all read it.
FORMATS: dict[str, FormatInfo] = {f.name: f for f in (
    FormatInfo("lasot", "LaSOT", "lasot", dense=True, import_folder=True),
    FormatInfo("got10k", "GOT-10k", "got10k", dense=True, import_folder=True),
    FormatInfo("otb", "OTB", "otb", dense=True),
    FormatInfo("trackingnet", "TrackingNet", "trackingnet", dense=True),
    FormatInfo("vot", "VOT", "vot", dense=True),
    FormatInfo("mot", "MOT (gt.txt)", "mot"),
    FormatInfo("cvat", "CVAT for video 1.1", "cvat"),
    FormatInfo("json", "ATOM project JSON", "project_json"),
)}


def get_format(name: str) -> ModuleType:
    """The module of a format by name (KeyError listing the known names otherwise)."""
    try:
        module = FORMATS[name].module
    except KeyError:
        raise KeyError(f"unknown format {name!r}; known: {', '.join(FORMATS)}") from None
    return importlib.import_module(f"{__name__}.{module}")


__all__ = ["FORMATS", "FormatInfo", "IncompleteAnnotationError", "get_format"]
