"""OPE runs (one pass, initialised from frame 1's ground truth, never re-initialised) and their scoring.

Runs write pytracking-format files under ``<out>/results/<tracker>/``; scoring always reads those files back, so a
fresh run, a resumed run and ``atom eval --results`` on someone else's files are scored by the same code path.
A rerun skips every sequence whose results file is complete (one line per frame); files are written atomically,
so a complete-looking file is never a half-written one.

Repeated runs (``atom eval --runs N``, the paper's "average result over 5 runs") are the result folders
``<tracker>/run_000`` ... ``run_<N-1>``, each an ordinary tracker folder; pytracking's ``<tracker>/<param>_000`` ...
folders are grouped the same way (:func:`group_runs`), and a group is scored as the mean over its runs
(:func:`combine_runs`), the per-run figures kept beside it.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic_files import atomic_write_text
from ..boxes import Box
from ..datasets import Sequence, read_frame
from ..errors import CommandError
from ..trackers import TrackerSpec, build_tracker
from . import metrics
from .parallel import TaskFailure, run_tasks
from .results_io import count_lines, fps_from_times, read_results, read_times, results_path, write_results


@dataclass
class OpeTask:
    label: str  # the results folder name (the tracker's name)
    spec: TrackerSpec
    sequence: Sequence
    results_dir: str


@dataclass
class OpeOutcome:
    label: str
    sequence: str
    frames: int
    seconds: float  # time spent in track() (initialisation excluded)


def run_sequence(task: OpeTask) -> OpeOutcome:
    """Track one sequence and write its results and time files (runs inside a worker)."""
    seq = task.sequence
    init = Box.from_seq(seq.gt[0])
    if not init.is_valid():
        raise ValueError(f"frame 1 of {seq.name} has no valid ground-truth box {tuple(seq.gt[0])}")
    tracker = build_tracker(task.spec)
    n = len(seq.frames)
    boxes = np.zeros((n, 4))
    times = np.zeros(n)
    frame = read_frame(seq.frames[0])
    t0 = time.perf_counter()
    tracker.initialize(frame, init)
    times[0] = time.perf_counter() - t0
    boxes[0] = init.as_tuple()
    for i in range(1, n):
        frame = read_frame(seq.frames[i])
        t0 = time.perf_counter()
        result = tracker.track(frame)
        times[i] = time.perf_counter() - t0
        boxes[i] = tuple(result.box)
    write_results(results_path(task.results_dir, task.label, seq.name), boxes, times.tolist(), seq.one_based)
    return OpeOutcome(task.label, seq.name, n, float(times[1:].sum()))


def is_complete(path: Path, n: int) -> bool:
    return path.is_file() and count_lines(path) == n


def check_run_info(results_dir: Path, label: str, spec: TrackerSpec) -> None:
    """Refuse to resume into a folder made with another model or preset (its files would be silently reused)."""
    info = {"tracker": spec.name, "model": spec.model_path, "preset": spec.preset}
    if spec.run:
        info["run"] = spec.run
    path = results_dir / label / "run_info.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if old is not None and old != info:
            raise CommandError(f"{path.parent} holds results of {old}, not {info}; use another --out")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(info, indent=1) + "\n")


def run_ope(sequences: list[Sequence], specs: dict[str, TrackerSpec], results_dir: str | Path, jobs: int = 1,
            log=None) -> dict[str, dict[str, TaskFailure]]:
    """Run every tracker on every sequence that has no complete results yet.  Returns the failures
    ``{label: {seq: TaskFailure}}``; failed sequences are reported, the others finish."""
    log = log or sys.stderr  # looked up now, so redirected streams are honoured
    results_dir = Path(results_dir)
    tasks = []
    skipped = 0
    for label, spec in specs.items():
        check_run_info(results_dir, label, spec)
        for seq in sequences:
            if is_complete(results_path(results_dir, label, seq.name), len(seq.frames)):
                skipped += 1
            else:
                tasks.append(OpeTask(label, spec, seq, str(results_dir)))
    if skipped:
        print(f"resuming: {skipped} sequence run(s) already have results", file=log)
    failures: dict[str, dict[str, TaskFailure]] = {}
    done = [0]

    def on_result(task: OpeTask, result) -> None:
        done[0] += 1
        head = f"[{done[0]}/{len(tasks)}] {task.label} {task.sequence.name}:"
        if isinstance(result, TaskFailure):
            failures.setdefault(task.label, {})[task.sequence.name] = result
            print(f"{head} FAILED: {result.message}", file=log)
        else:
            fps = result.frames / result.seconds if result.seconds > 0 else float("inf")
            print(f"{head} {result.frames} frames, {fps:.1f} fps", file=log)
        log.flush()

    run_tasks(run_sequence, tasks, jobs=jobs, on_result=on_result)
    return failures


# ---- scoring ---------------------------------------------------------------------------------------------

@dataclass
class TrackerScores:
    """Scores of one tracker over a set of sequences."""

    label: str
    scores: dict[str, float]
    fps: float | None
    frames: int
    sequences: dict[str, dict] = field(default_factory=dict)
    curves: list[metrics.SequenceCurves] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # no results file
    unscored: dict[str, str] = field(default_factory=dict)  # results present but not scorable, with why
    runs: list[dict] = field(default_factory=list)  # repeated runs: each run's label and scores (percent)

    def summary(self) -> dict:
        """The summary.json entry: scores (percent), fps, frames and the same keys per sequence; for repeated runs
        the means, and ``runs``: each run's label and scores."""
        entry = {**{k: _num(v) for k, v in self.scores.items()}, "fps": _num(self.fps), "frames": self.frames,
                 "sequences": self.sequences}
        if self.runs:
            entry["runs"] = self.runs
        return entry


