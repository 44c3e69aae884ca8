"""The conventions that the tools people use need from our exports, each found by running the tool itself on
our files (got10k 0.1.3, vot-toolkit 0.9.0, Datumaro 1.13, motmetrics 1.4, TrackEval 1.3; the commands are in
docs/FORMATS.md). These tests check the convention in our files; they do not need the tools."""

from __future__ import annotations

import configparser
import re

import numpy as np
import pytest

from tracker_core import atomic_files
from tracker_core.annotation import Document, Flag, Source, VideoRef
from tracker_core.annotation.formats import get_format
from tracker_core.boxes import Box
from tracker_core.cli import main
from tracker_core.errors import AtomError

W, H, N = 352, 288, 12


def document(path: str | None = "/data/OTB/Jogging/img", size=(W, H)) -> Document:
    """Two objects: one partly outside the image at frame 2 and out of view at 9-10, one sub-pixel at frame 3."""
    doc = Document(VideoRef(path, N, 30.0, *(size or (None, None))))
    a = doc.add_object("person")
    b = doc.add_object("runner")
    for f in range(N):
        doc.set_box(a, f, Box(100 + f, 60, 40, 80))
        doc.set_box(b, f, Box(200, 100 + f, 20.5, 30.25))
    doc.set_box(a, 2, Box(-10.5, 100, 40, 80))
    doc.set_box(b, 3, Box(100, 100, 0.001, 0.001))
    doc.set_flag(a, Flag.OUT_OF_VIEW, 9, 10)
    return doc


# ---- names ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, name", [("/d/OTB/Crossing/img", "Crossing"), ("/d/VOT/bag/color", "bag"),
                                        ("/d/MOT17-02/img1", "MOT17-02"), ("/d/clip.mp4", "clip"),
                                        ("/d/frames", "frames")])
def test_a_frame_folder_with_a_generic_name_is_named_after_its_parent(path, name):
    assert VideoRef(path).name == name


def test_sequences_are_named_after_the_video_or_name(tmp_path):
    doc = document()
    [gt] = get_format("otb").export(doc, [1], tmp_path / "otb")
    assert gt.parent.name == "Jogging"
    [anno] = get_format("trackingnet").export(doc, [1], tmp_path / "tn")
    assert anno.name == "Jogging.txt"
    [mot] = get_format("mot").export(doc, None, tmp_path / "mot", name="MOT17-99")
    assert mot.parent.parent.name == "MOT17-99"
    [xml] = get_format("cvat").export(doc, None, tmp_path / "cvat", name="task 7")
    assert "<name>task 7</name>" in xml.read_text()
    [folder] = get_format("lasot").export(doc, [2], tmp_path / "lasot", name="runner-7")
    assert folder.relative_to(tmp_path / "lasot").as_posix() == "runner/runner-7"
    with pytest.raises(AtomError, match="one LaSOT sequence"):
        get_format("lasot").export(doc, None, tmp_path / "lasot2", name="x")


# ---- one rule per format for sub-pixel boxes and boxes partly outside the image ----------------------------

def test_integer_formats_clip_to_the_image_and_keep_sub_pixel_boxes(tmp_path):
    doc = document()
    person, runner = get_format("lasot").export(doc, None, tmp_path / "lasot", missing="absent")
    person_lines = (person / "groundtruth.txt").read_text().splitlines()
    assert person_lines[2] == "1,101,30,80"  # x -10.5..29.5 clipped to 0..29.5: 1-based x 1, w 30
    assert person_lines[9] == "110,61,40,80"  # a flagged frame keeps its box; the flag says absent
    assert (runner / "groundtruth.txt").read_text().splitlines()[3] == "101,101,1,1"  # not 0 (absent)
    otb = get_format("otb").export(doc, None, tmp_path / "otb", missing="absent")
    assert otb[0].read_text().splitlines()[2] == "1,101,30,80"
    assert otb[1].read_text().splitlines()[3] == "101,101,1,1"
    outside = document()
    outside.set_box(1, 4, Box(-100, 10, 50, 50))  # wholly outside the image: an absent frame
    person = get_format("lasot").export(outside, [1], tmp_path / "out", missing="absent")[0]
    assert (person / "groundtruth.txt").read_text().splitlines()[4] == "0,0,0,0"
    assert (person / "out_of_view.txt").read_text().split(",")[4] == "1"


