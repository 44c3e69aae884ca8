"""The IoU-Net training loop (reference section 5.1): Adam on the IoU-Net only, StepLR, MSE on ``2 IoU - 1``.

Long runs survive interruptions: after every epoch rank 0 writes ``OUT/checkpoint.pt`` (model, optimiser,
scheduler, RNG states, epoch, history, best epoch's weights) atomically, plus ``OUT/log.csv`` and
``OUT/loss.png``.  Every random draw of an epoch (pair order, proposals, on-the-fly pairs) is seeded by
``(seed, epoch, rank)``, so a run resumed from a checkpoint continues bit-identically to one never interrupted.

Data comes from a :class:`PoolData` (cached features, proposals redrawn each epoch) or an :class:`OnlineData`
(fresh pairs from DataLoader workers through the frozen backbone); both yield the same batch dicts.
"""

from __future__ import annotations

import csv
import io
import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..atomic_files import atomic_path, atomic_write_text
from ..box_tensors import iou_torch
from ..config import RefinementConfig
from ..refinement import choose_box, jittered_boxes, optimize_boxes
from .distributed import DistContext, all_reduce_mean, shard_indices, wrap_model
from .feature_pool import FeaturePool, GroupDataset, collate_groups, extract_features
from .processing import MIN_IOU, SIGMA_FACTORS, draw_proposals, iou_targets
from .settings import CHECKPOINT_NAME, HIGHER_IS_BETTER, TrainSettings, criterion_key

__all__ = ["OnlineData", "PoolData", "TrainConfig", "Trainer", "evaluate", "seeded_generator"]

@dataclass
class TrainConfig:
    """What the training loop needs of a run's settings (:func:`.run.train_config` makes it from a run's
    :class:`TrainSettings`, whose defaults these are)."""

    epochs: int = TrainSettings.epochs
    batch_size: int = TrainSettings.batch  # pairs per step and process
    lr: float = TrainSettings.lr
    lr_step: int = TrainSettings.lr_step
    lr_gamma: float = TrainSettings.lr_gamma
    seed: int = TrainSettings.seed
    num_proposals: int = TrainSettings.proposals
    sigma_factors: tuple[float, ...] = SIGMA_FACTORS
    min_iou: float = MIN_IOU
    weight_decay: float = TrainSettings.weight_decay  # decoupled (AdamW); 0 is exactly the reference's Adam
    # Probability of zeroing each backbone channel of each training crop (survivors scaled by 1 / (1 - p)); 0 is
    # the reference.  With a frozen backbone and cached features the net sees the same feature maps every epoch;
    # dropping channels keeps it from memorising them.
    feature_dropout: float = TrainSettings.feature_dropout
    # What makes an epoch the best: "val_loss" (lowest), "val_pearson" (highest agreement of predicted and true
    # IoU, insensitive to a constant calibration offset), "val_refined_iou" (highest IoU after the tracker's
    # box refinement on validation pairs), or "val_auc" (highest AUC of full ATOM tracking held-out sequences
    # with the epoch's net: what the net is for; needs an epoch hook that reports it); without validation, the
    # lowest training loss.
    best_by: str = TrainSettings.best_by


def seeded_generator(*keys: int) -> torch.Generator:
    """A CPU torch generator seeded from integer keys (e.g. seed, epoch, rank)."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def channel_dropout(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Zero whole channels of (B, C, H, W) features with probability ``p``, scaling the rest by ``1 / (1 - p)``
    so that the expectation is unchanged (Dropout2d with an explicit generator, for reproducible epochs)."""
    if p <= 0:
        return x
    keep = (torch.rand(x.shape[0], x.shape[1], 1, 1, generator=generator) >= p).to(x.dtype)
    return x * keep.to(x.device) / (1.0 - p)


# ---- data -----------------------------------------------------------------------------------------------------

