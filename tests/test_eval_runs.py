"""`atom eval --runs N`: repeated runs with different seeds, grouped and averaged (the paper's 5 runs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_eval_cli import make_sequence
from tracker_core.cli import main
from tracker_core.datasets import load_dataset
from tracker_core.evaluation import metrics
from tracker_core.evaluation.results_io import results_path, write_results
from tracker_core.evaluation.runner import combine_runs, group_runs, score_tracker
from tracker_core.trackers import TrackerSpec, build_tracker


def test_group_runs_groups_run_folders_and_pytracking_param_folders():
    labels = ["atom/run_000", "atom/run_001", "atom/run_002", "csrt", "ref/default_000", "ref/default_001",
              "other/default_000", "plain"]
    assert group_runs(labels) == {
        "atom": ["atom/run_000", "atom/run_001", "atom/run_002"],
        "csrt": ["csrt"],
        "ref/default": ["ref/default_000", "ref/default_001"],
        "other/default_000": ["other/default_000"],  # one run alone keeps its own name
        "plain": ["plain"],
    }


def _shifted(gt: np.ndarray, dx: np.ndarray) -> np.ndarray:
    out = gt.copy()
    out[:, 0] += dx
    return out


def test_combined_runs_are_the_mean_of_the_runs_overall_and_per_sequence(tmp_path):
    """Two runs on two sequences with boxes shifted by known amounts: every combined score is the plain mean of the
    runs' scores, computed here from the runs' own curves, and the per-sequence AUCs are listed per run."""
    data = tmp_path / "otb"
    gts = {name: make_sequence(data, name, n=10, seed=i) for i, name in enumerate(["Alpha", "Beta"])}
    seqs = load_dataset("otb", data)
    results = tmp_path / "results"
    rng = np.random.default_rng(0)
    shifts = {}
    for run in ("atom/run_000", "atom/run_001"):
        for name, gt in gts.items():
            # Whole pixels (results files hold integers), none giving an IoU on a threshold of the curve.
            dx = rng.choice([1, 2, 3, 5, 7, 9, 11, 13], len(gt)).astype(float)
            dx[0] = 0  # frame 1 is the initial box, scored as the ground truth
            shifts[run, name] = dx
            write_results(results_path(results, run, name), _shifted(gt, dx), [0.01] * len(gt), True)
    runs = [score_tracker(results, label, seqs) for label in ("atom/run_000", "atom/run_001")]
    combined = combine_runs("atom", runs)
    for key in metrics.SCORE_KEYS:
        assert combined.scores[key] == pytest.approx((runs[0].scores[key] + runs[1].scores[key]) / 2)
    # Independently: a 24-px box shifted by dx overlaps (24 - dx) / (24 + dx); AUC of one sequence = mean over the
    # thresholds of the fraction of frames above them.
    thresholds = np.linspace(0, 1, 21)
    for name in gts:
        aucs = []
        for run in ("atom/run_000", "atom/run_001"):
            iou = (24 - shifts[run, name]) / (24 + shifts[run, name])
            aucs.append(100 * np.mean([(iou > t).mean() for t in thresholds]))
        entry = combined.sequences[name]
        assert entry["auc_runs"] == pytest.approx(aucs)
        assert entry["auc"] == pytest.approx(np.mean(aucs))
        assert entry["frames"] == 10
    summary = combined.summary()
    assert [r["label"] for r in summary["runs"]] == ["atom/run_000", "atom/run_001"]
    assert summary["auc"] == pytest.approx(np.mean([r["auc"] for r in summary["runs"]]))


def test_a_run_number_changes_the_seed_and_only_the_seed():
    base = build_tracker(TrackerSpec("atom", device="cpu"))
    third = build_tracker(TrackerSpec("atom", device="cpu", run=2))
    assert third.config.seed == base.config.seed + 2
    assert third.config.replace(seed=base.config.seed) == base.config
    assert build_tracker(TrackerSpec("kcf", run=3)).__class__.__name__ == "ClassicTracker"


def test_eval_runs_repeats_atom_with_seeds_and_classic_trackers_once(tmp_path, capsys):
    data = tmp_path / "otb"
    make_sequence(data, "Alpha", n=8, seed=1)
    single, repeated = tmp_path / "single", tmp_path / "repeated"
    assert main(["eval", "--dataset", f"otb:{data}", "--tracker", "atom", "--device", "cpu", "--out", str(single),
                 "--no-plots"]) == 0
    assert main(["eval", "--dataset", f"otb:{data}", "--tracker", "atom,kcf", "--runs", "2", "--device", "cpu",
                 "--out", str(repeated), "--no-plots"]) == 0
    table = capsys.readouterr().out
    assert "AUC of the runs" in table
    res = repeated / "results"
    assert sorted(p.name for p in (res / "atom").iterdir()) == ["run_000", "run_001"]
    assert (res / "kcf" / "Alpha.txt").is_file() and not (res / "kcf" / "run_000").exists()
    # Run 0 is the single run, bit for bit; run 1 drew other random numbers.
    first = (res / "atom" / "run_000" / "Alpha.txt").read_bytes()
    assert first == (single / "results" / "atom" / "Alpha.txt").read_bytes()
    assert (res / "atom" / "run_001" / "Alpha.txt").read_bytes() != first
    assert json.loads((res / "atom" / "run_001" / "run_info.json").read_text())["run"] == 1
    summary = json.loads((repeated / "summary.json").read_text())["trackers"]
    assert set(summary) == {"atom", "kcf"}
    assert len(summary["atom"]["runs"]) == 2 and "runs" not in summary["kcf"]
    assert summary["atom"]["auc"] == pytest.approx(np.mean([r["auc"] for r in summary["atom"]["runs"]]))
    # Scoring the folders again groups the runs the same way.
    assert main(["eval", "--dataset", f"otb:{data}", "--results", str(res), "--out", str(tmp_path / "again"),
                 "--no-plots"]) == 0
    again = json.loads((tmp_path / "again" / "summary.json").read_text())["trackers"]
    assert again["atom"]["auc"] == pytest.approx(summary["atom"]["auc"])


def test_runs_must_be_positive(tmp_path, capsys):
    data = tmp_path / "otb"
    make_sequence(data, "Alpha", n=4)
    assert main(["eval", "--dataset", f"otb:{data}", "--tracker", "kcf", "--runs", "0",
                 "--out", str(tmp_path / "o")]) == 2
    assert "--runs must be at least 1" in capsys.readouterr().err
