"""The project file: round trip, relative video path, validation, migration, atomic writes, autosave."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker_core import atomic_files as atomic_write_module
from tracker_core.annotation import Document, Flag, Source, VideoRef, project_io
from tracker_core.annotation.project_io import (
    autosave_path,
    find_recovery,
    load_project,
    parse_project_text,
    save_project,
)
from tracker_core.boxes import Box
from tracker_core.errors import FormatError
from tracker_core.result import Status, TrackResult


def sample_document(video_path: str | None = None) -> Document:
    doc = Document(VideoRef(video_path, 50, 29.97, 640, 360))
    a = doc.add_object("car", "a red car driving left", {"motion_class": "running"})
    doc.set_box(a, 0, (10.25, 20.5, 30.125, 40.0))
    doc.apply_tracked(a, [(f, TrackResult(Box(10 + f, 20, 30, 40), Status.UNCERTAIN, 0.3, 0.71))
                          for f in range(1, 10)], start=0)
    doc.set_box(a, 20, (1 / 3, 2 / 3, 5.5, 6.5))
    doc.interpolate(a)
    doc.set_flag(a, Flag.OCCLUDED, 12, 14)
    doc.delete_box(a, 30, 35)
    b = doc.add_object("person")
    doc.set_box(b, 49, (0, 0, 1, 1))
    doc.metadata["thresholds"] = {"score": 0.25}
    return doc


def assert_same(a: Document, b: Document) -> None:
    assert a.object_ids == b.object_ids
    for obj_id in a.object_ids:
        oa, ob = a.object(obj_id), b.object(obj_id)
        assert (oa.label, oa.description, oa.attributes) == (ob.label, ob.description, ob.attributes)
        assert oa.states == ob.states


def test_round_trip_is_exact(tmp_path):
    video = tmp_path / "videos" / "clip.mp4"
    video.parent.mkdir()
    video.write_bytes(b"")
    doc = sample_document(str(video))
    (tmp_path / "proj").mkdir()
    path = save_project(doc, tmp_path / "proj" / "clip.json")
    loaded = load_project(path)
    assert_same(doc, loaded)
    assert loaded.video == doc.video
    assert loaded.metadata == doc.metadata
    assert loaded.revision == 0
    data = json.loads(path.read_text())
    assert data["format"] == "atom-annotator-project" and data["version"] == 2
    assert data["video"]["path"] == "../videos/clip.mp4"
    assert data["objects"][0]["frames"][0] == {"frame": 0, "box": [10.25, 20.5, 30.125, 40.0], "source": "manual"}


def test_video_path_is_found_after_moving_project_and_video_together(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "clip.mp4").write_bytes(b"")
    save_project(sample_document(str(tmp_path / "a" / "clip.mp4")), tmp_path / "a" / "p.json")
    (tmp_path / "a").rename(tmp_path / "b")
    assert load_project(tmp_path / "b" / "p.json").video.path == str(tmp_path / "b" / "clip.mp4")


def test_video_path_falls_back_to_the_absolute_path_when_the_project_moves_alone(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"")
    (tmp_path / "p").mkdir()
    save_project(sample_document(str(tmp_path / "clip.mp4")), tmp_path / "p" / "p.json")
    (tmp_path / "elsewhere" / "deeper").mkdir(parents=True)
    os.replace(tmp_path / "p" / "p.json", tmp_path / "elsewhere" / "deeper" / "p.json")
    assert load_project(tmp_path / "elsewhere" / "deeper" / "p.json").video.path == str(tmp_path / "clip.mp4")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(format="something-else"), "not an ATOM Annotator project"),
        (lambda d: d.update(version=99), "newer ATOM Annotator"),
        (lambda d: d.update(version="1"), "version: expected an integer"),
        (lambda d: d["objects"][0]["frames"][0].update(box=[1, 2, 3]), "objects[0].frames[0].box: expected 4"),
        (lambda d: d["objects"][0]["frames"][0].update(box=[1, 2, 0, 3]), "positive width"),
        (lambda d: d["objects"][0]["frames"][0].update(source="guessed"), "objects[0].frames[0].source"),
        (lambda d: d["objects"][0]["frames"][1].update(frame=0), "appears twice"),
        (lambda d: d["objects"][0]["frames"][1].update(frame=500), "past the video's last frame"),
        (lambda d: d["objects"][0]["frames"][1].update(occluded=1), "true or false"),
        (lambda d: d["objects"][1].update(id=1), "object id 1 appears twice"),
        (lambda d: d["objects"][0].update(label=None), "objects[0].label: expected a string"),
        (lambda d: d.update(objects={}), "objects: expected an array"),
        (lambda d: d["video"].update(num_frames=-3), "video.num_frames"),
    ],
)
def test_bad_files_give_a_clear_format_error(tmp_path, mutate, message):
    data = project_io.document_to_dict(sample_document())
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError) as info:
        load_project(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_syntax_errors_name_the_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "format": "atom-annotator-project",\n  "version": 1,\n  oops\n}')
    with pytest.raises(FormatError, match=r"broken.json, line 4"):
        load_project(path)
    path.write_bytes(b'{"a":\n"\xff"}')
    with pytest.raises(FormatError, match=r"line 2: not UTF-8"):
        load_project(path)
    path.write_text('{"format": "atom-annotator-project", "version": 1, "video": {"fps": NaN}}')
    with pytest.raises(FormatError):
        load_project(path)
    with pytest.raises(FormatError, match="cannot read"):
        load_project(tmp_path / "missing.json")


def test_migrations_run_in_order(monkeypatch):
    """A future version 3 only adds a migration; a version-2 file then loads through it."""
    data = project_io.document_to_dict(sample_document())

    def v2_to_v3(d):
        d = dict(d)
        d["objects"] = [dict(o, label=o["label"].upper()) for o in d["objects"]]
        return d

    monkeypatch.setattr(project_io, "CURRENT_VERSION", 3)
    monkeypatch.setattr(project_io, "MIGRATIONS", {**project_io.MIGRATIONS, 2: v2_to_v3})
    doc = project_io.document_from_dict(data)
    assert [o.label for o in doc.objects()] == ["CAR", "PERSON"]
    monkeypatch.setattr(project_io, "MIGRATIONS", {})
    with pytest.raises(FormatError, match="no migration from version 2"):
        project_io.document_from_dict(data)


def test_stale_boxes_need_version_2_and_version_1_files_still_load(tmp_path):
    doc = sample_document()
    doc.apply_tracked(1, [(21, Box(1, 2, 3, 4)), (22, Box(2, 2, 3, 4))], start=20)
    tracked = 22
    doc.mark_stale(1, 20, 24)  # only the tracked frames among them become stale
    assert doc.stale_frames(1) == [21, 22]
    path = save_project(doc, tmp_path / "p.json")
    assert load_project(path).state(1, tracked).stale
    data = json.loads(path.read_text())
    assert data["version"] == 2 and any(e.get("stale") for e in data["objects"][0]["frames"])
    doc.keep_stale(1)
    old = project_io.document_to_dict(doc)
    old["version"] = 1  # a file written before stale boxes existed
    assert project_io.document_from_dict(old).objects()[0].states == doc.objects()[0].states
    bad = project_io.document_to_dict(sample_document())
    manual = next(e for e in bad["objects"][0]["frames"] if e.get("source") == "manual")
    manual["stale"] = True
    with pytest.raises(FormatError, match="only a tracked box can be stale"):
        project_io.document_from_dict(bad)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["video"].update(num_frames=10**12), "more than a video has"),
    (lambda d: d["video"].update(num_frames=0) or d["objects"][0]["frames"][0].update(frame=10**12),
     "past the video's last frame"),
    (lambda d: d["objects"][0]["frames"][0].update(box=[1e300, 2, 1.7e308, 4]), "larger than any image"),
])
def test_absurd_sizes_are_refused_with_one_line(tmp_path, mutate, message):
    data = project_io.document_to_dict(sample_document())
    mutate(data)
    with pytest.raises(FormatError, match=message):
        project_io.document_from_dict(data)


# ---- atomic writes ----------------------------------------------------------------------------------------

def _only_project_files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_failed_write_midway_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "p.json"
    save_project(sample_document(), path)
    old = path.read_bytes()

    def half_then_fail(fd, data):
        os.write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_write_module, "_write_all", half_then_fail)
    doc = sample_document()
    doc.set_label(1, "changed")
    with pytest.raises(OSError):
        save_project(doc, path)
    assert path.read_bytes() == old
    assert _only_project_files(tmp_path) == ["p.json"]  # no temporary file left behind


def test_failed_rename_or_fsync_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "p.json"
    save_project(sample_document(), path)
    old = path.read_bytes()
    for target in ("replace", "fsync"):
        with monkeypatch.context() as m:
            m.setattr(atomic_write_module.os, target, lambda *a: (_ for _ in ()).throw(OSError(5, "I/O error")))
            with pytest.raises(OSError):
                save_project(Document(), path)
        assert path.read_bytes() == old
        assert _only_project_files(tmp_path) == ["p.json"]


# ---- autosave and recovery --------------------------------------------------------------------------------

def test_find_recovery_offers_only_a_newer_autosave(tmp_path):
    project = tmp_path / "clip.json"
    assert find_recovery(project) is None
    doc = sample_document()
    doc.set_label(1, "recovered")
    autosave = autosave_path(project)
    save_project(doc, autosave)  # as the app's autosaver writes it: the project format, beside the project
    assert find_recovery(project) == autosave  # never saved properly: offer it
    save_project(doc, project)
    os.utime(autosave, ns=(1, 1))
    assert find_recovery(project) is None  # the project is newer
    os.utime(autosave, ns=(project.stat().st_mtime_ns + 10**9,) * 2)
    recovered = find_recovery(project)
    assert load_project(recovered).object(1).label == "recovered"
    assert autosave_path(tmp_path / "x.atom") == tmp_path / "x.atom.autosave.json"


# ---- fuzzing ----------------------------------------------------------------------------------------------

_VALID = project_io.project_text(sample_document())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_project_parser_gives_only_format_errors(data):
    choice = data.draw(st.sampled_from(["text", "cut", "splice", "json"]))
    if choice == "text":
        text = data.draw(st.text(max_size=200))
    elif choice == "cut":
        text = _VALID[: data.draw(st.integers(0, len(_VALID)))]
    elif choice == "splice":
        i = data.draw(st.integers(0, len(_VALID)))
        text = _VALID[:i] + data.draw(st.text(max_size=8)) + _VALID[i + data.draw(st.integers(0, 8)):]
    else:
        values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                              | st.text(max_size=5), lambda kids: st.lists(kids, max_size=4)
                              | st.dictionaries(st.text(max_size=5), kids, max_size=4), max_leaves=10)
        base = json.loads(_VALID)
        key = data.draw(st.sampled_from(["video", "objects", "metadata", "version"]))
        base[key] = data.draw(values)
        text = json.dumps(base)
    try:
        doc = parse_project_text(text, name="fuzz.json")
    except FormatError as exc:
        assert "fuzz.json" in str(exc)
    else:
        assert isinstance(doc, Document)
        assert all(s.source is None or isinstance(s.source, Source)
                   for o in doc.objects() for s in o.states.values())
