"""OPE metrics against a table computed by hand (pytracking / LaSOT-toolkit conventions).

The hand table: ground truth G = (100, 100, 40, 40) (centre (120, 120), area 1600) on 9 frames, except frame 6
(flagged absent) and frame 7 (an empty 0x0 box).  The tracker wrote 8 rows (frame 8 is missing).

| frame | prediction        | after clean-up       | IoU          | centre err | norm err | why |
|-------|-------------------|----------------------|--------------|------------|----------|-----|
| 0     | (0, 0, 1, 1)      | G                    | 1            | 0          | 0        | frame 1 := ground truth |
| 1     | (120, 100, 40, 40)| same                 | 800/2400=1/3 | 20         | 0.5      | 20 px shift |
| 2     | (100, 100, 40, 20)| same                 | 800/1600=1/2 | 10         | 0.25     | half height |
| 3     | (104, 100, 40, 40)| same                 | 1440/1760=9/11 | 4        | 0.1      | 4 px shift |
| 4     | (100, 100, 0, 0)  | frame 3's box        | 9/11         | 4          | 0.1      | empty -> previous |
| 5     | (300, 300, 40, 40)| same                 | 0            | 200*sqrt2  | 5*sqrt2  | no overlap |
| 6     | G                 | same                 | invalid      |            |          | target flagged absent |
| 7     | G                 | same                 | invalid      |            |          | ground truth 0x0 |
| 8     | (missing)         |                      | 0            | inf        | inf      | no row: failure |

Success counts "IoU > t" over the 21 thresholds: t=0 -> 5 frames; t=0.05..0.30 (6 thresholds) -> 5; t=0.35..0.45 (3)
-> 4; t=0.50 -> 3 (IoU exactly 0.5 does not count); t=0.55..0.80 (6) -> 3; t=0.85..0.95 (3) -> 1; t=1 -> 0.
Sum = 5 + 30 + 12 + 3 + 18 + 3 = 71.  Precision@20px: errors <= 20 -> frames 0-4 -> 5 (20 px exactly counts).
Normalised precision@0.20: frames 0, 3, 4 -> 3.
- LaSOT convention (absent frames are failures, denominator 9): AUC = 71/(9*21), OP50 = OP75 = 3/9, P = 5/9,
  NP = 3/9.
- GOT-10k convention (absent frames left out, denominator 7): AUC = 71/(7*21), OP50 = 3/7, P = 5/7, NP = 3/7.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracker_core.evaluation import metrics

G = (100.0, 100.0, 40.0, 40.0)


def hand_case():
    gt = np.array([G] * 9)
    gt[7] = (0, 0, 0, 0)
    visible = np.ones(9, dtype=bool)
    visible[6] = False
    pred = np.array([
        (0, 0, 1, 1),
        (120, 100, 40, 40),
        (100, 100, 40, 20),
        (104, 100, 40, 40),
        (100, 100, 0, 0),
        (300, 300, 40, 40),
        G,
        G,
    ], dtype=float)
    return pred, gt, visible


def test_thresholds_are_the_toolkits():
    assert len(metrics.SUCCESS_THRESHOLDS) == 21
    assert metrics.SUCCESS_THRESHOLDS[0] == 0.0 and metrics.SUCCESS_THRESHOLDS[-1] == pytest.approx(1.0)
    assert metrics.SUCCESS_THRESHOLDS[metrics.OP50_INDEX] == 0.5
    assert metrics.SUCCESS_THRESHOLDS[metrics.OP75_INDEX] == pytest.approx(0.75)
    assert metrics.PRECISION_THRESHOLDS[metrics.PRECISION_INDEX] == 20
    assert metrics.NORM_PRECISION_THRESHOLDS[metrics.NORM_PRECISION_INDEX] == pytest.approx(0.20)


def test_per_frame_errors_match_the_hand_table():
    pred, gt, visible = hand_case()
    err = metrics.frame_errors(pred, gt, visible)
    assert err.valid.tolist() == [True] * 6 + [False, False, True]
    expected_iou = [1, 1 / 3, 0.5, 9 / 11, 9 / 11, 0, -1, -1, 0]
    np.testing.assert_allclose(err.iou, expected_iou, atol=1e-12)
    expected_center = [0, 20, 10, 4, 4, 200 * math.sqrt(2), np.inf, np.inf, np.inf]
    np.testing.assert_allclose(err.center, expected_center, atol=1e-9)
    expected_norm = [0, 0.5, 0.25, 0.1, 0.1, 5 * math.sqrt(2), np.inf, np.inf, np.inf]
    np.testing.assert_allclose(err.norm_center, expected_norm, atol=1e-12)


def test_lasot_convention_counts_absent_frames_as_failures():
    pred, gt, visible = hand_case()
    c = metrics.sequence_curves(pred, gt, visible, absent="lasot")
    assert c.frames == 9
    counts = [5] + [5] * 6 + [4] * 3 + [3] + [3] * 6 + [1] * 3 + [0]
    np.testing.assert_allclose(c.success * 9, counts, atol=1e-9)
    s = metrics.scores([c])
    assert s["auc"] == pytest.approx(100 * 71 / (9 * 21))
    assert s["op50"] == pytest.approx(100 * 3 / 9)
    assert s["op75"] == pytest.approx(100 * 3 / 9)
    assert s["precision"] == pytest.approx(100 * 5 / 9)
    assert s["norm_precision"] == pytest.approx(100 * 3 / 9)


def test_got10k_convention_leaves_absent_frames_out():
    pred, gt, visible = hand_case()
    c = metrics.sequence_curves(pred, gt, visible, absent="got10k")
    assert c.frames == 7
    s = metrics.scores([c])
    assert s["auc"] == pytest.approx(100 * 71 / (7 * 21))
    assert s["op50"] == pytest.approx(100 * 3 / 7)
    assert s["op75"] == pytest.approx(100 * 3 / 7)
    assert s["precision"] == pytest.approx(100 * 5 / 7)
    assert s["norm_precision"] == pytest.approx(100 * 3 / 7)


def test_scores_average_sequences_not_frames():
    pred, gt, visible = hand_case()
    a = metrics.sequence_curves(pred, gt, visible)
    perfect = metrics.sequence_curves(np.array([G] * 3), np.array([G] * 3))
    # A perfect sequence: every IoU is 1 > t except at t = 1 -> 20 of 21 thresholds.
    assert metrics.scores([perfect])["auc"] == pytest.approx(100 * 20 / 21)
    both = metrics.scores([a, perfect])
    assert both["auc"] == pytest.approx(100 * (71 / (9 * 21) + 20 / 21) / 2)
    assert both["precision"] == pytest.approx(100 * (5 / 9 + 1) / 2)


def test_clean_up_rules():
    gt = np.array([G] * 4)
    # NaN and negative sizes fall back to the previous box; rows beyond the ground truth are dropped.
    pred = np.array([(5, 5, 5, 5), (110, 100, 40, 40), (np.nan, 0, 1, 1), (0, 0, -3, 4), (1, 1, 1, 1)])
    cleaned, missing = metrics.clean_predictions(pred, gt)
    np.testing.assert_array_equal(cleaned[0], G)
    np.testing.assert_array_equal(cleaned[2], (110, 100, 40, 40))
    np.testing.assert_array_equal(cleaned[3], (110, 100, 40, 40))
    assert len(cleaned) == 4 and not missing.any()


def test_edge_cases():
    # No valid frame left under got10k -> no curve; IoU of a box with itself is 1 at every threshold but 1.0.
    gt = np.array([G, G])
    assert metrics.sequence_curves(gt, gt, np.array([False, False]), absent="got10k") is None
    assert all(math.isnan(v) for v in metrics.scores([]).values())
    with pytest.raises(ValueError):
        metrics.sequence_curves(gt, gt, absent="vot")
