"""Signing keys: the rotation schedule (pure) and the manager that keeps each process on it."""

from authgate.server.keys.manager import KeyManager, NoSigningKey, Rotation

__all__ = ["KeyManager", "NoSigningKey", "Rotation"]