def test_float_dense_formats_clip_to_the_image(tmp_path):
    doc = document()
    [gt] = [f / "groundtruth.txt" for f in get_format("got10k").export(doc, [1], tmp_path / "got", missing="absent")]
    assert gt.read_text().splitlines()[2] == "1.0000,101.0000,29.5000,80.0000"
    [anno] = get_format("trackingnet").export(doc, [1], tmp_path / "tn", missing="absent")
    assert anno.read_text().splitlines()[2] == "0,100,29.5,80"
    [vot] = get_format("vot").export(doc, [1], tmp_path / "vot", missing="absent")
    assert vot.read_text().splitlines()[2] == "0,100,29.5,80"
    runner = get_format("got10k").export(doc, [2], tmp_path / "got2", missing="absent")[0]
    assert (runner / "groundtruth.txt").read_text().splitlines()[3] == "101.0000,101.0000,0.0010,0.0010"



def test_a_box_inside_the_image_is_written_exactly_and_not_marked_cut(tmp_path):
    box = Box(210.655705767991, 118.6150098919552, 22.093711768917533, 94.51631763558701)  # atom track, OTB Woman
    assert box.x + box.w - box.x != box.w  # clipping through the corners would change the width
    doc = document()
    doc.set_box(1, 5, box, Source.TRACKED)
    exact = "210.655705767991,118.6150098919552,22.093711768917533,94.51631763558701"
    [anno] = get_format("trackingnet").export(doc, [1], tmp_path / "tn", missing="absent")
    assert anno.read_text().splitlines()[5] == exact
    [vot] = get_format("vot").export(doc, [1], tmp_path / "vot", missing="absent")
    assert vot.read_text().splitlines()[5] == exact
    [runner] = get_format("trackingnet").export(doc, [2], tmp_path / "tn2", missing="absent")
    assert runner.read_text().splitlines()[3] == "100,100,0.001,0.001"
    [person] = get_format("got10k").export(doc, [1], tmp_path / "got", missing="absent")
    cut = np.loadtxt(person / "cut_by_image.label")
    assert cut[2] == 1 and cut.sum() == 1  # only the box that reaches past the left edge

def test_sparse_formats_keep_the_whole_box(tmp_path):
    doc = document()
    [gt] = get_format("mot").export(doc, None, tmp_path / "mot")
    assert "3,1,-9.5,101,40,80,1,1,1" in gt.read_text().splitlines()  # MOTChallenge annotates the full extent
    assert "4,2,101,101,0.001,0.001,1,1,1" in gt.read_text().splitlines()
    [xml] = get_format("cvat").export(doc, None, tmp_path / "cvat")
    text = xml.read_text()
    assert 'frame="2" keyframe="1" outside="0" occluded="0" xtl="-10.50" ytl="100.00" xbr="29.50"' in text
    assert 'frame="3" keyframe="1" outside="0" occluded="0" xtl="100.00" ytl="100.00" xbr="100.01" ybr="100.01"' \
        in text  # at least 0.01 px: CVAT and our import need xbr > xtl
    again = get_format("cvat").import_(xml)
    assert again.box(2, 3).w == pytest.approx(0.01)


# ---- GOT-10k: got10k's loader splits meta_info.ini lines on ': ' and needs every label file ------------------

