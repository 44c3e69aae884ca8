"""``atom eval``: one-pass (OPE) accuracy on tracking benchmarks, scored the way the field scores it.

    atom eval --dataset otb:/data/OTB100 --dataset vot:/data/VOT2015 --tracker atom --tracker kcf --out runs/e1
    atom eval --dataset otb:/data/OTB100 --results published/ --out runs/compare

Writes ``OUT/results/NAME/SEQ.txt`` (+ ``SEQ_time.txt``) in pytracking's format, ``OUT/summary.json``
(``{"trackers": {NAME: {auc, op50, op75, precision, norm_precision, fps, frames, sequences: {SEQ: {...}}}}}``,
percentages 0-100; ``fps`` = tracking speed without initialisation, from the time files, null when absent;
``frames`` = frames scored), ``OUT/{success,precision,norm_precision}_plot.png`` and a markdown table on stdout.

With ``--runs N`` every ATOM tracker runs N times with seeds differing by the run's number (the paper reports "the
average result over 5 runs"; a target held or lost by a hair moves one run's mean by several points) into
``OUT/results/NAME/run_000`` ...; the scores are the means over the runs, and summary.json keeps each run's in
``runs`` (and each sequence's AUCs in ``auc_runs``).  The classic trackers draw nothing at random and run once.
Failed sequences are listed on stderr and in ``OUT/failures.json``; the exit code is then 1.
The metric conventions are documented in ``tracker_core/evaluation/metrics.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..atomic_files import atomic_write_text
from ..datasets import KINDS as DATASET_KINDS
from ..errors import CommandError
from ..evaluation.metrics import ABSENT_CONVENTIONS
from ..trackers import TRACKER_NAMES


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval", help="OPE accuracy on tracking benchmarks (AUC, precision, normalised precision)",
        description=__doc__.split("\n\n")[0].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"dataset kinds: {', '.join(DATASET_KINDS)}; trackers: {', '.join(TRACKER_NAMES)}")
    add_common_arguments(p)
    p.add_argument("--out", help="output folder (results/, summary.json, plots); required unless --results")
    p.add_argument("--absent", choices=ABSENT_CONVENTIONS, default="lasot",
                   help="absent frames: lasot = count as failures (default), got10k = leave out")
    p.add_argument("--results", metavar="DIR2",
                   help="score existing result folders DIR2/<tracker>/<seq>.txt instead of running trackers")
    p.add_argument("--runs", type=int, default=1,
                   help="repeat every ATOM tracker this many times with different seeds and report the means "
                        "(default 1; the paper averages 5)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.set_defaults(func=run)
    return p


def add_common_arguments(p: argparse.ArgumentParser, trackers_required: bool = False) -> None:
    """Options shared by ``atom eval`` and ``atom bench``."""
    p.add_argument("--dataset", action="append", default=[], metavar="KIND:PATH",
                   help="a benchmark copy, e.g. otb:/data/OTB100 (repeatable)")
    p.add_argument("--tracker", action="append", default=[], metavar="NAME", required=trackers_required,
                   help="tracker name (repeatable, or comma-separated)")
    p.add_argument("--model", help="model file for the atom trackers (default: the shipped model)")
    p.add_argument("--preset", help="tracker configuration preset for the atom trackers")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--jobs", type=int, default=1, help="sequences run in parallel processes (default 1)")
    p.add_argument("--sequences", metavar="PATTERNS",
                   help="only sequences matching these comma-separated shell patterns, e.g. 'Biker,Bird*', "
                        "or @FILE with one name per line")


def tracker_names(values: list[str]) -> list[str]:
    names = []
    for v in values:
        names += [n.strip() for n in v.split(",") if n.strip() and n.strip() not in names]
    return names


def check_jobs(jobs: int) -> int:
    if jobs < 1:
        raise CommandError("--jobs must be at least 1")
    return jobs


def run(args) -> int:
    from ..datasets import load_datasets
    from ..evaluation import runner

    if not args.dataset:
        raise CommandError("give at least one --dataset KIND:PATH")
    jobs = check_jobs(args.jobs)
    names = tracker_names(args.tracker)
    sequences = load_datasets(args.dataset, args.sequences)
    out = Path(args.out) if args.out else None
    failures: dict = {}
    if args.runs < 1:
        raise CommandError("--runs must be at least 1")
    if args.results:
        results_root = Path(args.results).expanduser()
        labels = _existing_result_labels(results_root, names)
    else:
        results_root = _results_folder(out, names)
        specs = _specs(args, names)
        labels = list(specs)
        failures = _run_trackers(specs, sequences, results_root, jobs)
    each = {label: runner.score_tracker(results_root, label, sequences, args.absent) for label in labels}
    scored = [runner.combine_runs(group, [each[m] for m in members]) if len(members) > 1 else each[members[0]]
              for group, members in runner.group_runs(labels).items()]
    _report_what_was_not_scored(scored, bool(args.results))
    if out is not None:
        _write_outputs(out, scored, failures, len(sequences), plots=not args.no_plots)
    return _print_report(scored, failures, args.absent, len(sequences), out)


def _existing_result_labels(results_root: Path, names: list[str]) -> list[str]:
    """``--results``: the tracker folders to score (those named by ``--tracker``, when given)."""
    from ..evaluation import runner

    if not results_root.is_dir():
        raise CommandError(f"--results {results_root} is not a folder")
    labels = runner.discover_result_labels(results_root)
    if names:
        labels = [lab for lab in labels if lab in names or lab.split("/")[0] in names]
    if not labels:
        raise CommandError(f"no tracker result folders (NAME/SEQ.txt) in {results_root}")
    return labels


def _results_folder(out: Path | None, names: list[str]) -> Path:
    """Where a run writes its raw results, once the command line has what a run needs."""
    if out is None:
        raise CommandError("--out is required (or use --results DIR2 to score existing results)")
    if not names:
        raise CommandError("give at least one --tracker")
    return out / "results"


def _specs(args, names: list[str]) -> dict:
    """{results label: TrackerSpec}: one per tracker, or with ``--runs N`` N per ATOM tracker (``NAME/run_000``
    ...) and still one per classic tracker (they are deterministic)."""
    from .. import trackers
    from ..evaluation import runner

    trackers.check_tracker_names(names)
    specs = {}
    for n in names:
        if args.runs > 1 and trackers.is_atom_tracker(n):
            specs.update({runner.run_label(n, r): trackers.TrackerSpec(n, args.model, args.preset, args.device, run=r)
                          for r in range(args.runs)})
        else:
            specs[n] = trackers.TrackerSpec(n, args.model, args.preset, args.device)
    return specs


def _run_trackers(specs: dict, sequences: list, results_root: Path, jobs: int) -> dict:
    """Run every tracker on every sequence (resuming what exists); returns the failures by tracker and sequence."""
    from .. import trackers
    from ..evaluation import runner

    for spec in {(s.name, s.model_path, s.preset, s.device): s for s in specs.values()}.values():
        trackers.preflight(spec)
    print(f"{len(sequences)} sequences, {len(specs)} tracker run(s), {jobs} job(s)", file=sys.stderr)
    return runner.run_ope(sequences, specs, results_root, jobs=jobs)


def _report_what_was_not_scored(scored: list, results_given: bool) -> None:
    for s in scored:
        if s.missing and results_given:
            print(f"{s.label}: no results for {len(s.missing)} sequence(s): {', '.join(s.missing[:10])}"
                  f"{' ...' if len(s.missing) > 10 else ''}", file=sys.stderr)
        for seq, why in s.unscored.items():
            print(f"{s.label} {seq}: not scored: {why}", file=sys.stderr)


def _write_outputs(out: Path, scored: list, failures: dict, num_sequences: int, plots: bool) -> None:
    """``summary.json``, the plots and ``failures.json`` (removed when nothing failed)."""
    from ..evaluation import runner

    runner.write_summary(out / "summary.json", scored)
    if plots and any(s.curves for s in scored):
        from ..evaluation import metrics
        from ..evaluation.plots import plot_curves

        entries = {s.label: (metrics.mean_curves(s.curves), s.scores) for s in scored if s.curves}
        plot_curves(entries, out, title_suffix=f" ({num_sequences} sequences)")
    fail_path = out / "failures.json"
    if failures:
        atomic_write_text(fail_path, json.dumps({t: {q: {"error": f.message, "traceback": f.details}
                                                     for q, f in d.items()} for t, d in failures.items()},
                                                indent=1) + "\n")
    elif fail_path.exists():
        fail_path.unlink()


def _print_report(scored: list, failures: dict, absent: str, num_sequences: int, out: Path | None) -> int:
    """The table on stdout, the conventions and the failures on stderr; the exit code (1 when a run failed)."""
    from ..evaluation.report import eval_table

    print(eval_table({"trackers": {s.label: s.summary() for s in scored}}))
    print(f"\nabsent frames: {absent} convention; scores in percent; {num_sequences} sequences", file=sys.stderr)
    if not failures:
        return 0
    n = sum(len(d) for d in failures.values())
    print(f"{n} sequence run(s) FAILED (details in {out / 'failures.json'}):", file=sys.stderr)
    for t, d in failures.items():
        for q, f in d.items():
            print(f"  {t} {q}: {f.message}", file=sys.stderr)
    return 1
