"""`atom track`: output files in their conventions, bad input as one line and exit code 2, batches and shards."""

import csv
import os

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


def test_review_video_export_makes_its_folder_and_a_failed_write_leaves_nothing(video, tmp_path, capsys,
                                                                                monkeypatch):
    import imageio_ffmpeg

    out = tmp_path / "out"
    assert main(["track", str(video), "--init", "40,30,30,24", "--out", str(out), "--tracker", "kcf", "--quiet"]) == 0
    project = str(out / "project.json")
    folder = tmp_path / "new" / "reviews"  # --out DIR: created if needed, as for every other format
    assert main(["export", project, "--format", "review", "--out", str(folder)]) == 0
    assert [p.name for p in folder.iterdir()] == ["clip_review.mp4"]
    capsys.readouterr()

    class BrokenPipe:  # what imageio-ffmpeg raises when ffmpeg dies: the message goes on with its whole output
        def send(self, frame):
            if frame is not None:
                raise OSError("[Errno 32] Broken pipe\n\nFFMPEG COMMAND:\nffmpeg -y ...\n\nFFMPEG STDERR OUTPUT:\n")

        def close(self):
            pass

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", lambda *a, **k: BrokenPipe())
    assert main(["export", project, "--format", "review", "--out", str(tmp_path / "other" / "reviews")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write the review video" in err[0] and "Broken pipe" in err[0]
    assert not (tmp_path / "other").exists()  # no temporary file, no half-made folder


# ---- nothing lost: written as it goes, checked before tracking, locked, all files or none ------------------

def read_results(out, same_checkpoint=True):
    """The three files, checked against each other: one frame per line/row/state. A kill may land between the
    three renames of a checkpoint: then (``same_checkpoint=False``) the files may be one checkpoint apart, each
    whole, one a prefix of the other."""
    gt = (out / "groundtruth.txt").read_text().splitlines()
    rows = list(csv.DictReader(open(out / "scores.csv")))
    doc = load_project(out / "project.json")
    (obj,) = doc.object_ids
    frames = [[int(r["frame"]) for r in rows], doc.frames(obj), list(range(len(gt)))]
    if same_checkpoint:
        assert frames[0] == frames[1] == frames[2]
    else:
        shortest = min(len(f) for f in frames)
        assert all(f[:shortest] == frames[1][:shortest] for f in frames)
    return gt, rows, doc


class Interrupting:
    """A KCF tracker that is interrupted (Ctrl+C) on its ``at``-th track call."""

    def __init__(self, at, exc=KeyboardInterrupt):
        from tracker_core.classic import ClassicTracker

        self.inner, self.at, self.exc, self.calls = ClassicTracker("kcf"), at, exc, 0

    def initialize(self, frame, box):
        return self.inner.initialize(frame, box)

    def track(self, frame):
        self.calls += 1
        if self.calls == self.at:
            raise self.exc()
        return self.inner.track(frame)


def test_an_interrupt_keeps_every_frame_tracked_in_all_three_files(video, tmp_path, monkeypatch, capsys):
    from tracker_core import trackers

    monkeypatch.setattr(trackers, "make_tracker", lambda *a, **k: Interrupting(5))
    out = tmp_path / "out"
    assert main(["track", str(video), "--init", "40,30,30,24", "--out", str(out), "--quiet"]) == 130
    gt, rows, doc = read_results(out)
    assert len(gt) == 5 and "interrupted" in capsys.readouterr().err  # frame 0 and the 4 tracked before it
    assert sorted(p.name for p in out.iterdir()) == [".atom-track.lock", "groundtruth.txt", "project.json",
                                                      "scores.csv"]  # no temporary file left


def test_results_are_written_while_tracking(video, tmp_path, monkeypatch):
    """Every checkpoint writes the three files; with a checkpoint after each frame, what a kill -9 would find
    after frame k is exactly frames 0..k."""
    from tracker_core.commands import track as track_command

    seen = []
    original = track_command.OutputFolder.write

    def write(self, texts):
        original(self, texts)
        seen.append(read_results(self.path)[0])

    monkeypatch.setattr(track_command, "CHECKPOINT_S", 0.0)
    monkeypatch.setattr(track_command.OutputFolder, "write", write)
    out = tmp_path / "out"
    assert main(["track", str(video), "--init", "40,30,30,24", "--out", str(out), "--tracker", "kcf",
                 "--quiet"]) == 0
    assert [len(lines) for lines in seen[:7]] == [2, 3, 4, 5, 6, 7, 8]


def test_a_full_disk_leaves_the_previous_results_whole(video, tmp_path, monkeypatch, capsys):
    from tracker_core import atomic_files

    out = tmp_path / "out"
    assert main(["track", str(video), "--init", "40,30,30,24", "--out", str(out), "--tracker", "kcf",
                 "--quiet", "--frames", "0:3"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    writes = []

    def disk_full_on_the_third_file(fd, data):
        writes.append(1)
        if len(writes) % 3 == 0:
            raise OSError(28, "No space left on device")
        os.write(fd, data)

    monkeypatch.setattr(atomic_files, "_write_all", disk_full_on_the_third_file)
    assert main(["track", str(video), "--init", "40,30,30,24", "--out", str(out), "--tracker", "kcf",
                 "--quiet", "--force"]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old three, nothing else


def test_out_is_checked_locked_and_never_overwritten_without_force(video, tmp_path, capsys):
    from tracker_core.commands.track import OutputFolder

    base = ["track", str(video), "--init", "40,30,30,24", "--tracker", "kcf", "--quiet", "--frames", "0:3"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(base + ["--out", str(a_file)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(base + ["--out", str(out)]) == 0
    capsys.readouterr()
    assert main(base + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already holds tracking results" in err and "--force" in err
    held = OutputFolder(out, force=True).open()  # another atom track writing there
    try:
        assert main(base + ["--out", str(out), "--force"]) == 2
        err = capsys.readouterr().err
        assert "another atom track" in err and str(os.getpid()) in err
    finally:
        held.close()
    assert main(base + ["--out", str(out), "--force"]) == 0


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_fails_before_tracking(video, tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        assert main(["track", str(video), "--init", "40,30,30,24", "--out", str(out), "--quiet"]) == 2
        assert "cannot write in --out" in capsys.readouterr().err
    finally:
        out.chmod(0o700)


def test_a_truncated_video_or_a_damaged_frame_is_named_and_exits_1(tmp_path, capsys):
    long = make_video(tmp_path / "long.avi", n=40, step=(1, 0))
    data = long.read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(data[: len(data) // 2])
    out = tmp_path / "t"
    assert main(["track", str(truncated), "--init", "40,30,30,24", "--out", str(out), "--tracker", "kcf",
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "the file says 40 frames but only" in err and "cannot be read" in err
    done = len(read_results(out)[0])
    assert 0 < done < 40 and f"tracked {done} of the 40 frames asked" in err

    folder = tmp_path / "frames"
    folder.mkdir()
    frame = np.full((120, 160, 3), 60, np.uint8)
    for i in range(10):
        cv2.imwrite(str(folder / f"{i:04d}.jpg"), frame)
    (folder / "0006.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "f"
    assert main(["track", str(folder), "--init", "40,30,30,24", "--out", str(out), "--tracker", "kcf",
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "frame 6 cannot be read" in err and "0006.jpg" in err and "tracked 6 of the 10 frames asked" in err
    assert len(read_results(out)[0]) == 6


def test_a_sub_pixel_box_stays_a_box_in_groundtruth(video, tmp_path):
    out = tmp_path / "out"
    assert main(["track", str(video), "--init", "100,100,0.001,0.001", "--out", str(out), "--tracker", "kcf",
                 "--quiet", "--frames", "0:1"]) == 0
    gt, rows, _ = read_results(out)
    assert gt == ["101,101,1,1"] and rows[0]["w"] == "0.001"


def test_kill_9_leaves_whole_files_of_the_frames_tracked_so_far(video, tmp_path):
    """A real `atom track` process killed with SIGKILL mid-run: the files it leaves are whole and agree."""
    import signal
    import subprocess
    import sys
    import time

    long = make_video(tmp_path / "long.avi", n=200, step=(0, 0))
    out = tmp_path / "out"
    script = (
        "import sys, time\n"
        "from tracker_core import trackers\n"
        "from tracker_core.classic import ClassicTracker\n"
        "from tracker_core.commands import track\n"
        "class Slow(ClassicTracker):\n"
        "    def track(self, frame):\n"
        "        time.sleep(0.02)\n"
        "        return super().track(frame)\n"
        "trackers.make_tracker = lambda *a, **k: Slow('kcf')\n"
        "track.CHECKPOINT_S = 0.1\n"
        "from tracker_core.cli import main\n"
        f"sys.exit(main(['track', {str(long)!r}, '--init', '40,30,30,24', '--out', {str(out)!r}, '--quiet']))\n")
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            project = out / "project.json"  # renamed last: the first two already hold 20 frames
            if project.exists() and len(load_project(project).frames(1)) >= 20:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    gt, rows, doc = read_results(out, same_checkpoint=False)  # whole files of the last checkpoints before the kill
    assert 20 <= len(doc.frames(1)) < 200
