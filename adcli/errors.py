"""One error type for everything a user can cause.

Each layer speaks its own words: the engine says what went wrong in terms of
tensors and graphs and puts the facts in :attr:`AdcliError.details` (the limit
that was hit and its numbers, why a gradient cannot be computed); the language
adds hints in its keywords (``create_graph=true``), the command line in its
flags (``--max-elements``).

Every layer raises :class:`AdcliError`. The engine raises it without a span;
the interpreter attaches the span of the statement or call that caused it;
the front end renders it (``file:line:column: error: message`` plus a caret,
or a JSON object).
"""

from __future__ import annotations

from operator import itemgetter

#: Every kind of error, with its stable code (see ``adcli explain``).
KINDS: dict[str, str] = {
    "syntax": "E001",
    "name": "E002",
    "type": "E003",
    "shape": "E004",
    "device": "E005",
    "assert": "E006",
    "value": "E007",
    "limit": "E008",
}


class Span(tuple):
    """A region of source text. Lines and columns are 1-based; ends are inclusive-exclusive
    as Lark reports them (``end_column`` is one past the last character).

    Immutable and hashable, with the fields ``file``, ``line``, ``column``, ``end_line`` and
    ``end_column``. It is a tuple underneath so that the parser can make one in C
    (``tuple.__new__(Span, (file, line, column, end_line, end_column))``): a script has
    a span per node. It equals only another ``Span``, never a plain tuple.
    """

    __slots__ = ()
    _fields = ("file", "line", "column", "end_line", "end_column")

    def __new__(  # noqa: PYI034 - Python 3.10 has no typing.Self
        cls, file: str, line: int, column: int, end_line: int, end_column: int
    ) -> Span:
        return tuple.__new__(cls, (file, line, column, end_line, end_column))

    file = property(itemgetter(0), doc="the file name, as given to the parser")
    line = property(itemgetter(1), doc="the first line (1-based)")
    column = property(itemgetter(2), doc="the first column (1-based)")
    end_line = property(itemgetter(3), doc="the last line")
    end_column = property(itemgetter(4), doc="one past the last column")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return (
            f"Span(file={self[0]!r}, line={self[1]!r}, column={self[2]!r}, "
            f"end_line={self[3]!r}, end_column={self[4]!r})"
        )

    def __getnewargs__(self) -> tuple:
        return tuple(self)


class AdcliError(Exception):
    """An error a user can cause: a kind, a message, and (once known) where."""

    def __init__(
        self,
        kind: str,
        message: str,
        span: Span | None = None,
        hint: str | None = None,
        details: dict | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.span = span
        self.hint = hint
        #: structured facts for the layers above (e.g. ``{"limit": "max_elements"}``)
        self.details = details if details is not None else {}

    @property
    def code(self) -> str:
        return KINDS[self.kind]

    def at(self, span: Span | None) -> AdcliError:
        """Attach ``span`` unless a more precise one is already known; returns self."""
        if self.span is None and span is not None:
            self.span = span
        return self

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"AdcliError({self.kind!r}, {self.message!r}, span={self.span!r})"
