"""reasonlab: build, improve and evaluate reasoning language models on a budget."""

__version__ = "0.1.0"
