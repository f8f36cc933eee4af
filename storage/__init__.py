"""Persistence: SQLite or PostgreSQL behind one set of repository functions. No Telegram
types here."""

from storage.db import Database, StorageError, StorageUnavailable, open_database

__all__ = ["Database", "StorageError", "StorageUnavailable", "open_database"]
