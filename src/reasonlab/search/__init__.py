"""Inference-time scaling strategies; importing this package fills ``STRATEGIES``."""

from reasonlab.search import best_of_n, budget, stepwise, vote  # noqa: F401
from reasonlab.search.base import STRATEGIES, Result, SearchConfig, get_strategy

__all__ = ["STRATEGIES", "Result", "SearchConfig", "get_strategy"]
