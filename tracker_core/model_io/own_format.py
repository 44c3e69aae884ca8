"""Our own format: ``NAME.safetensors`` (weights; keys ``backbone.*`` and ``iounet.*``) next to ``NAME.json``
(format name and version, backbone name, IoU-Net constructor dims, recommended preset, model card, checksum of the
weights; from ``atom train``, the crop geometry ``sample``).  Either file of the pair may be given.  The same
description is embedded in the safetensors metadata, so a lone ``.safetensors`` still loads.  safetensors is a pure
data format: nothing in it can run."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..atomic_files import atomic_files
from ..config import CROP_GEOMETRY
from ..errors import ModelFileError
from .files import detect_kind, short_message
from .foreign import model_from_torch_object, plain
from .model import AtomModel
from .networks import (
    KNOWN_BACKBONES,
    PACKAGED_BACKBONES,
    build_backbone_from_state,
    build_iounet,
    check_iounet_config,
    is_nbt,
    sub_state,
    tuple_int,
)

FORMAT_NAME = "atom-annotator-model"
FORMAT_VERSION = 1
# A JSON description is a few kB; refusing large files keeps a mistaken multi-GB path from being read into memory.
_MAX_JSON_BYTES = 4 * 1024 * 1024


def pair_paths(path: str | Path) -> tuple[Path, Path]:
    """``(NAME.json, NAME.safetensors)`` for a path naming either file, or the stem without extension."""
    path = Path(path)
    if path.suffix.lower() in (".json", ".safetensors"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".json"), path.with_name(path.name + ".safetensors")


def _describe(model: AtomModel, backbone_weights: str) -> dict[str, Any]:
    info = model.info or {}
    iounet_config = None
    if model.iounet is not None:
        config = getattr(model.iounet, "config", None)
        if not isinstance(config, Mapping):
            raise ModelFileError("cannot save: the IoU-Net has no `config` dict of its constructor arguments")
        iounet_config = {k: list(tuple_int(v)) for k, v in config.items()}
    backbone_name = getattr(model.backbone, "name", None) or info.get("backbone")
    preset = info.get("preset") or ("default" if model.iounet is not None else "multiscale")
    card = info.get("model_card") or {}
    description = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "backbone": backbone_name,
        "backbone_weights": backbone_weights,
        "iounet": iounet_config,
        "preset": preset,
        "model_card": plain(dict(card)),
    }
    if info.get("sample") is not None:
        description["sample"] = plain(dict(info["sample"]))
    return description


def _backbone_is_packaged(backbone: nn.Module) -> bool:
    """True when the backbone's weights are exactly the ImageNet ones shipped in a pip package."""
    name = getattr(backbone, "name", None)
    if name not in PACKAGED_BACKBONES:
        return False
    stock = build_backbone_from_state(name, None, None).state_dict()
    mine = backbone.state_dict()
    if stock.keys() != mine.keys():
        return False
    return all(torch.equal(stock[k].cpu(), mine[k].detach().cpu()) for k in stock if not is_nbt(k))


