"""Shared test set-up: Qt runs headless, tests are deterministic, and data-dependent tests know where data is."""

import os
from pathlib import Path

# Must be set before any QApplication exists (pytest-qt creates one lazily).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
import torch  # noqa: E402

SHARED_DATA = Path(os.environ.get("ATOM_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real benchmark sequences); tests using it skip when it is absent, as on a user's machine."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sequences not available: {SHARED_DATA} is absent (only developers have it)")
    return SHARED_DATA.resolve()


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
