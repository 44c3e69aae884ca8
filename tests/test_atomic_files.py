"""The one atomic-write helper: single files, files written by libraries, and sets of files (all or none)."""

from __future__ import annotations

import os

import pytest

from tracker_core import atomic_files
from tracker_core.atomic_files import atomic_files as atomic_file_set
from tracker_core.atomic_files import atomic_path, atomic_write_text, temporary_name


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_temporary_names_are_unique_hidden_and_keep_the_suffix(tmp_path):
    names = {temporary_name(tmp_path / "loss.png") for _ in range(100)}
    assert len(names) == 100
    for name in names:
        assert name.parent == tmp_path and name.name.startswith(".loss.png.") and name.suffix == ".png"


def test_a_set_of_files_is_replaced_together(tmp_path):
    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "b.txt").write_text("old b")
    with atomic_file_set(make_folders=True) as files:
        files.write_text(tmp_path / "a.txt", "new a")
        files.write_text(tmp_path / "sub" / "b.txt", "new b")
        assert (tmp_path / "a.txt").read_text() == "old a"  # nothing visible before the block ends
    assert (tmp_path / "a.txt").read_text() == "new a"
    assert (tmp_path / "sub" / "b.txt").read_text() == "new b"
    assert listing(tmp_path) == ["a.txt", "b.txt", "sub", "sub/b.txt"]


def test_a_full_disk_half_way_replaces_nothing_and_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "b.txt").write_text("old b")
    calls = []

    def fill_the_disk(fd, data):
        calls.append(len(data))
        if len(calls) == 2:
            os.write(fd, data[:3])
            raise OSError(28, "No space left on device")
        os.write(fd, data)

    monkeypatch.setattr(atomic_files, "_write_all", fill_the_disk)
    with pytest.raises(OSError, match="No space"):
        with atomic_file_set(make_folders=True) as files:
            files.write_text(tmp_path / "a.txt", "new a")
            files.write_text(tmp_path / "b.txt", "new b")
            files.write_text(tmp_path / "new" / "deeper" / "c.txt", "new c")
    assert (tmp_path / "a.txt").read_text() == "old a"
    assert (tmp_path / "b.txt").read_text() == "old b"
    assert listing(tmp_path) == ["a.txt", "b.txt"]  # no temporary file, no folder made for the failed set


def test_a_file_written_by_a_library_is_renamed_when_the_block_ends(tmp_path):
    target = tmp_path / "model.pt"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".pt" and not target.exists()
        tmp.write_bytes(b"weights")
    assert target.read_bytes() == b"weights" and listing(tmp_path) == ["model.pt"]
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("the library failed")
    assert target.read_bytes() == b"weights" and listing(tmp_path) == ["model.pt"]
    with pytest.raises(FileNotFoundError, match="not written"):
        with atomic_path(tmp_path / "never.pt"):
            pass


def test_writing_keeps_the_users_umask_and_exact_newlines(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "x.txt", "a\r\nb\n")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"a\r\nb\n"
    assert path.stat().st_mode & 0o777 == 0o644


def test_the_same_target_twice_in_one_set_is_a_mistake(tmp_path):
    with pytest.raises(ValueError, match="twice"):
        with atomic_file_set() as files:
            files.write_text(tmp_path / "a.txt", "1")
            files.write_text(tmp_path / "a.txt", "2")
    assert listing(tmp_path) == []


def test_folders_are_made_only_when_asked(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "missing" / "x.txt", "x")
    assert listing(tmp_path) == []
