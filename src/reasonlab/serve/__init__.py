"""OpenAI-compatible serving with reasoning strategies (``reasonlab serve``)."""

from reasonlab.serve.app import create_app
from reasonlab.serve.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]
