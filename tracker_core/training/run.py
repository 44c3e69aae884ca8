"""One training run from its settings (what ``atom train`` does once its arguments are checked).

:func:`train` takes a validated :class:`TrainSettings`: it builds the sources (:func:`build_sources`), the frozen
backbone, the validation pool and the training pool (or fresh pairs every epoch), the IoU-Net and the
:class:`Trainer`; trains; then exports the best epoch with its model card.  Under torchrun every process trains
and rank 0 alone builds pools, validates, and writes.

Writes into OUT: ``settings.json`` (the resolved settings), ``pool/`` (feature pools), ``checkpoint.pt``,
``log.csv``, ``loss.png``, ``epochs/epoch_NNN`` (every epoch's model file), the best epoch as ``model`` (or
``--export``) and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import torch

from ..atomic_files import atomic_write_bytes
from ..errors import CommandError
from ..iounet import AtomIoUNet
from .card import model_card, model_card_markdown
from .distributed import init_distributed
from .export import export_checkpoint, load_best_iounet, model_info
from .feature_pool import FeaturePool, GroupDataset, build_pool
from .processing import PairProcessor, ProcessingConfig, draw_proposals
from .sampler import GroupSampler
from .settings import CHECKPOINT_NAME, SETTINGS_NAME, TrainSettings, command_line, criterion_key
from .trainer import OnlineData, PoolData, TrainConfig, Trainer, seeded_generator

__all__ = ["build_sources", "pool_manifest", "train", "train_config"]

# The random streams of the pools, apart from every training epoch's (an epoch's stream is its number).
POOL_STREAM = 1_000_000
VAL_STREAM = 1_000_003


def _patterns(text: str | None) -> list[str]:
    from ..datasets import sequence_patterns

    return sequence_patterns(text)


def _held_apart(name: str) -> bool:
    """The default validation split: about 1 sequence in 10, chosen by a stable hash of its name."""
    return zlib.crc32(name.lower().encode()) % 10 == 0


def build_sources(s: TrainSettings) -> tuple[list, list, list[str]]:
    """(training sources, validation sources, notes for the card) of the settings."""
    from .sources import SequenceSource, build_source, parse_source_spec

    specs = [parse_source_spec(d) for d in s.data]
    include = _patterns(s.sequences)
    # Never train on validation sequences, whichever kind of validation names them.
    exclude = _patterns(s.exclude) + _patterns(s.val_sequences) + _patterns(s.val_tracking_sequences)
    train, val, notes = [], [], []
    for spec in specs:
        src = build_source(spec, include or None, exclude or None)
        if not s.val and isinstance(src, SequenceSource) and not src.image_dataset and len(src) >= 2:
            keep = [src.sequence(i) for i in range(len(src)) if not _held_apart(src.sequence(i).name)]
            apart = [src.sequence(i) for i in range(len(src)) if _held_apart(src.sequence(i).name)]
            if not apart:  # at least one sequence held apart
                apart, keep = keep[-1:], keep[:-1]
            train.append(SequenceSource(src.kind, src.name, keep, src.weight))
            val.append(SequenceSource(src.kind, src.name, apart, src.weight))
        else:
            train.append(src)
            if not s.val and src.kind == "synthetic":
                val.append(src)  # same images, other random stream: not held apart, said in the card
    if s.val:
        val = [build_source(parse_source_spec(v), _patterns(s.val_sequences) or None) for v in s.val]
    else:
        notes.append("validation: sequences held apart by name hash (about 1 in 10) and synthetic scenes of the "
                     "same images drawn from another random stream")
    return train, val, notes


def _canonical_spec(text: str, weight: bool = True) -> str:
    """A source spec with absolute paths, so a pool built from ``../data`` is recognised from ``/abs/data``."""
    from .sources import parse_source_spec

    spec = parse_source_spec(text)
    parts = spec.path.split(",") if spec.kind == "synthetic" else [spec.path]
    path = ",".join(p.strip() if p.strip().lower() == "builtin" else str(Path(p.strip()).expanduser().resolve())
                    for p in parts)
    return f"{spec.kind}:{path}:{spec.weight:g}" if weight else f"{spec.kind}:{path}"


def pool_manifest(s: TrainSettings, processing: ProcessingConfig) -> dict:
    """What a training pool's ``pool.json`` records of the run (:func:`build_pool` adds the sampling: seed,
    stream, groups); a pool folder built with a different manifest is refused.  Kept exactly as written since
    pool format 1, so that existing pools are reused."""
    return {"data": [_canonical_spec(d) for d in s.data], "sequences": s.sequences, "exclude": s.exclude,
            "val_sequences": s.val_sequences, "backbone": s.backbone,
            "backbone_weights": str(s.backbone_weights or "packaged"), "processing": processing.manifest()}


def train_config(s: TrainSettings) -> TrainConfig:
    """The training loop's part of the settings."""
    return TrainConfig(epochs=s.epochs, batch_size=s.batch, lr=s.lr, lr_step=s.lr_step, lr_gamma=s.lr_gamma,
                       seed=s.seed, best_by=s.best_by, num_proposals=s.proposals, weight_decay=s.weight_decay,
                       feature_dropout=s.feature_dropout)


