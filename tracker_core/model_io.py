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
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import pickle
import struct
import tempfile
import types
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ModelFileError

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

FORMAT_NAME = "atom-annotator-model"
FORMAT_VERSION = 1

#: Environment variable naming a folder that holds an installed ``default.json`` (+ ``.safetensors``).
MODEL_DIR_ENV = "ATOM_MODEL_DIR"
DEFAULT_MODEL_STEM = "default"

# Backbones whose ImageNet weights ship inside a pip dependency: a model using them unchanged need not store them.
_PACKAGED_BACKBONES = {"efficientnet_lite0"}
_KNOWN_BACKBONES = ("resnet18", "efficientnet_lite0")
_IOUNET_CONFIG_KEYS = ("input_dim", "pred_input_dim", "pred_inter_dim", "ref_dim", "test_dim", "box_offset")
# A JSON description is a few kB; refusing large files keeps a mistaken multi-GB path from being read into memory.
_MAX_JSON_BYTES = 4 * 1024 * 1024


# --------------------------------------------------------------------------------------------------------------
# The model object
# --------------------------------------------------------------------------------------------------------------
@dataclass
class AtomModel:
    """A frozen backbone, the trained IoU-Net (``None`` when there is none) and facts about where they came from.

    ``info`` keys: ``source`` (path or ``None``), ``kind`` (``"atom-model"``, ``"pytracking-checkpoint"``,
    ``"atom-state-dict"``, ``"torchvision-state-dict"``, ``"efficientnet-state-dict"``, ``"builtin"``),
    ``backbone`` (name), ``preset`` (the preset the file recommends), ``model_card`` (dict, possibly empty),
    and optionally ``warning`` (a sentence for the person) and ``pytracking`` (the checkpoint's metadata).
    """

    backbone: nn.Module
    iounet: nn.Module | None
    info: dict = field(default_factory=dict)

    def to(self, device: str | torch.device) -> AtomModel:
        """Move both networks to ``device`` in place; returns ``self`` for chaining."""
        self.backbone.to(device)
        if self.iounet is not None:
            self.iounet.to(device)
        return self

    def eval(self) -> AtomModel:
        """Inference mode for both networks (the backbone is always in eval mode anyway)."""
        self.backbone.eval()
        if self.iounet is not None:
            self.iounet.eval()
        return self

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    @property
    def has_iounet(self) -> bool:
        return self.iounet is not None


# --------------------------------------------------------------------------------------------------------------
# Restricted unpickling
# --------------------------------------------------------------------------------------------------------------
class StubObject:
    """Inert stand-in for an object of a pytracking class (``ltr.*``, ``pytracking.*``, ``dlframework.*``).

    It stores constructor arguments, pickled state, dict items and list items, and never calls anything: the real
    class is never imported.  Read the stored fields with :meth:`get` (e.g. ``constructor.get("fun_name")``).
    """

    _stub_module = "?"
    _stub_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> StubObject:
        obj = object.__new__(cls)
        # object.__setattr__ because our own __setattr__ routes attributes into the state.
        object.__setattr__(obj, "_stub_args", args)
        object.__setattr__(obj, "_stub_kwargs", kwargs)
        object.__setattr__(obj, "_stub_state", None)
        object.__setattr__(obj, "_stub_items", {})
        object.__setattr__(obj, "_stub_list", [])
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # everything was stored by __new__; a REDUCE call and a NEWOBJ both end up here harmlessly

    def __setstate__(self, state: Any) -> None:
        # Defining __setstate__ makes pickle's BUILD hand us the state instead of setattr-ing arbitrary names.
        object.__setattr__(self, "_stub_state", state)

    def __setattr__(self, name: str, value: Any) -> None:
        fields = self.fields()
        fields[name] = value

    def __setitem__(self, key: Any, value: Any) -> None:  # pickled dict subclasses (e.g. TensorDict)
        self._stub_items[key] = value

    def append(self, value: Any) -> None:  # pickled list subclasses (e.g. TensorList)
        self._stub_list.append(value)

    def extend(self, values: Any) -> None:
        self._stub_list.extend(values)

    def fields(self) -> dict:
        """The object's attributes as stored in the file (the ``__dict__`` part of its pickled state)."""
        state = self._stub_state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict | None):
            state = state[0]  # (dict state, slot state)
        if state is None:
            state = {}
            object.__setattr__(self, "_stub_state", state)
        return state if isinstance(state, dict) else {}

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields().get(name, default)

    @property
    def stub_class(self) -> str:
        return f"{self._stub_module}.{self._stub_name}"

    def __repr__(self) -> str:
        return f"<stub of {self.stub_class}>"


