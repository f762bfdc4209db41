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
    """A checkpoint cannot be written or restored (a full disk, damaged, or from a different configuration)."""


class CheckpointStructureError(CheckpointError):
    """A checkpoint was written by a structurally different configuration (other entries or shapes): an older
    checkpoint of the same run would differ too, so a restore does not fall back past it."""


def unknown_key(key: str, known) -> ConfigError:
    """The error for a config key nothing understands: "unknown config key 'a.b'; did you mean 'a.c'?"."""
    import difflib

    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known) or 'none'}."
    return ConfigError(f"unknown config key {key!r}; {hint}")


def check_known(given, known, *, prefix: str = "", why=None) -> None:
    """The one check of option names: the first name in `given` that is not in `known` is a ConfigError saying
    who uses it (`why(name)`, a sentence or None) or, when nothing does, "unknown config key ...; did you mean"."""
    known = list(known)
    for name in given:
        if name not in known:
            reason = why(name) if why is not None else None
            raise ConfigError(reason) if reason else unknown_key(prefix + name, [prefix + k for k in known])
