"""Generation backends behind one ``Generator`` protocol; build one with ``factory.make_backend``."""

from reasonlab.backends.base import BACKENDS, Generator

__all__ = ["BACKENDS", "Generator"]
