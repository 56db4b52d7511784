"""The errors meant for a user: each says what is wrong, with the bad value, in one line.

The CLI turns a ``HarnessError`` into that line (the traceback only with ``--debug``); any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error whose message is meant for the user, not the developer."""


class ConfigError(HarnessError, ValueError):
    """The benchmarks file or a recipes file is malformed; the message names file, entry and field."""


class DataError(HarnessError):
    """The dataset cannot be found, fails its checksum, or has the wrong shape, dtype or range."""


class WeightsMissing(HarnessError):
    """A backbone's pretrained weights are neither present nor downloadable, or fail their hash."""


class TrackingError(HarnessError):
    """The MLflow tracking store cannot be reached or used."""


class RecordError(HarnessError):
    """A run record under results/ cannot be read, or does not agree with itself; names the file."""
