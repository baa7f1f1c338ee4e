"""An OpenAI-compatible server over any Generator, with reasoning strategies as an extension."""

from reasonlab.serve.app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
