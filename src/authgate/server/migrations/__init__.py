"""Alembic migration scripts for the server's schema (run by `authgate db upgrade`)."""
