"""User-facing errors: one line that names the file, line or field; the CLI prints it without a
traceback (``cli/common.friendly_errors``)."""


class DataError(ValueError):
    """Bad input data or a bad run directory; the message starts with the file (and line)."""
