"""Fixtures shared by every test area."""

from __future__ import annotations

from pathlib import Path

import pytest

# The server's databases, clock and in-process app, and the end-to-end set-ups (`flow`, `served`,
# `browser`): used by unit, integration, attack and interop tests of the server alike. A folder's
# conftest.py may override a name (the gate and limits tests have their own `clock`).
pytest_plugins = [
    "tests.support.server_fixtures",
    "tests.support.e2e_fixtures",
    "tests.support.migrations",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Third-party vectors vendored with the tests (RFC 7520 cookbook, Wycheproof); see SOURCES.md there.
VECTORS = Path(__file__).resolve().parent / "vectors"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """`tests/vectors`; a missing folder is an error, never a silent skip."""
    if not (VECTORS / "SOURCES.md").is_file():
        pytest.fail(f"test vectors not found at {VECTORS} (they are committed with the tests)")
    return VECTORS
