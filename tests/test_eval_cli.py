"""`atom eval` and `atom bench` end to end with OpenCV's KCF on tiny synthetic OTB-layout sequences."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from tracker_core.cli import main
from tracker_core.datasets import load_dataset
from tracker_core.evaluation.annotate_sim import AnnotateTask, run_annotate_task
from tracker_core.evaluation.parallel import TaskFailure, run_tasks
from tracker_core.evaluation.runner import OpeTask, run_sequence
from tracker_core.evaluation.speed import SpeedTask, run_speed_task
from tracker_core.trackers import TrackerSpec

SCORE_KEYS = {"auc", "op50", "op75", "precision", "norm_precision", "fps", "frames"}


def make_sequence(root: Path, name: str, n: int = 12, seed: int = 0) -> np.ndarray:
    """A textured 24x24 square gliding over a smooth background; returns the 0-based ground truth."""
    import cv2

    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8), (0, 0), 3)
    patch = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
    (root / name / "img").mkdir(parents=True)
    gt = []
    for i in range(n):
        x, y = 20 + 2 * i, 30 + i
        frame = background.copy()
        frame[y:y + 24, x:x + 24] = patch
        cv2.imwrite(str(root / name / "img" / f"{i + 1:04d}.jpg"), frame)
        gt.append((x, y, 24, 24))
    (root / name / "groundtruth_rect.txt").write_text("".join(f"{x + 1}\t{y + 1}\t{w}\t{h}\n" for x, y, w, h in gt))
    return np.array(gt, dtype=float)


@pytest.fixture(scope="module")
def otb(tmp_path_factory):
    root = tmp_path_factory.mktemp("otb")
    make_sequence(root, "Alpha", seed=1)
    make_sequence(root, "Beta", seed=2)
    make_sequence(root, "Broken", n=4, seed=3)
    (root / "Broken" / "img" / "0002.jpg").write_bytes(b"not a jpeg")  # fails in the worker, not fatal
    return root


def test_eval_runs_scores_resumes_and_rescores(otb, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["eval", "--dataset", f"otb:{otb}", "--tracker", "kcf", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 1, captured.err  # Broken failed; the others are scored
    assert "Broken" in captured.err and "FAILED" in captured.err
    assert "Broken" in json.loads((out / "failures.json").read_text())["kcf"]

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"trackers"} and set(summary["trackers"]) == {"kcf"}
    kcf = summary["trackers"]["kcf"]
    assert set(kcf) == SCORE_KEYS | {"sequences"}
    assert set(kcf["sequences"]) == {"Alpha", "Beta"}
    for entry in [kcf, *kcf["sequences"].values()]:
        for key in ("auc", "op50", "op75", "precision", "norm_precision"):
            assert 0.0 <= entry[key] <= 100.0
        assert entry["fps"] > 0
    assert kcf["frames"] == 24 and kcf["sequences"]["Alpha"]["frames"] == 12
    assert kcf["precision"] > 90  # KCF follows a textured square
    assert "| kcf" in captured.out and "AUC" in captured.out
    for png in ("success_plot.png", "precision_plot.png", "norm_precision_plot.png"):
        assert (out / png).stat().st_size > 1000

    lines = (out / "results" / "kcf" / "Alpha.txt").read_text().splitlines()
    assert len(lines) == 12 and lines[0] == "21\t31\t24\t24"  # pytracking format: tab-separated 1-based ints
    assert len((out / "results" / "kcf" / "Alpha_time.txt").read_text().splitlines()) == 12

    # A rerun skips the finished sequences (and scores the same numbers).
    rc = main(["eval", "--dataset", f"otb:{otb}", "--sequences", "Alpha,Beta", "--tracker", "kcf",
               "--out", str(out), "--no-plots"])
    captured = capsys.readouterr()
    assert rc == 0 and "2 sequence run(s) already have results" in captured.err
    assert not (out / "failures.json").exists()
    assert json.loads((out / "summary.json").read_text()) == summary

    # --results scores existing folders: ours again, plus a "published" tracker that copied the truth.
    published = tmp_path / "published"
    (published / "oracle").mkdir(parents=True)
    for name in ("Alpha", "Beta"):
        gt = (otb / name / "groundtruth_rect.txt").read_text().replace("\t", ",")
        (published / "oracle" / f"{name}.txt").write_text(gt)
    shutil.copytree(out / "results" / "kcf", published / "kcf")
    rc = main(["eval", "--dataset", f"otb:{otb}", "--sequences", "Alpha,Beta", "--results", str(published),
               "--out", str(tmp_path / "rescored"), "--no-plots"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    rescored = json.loads((tmp_path / "rescored" / "summary.json").read_text())["trackers"]
    assert rescored["kcf"] == kcf
    oracle = rescored["oracle"]
    assert oracle["auc"] == pytest.approx(100 * 20 / 21) and oracle["precision"] == 100.0
    assert oracle["fps"] is None  # no time files


def test_bench_annotate_and_speed(otb, tmp_path, capsys, monkeypatch):
    out = tmp_path / "bench"
    rc = main(["bench", "annotate", "--dataset", f"otb:{otb}", "--sequences", "Alpha", "--tracker",
               "kcf,interpolation,copy", "--tau", "0.5", "--tau", "0.7", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    result = json.loads((out / "annotate.json").read_text())
    assert set(result) == {"kcf", "interpolation", "copy"}
    assert result["kcf"]["correction_policy"] == "reinitialize" and "reinitialize" in captured.err
    for entry in result.values():
        assert set(entry["tau"]) == {"0.5", "0.7"}
        for v in entry["tau"].values():
            assert set(v) == {"manual_per_1000", "mean_iou", "sequences"}
            assert set(v["sequences"]["Alpha"]) == {"manual", "frames", "manual_per_1000", "mean_iou"}
            assert v["sequences"]["Alpha"]["frames"] == 12
    # Linear motion: interpolation needs just the two ends.
    assert result["interpolation"]["tau"]["0.7"]["sequences"]["Alpha"]["manual"] == 2
    assert "| interpolation" in captured.out

    # Speed runs each tracker in a fresh process; run it in this one to keep the test fast on a busy machine
    # (the process pool itself is exercised by the eval test).
    from tracker_core.evaluation import parallel

    monkeypatch.setattr(parallel, "run_tasks", lambda fn, tasks, **kw: [fn(t) for t in tasks])
    rc = main(["bench", "speed", "--tracker", "kcf", "--dataset", f"otb:{otb}", "--sequences", "Alpha",
               "--frames", "5", "--warmup", "2", "--device", "cpu", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    speed = json.loads((out / "speed.json").read_text())["kcf"]
    assert {"fps", "fps_with_decode", "backbone_fps", "stages_ms", "peak_mem_mb", "device"} <= set(speed)
    assert speed["fps"] > 0 and 0 < speed["fps_with_decode"] <= speed["fps"]
    assert speed["backbone_fps"] is None and speed["device"] == "cpu" and speed["frames"] == 5
    assert speed["peak_mem_mb"] > 0
    assert speed["init_ms"] > 0 and speed["init_ms_warm"] > 0 and speed["init_stages_ms"] == {}  # kcf: no stages
    assert "init ms" in captured.out


def test_process_pool_reports_failures_and_isolates_crashes():
    """The --jobs path: spawn workers, a failing task and a crashing worker (builtins keep the workers light)."""
    tasks = ["2 + 2", "1 / 0", "__import__('os')._exit(3)", "3 * 3"]
    results = run_tasks(eval, tasks, jobs=2)
    assert results[0] == 4 and results[3] == 9
    assert isinstance(results[1], TaskFailure) and "ZeroDivisionError" in results[1].message
    assert isinstance(results[2], TaskFailure) and "died" in results[2].message


def test_worker_tasks_survive_pickling(otb):
    """Spawned workers receive module-level functions and pickled tasks."""
    seq = load_dataset("otb", otb)[0]
    spec = TrackerSpec("kcf")
    for fn, task in ((run_sequence, OpeTask("kcf", spec, seq, "/tmp/x")),
                     (run_annotate_task, AnnotateTask("kcf", spec, seq, 0.5)),
                     (run_speed_task, SpeedTask("kcf", spec, 5, 1, 1, sequences=[seq]))):
        assert pickle.loads(pickle.dumps(fn)) is fn
        again = pickle.loads(pickle.dumps(task))
        assert again.spec == spec and np.array_equal(
            (again.sequences[0] if isinstance(again, SpeedTask) else again.sequence).gt, seq.gt)


def test_bad_arguments_are_one_line_errors(otb, tmp_path, capsys):
    assert main(["eval", "--dataset", f"otb:{otb}", "--tracker", "kcf"]) == 2
    assert "--out is required" in capsys.readouterr().err
    assert main(["eval", "--dataset", f"otb:{otb}", "--tracker", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown tracker" in capsys.readouterr().err
    assert main(["eval", "--dataset", f"lasot:{tmp_path / 'none'}", "--tracker", "kcf", "--out", str(tmp_path)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["bench", "speed", "--tracker", "kcf", "--out", str(tmp_path)]) == 2
    assert "--video" in capsys.readouterr().err
