"""SQL implementation of `ApiStore`, `ClientStore` and `UserStore` (see their contracts)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from authgate.server.models import Api, ApiAccess, Client, User
from authgate.server.storage.protocols import AlreadyExistsError, ClientRecords
from authgate.server.storage.retention import Retention
from authgate.server.storage.sql_base import SqlBase, storable
from authgate.server.storage.tables import (
    apis,
    authorization_codes,
    client_api_access,
    clients,
    consents,
    opaque_access_tokens,
    refresh_families,
    users,
)

# Rows that belong to a client without a foreign key to `clients` (a client named by its metadata
# document URL has them too): deleted with the client here, as the cascade did before.
_CLIENT_ROWS = (authorization_codes, consents, refresh_families, opaque_access_tokens)

__all__ = ["SqlRegistry"]


class SqlRegistry(SqlBase):
    """APIs, clients and users in SQL."""

    _retention: Retention

    # -- APIs -----------------------------------------------------------------------------------

    async def get_api(self, identifier: str) -> Api | None:
        if not storable(identifier):
            return None
        async with self._db.begin() as conn:
            row = (await conn.execute(apis.select().where(apis.c.identifier == identifier))).first()
        return _api(row._mapping) if row else None

    async def list_apis(self) -> list[Api]:
        async with self._db.begin() as conn:
            rows = await conn.execute(apis.select().order_by(apis.c.identifier))
            return [_api(row._mapping) for row in rows]

    async def create_api(self, api: Api) -> None:
        values = {
            "identifier": api.identifier,
            "name": api.name,
            "scopes": list(api.scopes),
            "token_format": api.token_format,
            "access_token_ttl": api.access_token_ttl,
            "signing_alg": api.signing_alg,
            "created_at": api.created_at,
        }
        try:
            async with self._db.write() as conn:
                await conn.execute(apis.insert().values(values))
        except IntegrityError:
            raise AlreadyExistsError(f"an API with identifier {api.identifier!r} exists") from None

    async def delete_api(self, identifier: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(apis.delete().where(apis.c.identifier == identifier))
        return bool(result.rowcount)

    # -- clients --------------------------------------------------------------------------------

    async def get_client(self, client_id: str) -> Client | None:
        if not storable(client_id):
            return None
        async with self._db.begin() as conn:
            row = (
                await conn.execute(clients.select().where(clients.c.client_id == client_id))
            ).first()
            if row is None:
                return None
            access = await conn.execute(
                client_api_access.select()
                .where(client_api_access.c.client_id == client_id)
                .order_by(client_api_access.c.api)
            )
            return _client(row._mapping, [_access(a._mapping) for a in access])

    async def list_clients(self) -> list[Client]:
        async with self._db.begin() as conn:
            rows = (
                await conn.execute(clients.select().order_by(clients.c.name, clients.c.client_id))
            ).all()
            grants: dict[str, list[ApiAccess]] = {}
            for a in await conn.execute(
                client_api_access.select().order_by(client_api_access.c.api)
            ):
                grants.setdefault(a.client_id, []).append(_access(a._mapping))
        return [_client(row._mapping, grants.get(row.client_id, [])) for row in rows]

    async def list_unregistered_clients(
        self, now: int, client_id: str | None = None
    ) -> list[ClientRecords]:
        if client_id is not None and not storable(client_id):
            return []
        keep = self._retention
        live: tuple[tuple[str, sa.Table, tuple[sa.ColumnElement[bool], ...]], ...] = (
            ("consents", consents, ()),
            (
                "refresh_families",
                refresh_families,
                (
                    refresh_families.c.revoked_at.is_(None),
                    refresh_families.c.created_at > now - keep.refresh_absolute,
                    refresh_families.c.current_issued_at > now - keep.refresh_idle,
                ),
            ),
            (
                "opaque_access_tokens",
                opaque_access_tokens,
                (
                    opaque_access_tokens.c.revoked.is_(False),
                    opaque_access_tokens.c.expires_at > now,
                ),
            ),
            (
                "authorization_codes",
                authorization_codes,
                (
                    authorization_codes.c.used_at.is_(None),
                    authorization_codes.c.expires_at > now,
                ),
            ),
        )
        counts: dict[str, dict[str, int]] = {}
        async with self._db.begin() as conn:
            for name, table, conditions in live:
                query = (
                    sa.select(table.c.client_id, sa.func.count())
                    .where(table.c.client_id.not_in(sa.select(clients.c.client_id)), *conditions)
                    .group_by(table.c.client_id)
                )
                if client_id is not None:
                    query = query.where(table.c.client_id == client_id)
                for owner, count in await conn.execute(query):
                    counts.setdefault(owner, {})[name] = count
        return [ClientRecords(owner, **counts[owner]) for owner in sorted(counts)]

    async def create_client(self, client: Client) -> None:
        values = {
            "client_id": client.client_id,
            "origin": client.origin,
            "first_used_at": client.first_used_at,
            "created_at": client.created_at,
            **_client_values(client),
        }
        try:
            async with self._db.write() as conn:
                await conn.execute(clients.insert().values(values))
                await _insert_access(conn, client)
        except IntegrityError:
            raise AlreadyExistsError(f"a client with id {client.client_id!r} exists") from None

    async def replace_client(self, client: Client) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(
                clients.update()
                .where(clients.c.client_id == client.client_id)
                .values(_client_values(client))
            )
            if not result.rowcount:
                return False
            await conn.execute(
                client_api_access.delete().where(client_api_access.c.client_id == client.client_id)
            )
            await _insert_access(conn, client)
        return True

    async def mark_client_used(self, client_id: str, now: int) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                clients.update()
                .where(clients.c.client_id == client_id, clients.c.first_used_at.is_(None))
                .values(first_used_at=now)
            )

    async def delete_client(self, client_id: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(clients.delete().where(clients.c.client_id == client_id))
            if result.rowcount:
                await _delete_client_rows(conn, client_id)
        return bool(result.rowcount)

    async def delete_unregistered_client(self, client_id: str) -> bool:
        if not storable(client_id):
            return False
        async with self._db.write() as conn:
            registered = await conn.execute(
                sa.select(clients.c.client_id).where(clients.c.client_id == client_id)
            )
            if registered.first() is not None:
                return False
            return bool(await _delete_client_rows(conn, client_id))

    async def set_client_secret(
        self,
        client_id: str,
        secret_hash: str,
        previous_secret_hash: str | None,
        previous_secret_expires_at: int | None,
    ) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(
                clients.update()
                .where(clients.c.client_id == client_id)
                .values(
                    secret_hash=secret_hash,
                    previous_secret_hash=previous_secret_hash,
                    previous_secret_expires_at=previous_secret_expires_at,
                )
            )
        return bool(result.rowcount)

    # -- users ----------------------------------------------------------------------------------

    async def get_user(self, user_id: str) -> User | None:
        return await self._one_user(users.c.user_id == user_id) if storable(user_id) else None

    async def get_user_by_username(self, username: str) -> User | None:
        if not storable(username):
            return None
        return await self._one_user(users.c.username == username)

    async def _one_user(self, condition: sa.ColumnElement[bool]) -> User | None:
        async with self._db.begin() as conn:
            row = (await conn.execute(users.select().where(condition))).first()
        return _user(row._mapping) if row else None

    async def list_users(self) -> list[User]:
        async with self._db.begin() as conn:
            rows = await conn.execute(users.select().order_by(users.c.username))
            return [_user(row._mapping) for row in rows]

    async def create_user(self, user: User) -> None:
        values = {
            "user_id": user.user_id,
            "username": user.username,
            "password_hash": user.password_hash,
            "email": user.email,
            "email_verified": user.email_verified,
            "name": user.name,
            "roles": list(user.roles),
            "created_at": user.created_at,
        }
        try:
            async with self._db.write() as conn:
                await conn.execute(users.insert().values(values))
        except IntegrityError:
            raise AlreadyExistsError(f"a user named {user.username!r} exists") from None

    async def delete_user(self, username: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(users.delete().where(users.c.username == username))
        return bool(result.rowcount)

    async def set_password_hash(self, username: str, password_hash: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(
                users.update()
                .where(users.c.username == username)
                .values(password_hash=password_hash)
            )
        return bool(result.rowcount)

    async def set_user_profile(
        self, username: str, *, email: str | None, email_verified: bool, name: str | None
    ) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(
                users.update()
                .where(users.c.username == username)
                .values(email=email, email_verified=email_verified, name=name)
            )
        return bool(result.rowcount)


async def _delete_client_rows(conn: AsyncConnection, client_id: str) -> int:
    """Delete the rows stored under `client_id` (`_CLIENT_ROWS`), whether or not a registered
    client has it; how many."""
    deleted = 0
    for table in _CLIENT_ROWS:  # refresh_tokens go with their families (cascade)
        result = await conn.execute(table.delete().where(table.c.client_id == client_id))
        deleted += result.rowcount or 0
    return deleted


def _client_values(client: Client) -> dict[str, Any]:
    """The columns an update replaces (all but the id, creation, origin and first use)."""
    return {
        "name": client.name,
        "auth_method": client.auth_method,
        "grant_types": list(client.grant_types),
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "require_pkce": client.require_pkce,
        "always_issue_refresh_token": client.always_issue_refresh_token,
        "require_dpop": client.require_dpop,
        "id_token_signed_response_alg": client.id_token_alg,
        "profile": client.profile,
        "roles": list(client.roles),
        "jwks": dict(client.jwks) if client.jwks else None,
        "jwks_uri": client.jwks_uri,
        "require_pushed_requests": client.require_pushed_requests,
        "exchange_impersonation": client.exchange_impersonation,
        "exchange_external": client.exchange_external,
        "secret_hash": client.secret_hash,
        "previous_secret_hash": client.previous_secret_hash,
        "previous_secret_expires_at": client.previous_secret_expires_at,
        "application_type": client.application_type,
        "registration_token_hash": client.registration_token_hash,
    }


async def _insert_access(conn: AsyncConnection, client: Client) -> None:
    """The client's access list; `LookupError` (the transaction rolls back) for an unknown API."""
    for entry in client.access:
        known = await conn.execute(
            sa.select(apis.c.identifier).where(apis.c.identifier == entry.api)
        )
        if known.first() is None:
            raise LookupError(f"no API with identifier {entry.api!r}")
        await conn.execute(
            client_api_access.insert().values(
                client_id=client.client_id,
                api=entry.api,
                scopes=list(entry.scopes),
                may_request=entry.may_request,
                may_introspect=entry.may_introspect,
            )
        )


