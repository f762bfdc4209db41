"""Durations: a count with its unit, converted to steps or epochs in one place.

Every config value that says how long or how often (optimizer warm-up and decay, the KL
warm-up and cycle, the sparse kind's dead-unit window, evaluation and checkpoint cadence)
takes either a bare number in the option's own unit, or text with a unit:

    "500 steps"   "3 epochs"   "10%" (of the run's steps or epochs)   "5 minutes", "90 s", "1 h"

Units are case-insensitive ("1E3 Steps"). Steps are whole ("2.5 steps" is refused), and so are
epochs where the option counts whole epochs (a cadence: "1.5 epochs" is refused there, while a
warm-up of "0.5 epochs" is half an epoch's steps). A share or a number of epochs becomes steps by
rounding to the nearest step, halves up ("10%" of 25 steps is 3, of 35 is 4, of 95 is 10).
Wall-clock units are allowed only where `parse` is given "seconds" among `units`
(checkpoint cadence). Like `aejax.errors`, every layer may import it; it imports only `aejax.errors`.
"""

from __future__ import annotations

import dataclasses
import math
import re

from aejax.errors import ConfigError

_UNIT_WORDS = {
    "step": "steps", "steps": "steps",
    "epoch": "epochs", "epochs": "epochs",
    "%": "percent", "percent": "percent",
    "s": "seconds", "sec": "seconds", "second": "seconds", "seconds": "seconds",
    "min": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hour": "hours", "hours": "hours",
}
_SECONDS = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0}


@dataclasses.dataclass(frozen=True)
class Duration:
    """`amount` of `unit`: "steps", "epochs", "percent" (of the run) or "seconds"."""

    amount: float
    unit: str

    def steps(self, *, steps_per_epoch: int, total_steps: int) -> int:
        """The duration in training steps (rounded to the nearest step, halves up)."""
        if self.unit == "steps":
            return _nearest(self.amount)
        if self.unit == "epochs":
            return _nearest(self.amount * steps_per_epoch)
        if self.unit == "percent":
            return _nearest(self.amount * total_steps / 100.0)
        raise ConfigError(f"a wall-clock duration ({self}) cannot be a number of steps.")

    def epochs(self, *, epochs: int) -> int:
        """The duration in whole epochs, at least one (a cadence): `percent` of `epochs`, rounded up."""
        if self.unit == "epochs":
            return max(1, int(math.ceil(self.amount)))
        if self.unit == "percent":
            return max(1, int(math.ceil(self.amount / 100.0 * epochs)))
        raise ConfigError(f"{self} is not a number of epochs.")

    def __str__(self) -> str:
        amount = int(self.amount) if float(self.amount).is_integer() else self.amount
        return f"{amount}%" if self.unit == "percent" else f"{amount} {self.unit}"


def parse(value, *, key: str, default_unit: str, units: tuple[str, ...]) -> Duration:
    """`value` (a number in `default_unit`, or text with a unit) as a Duration in one of `units`.

    Raises ConfigError naming `key` and the forms it accepts.
    """
    forms = " or ".join(_EXAMPLES[u] for u in units)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{key} takes a duration ({forms}), got {value!r}.")
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*([A-Za-z%]+)\s*", value, re.IGNORECASE)
        unit = _UNIT_WORDS.get(match.group(2).lower()) if match else None
        if unit is None:
            raise ConfigError(f"{key}={value!r} is not a duration; write {forms}.")
        amount = float(match.group(1))
        if unit in _SECONDS:
            amount, unit = amount * _SECONDS[unit], "seconds"
    else:
        amount, unit = float(value), default_unit
    if unit not in units:
        raise ConfigError(f"{key}={value!r}: a duration in {unit} is not accepted here; write {forms}.")
    if amount < 0 or not math.isfinite(amount):
        raise ConfigError(f"{key}={value!r} must be a finite, non-negative duration.")
    if not amount.is_integer() and (unit == "steps" or unit == default_unit == "epochs"):
        raise ConfigError(f"{key}={value!r}: {key} counts whole {unit}; write a whole number of {unit}"
                          + (" (or '10%', '0.5 epochs')." if unit == "steps" else " (or a share such as '10%')."))
    return Duration(amount, unit)


def _nearest(x: float) -> int:
    """x rounded to the nearest integer, halves up (Python's round() takes halves to even)."""
    return int(math.floor(x + 0.5))


_EXAMPLES = {"steps": "steps ('500 steps')", "epochs": "epochs ('3 epochs')", "percent": "a share of the run ('10%')",
             "seconds": "wall-clock time ('5 minutes', '90 s')"}

__all__ = ["Duration", "parse"]
