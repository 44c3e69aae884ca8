"""``atom bench``: annotation effort (the simulated annotator) and speed.

    atom bench annotate --dataset otb:/data/OTB100 --tracker atom --tracker interpolation --tracker copy \\
        --tau 0.5 --tau 0.7 --out runs/ann
    atom bench speed --tracker atom --tracker kcf --dataset otb:/data/OTB100 --device cpu --threads 4 --out runs/sp
    atom bench speed --tracker atom --video clip.mp4 --box 10,20,50,80 --device cuda --out runs/sp

``annotate`` writes ``OUT/annotate.json``: ``{NAME: {"tau": {T: {"manual_per_1000", "mean_iou", "sequences":
{SEQ: {"manual", "frames", "manual_per_1000", "mean_iou"}}}}, "correction_policy": ...}}`` and a table.
``interpolation`` and ``copy`` are the baselines; the protocol is in ``tracker_core/evaluation/annotate_sim.py``.

``speed`` writes ``OUT/speed.json``: ``{NAME: {"fps", "fps_with_decode", "backbone_fps", "stages_ms": {...},
"init_ms", "init_ms_warm", "init_stages_ms": {...}, "peak_mem_mb", "device", "frames", "threads"}}`` and a table;
see ``tracker_core/evaluation/speed.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..atomic_files import atomic_write_text
from ..errors import CommandError
from .evaluate import add_common_arguments, check_jobs, tracker_names


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("bench", help="annotation-effort and speed benchmarks",
                              description=__doc__.split("\n\n")[0].replace("``", ""))
    sub = p.add_subparsers(dest="bench_command", metavar="{annotate,speed}")

    a = sub.add_parser("annotate", help="boxes a simulated annotator must draw (tracker vs. baselines)",
                       description="Simulated annotator: a manual box whenever the method's box has IoU < tau. "
                                   "Baselines: interpolation (greedy keyframes), copy.")
    add_common_arguments(a)
    a.add_argument("--tau", type=float, action="append", default=[],
                   help="IoU a box must reach to be accepted (repeatable; default 0.5)")
    a.add_argument("--out", required=True, help="output folder (annotate.json)")
    a.set_defaults(func=run_annotate)

    s = sub.add_parser("speed", help="frames per second, per-stage time, peak memory, backbone bound")
    s.add_argument("--tracker", action="append", default=[], metavar="NAME", help="tracker (repeatable)")
    s.add_argument("--video", help="a video file or image folder to track")
    s.add_argument("--box", help="initial box x,y,w,h (0-based pixels) for --video")
    s.add_argument("--dataset", action="append", default=[], metavar="KIND:PATH",
                   help="benchmark sequences to track instead of --video (used in order)")
    s.add_argument("--sequences", metavar="PATTERNS", help="only these sequences (comma-separated patterns)")
    s.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu", help="device (default cpu)")
    s.add_argument("--threads", type=int, help="torch and OpenCV threads (default: the libraries' default)")
    s.add_argument("--frames", type=int, default=300, help="frames to time per tracker (default 300)")
    s.add_argument("--warmup", type=int, default=10, help="tracked frames left out at the start (default 10)")
    s.add_argument("--model", help="model file for the atom trackers")
    s.add_argument("--preset", help="configuration preset for the atom trackers")
    s.add_argument("--out", required=True, help="output folder (speed.json)")
    s.set_defaults(func=run_speed)

    d = sub.add_parser("diagnose", help="why full ATOM loses a target: refinement traces and one-step tracking",
                       description="Per frame: IoU before and after box refinement, the scale step it took, the "
                                   "scale error left, predicted vs true IoU, what the classifier learns from; and "
                                   "one-step tracking from the true box (see tracker_core/evaluation/diagnose.py).")
    add_common_arguments(d)
    d.add_argument("--one-step", type=int, default=10, metavar="N",
                   help="frames per sequence for the one-step test (default 10; 0 skips it)")
    d.add_argument("--out", required=True, help="output folder (diagnose.json)")
    d.set_defaults(func=run_diagnose)

    p.set_defaults(func=lambda args: _missing_subcommand(p))
    return p


def _missing_subcommand(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


# ---- annotate ---------------------------------------------------------------------------------------------

def run_annotate(args) -> int:
    from .. import trackers
    from ..datasets import load_datasets
    from ..evaluation.annotate_sim import BASELINES, AnnotateTask, aggregate, run_annotate_task, tau_key
    from ..evaluation.parallel import TaskFailure, run_tasks
    from ..evaluation.report import annotate_table

    if not args.dataset:
        raise CommandError("give at least one --dataset KIND:PATH")
    names = tracker_names(args.tracker)
    if not names:
        raise CommandError("give at least one --tracker (a tracker, interpolation or copy)")
    taus = sorted(set(args.tau)) or [0.5]
    if any(not 0.0 < t <= 1.0 for t in taus):
        raise CommandError("--tau must be in (0, 1]")
    jobs = check_jobs(args.jobs)
    trackers.check_tracker_names([n for n in names if n not in BASELINES])
    sequences = [s for s in load_datasets(args.dataset, args.sequences) if s.gt_complete]
    if not sequences:
        raise CommandError("no sequence with full ground truth to simulate on")

    specs, policies = {}, {}
    for n in names:
        if n in BASELINES:
            specs[n] = None
            continue
        specs[n] = trackers.TrackerSpec(n, args.model, args.preset, args.device)
        policies[n] = trackers.preflight(specs[n])
        print(f"{n}: after a correction the tracker continues by update_with_box, policy "
              f"'{policies[n]}'", file=sys.stderr)

    # Trackers first (they are the slow tasks), baselines after; each (method, tau, sequence) is one task.
    tasks = [AnnotateTask(n, specs[n], seq, tau) for n in sorted(names, key=lambda n: n in BASELINES)
             for tau in taus for seq in sequences]
    outcomes: dict = {}
    failures: list[str] = []
    done = [0]

    def on_result(task, result) -> None:
        done[0] += 1
        head = f"[{done[0]}/{len(tasks)}] {task.label} tau={task.tau} {task.sequence.name}:"
        if isinstance(result, TaskFailure):
            failures.append(f"{task.label} tau={task.tau} {task.sequence.name}: {result.message}")
            print(f"{head} FAILED: {result.message}", file=sys.stderr)
            return
        outcomes.setdefault(task.label, {}).setdefault(task.tau, {})[task.sequence.name] = result
        print(f"{head} {result.manual} manual / {result.frames} frames", file=sys.stderr)

    run_tasks(run_annotate_task, tasks, jobs=jobs, on_result=on_result)

    result = {}
    for n in names:
        entry = {"tau": {tau_key(t): aggregate(outcomes.get(n, {}).get(t, {})) for t in taus}}
        if n in policies:
            entry["correction_policy"] = policies[n]
        result[n] = entry
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "annotate.json", json.dumps(result, indent=1) + "\n")
    print(annotate_table(result))
    if policies:
        print("\ncorrection policy: " + ", ".join(f"{n}: {p}" for n, p in policies.items()), file=sys.stderr)
    if failures:
        print(f"{len(failures)} run(s) FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


# ---- diagnose ---------------------------------------------------------------------------------------------

def run_diagnose(args) -> int:
    from .. import trackers
    from ..datasets import load_datasets
    from ..evaluation.diagnose import DiagnoseTask, run_diagnose_task
    from ..evaluation.parallel import TaskFailure, run_tasks
    from ..evaluation.report import diagnose_table

    if not args.dataset:
        raise CommandError("give at least one --dataset KIND:PATH")
    names = tracker_names(args.tracker) or ["atom"]
    trackers.check_tracker_names(names)
    if args.one_step < 0:
        raise CommandError("--one-step must be 0 or more")
    sequences = [s for s in load_datasets(args.dataset, args.sequences) if s.gt_complete]
    if not sequences:
        raise CommandError("no sequence with full ground truth to diagnose")
    tasks = [DiagnoseTask(n, trackers.TrackerSpec(n, args.model, args.preset, args.device), seq, args.one_step)
             for n in names for seq in sequences]
    result: dict = {n: {"sequences": {}} for n in names}
    failures: list[str] = []

    def on_result(task, r) -> None:
        if isinstance(r, TaskFailure):
            failures.append(f"{task.label} {task.sequence.name}: {r.message}")
            return
        result[task.label]["sequences"][task.sequence.name] = r
        print(f"{task.label} {task.sequence.name}: mean IoU {r['summary']['mean_iou']:.3f}", file=sys.stderr)

    run_tasks(run_diagnose_task, tasks, jobs=check_jobs(args.jobs), on_result=on_result)
    from ..evaluation.diagnose import FrameTrace, summarise

    for entry in result.values():
        seqs = entry["sequences"].values()
        entry["pooled"] = summarise([FrameTrace(**f) for r in seqs for f in r["frames"]])
        steps = [v for r in seqs for v in r["one_step"]]
        entry["pooled"]["one_step_iou"] = float(sum(steps) / len(steps)) if steps else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "diagnose.json", json.dumps(result, indent=1) + "\n")
    print(diagnose_table(result))
    if failures:
        print(f"{len(failures)} run(s) FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


# ---- speed ------------------------------------------------------------------------------------------------

def run_speed(args) -> int:
    from .. import trackers
    from ..boxes import parse_box_arg
    from ..evaluation.parallel import TaskFailure, run_tasks
    from ..evaluation.report import speed_table
    from ..evaluation.speed import SpeedTask, run_speed_task

    names = tracker_names(args.tracker)
    if not names:
        raise CommandError("give at least one --tracker")
    trackers.check_tracker_names(names)
    if bool(args.video) == bool(args.dataset):
        raise CommandError("give either --video PATH (with --box) or --dataset KIND:PATH")
    if args.frames < 1 or args.warmup < 0:
        raise CommandError("--frames must be at least 1 and --warmup at least 0")
    if args.threads is not None and args.threads < 1:
        raise CommandError("--threads must be at least 1")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CommandError("--device cuda: no CUDA device is available")
    box, sequences = None, None
    if args.video:
        if not args.box:
            raise CommandError("--video needs --box x,y,w,h (the target in the first frame, 0-based pixels)")
        try:
            box = parse_box_arg(args.box).as_tuple()
        except ValueError as exc:
            raise CommandError(f"--box: {exc}") from None
        if not Path(args.video).exists():
            raise CommandError(f"--video {args.video} does not exist")
    else:
        from ..datasets import load_datasets

        sequences = load_datasets(args.dataset, args.sequences)
        sequences = _enough(sequences, args.frames + args.warmup + 1)

    tasks = [SpeedTask(n, trackers.TrackerSpec(n, args.model, args.preset, args.device), args.frames,
                       args.warmup, args.threads, args.video, box, sequences) for n in names]
    result, failures = {}, []
    for task in tasks:  # one at a time: trackers measured side by side would slow each other down
        print(f"{task.label}: timing {args.frames} frames on {args.device}...", file=sys.stderr)
        (r,) = run_tasks(run_speed_task, [task], jobs=1, isolate=True, threads_per_worker=args.threads)
        if isinstance(r, TaskFailure):
            failures.append(f"{task.label}: {r.message}")
            print(f"{task.label}: FAILED: {r.message}", file=sys.stderr)
            continue
        result[task.label] = r
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "speed.json", json.dumps(result, indent=1) + "\n")
    if result:
        print(speed_table(result))
    if failures:
        print(f"{len(failures)} tracker(s) FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


def _enough(sequences: list, frames: int) -> list:
    """The first sequences that together hold ``frames`` frames (only those travel to the worker)."""
    out, total = [], 0
    for s in sequences:
        if total >= frames:
            break
        out.append(s)
        total += len(s.frames) - 1
    return out
