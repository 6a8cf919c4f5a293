"""Fixtures shared by every test area."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VECTORS = PROJECT_ROOT.parent / "shared" / "vectors"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """`../shared/vectors`; a missing folder is an error, never a silent skip."""
    if not VECTORS.is_dir():
        pytest.fail(
            f"test vectors not found at {VECTORS} (expected ../shared/vectors beside the project)"
        )
    return VECTORS
