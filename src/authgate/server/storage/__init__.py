"""Persistence of the authorization server: the storage roles with their contracts (`protocols`),
SQL behind every one (`sql`), the flows' roles in memory (`memory`), and the registry cache."""

from authgate.server.storage.database import Database
from authgate.server.storage.protocols import AlreadyExistsError, Storage
from authgate.server.storage.sql import SqlStorage

__all__ = ["AlreadyExistsError", "Database", "SqlStorage", "Storage"]
