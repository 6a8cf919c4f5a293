"""Fixtures for the end-to-end tests of the user-facing flows (issue 4).

The server tests' fixtures (`tests/server/conftest.py`: a fresh PostgreSQL database per session, a
SQLite file, `database_url` parametrized over both, the movable clock) are reused by import, not
copied; so is their harness (`server_harness`), and the headless Chromium of the flow pages'
browser test (`browser`). `flow` is the in-process server with an API, a
confidential web client, a public native client and a user; `served` is a real `authgate serve`
process on loopback for the browser and the independent clients.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for _folder in (_HERE, _HERE.parent / "server", _HERE.parent / "server_flows"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from e2e_log_scan import captured_server_logs, scan_serve_log  # noqa: E402, F401 - autouse
from e2e_served import Served  # noqa: E402
from e2e_support import Flow, set_up_flow  # noqa: E402
from server_harness import FakeClock, make_config, running  # noqa: E402
from test_flow_pages_browser import browser  # noqa: E402, F401 - the shared headless Chromium


def _server_fixtures() -> object:
    spec = importlib.util.spec_from_file_location(
        "server_fixtures", _HERE.parent / "server" / "conftest.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_fixtures = _server_fixtures()
pg_url = _fixtures.pg_url  # type: ignore[attr-defined]
sqlite_url = _fixtures.sqlite_url  # type: ignore[attr-defined]
database_url = _fixtures.database_url  # type: ignore[attr-defined]
clock = _fixtures.clock  # type: ignore[attr-defined]


@pytest.fixture
async def flow(database_url: str, clock: FakeClock) -> AsyncIterator[Flow]:
    """The app in process on each backend, with an API, two clients and a user."""
    async with running(make_config(database_url), clock) as harness:
        yield await set_up_flow(harness)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`authgate serve` on a free loopback port, on each backend (a database of its own), set up
    like `flow`."""
    workdir = tmp_path_factory.mktemp("serve")
    url = f"sqlite:///{workdir / 'authgate.db'}" if request.param == "sqlite" else None
    server = Served.start(url, workdir)
    try:
        yield server
    finally:
        server.stop()
    # The whole module's requests to this process: no credential in its log.
    scan_serve_log(server.log, [server.web_secret])
