"""The settings of one training run, with every default written once: :class:`TrainSettings`.

``atom train``'s flags (names, types, defaults, help) are derived from its fields (:func:`add_arguments`), and so
is the command line that reproduces a run (:func:`command_line`: only values that differ from the defaults, paths
as they were given).  A run can also be a named, reviewable file, ``atom train --settings configs/train/NAME.toml``:
the file's keys are the field names (``val_pairs = 900``; ``-`` may stand for ``_``), flags given as well
override the file's values (a repeatable flag such as ``--data`` replaces the file's whole list), and relative
paths are read from the working directory like those of the command line (run from the repository root).  Every
run folder records its resolved settings as ``settings.json``, which ``--settings`` reads too.

This module imports neither torch nor the training code, so ``atom train --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ..config import SampleConfig
from ..errors import CommandError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as the tomli package
    import tomli as tomllib

__all__ = [
    "LITE0_WIDTHS",
    "REFERENCE_WIDTHS",
    "TrainSettings",
    "add_arguments",
    "command_line",
    "load_settings_file",
    "parse_widths",
    "resolve_settings",
]

# Files of a run folder: the resolved settings, and the checkpoint (whose presence means a run is there).
SETTINGS_NAME = "settings.json"
CHECKPOINT_NAME = "checkpoint.pt"

LITE0_WIDTHS = {"pred_input_dim": (64, 64), "pred_inter_dim": (128, 128), "ref_dim": (64, 128),
                "test_dim": (64, 64)}
REFERENCE_WIDTHS = {"pred_input_dim": (256, 256), "pred_inter_dim": (256, 256), "ref_dim": (128, 256),
                    "test_dim": (256, 256)}
_WIDTH_KEYS = {"pred_input": "pred_input_dim", "pred_inter": "pred_inter_dim", "ref": "ref_dim",
               "test": "test_dim"}
BACKBONES = ("efficientnet_lite0", "resnet18")
BEST_BY = ("val_loss", "val_pearson", "val_refined_iou", "val_auc")


def _widths_text(widths: dict) -> str:
    inv = {v: k for k, v in _WIDTH_KEYS.items()}
    return " ".join(f"{inv[k]}={a},{b}" for k, (a, b) in widths.items())


def _setting(default, help: str, *, metavar: str | None = None, choices: tuple | None = None,
             nargs: str | None = None, default_text: str | None = None):
    """A field of :class:`TrainSettings` with what its flag needs.  ``default_text`` replaces the generated
    "(default: X)" of the help; a list default is copied for each instance."""
    meta = {"help": help, "metavar": metavar, "choices": choices, "nargs": nargs, "default_text": default_text}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainSettings:
    """One training run.  Field ``name`` is flag ``--name`` (``_`` written ``-``) and key ``name`` of a settings
    file; ``None`` means "not set" (the help says what happens then)."""

    # -- what to learn from --
    data: list[str] = _setting([], "a training source and its sampling weight (repeatable; required)",
                               metavar="KIND:PATH[:WEIGHT]")
    sequences: str | None = _setting(None, "train only on video sequences matching these comma-separated shell "
                                     "patterns, or @FILE with one per line (Jogging also matches Jogging_1, "
                                     "Jogging_2)", metavar="PATTERNS")
    exclude: str | None = _setting(None, "never train on sequences matching these patterns", metavar="PATTERNS")
    # -- validation and the choice of the exported epoch --
    val: list[str] = _setting([], "validation source (repeatable); default: 10%% of each video source's "
                              "sequences, held apart, plus synthetic scenes", metavar="KIND:PATH")
    val_sequences: str | None = _setting(None, "validation sequences (also excluded from training)",
                                         metavar="PATTERNS")
    val_pairs: int = _setting(256, "validation pairs (fixed proposals); 0: no validation pool")
    val_tracking: list[str] = _setting([], "after every epoch, track these held-out sequences with full ATOM and "
                                       "the epoch's IoU-Net, scored like atom eval (val_auc, val_op50, val_op75); "
                                       "repeatable", metavar="KIND:PATH")
    val_tracking_sequences: str | None = _setting(None, "only these --val-tracking sequences (comma-separated "
                                                  "patterns or @FILE); they are also never trained on",
                                                  metavar="PATTERNS")
    val_tracking_preset: str = _setting("default", "tracker configuration for the tracking validation (default: "
                                        "the paper's full ATOM)", default_text="")
    val_tracking_runs: int = _setting(1, "track the --val-tracking sequences this many times with seeds differing "
                                      "by the run and score the mean (as atom eval --runs): one run measures the "
                                      "floating-point rounding of held-or-lost targets as much as the epoch")
    best_by: str = _setting("val_loss", "the epoch exported: lowest validation loss, highest Pearson correlation "
                            "of predicted and true IoU (ignores a constant calibration offset), highest IoU after "
                            "the tracker's box refinement on validation pairs, or highest AUC of full ATOM "
                            "tracking the --val-tracking sequences", choices=BEST_BY)
    # -- the networks --
    backbone: str = _setting("efficientnet_lite0", "the frozen backbone", choices=BACKBONES)
    backbone_weights: Path | None = _setting(None, "model file whose backbone to use (required for resnet18, "
                                             "which ships no weights)", metavar="MODEL")
    iounet_widths: list[str] | None = _setting(
        None, "IoU-Net widths: pred_input=A,B pred_inter=A,B ref=A,B test=A,B, or 'reference'", nargs="+",
        metavar="KEY=A,B",
        default_text=f"(default: {_widths_text(LITE0_WIDTHS)} for Lite0, the reference's for ResNet-18)")
    init: Path | None = _setting(None, "start the IoU-Net from another run's best epoch (its checkpoint.pt) or "
                                 "from a model file of the same architecture (fine-tuning), instead of the "
                                 "reference's random init", metavar="CHECKPOINT_OR_MODEL")
    # -- the crops: the tracker's geometry (config.SampleConfig), stored in the exported model file --
    search_area_scale: float = _setting(SampleConfig.search_area_scale, "crop side / sqrt(target area); the "
                                        "tracker crops the same way with the exported model")
    image_sample_size: int = _setting(SampleConfig.image_sample_size, "crop side in pixels (a multiple of 16); "
                                      "the tracker crops the same way with the exported model")
    # -- the pairs --
    pool_pairs: int = _setting(0, "cache the backbone features of this many pairs once and train every epoch on "
                               "them with fresh proposals (fast on a CPU); 0 draws fresh pairs every epoch")
    tests_per_ref: int = _setting(3, "pool mode: test frames per reference frame (shares one reference crop)")
    pairs_per_epoch: int = _setting(64000, "fresh-pairs mode: pairs per epoch")
    proposals: int = _setting(16, "proposals per training pair (16 is the reference's; more cost little in pool "
                              "mode)")
    # -- the optimisation --
    epochs: int = _setting(50, "training epochs")
    batch: int = _setting(64, "pairs per step and process")
    lr: float = _setting(1e-3, "learning rate (Adam)")
    lr_step: int = _setting(15, "epochs between learning-rate decays")
    lr_gamma: float = _setting(0.2, "learning-rate decay factor")
    weight_decay: float = _setting(0.0, "decoupled weight decay (AdamW; 0 is the reference's Adam)")
    feature_dropout: float = _setting(0.0, "probability of zeroing each backbone channel of a training crop (0 is "
                                      "the reference); regularises a net trained on a small cached pool")
    seed: int = _setting(1, "seed of every random draw (pairs, pools, proposals, batch order)")
    # -- where and how it runs --
    device: str = _setting("auto", "auto (CUDA when available), cpu, cuda, cuda:1")
    workers: int = _setting(0, "DataLoader worker processes")
    threads: int | None = _setting(None, "CPU threads for torch (default: torch's choice)", default_text="")
    out: Path | None = _setting(None, "run folder (required)")
    export: Path | None = _setting(None, "where to write the best epoch's model (default: OUT/model)",
                                   default_text="")

    def validate(self) -> TrainSettings:
        """Check values that argparse and a settings file cannot; raises :class:`CommandError` (one line)."""
        if not self.data:
            raise CommandError("--data is required (on the command line or in the --settings file)")
        if self.out is None:
            raise CommandError("--out is required (on the command line or in the --settings file)")
        for f in dataclasses.fields(self):
            choices = f.metadata["choices"]
            if choices and getattr(self, f.name) not in choices:
                raise CommandError(f"{_flag(f.name)} must be one of {', '.join(choices)}, "
                                   f"not {getattr(self, f.name)!r}")
        for name in ("epochs", "batch", "tests_per_ref", "pairs_per_epoch", "lr_step", "proposals",
                     "image_sample_size", "val_tracking_runs"):
            if getattr(self, name) < 1:
                raise CommandError(f"{_flag(name)} must be positive")
        for name in ("val_pairs", "pool_pairs", "workers"):
            if getattr(self, name) < 0:
                raise CommandError(f"{_flag(name)} must not be negative")
        if self.threads is not None and self.threads < 1:
            raise CommandError("--threads must be positive")
        if not (math.isfinite(self.lr) and self.lr >= 0):
            raise CommandError("--lr must not be negative")
        if not 0.0 <= self.feature_dropout < 1.0:
            raise CommandError("--feature-dropout must be in [0, 1)")
        if not (math.isfinite(self.search_area_scale) and self.search_area_scale > 0):
            raise CommandError("--search-area-scale must be positive")
        stride = SampleConfig.feature_stride
        if self.image_sample_size % stride:
            raise CommandError(f"--image-sample-size must be a multiple of {stride} (the classifier features' "
                               f"stride), got {self.image_sample_size}")
        if self.best_by == "val_auc" and not self.val_tracking:
            raise CommandError("--best-by val_auc needs --val-tracking KIND:PATH (the sequences to track)")
        parse_widths(self.iounet_widths, self.backbone)
        return self

    def widths(self) -> dict:
        """The IoU-Net's width keyword arguments (``iounet_widths`` over the backbone's defaults)."""
        return parse_widths(self.iounet_widths, self.backbone)

    def sample(self) -> SampleConfig:
        """The crop geometry as the tracker's configuration group."""
        return SampleConfig(search_area_scale=float(self.search_area_scale),
                            image_sample_size=int(self.image_sample_size))

    def to_dict(self) -> dict:
        """JSON-friendly: paths as the strings they were given, ``None`` for unset."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return list(value)
    return value


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _hints() -> dict[str, object]:
    return typing.get_type_hints(TrainSettings)


def _base_type(hint) -> tuple[type, bool]:
    """(element or value type, is a list) of a field's annotation, ``X | None`` taken as ``X``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is list:
        return typing.get_args(hint)[0], True
    return hint, False