def test_got10k_meta_info_and_labels_are_what_got10k_reads(tmp_path):
    person = get_format("got10k").export(document(), [1], tmp_path / "val", missing="absent")[0]
    meta = (person / "meta_info.ini").read_text().strip().split("\n")[1:]  # got10k's _fetch_meta, verbatim
    meta = {line.split(": ")[0]: line.split(": ")[1] for line in meta}
    assert meta["resolution"] == f"({W}, {H})" and meta["object_class"] == "person"
    for label in ("absence", "cover", "cut_by_image"):
        assert len(np.loadtxt(person / f"{label}.label")) == N
    assert np.loadtxt(person / "cut_by_image.label")[2] == 1 and np.loadtxt(person / "cut_by_image.label").sum() == 1
    assert (tmp_path / "val" / "list.txt").read_text() == "person-1\n"
    with pytest.raises(AtomError, match="needs the frame size"):
        get_format("got10k").export(document(size=None), [1], tmp_path / "nosize", missing="absent")
    assert not (tmp_path / "nosize").exists()


# ---- VOT: the toolkit reads a sequence folder through its `sequence` file, and a dataset through list.txt -----

def test_vot_writes_the_sequence_file_list_and_color_frames(tmp_path):
    class Frames:
        num_frames = N

        def read(self, i):
            return np.zeros((H, W, 3), np.uint8)

    files = get_format("vot").export(document(), None, tmp_path, missing="absent", video_source=Frames())
    assert [f.parent.name for f in files] == ["Jogging-person", "Jogging-runner"]
    assert (tmp_path / "list.txt").read_text() == "Jogging-person\nJogging-runner\n"
    props = dict(line.split("=", 1) for line in (files[0].parent / "sequence").read_text().splitlines())
    assert props["channels.color"] == "color/%08d.jpg" and props["length"] == str(N)
    assert (props["width"], props["height"], props["label"]) == (str(W), str(H), "person")
    assert sorted(p.name for p in (files[0].parent / "color").iterdir())[:2] == ["00000001.jpg", "00000002.jpg"]
    assert files[0].read_text().splitlines()[9] == "0,0,0,0"  # out of view: an empty rectangle
    again = get_format("vot").import_(files[0].parent, video=VideoRef(None, N))
    obj = again.objects()[0]
    assert obj.label == "person" and again.state(obj.id, 9).out_of_view


def test_vot_special_region_lines_import_as_absent(tmp_path):
    gt = tmp_path / "seq" / "groundtruth.txt"
    gt.parent.mkdir()
    gt.write_text("1,2,3,4\n0\nnan,nan,nan,nan\n")
    doc = get_format("vot").import_(gt.parent)
    assert [doc.state(1, f).out_of_view for f in range(3)] == [False, True, True]


# ---- MOT: origin, the class column, out-of-view flags to the end -------------------------------------------

def test_mot_origin_one_for_motchallenge_zero_for_cvat_and_datumaro(tmp_path):
    doc = document()
    one = get_format("mot").export(doc, None, tmp_path / "one")[0].read_text().splitlines()
    zero = get_format("mot").export(doc, None, tmp_path / "zero", origin=0)[0].read_text().splitlines()
    assert one[0] == "1,1,101,61,40,80,1,1,1" and zero[0] == "1,1,100,60,40,80,1,1,1"
    back = get_format("mot").import_(tmp_path / "zero" / "Jogging", origin=0)
    assert back.box(1, 0) == Box(100, 60, 40, 80)
    assert main(["import", str(tmp_path / "zero" / "Jogging"), "--format", "mot", "--origin", "0",
                 "--out", str(tmp_path / "p.json")]) == 0
    assert main(["import", str(tmp_path / "zero" / "Jogging"), "--format", "lasot", "--origin", "0",
                 "--out", str(tmp_path / "q.json")]) == 2