def save_model(model: AtomModel, path: str | Path) -> Path:
    """Write ``NAME.safetensors`` and ``NAME.json`` (``path`` names either, or the stem); returns the JSON path.

    The description embeds ``info["preset"]`` and ``info["model_card"]`` (training data, pairs, epochs, losses...).
    Stock packaged backbone weights are not stored (``backbone_weights: "packaged"``).  The weights are written
    first and the JSON, which carries their SHA-256, last, so an interrupted save is detected at load time.
    """
    from safetensors.torch import save as st_save

    json_path, st_path = pair_paths(path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    packaged = _backbone_is_packaged(model.backbone)
    description = _describe(model, "packaged" if packaged else "stored")
    try:  # never write a file that load_model would refuse
        _check_description(description, json_path)
    except ModelFileError as exc:
        raise ModelFileError(f"cannot save this model: {exc}") from None
    tensors: dict[str, torch.Tensor] = {}
    parts = [] if packaged else [("backbone.", model.backbone)]
    if model.iounet is not None:
        parts.append(("iounet.", model.iounet))
    seen: set[int] = set()
    for prefix, module in parts:
        for k, v in module.state_dict().items():
            v = v.detach().cpu().contiguous()
            # safetensors refuses tensors sharing memory (tied weights): give each its own copy then.
            ptr = v.untyped_storage().data_ptr()
            if ptr in seen:
                v = v.clone()
            seen.add(ptr)
            tensors[prefix + k] = v
    metadata = {"format": FORMAT_NAME, "atom_model": json.dumps(description, sort_keys=True)}
    blob = st_save(tensors, metadata=metadata)
    full = dict(description, weights=st_path.name, weights_sha256=hashlib.sha256(blob).hexdigest())
    with atomic_files() as files:  # both or neither; the weights are renamed first
        files.write_bytes(st_path, blob)
        files.write_bytes(json_path, (json.dumps(full, indent=2, sort_keys=False) + "\n").encode("utf-8"))
    return json_path


def _read_json(path: Path) -> dict:
    size = path.stat().st_size
    if size > _MAX_JSON_BYTES:
        raise ModelFileError(f"{path} is a {size // 1024} kB text file, too large to be a model description")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path} is not valid JSON ({short_message(exc)})") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{path} is JSON but not an ATOM Annotator model description")
    return data


def _check_description(desc: dict, source: Path) -> None:
    if desc.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"{source} is JSON but not an ATOM Annotator model description (no \"format\": \"{FORMAT_NAME}\")"
        )
    version = desc.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{source}: missing or invalid format_version")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{source} uses model format version {version}; this program reads up to {FORMAT_VERSION} (update it)"
        )
    if desc.get("backbone") not in KNOWN_BACKBONES:
        raise ModelFileError(f"{source}: unknown backbone {desc.get('backbone')!r}")
    if desc.get("backbone_weights") not in ("packaged", "stored"):
        raise ModelFileError(f"{source}: backbone_weights must be \"packaged\" or \"stored\"")
    if desc["backbone_weights"] == "packaged" and desc["backbone"] not in PACKAGED_BACKBONES:
        raise ModelFileError(f"{source}: no packaged weights exist for backbone {desc['backbone']!r}")
    if desc.get("iounet") is not None:
        check_iounet_config(desc["iounet"], source)
    if desc.get("sample") is not None:
        _check_sample(desc["sample"], source)


def _check_sample(sample, source: Path) -> None:
    """The crop geometry: both CROP_GEOMETRY fields, a positive scale and a positive whole crop side."""
    if not isinstance(sample, dict) or set(sample) != set(CROP_GEOMETRY):
        raise ModelFileError(f"{source}: sample must hold {' and '.join(CROP_GEOMETRY)}, got {sample!r}")
    scale, size = sample["search_area_scale"], sample["image_sample_size"]
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < math.inf:
        raise ModelFileError(f"{source}: sample.search_area_scale must be a positive number, got {scale!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ModelFileError(f"{source}: sample.image_sample_size must be a positive integer, got {size!r}")


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        tensors = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
        return tensors, metadata
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path} is a damaged or truncated safetensors file ({short_message(exc)})") from None


def load_own_format(given: Path, kind: str) -> AtomModel:
    """A model from our pair; ``given`` is either file of it (``kind``: ``"json"`` or ``"safetensors"``).

    The description is read and checked before the weights are (so that nothing is allocated for a damaged one);
    a ``.safetensors`` without a description of ours, beside it or in its metadata, is read as a foreign state dict.
    """
    json_path, st_path, desc = _locate_pair(given, kind)
    tensors, metadata = _read_safetensors(st_path)
    if desc is not None:
        _check_checksum(desc, json_path, st_path)
    else:
        desc = _embedded_description(metadata, st_path)
        if desc is None:  # a safetensors file of somebody else's: maybe a plain backbone state dict
            return model_from_torch_object(tensors, st_path)
    backbone, iounet = _networks_from_tensors(desc, tensors, st_path)
    info = {
        "source": str(given),
        "kind": "atom-model",
        "backbone": desc["backbone"],
        "preset": desc.get("preset") or ("default" if iounet is not None else "multiscale"),
        "model_card": desc.get("model_card") if isinstance(desc.get("model_card"), dict) else {},
    }
    if desc.get("sample") is not None:
        info["sample"] = dict(desc["sample"])  # the tracker crops with it (tracker.with_model_geometry)
    if iounet is None:
        info["warning"] = "the model has no trained IoU-Net: the tracker runs as the multiscale preset"
    return AtomModel(backbone, iounet, info)