def _num(v):
    """JSON has no NaN: unknown numbers are null."""
    if v is None:
        return None
    v = float(v)
    return v if np.isfinite(v) else None


def score_tracker(results_root: str | Path, label: str, sequences: list[Sequence],
                  absent: str = "lasot") -> TrackerScores:
    """Score ``<results_root>/<label>/<seq>.txt`` for every sequence."""
    out = TrackerScores(label, {}, None, 0)
    total_frames, total_seconds = 0, 0.0
    for seq in sequences:
        path = results_path(results_root, label, seq.name)
        if not path.is_file():
            out.missing.append(seq.name)
            continue
        if not seq.gt_complete:
            out.unscored[seq.name] = "the ground truth holds only the first frame (test split)"
            continue
        try:
            pred = read_results(path, seq.one_based)
        except Exception as exc:  # noqa: BLE001 - a damaged file is reported, the rest is scored
            out.unscored[seq.name] = f"unreadable results: {exc}"
            continue
        curves = metrics.sequence_curves(pred, seq.gt, seq.visible, absent)
        if curves is None:
            out.unscored[seq.name] = "no valid frame to score"
            continue
        fps, frames, seconds = fps_from_times(read_times(path))
        if fps is not None:
            total_frames += frames
            total_seconds += seconds
        out.curves.append(curves)
        out.sequences[seq.name] = {**{k: _num(v) for k, v in metrics.scores([curves]).items()},
                                   "fps": _num(fps), "frames": curves.frames}
    out.scores = metrics.scores(out.curves)
    out.frames = int(sum(c.frames for c in out.curves))
    out.fps = total_frames / total_seconds if total_seconds > 0 else None
    return out


def discover_result_labels(results_root: str | Path) -> list[str]:
    """Tracker folders of a results directory: ``<tracker>/`` with .txt files, or pytracking's nested
    ``<tracker>/<param>_000/`` (returned as ``tracker/param_000``)."""
    root = Path(results_root)
    labels = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if any(d.glob("*.txt")):
            labels.append(d.name)
        else:
            labels += [f"{d.name}/{s.name}" for s in sorted(d.iterdir()) if s.is_dir() and any(s.glob("*.txt"))]
    return labels


RUN_FOLDER = re.compile(r"^(?P<tracker>.+)/(?P<param>[^/]+)_(?P<run>\d{3})$")


def run_label(name: str, run: int) -> str:
    """The results folder of run ``run`` of tracker ``name`` when a command repeats runs."""
    return f"{name}/run_{run:03d}"


def group_runs(labels: list[str]) -> dict[str, list[str]]:
    """Result labels grouped into repeated runs: ``T/run_000``, ``T/run_001`` ... -> ``T``; pytracking's
    ``T/P_000``, ``T/P_001`` ... -> ``T/P``.  A label without a sibling run stays on its own, under its own name."""
    groups: dict[str, list[str]] = {}
    for label in labels:
        m = RUN_FOLDER.match(label)
        key = label if m is None else (m["tracker"] if m["param"] == "run" else f"{m['tracker']}/{m['param']}")
        groups.setdefault(key, []).append(label)
    out: dict[str, list[str]] = {}
    for key, members in groups.items():
        if len(members) > 1:
            out[key] = sorted(members)
        else:
            out[members[0]] = members
    return out


def combine_runs(label: str, runs: list[TrackerScores]) -> TrackerScores:
    """Repeated runs of one tracker as one entry: every score the mean over the runs (overall and per sequence;
    the scores are linear in the success and precision curves, so this is also the score of the runs' pooled
    curves), ``runs`` each run's scores, and per sequence ``auc_runs``.  A sequence missing from some run is
    averaged over the runs that have it and listed in ``missing`` as ``SEQ (run LABEL)``."""
    out = TrackerScores(label, {}, None, 0)
    out.curves = [c for r in runs for c in r.curves]
    out.scores = {k: float(np.mean([r.scores[k] for r in runs])) for k in metrics.SCORE_KEYS}
    fps = [r.fps for r in runs if r.fps is not None]
    out.fps = float(np.mean(fps)) if fps else None
    out.frames = max(r.frames for r in runs)
    names = list(dict.fromkeys(q for r in runs for q in r.sequences))
    for q in names:
        have = [r.sequences[q] for r in runs if q in r.sequences]
        entry = {}
        for k in have[0]:
            vals = [h[k] for h in have if h.get(k) is not None]
            entry[k] = (int(vals[0]) if k == "frames" else _num(np.mean(vals))) if vals else None
        entry["auc_runs"] = [h["auc"] for h in have]
        out.sequences[q] = entry
    for r in runs:
        out.missing += [f"{q} (run {r.label})" for q in names if q not in r.sequences and q not in r.unscored]
        out.missing += [q for q in r.missing if q not in names and q not in out.missing]
        out.unscored.update({f"{q} (run {r.label})": why for q, why in r.unscored.items()})
    out.runs = [{"label": r.label, **{k: _num(v) for k, v in r.scores.items()}} for r in runs]
    return out


def write_summary(path: str | Path, scored: list[TrackerScores]) -> dict:
    summary = {"trackers": {s.label: s.summary() for s in scored}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(summary, indent=1) + "\n")
    return summary
