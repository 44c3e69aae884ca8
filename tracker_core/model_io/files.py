"""Recognising a model file by its first bytes, and reading ``torch.save`` files through the safe unpickler."""

from __future__ import annotations

import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelFileError
from .unpickling import RESTRICTED_PICKLE, RefusedGlobal, RestrictedUnpickler

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
    except RefusedGlobal as exc:
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
            f"{path} is damaged or truncated, or not a PyTorch checkpoint ({type(exc).__name__}: {short_message(exc)})"
        ) from None
    except MemoryError:
        raise ModelFileError(f"{path}: not enough memory to read it (damaged, or not a model file?)") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError, AttributeError,
            IndexError, struct.error, OSError, UnicodeDecodeError, AssertionError) as exc:
        raise ModelFileError(
            f"{path} is damaged or truncated, or not a PyTorch checkpoint ({type(exc).__name__}: {short_message(exc)})"
        ) from None


def short_message(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."
