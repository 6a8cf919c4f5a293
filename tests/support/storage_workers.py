"""Work done in separate processes by the multi-process tests (importable by `spawn` children)."""

from __future__ import annotations

import asyncio
import json
import time

from authgate.server.flows.refresh_tokens import RefreshPolicy, exchange_refresh_token
from authgate.server.models import RefreshFamily
from authgate.server.secret_key import generate_token
from authgate.server.storage import Database, SqlStorage
from tests.support.storage import T0, keyed_hash


def refresh_in_process(url: str, token: str, start_at: float, callers: int) -> list[str]:
    """Refresh `token` with `callers` concurrent coroutines from `start_at` on; each result is the
    response's new refresh token, or the error's class name."""
    return asyncio.run(_refresh(url, token, start_at, callers))


async def _refresh(url: str, token: str, start_at: float, callers: int) -> list[str]:
    storage = SqlStorage(Database(url))

    async def issue_pair(family: RefreshFamily, scopes: tuple[str, ...]) -> tuple[str, bytes]:
        new_token = generate_token()
        await asyncio.sleep(0.01)  # issuing takes a moment; the others pile up on the lock
        await storage.record_grant_token(family.grant_id, "jti-" + new_token[:16], T0 + 300)
        return keyed_hash(new_token), json.dumps({"refresh_token": new_token}).encode()

    async def one() -> str:
        try:
            sealed = await exchange_refresh_token(
                storage,
                storage,
                keyed_hash(token),
                client_id="c",
                scopes=None,
                clock=lambda: T0 + 1,
                policy=RefreshPolicy(),
                issue_pair=issue_pair,
            )
        except Exception as exc:  # reported to the parent, which asserts none
            return type(exc).__name__
        return str(json.loads(sealed)["refresh_token"])

    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        return list(await asyncio.gather(*(one() for _ in range(callers))))
    finally:
        await storage.close()
