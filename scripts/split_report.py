"""Per-sequence table of one split for the model card and issue notes, from `atom eval` and `atom bench annotate`.

    python scripts/split_report.py --eval runs/eval_test/summary.json --annotate runs/annotate_test/annotate.json

Columns: frames, then AUC / OP75 of every tracker in the eval summary, then manual boxes per 1000 frames at every
tau of every method in the annotate file; the last row is the split's total (AUC and OP75 averaged over
sequences as `atom eval` does, manual boxes pooled over frames as `atom bench annotate` does). For repeated runs
(`atom eval --runs N`) the AUC is the runs' mean, followed by the range of the runs' AUCs in brackets.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _f(v, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _spread(aucs) -> str:
    """The range of the runs' AUCs as ' (lowest-highest)'; empty for a single run."""
    aucs = [a for a in (aucs or []) if a is not None]
    return f" ({min(aucs):.0f}-{max(aucs):.0f})" if len(aucs) > 1 else ""


def table(summary: dict, annotate: dict | None, trackers: list[str] | None = None) -> str:
    evals = summary["trackers"]
    names = trackers or list(evals)
    ann = annotate or {}
    ann_cols = [(m, tau) for m in ann for tau in ann[m]["tau"]]
    seqs = list(next(iter(evals.values()))["sequences"])
    head = ["sequence", "frames"] + [f"{n} AUC / OP75" for n in names] + \
        [f"{m} manual/1000 @{tau}" for m, tau in ann_cols]
    rows = []
    for s in seqs:
        first = evals[names[0]]["sequences"][s]
        row = [s, str(first.get("frames", "-"))]
        for n in names:
            e = evals[n]["sequences"].get(s, {})
            row.append(f"{_f(e.get('auc'))}{_spread(e.get('auc_runs'))} / {_f(e.get('op75'))}")
        for m, tau in ann_cols:
            a = ann[m]["tau"][tau]["sequences"].get(s)
            row.append(_f(a["manual_per_1000"]) if a else "-")
        rows.append(row)
    total = ["**all**", str(sum(int(evals[names[0]]["sequences"][s].get("frames", 0)) for s in seqs))]
    total += [f"**{_f(evals[n]['auc'])}{_spread([r['auc'] for r in evals[n].get('runs', [])])} / "
              f"{_f(evals[n]['op75'])}**" for n in names]
    total += [f"**{_f(ann[m]['tau'][tau]['manual_per_1000'])}**" for m, tau in ann_cols]
    rows.append(total)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eval", required=True, type=Path, help="summary.json of atom eval")
    ap.add_argument("--annotate", type=Path, help="annotate.json of atom bench annotate")
    ap.add_argument("--trackers", help="comma-separated tracker order (default: as in the summary)")
    args = ap.parse_args()
    summary = json.loads(args.eval.read_text())
    annotate = json.loads(args.annotate.read_text()) if args.annotate else None
    print(table(summary, annotate, args.trackers.split(",") if args.trackers else None))


if __name__ == "__main__":
    main()
