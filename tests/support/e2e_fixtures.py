"""Fixtures for the end-to-end tests of the user-facing flows (issue 4).

Loaded for every test by `tests/conftest.py` (`pytest_plugins`), beside the server fixtures
(`server_fixtures`: a fresh PostgreSQL database per session, a SQLite file, `database_url`
parametrized over both, the movable clock); the headless Chromium is `support.browser`. `flow` is
the in-process server with an API, a confidential web client, a public native client and a user;
`served` is a real `authgate serve` process on loopback for the browser and the independent
clients.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.browser import browser  # noqa: F401 - the shared headless Chromium
from tests.support.e2e import Flow, set_up_flow
from tests.support.e2e_served import Served
from tests.support.server_harness import FakeClock, make_config, running


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
