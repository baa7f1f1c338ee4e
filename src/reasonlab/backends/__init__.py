"""Generation backends behind one ``Generator`` protocol (see base.py)."""

from reasonlab.backends.base import BACKENDS, Generator, make_backend

__all__ = ["BACKENDS", "Generator", "make_backend"]