def _load_backbone(s: TrainSettings) -> torch.nn.Module:
    from ..backbones import build_backbone

    if s.backbone_weights:
        from ..model_io import load_model

        model = load_model(s.backbone_weights)
        if getattr(model.backbone, "name", None) != s.backbone:
            raise CommandError(f"{s.backbone_weights} holds a {model.backbone.name} backbone, not {s.backbone}")
        return model.backbone
    if s.backbone == "resnet18":
        raise CommandError("resnet18 ships without ImageNet weights: pass --backbone-weights with a model file that "
                           "holds them (atom_default.pth or a torchvision resnet18 state dict)")
    return build_backbone(s.backbone, pretrained=True)


def _init_from(iounet: AtomIoUNet, path: Path) -> None:
    """Load the IoU-Net weights of a training checkpoint (best epoch) or of a model file into ``iounet``."""
    from ..model_io import ModelFileError, load_model

    path = path.expanduser()
    try:
        if path.suffix == ".pt":
            source, _ = load_best_iounet(path)
        else:
            source = load_model(path).iounet
            if source is None:
                raise CommandError(f"{path}: the model has no IoU-Net to start from")
    except (OSError, KeyError, ModelFileError) as exc:
        raise CommandError(f"--init {path}: {exc}") from None
    if getattr(source, "config", None) != iounet.config:
        raise CommandError(f"--init {path}: its IoU-Net is {source.config}, this run's is {iounet.config}")
    with torch.no_grad():
        iounet.load_state_dict(source.state_dict())


