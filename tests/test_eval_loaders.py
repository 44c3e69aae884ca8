"""Benchmark loaders on tiny synthetic copies of each benchmark's real layout, and on ../shared/data when present.

Frame files are empty: loaders only list and name frames (reading happens in the runner).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tracker_core import datasets
from tracker_core.datasets import load_dataset, load_datasets
from tracker_core.errors import CommandError, FormatError

# Same location rule as conftest.SHARED_DATA (ATOM_SHARED_DATA, else ../shared/data next to the repository).
SHARED = Path(os.environ.get("ATOM_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def touch_frames(folder: Path, numbers, pattern: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in numbers:
        (folder / pattern.format(i)).write_bytes(b"")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def by_name(seqs):
    return {s.name: s for s in seqs}


# ---- OTB --------------------------------------------------------------------------------------------------

def test_otb_delimiters_second_targets_and_table_ranges(tmp_path):
    root = tmp_path / "OTB"
    # Scanned folders (not in the benchmark table), each with another delimiter.
    for name, sep in (("Tabby", "\t"), ("Commy", ","), ("Spacy", " ")):
        touch_frames(root / name / "img", range(1, 4), "{:04d}.jpg")
        write(root / name / "groundtruth_rect.txt", "".join(sep.join(["11", "21", "5", "6"]) + "\n"
                                                            for _ in range(3)))
    # Two targets, numbered files -> Twins_1 / Twins_2; plain + .2 -> Pair_1 / Pair_2.
    touch_frames(root / "Twins" / "img", range(1, 3), "{:04d}.jpg")
    write(root / "Twins" / "groundtruth_rect.1.txt", "1,1,2,2\n1,1,2,2\n")
    write(root / "Twins" / "groundtruth_rect.2.txt", "5\t5\t3\t3\n5\t5\t3\t3\n")
    touch_frames(root / "Pair" / "img", range(1, 3), "{:04d}.jpg")
    write(root / "Pair" / "groundtruth_rect.txt", "1,1,2,2\n1,1,2,2\n")
    write(root / "Pair" / "groundtruth_rect.2.txt", "7,7,2,2\n7,7,2,2\n")
    # Table sequences: BlurCar1 starts at frame 247 of 988; Tiger1 omits its first 5 frames; Skating2's first
    # target in plain groundtruth_rect.txt.
    touch_frames(root / "BlurCar1" / "img", range(1, 989), "{:04d}.jpg")
    write(root / "BlurCar1" / "groundtruth_rect.txt", "".join(f"{i},10,20,30\n" for i in range(742)))
    touch_frames(root / "Tiger1" / "img", range(1, 355), "{:04d}.jpg")
    write(root / "Tiger1" / "groundtruth_rect.txt", "".join(f"{i}\t10\t20\t30\n" for i in range(354)))
    touch_frames(root / "Skating2" / "img", range(1, 474), "{:04d}.jpg")
    write(root / "Skating2" / "groundtruth_rect.txt", "3,3,9,9\n" * 473)
    write(root / "Skating2" / "groundtruth_rect.2.txt", "4 4 9 9\n" * 473)

    seqs = by_name(load_dataset("otb", root))
    assert set(seqs) == {"Tabby", "Commy", "Spacy", "Twins_1", "Twins_2", "Pair_1", "Pair_2", "BlurCar1", "Tiger1",
                         "Skating2_1", "Skating2_2"}
    for name in ("Tabby", "Commy", "Spacy"):
        s = seqs[name]
        assert len(s) == 3 and s.one_based and s.gt_complete
        np.testing.assert_array_equal(s.gt[0], (10, 20, 5, 6))  # 1-based file -> 0-based
        assert s.frames[0].endswith(f"{name}/img/0001.jpg")
    np.testing.assert_array_equal(seqs["Twins_2"].gt[0], (4, 4, 3, 3))
    np.testing.assert_array_equal(seqs["Pair_1"].gt[0], (0, 0, 2, 2))
    np.testing.assert_array_equal(seqs["Pair_2"].gt[0], (6, 6, 2, 2))
    car = seqs["BlurCar1"]
    assert len(car) == 742 and car.frames[0].endswith("0247.jpg") and car.frames[-1].endswith("0988.jpg")
    tiger = seqs["Tiger1"]
    assert len(tiger) == 349 and tiger.frames[0].endswith("0006.jpg")
    assert tiger.gt[0][0] == 5 - 1  # the 6th line (x=5) in 1-based -> 4
    np.testing.assert_array_equal(seqs["Skating2_1"].gt[0], (2, 2, 9, 9))
    np.testing.assert_array_equal(seqs["Skating2_2"].gt[0], (3, 3, 9, 9))


def test_bad_ground_truth_line_names_file_and_line(tmp_path):
    root = tmp_path / "OTB"
    touch_frames(root / "Bad" / "img", range(1, 3), "{:04d}.jpg")
    write(root / "Bad" / "groundtruth_rect.txt", "1,2,3,4\n1,2,x,4\n")
    with pytest.raises(FormatError, match=r"groundtruth_rect.txt:2"):
        load_dataset("otb", root)


# ---- LaSOT ------------------------------------------------------------------------------------------------

def test_lasot_flags(tmp_path):
    seq = tmp_path / "LaSOT" / "airplane" / "airplane-1"
    touch_frames(seq / "img", range(1, 5), "{:08d}.jpg")
    write(seq / "groundtruth.txt", "10,20,30,40\n11,20,30,40\n0,0,0,0\n12,20,30,40\n")
    write(seq / "full_occlusion.txt", "0,0,1,0\n")
    write(seq / "out_of_view.txt", "0,1,0,0")
    write(seq / "nlp.txt", "white airplane\n")
    (s,) = load_dataset("lasot", tmp_path / "LaSOT")
    assert s.name == "airplane-1" and s.object_class == "airplane" and len(s) == 4
    assert s.visible.tolist() == [True, False, False, True]
    assert s.valid_mask().tolist() == [True, False, False, True]
    np.testing.assert_array_equal(s.gt[0], (9, 19, 30, 40))
    assert s.frames[3].endswith("airplane-1/img/00000004.jpg")


def test_lasot_flag_length_mismatch_is_an_error(tmp_path):
    seq = tmp_path / "LaSOT" / "cat" / "cat-2"
    touch_frames(seq / "img", range(1, 3), "{:08d}.jpg")
    write(seq / "groundtruth.txt", "1,1,5,5\n1,1,5,5\n")
    write(seq / "full_occlusion.txt", "0,0,0\n")
    with pytest.raises(FormatError, match="3 flags for 2 frames"):
        load_dataset("lasot", tmp_path / "LaSOT")


# ---- GOT-10k ----------------------------------------------------------------------------------------------

def test_got10k_absence_and_cover(tmp_path):
    val = tmp_path / "GOT10k" / "val"
    seq = val / "GOT-10k_Val_000001"
    touch_frames(seq, range(1, 5), "{:08d}.jpg")
    write(seq / "groundtruth.txt", "212.0000,118.0000,96.0000,54.0000\n" * 4)
    write(seq / "absence.label", "0\n0\n1\n0\n")
    write(seq / "cover.label", "8\n0\n0\n5\n")
    write(seq / "meta_info.ini", "[METAINFO]\nobject_class: car\n")
    write(val / "list.txt", "GOT-10k_Val_000001\n")
    (s,) = load_dataset("got10k", val)
    assert s.visible.tolist() == [True, False, False, True]
    np.testing.assert_array_equal(s.gt[0], (211, 117, 96, 54))
    with pytest.raises(CommandError, match="one split folder"):
        load_dataset("got10k", tmp_path / "GOT10k")


def test_got10k_test_split_has_first_box_only(tmp_path):
    seq = tmp_path / "test" / "GOT-10k_Test_000001"
    touch_frames(seq, range(1, 4), "{:08d}.jpg")
    write(seq / "groundtruth.txt", "10,10,20,20\n")
    (s,) = load_dataset("got10k", tmp_path / "test")
    assert not s.gt_complete and len(s) == 3 and np.isnan(s.gt[1]).all()


# ---- VOT --------------------------------------------------------------------------------------------------

def test_vot_polygons_become_axis_aligned_boxes(tmp_path):
    seq = tmp_path / "VOT" / "bag"
    touch_frames(seq / "color", range(1, 4), "{:08d}.jpg")
    write(seq / "groundtruth.txt",
          "334.02,128.36,438.19,188.78,396.39,260.83,292.23,200.41\n"
          "10,20,30,40\n"
          "nan,nan,nan,nan,nan,nan,nan,nan\n")
    write(tmp_path / "VOT" / "list.txt", "bag\n")
    (s,) = load_dataset("vot", tmp_path / "VOT")
    assert not s.one_based
    np.testing.assert_allclose(s.gt[0], (292.23, 128.36, 438.19 - 292.23, 260.83 - 128.36))
    np.testing.assert_array_equal(s.gt[1], (10, 20, 30, 40))
    assert s.valid_mask().tolist() == [True, True, False]
    assert s.frames[0].endswith("bag/color/00000001.jpg")


# ---- TrackingNet ------------------------------------------------------------------------------------------

def test_trackingnet_zero_based_numeric_frames(tmp_path):
    for split, lines in (("TRAIN_0", 11), ("TEST", 1)):
        touch_frames(tmp_path / "TN" / split / "frames" / f"vid_{split}", range(0, 11), "{}.jpg")
        write(tmp_path / "TN" / split / "anno" / f"vid_{split}.txt", "5,6,7,8\n" * lines)
    seqs = by_name(load_dataset("trackingnet", tmp_path / "TN"))
    train, test = seqs["vid_TRAIN_0"], seqs["vid_TEST"]
    assert [Path(f).name for f in train.frames][:3] == ["0.jpg", "1.jpg", "2.jpg"]
    assert Path(train.frames[-1]).name == "10.jpg"  # numeric, not lexicographic, order
    assert train.gt_complete and not test.gt_complete
    np.testing.assert_array_equal(train.gt[0], (5, 6, 7, 8))  # kept as written (0-based)
    # A single split folder works too.
    assert [s.name for s in load_dataset("trackingnet", tmp_path / "TN" / "TEST")] == ["vid_TEST"]


# ---- UAV123 and NFS ---------------------------------------------------------------------------------------

def test_uav123_shared_folder_frame_ranges_and_nan_rows(tmp_path):
    root = tmp_path / "UAV123"
    touch_frames(root / "data_seq" / "UAV123" / "truck4", range(1, 1262), "{:06d}.jpg")
    write(root / "anno" / "UAV123" / "truck4_1.txt", "1,2,3,4\n" * 577)
    write(root / "anno" / "UAV123" / "truck4_2.txt", "1,2,3,4\n" + "NaN,NaN,NaN,NaN\n" + "1,2,3,4\n" * 683)
    seqs = by_name(load_dataset("uav", root))
    assert set(seqs) == {"uav_truck4_1", "uav_truck4_2"}
    second = seqs["uav_truck4_2"]
    assert len(second) == 685 and second.frames[0].endswith("000577.jpg")
    assert second.valid_mask().sum() == 684 and not second.valid_mask()[1]
    with pytest.raises(CommandError, match="expected layout"):
        load_dataset("uav123", tmp_path)


def test_nfs_layout(tmp_path):
    root = tmp_path / "NFS"
    touch_frames(root / "sequences" / "bee", range(1, 46), "{:05d}.jpg")
    write(root / "anno" / "nfs_bee.txt", "10\t10\t4\t4\n" * 45)
    (s,) = load_dataset("nfs", root)
    assert s.name == "nfs_bee" and len(s) == 45 and s.frames[-1].endswith("bee/00045.jpg")
    np.testing.assert_array_equal(s.gt[0], (9, 9, 4, 4))


# ---- several datasets -------------------------------------------------------------------------------------

def test_arguments_filters_and_name_clashes(tmp_path):
    for kind, root in (("otb", tmp_path / "a"), ("vot", tmp_path / "b")):
        touch_frames(root / "same" / ("img" if kind == "otb" else "color"), range(1, 3), "{:08d}.jpg")
        write(root / "same" / ("groundtruth_rect.txt" if kind == "otb" else "groundtruth.txt"), "1,1,2,2\n" * 2)
    seqs = load_datasets([f"otb:{tmp_path / 'a'}", f"vot:{tmp_path / 'b'}"])
    assert sorted(s.name for s in seqs) == ["otb-same", "vot-same"]
    assert [s.name for s in load_datasets([f"otb:{tmp_path / 'a'}"], "SA*")] == ["same"]
    (tmp_path / "list.txt").write_text("same\nother\n")
    assert [s.name for s in load_datasets([f"otb:{tmp_path / 'a'}"], f"@{tmp_path / 'list.txt'}")] == ["same"]
    with pytest.raises(CommandError, match="KIND:PATH"):
        datasets.parse_dataset_arg("otb")
    with pytest.raises(CommandError, match="unknown dataset kind"):
        datasets.parse_dataset_arg("imagenet:/x")
    with pytest.raises(CommandError, match="not a folder"):
        load_dataset("otb", tmp_path / "nope")


# ---- real data --------------------------------------------------------------------------------------------

@pytest.mark.skipif(not (SHARED / "OTB").is_dir(), reason=f"real OTB data not present at {SHARED / 'OTB'}")
def test_real_otb():
    seqs = by_name(load_dataset("otb", SHARED / "OTB"))
    for name in ("Biker", "Couple", "Jogging_1", "Jogging_2", "Skating2_1", "Skating2_2"):
        assert name in seqs
        s = seqs[name]
        assert len(s) == len(s.gt) > 1 and s.gt_complete and Path(s.frames[0]).is_file()
        assert Path(s.frames[-1]).is_file()
    assert len(seqs["Biker"]) == 142 and len(seqs["Skating2_2"]) == 473
    np.testing.assert_array_equal(seqs["Biker"].gt[0], (261, 93, 16, 26))  # comma file "262,94,16,26"
    np.testing.assert_array_equal(seqs["Couple"].gt[0], (50, 46, 25, 62))  # tab file "51\t47\t25\t62"
    assert not np.array_equal(seqs["Jogging_1"].gt[0], seqs["Jogging_2"].gt[0])


@pytest.mark.skipif(not (SHARED / "VOT").is_dir(), reason=f"real VOT data not present at {SHARED / 'VOT'}")
def test_real_vot():
    seqs = by_name(load_dataset("vot", SHARED / "VOT"))
    assert {"bag", "ball1", "car1"} <= set(seqs)
    bag = seqs["bag"]
    assert len(bag) == 196 and Path(bag.frames[0]).is_file() and bag.frames[0].endswith("color/00000001.jpg")
    first = [float(v) for v in (SHARED / "VOT" / "bag" / "groundtruth.txt").read_text().splitlines()[0].split(",")]
    xs, ys = first[0::2], first[1::2]
    np.testing.assert_allclose(bag.gt[0], (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)))
    assert len(seqs["car1"]) == 252


def test_otb_table_sequence_cut_to_its_range_and_renumbered(tmp_path):
    # David is frames 300-770 in the benchmark table; a copy that holds only those 471 frames, renumbered
    # 0001-0471 (as a training-data extraction may copy it), must map box k to file k, not to file 299 + k.
    root = tmp_path / "OTB"
    touch_frames(root / "David" / "img", range(1, 472), "{:04d}.jpg")
    write(root / "David" / "groundtruth_rect.txt", "".join(f"{i},10,20,30\n" for i in range(1, 472)))
    david = by_name(load_dataset("otb", root))["David"]
    assert len(david.frames) == 471
    assert Path(david.frames[0]).name == "0001.jpg" and Path(david.frames[-1]).name == "0471.jpg"
    assert all(Path(f).is_file() for f in david.frames)
    assert david.gt[0, 0] == 0 and david.gt[-1, 0] == 470  # 1-based x = frame number, read 0-based
