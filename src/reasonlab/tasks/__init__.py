"""Tasks: importing this package fills the ``TASKS`` registry."""

from reasonlab.tasks import arith, countdown, gsm8k, jsonl, math500  # noqa: F401