def _locate_pair(given: Path, kind: str) -> tuple[Path, Path, dict | None]:
    """``(NAME.json, NAME.safetensors, checked description)``; the description is None when a ``.safetensors`` was
    given with no description of ours beside it that names it."""
    json_path, st_path = pair_paths(given)
    if kind != "json":
        return json_path, given, _description_beside(json_path, given)
    desc = _read_json(given)
    _check_description(desc, given)
    weights_name = desc.get("weights")
    if isinstance(weights_name, str) and weights_name and Path(weights_name).name == weights_name:
        st_path = given.with_name(weights_name)  # a bare file name only: never follow paths out of the folder
    if not st_path.is_file():
        raise ModelFileError(f"{given}: its weights file {st_path.name} is missing (expected next to it)")
    if detect_kind(st_path) != "safetensors":
        raise ModelFileError(f"{st_path} is not a safetensors file")
    return given, st_path, desc


def _description_beside(json_path: Path, st_path: Path) -> dict | None:
    """The checked description in ``json_path`` when it is one of ours naming ``st_path``; None otherwise."""
    if not (json_path.is_file() and detect_kind(json_path) == "json"):
        return None
    candidate = _read_json(json_path)
    if candidate.get("format") != FORMAT_NAME or candidate.get("weights", st_path.name) != st_path.name:
        return None
    _check_description(candidate, json_path)
    return candidate


def _check_checksum(desc: dict, json_path: Path, st_path: Path) -> None:
    """The weights are the ones the description was saved with (an interrupted or mixed save is caught here)."""
    expected = desc.get("weights_sha256")
    if isinstance(expected, str) and hashlib.sha256(st_path.read_bytes()).hexdigest() != expected:
        raise ModelFileError(
            f"{json_path.name} does not describe {st_path.name} (checksum differs): the two files were not "
            "saved together; copy both files of the pair from the same save"
        )


def _embedded_description(metadata: dict[str, str], st_path: Path) -> dict | None:
    """The checked description a lone ``.safetensors`` of ours carries in its metadata; None for a foreign file."""
    if metadata.get("format") != FORMAT_NAME or "atom_model" not in metadata:
        return None
    try:
        desc = json.loads(metadata["atom_model"])
    except json.JSONDecodeError:
        desc = None
    if not isinstance(desc, dict):
        raise ModelFileError(f"{st_path}: damaged model description in its metadata")
    _check_description(desc, st_path)
    return desc


def _networks_from_tensors(desc: dict, tensors: dict[str, torch.Tensor], st_path: Path
                           ) -> tuple[nn.Module, nn.Module | None]:
    """The backbone and the IoU-Net (None when the description has none) built strictly from the weights."""
    unknown = sorted(k for k in tensors if not (k.startswith("backbone.") or k.startswith("iounet.")))
    if unknown:
        raise ModelFileError(f"{st_path}: unexpected weights {', '.join(unknown[:5])}")
    bb_state: dict | None = sub_state(tensors, "backbone.")
    io_state = sub_state(tensors, "iounet.")
    if desc["backbone_weights"] == "packaged":
        if bb_state:
            raise ModelFileError(f"{st_path}: backbone weights stored although the description says \"packaged\"")
        bb_state = None
    backbone = build_backbone_from_state(desc["backbone"], bb_state, st_path)
    if desc.get("iounet") is None:
        if io_state:
            raise ModelFileError(f"{st_path}: IoU-Net weights stored but no iounet configuration in the description")
        return backbone, None
    return backbone, build_iounet(desc["iounet"], io_state, st_path)