class _StubMeta(type):
    """Metaclass of the stub classes: forbids changing them, so a pickle cannot BUILD attributes onto a class."""

    def __setattr__(cls, name: str, value: Any) -> None:
        raise pickle.UnpicklingError(f"refusing to set attribute {name!r} on class {cls.__qualname__}")


def _make_stub_class(module: str, name: str) -> type:
    return _StubMeta(name.rpartition(".")[2] or "Stub", (StubObject,), {
        "__module__": "tracker_core.model_io.stubs." + module,
        "__qualname__": name,
        "_stub_module": module,
        "_stub_name": name,
    })


class _RefusedGlobal(ModelFileError):
    """A pickle asked for a global outside the allow-list; ``qualname`` names it."""

    def __init__(self, qualname: str) -> None:
        self.qualname = qualname
        hint = ""
        if qualname.startswith("torch.nn.") or qualname.startswith("torch.jit."):
            hint = " (the file stores a whole pickled network object; only state dicts of tensors can be read)"
        super().__init__(
            f"refused to load: the file asks to run or create {qualname}, which is not tensor data{hint}. "
            "A model file never needs that; the file may be malicious, do not open it with torch.load either."
        )


def _checked_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                               backward_hooks=None, metadata=None):
    """``torch._utils._rebuild_tensor_v2`` that accepts only a real storage and never restores hooks."""
    if not isinstance(storage, torch.storage.TypedStorage):
        raise pickle.UnpicklingError("tensor data that is not a tensor storage")
    if metadata is not None and not isinstance(metadata, dict):
        raise pickle.UnpicklingError("malformed tensor metadata")
    # Hooks are callables by definition; a weights file has none, and we never attach what a file supplies.
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, bool(requires_grad),
                                           collections.OrderedDict(), metadata or None)


def _checked_rebuild_tensor(storage, storage_offset, size, stride):
    if not isinstance(storage, torch.storage.TypedStorage):
        raise pickle.UnpicklingError("tensor data that is not a tensor storage")
    return torch._utils._rebuild_tensor(storage, storage_offset, size, stride)


def _checked_rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("a parameter whose data is not a tensor")
    return torch._utils._rebuild_parameter(data, bool(requires_grad), collections.OrderedDict())


def _latin1_encode(obj, encoding="latin1"):
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes`` (str -> latin-1), and nothing else."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode used for something other than bytes")
    return obj.encode("latin1")


def _stub_reconstructor(cls, base, state):
    """``copyreg._reconstructor`` (protocol 0/1 object pickles), restricted to stub classes."""
    if not (isinstance(cls, type) and issubclass(cls, StubObject)) or base is not object or state is not None:
        raise _RefusedGlobal("copyreg._reconstructor on " + getattr(cls, "__qualname__", type(cls).__name__))
    return cls.__new__(cls)


def _stub_newobj(cls, *args):
    """``copyreg.__newobj__`` restricted to stub classes."""
    if not (isinstance(cls, type) and issubclass(cls, StubObject)):
        raise _RefusedGlobal("copyreg.__newobj__ on " + getattr(cls, "__qualname__", type(cls).__name__))
    return cls.__new__(cls, *args)


