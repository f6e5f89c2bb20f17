"""Errors a user is meant to read.

Anything raised as a `TuneDeskError` is shown as its message alone (CLI: one line on
stderr, GUI: a dialog); anything else is a bug and keeps its traceback for the log.
"""


class TuneDeskError(Exception):
    """A problem the user can act on; the message says what and where."""


class ModelError(TuneDeskError):
    """The model could not be found, downloaded, converted or loaded."""


class DataError(TuneDeskError):
    """The dataset file cannot be used."""


class ConfigError(TuneDeskError):
    """A setting is out of range or contradicts another one."""


class FitError(TuneDeskError):
    """The run cannot train on this card without losing what the user asked for (an
    empty step, or too much of the data cut away); the run ends as "failed"."""
