"""Turning a training run into a model file of our format.

``export_checkpoint(OUT/checkpoint.pt, backbone, path, card, sample)`` writes the best epoch's IoU-Net with
:func:`tracker_core.model_io.save_model` (``NAME.safetensors`` + ``NAME.json``; the stock packaged Lite0 backbone
is not stored).  Every model file a run writes (each epoch's, the best one) carries the crop geometry it was trained
with (:func:`model_info`), which the tracker then uses.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ..config import CROP_GEOMETRY, SampleConfig
from ..iounet import AtomIoUNet
from ..model_io import AtomModel, save_model

__all__ = ["export_checkpoint", "load_best_iounet", "model_info"]


def model_info(backbone: torch.nn.Module, card: dict, sample: SampleConfig) -> dict:
    """The ``AtomModel.info`` of a model trained here: full ATOM, its card, and the crop geometry (``sample``:
    the :data:`~tracker_core.config.CROP_GEOMETRY` fields of the training crops)."""
    geometry = {k: v for k, v in dataclasses.asdict(sample).items() if k in CROP_GEOMETRY}
    return {"preset": "default", "backbone": getattr(backbone, "name", ""), "model_card": card, "sample": geometry}


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
                      sample: SampleConfig, which: str = "best") -> Path:
    """Save the checkpoint's best (or last) IoU-Net with ``backbone`` as our model format, with the crop geometry
    ``sample`` it was trained on; returns the JSON path."""
    net, _ = load_best_iounet(checkpoint, which)
    return save_model(AtomModel(backbone, net, model_info(backbone, card, sample)), path)