def _numpy_globals() -> dict[str, Any]:
    """numpy scalar and array reconstruction (pure data; training statistics sometimes hold numpy floats)."""
    try:
        import numpy as np
        try:
            from numpy._core import multiarray
        except ImportError:  # numpy < 2
            from numpy.core import multiarray
    except ImportError:  # pragma: no cover - numpy is a dependency
        return {}
    out = {"numpy.dtype": np.dtype, "numpy.ndarray": np.ndarray}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[f"{mod}.scalar"] = multiarray.scalar
        out[f"{mod}._reconstruct"] = multiarray._reconstruct
    return out


def _allowed_globals() -> dict[str, Any]:
    allowed: dict[str, Any] = {
        "torch._utils._rebuild_tensor_v2": _checked_rebuild_tensor_v2,
        "torch._utils._rebuild_tensor": _checked_rebuild_tensor,
        "torch._utils._rebuild_parameter": _checked_rebuild_parameter,
        "torch.Size": torch.Size,
        "torch.device": torch.device,
        "collections.OrderedDict": collections.OrderedDict,
        "builtins.set": set,
        "builtins.frozenset": frozenset,
        "builtins.complex": complex,
        "builtins.slice": slice,
        "builtins.bytearray": bytearray,
        "builtins.object": object,  # only ever an argument of copyreg._reconstructor; object() is inert
        "_codecs.encode": _latin1_encode,
        "copyreg._reconstructor": _stub_reconstructor,
        "copyreg.__newobj__": _stub_newobj,
    }
    # dtypes are pickled as globals (torch.float32); they are plain values, and calling one is a TypeError.
    for name in dir(torch):
        value = getattr(torch, name, None)
        if isinstance(value, torch.dtype):
            allowed[f"torch.{name}"] = value
    # Storage classes: the pickled storage type is only a dtype tag (torch.load maps it to StorageType itself).
    from torch.serialization import StorageType
    for name in ("Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool"):
        with contextlib.suppress(KeyError):
            allowed[f"torch.{name}Storage"] = StorageType(f"{name}Storage")
    allowed.update(_numpy_globals())
    return allowed


_ALLOWED_GLOBALS = _allowed_globals()
# Python 2 era names, as pickle's own fix_imports would map them.
_MODULE_ALIASES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
# Namespaces of pytracking's code: their classes become stubs (only ever data holders in a checkpoint).
_STUB_NAMESPACES = ("ltr", "pytracking", "dlframework")


