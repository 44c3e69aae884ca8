"""Safe unpickling: a pickle module that reads ``torch.save`` files without ever running code stored in them.

Pickle is a program, not data: ``torch.load`` would import pytracking's ``ltr`` package and run whatever the file
asks.  :data:`RESTRICTED_PICKLE` resolves only the tensor/storage rebuild functions and a few plain containers,
turns every ``ltr.*`` / ``pytracking.*`` / ``dlframework.*`` class into an inert :class:`StubObject` that only stores
what it is given, and refuses anything else with a :class:`ModelFileError` naming the refused global.
"""

from __future__ import annotations

import collections
import contextlib
import pickle
import types
from typing import Any

import torch

from ..errors import ModelFileError


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


class RefusedGlobal(ModelFileError):
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
        raise RefusedGlobal("copyreg._reconstructor on " + getattr(cls, "__qualname__", type(cls).__name__))
    return cls.__new__(cls)


def _stub_newobj(cls, *args):
    """``copyreg.__newobj__`` restricted to stub classes."""
    if not (isinstance(cls, type) and issubclass(cls, StubObject)):
        raise RefusedGlobal("copyreg.__newobj__ on " + getattr(cls, "__qualname__", type(cls).__name__))
    return cls.__new__(cls, *args)


def _numpy_globals() -> dict[str, Any]:
    """numpy scalar and array reconstruction (pure data; training statistics sometimes hold numpy floats)."""
    import numpy as np

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
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
        raise RefusedGlobal(qualname)


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
