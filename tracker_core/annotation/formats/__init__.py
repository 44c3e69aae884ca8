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
from types import ModuleType

from ._common import IncompleteAnnotationError

# format name -> module (imported on first use)
FORMATS = {
    "lasot": "lasot",
    "got10k": "got10k",
    "otb": "otb",
    "trackingnet": "trackingnet",
    "mot": "mot",
    "cvat": "cvat",
    "vot": "vot",
    "json": "project_json",
}


def get_format(name: str) -> ModuleType:
    """The module of a format by name (KeyError listing the known names otherwise)."""
    try:
        module = FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown format {name!r}; known: {', '.join(FORMATS)}") from None
    return importlib.import_module(f"{__name__}.{module}")


__all__ = ["FORMATS", "IncompleteAnnotationError", "get_format"]
