"""Choosing an IoU-Net by what it does in tracking: full ATOM on held-out sequences after every epoch.

Proposal-level validation (loss, Pearson, IoU after refining crops of validation pairs) did not predict tracking
on unseen video (issue 11: epochs with almost equal validation figures tracked 69 to 73 AUC). So a run can also
track whole held-out sequences with the epoch's IoU-Net inside the real tracker, from each sequence's first
box, and be scored the way ``atom eval`` scores (AUC, OP50, OP75 over sequences, LaSOT's absent convention).
``atom train --val-tracking KIND:PATH --val-tracking-sequences @configs/splits/val.txt --best-by val_auc``, with
``--val-tracking-runs N`` the mean of N runs whose seeds differ by the run (as ``atom eval --runs``).
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from ..config import SampleConfig

__all__ = ["TrackingValidation"]


class TrackingValidation:
    """``__call__(iounet) -> {"val_auc", "val_op50", "val_op75", "val_tracking_seconds"}`` (percent).

    Args:
        sequences: ``datasets.Sequence`` objects with full ground truth.
        backbone: the frozen backbone the IoU-Net is trained for (shared, never modified).
        preset: the tracker configuration (a ``config.preset`` name, overrides allowed), "default" = full ATOM.
        threads: torch threads while tracking (None leaves the setting alone).
        sample: the crop geometry the IoU-Net is trained with (default: the tracker's default); the tracker uses
            it, as it does with the exported model file.
        runs: how many times to track every sequence, run ``r`` with the preset's seed + ``r``; the scores are the
            means over the runs.
    """

    def __init__(self, sequences: list, backbone: torch.nn.Module, preset: str = "default",
                 threads: int | None = None, log: Callable[[str], None] | None = None,
                 sample: SampleConfig | None = None, runs: int = 1):
        if not sequences:
            raise ValueError("tracking validation needs at least one sequence")
        if runs < 1:
            raise ValueError("tracking validation needs at least one run")
        self.runs = runs
        self.sequences = sequences
        self.backbone = backbone
        self.preset = preset
        self.threads = threads
        self.sample = sample or SampleConfig()
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))

    def track_all(self, iounet: torch.nn.Module, runs: int = 1) -> list[dict[str, np.ndarray]]:
        """Predicted boxes (N, 4) per sequence name for each run, tracked on the CPU with a copy of ``iounet`` in
        eval mode, run ``r``'s tracker seeded with the preset's seed + ``r``.  The runs track each sequence side by
        side, so every frame is read once whatever their number."""
        from ..config import preset
        from ..datasets import read_frame
        from ..model_io import AtomModel
        from ..tracker import AtomTracker
        from .export import model_info

        net = copy.deepcopy(iounet).cpu().eval()
        model = AtomModel(self.backbone, net, model_info(self.backbone, {}, self.sample))
        cfgs = []
        for run in range(runs):
            cfg = preset(self.preset)
            cfg.device = "cpu"
            cfg.seed += run
            cfgs.append(cfg)
        out: list[dict[str, np.ndarray]] = [{} for _ in cfgs]
        for seq in self.sequences:
            trackers = [AtomTracker(model, cfg) for cfg in cfgs]
            boxes = np.zeros((len(cfgs), len(seq.frames), 4))
            boxes[:, 0] = seq.gt[0]
            first = read_frame(seq.frames[0])
            for tracker in trackers:
                tracker.initialize(first, tuple(seq.gt[0]))
            for i in range(1, len(seq.frames)):
                frame = read_frame(seq.frames[i])
                for r, tracker in enumerate(trackers):
                    boxes[r, i] = tuple(tracker.track(frame).box)
            for r, run_boxes in enumerate(boxes):
                out[r][seq.name] = run_boxes
        return out

    def __call__(self, iounet: torch.nn.Module) -> dict[str, float]:
        from ..evaluation import metrics

        old_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        backbone_device = next(self.backbone.parameters()).device
        t0 = time.time()
        try:
            self.backbone.cpu()
            runs = self.track_all(iounet, self.runs)
        finally:
            self.backbone.to(backbone_device)
            torch.set_num_threads(old_threads)
        # Every run scores the same sequences, and the scores are linear in the curves: the mean over the runs is
        # the score of all runs' curves together.
        curves = [(s.name, metrics.sequence_curves(boxes[s.name], s.gt, s.valid_mask()))
                  for boxes in runs for s in self.sequences]
        scores = metrics.scores(c for _, c in curves if c is not None)
        per_seq: dict[str, list[float]] = {}
        for name, c in curves:
            if c is not None:
                per_seq.setdefault(name, []).append(float(100 * c.success.mean()))
        self.log("tracking validation AUC per sequence: " + ", ".join(
            f"{k} {np.mean(v):.1f}" + (f" ({min(v):.1f}-{max(v):.1f})" if len(v) > 1 else "")
            for k, v in per_seq.items()))
        return {"val_auc": scores["auc"], "val_op50": scores["op50"], "val_op75": scores["op75"],
                "val_tracking_seconds": round(time.time() - t0, 1)}
