"""Reward functions; importing this package fills ``REWARDS``."""

from reasonlab.rewards import accuracy, format, judge, language, length  # noqa: F401
from reasonlab.rewards.base import REWARDS, safe_call
from reasonlab.rewards.combine import combine

try:  # the code reward needs the sandbox
    from reasonlab.rewards import code  # noqa: F401
except ImportError:
    pass

__all__ = ["REWARDS", "combine", "safe_call"]
