"""The one error type of the data package."""
from __future__ import annotations


class DataError(ValueError):
    """Data that cannot be used; the one-line message names the config key or the file."""
