"""The model object every loader returns: a frozen backbone, the trained IoU-Net or None, and where they came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class AtomModel:
    """A frozen backbone, the trained IoU-Net (``None`` when there is none) and facts about where they came from.

    ``info`` keys: ``source`` (path or ``None``), ``kind`` (``"atom-model"``, ``"pytracking-checkpoint"``,
    ``"atom-state-dict"``, ``"torchvision-state-dict"``, ``"efficientnet-state-dict"``, ``"builtin"``),
    ``backbone`` (name), ``preset`` (the preset the file recommends), ``model_card`` (dict, possibly empty),
    optionally ``sample`` (the crop geometry the IoU-Net was trained with: the ``config.CROP_GEOMETRY`` fields of
    ``SampleConfig``, which the tracker then uses), ``warning`` (a sentence for the person) and ``pytracking``
    (the checkpoint's metadata).
    """

    backbone: nn.Module
    iounet: nn.Module | None
    info: dict = field(default_factory=dict)

    def to(self, device: str | torch.device) -> AtomModel:
        """Move both networks to ``device`` in place; returns ``self`` for chaining."""
        self.backbone.to(device)
        if self.iounet is not None:
            self.iounet.to(device)
        return self

    def eval(self) -> AtomModel:
        """Inference mode for both networks (the backbone is always in eval mode anyway)."""
        self.backbone.eval()
        if self.iounet is not None:
            self.iounet.eval()
        return self

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    @property
    def has_iounet(self) -> bool:
        return self.iounet is not None
