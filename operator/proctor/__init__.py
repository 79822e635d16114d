"""Proctor: declarative evaluation of model-generated visual and executable programs."""

__version__ = "0.1.0"
