"""Errors for bad task data: messages name the file, line and field (defined in reasonlab.errors,
re-exported here for the task modules)."""

from reasonlab.errors import DataError

__all__ = ["DataError"]
