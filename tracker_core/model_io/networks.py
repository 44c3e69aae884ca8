"""Building the networks from state dicts, strictly: every weight present, of the network's shape."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ModelFileError
from .files import short_message

# Backbones whose ImageNet weights ship inside a pip dependency: a model using them unchanged need not store them.
PACKAGED_BACKBONES = {"efficientnet_lite0"}
KNOWN_BACKBONES = ("resnet18", "efficientnet_lite0")
IOUNET_CONFIG_KEYS = ("input_dim", "pred_input_dim", "pred_inter_dim", "ref_dim", "test_dim", "box_offset")
# Sane bounds for an IoU-Net described by a file, checked before anything is allocated: the reference network has
# 5.6M parameters and at most 256 channels a layer (ResNet-50's variant reads 1024); a damaged or hostile description
# could otherwise ask for gigabytes.
MAX_IOUNET_CHANNELS = 4096
MAX_IOUNET_PARAMETERS = 50_000_000


def is_nbt(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def load_strict(module: nn.Module, state: Mapping[str, Any], what: str, source: Path | str | None) -> None:
    """``load_state_dict(strict=True)`` that tolerates missing or extra BatchNorm ``num_batches_tracked`` counters.

    Those counters are bookkeeping (absent from pre-1.0 files); every weight and running statistic must match.
    """
    where = f"{source}: " if source is not None else ""
    expected = module.state_dict()
    missing = sorted(k for k in expected if k not in state and not is_nbt(k))
    extra = sorted(k for k in state if k not in expected and not is_nbt(k))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if extra:
            parts.append(f"{len(extra)} unexpected (e.g. {', '.join(extra[:3])})")
        raise ModelFileError(f"{where}the {what} weights do not match the network: {'; '.join(parts)} keys")
    filtered = {}
    for key, value in state.items():
        if key not in expected:
            continue  # an extra num_batches_tracked
        if not isinstance(value, torch.Tensor):
            raise ModelFileError(f"{where}{what} entry {key} is not a tensor")
        if value.shape != expected[key].shape:
            raise ModelFileError(
                f"{where}the {what} weights do not match the network: {key} has shape {tuple(value.shape)}, "
                f"expected {tuple(expected[key].shape)}"
            )
        if value.is_floating_point() != expected[key].is_floating_point() and not is_nbt(key):
            raise ModelFileError(f"{where}{what} entry {key} has dtype {value.dtype}, expected {expected[key].dtype}")
        # Plain tensors only: whatever Parameter subclass or attributes came from a pickle stay behind.
        filtered[key] = value.detach()
    module.load_state_dict(filtered, strict=False)


def sub_state(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def tuple_int(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


def check_iounet_config(config: Any, source: Path | str | None) -> None:
    """Refuse an IoU-Net configuration (as a model description stores it) that is malformed or absurdly large."""
    if not isinstance(config, dict) or not set(config) <= set(IOUNET_CONFIG_KEYS):
        raise ModelFileError(f"{source}: invalid iounet configuration {config!r}")
    for k, v in config.items():
        low = 0 if k == "box_offset" else 1
        if not (isinstance(v, list) and len(v) == 2 and all(type(x) is int and x >= low for x in v)):
            kind = "non-negative" if low == 0 else "positive"
            raise ModelFileError(f"{source}: iounet.{k} must be two {kind} integers, got {v!r}")
        if max(v) > MAX_IOUNET_CHANNELS:
            raise ModelFileError(f"{source}: iounet.{k} = {v} is beyond any IoU-Net (at most {MAX_IOUNET_CHANNELS}); "
                                 "the model description is damaged")
    from ..iounet import AtomIoUNet

    count = AtomIoUNet.parameter_count(**config)
    if count > MAX_IOUNET_PARAMETERS:
        raise ModelFileError(f"{source}: the iounet configuration describes {count / 1e6:.0f}M parameters, beyond any "
                             f"IoU-Net (at most {MAX_IOUNET_PARAMETERS / 1e6:.0f}M); the model description is damaged")


def build_iounet(config: Mapping[str, Any], state: Mapping[str, Any], source: Path | str | None) -> nn.Module:
    from ..iounet import AtomIoUNet

    try:
        net = AtomIoUNet(**{k: tuple_int(v) for k, v in config.items()})
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{source}: invalid IoU-Net configuration {dict(config)} ({short_message(exc)})") from None
    load_strict(net, state, "IoU-Net", source)
    return net.eval()


def build_backbone_from_state(name: str, state: Mapping[str, Any] | None, source: Path | str | None) -> nn.Module:
    """``state=None``: the packaged pretrained weights; otherwise a fresh network loaded strictly from ``state``."""
    from ..backbones import build_backbone

    if name not in KNOWN_BACKBONES:
        raise ModelFileError(f"{source}: unknown backbone {name!r} (known: {', '.join(KNOWN_BACKBONES)})")
    backbone = build_backbone(name, pretrained=state is None)
    if state is not None:
        load_strict(backbone, state, f"{name} backbone", source)
    backbone.eval()
    return backbone
