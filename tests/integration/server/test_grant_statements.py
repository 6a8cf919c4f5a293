"""The database work of each user grant, pinned (issue 14): the statements, and the rows they
write, of a warm authorization-code redemption, refresh and device-code redemption, on SQLite and
PostgreSQL. The counts are deterministic; a change that adds a round trip or a write fails here.

Each request is preceded by one of the same kind, so that only the grant's own work is counted
besides the registry lookups (client, its API access, user, API: uncached in the test harness).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from authgate.server.storage import SqlStorage
from tests.support.e2e import DEVICE_GRANT, WEB_REDIRECT, Flow, only_form
from tests.support.statements import StatementLog, counting_statements

_REGISTRY = ("clients", "client_api_access", "users", "apis")
# The client (with its API access), the user and the API are each read in a transaction.
_REGISTRY_TRANSACTIONS = 3


def _engine(flow: Flow) -> Any:
    storage = flow.harness.server.storage
    assert isinstance(storage, SqlStorage)
    return storage.database.engine


def _is_postgresql(flow: Flow) -> bool:
    return not _engine(flow).url.get_backend_name().startswith("sqlite")


def _grant_work(log: StatementLog) -> Counter[str]:
    """The work by kind, registry lookups left out (counted under `registry`). A statement that
    chains several writes (PostgreSQL's `WITH … AS (INSERT …)`) counts each of its writes."""
    kinds: Counter[str] = Counter()
    for sql in log.statements:
        words = sql.split()
        if words[0].upper() == "SELECT" and "FROM" in words:
            table = words[words.index("FROM") + 1]
            if table in _REGISTRY:
                kinds["registry"] += 1
                continue
        if "pg_advisory_xact_lock" in sql:
            kinds["guard"] += 1
            if words[0].upper() == "SELECT" and "FOR UPDATE" in sql:
                kinds["SELECT"] += 1  # the refresh's family, locked with the guard
            continue
        if words[0].upper() == "WITH":
            for i, word in enumerate(words):
                if word == "INSERT":
                    kinds[" ".join(words[i : i + 3])] += 1
                elif word == "UPDATE":
                    kinds["UPDATE"] += 1
            continue
        kinds[" ".join(words[:3]) if words[0].upper() == "INSERT" else words[0].upper()] += 1
    return kinds


async def _redeem(flow: Flow) -> tuple[dict[str, Any], StatementLog]:
    code = (await flow.web_code(scope="openid offline_access read"))["code"]
    with counting_statements(_engine(flow)) as log:
        answer = await flow.token(
            grant_type="authorization_code", code=code, redirect_uri=WEB_REDIRECT
        )
    assert answer.status_code == 200, answer.text
    return answer.json(), log


async def test_code_redemption(flow: Flow) -> None:
    await _redeem(flow)
    _, log = await _redeem(flow)
    # PostgreSQL: the grant guard once, for the one transaction of the grant's token records.
    guard = {"guard": 1} if _is_postgresql(flow) else {}
    assert _grant_work(log) == {
        "registry": 4,
        # the code consumed and returned by one UPDATE … RETURNING
        "UPDATE": 1,
        # the access token recorded under its grant; its jti revoked at once if the grant is
        "INSERT INTO grant_tokens": 1,
        "INSERT INTO revoked_jwts": 1,
        # the refresh-token family (born revoked if the grant is) and its first token
        "INSERT INTO refresh_families": 1,
        "INSERT INTO refresh_tokens": 1,
        **guard,
    }
    assert log.rows_written == 4  # the code, the jti, the family, its token
    # Statements (round trips) of the grant's own work: on PostgreSQL the code's UPDATE, the guard,
    # then one statement for the four inserts (the family's two, the jti's two).
    assert log.count - 4 == (3 if _is_postgresql(flow) else 5)
    # the code consumed (committed even if a check fails), then one for the records (PostgreSQL)
    assert log.transactions == _REGISTRY_TRANSACTIONS + (2 if _is_postgresql(flow) else 3)


async def test_refresh(flow: Flow) -> None:
    tokens, _ = await _redeem(flow)
    refreshed = await flow.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200
    with counting_statements(_engine(flow)) as log:
        answer = await flow.token(
            grant_type="refresh_token", refresh_token=refreshed.json()["refresh_token"]
        )
    assert answer.status_code == 200, answer.text
    guard = {"guard": 1} if _is_postgresql(flow) else {}
    assert _grant_work(log) == {
        "registry": 4,
        # the presented token with its family (locked on PostgreSQL), in one statement
        "SELECT": 1,
        "INSERT INTO grant_tokens": 1,
        "INSERT INTO revoked_jwts": 1,
        # the rotation: the family's changed columns, and the new token's hash
        "UPDATE": 1,
        "INSERT INTO refresh_tokens": 1,
        **guard,
    }
    assert log.rows_written == 3  # the jti, the family, the new token
    # PostgreSQL: the family locked with the guard of its grant, then one statement for the
    # rotation, the new token's hash and the jti's inserts: two statements
    assert log.count - 4 == (2 if _is_postgresql(flow) else 5)
    # PostgreSQL: the family's transaction holds the token record too; SQLite: read, record,
    # write, under the family's lock file
    assert log.transactions == _REGISTRY_TRANSACTIONS + (1 if _is_postgresql(flow) else 3)


async def _device_tokens(flow: Flow) -> StatementLog:
    started = await flow.post("/device_authorization", flow.native, scope="offline_access read")
    body = started.json()
    agent = flow.agent()
    login = await agent.http.get("/device")
    page = await agent.sign_in(login, "alice", "correct horse battery staple")
    confirm = await agent.submit(only_form(page), user_code=body["user_code"])
    await agent.submit(only_form(confirm), "approve")
    flow.harness.clock.advance(10)
    with counting_statements(_engine(flow)) as log:
        answer = await flow.token(
            flow.native, grant_type=DEVICE_GRANT, device_code=body["device_code"]
        )
    assert answer.status_code == 200, answer.text
    return log


async def test_device_code(flow: Flow) -> None:
    await _device_tokens(flow)
    log = await _device_tokens(flow)
    guard = {"guard": 1} if _is_postgresql(flow) else {}
    assert _grant_work(log) == {
        "registry": 4,
        # the poll: the record read, then handed out once by compare-and-set on its version
        "SELECT": 1,
        "UPDATE": 1,
        "INSERT INTO grant_tokens": 1,
        "INSERT INTO revoked_jwts": 1,
        "INSERT INTO refresh_families": 1,
        "INSERT INTO refresh_tokens": 1,
        **guard,
    }
    assert log.rows_written == 4  # the device authorization, the jti, the family, its token
    assert log.count - 4 == (4 if _is_postgresql(flow) else 6)
    assert log.transactions == _REGISTRY_TRANSACTIONS + (3 if _is_postgresql(flow) else 4)
