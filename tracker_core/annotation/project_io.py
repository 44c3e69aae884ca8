"""The project file: versioned JSON, written atomically, validated and migrated on load; autosave and recovery.

Layout (version 2)::

    {"format": "atom-annotator-project", "version": 1,
     "video": {"path": "clips/a.mp4", "absolute_path": "/data/clips/a.mp4",
               "num_frames": 300, "fps": 30.0, "width": 640, "height": 360},
     "objects": [{"id": 1, "label": "car", "description": "", "attributes": {},
                  "frames": [{"frame": 0, "box": [x, y, w, h], "source": "manual"},
                             {"frame": 1, "box": [...], "source": "tracked", "score": 0.9, "iou": 0.8,
                              "status": "normal"},
                             {"frame": 5, "box": [...], "source": "tracked", "stale": true},
                             {"frame": 9, "out_of_view": true}]}],
     "metadata": {}}

Version 2 added ``stale`` (a tracked box left behind by a correction, kept out of exports): an older version
must refuse such a file rather than read its stale boxes as good ones. Version 1 files read unchanged.

Boxes use the project's convention (float xywh, 0-based). Frame entries omit default fields (no box, flags
false, scores null). The video path is stored relative to the project file when possible, plus the absolute
path as a fallback, so that a project moved together with its video, or alone, still finds it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..atomic_files import atomic_write_text
from ..boxes import Box, box_problem
from ..errors import FormatError
from .document import Document, TrackedObject
from .frame_state import FrameState, Source
from .video_ref import VideoRef

FORMAT_NAME = "atom-annotator-project"
CURRENT_VERSION = 2
# More frames than any video has: a bound that keeps a damaged count (1e12) from making exports run away.
MAX_FRAMES = 10_000_000


def _v1_to_v2(data: dict) -> dict:
    """Version 2 only adds the optional ``stale`` field of frame entries."""
    return data


# version N -> function turning a version-N dict into a version-(N+1) dict; loading walks the chain.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2}


# ---- document <-> dict --------------------------------------------------------------------------------

def _frame_entry(frame: int, state: FrameState) -> dict:
    entry: dict = {"frame": frame}
    if state.box is not None:
        entry["box"] = list(state.box.as_tuple())
        entry["source"] = state.source.value
    if state.score is not None:
        entry["score"] = state.score
    if state.iou is not None:
        entry["iou"] = state.iou
    if state.occluded:
        entry["occluded"] = True
    if state.out_of_view:
        entry["out_of_view"] = True
    if state.status is not None:
        entry["status"] = state.status
    if state.stale:
        entry["stale"] = True
    return entry


def _video_entry(video: VideoRef, project_dir: Path | None) -> dict:
    entry: dict = {"path": None, "absolute_path": None, "num_frames": video.num_frames, "fps": video.fps,
                   "width": video.width, "height": video.height}
    if video.path:
        absolute = os.path.abspath(video.path)
        entry["path"] = entry["absolute_path"] = absolute
        if project_dir is not None:
            try:
                entry["path"] = Path(os.path.relpath(absolute, project_dir)).as_posix()
            except ValueError:  # another drive on Windows: only the absolute path works
                pass
    return entry


def document_to_dict(document: Document, project_path: str | os.PathLike | None = None) -> dict:
    """The JSON-ready dict of a document; ``project_path`` makes the video path relative to its folder."""
    project_dir = Path(project_path).resolve().parent if project_path is not None else None
    objects = []
    for obj in document.objects():
        objects.append({
            "id": obj.id,
            "label": obj.label,
            "description": obj.description,
            "attributes": dict(obj.attributes),
            "frames": [_frame_entry(f, s) for f, s in document.states(obj.id)],
        })
    return {
        "format": FORMAT_NAME,
        "version": CURRENT_VERSION,
        "video": _video_entry(document.video, project_dir),
        "objects": objects,
        "metadata": document.metadata,
    }


class _Checker:
    """Type checks that fail with the file and the JSON location of the bad value."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, where: str, problem: str) -> FormatError:
        return FormatError(f"{self.name}: {where}: {problem}")

    def kind(self, value, types, where: str, what: str):
        # bool is an int in Python, but `true` is never a valid number in this format
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise self.fail(where, f"expected {what}, got {json.dumps(value)[:60]}")
        return value

    def integer(self, value, where: str, minimum: int = 0) -> int:
        self.kind(value, (int,), where, "an integer")
        if value < minimum:
            raise self.fail(where, f"expected an integer >= {minimum}, got {value}")
        return value

    def number(self, value, where: str, optional: bool = True) -> float | None:
        if value is None and optional:
            return None
        self.kind(value, (int, float), where, "a number" + (" or null" if optional else ""))
        try:
            result = float(value)
        except OverflowError:  # an integer too large for a float
            result = math.inf
        if not math.isfinite(result):
            raise self.fail(where, "the number is too large")
        return result

    def string(self, value, where: str, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        return self.kind(value, (str,), where, "a string")

    def flag(self, value, where: str) -> bool:
        return self.kind(value, (bool,), where, "true or false")

    def mapping(self, value, where: str) -> dict:
        return self.kind(value, (dict,), where, "an object")

    def array(self, value, where: str) -> list:
        return self.kind(value, (list,), where, "an array")


def _read_video(c: _Checker, data, project_dir: Path | None) -> VideoRef:
    data = c.mapping(data, "video")
    num_frames = c.integer(data.get("num_frames", 0), "video.num_frames")
    if num_frames > MAX_FRAMES:
        raise c.fail("video.num_frames", f"{num_frames} frames is more than a video has (at most {MAX_FRAMES:,})")
    fps = c.number(data.get("fps"), "video.fps")
    width = None if data.get("width") is None else c.integer(data["width"], "video.width", 1)
    height = None if data.get("height") is None else c.integer(data["height"], "video.height", 1)
    rel = c.string(data.get("path"), "video.path", optional=True)
    absolute = c.string(data.get("absolute_path"), "video.absolute_path", optional=True)
    candidates = []
    if rel:
        candidates.append(Path(rel) if Path(rel).is_absolute() or project_dir is None else project_dir / rel)
    if absolute:
        candidates.append(Path(absolute))
    path = next((p for p in candidates if p.exists()), candidates[0] if candidates else None)
    if path is not None:
        path = Path(os.path.normpath(path.absolute()))
    return VideoRef(None if path is None else str(path), num_frames, fps, width, height)


def _read_state(c: _Checker, entry, where: str, num_frames: int) -> tuple[int, FrameState]:
    entry = c.mapping(entry, where)
    frame = c.integer(entry.get("frame"), f"{where}.frame")
    if frame >= (num_frames or MAX_FRAMES):
        raise c.fail(f"{where}.frame", f"frame {frame} is past the video's last frame {(num_frames or MAX_FRAMES) - 1}")
    box = source = None
    if entry.get("box") is not None:
        values = c.array(entry["box"], f"{where}.box")
        if len(values) != 4:
            raise c.fail(f"{where}.box", f"expected 4 numbers [x, y, w, h], got {len(values)} values")
        box = Box(*(c.number(v, f"{where}.box", optional=False) for v in values))
        if not box.is_valid():
            raise c.fail(f"{where}.box", box_problem(box))
        try:
            source = Source(c.string(entry.get("source"), f"{where}.source"))
        except ValueError:
            raise c.fail(f"{where}.source", "expected manual, tracked or interpolated") from None
    elif entry.get("source") is not None:
        raise c.fail(f"{where}.source", "a source without a box")
    state = FrameState(
        box, source,
        c.number(entry.get("score"), f"{where}.score"),
        c.number(entry.get("iou"), f"{where}.iou"),
        c.flag(entry.get("occluded", False), f"{where}.occluded"),
        c.flag(entry.get("out_of_view", False), f"{where}.out_of_view"),
        c.string(entry.get("status"), f"{where}.status", optional=True),
    )
    stale = c.flag(entry.get("stale", False), f"{where}.stale")
    if stale and source is not Source.TRACKED:
        raise c.fail(f"{where}.stale", "only a tracked box can be stale")
    return frame, replace(state, stale=stale)


def _read_object(c: _Checker, data, where: str, num_frames: int) -> TrackedObject:
    data = c.mapping(data, where)
    obj_id = c.integer(data.get("id"), f"{where}.id")
    attributes = c.mapping(data.get("attributes", {}), f"{where}.attributes")
    for key, value in attributes.items():
        c.string(value, f"{where}.attributes.{key}")
    obj = TrackedObject(obj_id, c.string(data.get("label"), f"{where}.label"),
                        c.string(data.get("description", ""), f"{where}.description"), dict(attributes))
    for i, entry in enumerate(c.array(data.get("frames", []), f"{where}.frames")):
        frame, state = _read_state(c, entry, f"{where}.frames[{i}]", num_frames)
        if frame in obj.states:
            raise c.fail(f"{where}.frames[{i}].frame", f"frame {frame} appears twice")
        obj.states[frame] = state
    return obj


def migrate(data: dict, name: str = "project") -> dict:
    """Bring a project dict of any known version to CURRENT_VERSION (FormatError for unknown versions)."""
    c = _Checker(name)
    version = c.integer(data.get("version"), "version", 1)
    if version > CURRENT_VERSION:
        raise c.fail("version", f"version {version} was written by a newer ATOM Annotator "
                                f"(this one reads up to {CURRENT_VERSION}); please update")
    while version < CURRENT_VERSION:
        if version not in MIGRATIONS:
            raise c.fail("version", f"no migration from version {version}")
        data = MIGRATIONS[version](data)
        version += 1
        data["version"] = version
    return data


def document_from_dict(data, project_path: str | os.PathLike | None = None, name: str = "project") -> Document:
    """A validated Document from a project dict of any supported version (FormatError otherwise)."""
    c = _Checker(name)
    data = c.mapping(data, "top level")
    if data.get("format") != FORMAT_NAME:
        raise c.fail("format", f"not an ATOM Annotator project (expected \"format\": \"{FORMAT_NAME}\")")
    data = migrate(data, name)
    project_dir = Path(project_path).absolute().parent if project_path is not None else None
    video = _read_video(c, data.get("video", {}), project_dir)
    objects = []
    for i, entry in enumerate(c.array(data.get("objects", []), "objects")):
        obj = _read_object(c, entry, f"objects[{i}]", video.num_frames)
        if any(o.id == obj.id for o in objects):
            raise c.fail(f"objects[{i}].id", f"object id {obj.id} appears twice")
        objects.append(obj)
    document = Document(video)
    document.metadata = c.mapping(data.get("metadata", {}), "metadata")
    for obj in objects:
        document.insert_object(obj)
    document.revision = 0
    return document


# ---- text and files ---------------------------------------------------------------------------------------

def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_project_text(text: str | bytes, project_path: str | os.PathLike | None = None,
                       name: str | None = None) -> Document:
    """A Document from project JSON text; FormatError naming the file (and the line for syntax errors)."""
    name = name or (str(project_path) if project_path is not None else "project")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = text.count(b"\n", 0, exc.start) + 1
            raise FormatError(f"{name}, line {line}: not UTF-8 text") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{name}, line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})") from None
    except ValueError as exc:  # NaN / Infinity
        raise FormatError(f"{name}: not valid JSON ({exc})") from None
    except RecursionError:
        raise FormatError(f"{name}: JSON nested too deeply") from None
    return document_from_dict(data, project_path, name)