# ---- the command line ---------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per field of :class:`TrainSettings`.  Flags have no argparse default (``SUPPRESS``): the parsed
    namespace holds only what was given, which is what overrides a settings file (see :func:`given_settings`)."""
    hints = _hints()
    for f in dataclasses.fields(TrainSettings):
        kind, is_list = _base_type(hints[f.name])
        meta = f.metadata
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        text = meta["default_text"]
        if text is None:
            text = f"(default: {default})" if default not in (None, []) else ""
        kwargs = {"dest": f.name, "default": argparse.SUPPRESS, "help": " ".join(p for p in (meta["help"], text) if p),
                  "metavar": meta["metavar"], "choices": meta["choices"]}
        if is_list and meta["nargs"]:
            kwargs.update(nargs=meta["nargs"], type=kind)
        elif is_list:
            kwargs.update(action="append", type=kind)
        else:
            kwargs.update(type=kind)
        parser.add_argument(_flag(f.name), **{k: v for k, v in kwargs.items() if v is not None})


def given_settings(args: argparse.Namespace) -> dict:
    """The settings given on the command line (flags parsed by :func:`add_arguments`), by field name."""
    names = {f.name for f in dataclasses.fields(TrainSettings)}
    return {k: v for k, v in vars(args).items() if k in names}


def command_line(settings: TrainSettings, settings_file: str | Path | None = None,
                 overrides: dict | None = None) -> str:
    """The ``atom train`` command that reproduces ``settings``.

    Without a settings file: every value that differs from its default, in field order.  With one: ``--settings
    FILE`` (as given) plus the flags of ``overrides`` (the fields given on the command line besides the file).
    Paths are written as they were given (a relative path stays relative).
    """
    parts = ["atom", "train"]
    defaults = TrainSettings()
    if settings_file is not None:
        parts += ["--settings", str(settings_file)]
        names = [f.name for f in dataclasses.fields(TrainSettings) if f.name in (overrides or {})]
    else:
        names = [f.name for f in dataclasses.fields(TrainSettings)
                 if getattr(settings, f.name) != getattr(defaults, f.name)]
    for f in dataclasses.fields(TrainSettings):
        if f.name not in names:
            continue
        value = getattr(settings, f.name)
        if value is None:
            continue
        if isinstance(value, list) and f.metadata["nargs"]:
            parts += [_flag(f.name), *map(str, value)]
        elif isinstance(value, list):
            for item in value:
                parts += [_flag(f.name), str(item)]
        else:
            parts += [_flag(f.name), str(value)]  # str of a float reads back as the same float
    return " ".join(shlex.quote(p) for p in parts)


# ---- settings files ---------------------------------------------------------------------------------------------

def load_settings_file(path: str | Path) -> dict:
    """The settings of a ``.toml`` file (or a run folder's ``settings.json``), checked and typed, by field name.

    Raises :class:`CommandError` naming the file and the key for an unreadable file, an unknown key or a value of
    the wrong type.  JSON ``null`` means "the default".
    """
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"--settings {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(f"--settings {path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'} "
                           f"({exc})") from None
    if not isinstance(raw, dict):
        raise CommandError(f"--settings {path}: expected a table of settings")
    hints = _hints()
    values = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in hints:
            raise CommandError(f"--settings {path}: unknown setting {key!r} (the settings are the flags of "
                               "`atom train --help`, written with _ for -)")
        if value is not None:
            values[name] = _typed(value, hints[name], f"--settings {path}: {key}")
    return values


def _typed(value, hint, where: str):
    """``value`` of a settings file as the field's type, or a :class:`CommandError`."""
    kind, is_list = _base_type(hint)
    if is_list:
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise CommandError(f"{where} must be a list of strings, got {value!r}")
        return list(value)
    if kind is bool or isinstance(value, bool):
        raise CommandError(f"{where}: unexpected {value!r}")
    if kind is int and isinstance(value, int):
        return value
    if kind is float and isinstance(value, (int, float)):
        return float(value)
    if kind in (str, Path) and isinstance(value, str):
        return kind(value)
    names = {int: "an integer", float: "a number", str: "a string", Path: "a path (string)"}
    raise CommandError(f"{where} must be {names.get(kind, kind)}, got {value!r}")


def resolve_settings(given: dict, settings_file: str | Path | None = None) -> TrainSettings:
    """Defaults, then the settings file's values, then ``given`` (command-line flags); validated."""
    values = load_settings_file(settings_file) if settings_file is not None else {}
    values.update(given)
    return TrainSettings(**values).validate()


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


# The epoch criteria where a larger value is better (the trainer negates them to rank epochs).
HIGHER_IS_BETTER = ("val_pearson", "val_refined_iou", "val_auc")


def criterion_key(best_by: str, record: dict) -> str:
    """The record key that ranks an epoch: ``best_by`` when the epoch has it, else the validation loss, else the
    training loss (a run without validation has neither a validation loss nor a tracking AUC)."""
    if best_by in HIGHER_IS_BETTER and best_by in record:
        return best_by
    return "val_loss" if "val_loss" in record else "train_loss"
