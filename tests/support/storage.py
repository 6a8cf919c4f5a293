"""Helpers of the SQL flow-store tests (a uniquely named module: test folders have no packages)."""

from __future__ import annotations

import hashlib
import hmac

from authgate.server.models import Client, User
from authgate.server.storage import Database, SqlStorage

T0 = 1_700_000_000
# The users and clients that `store_contracts` refers to (the SQL tables have foreign keys).
CONTRACT_USERS = ("u", "alice", "bob")
CONTRACT_CLIENTS = ("c", "tv", "app")


def keyed_hash(value: str) -> str:
    """Stands in for `ServerSecret.hash_token`."""
    return hmac.new(b"k" * 32, value.encode(), hashlib.sha256).hexdigest()


async def seed(storage: SqlStorage) -> None:
    """Create the contract's users (user_id == username) and public clients."""
    for user_id in CONTRACT_USERS:
        await storage.create_user(User(user_id=user_id, username=user_id, created_at=T0))
    for client_id in CONTRACT_CLIENTS:
        await storage.create_client(
            Client(
                client_id=client_id,
                name=client_id,
                auth_method="none",
                grant_types=("authorization_code", "refresh_token"),
                redirect_uris=("https://a/cb",),
                created_at=T0,
            )
        )


async def open_store(database_url: str, *, seeded: bool = True) -> SqlStorage:
    """A `SqlStorage` on `database_url` (already migrated and emptied by the fixtures)."""
    storage = SqlStorage(Database(database_url))
    if seeded:
        await seed(storage)
    return storage
