"""SQL implementation of `GrantStore`: what was issued under an authorization grant, and revoking
all of it at once (RFC 6749 §4.1.2 and §10.5 code replay; RFC 9700 §4.14.2 refresh-token reuse;
RFC 7009 §2.1).

A grant is one authorization code, device authorization or the refresh-token family they start.
Its JWT access tokens are listed in `grant_tokens`, its opaque ones carry `grant_id`, and its
refresh-token family carries it too. Revoking writes a marker (`revoked_grants`, kept a day) so
that a token recorded a moment later, by a redemption racing the replay that revoked the grant,
is stored revoked; the grant guard of `SqlBase` orders the two.
"""

from __future__ import annotations

import sqlalchemy as sa

from authgate.server.storage.protocols import TokensRevoked
from authgate.server.storage.sql_base import SqlBase, execute
from authgate.server.storage.tables import (
    grant_tokens,
    opaque_access_tokens,
    refresh_families,
    revoked_grants,
    revoked_jwts,
)

__all__ = ["REVOKED_GRANT_MEMORY", "SqlGrants"]

# How long a revoked grant is remembered for tokens that are recorded after the revocation. Only
# a flow that passed its checks before the revocation can still record one, within seconds.
REVOKED_GRANT_MEMORY = 86400


class SqlGrants(SqlBase):
    """Grant bookkeeping in SQL."""

    async def record_grant_token(self, grant_id: str, jti: str, expires_at: int) -> None:
        if not self._db.is_sqlite:
            listed = self._listing(grant_id)
            if listed is not None:
                # In the grant's transaction: written with its last statement, no round trip of
                # its own (`SqlBase._joining_grant`, `grant_transaction`).
                listed.append((jti, expires_at))
                return
            async with self._grant_write(grant_id) as conn:
                await self._record_listed(conn, [(jti, expires_at)], grant_id)
            return
        async with self._grant_write(grant_id) as conn:
            await execute(
                conn,
                self._insert(grant_tokens)
                .values(jti=jti, grant_id=grant_id, expires_at=expires_at)
                .on_conflict_do_nothing(index_elements=["jti"]),
            )
            # Already revoked (a redemption racing the replay that revoked the grant): the jti
            # goes on the revocation list at once, decided in the same statement.
            await execute(
                conn,
                self._insert(revoked_jwts)
                .from_select(
                    ["jti", "expires_at"],
                    sa.select(
                        sa.literal(jti, sa.String), sa.literal(expires_at, sa.BigInteger)
                    ).where(self._revoked_marker(grant_id)),
                )
                .on_conflict_do_nothing(index_elements=["jti"]),
            )

    async def revoke_grant(self, grant_id: str, now: int) -> None:
        async with self._family_lock.hold():
            # First the marker and the access tokens, under the grant guard: every token recorded
            # before is listed now, every one recorded after sees the marker.
            async with self._db.write() as conn:
                await self._guard_grant(conn, grant_id, exclusive=True)
                await conn.execute(
                    self._insert(revoked_grants)
                    .values(
                        grant_id=grant_id, revoked_at=now, expires_at=now + REVOKED_GRANT_MEMORY
                    )
                    .on_conflict_do_nothing(index_elements=["grant_id"])
                )
                listed = sa.select(grant_tokens.c.jti, grant_tokens.c.expires_at).where(
                    grant_tokens.c.grant_id == grant_id, grant_tokens.c.expires_at > now
                )
                await conn.execute(
                    self._insert(revoked_jwts)
                    .from_select(["jti", "expires_at"], listed)
                    .on_conflict_do_nothing(index_elements=["jti"])
                )
                await conn.execute(
                    opaque_access_tokens.update()
                    .where(opaque_access_tokens.c.grant_id == grant_id)
                    .where(opaque_access_tokens.c.revoked.is_(False))
                    .values(revoked=True)
                )
            # Then the families, outside the guard: this waits for a refresh holding a family's
            # lock (whose new tokens, recorded meanwhile, met the marker), and a family created
            # from now on is stored revoked (`create_family` checks the marker).
            async with self._db.write() as conn:
                await conn.execute(
                    refresh_families.update()
                    .where(refresh_families.c.grant_id == grant_id)
                    .where(refresh_families.c.revoked_at.is_(None))
                    .values(revoked_at=now, replay=None)
                )

    async def revoke_user_grants(self, user_id: str, client_id: str | None, now: int) -> int:
        query = sa.select(refresh_families.c.grant_id).where(
            refresh_families.c.user_id == user_id, refresh_families.c.revoked_at.is_(None)
        )
        if client_id is not None:
            query = query.where(refresh_families.c.client_id == client_id)
        async with self._db.begin() as conn:
            grant_ids = sorted(set((await conn.execute(query)).scalars()))
        for grant_id in grant_ids:
            await self.revoke_grant(grant_id, now)
        return len(grant_ids)

    async def revoke_tokens_of(
        self, *, client_id: str | None = None, user_id: str | None = None, now: int
    ) -> TokensRevoked:
        if (client_id is None) == (user_id is None):
            raise ValueError("revoke_tokens_of takes a client_id or a user_id")
        families = sa.select(refresh_families.c.grant_id).where(
            refresh_families.c.revoked_at.is_(None)
        )
        live = (opaque_access_tokens.c.revoked.is_(False), opaque_access_tokens.c.expires_at > now)
        if client_id is not None:
            families = families.where(refresh_families.c.client_id == client_id)
            owned = opaque_access_tokens.c.client_id == client_id
        else:
            families = families.where(refresh_families.c.user_id == user_id)
            owned = opaque_access_tokens.c.subject == user_id
        opaque_grants = sa.select(opaque_access_tokens.c.grant_id).where(
            owned, *live, opaque_access_tokens.c.grant_id.is_not(None)
        )
        async with self._db.begin() as conn:
            grant_ids = set((await conn.execute(families)).scalars())
            grant_ids |= {g for g in (await conn.execute(opaque_grants)).scalars() if g}
        for grant_id in sorted(grant_ids):
            await self.revoke_grant(grant_id, now)
        # Opaque tokens outside any grant (client_credentials): marked one by one in one update.
        async with self._db.write() as conn:
            result = await conn.execute(
                opaque_access_tokens.update().where(owned, *live).values(revoked=True)
            )
        return TokensRevoked(len(grant_ids), result.rowcount or 0)