class PoolData:
    """Batches of a :class:`FeaturePool`: every epoch a new order (seeded), split across ranks, last partial
    batch dropped.  Yields dicts of ref_f8, ref_f16, test_f8, test_f16 (float32), ref_boxes, test_boxes (B, 4)."""

    def __init__(self, pool: FeaturePool, batch_size: int, seed: int):
        self.pool = pool
        self.batch_size = int(batch_size)
        self.seed = int(seed)

    def steps_per_epoch(self, world_size: int = 1) -> int:
        return (-(-len(self.pool) // world_size)) // self.batch_size

    def batches(self, epoch: int, rank: int = 0, world_size: int = 1) -> Iterator[dict[str, torch.Tensor]]:
        order = shard_indices(len(self.pool), rank, world_size, self.seed, epoch)
        for s in range(self.steps_per_epoch(world_size)):
            yield self.pool.pairs(torch.from_numpy(order[s * self.batch_size:(s + 1) * self.batch_size]))


class OnlineData:
    """Fresh pairs every epoch: ``dataset_for_epoch(epoch)`` gives a :class:`GroupDataset` (one test frame per
    group) whose crops DataLoader workers prepare; the frozen ``backbone`` turns them into features here."""

    def __init__(self, dataset_for_epoch: Callable[[int], GroupDataset], backbone: torch.nn.Module,
                 pairs_per_epoch: int, batch_size: int, seed: int, workers: int = 0):
        self.dataset_for_epoch = dataset_for_epoch
        self.backbone = backbone
        self.pairs_per_epoch = int(pairs_per_epoch)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.workers = int(workers)

    def steps_per_epoch(self, world_size: int = 1) -> int:
        return (-(-self.pairs_per_epoch // world_size)) // self.batch_size

    def batches(self, epoch: int, rank: int = 0, world_size: int = 1) -> Iterator[dict[str, torch.Tensor]]:
        order = shard_indices(self.pairs_per_epoch, rank, world_size, self.seed, epoch, shuffle=False)
        order = order[:self.steps_per_epoch(world_size) * self.batch_size].tolist()
        loader = torch.utils.data.DataLoader(
            self.dataset_for_epoch(epoch), batch_size=self.batch_size, sampler=order, num_workers=self.workers,
            collate_fn=collate_groups, persistent_workers=False, prefetch_factor=4 if self.workers else None)
        device = next(self.backbone.parameters()).device
        for batch in loader:
            rf8, rf16 = extract_features(self.backbone, batch["ref_crops"].to(device), chunk=self.batch_size)
            tf8, tf16 = extract_features(self.backbone, batch["test_crops"].to(device), chunk=self.batch_size)
            yield {"ref_f8": rf8, "ref_f16": rf16, "test_f8": tf8, "test_f16": tf16,
                   "ref_boxes": batch["ref_boxes"], "test_boxes": batch["test_boxes"]}


# ---- evaluation -------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate(iounet: torch.nn.Module, pool: FeaturePool, batch_size: int = 64, device: torch.device | str = "cpu"
             ) -> dict[str, float]:
    """Loss and IoU agreement on a pool with fixed proposals.

    Returns {"loss": MSE on 2 IoU - 1, "pearson": correlation of predicted and true IoU, "pairs", "mae_iou"}.
    """
    was_training = iounet.training
    iounet.eval()
    preds, trues = [], []
    for start in range(0, len(pool), batch_size):
        b = pool.pairs(torch.arange(start, min(start + batch_size, len(pool))))
        out = iounet((b["ref_f8"].to(device), b["ref_f16"].to(device)),
                     (b["test_f8"].to(device), b["test_f16"].to(device)),
                     b["ref_boxes"].to(device), b["proposals"].to(device))
        preds.append(out.float().cpu())
        trues.append(b["proposal_iou"].float())
    pred, true = torch.cat(preds), torch.cat(trues)
    loss = float(F.mse_loss(pred, iou_targets(true)))
    p_iou = ((pred + 1) / 2).flatten().double().numpy()
    t_iou = true.flatten().double().numpy()
    pearson = float(np.corrcoef(p_iou, t_iou)[0, 1]) if p_iou.std() > 0 and t_iou.std() > 0 else float("nan")
    refined = refinement_quality(iounet, pool, RefinementConfig(), batch_size, device)
    iounet.train(was_training)
    return {"loss": loss, "pearson": pearson, "pairs": len(pool), "mae_iou": float(np.abs(p_iou - t_iou).mean()),
            **refined}


# How far from the truth a tracker's starting box typically is when refinement begins: the classifier's position
# (a few percent of the target size off) and the previous frame's size.  Fixed, so that epochs compare.
REFINE_START_CENTER_SD = 0.1  # x sqrt(w h)
REFINE_START_LOG_SIZE_SD = 0.15


def boxes_at_iou(truth: torch.Tensor, target: float, generator: torch.Generator, steps: int = 40) -> torch.Tensor:
    """Boxes whose IoU with ``truth`` (N, 4) xywh is ``target`` (to 1e-6): each moves along its own random direction
    of (centre shift, log width, log height), scaled by bisection until the IoU falls to ``target``."""
    n = truth.shape[0]
    sq = truth[:, 2:].prod(1, keepdim=True).sqrt()
    direction = torch.randn(n, 4, generator=generator)
    direction = direction / direction.norm(dim=1, keepdim=True)

    def along(t: torch.Tensor) -> torch.Tensor:
        d = direction * t[:, None]
        ctr = truth[:, :2] + truth[:, 2:] / 2 + d[:, :2] * sq
        sz = truth[:, 2:] * torch.exp(d[:, 2:])
        return torch.cat([ctr - sz / 2, sz], 1)

    lo, hi = torch.zeros(n), torch.full((n,), 4.0)  # IoU is 1 at t = 0 and near 0 at t = 4
    for _ in range(steps):
        mid = (lo + hi) / 2
        above = iou_torch(along(mid), truth) > target
        lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
    return along((lo + hi) / 2)


def refinement_quality(iounet: torch.nn.Module, pool: FeaturePool, rc: RefinementConfig, batch_size: int = 64,
                       device: torch.device | str = "cpu", seed: int = 7) -> dict[str, float]:
    """What IoU maximisation does to the boxes of validation pairs, exactly as the tracker runs it.

    Each test box is perturbed (centre by ``REFINE_START_CENTER_SD``, log size by ``REFINE_START_LOG_SIZE_SD``,
    fixed seed), refined with ``rc`` (jittered starts, gradient ascent, mean of the top k), and compared with the
    truth.  Returns {"start_iou": mean IoU of the starting boxes, "refined_iou": after refinement,
    "refined_from_truth_iou": refining the exact box (1.0 would be perfectly stable), "refined_from_0.9_iou" and
    "refined_from_0.7_iou": refining boxes of exactly that IoU (refinement helps where the result is higher)}.
    ``iounet`` should be in eval mode (its BatchNorm statistics frozen), as in tracking; :func:`evaluate` puts it
    there.
    """
    generator = seeded_generator(seed)
    starts = {"start": [], "truth": [], "0.9": [], "0.7": []}
    start_ious = []
    for begin in range(0, len(pool), batch_size):
        b = pool.pairs(torch.arange(begin, min(begin + batch_size, len(pool))))
        truth = b["test_boxes"].float()
        sq = truth[:, 2:].prod(1, keepdim=True).sqrt()
        ctr = truth[:, :2] + truth[:, 2:] / 2 + torch.randn(truth.shape[0], 2, generator=generator) * sq * \
            REFINE_START_CENTER_SD
        sz = truth[:, 2:] * torch.exp(torch.randn(truth.shape[0], 2, generator=generator) * REFINE_START_LOG_SIZE_SD)
        start = torch.cat([ctr - sz / 2, sz], 1)
        inits = {"start": start, "truth": truth, "0.9": boxes_at_iou(truth, 0.9, generator),
                 "0.7": boxes_at_iou(truth, 0.7, generator)}
        with torch.no_grad():
            modulation = iounet.get_modulation((b["ref_f8"].to(device), b["ref_f16"].to(device)),
                                               b["ref_boxes"].to(device))
            iou_feat = iounet.get_iou_feat((b["test_f8"].to(device), b["test_f16"].to(device)))
        for key, init in inits.items():
            boxes = torch.stack([jittered_boxes(box, rc.num_init_random_boxes, rc.box_jitter_pos, rc.box_jitter_sz,
                                                generator) for box in init])
            boxes, ious, start_scores = optimize_boxes(iounet, modulation, iou_feat, boxes.to(device),
                                                       rc.iterations, rc.step_length, rc.step_decay,
                                                       with_start_scores=True)
            for i in range(init.shape[0]):
                chosen = choose_box(boxes[i].cpu(), ious[i].cpu(), init[i], start_scores[i, 0].cpu(), rc)
                final = chosen[0] if chosen is not None else init[i]
                starts[key].append(float(iou_torch(final, truth[i])))
        start_ious += iou_torch(start, truth).tolist()
    return {"start_iou": float(np.mean(start_ious)), "refined_iou": float(np.mean(starts["start"])),
            "refined_from_truth_iou": float(np.mean(starts["truth"])),
            "refined_from_0.9_iou": float(np.mean(starts["0.9"])),
            "refined_from_0.7_iou": float(np.mean(starts["0.7"]))}


# ---- the loop ---------------------------------------------------------------------------------------------

def _rng_states() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]]}


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    python = states["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))


def _atomic_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class Trainer:
    """Trains ``iounet`` on ``data`` for ``config.epochs`` epochs, writing into ``out_dir``.

    ``val_pool``: a :class:`FeaturePool` with fixed proposals (validation); the best epoch is the one with the
    lowest validation loss (training loss when there is no validation).  ``max_steps`` cuts every epoch short
    (tests).
    """

    def __init__(self, iounet: torch.nn.Module, data, config: TrainConfig, out_dir: str | Path,
                 ctx: DistContext | None = None, val_pool: FeaturePool | None = None, progress: bool = True,
                 max_steps: int | None = None, log: Callable[[str], None] | None = None,
                 epoch_hook: Callable[[int, torch.nn.Module], dict] | None = None):
        self.ctx = ctx or DistContext()
        # Called on rank 0 after each epoch's validation with (epoch, iounet); what it returns joins the epoch's
        # record (e.g. the tracking validation's val_auc) before the best epoch is chosen.
        self.epoch_hook = epoch_hook
        self.config = config
        self.data = data
        self.val_pool = val_pool
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.max_steps = max_steps
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.iounet = iounet.to(self.ctx.device)
        self.model = wrap_model(self.iounet, self.ctx)
        self.optimizer = torch.optim.AdamW(self.iounet.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, config.lr_step, config.lr_gamma)
        self.epoch = 0  # epochs completed
        self.history: list[dict] = []
        self.best: dict | None = None  # {"epoch", "metric", "state"}

    # -- checkpoints --
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    def state(self) -> dict:
        return {
            "epoch": self.epoch,
            "model": self.iounet.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": _rng_states(),
            "history": self.history,
            "best": self.best,
            "iounet_config": {k: list(v) for k, v in getattr(self.iounet, "config", {}).items()},
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.config).items()},
        }

    def resume(self, path: str | Path | None = None) -> bool:
        """Load a checkpoint (default ``OUT/checkpoint.pt``); False when there is none."""
        path = Path(path) if path is not None else self.checkpoint_path
        if not path.is_file():
            return False
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        chosen_by = ckpt.get("config", {}).get("best_by", "val_loss")
        if chosen_by != self.config.best_by:
            # Only the best epoch's weights are kept, so the choice cannot change afterwards.
            raise ValueError(f"{path}: this run picks its best epoch by {chosen_by}, not {self.config.best_by}")
        self.iounet.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_states(ckpt["rng"])
        self.epoch = int(ckpt["epoch"])
        self.history = list(ckpt["history"])
        self.best = ckpt["best"]
        return True

    # -- one epoch --
    def train_epoch(self, epoch: int) -> dict[str, float]:
        c = self.config
        self.model.train()
        generator = seeded_generator(c.seed, epoch, self.ctx.rank, 11)
        steps = self.data.steps_per_epoch(self.ctx.world_size)
        if self.max_steps is not None:
            steps = min(steps, self.max_steps)
        bar = None
        if self.progress and self.ctx.is_main:
            from tqdm import tqdm

            bar = tqdm(total=steps, desc=f"epoch {epoch}/{c.epochs}", unit="step", file=sys.stderr,
                       mininterval=1.0 if sys.stderr.isatty() else 30.0, dynamic_ncols=True)
        total, count = 0.0, 0
        dev = self.ctx.device
        for step, b in enumerate(self.data.batches(epoch, self.ctx.rank, self.ctx.world_size)):
            if step >= steps:
                break
            proposals, iou = draw_proposals(b["test_boxes"], c.num_proposals, c.sigma_factors, c.min_iou,
                                            generator)
            ref_f8, ref_f16, test_f8, test_f16 = (
                channel_dropout(b[k].to(dev), c.feature_dropout, generator)
                for k in ("ref_f8", "ref_f16", "test_f8", "test_f16"))
            pred = self.model((ref_f8, ref_f16), (test_f8, test_f16), b["ref_boxes"].to(dev), proposals.to(dev))
            loss = F.mse_loss(pred, iou_targets(iou).to(dev))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
            count += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)
        if bar is not None:
            bar.close()
        train_loss = all_reduce_mean(total / max(count, 1), self.ctx)
        return {"train_loss": train_loss, "steps": count,
                "pairs": count * c.batch_size * self.ctx.world_size}

    def fit(self) -> dict | None:
        """Train from the current epoch to ``config.epochs``; returns the best epoch's record."""
        c = self.config
        if self.ctx.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        while self.epoch < c.epochs:
            epoch = self.epoch + 1
            t0 = time.time()
            lr = self.optimizer.param_groups[0]["lr"]
            record = {"epoch": epoch, "lr": lr, **self.train_epoch(epoch)}
            self.scheduler.step()
            if self.val_pool is not None:
                val = evaluate(self.iounet, self.val_pool, c.batch_size, self.ctx.device)
                record.update(val_loss=val["loss"], val_pearson=val["pearson"], val_mae_iou=val["mae_iou"],
                              val_start_iou=val["start_iou"], val_refined_iou=val["refined_iou"],
                              val_refined_from_truth_iou=val["refined_from_truth_iou"])
                record["val_refined_from_0.9_iou"] = val["refined_from_0.9_iou"]
                record["val_refined_from_0.7_iou"] = val["refined_from_0.7_iou"]
            if self.epoch_hook is not None and self.ctx.is_main:
                record.update(self.epoch_hook(epoch, self.iounet))
            record["seconds"] = round(time.time() - t0, 1)
            # Lower is better; correlations, IoUs and AUCs are negated.
            key = criterion_key(c.best_by, record)
            metric = -record[key] if key in HIGHER_IS_BETTER else record[key]
            self.history.append(record)
            self.epoch = epoch
            if self.best is None or (math.isfinite(metric) and metric < self.best["metric"]):
                self.best = {"epoch": epoch, "metric": metric,
                             "state": {k: v.detach().cpu().clone() for k, v in self.iounet.state_dict().items()}}
            if self.ctx.is_main:
                _atomic_save(self.state(), self.checkpoint_path)
                self.write_log()
                self.log(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in record.items()))
            self.ctx.barrier()
        return self.best

    # -- logs --
    def write_log(self) -> None:
        """``log.csv`` (one row per epoch, rewritten whole so a resumed run has no duplicates) and ``loss.png``."""
        keys = ["epoch", "lr", "train_loss", "val_loss", "val_pearson", "val_mae_iou", "val_start_iou",
                "val_refined_iou", "val_refined_from_truth_iou", "val_refined_from_0.9_iou", "val_refined_from_0.7_iou",
                "val_auc", "val_op50", "val_op75", "val_tracking_seconds", "steps", "pairs", "seconds"]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        for rec in self.history:
            writer.writerow(rec)
        atomic_write_text(self.out_dir / "log.csv", buf.getvalue())
        plot_losses(self.history, self.out_dir / "loss.png")


def plot_losses(history: list[dict], path: Path) -> None:
    """Training and validation loss per epoch (log scale), best epoch marked."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogFormatter

    epochs = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(epochs, [r["train_loss"] for r in history], "o-", label="training loss")
    if any("val_loss" in r for r in history):
        val = [r.get("val_loss", float("nan")) for r in history]
        ax.plot(epochs, val, "s-", label="validation loss")
        best = int(np.nanargmin(val))
        ax.plot([epochs[best]], [val[best]], "r*", markersize=14, label=f"best (epoch {epochs[best]})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE on 2 IoU - 1")
    ax.set_yscale("log")
    # Plain-text tick labels and a fixed layout: mathtext labels and tight_layout cost seconds per plot.
    ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.12, top=0.96)
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
