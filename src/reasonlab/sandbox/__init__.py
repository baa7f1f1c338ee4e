"""Run model-written code: it is hostile by default. See execute.py and docs/sandbox.md."""

from reasonlab.sandbox.execute import Result, execute, execute_many
from reasonlab.sandbox.isolation import bwrap_path

__all__ = ["Result", "bwrap_path", "execute", "execute_many"]
