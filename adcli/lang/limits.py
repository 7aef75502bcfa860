"""What one session may use: the one definition of every limit.

Each field of :class:`Limits` carries its default and, in its metadata, the help
text, metavar and the range a value may take. The command line generates its
global ``--max-*`` and ``--timeout`` options from these fields, so a new limit
is one field here. This module imports nothing heavy: ``adcli --help`` reads it.
"""

from __future__ import annotations

import math
from dataclasses import field, fields
from typing import Any

from adcli.records import record

DEFAULT_MAX_ELEMENTS = 50_000_000
DEFAULT_MAX_STEPS = 10_000_000
#: No limit may be set beyond this (reads and allocations take a C ``ssize_t``).
LARGEST = 2**62


def _limit(default: Any, help: str, *, metavar: str = "N", minimum: float = 1, **extra: Any):
    metadata = {"help": help, "metavar": metavar, "minimum": minimum, **extra}
    return field(default=default, metadata=metadata)


@record()
class Limits:
    """What one session may use; each is a clear ``limit`` error when exceeded.

    Fields whose metadata has a ``help`` text are global command-line options
    (``max_call_depth`` is ``--max-call-depth``); ``max_expr_depth`` is derived
    from ``max_depth`` (10 N) by :meth:`from_options`.
    """

    max_elements: int = _limit(DEFAULT_MAX_ELEMENTS, "Most elements in one tensor.")
    # Bytes of any one new tensor (checked before allocating), and of all the
    # tensors bound to variables together (checked as each is bound).
    max_bytes: int = _limit(
        4 * 1024**3, "Most bytes in one new tensor, and in all the tensors variables hold."
    )
    max_depth: int = _limit(
        200,
        "Deepest nesting of brackets in the source; expressions (operators, calls) may "
        "nest ten times as deep.",
    )
    max_expr_depth: int = 2_000  # nesting of the expression tree: 10 max_depth
    max_call_depth: int = _limit(64, "Deepest nesting of function calls.")
    max_calls: int = _limit(1_000_000, "Most function calls one statement may make.")
    max_order: int = _limit(64, "Highest derivative order (grad order=, --order).")
    max_source_bytes: int = _limit(10 * 1024 * 1024, "Largest script, in bytes.")
    max_steps: int = _limit(
        DEFAULT_MAX_STEPS, "Most statements one program may execute (loops count each pass)."
    )
    timeout: float | None = _limit(
        None,
        "Stop a program (each file, each REPL entry) that runs longer.",
        metavar="SECONDS",
        minimum=0.001,
        maximum=10.0**9,
        shown="no limit",
    )

    @classmethod
    def from_options(cls, given: dict[str, Any]) -> Limits:
        """Limits with those ``given`` by name (None: the default); ``max_depth`` N also sets
        ``max_expr_depth`` to 10 N."""
        values = {name: value for name, value in given.items() if value is not None}
        if "max_depth" in values:
            values["max_expr_depth"] = 10 * values["max_depth"]
        return cls(**values)


@record(frozen=True)
class LimitOption:
    """One limit as a command-line option: ``--max-call-depth N``."""

    name: str  # the field: max_call_depth
    kind: type  # int or float
    default: Any
    help: str
    metavar: str
    minimum: float
    maximum: float
    shown: str  # the default as help shows it

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def problem(self, value: Any) -> str | None:
        """Why ``value`` cannot be this limit (None when it can)."""
        if self.kind is float and not math.isfinite(value):
            return f"{value} is not a number of seconds"
        shown = (lambda x: f"{x:g}") if self.kind is float else (lambda x: str(int(x)))
        if value < self.minimum:
            return f"{value} is less than the smallest allowed, {shown(self.minimum)}"
        if value > self.maximum:
            return f"{value} is more than the largest allowed, {shown(self.maximum)}"
        return None


def limit_options() -> list[LimitOption]:
    """The limits that are command-line options, in the order of the fields."""
    options = []
    for f in fields(Limits):
        meta = f.metadata
        if "help" not in meta:
            continue
        kind = float if f.name == "timeout" or isinstance(f.default, float) else int
        shown = meta.get("shown", str(f.default))
        options.append(
            LimitOption(
                name=f.name,
                kind=kind,
                default=f.default,
                help=meta["help"],
                metavar=meta["metavar"],
                minimum=meta["minimum"],
                maximum=meta.get("maximum", LARGEST),
                shown=shown,
            )
        )
    return options
