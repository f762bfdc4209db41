"""Shape checks at the objectives' entry points, through chex.

A loss term called with the wrong shapes fails at once (at trace time under `jit`, before any
compile) with a `DataError` naming the function, the shapes it got and the shapes it wants,
instead of broadcasting silently or failing deep inside the trace.
"""

from __future__ import annotations

from aejax.errors import DataError


def says(where: str) -> dict:
    """The keyword arguments that make a chex assertion raise `DataError` with `where` in its message."""
    return {"custom_message": where, "exception_type": DataError}
