"""Fixtures shared by every test area."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Third-party vectors vendored with the tests (RFC 7520 cookbook, Wycheproof); see SOURCES.md there.
VECTORS = Path(__file__).resolve().parent / "vectors"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """`tests/vectors`; a missing folder is an error, never a silent skip."""
    if not (VECTORS / "SOURCES.md").is_file():
        pytest.fail(f"test vectors not found at {VECTORS} (they are committed with the tests)")
    return VECTORS
