"""Markdown tables for stdout (and for notes): eval scores, annotation effort, speed."""

from __future__ import annotations

import math


def _fmt(v, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}f}"


def markdown_table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [[c if isinstance(c, str) else _fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells[1:]]
    return "\n".join(lines)


def eval_table(summary: dict) -> str:
    """Rows of summary.json's trackers, best AUC first."""
    trackers = summary["trackers"]
    order = sorted(trackers, key=lambda n: -(trackers[n]["auc"] if trackers[n]["auc"] is not None else -1))
    rows = [[n, trackers[n]["auc"], trackers[n]["op50"], trackers[n]["op75"], trackers[n]["precision"],
             trackers[n]["norm_precision"], trackers[n]["fps"], trackers[n]["frames"],
             len(trackers[n]["sequences"])] for n in order]
    headers = ["Tracker", "AUC", "OP50", "OP75", "Prec@20", "NPrec@0.2", "FPS", "Frames", "Seqs"]
    if any(trackers[n].get("runs") for n in order):
        # Repeated runs: the scores are means; say over how many runs and how far the runs' AUCs spread.
        headers += ["Runs", "AUC of the runs"]
        for n, row in zip(order, rows):
            aucs = [r["auc"] for r in trackers[n].get("runs", []) if r["auc"] is not None]
            row += [len(aucs) or 1, f"{min(aucs):.1f}-{max(aucs):.1f}" if aucs else "-"]
    return markdown_table(headers, rows)


def annotate_table(result: dict) -> str:
    """One row per method and tau: manual boxes per 1000 frames and mean IoU."""
    rows = []
    for name, entry in result.items():
        for tau, v in entry["tau"].items():
            frames = sum(s["frames"] for s in v["sequences"].values())
            rows.append([name, tau, v["manual_per_1000"], _fmt(v["mean_iou"], 3), frames,
                         entry.get("correction_policy", "-")])
    return markdown_table(["Method", "tau", "Manual / 1000 frames", "Mean IoU", "Frames", "Correction policy"],
                          rows)


def _ms(value):
    return None if value is None else round(value)


def speed_table(result: dict) -> str:
    stage_names: list[str] = []
    for v in result.values():
        stage_names += [k for k in v.get("stages_ms", {}) if k not in stage_names]
    rows = [[name, v["fps"], v["fps_with_decode"], v["backbone_fps"],
             *[v["stages_ms"].get(k) for k in stage_names], _ms(v.get("init_ms")), _ms(v.get("init_ms_warm")),
             v["peak_mem_mb"] and round(v["peak_mem_mb"]), v["device"]] for name, v in result.items()]
    headers = ["Tracker", "FPS", "FPS w/ decode", "Backbone FPS", *[f"{k} ms" for k in stage_names],
               "init ms", "init ms (warm)", "Peak MB", "Device"]
    return markdown_table(headers, rows)


DIAGNOSE_COLUMNS = [
    ("mean IoU", "mean_iou", 3), ("lost", "lost_fraction", 3), ("one-step IoU", "one_step_iou", 3),
    ("refine gain", "refinement_gain", 3), ("refine lowers", "refinement_lowers_fraction", 3),
    ("abs scale step", "mean_abs_size_change", 3), ("scale error", "mean_size_error", 3),
    ("abs scale error", "mean_abs_size_error", 3), ("pred IoU", "pred_iou_mean", 3),
    ("pred/true r", "pred_vs_true_pearson", 3), ("learn IoU", "learn_iou", 3),
    ("learn IoU<0.5", "learn_below_half_fraction", 3),
]


def diagnose_table(result: dict) -> str:
    """Pooled diagnosis figures per tracker (``atom bench diagnose``)."""
    rows = [[name] + [_fmt(entry["pooled"].get(key), digits) for _, key, digits in DIAGNOSE_COLUMNS]
            for name, entry in result.items()]
    return markdown_table(["tracker"] + [h for h, _, _ in DIAGNOSE_COLUMNS], rows)
