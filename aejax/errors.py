"""Error classes raised by aejax's public entry points.

Every class derives from a standard exception so that callers can catch either the
specific aejax class or the usual Python one. Messages are one sentence saying what was
wrong and what to do.
"""


class AejaxError(Exception):
    """Base class of every error aejax raises on purpose."""


class ConfigError(AejaxError, ValueError):
    """A configuration key or value is invalid (unknown key, impossible value)."""


class DataError(AejaxError, ValueError):
    """Input data has the wrong shape, dtype or values (NaNs, out of range)."""


class DatasetNotFoundError(AejaxError, FileNotFoundError):
    """A dataset's files were not found in any of the searched places."""


class ExperimentNotFoundError(AejaxError, FileNotFoundError):
    """An experiment name or path does not resolve to an experiment file."""


class NonFiniteError(AejaxError, FloatingPointError):
    """Training produced a non-finite loss or gradient."""

    def __init__(self, message: str, *, step: int, terms: tuple[str, ...]):
        super().__init__(message)
        self.step = step
        self.terms = terms


class CheckpointError(AejaxError, RuntimeError):
    """A checkpoint cannot be restored (damaged, or from a different configuration)."""
