"""The model card of a training run: a dict stored in the model file (``model_card``) and ``MODEL_CARD.md``.

:func:`model_card` assembles it from the run's settings, data and history; :func:`model_card_markdown` renders it.
"""

from __future__ import annotations

import datetime

from ..config import CROP_GEOMETRY
from .settings import TrainSettings, criterion_key

__all__ = ["HISTORY_KEYS", "model_card", "model_card_markdown"]

# The per-epoch figures a card keeps (and MODEL_CARD.md shows, where any epoch has them).
HISTORY_KEYS = ("epoch", "lr", "train_loss", "val_loss", "val_pearson", "val_refined_iou",
                "val_refined_from_truth_iou", "val_refined_from_0.9_iou", "val_refined_from_0.7_iou", "val_auc",
                "val_op75", "seconds")

# card key -> the best epoch's record key
_BEST_EPOCH_FIGURES = {
    "validation_loss": "val_loss",
    "validation_pearson_iou": "val_pearson",
    "validation_refined_iou": "val_refined_iou",
    "validation_refine_start_iou": "val_start_iou",
    "validation_refined_from_truth_iou": "val_refined_from_truth_iou",
    "validation_refined_from_0.9_iou": "val_refined_from_0.9_iou",
    "validation_refined_from_0.7_iou": "val_refined_from_0.7_iou",
    "validation_tracking_auc": "val_auc",
    "validation_tracking_op75": "val_op75",
}


def _optimiser_text(s: TrainSettings, world_size: int) -> str:
    decay = f" weight decay {s.weight_decay:g}" if s.weight_decay else ""
    dropout = f", feature channel dropout {s.feature_dropout:g}" if s.feature_dropout else ""
    return (f"{'AdamW' if s.weight_decay else 'Adam'} lr {s.lr:g}{decay} on the IoU-Net only (backbone frozen), "
            f"StepLR {s.lr_step}/{s.lr_gamma:g}, batch {s.batch} x {world_size} process(es), {s.proposals} "
            f"proposals per pair, MSE on 2 IoU - 1{dropout}")


def model_card(settings: TrainSettings, *, widths: dict, iounet_parameters: int, train_sources: list,
               val_sources: list, pairs_text: str, validation_pairs: int, history: list[dict], best_epoch: int,
               world_size: int, notes: list[str], reproduce: str, torch_version: str) -> dict:
    """The card of a finished run (keys whose value is unknown are left out).

    ``history``: the trainer's per-epoch records; ``best_epoch``: the exported one; ``validation_pairs``: the size
    of the validation pool (0 without one); ``reproduce``: the ``atom train`` command of the run.
    """
    s = settings
    best = next(r for r in history if r["epoch"] == best_epoch)
    chosen_by = criterion_key(s.best_by, best)
    card = {
        "summary": f"ATOM IoU-Net for the {s.backbone} backbone, trained with `atom train`.",
        "backbone": s.backbone,
        "iounet_widths": {k: list(v) for k, v in widths.items()},
        "iounet_parameters": iounet_parameters,
        "crop_geometry": {k: getattr(s, k) for k in CROP_GEOMETRY},
        "training_data": [src.describe() for src in train_sources],
        "validation_data": [src.describe() for src in val_sources],
        "pairs": pairs_text,
        "initialised_from": str(s.init) if s.init else None,
        "pairs_seen": sum(r["pairs"] for r in history),
        "epochs": len(history),
        "best_epoch": best_epoch,
        "best_epoch_chosen_by": chosen_by,
        "final_train_loss": history[-1]["train_loss"],
        "best_epoch_train_loss": best["train_loss"],
        **{key: best.get(record_key) for key, record_key in _BEST_EPOCH_FIGURES.items()},
        "validation_pairs": validation_pairs,
        "optimiser": _optimiser_text(s, world_size),
        "trained": datetime.date.today().isoformat(),
        "torch": torch_version,
        "history": [{k: r.get(k) for k in HISTORY_KEYS} for r in history],
        "notes": notes,
        "reproduce": reproduce,
    }
    return {k: v for k, v in card.items() if v is not None}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def model_card_markdown(card: dict, title: str = "Model card") -> str:
    """A MODEL_CARD.md for a card dict (keys as written by :func:`model_card`)."""
    lines = [f"# {title}", ""]
    if card.get("summary"):
        lines += [card["summary"], ""]
    lines += ["| item | value |", "|---|---|"]
    for key, value in card.items():
        if key in ("summary", "history", "reproduce", "notes"):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
        elif isinstance(value, list):
            value = "; ".join(_fmt(v) for v in value)
        lines.append(f"| {key.replace('_', ' ')} | {_fmt(value)} |")
    if card.get("history"):
        keys = [k for k in HISTORY_KEYS if any(rec.get(k) is not None for rec in card["history"])]
        lines += ["", "## Per epoch", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for rec in card["history"]:
            lines.append("| " + " | ".join(_fmt(rec.get(k, "")) for k in keys) + " |")
    if card.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in card["notes"]]
    if card.get("reproduce"):
        lines += ["", "## Reproduce", "", "```sh", card["reproduce"], "```"]
    return "\n".join(lines) + "\n"
