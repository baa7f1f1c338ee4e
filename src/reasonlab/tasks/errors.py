"""Errors for bad task data: messages name the file, line and field."""


class DataError(ValueError):
    pass
