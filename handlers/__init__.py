"""Thin handlers for single updates: commands, deep links, buttons."""
