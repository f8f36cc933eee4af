"""Persistence: one SQLite database behind repository functions. No Telegram types here."""

from storage.db import Database, StorageError

__all__ = ["Database", "StorageError"]