def project_text(document: Document, project_path: str | os.PathLike | None = None) -> str:
    """The project JSON text (NaN/inf never reach the file: the document rejects them)."""
    return json.dumps(document_to_dict(document, project_path), indent=1, allow_nan=False) + "\n"


def save_project(document: Document, path: str | os.PathLike) -> Path:
    """Write the project atomically (``atomic_files``: the old file or the new one, never half of one)."""
    return atomic_write_text(path, project_text(document, path))


def load_project(path: str | os.PathLike) -> Document:
    """Read, validate and migrate a project file; FormatError with a clear message for a bad one."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot read the project file ({exc.strerror or exc})") from None
    return parse_project_text(data, path, str(path))


# ---- autosave and crash recovery --------------------------------------------------------------------------

def autosave_path(project_path: str | os.PathLike) -> Path:
    """``clip.json`` -> ``clip.autosave.json`` (other names get ``.autosave.json`` appended)."""
    project_path = Path(project_path)
    if project_path.suffix.lower() == ".json":
        return project_path.with_name(project_path.stem + ".autosave.json")
    return project_path.with_name(project_path.name + ".autosave.json")


def find_recovery(project_path: str | os.PathLike) -> Path | None:
    """The autosave to offer after a crash: it exists and is newer than the project (or the project was never
    saved). None otherwise."""
    candidate = autosave_path(project_path)
    if not candidate.is_file():
        return None
    project_path = Path(project_path)
    if project_path.is_file() and project_path.stat().st_mtime_ns >= candidate.stat().st_mtime_ns:
        return None
    return candidate
