"""Tasks: importing this package fills the ``TASKS`` registry (see ``tasks/base.py``)."""

from reasonlab.tasks import aime, arith, countdown, gsm8k, jsonl, math500  # noqa: F401

try:  # written separately; needs the code sandbox
    from reasonlab.tasks import humaneval  # noqa: F401
except ImportError:
    pass