def _pool(folder: Path, dataset: GroupDataset, backbone, manifest: dict, workers: int, progress: bool,
          what: str) -> FeaturePool:
    """:func:`build_pool` with a progress bar; a folder holding another pool is a one-line error."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(dataset), desc=f"{what} pool", unit="group", file=sys.stderr,
                   mininterval=1.0 if sys.stderr.isatty() else 30.0)

    def report(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    try:
        return build_pool(folder, dataset, backbone, manifest, workers=workers, progress=report)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()


def _validation_pool(s: TrainSettings, val_sources: list, processor: PairProcessor, backbone, manifest: dict,
                     out: Path, progress: bool) -> FeaturePool:
    """Fixed pairs with fixed proposals (the reference's number), so every epoch's validation figures compare."""
    k = s.tests_per_ref if s.pool_pairs else 1
    val_set = GroupDataset(GroupSampler(val_sources), processor, math.ceil(s.val_pairs / k), s.seed, VAL_STREAM, k)
    val_manifest = dict(manifest, val=[_canonical_spec(v, False) for v in s.val])
    pool = _pool(out / "pool" / "val", val_set, backbone, val_manifest, s.workers, progress, "validation")
    c = processor.config
    pool.proposals, pool.proposal_iou = draw_proposals(pool.test_boxes, c.num_proposals, c.sigma_factors, c.min_iou,
                                                       seeded_generator(s.seed, VAL_STREAM))
    return pool


def _training_data(s: TrainSettings, sampler: GroupSampler, processor: PairProcessor, backbone, manifest: dict,
                   out: Path, ctx, progress: bool):
    """(PoolData or OnlineData, a sentence for the card)."""
    if s.pool_pairs:
        groups = math.ceil(s.pool_pairs / s.tests_per_ref)
        dataset = GroupDataset(sampler, processor, groups, s.seed, POOL_STREAM, s.tests_per_ref)
        if ctx.is_main:
            pool = _pool(out / "pool" / "train", dataset, backbone, manifest, s.workers, progress, "training")
        ctx.barrier()  # other ranks load the shards rank 0 built
        if not ctx.is_main:
            pool = _pool(out / "pool" / "train", dataset, backbone, manifest, 0, False, "training")
        text = f"{len(pool)} pairs ({pool.num_groups} reference frames x {s.tests_per_ref} test frames)"
        return PoolData(pool, s.batch, s.seed), text

    def dataset_for_epoch(epoch: int) -> GroupDataset:
        return GroupDataset(sampler, processor, s.pairs_per_epoch, s.seed, epoch, 1)

    data = OnlineData(dataset_for_epoch, backbone, s.pairs_per_epoch, s.batch, s.seed, s.workers)
    return data, f"{s.pairs_per_epoch} fresh pairs per epoch"


def _epoch_hook(s: TrainSettings, backbone, out: Path, log: Callable[[str], None]):
    """After each epoch: the epoch's IoU-Net as a model file ``OUT/epochs/epoch_NNN`` (so any epoch can be
    evaluated or shipped later) and, with ``--val-tracking``, full ATOM tracking the held-out sequences."""
    from ..datasets import load_datasets
    from ..model_io import AtomModel, save_model
    from .tracking_validation import TrackingValidation

    validation = None
    if s.val_tracking:
        seqs = [q for q in load_datasets(s.val_tracking, s.val_tracking_sequences) if q.gt_complete]
        if not seqs:
            raise CommandError("--val-tracking: no sequence with full ground truth matches")
        log(f"tracking validation: {len(seqs)} sequences, {sum(len(q.frames) for q in seqs)} frames, preset "
            f"{s.val_tracking_preset}")
        validation = TrackingValidation(seqs, backbone, s.val_tracking_preset, s.threads, log, s.sample(),
                                        runs=s.val_tracking_runs)

    def hook(epoch: int, iounet) -> dict:
        net = copy.deepcopy(iounet).cpu().eval()
        info = model_info(backbone, {"epoch": epoch, "run": out.name}, s.sample())
        save_model(AtomModel(backbone, net, info), out / "epochs" / f"epoch_{epoch:03d}")
        return validation(iounet) if validation is not None else {}

    return hook


def write_settings(s: TrainSettings, out: Path) -> Path:
    """``OUT/settings.json``: the resolved settings (``atom train --settings OUT/settings.json`` reads it)."""
    out.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(out / SETTINGS_NAME, (json.dumps(s.to_dict(), indent=2) + "\n").encode("utf-8"))


def train(s: TrainSettings, *, resume: bool = False, progress: bool = True, reproduce: str | None = None
          ) -> Path | None:
    """Run the training ``s`` describes (validated) into ``s.out``; ``resume`` continues it from its checkpoint.

    ``reproduce``: the command the card quotes (default: :func:`command_line` of ``s``).  Returns the exported
    model's JSON path on rank 0, None on the other ranks.  Bad input raises :class:`CommandError`.
    """
    if s.threads:
        torch.set_num_threads(s.threads)
    out = s.out.expanduser()
    widths = s.widths()
    train_sources, val_sources, notes = build_sources(s)
    ctx = init_distributed(s.device)
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if ctx.is_main else (lambda msg: None)
    for src in train_sources:
        log(f"train: {src.describe()}")
    for src in val_sources:
        log(f"val:   {src.describe()}")
    progress = progress and ctx.is_main
    if ctx.is_main:
        write_settings(s, out)

    backbone = _load_backbone(s).to(ctx.device)
    processor = PairProcessor(ProcessingConfig(sample=s.sample()))
    sampler = GroupSampler(train_sources)
    manifest = pool_manifest(s, processor.config)
    val_pool = None
    if val_sources and s.val_pairs > 0 and ctx.is_main:
        val_pool = _validation_pool(s, val_sources, processor, backbone, manifest, out, progress)
    data, pairs_text = _training_data(s, sampler, processor, backbone, manifest, out, ctx, progress)
    log(f"data: {pairs_text}, {data.steps_per_epoch(ctx.world_size)} steps per epoch")

    # Pool where the backbone's cells really are (see AtomIoUNet's box_offset).  The starting weights come from the
    # run's seed (not from torch's global generator, which pool building and DataLoaders have also drawn from), so
    # the reproduce line reproduces the run.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s.seed)
        iounet = AtomIoUNet(input_dim=backbone.out_channels, box_offset=backbone.pooling_offset, **widths)
    if s.init and not (resume and (out / CHECKPOINT_NAME).is_file()):
        _init_from(iounet, s.init)
        log(f"IoU-Net initialised from {s.init}")
    epoch_hook = _epoch_hook(s, backbone, out, log) if ctx.is_main else None
    trainer = Trainer(iounet, data, train_config(s), out, ctx, val_pool, progress=progress, log=log,
                      epoch_hook=epoch_hook)
    try:
        if resume and trainer.resume():
            log(f"resumed after epoch {trainer.epoch}")
    except ValueError as exc:
        raise CommandError(f"{exc} (resume with the same --best-by)") from None
    t0 = time.time()
    try:
        best = trainer.fit()
    finally:
        ctx.close()
    if not ctx.is_main:
        return None

    card = model_card(s, widths=widths, iounet_parameters=sum(p.numel() for p in iounet.parameters()),
                      train_sources=train_sources, val_sources=val_sources, pairs_text=pairs_text,
                      validation_pairs=len(val_pool) if val_pool is not None else 0, history=trainer.history,
                      best_epoch=best["epoch"], world_size=ctx.world_size, notes=notes,
                      reproduce=reproduce or command_line(s), torch_version=torch.__version__)
    json_path = export_checkpoint(out / CHECKPOINT_NAME, backbone.cpu(), s.export or out / "model", card, s.sample())
    atomic_write_bytes(out / "MODEL_CARD.md", model_card_markdown(card, f"Model card: {json_path.stem}").encode())
    best_rec = next(r for r in trainer.history if r["epoch"] == best["epoch"])
    # Name the criterion that chose the epoch: the loss and Pearson are context, not the reason.
    key = criterion_key(s.best_by, best_rec)
    log(f"best epoch {best['epoch']} by {key} ({key} {best_rec[key]:.4g}; "
        f"validation loss {best_rec.get('val_loss', float('nan')):.4f}, "
        f"Pearson {best_rec.get('val_pearson', float('nan')):.3f}); model: {json_path}; "
        f"{(time.time() - t0) / 60:.1f} min")
    return json_path