class RestrictedUnpickler(pickle.Unpickler):
    """A pickle reader that resolves only allow-listed globals; every other global raises :class:`ModelFileError`.

    Every pickle opcode that can call or create something (REDUCE, NEWOBJ, INST, OBJ, EXT*) first obtains its
    callable through :meth:`find_class`, so restricting :meth:`find_class` restricts all of them.  BUILD on an
    allowed object either reaches a data-only ``__setstate__`` or fills an instance ``__dict__``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stubs: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        module = _MODULE_ALIASES.get(module, module)
        qualname = f"{module}.{name}"
        if qualname in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[qualname]
        if any(module == ns or module.startswith(ns + ".") for ns in _STUB_NAMESPACES):
            if qualname not in self._stubs:
                self._stubs[qualname] = _make_stub_class(module, name)
            return self._stubs[qualname]
        raise _RefusedGlobal(qualname)


def _restricted_load(file, **kwargs: Any) -> Any:
    """``pickle.load`` through :class:`RestrictedUnpickler` (torch's legacy format reads its header with it)."""
    return RestrictedUnpickler(file, **kwargs).load()


def _restricted_loads(data: bytes, **kwargs: Any) -> Any:
    import io

    return RestrictedUnpickler(io.BytesIO(data), **kwargs).load()


#: A pickle *module* for ``torch.load(..., weights_only=False, pickle_module=RESTRICTED_PICKLE)``.  torch uses
#: ``pickle_module.Unpickler`` (subclassed, with its own ``persistent_load`` for storages, and ``find_class`` calling
#: ours for every non-storage global) for the object pickle of both formats, and ``pickle_module.load`` for the
#: legacy format's header records (magic number, protocol, system info, storage keys), so both go through us.
RESTRICTED_PICKLE = types.SimpleNamespace(
    __name__="tracker_core.model_io.restricted_pickle",
    Unpickler=RestrictedUnpickler,
    load=_restricted_load,
    loads=_restricted_loads,
    UnpicklingError=pickle.UnpicklingError,
)


# --------------------------------------------------------------------------------------------------------------
# Recognising files
# --------------------------------------------------------------------------------------------------------------
_ZIP_MAGIC = b"PK\x03\x04"
# torch's legacy format starts with pickle.dumps(torch.serialization.MAGIC_NUMBER, protocol=2), minus the STOP.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + torch.serialization.MAGIC_NUMBER.to_bytes(10, "little")


def _starts_with_legacy_magic(head: bytes) -> bool:
    """torch.save(pickle_protocol=N) pickles its magic number with that protocol: decode the first record."""
    import io

    try:
        return RestrictedUnpickler(io.BytesIO(head)).load() == torch.serialization.MAGIC_NUMBER
    except Exception:  # anything unreadable is simply not the legacy format
        return False


def detect_kind(path: str | Path) -> str:
    """What a file is, from its first bytes: ``"torch-zip"``, ``"torch-legacy"``, ``"safetensors"``, ``"json"``.

    Raises :class:`ModelFileError` for anything else (the message says what it looks like, when known).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(256)
            size = os.fstat(f.fileno()).st_size
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a folder; give the model's .json or .safetensors file") from None
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read the model file ({exc.strerror or exc})") from None
    if not head:
        raise ModelFileError(f"{path} is empty, not a model file")
    if head.startswith(_ZIP_MAGIC):
        return "torch-zip"
    if head.startswith(_LEGACY_MAGIC) or _starts_with_legacy_magic(head):
        return "torch-legacy"
    # safetensors first: its 8-byte length prefix may itself begin with "{" (0x7b).
    if len(head) >= 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if 2 <= header_len <= size - 8 and head[8:9] == b"{":
            return "safetensors"
    if head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"{":
        return "json"
    if size > 262:
        with open(path, "rb") as f:
            f.seek(257)
            if f.read(5) == b"ustar":
                raise ModelFileError(f"{path} is a tar archive (PyTorch's pre-2018 format is not supported)")
    if head.startswith(b"\x80") and len(head) > 1 and 2 <= head[1] <= 5:
        raise ModelFileError(f"{path} is a Python pickle but not a PyTorch checkpoint")
    raise ModelFileError(
        f"{path} is not a model file (expected a PyTorch checkpoint, or an ATOM Annotator .json/.safetensors pair)"
    )


def _refuse_torchscript(path: Path) -> None:
    """torch.load hands TorchScript archives to torch.jit.load, which runs the archive's code: refuse them first."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile:
        raise ModelFileError(f"{path} is a damaged or truncated zip/PyTorch file") from None
    records = {n.split("/", 1)[1] if "/" in n else n for n in names}
    if "constants.pkl" in records or any(r.startswith("code/") for r in records):
        raise ModelFileError(f"{path} is a TorchScript archive (compiled code), which is never loaded")
    if "data.pkl" not in records:
        raise ModelFileError(f"{path} is a zip file but not a PyTorch checkpoint (no data.pkl inside)")


def read_torch_file(path: str | Path) -> Any:
    """The object stored in a ``torch.save`` file (zip or legacy format), read without executing code.

    Tensors land on the CPU.  pytracking objects come back as :class:`StubObject`; any other global (a function,
    a class outside the allow-list) raises :class:`ModelFileError` naming it, before anything is called.
    """
    path = Path(path)
    kind = detect_kind(path)
    if kind not in ("torch-zip", "torch-legacy"):
        raise ModelFileError(f"{path} is not a PyTorch checkpoint (it looks like {kind})")
    if kind == "torch-zip":
        _refuse_torchscript(path)
    try:
        with open(path, "rb") as f:
            # weights_only=False is required to pass a pickle module; ours is stricter than weights_only and,
            # unlike it, reads pytracking's objects (as stubs).  mmap=False: the legacy format cannot be mapped.
            return torch.load(f, map_location="cpu", pickle_module=RESTRICTED_PICKLE, weights_only=False,
                              mmap=False)
    except _RefusedGlobal as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except ModelFileError:
        raise
    except RuntimeError as exc:
        if "pickle_module" in str(exc):  # TORCH_FORCE_WEIGHTS_ONLY_LOAD forbids a custom pickle module
            raise ModelFileError(
                f"{path}: cannot read pytracking checkpoints while TORCH_FORCE_WEIGHTS_ONLY_LOAD is set "
                "(this program's own reader is stricter than weights_only; unset the variable)"
            ) from None
        raise ModelFileError(
            f"{path} is damaged or truncated, or not a PyTorch checkpoint ({type(exc).__name__}: {_short(exc)})"
        ) from None
    except MemoryError:
        raise ModelFileError(f"{path}: not enough memory to read it (damaged, or not a model file?)") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError, AttributeError,
            IndexError, struct.error, OSError, UnicodeDecodeError, AssertionError) as exc:
        raise ModelFileError(
            f"{path} is damaged or truncated, or not a PyTorch checkpoint ({type(exc).__name__}: {_short(exc)})"
        ) from None


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------------------------
# Building networks from state dicts
# --------------------------------------------------------------------------------------------------------------
def _is_nbt(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def _load_strict(module: nn.Module, state: Mapping[str, Any], what: str, source: Path | str | None) -> None:
    """``load_state_dict(strict=True)`` that tolerates missing or extra BatchNorm ``num_batches_tracked`` counters.

    Those counters are bookkeeping (absent from pre-1.0 files); every weight and running statistic must match.
    """
    where = f"{source}: " if source is not None else ""
    expected = module.state_dict()
    missing = sorted(k for k in expected if k not in state and not _is_nbt(k))
    extra = sorted(k for k in state if k not in expected and not _is_nbt(k))
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
        if value.is_floating_point() != expected[key].is_floating_point() and not _is_nbt(key):
            raise ModelFileError(f"{where}{what} entry {key} has dtype {value.dtype}, expected {expected[key].dtype}")
        # Plain tensors only: whatever Parameter subclass or attributes came from a pickle stay behind.
        filtered[key] = value.detach()
    module.load_state_dict(filtered, strict=False)


def _sub_state(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _tuple_int(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


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


def _build_iounet(config: Mapping[str, Any], state: Mapping[str, Any], source: Path | str | None) -> nn.Module:
    from .iounet import AtomIoUNet

    try:
        net = AtomIoUNet(**{k: _tuple_int(v) for k, v in config.items()})
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{source}: invalid IoU-Net configuration {dict(config)} ({_short(exc)})") from None
    _load_strict(net, state, "IoU-Net", source)
    return net.eval()


def _build_backbone(name: str, state: Mapping[str, Any] | None, source: Path | str | None) -> nn.Module:
    """``state=None``: the packaged pretrained weights; otherwise a fresh network loaded strictly from ``state``."""
    from .backbones import build_backbone

    if name not in _KNOWN_BACKBONES:
        raise ModelFileError(f"{source}: unknown backbone {name!r} (known: {', '.join(_KNOWN_BACKBONES)})")
    backbone = build_backbone(name, pretrained=state is None)
    if state is not None:
        _load_strict(backbone, state, f"{name} backbone", source)
    backbone.eval()
    return backbone


def _strip_prefix_if_all(state: Mapping[str, Any], prefix: str) -> Mapping[str, Any]:
    """``module.`` prefixes come from nn.DataParallel; they say nothing about the network."""
    if state and all(isinstance(k, str) and k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-friendly copy of checkpoint metadata (stubs and tensors become short descriptions)."""
    if depth > 6:
        return "..."
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in list(value.items())[:100]}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value[:100]]
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}"
    if isinstance(value, StubObject):
        return {"class": value.stub_class, **{str(k): _plain(v, depth + 1) for k, v in value.fields().items()}}
    return repr(value)[:200]


def _atom_state_to_model(net: Mapping[str, Any], source: Path | str | None, kind: str) -> AtomModel:
    """An ATOMnet state dict (``feature_extractor.*`` + ``bb_regressor.*``) -> ResNet-18 + IoU-Net."""
    net = _strip_prefix_if_all(net, "module.")
    fe = _sub_state(net, "feature_extractor.")
    bb = _sub_state(net, "bb_regressor.")
    others = sorted(k for k in net if not (k.startswith("feature_extractor.") or k.startswith("bb_regressor.")))
    if not fe or not bb:
        raise ModelFileError(f"{source}: not an ATOM network (needs feature_extractor.* and bb_regressor.* weights)")
    if others:
        raise ModelFileError(f"{source}: unexpected weights in the ATOM network: {', '.join(others[:5])}")
    if "layer1.0.conv3.weight" in fe:
        raise ModelFileError(f"{source}: an ATOM network with a ResNet-50 backbone; only ResNet-18 is supported")
    backbone = _build_backbone("resnet18", fe, source)  # BN running stats from the file, not ImageNet (ref 1.2)
    iounet = _build_iounet(_iounet_config_from_state(bb, source), bb, source)
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


def _tensor_state(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _model_from_torch_object(obj: Any, source: Path) -> AtomModel:
    """Dispatch on the content of an unpickled ``torch.save`` object."""
    if isinstance(obj, Mapping) and "net" in obj and isinstance(obj["net"], Mapping):
        model = _atom_state_to_model(obj["net"], source, "pytracking-checkpoint")
        meta: dict[str, Any] = {}
        constructor = obj.get("constructor")
        if isinstance(constructor, StubObject):
            meta["constructor"] = {k: _plain(constructor.get(k)) for k in ("fun_name", "fun_module", "args", "kwds")}
            fun_name = constructor.get("fun_name")
            if isinstance(fun_name, str) and fun_name not in ("atom_resnet18",):
                model.info["warning"] = f"the checkpoint was built by {fun_name}, not atom_resnet18"
        for key in ("epoch", "net_type", "actor_type", "net_info"):
            if key in obj:
                meta[key] = _plain(obj[key])
        model.info["pytracking"] = meta
        return model
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
    if _tensor_state(state) and _looks_like_torchvision_resnet(state):
        backbone = _build_backbone("resnet18", state, source)
        return AtomModel(backbone, None, {
            "source": str(source), "kind": "torchvision-state-dict", "backbone": "resnet18",
            "preset": "multiscale", "model_card": {},
            "warning": "the file holds only a ResNet-18 backbone, no trained IoU-Net: the tracker runs as the "
                       "multiscale preset",
        })
    if _tensor_state(state) and _looks_like_efficientnet(state):
        backbone = _build_backbone("efficientnet_lite0", state, source)
        return AtomModel(backbone, None, {
            "source": str(source), "kind": "efficientnet-state-dict", "backbone": "efficientnet_lite0",
            "preset": "multiscale", "model_card": {},
            "warning": "the file holds only an EfficientNet-Lite0 backbone, no trained IoU-Net: the tracker runs as "
                       "the multiscale preset",
        })
    keys = [str(k) for k in list(state)[:4]]
    raise ModelFileError(
        f"{source}: a PyTorch file, but not a model this program knows (neither an ATOM checkpoint nor a ResNet-18 "
        f"state dict; first keys: {', '.join(keys) or 'none'})"
    )


# --------------------------------------------------------------------------------------------------------------
# Our own format
# --------------------------------------------------------------------------------------------------------------
def _pair_paths(path: str | Path) -> tuple[Path, Path]:
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
        iounet_config = {k: list(_tuple_int(v)) for k, v in config.items()}
    backbone_name = getattr(model.backbone, "name", None) or info.get("backbone")
    preset = info.get("preset") or ("default" if model.iounet is not None else "multiscale")
    card = info.get("model_card") or {}
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "backbone": backbone_name,
        "backbone_weights": backbone_weights,
        "iounet": iounet_config,
        "preset": preset,
        "model_card": _plain(dict(card)),
    }


def _backbone_is_packaged(backbone: nn.Module) -> bool:
    """True when the backbone's weights are exactly the ImageNet ones shipped in a pip package."""
    name = getattr(backbone, "name", None)
    if name not in _PACKAGED_BACKBONES:
        return False
    from .backbones import build_backbone

    stock = build_backbone(name, pretrained=True).state_dict()
    mine = backbone.state_dict()
    if stock.keys() != mine.keys():
        return False
    return all(torch.equal(stock[k].cpu(), mine[k].detach().cpu()) for k in stock if not _is_nbt(k))


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see a half-written file."""
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private; a model file is shared like any other file (the user's umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_model(model: AtomModel, path: str | Path) -> Path:
    """Write ``NAME.safetensors`` and ``NAME.json`` (``path`` names either, or the stem); returns the JSON path.

    The description embeds ``info["preset"]`` and ``info["model_card"]`` (training data, pairs, epochs, losses...).
    Stock packaged backbone weights are not stored (``backbone_weights: "packaged"``).  The weights are written
    first and the JSON, which carries their SHA-256, last, so an interrupted save is detected at load time.
    """
    from safetensors.torch import save as st_save

    json_path, st_path = _pair_paths(path)
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
    _atomic_write(st_path, blob)
    full = dict(description, weights=st_path.name, weights_sha256=hashlib.sha256(blob).hexdigest())
    _atomic_write(json_path, (json.dumps(full, indent=2, sort_keys=False) + "\n").encode("utf-8"))
    return json_path


def _read_json(path: Path) -> dict:
    size = path.stat().st_size
    if size > _MAX_JSON_BYTES:
        raise ModelFileError(f"{path} is a {size // 1024} kB text file, too large to be a model description")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path} is not valid JSON ({_short(exc)})") from None
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
    if desc.get("backbone") not in _KNOWN_BACKBONES:
        raise ModelFileError(f"{source}: unknown backbone {desc.get('backbone')!r}")
    if desc.get("backbone_weights") not in ("packaged", "stored"):
        raise ModelFileError(f"{source}: backbone_weights must be \"packaged\" or \"stored\"")
    if desc["backbone_weights"] == "packaged" and desc["backbone"] not in _PACKAGED_BACKBONES:
        raise ModelFileError(f"{source}: no packaged weights exist for backbone {desc['backbone']!r}")
    iou = desc.get("iounet")
    if iou is not None:
        if not isinstance(iou, dict) or not set(iou) <= set(_IOUNET_CONFIG_KEYS):
            raise ModelFileError(f"{source}: invalid iounet configuration {iou!r}")
        for k, v in iou.items():
            low = 0 if k == "box_offset" else 1
            if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and x >= low for x in v)):
                kind = "non-negative" if low == 0 else "positive"
                raise ModelFileError(f"{source}: iounet.{k} must be two {kind} integers, got {v!r}")


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
        raise ModelFileError(f"{path} is a damaged or truncated safetensors file ({_short(exc)})") from None


def _load_own_format(given: Path, kind: str) -> AtomModel:
    json_path, st_path = _pair_paths(given)
    desc: dict | None = None
    if kind == "json":
        json_path = given
        desc = _read_json(given)
        _check_description(desc, given)
        weights_name = desc.get("weights")
        if isinstance(weights_name, str) and weights_name and Path(weights_name).name == weights_name:
            st_path = given.with_name(weights_name)  # a bare file name only: never follow paths out of the folder
        if not st_path.is_file():
            raise ModelFileError(f"{given}: its weights file {st_path.name} is missing (expected next to it)")
        if detect_kind(st_path) != "safetensors":
            raise ModelFileError(f"{st_path} is not a safetensors file")
    else:
        st_path = given
        if json_path.is_file() and detect_kind(json_path) == "json":
            candidate = _read_json(json_path)
            if candidate.get("format") == FORMAT_NAME and candidate.get("weights", st_path.name) == st_path.name:
                desc = candidate
                _check_description(desc, json_path)

    tensors, metadata = _read_safetensors(st_path)
    if desc is not None:
        expected = desc.get("weights_sha256")
        if isinstance(expected, str):
            actual = hashlib.sha256(st_path.read_bytes()).hexdigest()
            if actual != expected:
                raise ModelFileError(
                    f"{json_path.name} does not describe {st_path.name} (checksum differs): the two files were not "
                    "saved together; copy both files of the pair from the same save"
                )
    else:
        if metadata.get("format") == FORMAT_NAME and "atom_model" in metadata:
            try:
                desc = json.loads(metadata["atom_model"])
            except json.JSONDecodeError:
                raise ModelFileError(f"{st_path}: damaged model description in its metadata") from None
            if not isinstance(desc, dict):
                raise ModelFileError(f"{st_path}: damaged model description in its metadata")
            _check_description(desc, st_path)
        else:
            # A safetensors file of somebody else's: maybe a plain backbone state dict.
            return _model_from_torch_object(tensors, st_path)

    source = json_path if json_path.is_file() and kind == "json" else st_path
    unknown = sorted(k for k in tensors if not (k.startswith("backbone.") or k.startswith("iounet.")))
    if unknown:
        raise ModelFileError(f"{st_path}: unexpected weights {', '.join(unknown[:5])}")
    bb_state = _sub_state(tensors, "backbone.")
    io_state = _sub_state(tensors, "iounet.")
    if desc["backbone_weights"] == "packaged":
        if bb_state:
            raise ModelFileError(f"{st_path}: backbone weights stored although the description says \"packaged\"")
        backbone = _build_backbone(desc["backbone"], None, st_path)
    else:
        backbone = _build_backbone(desc["backbone"], bb_state, st_path)
    iounet = None
    if desc.get("iounet") is not None:
        iounet = _build_iounet(desc["iounet"], io_state, st_path)
    elif io_state:
        raise ModelFileError(f"{st_path}: IoU-Net weights stored but no iounet configuration in the description")
    info = {
        "source": str(source),
        "kind": "atom-model",
        "backbone": desc["backbone"],
        "preset": desc.get("preset") or ("default" if iounet is not None else "multiscale"),
        "model_card": desc.get("model_card") if isinstance(desc.get("model_card"), dict) else {},
    }
    if iounet is None:
        info["warning"] = "the model has no trained IoU-Net: the tracker runs as the multiscale preset"
    return AtomModel(backbone, iounet, info)


# --------------------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------------------
def _model_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(Path(__file__).resolve().parents[1] / "resources" / "models")
    return dirs


def default_model_path() -> Path | None:
    """The shipped default model's JSON: ``$ATOM_MODEL_DIR/default.json``, else the repo's ``resources/models``."""
    for folder in _model_dirs():
        candidate = folder / f"{DEFAULT_MODEL_STEM}.json"
        if candidate.is_file():
            return candidate
    return None


def _builtin_fallback() -> AtomModel:
    backbone = _build_backbone("efficientnet_lite0", None, None)
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
        json_path, st_path = _pair_paths(path)
        path = json_path if json_path.exists() else st_path if st_path.exists() else path
    kind = detect_kind(path)
    if kind in ("json", "safetensors"):
        model = _load_own_format(path, kind)
    else:
        model = _model_from_torch_object(read_torch_file(path), path)
    return model.eval()
