"""Every model file the product reads or writes, loaded without ever executing code stored in the file.

Three kinds of file are read, recognised by their content (never by their extension):

* **Our own format**: ``NAME.safetensors`` (weights; keys ``backbone.*`` and ``iounet.*``) next to ``NAME.json``
  (format name and version, backbone name, IoU-Net constructor dims, recommended preset, model card, checksum of
  the weights).  Either file of the pair may be given.  The same description is embedded in the safetensors
  metadata, so a lone ``.safetensors`` still loads.  safetensors is a pure data format: nothing in it can run.
* **The official pytracking checkpoint** (``atom_default.pth``): a ``torch.save`` pickle, in the legacy (2019,
  non-zip) or the zip serialization, holding ``net`` (``feature_extractor.*`` = torchvision ResNet-18 names and
  ``bb_regressor.*`` = AtomIoUNet names) plus pickled objects of pytracking's ``ltr`` classes (``constructor``,
  ``settings``, ``stats``).  Pickle is a program, not data: ``torch.load`` would import ``ltr`` and run whatever
  the file asks.  We read it with :data:`RESTRICTED_PICKLE`, a pickle module whose unpickler resolves only the
  tensor/storage rebuild functions and a few plain containers, turns every ``ltr.*`` / ``pytracking.*`` /
  ``dlframework.*`` class into an inert stub that only stores what it is given, and refuses anything else with a
  :class:`ModelFileError` naming the refused global.
* **A torchvision ResNet-18 state dict** (a plain dict of tensors): gives the backbone only, no IoU-Net.

``load_model(None)`` loads the shipped default (``resources/models/default.json``, or ``$ATOM_MODEL_DIR``), and when
none is installed falls back to the packaged ImageNet EfficientNet-Lite0 backbone without an IoU-Net (the tracker
then runs as the ``multiscale`` preset).

The package: ``model.py`` (:class:`AtomModel`), ``unpickling.py`` (the restricted pickle module), ``files.py``
(recognising files, reading ``torch.save`` files), ``networks.py`` (strict state-dict loading), ``foreign.py``
(pytracking and torchvision files), ``own_format.py`` (our safetensors + JSON pair); this module picks the reader.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelFileError
from .files import detect_kind, read_torch_file
from .foreign import model_from_torch_object
from .model import AtomModel
from .networks import build_backbone_from_state
from .own_format import FORMAT_NAME, FORMAT_VERSION, load_own_format, pair_paths, save_model
from .unpickling import RESTRICTED_PICKLE, StubObject

__all__ = [
    "AtomModel",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFileError",
    "RESTRICTED_PICKLE",
    "StubObject",
    "default_model_path",
    "detect_kind",
    "load_model",
    "read_torch_file",
    "save_model",
]


#: Environment variable naming a folder that holds an installed ``default.json`` (+ ``.safetensors``).
MODEL_DIR_ENV = "ATOM_MODEL_DIR"
DEFAULT_MODEL_STEM = "default"


def _model_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(Path(__file__).resolve().parents[2] / "resources" / "models")
    return dirs


def default_model_path() -> Path | None:
    """The shipped default model's JSON: ``$ATOM_MODEL_DIR/default.json``, else the repo's ``resources/models``."""
    for folder in _model_dirs():
        candidate = folder / f"{DEFAULT_MODEL_STEM}.json"
        if candidate.is_file():
            return candidate
    return None


def _builtin_fallback() -> AtomModel:
    backbone = build_backbone_from_state("efficientnet_lite0", None, None)
    return AtomModel(backbone, None, {
        "source": None,
        "kind": "builtin",
        "backbone": "efficientnet_lite0",
        "preset": "multiscale",
        "model_card": {},
        "warning": "no trained IoU-Net is available (no default model installed): the tracker runs as the "
                   "multiscale preset with the ImageNet EfficientNet-Lite0 backbone",
    })


def load_model(path: str | Path | None = None) -> AtomModel:
    """Load any supported model file (see the module docstring), on the CPU; ``None`` means the shipped default.

    Raises :class:`ModelFileError` with a message for the person when the file is missing, of the wrong kind,
    damaged, or would need to run code.
    """
    if path is None:
        default = default_model_path()
        if default is None:
            return _builtin_fallback()
        model = load_model(default)
        model.info["default"] = True
        return model
    path = Path(path).expanduser()
    if not path.exists() and not path.suffix:
        json_path, st_path = pair_paths(path)
        path = json_path if json_path.exists() else st_path if st_path.exists() else path
    kind = detect_kind(path)
    if kind in ("json", "safetensors"):
        model = load_own_format(path, kind)
    else:
        model = model_from_torch_object(read_torch_file(path), path)
    return model.eval()
