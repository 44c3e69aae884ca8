"""Where a video's project lives, and opening a video or project with its autosave, off the GUI thread.

Every video gets a project file without asking: by default in the app's data folder, named after the video
and a hash of its full path (never beside the video, whose folder may be read-only or a shared dataset). Save
as… puts it anywhere. An autosave beside the project file is offered back after a crash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from tracker_core.annotation import Document
from tracker_core.annotation.project_io import find_recovery, load_project
from tracker_core.annotation.video_ref import describe_source
from tracker_core.errors import FormatError, VideoError

from .core_adapters import open_video

PROJECT_SUFFIX = ".atom.json"
# Frame folders that datasets name after their content, not the sequence (LaSOT's and OTB's ``Soccer/img``).
GENERIC_FOLDER_NAMES = frozenset({"img", "imgs", "image", "images", "frames", "frame", "color", "rgb", "jpg",
                                  "jpeg", "png", "data", "seq", "sequence"})


def display_name(video_path: str | Path) -> str:
    """How a video is named to the person: the file name, or for a frame folder with a generic name (``img``)
    the sequence folder above it too (``Soccer/img``)."""
    path = Path(video_path)
    if path.name.lower() in GENERIC_FOLDER_NAMES and path.parent.name:
        return f"{path.parent.name}/{path.name}"
    return path.name


def video_stem(video_path: str | Path) -> str:
    """A file-name stem for things named after a video: ``bikes`` for bikes.mp4, ``Soccer_img`` for Soccer/img."""
    path = Path(video_path)
    return display_name(path).replace("/", "_") if path.is_dir() else path.stem


def default_project_path(video_path: str | Path, project_dir: str | Path) -> Path:
    """``<project_dir>/<video name>-<hash of its absolute path>.atom.json``: one project per video file, named
    as the person knows the video (``Soccer_img-…`` for ``Soccer/img``). A project saved under the older name
    (the bare stem) is still found."""
    absolute = Path(video_path).resolve()
    digest = hashlib.sha1(str(absolute).encode("utf-8")).hexdigest()[:10]
    older = Path(project_dir) / f"{absolute.stem}-{digest}{PROJECT_SUFFIX}"
    path = Path(project_dir) / f"{video_stem(absolute)}-{digest}{PROJECT_SUFFIX}"
    return older if not path.is_file() and older.is_file() else path


def is_project_file(path: str | Path) -> bool:
    return str(path).lower().endswith(".json") and Path(path).is_file()


@dataclass
class OpenedSession:
    """What opening needs, prepared off the GUI thread."""

    video_path: str
    project_path: Path
    source: object  # the GUI's VideoSource (metadata only)
    cache_reader: object  # for the frame cache's thread
    worker_reader: object  # for the tracking thread
    document: Document  # from the project file, or new
    recovered: Document | None = None  # the autosave, when it is newer than the project
    recovery_path: Path | None = None
    warning: str = ""

    def close_readers(self) -> None:
        for reader in (self.source, self.cache_reader, self.worker_reader):
            reader.close()


def open_session(path: str | Path, project_dir: str | Path) -> OpenedSession:
    """Open a video (with its project, when one exists) or a project (with its video). Slow: run it off the
    GUI thread. Raises VideoError or FormatError with a message for the person."""
    warning = ""
    if is_project_file(path):
        project_path = Path(path)
        document = load_project(project_path)
        if not document.video.path:
            raise FormatError(f"{project_path}: the project names no video")
        video_path = document.video.path
        if not Path(video_path).exists():
            raise VideoError(f"{project_path}: its video {video_path} is missing (moved or deleted?)")
    else:
        video_path = str(Path(path).resolve())
        project_path = default_project_path(video_path, project_dir)
        try:
            project_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            warning = f"The project folder {project_path.parent} cannot be created ({exc}); use Save as…"
        document = None
        if project_path.is_file():
            try:
                document = load_project(project_path)
            except FormatError as exc:
                warning = f"The project file could not be read, so a new one is started: {exc}"
                project_path = project_path.with_name(project_path.name.replace(PROJECT_SUFFIX, ".new" +
                                                                                PROJECT_SUFFIX))
    source = open_video(video_path)
    try:
        cache_reader, worker_reader = source.clone(), source.clone()
    except Exception:
        source.close()
        raise
    fresh = Document(describe_source(source, str(Path(video_path).resolve())))
    if document is not None and document.video.path != fresh.video.path:
        document.set_video(fresh.video)  # the video moved since the project was saved: remember where it is now
    if document is not None and document.num_frames not in (0, source.num_frames):
        warning = (f"The project has {document.num_frames} frames but the video has {source.num_frames}; "
                   f"the annotations are kept as they are.")
    session = OpenedSession(str(video_path), project_path, source, cache_reader, worker_reader,
                            document if document is not None else fresh, warning=warning)
    recovery = find_recovery(project_path)
    if recovery is not None:
        try:
            session.recovered = load_project(recovery)
            session.recovery_path = recovery
        except FormatError:
            session.recovery_path = None  # a torn autosave is worth nothing; the project file stands
    return session
