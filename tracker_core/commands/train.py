"""``atom train``: train the IoU-Net offline and export it as a model file.

    atom train --settings configs/train/lite0_v3.toml
    atom train --settings configs/train/lite0_v3.toml --epochs 10 --out runs/lite0_v3_e10
    atom train --data synthetic --data lasot:/data/LaSOT:1 --data coco:/data/coco --out runs/t1
    atom train --data synthetic --data otb:../shared/data/OTB --sequences 'Dog*,Gym' \\
        --val otb:../shared/data/OTB --val-sequences Biker,Bird2 --pool-pairs 3000 --out runs/t2
    torchrun --nproc_per_node=4 -m tracker_core.cli train --data lasot:/data/LaSOT --device cuda --out runs/t3

Writes OUT/settings.json (the resolved settings), OUT/checkpoint.pt (every epoch; ``--resume`` continues
exactly), OUT/log.csv, OUT/loss.png, every epoch's model in OUT/epochs, the best epoch as OUT/model.json +
OUT/model.safetensors (``--export`` elsewhere) and OUT/MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CommandError
from ..training.settings import CHECKPOINT_NAME, add_arguments, command_line, given_settings, resolve_settings


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train the IoU-Net offline and export a model file",
                       description=__doc__.split("\n\n")[0].replace("``", ""),
                       epilog="data kinds: synthetic[:FOLDERS], lasot, got10k, trackingnet, coco, otb, vot. "
                              "synthetic's PATH is 'builtin' (installed sample images, the default) and/or image "
                              "folders, comma-separated. A --settings file names the settings of a run as keys "
                              "(the flags with _ for -, e.g. val_pairs = 900; paths relative to the working "
                              "directory); flags given as well override its values, a repeatable flag replacing "
                              "the file's whole list.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settings", type=Path, metavar="FILE",
                   help="the run's settings, a TOML file (configs/train/NAME.toml) or a run's settings.json")
    add_arguments(p)
    p.add_argument("--resume", action="store_true", help="continue the run in OUT from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    given = given_settings(args)
    settings = resolve_settings(given, args.settings)
    out = settings.out.expanduser()
    if (out / CHECKPOINT_NAME).is_file() and not args.resume:
        raise CommandError(f"{out} already holds a training run: pass --resume to continue it, or choose another --out")
    reproduce = command_line(settings, args.settings, given) if args.settings else command_line(settings)

    from ..training.run import train

    train(settings, resume=args.resume, progress=not args.no_progress, reproduce=reproduce)
    return 0
