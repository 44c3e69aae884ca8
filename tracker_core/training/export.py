"""Turning a training run into a model file of our format, with its model card.

``export_checkpoint(OUT/checkpoint.pt, backbone, path, card)`` writes the best epoch's IoU-Net with
:func:`tracker_core.model_io.save_model` (``NAME.safetensors`` + ``NAME.json``; the stock packaged Lite0 backbone
is not stored).  :func:`model_card_markdown` renders the card dict as ``MODEL_CARD.md``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..iounet import AtomIoUNet
from ..model_io import AtomModel, save_model

__all__ = ["export_checkpoint", "model_card_markdown"]


def load_best_iounet(checkpoint: str | Path, which: str = "best") -> tuple[AtomIoUNet, dict]:
    """The IoU-Net of a training checkpoint: its best epoch (``which="best"``) or its last one (``"last"``).

    Returns (iounet in eval mode, checkpoint dict without the weights).
    """
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    net = AtomIoUNet(**{k: tuple(v) for k, v in ckpt["iounet_config"].items()})
    if which == "best" and ckpt.get("best"):
        net.load_state_dict(ckpt["best"]["state"])
    else:
        net.load_state_dict(ckpt["model"])
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "scheduler", "rng")}
    if meta.get("best"):
        meta["best"] = {k: v for k, v in meta["best"].items() if k != "state"}
    return net.eval(), meta


def export_checkpoint(checkpoint: str | Path, backbone: torch.nn.Module, path: str | Path, card: dict,
                      which: str = "best") -> Path:
    """Save the checkpoint's best (or last) IoU-Net with ``backbone`` as our model format; returns the JSON path."""
    net, _ = load_best_iounet(checkpoint, which)
    model = AtomModel(backbone, net, {"preset": "default", "model_card": card, "backbone": backbone.name})
    return save_model(model, path)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def model_card_markdown(card: dict, title: str = "Model card") -> str:
    """A MODEL_CARD.md for a card dict (keys as written by ``atom train``)."""
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
        keys = [k for k in ("epoch", "lr", "train_loss", "val_loss", "val_pearson", "val_refined_iou",
                            "val_refined_from_truth_iou", "val_refined_from_0.9_iou", "val_refined_from_0.7_iou",
                            "val_auc", "val_op75", "seconds")
                if any(rec.get(k) is not None for rec in card["history"])]
        lines += ["", "## Per epoch", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for rec in card["history"]:
            lines.append("| " + " | ".join(_fmt(rec.get(k, "")) for k in keys) + " |")
    if card.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in card["notes"]]
    if card.get("reproduce"):
        lines += ["", "## Reproduce", "", "```sh", card["reproduce"], "```"]
    return "\n".join(lines) + "\n"
