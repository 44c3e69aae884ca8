"""`atom track`: output files in their conventions, bad input as one line and exit code 2, batches and shards."""

import csv

import cv2
import numpy as np
import pytest

from tracker_core.annotation import Source
from tracker_core.annotation.project_io import load_project
from tracker_core.cli import main


def make_video(path, n=8, size=(160, 120), box=(40, 30, 30, 24), step=(3, 1)):
    rng = np.random.default_rng(1)
    obj = (rng.random((box[3], box[2], 3)) * 255).astype(np.uint8)
    W, H = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for i in range(n):
        f = np.full((H, W, 3), 60, np.uint8)
        x, y = box[0] + step[0] * i, box[1] + step[1] * i
        f[y:y + box[3], x:x + box[2]] = obj
        writer.write(f)
    writer.release()
    return path


@pytest.fixture
def video(tmp_path):
    return make_video(tmp_path / "clip.avi")


def test_track_writes_lasot_scores_and_project(video, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["track", str(video), "--init", "40,30,30,24", "--out", str(out), "--tracker", "kcf", "--quiet"])
    assert rc == 0
    lines = (out / "groundtruth.txt").read_text().splitlines()
    assert len(lines) == 8
    assert lines[0] == "41,31,30,24"  # LaSOT: 1-based integers
    rows = list(csv.DictReader(open(out / "scores.csv")))
    assert len(rows) == 8 and rows[0]["frame"] == "0" and float(rows[0]["x"]) == 40.0
    doc = load_project(out / "project.json")
    (obj,) = doc.object_ids
    assert doc.state(obj, 0).source == Source.MANUAL
    assert doc.state(obj, 7).source == Source.TRACKED
    assert "tracked 8 frames" in capsys.readouterr().out


def test_track_atom_on_a_frame_range(video, tmp_path):
    out = tmp_path / "atom"
    rc = main(["track", str(video), "--init", "46,32,30,24", "--out", str(out), "--tracker", "atom-multiscale",
               "--frames", "2:5", "--quiet", "--device", "cpu"])
    assert rc == 0
    rows = list(csv.DictReader(open(out / "scores.csv")))
    assert [r["frame"] for r in rows] == ["2", "3", "4"]
    last = [float(rows[-1][k]) for k in "xywh"]
    assert abs(last[0] - 52) < 6 and abs(last[1] - 34) < 6


@pytest.mark.parametrize("argv,needle", [
    (["track", "/nonexistent/video.mp4", "--init", "1,2,3,4"], "no such"),
    (["track", "{video}", "--init", "1,2,3"], "--init"),
    (["track", "{video}", "--init", "500,500,10,10"], "outside"),
    (["track", "{video}", "--init", "1,2,3,4", "--frames", "9:3"], "--frames"),
    (["track", "{video}", "--init", "1,2,3,4", "--tracker", "nope"], "unknown tracker"),
])
def test_bad_input_is_one_line_and_exit_2(video, tmp_path, capsys, argv, needle):
    argv = [a.replace("{video}", str(video)) for a in argv] + ["--out", str(tmp_path / "o"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "Traceback" not in err[0]


def test_batch_with_a_broken_video_and_shards(tmp_path, capsys):
    good = make_video(tmp_path / "good.avi")
    bad = tmp_path / "bad.avi"
    bad.write_text("not a video")
    lst = tmp_path / "list.txt"
    lst.write_text(f"# videos\n{good} 40,30,30,24\n{bad} 1,1,5,5\n")
    out = tmp_path / "batch"
    rc = main(["track", "--batch", str(lst), "--out", str(out), "--tracker", "kcf", "--jobs", "1", "--quiet"])
    assert rc == 1  # one failed video is reported, the other is complete
    assert len((out / "good" / "groundtruth.txt").read_text().splitlines()) == 8
    assert not (out / "bad").exists()
    assert "FAILED" in capsys.readouterr().out
    out2 = tmp_path / "shard"
    rc = main(["track", "--batch", str(lst), "--out", str(out2), "--tracker", "kcf", "--shard", "0/2", "--quiet"])
    assert rc == 0 and (out2 / "good").exists() and not (out2 / "bad").exists()


def test_review_video_export_is_h264_with_boxes(video, tmp_path):
    import imageio_ffmpeg

    from tracker_core.video import open_video

    out = tmp_path / "out"
    assert main(["track", str(video), "--init", "40,30,30,24", "--out", str(out), "--tracker", "kcf", "--quiet"]) == 0
    mp4 = tmp_path / "review.mp4"
    assert main(["export", str(out / "project.json"), "--format", "review", "--out", str(mp4)]) == 0
    reader = imageio_ffmpeg.read_frames(str(mp4))
    meta = next(reader)
    assert meta["codec"].startswith("h264")
    reader.close()
    with open_video(mp4) as v:
        assert v.num_frames == 8
        f0 = v.read(0).astype(int)
    # Frame 0 is the manual keyframe: its box edge (x=40) is drawn green.
    r, g, b = f0[30 + 12, 40]
    assert g > 150 and g > r + 60 and g > b + 60
