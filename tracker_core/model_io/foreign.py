"""Foreign checkpoints: pytracking's ATOM checkpoint (``atom_default.pth``), ATOM state dicts, and plain
torchvision ResNet-18 or EfficientNet-Lite0 state dicts (a backbone only, no IoU-Net)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelFileError
from .model import AtomModel
from .networks import build_backbone_from_state, build_iounet, sub_state
from .unpickling import StubObject


def _iounet_config_from_state(state: Mapping[str, Any], source: Path | str | None) -> dict[str, tuple[int, int]]:
    """The AtomIoUNet constructor dims implied by the shapes of its weights (the file is the authority)."""
    def out_in(key: str) -> tuple[int, int]:
        w = state.get(key)
        if not isinstance(w, torch.Tensor) or w.dim() < 2:
            raise ModelFileError(f"{source}: not an ATOM IoU-Net (no tensor {key})")
        return int(w.shape[0]), int(w.shape[1])

    c3r, c4r = out_in("conv3_1r.0.weight"), out_in("conv4_1r.0.weight")
    c3t, c4t = out_in("conv3_1t.0.weight"), out_in("conv4_1t.0.weight")
    c32, c42 = out_in("conv3_2t.0.weight"), out_in("conv4_2t.0.weight")
    f3, f4 = out_in("fc3_rt.linear.weight"), out_in("fc4_rt.linear.weight")
    return {
        "input_dim": (c3r[1], c4r[1]),
        "pred_input_dim": (c32[0], c42[0]),
        "pred_inter_dim": (f3[0], f4[0]),
        "ref_dim": (c3r[0], c4r[0]),
        "test_dim": (c3t[0], c4t[0]),
    }


def _strip_prefix_if_all(state: Mapping[str, Any], prefix: str) -> Mapping[str, Any]:
    """``module.`` prefixes come from nn.DataParallel; they say nothing about the network."""
    if state and all(isinstance(k, str) and k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def plain(value: Any, depth: int = 0) -> Any:
    """A JSON-friendly copy of checkpoint metadata (stubs and tensors become short descriptions)."""
    if depth > 6:
        return "..."
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v, depth + 1) for k, v in list(value.items())[:100]}
    if isinstance(value, list | tuple):
        return [plain(v, depth + 1) for v in value[:100]]
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}"
    if isinstance(value, StubObject):
        return {"class": value.stub_class, **{str(k): plain(v, depth + 1) for k, v in value.fields().items()}}
    return repr(value)[:200]


def _pytracking_checkpoint_to_model(checkpoint: Mapping[str, Any], source: Path) -> AtomModel:
    """pytracking's checkpoint: the ATOM network in ``net``, and what its (stub) objects say about the training."""
    model = _atom_state_to_model(checkpoint["net"], source, "pytracking-checkpoint")
    meta: dict[str, Any] = {}
    constructor = checkpoint.get("constructor")
    if isinstance(constructor, StubObject):
        meta["constructor"] = {k: plain(constructor.get(k)) for k in ("fun_name", "fun_module", "args", "kwds")}
        fun_name = constructor.get("fun_name")
        if isinstance(fun_name, str) and fun_name not in ("atom_resnet18",):
            model.info["warning"] = f"the checkpoint was built by {fun_name}, not atom_resnet18"
    for key in ("epoch", "net_type", "actor_type", "net_info"):
        if key in checkpoint:
            meta[key] = plain(checkpoint[key])
    model.info["pytracking"] = meta
    return model


def _atom_state_to_model(net: Mapping[str, Any], source: Path | str | None, kind: str) -> AtomModel:
    """An ATOMnet state dict (``feature_extractor.*`` + ``bb_regressor.*``) -> ResNet-18 + IoU-Net."""
    net = _strip_prefix_if_all(net, "module.")
    fe = sub_state(net, "feature_extractor.")
    bb = sub_state(net, "bb_regressor.")
    others = sorted(k for k in net if not (k.startswith("feature_extractor.") or k.startswith("bb_regressor.")))
    if not fe or not bb:
        raise ModelFileError(f"{source}: not an ATOM network (needs feature_extractor.* and bb_regressor.* weights)")
    if others:
        raise ModelFileError(f"{source}: unexpected weights in the ATOM network: {', '.join(others[:5])}")
    if "layer1.0.conv3.weight" in fe:
        raise ModelFileError(f"{source}: an ATOM network with a ResNet-50 backbone; only ResNet-18 is supported")
    # BN running statistics from the file, not ImageNet's: pytracking trains the IoU-Net with the frozen backbone
    # in train mode, so they moved.
    backbone = build_backbone_from_state("resnet18", fe, source)
    iounet = build_iounet(_iounet_config_from_state(bb, source), bb, source)
    return AtomModel(backbone, iounet, {
        "source": str(source) if source is not None else None,
        "kind": kind,
        "backbone": "resnet18",
        "preset": "default",
        "model_card": {},
    })


def _looks_like_torchvision_resnet(state: Mapping[str, Any]) -> bool:
    return "conv1.weight" in state and "layer1.0.conv1.weight" in state and "bn1.running_mean" in state


def _looks_like_efficientnet(state: Mapping[str, Any]) -> bool:
    return "_conv_stem.weight" in state and "_bn0.weight" in state


# Backbone-only state dicts: (recogniser, backbone name, info kind, what the warning calls it).
_BACKBONE_STATE_DICTS = (
    (_looks_like_torchvision_resnet, "resnet18", "torchvision-state-dict", "a ResNet-18"),
    (_looks_like_efficientnet, "efficientnet_lite0", "efficientnet-state-dict", "an EfficientNet-Lite0"),
)


def _tensor_state(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def model_from_torch_object(obj: Any, source: Path) -> AtomModel:
    """Dispatch on the content of an unpickled ``torch.save`` object."""
    if isinstance(obj, Mapping) and "net" in obj and isinstance(obj["net"], Mapping):
        return _pytracking_checkpoint_to_model(obj, source)
    if isinstance(obj, Mapping):
        # Common wrappers around a state dict: {"state_dict": ...} / {"model": ...}.
        for key in ("state_dict", "model"):
            if key in obj and _tensor_state(obj[key]):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise ModelFileError(f"{source}: a PyTorch file holding a {type(obj).__name__}, not a model's weights")
    state = _strip_prefix_if_all(obj, "module.")
    if any(isinstance(k, str) and k.startswith("feature_extractor.") for k in state):
        return _atom_state_to_model(state, source, "atom-state-dict")
    for looks_like, backbone_name, kind, title in _BACKBONE_STATE_DICTS:
        if _tensor_state(state) and looks_like(state):
            return AtomModel(build_backbone_from_state(backbone_name, state, source), None, {
                "source": str(source), "kind": kind, "backbone": backbone_name, "preset": "multiscale",
                "model_card": {},
                "warning": f"the file holds only {title} backbone, no trained IoU-Net: the tracker runs as the "
                           "multiscale preset",
            })
    keys = [str(k) for k in list(state)[:4]]
    raise ModelFileError(
        f"{source}: a PyTorch file, but not a model this program knows (neither an ATOM checkpoint nor a ResNet-18 "
        f"state dict; first keys: {', '.join(keys) or 'none'})"
    )
