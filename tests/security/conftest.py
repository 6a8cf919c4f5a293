"""Fixtures for the security regression tests (one file per area).

The gateway tests' real servers (`tests/gateway/gateway_support.py`) are reused: this folder puts
that folder on the import path so that it can run on its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

_GATEWAY_TESTS = Path(__file__).resolve().parent.parent / "gateway"
if str(_GATEWAY_TESTS) not in sys.path:
    sys.path.insert(0, str(_GATEWAY_TESTS))