def test_mot_class_column_is_motchallenges_table(tmp_path):
    """TrackEval refuses a tracker row of a class other than 1, and reads gt classes from its fixed table."""
    doc = document()
    doc.add_object("car")
    doc.set_box(3, 0, Box(1, 1, 10, 10))
    gt = get_format("mot").export(doc, None, tmp_path / "mot")[0]
    classes = {int(r.split(",")[1]): int(r.split(",")[7]) for r in gt.read_text().splitlines()}
    assert classes == {1: 1, 2: 1, 3: 3}  # person and an unknown label: pedestrian; car: 3
    assert (gt.parent / "labels.txt").read_text().splitlines()[:3] == ["pedestrian", "person on vehicle", "car"]
    labels = get_format("mot").export(doc, None, tmp_path / "labels", classes="labels")[0]
    assert {int(r.split(",")[7]) for r in labels.read_text().splitlines()} == {1, 2, 3}
    assert (labels.parent / "labels.txt").read_text() == "person\nrunner\ncar\n"
    assert [o.label for o in get_format("mot").import_(labels).objects()] == ["person", "runner", "car"]


def test_mot_keeps_out_of_view_flags_after_the_last_row(tmp_path):
    doc = document()
    doc.set_flag(1, Flag.OUT_OF_VIEW, 9, N - 1)  # absent to the end
    gt = get_format("mot").export(doc, None, tmp_path / "mot")[0]
    seqinfo = configparser.ConfigParser()
    seqinfo.read(gt.parent.parent / "seqinfo.ini")
    assert seqinfo["Sequence"]["seqLength"] == str(N)  # TrackEval reads the length here
    back = get_format("mot").import_(gt.parent.parent)
    assert all(back.state(1, f).out_of_view for f in range(9, N))


# ---- CVAT: absolute frame numbers bounded by stop_frame; the box kept under an out-of-view flag -------------

def test_a_cvat_dump_starting_at_frame_10_with_a_step_of_3_imports(tmp_path):
    xml = tmp_path / "annotations.xml"
    boxes = "".join(f'<box frame="{f}" outside="0" occluded="0" keyframe="1" xtl="{f}" ytl="5" xbr="{f + 20}" '
                    f'ybr="25" z_order="0"></box>' for f in range(10, 41, 3))
    xml.write_text('<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task>'
                   '<id>3</id><name>t</name><size>11</size><mode>interpolation</mode><start_frame>10</start_frame>'
                   '<stop_frame>40</stop_frame><frame_filter>step=3</frame_filter></task></meta>'
                   f'<track id="0" label="car" source="manual">{boxes}</track></annotations>')
    doc = get_format("cvat").import_(xml)
    assert doc.frames(1) == list(range(10, 41, 3)) and doc.num_frames == 41
    assert doc.box(1, 40) == Box(40, 5, 20, 20)
    with pytest.raises(AtomError, match="past the video's last frame"):
        get_format("cvat").import_(xml, video=VideoRef(None, 30))


def test_cvat_keeps_the_box_of_an_out_of_view_frame_and_stops_shapes_at_gaps(tmp_path):
    doc = document()
    doc.clear(1, 5, sources={Source.MANUAL})  # a gap: CVAT would carry frame 4's box on over it
    [xml] = get_format("cvat").export(doc, [1], tmp_path)
    text = xml.read_text()
    assert re.search(r'<box frame="5" keyframe="1" outside="1"[^>]*>\s*<attribute name="atom_source">end<', text)
    back = get_format("cvat").import_(xml)
    assert back.state(1, 9).out_of_view and back.box(1, 9) == doc.box(1, 9)
    assert back.state(1, 5) is None


# ---- all files of one export, or none --------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["lasot", "got10k", "otb", "trackingnet", "vot", "mot", "cvat", "json"])
def test_a_full_disk_leaves_no_partial_export(fmt, tmp_path, monkeypatch):
    calls = []

    def fail_on_the_second_file(fd, data):
        calls.append(1)
        if len(calls) == 2 or fmt in ("cvat", "json"):  # one file: it fails
            raise OSError(28, "No space left on device")
        atomic_files.os.write(fd, data)

    monkeypatch.setattr(atomic_files, "_write_all", fail_on_the_second_file)
    options = {} if fmt in ("mot", "cvat", "json") else {"missing": "absent"}
    with pytest.raises(OSError, match="No space"):
        get_format(fmt).export(document(), None, tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()  # no 0-byte file, no half-made folder
