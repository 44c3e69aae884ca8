"""Writing files so that a crash, a kill or a full disk leaves the old files or the new ones, never half of one.

Every file the project writes goes through here:

- :func:`atomic_write_bytes` / :func:`atomic_write_text`: one file from bytes or text.
- :func:`atomic_path`: one file written by a library that wants a file name (``torch.save``, ``savefig``,
  ffmpeg); the context manager yields the temporary name and renames it over the target on success.
- :class:`AtomicFileSet` (``with atomic_files() as files``): several files that belong together (the files of one
  export, ``atom track``'s groundtruth/scores/project). Every file is first written in full to a temporary name
  beside its target and flushed to disk; only when all of them are written are they renamed over their targets,
  one after the other. A write that fails (a full disk) therefore replaces nothing, and removes its temporary
  files and the folders it created. The renames themselves need no space; a kill between two of them (a window
  of microseconds) is the one way to see a mix of old and new files.

Temporary names are unique (``.<name>.<pid>-<random>.tmp<suffix>``, the suffix kept for libraries that pick the
file type from it), so two processes writing the same target never tear each other's temporary file. They live in
the target's folder because ``os.replace`` is atomic only within one file system.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


def temporary_name(path: str | os.PathLike) -> Path:
    """A unique hidden name beside ``path`` (same folder, so that the final rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp{path.suffix}")


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte (os.write may write fewer than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (which must not exist), write ``data`` and flush it to disk."""
    # 0o666 through os.open keeps the user's umask (mkstemp would make the file private to its owner)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    """Flush a file that a library wrote to disk (its data must be durable before the rename)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make renames in ``folder`` durable (POSIX); folders cannot be opened this way on Windows."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns the ones created, deepest first."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


class AtomicFileSet:
    """Files that are all replaced together, or none of them (see the module docstring).

    Use it through :func:`atomic_files`; :meth:`write_bytes` and :meth:`write_text` write a file's content now,
    :meth:`path` hands out a temporary name for a library to write. Nothing is visible under the target names
    until the ``with`` block ends without an exception.
    """

    def __init__(self, make_folders: bool = False) -> None:
        self.make_folders = make_folders  # create missing folders of the targets (removed again on failure)
        self._staged: dict[Path, Path] = {}  # target -> temporary file
        self._written_by_caller: set[Path] = set()  # temporaries that still need an fsync
        self._created: list[Path] = []  # folders this set made, removed again (when empty) on failure

    def _stage(self, target: str | os.PathLike) -> tuple[Path, Path]:
        target = Path(target)
        if target in self._staged:
            raise ValueError(f"{target} is written twice in one set of files")
        if self.make_folders:
            self._created += _make_folders(target.parent)
        tmp = temporary_name(target)
        self._staged[target] = tmp
        return target, tmp

    def write_bytes(self, target: str | os.PathLike, data: bytes) -> Path:
        """Write ``data`` for ``target`` (to its temporary file, flushed to disk); returns the target."""
        target, tmp = self._stage(target)
        _write_new(tmp, data)
        return target

    def write_text(self, target: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
        """:meth:`write_bytes` for text (newlines written as given, never translated)."""
        return self.write_bytes(target, text.encode(encoding))

    def path(self, target: str | os.PathLike) -> Path:
        """A temporary file name for ``target`` that the caller (a library) writes; it keeps the suffix."""
        target, tmp = self._stage(target)
        self._written_by_caller.add(tmp)
        return tmp

    @property
    def targets(self) -> list[Path]:
        return list(self._staged)

    def commit(self) -> list[Path]:
        """Flush what the caller wrote, then rename every temporary file over its target; returns the targets."""
        for tmp in self._written_by_caller:
            if not tmp.is_file():
                raise FileNotFoundError(f"{tmp}: the temporary file was not written")
            _fsync_file(tmp)
        for target, tmp in self._staged.items():
            os.replace(tmp, target)
        for folder in {target.parent for target in self._staged}:
            _fsync_folder(folder)
        targets, self._staged = list(self._staged), {}
        self._written_by_caller.clear()
        self._created = []
        return targets

    def discard(self) -> None:
        """Remove every temporary file and the folders this set created (when they are empty)."""
        for tmp in self._staged.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._staged = {}
        self._written_by_caller.clear()
        for folder in sorted(self._created, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._created = []


@contextlib.contextmanager
def atomic_files(make_folders: bool = False) -> Iterator[AtomicFileSet]:
    """A set of files replaced all together when the block ends, or none of them if it raises.

    ``make_folders``: create the targets' missing folders (and remove them again if the set fails)."""
    files = AtomicFileSet(make_folders)
    try:
        yield files
        files.commit()
    except BaseException:
        files.discard()
        raise


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary name for ``target``; the file written there replaces ``target`` when the block ends."""
    with atomic_files() as files:
        yield files.path(target)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, flush it, then rename it over ``path``. On any failure
    the temporary file is removed and the previous ``path`` is untouched."""
    with atomic_files() as files:
        return files.write_bytes(path, data)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """:func:`atomic_write_bytes` for text (newlines written as given, never translated)."""
    return atomic_write_bytes(path, text.encode(encoding))
