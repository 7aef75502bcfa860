"""The language's values and settings that every part of ``adcli.lang`` shares.

:class:`Limits` (what a session may use; defined in :mod:`adcli.lang.limits`), :class:`Output` (what a running
program shows), :class:`UserFunction` (a defined function) and
:func:`type_name` (how messages name a value). Nothing here runs code, so the
builtins (:mod:`adcli.lang.library`) and the evaluator can both import it
without importing each other.
"""

from __future__ import annotations

from dataclasses import field

from adcli.errors import Span
from adcli.lang import builtins as B
from adcli.lang import nodes as N
from adcli.lang.limits import DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_STEPS, Limits
from adcli.lang.wording import kind_of
from adcli.records import record

__all__ = [
    "DEFAULT_MAX_ELEMENTS",
    "DEFAULT_MAX_STEPS",
    "Limits",
    "Output",
    "UserFunction",
    "type_name",
]


@record(frozen=True)
class Output:
    """Something a running program shows: a value, a print, or a warning."""

    kind: str  # "value" | "print" | "warning" | "accumulation"
    value: object = None
    text: str | None = None
    span: Span | None = None


@record(frozen=True)
class Accumulation:
    """The value of an ``accumulation`` output: ``name.grad`` was ``before``, ``added`` came in."""

    name: str
    event: object = field(repr=False)

    @property
    def before(self):
        return self.event.before

    @property
    def added(self):
        return self.event.added

    @property
    def after(self):
        return self.event.after


@record(frozen=True)
class UserFunction:
    """``name(params) = body`` (sees its parameters and the functions defined
    before it) or ``name(params) { ... }`` (also its locals, and the session's
    variables at call time)."""

    name: str
    params: tuple
    body: N.Node
    functions: dict = field(repr=False, compare=False)
    span: Span | None = None

    @property
    def has_block(self) -> bool:
        return type(self.body) is N.Block

    def __repr__(self) -> str:
        return f"<function {self.name}({', '.join(self.params)})>"


def type_name(value) -> str:
    """How a message names the kind of ``value`` ("a tensor", "a tuple", ...)."""
    if isinstance(value, (UserFunction, B.Builtin)):
        return "a function"
    if isinstance(value, range):
        return "a range"
    if isinstance(value, tuple) and any(not isinstance(v, int) for v in value):
        return "a tuple"
    return kind_of(value)
