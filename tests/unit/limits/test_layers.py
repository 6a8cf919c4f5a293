"""authgate.limits sits at the bottom, beside authgate.oauth: the server and the gate both use it,
so it must import neither of them (nor the verifier, policy, middleware or CLI)."""

from __future__ import annotations

import ast
from pathlib import Path

import authgate.limits

PACKAGE = Path(authgate.limits.__file__).parent
ALLOWED = ("authgate.limits", "authgate.oauth")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_limits_imports_nothing_above_it() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 9
    for path in modules:
        for name in _imports(path):
            if name == "authgate" or name.startswith("authgate."):
                assert name.startswith(ALLOWED), f"{path.name} imports {name}"


def test_public_api() -> None:
    assert sorted(authgate.limits.__all__) == [
        "DEFAULT_TIMEOUT",
        "Decision",
        "FailMode",
        "Limit",
        "Limiter",
        "LimiterMetrics",
        "LimitsCollector",
        "Rate",
        "RateLimited",
        "Refusal",
        "Store",
        "StoreUnavailable",
        "open_store",
        "parse_rate",
        "rate_limit_headers",
        "refusal",
    ]
    for name in authgate.limits.__all__:
        assert hasattr(authgate.limits, name)
