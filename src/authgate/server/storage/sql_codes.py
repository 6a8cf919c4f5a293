"""SQL implementation of `AuthorizationCodeStore` (contract in `storage.protocols`; RFC 6749 §4.1.2
and §10.5: a code is used once, and a second use is recognised so its tokens can be revoked)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from authgate.server.models import AuthorizationCode, CodeRedemption
from authgate.server.storage.sql_base import DriverStatement, SqlBase, integrity_error
from authgate.server.storage.tables import authorization_codes

__all__ = ["CODE_MEMORY", "SqlAuthorizationCodes"]

# A used or expired code is kept this long after `expires_at`, so that a replay within that time
# is recognised as one (and revokes the grant) instead of looking unknown.
CODE_MEMORY = 3600


# The conditional update that consumes a code and returns it, built once (none per call); on
# PostgreSQL run on the driver's connection (`DriverStatement`).
_CONSUME = (
    authorization_codes.update()
    .where(authorization_codes.c.code_hash == sa.bindparam("presented"))
    .where(authorization_codes.c.used_at.is_(None))
    .values(used_at=sa.bindparam("now"))
    .returning(*authorization_codes.c)
)
_CONSUME_POSTGRESQL = DriverStatement(_CONSUME)
# An unknown or replayed code: read back as it is.
_FIND = authorization_codes.select().where(
    authorization_codes.c.code_hash == sa.bindparam("presented")
)
_FIND_POSTGRESQL = DriverStatement(_FIND)


class SqlAuthorizationCodes(SqlBase):
    """Authorization codes in SQL."""

    async def save_code(self, code: AuthorizationCode) -> None:
        try:
            async with self._db.write() as conn:
                await conn.execute(
                    authorization_codes.insert().values(
                        code_hash=code.code_hash,
                        grant_id=code.grant_id,
                        client_id=code.client_id,
                        redirect_uri=code.redirect_uri,
                        redirect_uri_in_request=code.redirect_uri_in_request,
                        code_challenge=code.code_challenge,
                        scopes=list(code.scopes),
                        audiences=list(code.audiences),
                        nonce=code.nonce,
                        user_id=code.user_id,
                        auth_time=code.auth_time,
                        amr=list(code.amr),
                        issued_at=code.issued_at,
                        expires_at=code.expires_at,
                        used_at=None,
                        dpop_jkt=code.dpop_jkt,
                    )
                )
        except IntegrityError as exc:
            raise integrity_error(exc, "the authorization code") from None

    async def consume_code(self, code_hash: str, now: int) -> CodeRedemption | None:
        # The conditional update decides the race: only one caller finds used_at empty, and it
        # gets the code back from the same statement. Each statement is its own transaction: the
        # consumption is committed before the caller checks the code (a failed check uses it
        # up), with no BEGIN/COMMIT round trips.
        values = {"presented": code_hash, "now": now}
        if not self._db.is_sqlite:
            # On the driver's connection, outside a transaction.
            async with self._db.driver(begins=False) as driver:
                rows = await _CONSUME_POSTGRESQL.fetch(driver, values)
                if rows:
                    return CodeRedemption(_code(rows[0]), first_use=True)
                # Unknown, or used before (a replay, whose grant the caller revokes).
                rows = await _FIND_POSTGRESQL.fetch(driver, values)
            return CodeRedemption(_code(rows[0]), first_use=False) if rows else None
        async with self._db.autocommit() as conn:
            marked = (await conn.execute(_CONSUME, values)).first()
            if marked is not None:
                return CodeRedemption(_code(marked._mapping), first_use=True)
            row = (await conn.execute(_FIND, values)).first()
        if row is None:
            return None
        return CodeRedemption(_code(row._mapping), first_use=False)


def _code(row: Any) -> AuthorizationCode:
    return AuthorizationCode(
        code_hash=row["code_hash"],
        grant_id=row["grant_id"],
        client_id=row["client_id"],
        redirect_uri=row["redirect_uri"],
        redirect_uri_in_request=bool(row["redirect_uri_in_request"]),
        code_challenge=row["code_challenge"],
        scopes=tuple(row["scopes"]),
        audiences=tuple(row["audiences"]),
        nonce=row["nonce"],
        user_id=row["user_id"],
        auth_time=row["auth_time"],
        amr=tuple(row["amr"]),
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        dpop_jkt=row["dpop_jkt"],
    )
