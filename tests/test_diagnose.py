"""The refinement diagnosis (``atom bench diagnose``) on a scripted fake tracker whose every box is known, so
each figure can be computed by hand: boxes are 10x10 at x = 0 unless stated; IoU of a 10x10 box shifted by d is
(10 - d) / (10 + d) and of a w x w box inside it at the same corner (w / 10)^2."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracker_core.boxes import Box
from tracker_core.config import preset
from tracker_core.evaluation.diagnose import FrameTrace, one_step, summarise, trace_sequence
from tracker_core.result import Status, TrackResult


class ScriptedTracker:
    """Returns, for frame t (1-based call count), the scripted (start box, final box, status, predicted IoU)."""

    def __init__(self, script):
        self.script = script
        self.t = 0

    def initialize(self, frame, box):
        self.t = 0

    def track(self, frame):
        self.t += 1
        start, final, status, pred = self.script[self.t]
        return TrackResult(box=Box(*final), status=status, max_score=0.9, iou=pred,
                           refine_start=None if start is None else Box(*start))


def test_trace_and_summary_by_hand():
    gt = np.array([[0, 0, 10, 10]] * 5, dtype=float)
    script = {
        1: ((0, 0, 10, 10), (2, 0, 10, 10), Status.NORMAL, 0.9),     # refinement spoils a perfect box: 1 -> 8/12
        2: ((4, 0, 10, 10), (0, 0, 10, 10), Status.HARD_NEGATIVE, 0.8),  # and fixes a shifted one: 6/14 -> 1
        3: ((0, 0, 10, 10), (0, 0, 5, 5), Status.UNCERTAIN, 0.7),    # shrinks to a quarter: 0.25, scale -log 2
        4: (None, (50, 50, 10, 10), Status.NOT_FOUND, None),         # lost, not refined
    }
    traces = trace_sequence(ScriptedTracker(script), lambda i: np.zeros((4, 4, 3), np.uint8), gt)
    assert [f.frame for f in traces] == [1, 2, 3, 4]
    assert traces[0].start_iou == pytest.approx(1.0) and traces[0].final_iou == pytest.approx(8 / 12)
    assert traces[1].start_iou == pytest.approx(6 / 14) and traces[1].final_iou == pytest.approx(1.0)
    assert traces[2].size_change == pytest.approx(-math.log(2)) and traces[2].size_error == pytest.approx(-math.log(2))
    assert traces[3].start_iou is None and traces[3].final_iou == 0.0 and not traces[3].learns
    assert [f.learns for f in traces] == [True, True, False, False]

    s = summarise(traces)
    gains = [8 / 12 - 1, 1 - 6 / 14, 0.25 - 1]
    assert s["frames"] == 4 and s["refined_frames"] == 3
    assert s["refinement_gain"] == pytest.approx(np.mean(gains))
    assert s["refinement_lowers_fraction"] == pytest.approx(2 / 3)
    assert s["mean_iou"] == pytest.approx((8 / 12 + 1 + 0.25 + 0) / 4)
    assert s["lost_fraction"] == pytest.approx(0.25)
    assert s["mean_abs_size_change"] == pytest.approx(math.log(2) / 3)
    assert s["learn_frames"] == 2 and s["learn_iou"] == pytest.approx((8 / 12 + 1) / 2)
    assert s["learn_below_half_fraction"] == 0.0
    assert s["pred_iou_mean"] == pytest.approx(0.8)
    assert s["pred_vs_true_pearson"] == pytest.approx(np.corrcoef([0.9, 0.8, 0.7], [8 / 12, 1, 0.25])[0, 1])


def test_trace_skips_frames_without_truth():
    gt = np.array([[0, 0, 10, 10], [np.nan] * 4, [0, 0, 10, 10]])
    script = {1: (None, (0, 0, 10, 10), Status.NORMAL, None), 2: (None, (1, 0, 10, 10), Status.NORMAL, None)}
    traces = trace_sequence(ScriptedTracker(script), lambda i: None, gt)
    assert [f.frame for f in traces] == [2]
    assert FrameTrace(**traces[0].as_dict()) == traces[0]


def test_one_step_starts_each_tracker_on_the_truth():
    gt = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [2, 0, 10, 10], [np.nan] * 4])
    started = []

    class CopyTracker:  # keeps the box it was given: its one-step IoU is the truth's own motion
        def initialize(self, frame, box):
            started.append(tuple(box))
            self.box = box

        def track(self, frame):
            return TrackResult(box=self.box)

    ious = one_step(CopyTracker, lambda i: None, gt, [0, 1, 2])
    assert started == [(0, 0, 10, 10), (1, 0, 10, 10)]  # frame 2 -> 3 has no truth at 3: skipped
    assert ious == pytest.approx([9 / 11, 9 / 11])


def test_preset_overrides_name_ablations():
    cfg = preset("default:classifier.train_skipping=5,localization.score_upsample=false,seed=3")
    assert cfg.classifier.train_skipping == 5 and cfg.localization.score_upsample is False and cfg.seed == 3
    assert cfg.name.startswith("default:") and preset("default").classifier.train_skipping == 10
    for bad in ("default:nope.x=1", "default:classifier.nope=1", "default:seed", "default:seed=abc",
                "default:localization.score_upsample=maybe"):
        with pytest.raises(ValueError):
            preset(bad)


def test_bench_diagnose_cli(tmp_path, capsys):
    import json

    from tests.test_eval_cli import make_sequence
    from tracker_core.cli import main

    otb = tmp_path / "otb"
    otb.mkdir()
    make_sequence(otb, "Glide", n=8, seed=2)
    out = tmp_path / "diag"
    rc = main(["bench", "diagnose", "--dataset", f"otb:{otb}", "--tracker", "kcf", "--one-step", "3",
               "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    result = json.loads((out / "diagnose.json").read_text())["kcf"]
    seq = result["sequences"]["Glide"]
    assert len(seq["frames"]) == 7 and len(seq["one_step"]) == 3
    assert result["pooled"]["frames"] == 7 and result["pooled"]["refined_frames"] == 0  # KCF never refines
    assert 0 < result["pooled"]["mean_iou"] <= 1 and 0 < result["pooled"]["one_step_iou"] <= 1
    assert "| kcf" in captured.out
    assert main(["bench", "diagnose", "--dataset", f"otb:{otb}", "--one-step", "-1", "--out", str(out)]) == 2
