"""Import/export formats: round trips within each format's precision, exact layouts, fuzzed parsers, real data."""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker_core.annotation import Document, Flag, FrameState, ReplacePolicy, Source, VideoRef
from tracker_core.annotation.formats import FORMATS, IncompleteAnnotationError, get_format
from tracker_core.annotation.project_io import load_project, save_project
from tracker_core.boxes import Box
from tracker_core.errors import FormatError
from tracker_core.result import Status, TrackResult

# ATOM_FUZZ_EXAMPLES=2000 for a long fuzzing session; the default keeps the file under 30 s
FUZZ_EXAMPLES = int(os.environ.get("ATOM_FUZZ_EXAMPLES", "60"))
# the same place as conftest's shared_data fixture (parametrized tests need the sequences at collection time)
DATA = Path(os.environ.get("ATOM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
NUM_FRAMES = 30


def rich_document() -> Document:
    """Two objects covering every frame with every kind of state a format may or may not keep."""
    doc = Document(VideoRef("/videos/street.mp4", NUM_FRAMES, 25.0, 640, 360))
    car = doc.add_object("car", "a red car turning left", {"motion_class": "turning"})
    doc.set_box(car, 0, (100, 50, 40, 30))
    doc.set_box(car, 8, (120.5, 60.25, 42, 28))
    doc.set_box(car, 12, (130, 61, 44, 26))
    doc.apply_tracked(car, [(f, TrackResult(Box(100 + 2.5 * f, 50.125 + f, 40 + f / 3, 30), Status.NORMAL,
                                            0.5 + f / 100, 0.75)) for f in range(1, 8)], start=0)
    doc.interpolate(car, 8, 12)
    doc.apply_tracked(car, [(f, TrackResult(Box(130 + f, 61, 44, 26.5), Status.UNCERTAIN, 0.3, 0.6))
                            for f in range(13, NUM_FRAMES)], policy=ReplacePolicy.TO_END, start=12)
    doc.delete_box(car, 13, 15)  # out of view, frame 13 keeps its stale box
    doc.clear(car, 14, 15, sources={Source.TRACKED})  # 14, 15: out of view without a box
    doc.set_flag(car, Flag.OCCLUDED, 16)  # occluded with a box
    doc.clear(car, 17, sources={Source.TRACKED})
    doc.set_flag(car, Flag.OCCLUDED, 17)  # occluded without a box
    person = doc.add_object("person")
    for f in range(NUM_FRAMES):
        doc.set_box(person, f, (10 + f, 200, 20, 60))
    doc.set_flag(person, Flag.OCCLUDED, 5, 6)
    return doc


# What survives a round trip, per format: a function of the original state giving the expected state, and
# the tolerance on box values.
def _dense_no_flags(s: FrameState) -> FrameState:
    if s.out_of_view or s.box is None:
        return FrameState(out_of_view=True)
    return FrameState(s.box, Source.MANUAL)


def _lasot(s: FrameState) -> FrameState:
    return FrameState(s.box, None if s.box is None else Source.MANUAL, occluded=s.occluded,
                      out_of_view=s.out_of_view)


def _mot(s: FrameState) -> FrameState:
    if s.out_of_view or s.box is None:
        return FrameState(out_of_view=True)  # no row: a gap inside the track
    return FrameState(s.box, Source.MANUAL, occluded=s.occluded)


def _cvat(s: FrameState) -> FrameState:
    # the box of an out-of-view frame comes back too (our atom_source attribute marks it as ours)
    return FrameState(s.box, s.source, occluded=s.occluded, out_of_view=s.out_of_view)


EXPECTED = {
    "lasot": (_lasot, 0.5),
    "got10k": (_lasot, 5e-5),
    "otb": (_dense_no_flags, 0.5),
    "trackingnet": (_dense_no_flags, 1e-9),
    "vot": (_dense_no_flags, 1e-9),
    "mot": (_mot, 1e-9),
    "cvat": (_cvat, 0.011),
    "json": (lambda s: s, 0.0),
}
LABELS_KEPT = {"lasot", "got10k", "cvat", "json", "vot"}  # MOT: labels become MOT classes (mot_classes test)


def _import_exported(fmt: str, paths: list[Path], out: Path) -> Document:
    """Import what an export wrote, object by object for the one-object-per-sequence formats."""
    module = get_format(fmt)
    video = VideoRef(None, NUM_FRAMES)
    if fmt in ("mot", "cvat", "json"):
        return module.import_(paths[0])
    if fmt == "otb":
        return module.import_(paths[0].parent, video=video)
    doc = Document(video)
    for path in paths:
        module.import_(path, document=doc)
    return doc


def _assert_states_match(original: Document, obj_id: int, imported: Document, new_id: int, fmt: str) -> None:
    expect, tol = EXPECTED[fmt]
    got_states = imported.object(new_id).states
    for frame in range(NUM_FRAMES):
        want = expect(original.state(obj_id, frame) or FrameState())
        got = got_states.get(frame) or FrameState()
        assert (got.occluded, got.out_of_view) == (want.occluded, want.out_of_view), (fmt, obj_id, frame)
        assert got.source == want.source, (fmt, obj_id, frame)
        if want.box is None:
            assert got.box is None, (fmt, obj_id, frame)
        else:
            assert np.allclose(got.box.as_tuple(), want.box.as_tuple(), atol=tol, rtol=0), (fmt, frame, got, want)
        if fmt == "json":
            assert got == want


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_round_trips(fmt, tmp_path):
    original = rich_document()
    paths = get_format(fmt).export(original, None, tmp_path)
    imported = _import_exported(fmt, paths, tmp_path)
    assert len(imported.object_ids) == 2
    for obj_id, new_id in zip(original.object_ids, imported.object_ids):
        _assert_states_match(original, obj_id, imported, new_id, fmt)
        if fmt in LABELS_KEPT:
            assert imported.object(new_id).label == original.object(obj_id).label
    if fmt in ("lasot", "json"):
        assert imported.object(imported.object_ids[0]).description == "a red car turning left"
    if fmt in ("got10k", "json"):
        assert imported.object(imported.object_ids[0]).attributes["motion_class"] == "turning"
    if fmt in ("mot", "cvat", "json", "got10k"):
        assert imported.video.size == (640, 360)


def test_lasot_layout_and_values(tmp_path):
    doc = rich_document()
    [car, person] = get_format("lasot").export(doc, None, tmp_path)
    assert car == tmp_path / "car" / "car-1" and person == tmp_path / "person" / "person-1"
    gt = (car / "groundtruth.txt").read_text().splitlines()
    assert len(gt) == NUM_FRAMES and gt[0] == "101,51,40,30" and gt[14] == "0,0,0,0"
    occlusion = (car / "full_occlusion.txt").read_text()
    assert occlusion.count("\n") == 1 and occlusion.strip().split(",")[16:18] == ["1", "1"]
    assert (car / "out_of_view.txt").read_text().strip().split(",")[13:16] == ["1", "1", "1"]
    assert (car / "nlp.txt").read_text() == "a red car turning left\n"
    two = Document(VideoRef(None, 3))
    for _ in range(2):
        o = two.add_object("bird")
        for f in range(3):
            two.set_box(o, f, (0, 0, 5, 5))
    folders = get_format("lasot").export(two, None, tmp_path / "b", first_index=7)
    assert [f.name for f in folders] == ["bird-7", "bird-8"]


def test_lasot_frames_export_with_a_video_source(tmp_path):
    class FakeVideo:
        def read(self, i):
            frame = np.zeros((8, 10, 3), np.uint8)
            frame[..., 0] = 200  # red in RGB
            return frame

    doc = Document(VideoRef(None, 3, 25.0, 10, 8))
    o = doc.add_object("ball")
    for f in range(3):
        doc.set_box(o, f, (1, 1, 3, 3))
    [folder] = get_format("lasot").export(doc, None, tmp_path, video_source=FakeVideo())
    assert sorted(p.name for p in (folder / "img").iterdir()) == ["00000001.jpg", "00000002.jpg", "00000003.jpg"]
    import cv2

    bgr = cv2.imread(str(folder / "img" / "00000001.jpg"))
    assert bgr[4, 5, 2] > 150 and bgr[4, 5, 0] < 60  # stored as BGR: red is channel 2


def test_got10k_layout(tmp_path):
    [folder] = get_format("got10k").export(rich_document(), [1], tmp_path)
    meta = (folder / "meta_info.ini").read_text().split("\n")
    assert meta[0] == "[METAINFO]" and meta[5] == "object_class: car" and meta[6] == "motion_class: turning"
    assert meta[10] == "resolution: (640, 360)" and meta[4] == "anno_fps: 25Hz"
    assert (folder / "groundtruth.txt").read_text().split("\n")[0] == "101.0000,51.0000,40.0000,30.0000"
    assert (folder / "absence.label").read_text().split()[13:16] == ["1", "1", "1"]
    assert (folder / "cover.label").read_text().split()[15:18] == ["0", "0", "0"]
    assert (tmp_path / "list.txt").read_text() == "car-1\n"


def test_otb_mot_cvat_layouts(tmp_path):
    doc = rich_document()
    files = get_format("otb").export(doc, None, tmp_path / "otb", delimiter="\t")
    assert [f.name for f in files] == ["groundtruth_rect.1.txt", "groundtruth_rect.2.txt"]
    assert files[0].parent.name == "street" and files[0].read_text().split("\n")[0] == "101\t51\t40\t30"
    [gt] = get_format("mot").export(doc, None, tmp_path / "mot")
    assert gt == tmp_path / "mot" / "street" / "gt" / "gt.txt"
    rows = gt.read_text().splitlines()
    assert rows[0] == "1,1,101,51,40,30,1,3,1" and rows[1] == "1,2,11,201,20,60,1,1,1"  # MOT classes: car, pedestrian
    assert "6,2,16,201,20,60,1,1,0" in rows  # occluded: visibility 0
    assert not any(r.startswith(("14,1,", "15,1,", "16,1,")) for r in rows)  # out of view: no row
    assert (gt.parent / "labels.txt").read_text().splitlines()[:3] == ["pedestrian", "person on vehicle", "car"]
    assert "seqLength=30" in (gt.parent.parent / "seqinfo.ini").read_text()
    [xml] = get_format("cvat").export(doc, None, tmp_path / "cvat")
    text = xml.read_text()
    assert ('<box frame="0" keyframe="1" outside="0" occluded="0" xtl="100.00" ytl="50.00" xbr="140.00" '
            'ybr="80.00"') in text
    assert re.search(r'<box frame="9" keyframe="0" outside="0"', text)  # interpolated: not a keyframe
    assert re.search(r'<box frame="14" keyframe="1" outside="1"', text)


def test_cvat_track_ending_early_gets_an_outside_keyframe(tmp_path):
    doc = Document(VideoRef(None, 10))
    o = doc.add_object("dog")
    doc.set_box(o, 2, (0, 0, 5, 5))
    doc.set_box(o, 4, (4, 0, 5, 5))
    [xml] = get_format("cvat").export(doc, None, tmp_path)
    assert re.search(r'<box frame="5" keyframe="1" outside="1"', xml.read_text())
    back = get_format("cvat").import_(xml)
    assert back.frames(1) == [2, 4]  # our own end marker does not come back as a flag


def test_cvat_import_keeps_only_real_keyframes(tmp_path):
    """A CVAT dump lists every frame; only keyframes are manual, the frames CVAT interpolated stay interpolated."""
    xml = tmp_path / "annotations.xml"
    xml.write_text("""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><size>6</size><original_size><width>320</width><height>240</height></original_size></task></meta>
  <track id="3" label="car" source="manual">
    <box frame="0" outside="0" occluded="0" keyframe="1" xtl="0.00" ytl="0.00" xbr="10.00" ybr="10.00" z_order="0"/>
    <box frame="1" outside="0" occluded="0" keyframe="0" xtl="1.00" ytl="0.00" xbr="11.00" ybr="10.00" z_order="0"/>
    <box frame="2" outside="0" occluded="1" keyframe="1" xtl="2.00" ytl="0.00" xbr="12.00" ybr="10.00" z_order="0"/>
    <box frame="3" outside="1" occluded="0" keyframe="1" xtl="2.00" ytl="0.00" xbr="12.00" ybr="10.00" z_order="0"/>
  </track>
  <track id="4" label="road" source="manual">
    <polygon frame="0" outside="0" occluded="0" keyframe="1" points="0,0;1,1;2,0" z_order="0"/>
  </track>
</annotations>
""")
    doc = get_format("cvat").import_(xml)
    assert doc.object_ids == [4] and doc.object(4).label == "car"  # CVAT's id 3, the polygon track skipped
    assert doc.keyframes(4) == [0, 2]
    assert doc.state(4, 1) == FrameState(Box(1, 0, 10, 10), Source.INTERPOLATED)
    assert doc.state(4, 2).occluded and doc.state(4, 3) == FrameState(out_of_view=True)
    assert doc.video.num_frames == 6 and doc.video.size == (320, 240)


def test_cvat_for_images_and_dtds_are_refused(tmp_path):
    xml = tmp_path / "a.xml"
    xml.write_text('<annotations>\n<version>1.1</version>\n<image id="0" name="a.jpg"/>\n</annotations>')
    with pytest.raises(FormatError, match=r"a.xml, line 3: this is CVAT for images"):
        get_format("cvat").import_(xml)
    xml.write_text('<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY x "xx">]>\n<annotations/>')
    with pytest.raises(FormatError, match=r"line 2: a DTD"):
        get_format("cvat").import_(xml)


def test_mot_import_keeps_ids_and_flags_gaps(tmp_path):
    gt = tmp_path / "seq" / "gt" / "gt.txt"
    gt.parent.mkdir(parents=True)
    gt.write_text("1,7,11,21,10,10,1,1,1\n3,7,13,21,10,10,1,1,0\n2,9,5,5,4,4,1,3,0.5\n")
    doc = get_format("mot").import_(tmp_path / "seq")
    assert doc.object_ids == [7, 9]
    assert [doc.object(i).label for i in (7, 9)] == ["pedestrian", "car"]  # MOT16/17 class table
    assert doc.state(7, 0) == FrameState(Box(10, 20, 10, 10), Source.MANUAL)
    assert doc.state(7, 1) == FrameState(out_of_view=True)
    assert doc.state(7, 2).occluded
    gt.write_text("1,7,11,21,10,10,1,1,1\n1,7,11,21,10,10,1,1,1\n")
    with pytest.raises(FormatError, match=r"gt.txt, line 2: track 7 has a second row for frame 1"):
        get_format("mot").import_(gt)


def test_incomplete_annotations_need_missing_absent(tmp_path):
    doc = Document(VideoRef(None, 10))
    o = doc.add_object("cat")
    doc.set_box(o, 0, (0, 0, 5, 5))
    doc.set_box(o, 9, (0, 0, 5, 5))
    with pytest.raises(IncompleteAnnotationError, match=r"8 of 10 frames \(1-8\)"):
        get_format("lasot").export(doc, None, tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-written
    [folder] = get_format("lasot").export(doc, None, tmp_path, missing="absent")
    assert (folder / "out_of_view.txt").read_text().strip() == "0,1,1,1,1,1,1,1,1,0"


def test_import_into_an_existing_document_adds_objects_only(tmp_path):
    target = rich_document()
    before = {o: dict(target.object(o).states) for o in target.object_ids}
    events = []
    target.subscribe(events.append)
    [folder] = get_format("lasot").export(rich_document(), [2], tmp_path)
    get_format("lasot").import_(folder, document=target)
    assert target.object_ids == [1, 2, 3] and target.object(3).label == "person"
    assert {o: dict(target.object(o).states) for o in (1, 2)} == before
    assert [e.kind.value for e in events] == ["object_added", "frames"]  # one batch


def test_files_of_another_video_are_refused(tmp_path):
    gt = tmp_path / "seq" / "groundtruth_rect.txt"
    gt.parent.mkdir()
    gt.write_text("1,1,5,5\n" * 12)
    target = Document(VideoRef(None, 10))
    with pytest.raises(FormatError, match=r"groundtruth_rect.txt, line 11: frame 10 is past"):
        get_format("otb").import_(gt.parent, document=target)
    assert target.object_ids == []


# ---- fuzzing: every parser, random and mutated text ---------------------------------------------------

def _export_sample(fmt: str, folder: Path) -> tuple[Path, list[Path]]:
    """Export a small valid sample; returns (what to import, the files worth mutating)."""
    doc = rich_document()
    paths = get_format(fmt).export(doc, [1] if fmt not in ("mot", "cvat", "json") else None, folder)
    if fmt == "lasot":
        return paths[0], [paths[0] / n for n in ("groundtruth.txt", "full_occlusion.txt", "out_of_view.txt",
                                                 "nlp.txt")]
    if fmt == "got10k":
        return paths[0], [paths[0] / n for n in ("groundtruth.txt", "absence.label", "cover.label",
                                                 "meta_info.ini")]
    if fmt == "mot":
        return paths[0], [paths[0], paths[0].parent / "labels.txt", paths[0].parent.parent / "seqinfo.ini"]
    if fmt == "otb":
        return paths[0].parent, paths
    return paths[0], paths


_SAMPLES: dict[str, tuple[dict[str, bytes], str, list[str]]] = {}


def _fuzz_sample(fmt: str, folder: Path) -> tuple[Path, list[Path]]:
    """The sample of :func:`_export_sample`, exported once per format and copied into ``folder``."""
    if fmt not in _SAMPLES:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            target, files = _export_sample(fmt, root)
            contents = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
            _SAMPLES[fmt] = (contents, str(target.relative_to(root)), [str(f.relative_to(root)) for f in files])
    contents, target, victims = _SAMPLES[fmt]
    for rel, data in contents.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder / target, [folder / v for v in victims]


_TOKENS = st.sampled_from(["0", "1", "-1", "12.5", "1e400", "nan", "inf", ",", ", ", "\t", " ", "\n", "\r\n",
                           "", "x", "\u0661", "1_0", "\x00", '"', "<", ">", "=", "&amp;", "&x;", "]]>", "\ufeff",
                           "keyframe", "outside=\"1\"", "frame=\"", "99999999", ":", "[METAINFO]"])


def _mutate(data, text: str) -> str | bytes:
    kind = data.draw(st.sampled_from(["line", "cut", "insert", "tokens", "random", "bytes"]))
    lines = text.split("\n")
    if kind == "line":
        i = data.draw(st.integers(0, len(lines) - 1))
        lines[i] = "".join(data.draw(st.lists(_TOKENS, max_size=8)))
        return "\n".join(lines)
    if kind == "cut":
        return text[: data.draw(st.integers(0, len(text)))]
    if kind == "insert":
        i = data.draw(st.integers(0, len(text)))
        return text[:i] + "".join(data.draw(st.lists(_TOKENS, min_size=1, max_size=4))) + text[i:]
    if kind == "tokens":
        return "".join(data.draw(st.lists(_TOKENS, max_size=30)))
    if kind == "random":
        return data.draw(st.text(max_size=80))
    raw = text.encode()
    i = data.draw(st.integers(0, len(raw)))
    return raw[:i] + data.draw(st.binary(min_size=1, max_size=6)) + raw[i:]


def _doc_contents(doc: Document):
    return doc.video, [(o.id, o.label, o.description, dict(o.attributes), dict(o.states)) for o in doc.objects()]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_parsers_raise_only_format_errors_and_change_nothing(fmt, data):
    with tempfile.TemporaryDirectory() as tmp:
        target, files = _fuzz_sample(fmt, Path(tmp) / "sample")
        victim = data.draw(st.sampled_from(files))
        mutated = _mutate(data, victim.read_text(encoding="utf-8"))
        if isinstance(mutated, bytes):
            victim.write_bytes(mutated)
        else:
            victim.write_text(mutated, encoding="utf-8", newline="")
        document = rich_document()
        before = _doc_contents(document)
        events = []
        document.subscribe(events.append)
        try:
            get_format(fmt).import_(target, document=document)
        except FormatError as exc:
            message = str(exc)
            assert str(Path(tmp)) in message, message  # names the file
            if fmt != "json":  # JSON structure errors name the JSON location instead of a line
                assert re.search(r", line \d+", message), message
            assert _doc_contents(document) == before and events == []
        else:
            video, objects = _doc_contents(document)
            assert objects[: len(before[1])] == before[1]  # existing objects untouched


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_fuzz_cvat_with_arbitrary_xml_like_input(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "annotations.xml"
        path.write_bytes(content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content)
        try:
            get_format("cvat").import_(path, document=Document(VideoRef(None, 30)))
        except FormatError as exc:
            assert "annotations.xml" in str(exc)


# ---- real data ------------------------------------------------------------------------------------------

def _sequences(kind: str) -> list[Path]:
    folder = DATA / kind
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


@pytest.mark.skipif(not _sequences("OTB"), reason=f"OTB sequences not found under {DATA}/OTB")
@pytest.mark.parametrize("seq", _sequences("OTB"), ids=lambda p: p.name)
def test_real_otb_sequences_import(seq):
    num_frames = len(list((seq / "img").glob("*.jpg")))
    doc = get_format("otb").import_(seq, video=VideoRef(str(seq / "img"), num_frames))
    files = sorted(seq.glob("groundtruth_rect*.txt"))
    assert len(doc.object_ids) == len(files)
    for obj in doc.objects():
        assert obj.label == seq.name
        assert len(obj.states) == len((seq / files[0].name).read_text().strip().splitlines())
        assert all(s.box is not None for s in obj.states.values())


@pytest.mark.skipif(not _sequences("VOT"), reason=f"VOT sequences not found under {DATA}/VOT")
@pytest.mark.parametrize("seq", _sequences("VOT"), ids=lambda p: p.name)
def test_real_vot_sequences_import(seq):
    doc = get_format("vot").import_(seq)
    lines = (seq / "groundtruth.txt").read_text().strip().splitlines()
    obj = doc.objects()[0]
    assert len(obj.states) == len(lines) and obj.label == seq.name
    xs = [float(v) for v in lines[0].split(",")[0::2]]
    assert doc.box(obj.id, 0).x == pytest.approx(min(xs))


@pytest.mark.skipif(not (DATA / "LaSOT").is_dir(), reason=f"no LaSOT data under {DATA}/LaSOT (only OTB and VOT "
                                                          "are shipped in ../shared/data)")
def test_real_lasot_sequences_import():
    for gt in sorted((DATA / "LaSOT").glob("*/*/groundtruth.txt"))[:5]:
        doc = get_format("lasot").import_(gt.parent)
        assert len(doc.objects()[0].states) == len(gt.read_text().strip().splitlines())


# ---- the atom import / atom export commands -------------------------------------------------------------

def _frame_folder(folder: Path, count: int = 4) -> Path:
    import cv2

    folder.mkdir(parents=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i + 1:04d}.jpg"), np.full((24, 32, 3), 40 * i, np.uint8))
    return folder


def test_cli_import_then_export(tmp_path, capsys):
    from tracker_core.cli import main

    img = _frame_folder(tmp_path / "Seq" / "img")
    (tmp_path / "Seq" / "groundtruth_rect.txt").write_text("1\t2\t10\t8\n2,2,10,8\n0,0,0,0\n4 2 10 8\n")
    project = tmp_path / "seq.json"
    assert main(["import", str(tmp_path / "Seq"), "--format", "otb", "--video", str(img),
                 "--out", str(project)]) == 0
    assert "1 object(s) (1:Seq), 4 frames" in capsys.readouterr().out
    doc = load_project(project)
    assert doc.video.path == str(img) and doc.video.size == (32, 24)
    assert doc.box(1, 0) == Box(0, 1, 10, 8) and doc.state(1, 2) == FrameState(out_of_view=True)

    assert main(["export", str(project), "--format", "lasot", "--out", str(tmp_path / "out"), "--frames"]) == 0
    folder = tmp_path / "out" / "Seq" / "Seq-1"
    assert capsys.readouterr().out.strip() == str(folder)
    assert (folder / "groundtruth.txt").read_text() == "1,2,10,8\n2,2,10,8\n0,0,0,0\n4,2,10,8\n"
    assert (folder / "out_of_view.txt").read_text() == "0,0,1,0\n"
    assert len(list((folder / "img").glob("*.jpg"))) == 4

    for fmt in ("got10k", "otb", "trackingnet", "vot", "mot", "cvat", "json"):
        assert main(["export", str(project), "--format", fmt, "--out", str(tmp_path / fmt), "--object", "1"]) == 0


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    from tracker_core.cli import main

    bad = tmp_path / "groundtruth_rect.txt"
    bad.write_text("1,2,3,4\n1,2,x,4\n")
    project = tmp_path / "p.json"
    assert main(["import", str(bad), "--format", "otb", "--out", str(project)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atom import: error: ") and "groundtruth_rect.txt, line 2" in err and not project.exists()

    bad.write_text("1,2,3,4\n")
    assert main(["import", str(bad), "--format", "otb", "--out", str(project)]) == 0
    assert main(["import", str(bad), "--format", "otb", "--out", str(project)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["import", str(bad), "--format", "mot", "--first-frame", "3", "--out", str(project), "--force"]) == 2
    assert main(["export", str(project), "--format", "cvat", "--out", str(tmp_path / "o"), "--object", "9"]) == 2
    assert "no object with id 9" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope.json"), "--format", "cvat", "--out", str(tmp_path / "o")]) == 2
    assert "cannot read the project file" in capsys.readouterr().err


def test_cli_export_of_incomplete_annotations_suggests_missing_absent(tmp_path, capsys):
    from tracker_core.cli import main

    doc = Document(VideoRef(None, 5, None, 64, 48))
    o = doc.add_object("kite")
    doc.set_box(o, 0, (1, 1, 4, 4))
    save_project(doc, tmp_path / "p.json")
    assert main(["export", str(tmp_path / "p.json"), "--format", "got10k", "--out", str(tmp_path / "o")]) == 2
    assert "(--missing absent)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written
    assert main(["export", str(tmp_path / "p.json"), "--format", "got10k", "--out", str(tmp_path / "o"),
                 "--missing", "absent"]) == 0
    assert (tmp_path / "o" / "kite-1" / "absence.label").read_text() == "0\n1\n1\n1\n1\n"


def test_one_list_of_format_names_serves_the_commands_and_the_app():
    from atom_gui.import_export import FORMATS as GUI_FORMATS
    from tracker_core.commands import export as export_command
    from tracker_core.commands import import_ as import_command

    assert export_command.FORMAT_CHOICES == (*FORMATS, "review")
    assert [name for name, _, _ in GUI_FORMATS] == list(FORMATS)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    import_command.add_parser(sub)
    choices = next(a for a in sub.choices["import"]._actions if a.dest == "format").choices
    assert tuple(choices) == tuple(FORMATS)  # "review" is an export only
    for name in FORMATS:
        assert get_format(name).NAME == name
