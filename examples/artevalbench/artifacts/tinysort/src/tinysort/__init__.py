"""TinySort: comparison counts of three sorting algorithms on small arrays."""

__version__ = "1.0.0"
