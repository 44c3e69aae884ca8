"""``atom train``: train the IoU-Net offline and export it as a model file.

    atom train --data synthetic --data lasot:/data/LaSOT:1 --data coco:/data/coco --out runs/t1
    atom train --data synthetic --data otb:../shared/data/OTB --sequences 'Dog*,Gym' \\
        --val otb:../shared/data/OTB --val-sequences Biker,Bird2 --pool-pairs 3000 --out runs/t2
    torchrun --nproc_per_node=4 -m tracker_core.cli train --data lasot:/data/LaSOT --device cuda --out runs/t3

Writes OUT/checkpoint.pt (every epoch; ``--resume`` continues exactly), OUT/log.csv, OUT/loss.png, the best epoch
as OUT/model.json + OUT/model.safetensors (``--export`` elsewhere) and OUT/MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shlex
import sys
import time
import zlib
from pathlib import Path

from ..errors import CommandError

LITE0_WIDTHS = {"pred_input_dim": (64, 64), "pred_inter_dim": (128, 128), "ref_dim": (64, 128),
                "test_dim": (64, 64)}
REFERENCE_WIDTHS = {"pred_input_dim": (256, 256), "pred_inter_dim": (256, 256), "ref_dim": (128, 256),
                    "test_dim": (256, 256)}
_WIDTH_KEYS = {"pred_input": "pred_input_dim", "pred_inter": "pred_inter_dim", "ref": "ref_dim",
               "test": "test_dim"}
VAL_STREAM = 1_000_003  # the validation pool's random stream, apart from every training epoch's
POOL_STREAM = 1_000_000


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train the IoU-Net offline and export a model file",
                       description=__doc__.split("\n\n")[0].replace("``", ""),
                       epilog="data kinds: synthetic[:FOLDERS], lasot, got10k, trackingnet, coco, otb, vot. "
                              "synthetic's PATH is 'builtin' (installed sample images, the default) and/or image "
                              "folders, comma-separated.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", default=[], metavar="KIND:PATH[:WEIGHT]", required=True,
                   help="a training source and its sampling weight (repeatable)")
    p.add_argument("--backbone", default="efficientnet_lite0", choices=("efficientnet_lite0", "resnet18"))
    p.add_argument("--backbone-weights", metavar="MODEL",
                   help="model file whose backbone to use (required for resnet18, which ships no weights)")
    p.add_argument("--iounet-widths", nargs="+", metavar="KEY=A,B",
                   help="IoU-Net widths: pred_input=A,B pred_inter=A,B ref=A,B test=A,B, or 'reference' "
                        f"(default: {_widths_text(LITE0_WIDTHS)} for Lite0, the reference's for ResNet-18)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch", type=int, default=64, help="pairs per step and process (default 64)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-step", type=int, default=15, help="epochs between learning-rate decays (default 15)")
    p.add_argument("--lr-gamma", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT from its last checkpoint")
    p.add_argument("--init", type=Path, metavar="CHECKPOINT_OR_MODEL",
                   help="start the IoU-Net from another run's best epoch (its checkpoint.pt) or from a model file "
                        "of the same architecture (fine-tuning), instead of the reference's random init")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1")
    p.add_argument("--sequences", metavar="PATTERNS", help="train only on video sequences matching these "
                   "comma-separated shell patterns (Jogging also matches Jogging_1, Jogging_2)")
    p.add_argument("--exclude", metavar="PATTERNS", help="never train on sequences matching these patterns")
    p.add_argument("--val", action="append", default=[], metavar="KIND:PATH",
                   help="validation source (repeatable); default: 10%% of each video source's sequences, held "
                        "apart, plus synthetic scenes")
    p.add_argument("--val-sequences", metavar="PATTERNS", help="validation sequences (also excluded from training)")
    p.add_argument("--val-pairs", type=int, default=256, help="validation pairs (fixed proposals; default 256)")
    p.add_argument("--best-by", choices=("val_loss", "val_pearson", "val_refined_iou", "val_auc"),
                   default="val_loss",
                   help="the epoch exported: lowest validation loss (default), highest Pearson correlation of "
                        "predicted and true IoU (ignores a constant calibration offset), highest IoU after the "
                        "tracker's box refinement on validation pairs, or highest AUC of full ATOM tracking the "
                        "--val-tracking sequences")
    p.add_argument("--val-tracking", action="append", default=[], metavar="KIND:PATH",
                   help="after every epoch, track these held-out sequences with full ATOM and the epoch's IoU-Net, "
                        "scored like atom eval (val_auc, val_op50, val_op75); repeatable")
    p.add_argument("--val-tracking-sequences", metavar="PATTERNS",
                   help="only these --val-tracking sequences (comma-separated patterns or @FILE); they are also "
                        "never trained on")
    p.add_argument("--val-tracking-preset", default="default",
                   help="tracker configuration for the tracking validation (default: the paper's full ATOM)")
    p.add_argument("--proposals", type=int, default=16,
                   help="proposals per training pair (default 16, the reference's; more cost little in pool mode)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="decoupled weight decay (AdamW; default 0)")
    p.add_argument("--feature-dropout", type=float, default=0.0,
                   help="probability of zeroing each backbone channel of a training crop (default 0, the "
                        "reference); regularises a net trained on a small cached pool")
    p.add_argument("--pool-pairs", type=int, default=0,
                   help="cache the backbone features of this many pairs once and train every epoch on them with "
                        "fresh proposals (fast on a CPU); 0 (default) draws fresh pairs every epoch")
    p.add_argument("--tests-per-ref", type=int, default=3,
                   help="pool mode: test frames per reference frame (shares one reference crop; default 3)")
    p.add_argument("--pairs-per-epoch", type=int, default=64000, help="fresh-pairs mode (default 64000)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--export", type=Path, help="where to write the best epoch's model (default OUT/model)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def _widths_text(widths: dict) -> str:
    inv = {v: k for k, v in _WIDTH_KEYS.items()}
    return " ".join(f"{inv[k]}={a},{b}" for k, (a, b) in widths.items())


def parse_widths(values: list[str] | None, backbone: str) -> dict:
    """``--iounet-widths`` to AtomIoUNet keyword arguments (missing keys take the backbone's defaults)."""
    widths = dict(LITE0_WIDTHS if backbone == "efficientnet_lite0" else REFERENCE_WIDTHS)
    for item in values or []:
        if item.lower() == "reference":
            widths = dict(REFERENCE_WIDTHS)
            continue
        key, sep, val = item.partition("=")
        key = _WIDTH_KEYS.get(key.strip().lower().removesuffix("_dim"))
        try:
            pair = tuple(int(v) for v in val.split(","))
        except ValueError:
            pair = ()
        if not sep or key is None or len(pair) != 2 or min(pair) <= 0:
            raise CommandError(f"--iounet-widths expects KEY=A,B with KEY in {', '.join(_WIDTH_KEYS)} and two "
                               f"positive integers, got {item!r}")
        widths[key] = pair
    return widths


def _patterns(text: str | None) -> list[str]:
    from ..datasets import sequence_patterns

    return sequence_patterns(text)


def _held_apart(name: str) -> bool:
    """The default validation split: about 1 sequence in 10, chosen by a stable hash of its name."""
    return zlib.crc32(name.lower().encode()) % 10 == 0


def build_sources(args):
    """(training sources, validation sources, notes) from the arguments."""
    from ..training.sources import SequenceSource, build_source, parse_source_spec

    specs = [parse_source_spec(d) for d in args.data]
    include = _patterns(args.sequences)
    # Never train on validation sequences, whichever kind of validation names them.
    exclude = _patterns(args.exclude) + _patterns(args.val_sequences) + _patterns(args.val_tracking_sequences)
    train, val, notes = [], [], []
    for spec in specs:
        src = build_source(spec, include or None, exclude or None)
        if not args.val and isinstance(src, SequenceSource) and not src.image_dataset and len(src) >= 2:
            keep = [src.sequence(i) for i in range(len(src)) if not _held_apart(src.sequence(i).name)]
            apart = [src.sequence(i) for i in range(len(src)) if _held_apart(src.sequence(i).name)]
            if not apart:  # at least one sequence held apart
                apart, keep = keep[-1:], keep[:-1]
            train.append(SequenceSource(src.kind, src.name, keep, src.weight))
            val.append(SequenceSource(src.kind, src.name, apart, src.weight))
        else:
            train.append(src)
            if not args.val and src.kind == "synthetic":
                val.append(src)  # same images, other random stream: not held apart, said in the card
    if args.val:
        val = [build_source(parse_source_spec(v), _patterns(args.val_sequences) or None) for v in args.val]
    else:
        notes.append("validation: sequences held apart by name hash (about 1 in 10) and synthetic scenes of the "
                     "same images drawn from another random stream")
    return train, val, notes


def _canonical_spec(text: str, weight: bool = True) -> str:
    """A source spec with absolute paths, so a pool built from ``../data`` is recognised from ``/abs/data``."""
    from ..training.sources import parse_source_spec

    spec = parse_source_spec(text)
    parts = spec.path.split(",") if spec.kind == "synthetic" else [spec.path]
    path = ",".join(p.strip() if p.strip().lower() == "builtin" else str(Path(p.strip()).expanduser().resolve())
                    for p in parts)
    return f"{spec.kind}:{path}:{spec.weight:g}" if weight else f"{spec.kind}:{path}"


def _load_backbone(args):
    from ..backbones import build_backbone

    if args.backbone_weights:
        from ..model_io import load_model

        model = load_model(args.backbone_weights)
        if getattr(model.backbone, "name", None) != args.backbone:
            raise CommandError(f"{args.backbone_weights} holds a {model.backbone.name} backbone, not {args.backbone}")
        return model.backbone
    if args.backbone == "resnet18":
        raise CommandError("resnet18 ships without ImageNet weights: pass --backbone-weights with a model file that "
                           "holds them (atom_default.pth or a torchvision resnet18 state dict)")
    return build_backbone(args.backbone, pretrained=True)


def _init_from(iounet, path: Path) -> None:
    """Load the IoU-Net weights of a training checkpoint (best epoch) or of a model file into ``iounet``."""
    import torch

    from ..model_io import ModelFileError, load_model
    from ..training.export import load_best_iounet

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


def command_line(args) -> str:
    """The ``atom train`` command that reproduces this run."""
    parts = ["atom", "train"]
    for d in args.data:
        parts += ["--data", d]
    parts += ["--backbone", args.backbone]
    if args.backbone_weights:
        parts += ["--backbone-weights", str(args.backbone_weights)]
    if args.iounet_widths:
        parts += ["--iounet-widths", *args.iounet_widths]
    if args.init:
        parts += ["--init", str(args.init)]
    parts += ["--epochs", str(args.epochs), "--batch", str(args.batch)]
    for flag, default in (("lr", 1e-3), ("lr_step", 15), ("lr_gamma", 0.2), ("seed", 1), ("proposals", 16),
                          ("weight_decay", 0.0), ("feature_dropout", 0.0)):
        if getattr(args, flag) != default:
            parts += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
    for flag in ("sequences", "exclude", "val_sequences"):
        if getattr(args, flag):
            parts += ["--" + flag.replace("_", "-"), getattr(args, flag)]
    for v in args.val:
        parts += ["--val", v]
    parts += ["--val-pairs", str(args.val_pairs)]
    for v in args.val_tracking:
        parts += ["--val-tracking", v]
    if args.val_tracking_sequences:
        parts += ["--val-tracking-sequences", args.val_tracking_sequences]
    if args.val_tracking and args.val_tracking_preset != "default":
        parts += ["--val-tracking-preset", args.val_tracking_preset]
    if args.best_by != "val_loss":
        parts += ["--best-by", args.best_by]
    if args.pool_pairs:
        parts += ["--pool-pairs", str(args.pool_pairs), "--tests-per-ref", str(args.tests_per_ref)]
    else:
        parts += ["--pairs-per-epoch", str(args.pairs_per_epoch)]
    parts += ["--out", str(args.out)]
    return " ".join(shlex.quote(p) for p in parts)


def _pool(folder: Path, dataset, backbone, manifest: dict, workers: int, progress: bool, what: str):
    from ..training.feature_pool import build_pool

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


def _epoch_hook(args, backbone, out: Path, log):
    """After each epoch: the epoch's IoU-Net as a model file ``OUT/epochs/epoch_NNN`` (so any epoch can be
    evaluated or shipped later) and, with ``--val-tracking``, full ATOM tracking the held-out sequences."""
    from ..datasets import load_datasets
    from ..model_io import AtomModel, save_model
    from ..training.tracking_validation import TrackingValidation

    validation = None
    if args.val_tracking:
        seqs = [s for s in load_datasets(args.val_tracking, args.val_tracking_sequences) if s.gt_complete]
        if not seqs:
            raise CommandError("--val-tracking: no sequence with full ground truth matches")
        log(f"tracking validation: {len(seqs)} sequences, {sum(len(s.frames) for s in seqs)} frames, preset "
            f"{args.val_tracking_preset}")
        validation = TrackingValidation(seqs, backbone, args.val_tracking_preset, args.threads, log)

    def hook(epoch: int, iounet) -> dict:
        import copy

        net = copy.deepcopy(iounet).cpu().eval()
        save_model(AtomModel(backbone, net, {"preset": "default", "backbone": backbone.name,
                                             "model_card": {"epoch": epoch, "run": out.name}}),
                   out / "epochs" / f"epoch_{epoch:03d}")
        return validation(iounet) if validation is not None else {}

    return hook


def run(args) -> int:
    import torch

    from ..iounet import AtomIoUNet
    from ..training.distributed import init_distributed
    from ..training.export import export_checkpoint, model_card_markdown
    from ..training.feature_pool import GroupDataset
    from ..training.processing import PairProcessor, ProcessingConfig, draw_proposals
    from ..training.sampler import GroupSampler
    from ..training.trainer import CHECKPOINT_NAME, OnlineData, PoolData, TrainConfig, Trainer, seeded_generator

    if args.threads:
        torch.set_num_threads(args.threads)
    for name in ("epochs", "batch", "val_pairs", "tests_per_ref", "pairs_per_epoch", "lr_step"):
        if getattr(args, name) < (0 if name == "val_pairs" else 1):
            raise CommandError(f"--{name.replace('_', '-')} must be positive")
    if not 0.0 <= args.feature_dropout < 1.0:
        raise CommandError("--feature-dropout must be in [0, 1)")
    if args.best_by == "val_auc" and not args.val_tracking:
        raise CommandError("--best-by val_auc needs --val-tracking KIND:PATH (the sequences to track)")
    out = args.out.expanduser()
    if (out / CHECKPOINT_NAME).is_file() and not args.resume:
        raise CommandError(f"{out} already holds a training run: pass --resume to continue it, or choose another --out")

    widths = parse_widths(args.iounet_widths, args.backbone)
    train_sources, val_sources, notes = build_sources(args)
    ctx = init_distributed(args.device)
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if ctx.is_main else (lambda msg: None)
    for s in train_sources:
        log(f"train: {s.describe()}")
    for s in val_sources:
        log(f"val:   {s.describe()}")
    progress = not args.no_progress and ctx.is_main

    backbone = _load_backbone(args).to(ctx.device)
    processor = PairProcessor(ProcessingConfig())
    sampler = GroupSampler(train_sources)
    manifest = {"data": [_canonical_spec(d) for d in args.data], "sequences": args.sequences, "exclude": args.exclude,
                "val_sequences": args.val_sequences, "backbone": args.backbone,
                "backbone_weights": str(args.backbone_weights or "packaged"),
                "processing": json.loads(json.dumps(processor.config.__dict__))}

    # Validation pool: fixed pairs and fixed proposals, so every epoch's validation loss is comparable.
    val_pool = None
    if val_sources and args.val_pairs > 0 and ctx.is_main:
        k = args.tests_per_ref if args.pool_pairs else 1
        val_set = GroupDataset(GroupSampler(val_sources), processor, math.ceil(args.val_pairs / k), args.seed,
                               VAL_STREAM, k)
        val_manifest = dict(manifest, val=[_canonical_spec(v, False) for v in args.val])
        val_pool = _pool(out / "pool" / "val", val_set, backbone, val_manifest, args.workers, progress, "validation")
        val_pool.proposals, val_pool.proposal_iou = draw_proposals(
            val_pool.test_boxes, 16, processor.config.sigma_factors, processor.config.min_iou,
            seeded_generator(args.seed, VAL_STREAM))

    if args.pool_pairs:
        groups = math.ceil(args.pool_pairs / args.tests_per_ref)
        dataset = GroupDataset(sampler, processor, groups, args.seed, POOL_STREAM, args.tests_per_ref)
        if ctx.is_main:
            pool = _pool(out / "pool" / "train", dataset, backbone, manifest, args.workers, progress, "training")
        ctx.barrier()  # other ranks load the shards rank 0 built
        if not ctx.is_main:
            pool = _pool(out / "pool" / "train", dataset, backbone, manifest, 0, False, "training")
        data = PoolData(pool, args.batch, args.seed)
        pairs_text = f"{len(pool)} pairs ({pool.num_groups} reference frames x {args.tests_per_ref} test frames)"
    else:
        def dataset_for_epoch(epoch: int) -> GroupDataset:
            return GroupDataset(sampler, processor, args.pairs_per_epoch, args.seed, epoch, 1)

        data = OnlineData(dataset_for_epoch, backbone, args.pairs_per_epoch, args.batch, args.seed, args.workers)
        pairs_text = f"{args.pairs_per_epoch} fresh pairs per epoch"
    log(f"data: {pairs_text}, {data.steps_per_epoch(ctx.world_size)} steps per epoch")

    # Pool where the backbone's cells really are (see AtomIoUNet's box_offset).
    iounet = AtomIoUNet(input_dim=backbone.out_channels, box_offset=backbone.pooling_offset, **widths)
    if args.init and not (args.resume and (out / CHECKPOINT_NAME).is_file()):
        _init_from(iounet, args.init)
        log(f"IoU-Net initialised from {args.init}")
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch, lr=args.lr, lr_step=args.lr_step,
                         lr_gamma=args.lr_gamma, seed=args.seed, best_by=args.best_by, num_proposals=args.proposals,
                         weight_decay=args.weight_decay, feature_dropout=args.feature_dropout)
    epoch_hook = _epoch_hook(args, backbone, out, log) if ctx.is_main else None
    trainer = Trainer(iounet, data, config, out, ctx, val_pool, progress=progress, log=log, epoch_hook=epoch_hook)
    try:
        if args.resume and trainer.resume():
            log(f"resumed after epoch {trainer.epoch}")
    except ValueError as exc:
        raise CommandError(f"{exc} (resume with the same --best-by)") from None
    t0 = time.time()
    try:
        best = trainer.fit()
    finally:
        ctx.close()
    if not ctx.is_main:
        return 0

    history = trainer.history
    best_rec = next(r for r in history if r["epoch"] == best["epoch"])
    card = {
        "summary": f"ATOM IoU-Net for the {args.backbone} backbone, trained with `atom train`.",
        "backbone": args.backbone,
        "iounet_widths": {k: list(v) for k, v in widths.items()},
        "iounet_parameters": sum(p.numel() for p in iounet.parameters()),
        "training_data": [s.describe() for s in train_sources],
        "validation_data": [s.describe() for s in val_sources],
        "pairs": pairs_text,
        "initialised_from": str(args.init) if args.init else None,
        "pairs_seen": sum(r["pairs"] for r in history),
        "epochs": len(history),
        "best_epoch": best["epoch"],
        "best_epoch_chosen_by": args.best_by if (val_pool is not None or args.val_tracking) else "train_loss",
        "final_train_loss": history[-1]["train_loss"],
        "best_epoch_train_loss": best_rec["train_loss"],
        "validation_loss": best_rec.get("val_loss"),
        "validation_pearson_iou": best_rec.get("val_pearson"),
        "validation_refined_iou": best_rec.get("val_refined_iou"),
        "validation_refine_start_iou": best_rec.get("val_start_iou"),
        "validation_refined_from_truth_iou": best_rec.get("val_refined_from_truth_iou"),
        "validation_refined_from_0.9_iou": best_rec.get("val_refined_from_0.9_iou"),
        "validation_refined_from_0.7_iou": best_rec.get("val_refined_from_0.7_iou"),
        "validation_tracking_auc": best_rec.get("val_auc"),
        "validation_tracking_op75": best_rec.get("val_op75"),
        "validation_pairs": len(val_pool) if val_pool is not None else 0,
        "optimiser": f"{'AdamW' if args.weight_decay else 'Adam'} lr {args.lr:g}"
                     f"{f' weight decay {args.weight_decay:g}' if args.weight_decay else ''} on the IoU-Net only "
                     f"(backbone frozen), StepLR {args.lr_step}/{args.lr_gamma:g}, batch {args.batch} x "
                     f"{ctx.world_size} process(es), {args.proposals} proposals per pair, MSE on 2 IoU - 1"
                     f"{f', feature channel dropout {args.feature_dropout:g}' if args.feature_dropout else ''}",
        "trained": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "history": [{k: r.get(k) for k in ("epoch", "lr", "train_loss", "val_loss", "val_pearson", "val_refined_iou",
                                            "val_refined_from_truth_iou", "val_refined_from_0.9_iou",
                                            "val_refined_from_0.7_iou", "val_auc", "val_op75", "seconds")}
                    for r in history],
        "notes": notes,
        "reproduce": command_line(args),
    }
    card = {k: v for k, v in card.items() if v is not None}
    target = args.export or out / "model"
    json_path = export_checkpoint(out / CHECKPOINT_NAME, backbone.cpu(), target, card)
    (out / "MODEL_CARD.md").write_text(model_card_markdown(card, f"Model card: {json_path.stem}"))
    log(f"best epoch {best['epoch']} (validation loss {best_rec.get('val_loss', float('nan')):.4f}, "
        f"Pearson {best_rec.get('val_pearson', float('nan')):.3f}); model: {json_path}; "
        f"{(time.time() - t0) / 60:.1f} min")
    return 0
