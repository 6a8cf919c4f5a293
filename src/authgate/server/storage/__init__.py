"""Persistence of the authorization server: role Protocols with contracts, and SQL behind them."""

from authgate.server.storage.database import Database
from authgate.server.storage.protocols import AlreadyExistsError, Storage
from authgate.server.storage.sql import SqlStorage

__all__ = ["AlreadyExistsError", "Database", "SqlStorage", "Storage"]