def _api(row: Any) -> Api:
    return Api(
        identifier=row["identifier"],
        name=row["name"],
        scopes=tuple(row["scopes"]),
        token_format=row["token_format"],
        access_token_ttl=row["access_token_ttl"],
        signing_alg=row["signing_alg"],
        created_at=row["created_at"],
    )


def _access(row: Any) -> ApiAccess:
    return ApiAccess(
        api=row["api"],
        scopes=tuple(row["scopes"]),
        may_request=bool(row["may_request"]),
        may_introspect=bool(row["may_introspect"]),
    )


def _client(row: Any, access: list[ApiAccess]) -> Client:
    return Client(
        client_id=row["client_id"],
        name=row["name"],
        auth_method=row["auth_method"],
        grant_types=tuple(row["grant_types"]),
        access=tuple(access),
        redirect_uris=tuple(row["redirect_uris"]),
        post_logout_redirect_uris=tuple(row["post_logout_redirect_uris"]),
        require_pkce=bool(row["require_pkce"]),
        always_issue_refresh_token=bool(row["always_issue_refresh_token"]),
        require_dpop=bool(row["require_dpop"]),
        id_token_alg=row["id_token_signed_response_alg"] or "RS256",
        profile=row["profile"],
        roles=tuple(row["roles"]),
        jwks=row["jwks"],
        jwks_uri=row["jwks_uri"],
        require_pushed_requests=bool(row["require_pushed_requests"]),
        exchange_impersonation=bool(row["exchange_impersonation"]),
        exchange_external=bool(row["exchange_external"]),
        secret_hash=row["secret_hash"],
        previous_secret_hash=row["previous_secret_hash"],
        previous_secret_expires_at=row["previous_secret_expires_at"],
        created_at=row["created_at"],
        origin=row["origin"],
        application_type=row["application_type"],
        registration_token_hash=row["registration_token_hash"],
        first_used_at=row["first_used_at"],
    )


def _user(row: Any) -> User:
    return User(
        user_id=row["user_id"],
        username=row["username"],
        password_hash=row["password_hash"],
        email=row["email"],
        email_verified=bool(row["email_verified"]),
        name=row["name"],
        roles=tuple(row["roles"]),
        created_at=row["created_at"],
    )
