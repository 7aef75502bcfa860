"""The abstract syntax tree of the .ad language.

Every node is a frozen dataclass with a ``span`` (where it sits in the source),
built by :mod:`adcli.lang.parser`; nothing outside the parser sees Lark's trees.

Conventions:

* Operators are strings: ``'+' '-' '*' '/' '@' '%' '//' '^'`` and the comparisons
  ``'==' '!=' '<' '<=' '>' '>='``. ``**`` is normalised to ``'^'``.
* A method call ``a.m(x)`` is a :class:`MethodCall`, never a :class:`Call`
  whose ``func`` is an :class:`Attribute`; ``a.m`` without a call is an
  :class:`Attribute`.
* Parentheses leave no node of their own: ``(e)`` is ``e``, whose span is
  still that of ``e``; the span of its parent covers the parentheses (the
  span of ``(a + b) * c`` starts at the ``(``).
* A signed number such as ``-1`` is ``Unary('-', Number(1))``.
* Sequences are tuples, so nodes are hashable and immutable.

Chains such as ``1+1+...+1`` are left-deep: an AST may be far deeper than
Python's recursion limit, so code that walks it should not recurse on
operands without a depth guard; :func:`walk` is iterative.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import FrozenInstanceError, dataclass, fields
from typing import Any

from adcli.errors import Span


class Node:
    """Base class of every AST node. Every node has a ``span``.

    Nodes are immutable and compare (and hash) by class and fields. These methods
    are written once here rather than generated per class by ``dataclass``: making
    three dozen frozen dataclasses cost a tenth of ``adcli eval``'s start-up.

    The parser stores a span field (``span``, ``op_span``, ...) as one int, the
    offsets where the node starts and ends (see :func:`packed`), with the node's
    :class:`Lines` in ``_lines``: a :class:`Span` is made the first time the field is
    read, and kept. A node built by its constructor holds its spans as given.
    """

    __slots__ = ("_lines",)
    span: Span
    #: the field names, in order (set on each class by :func:`node`)
    _field_names: tuple = ()

    def _values(self) -> tuple:
        return tuple([getattr(self, name) for name in self._field_names])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((self.__class__, self._values()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._field_names)
        return f"{self.__class__.__qualname__}({shown})"

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")


#: How many bits of a packed span hold its end offset (the start is above them).
SPAN_SHIFT = 32
_END_MASK = (1 << SPAN_SHIFT) - 1


def packed(start: int, end: int) -> int:
    """The one-int form of the span from offset ``start`` to ``end`` (exclusive)."""
    return start << SPAN_SHIFT | end


class Lines:
    """Where the lines of one source text start: turns packed offsets into
    :class:`Span` objects (with the file name), shared by every node of a parse.
    The line table is made on the first request."""

    __slots__ = ("_starts", "filename", "source")

    def __init__(self, filename: str, source: str) -> None:
        self.filename = filename
        self.source = source
        self._starts: list[int] | None = None

    def span(self, pos: int) -> Span:
        """The :class:`Span` of the packed offsets ``pos``."""
        starts = self._starts
        if starts is None:
            starts = self._starts = [0, *map(_AFTER, _NEWLINES(self.source))]
        start = pos >> SPAN_SHIFT
        end = pos & _END_MASK
        line = bisect_right(starts, start)
        first = starts[line - 1]
        end_line = line
        if end > start and line < len(starts) and end - 1 >= starts[line]:
            end_line = bisect_right(starts, end - 1)
        return _new_span(
            Span,
            (self.filename, line, start - first + 1, end_line, end - starts[end_line - 1] + 1),
        )


def span_width(node: Node) -> int | None:
    """How many characters the span of ``node`` covers, where that is known without
    making a :class:`Span` (packed offsets, or a span on one line); else None."""
    value = getattr(node, "_span", None)
    if type(value) is int:
        return (value & _END_MASK) - (value >> SPAN_SHIFT)
    # A Span is a tuple: (file, line, column, end_line, end_column).
    if type(value) is Span and value[1] == value[3]:
        return value[4] - value[2]
    return None


_NEWLINES = re.compile("\n").finditer
_AFTER = re.Match.end
_new_span = tuple.__new__

#: The fields that hold one span (stored packed by the parser).
SPAN_FIELDS = frozenset({"span", "op_span", "name_span", "path_span", "target_span", "var_span"})


def node(cls: type) -> type:
    """A node class: a dataclass for its fields (``fields()`` works), with slots, and
    :class:`Node`'s shared comparison, hash, repr and immutability. A span field
    ``name`` is kept in the slot ``_name`` and read through a property (see
    :class:`Node`)."""
    cls = dataclass(init=False, repr=False, eq=False)(cls)
    names = tuple(f.name for f in fields(cls))
    namespace = {
        key: value for key, value in cls.__dict__.items() if key not in ("__dict__", "__weakref__")
    }
    namespace["__slots__"] = tuple(f"_{n}" if n in SPAN_FIELDS else n for n in names)
    made = type(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = cls.__qualname__
    made._field_names = names
    return made


# ------------------------------------------------------------------ expressions


@node
class Number(Node):
    """A number literal: ``int`` when written with digits only, else ``float``.
    ``text`` is the literal as written (``"1e-3"``)."""

    value: int | float
    text: str
    span: Span


@node
class Bool(Node):
    """``true`` or ``false``."""

    value: bool
    span: Span


@node
class String(Node):
    """A string literal, escapes already decoded."""

    value: str
    span: Span


@node
class NoneLit(Node):
    """``none``: the no-value literal (an extension)."""

    span: Span


@node
class Name(Node):
    """A variable or function name; ``span`` covers the name."""

    id: str
    span: Span


@node
class ListLit(Node):
    """A bracket literal ``[a, b, ...]``; items are expressions (often
    signed numbers, or nested bracket literals)."""

    items: tuple[Expr, ...]
    span: Span


@node
class Unary(Node):
    """``-operand`` or ``+operand``."""

    op: str
    operand: Expr
    span: Span


@node
class Binary(Node):
    """``left op right``: arithmetic, matrix product, power or comparison.
    ``op_span`` covers the operator, for a caret under ``@`` in a shape error."""

    op: str
    left: Expr
    right: Expr
    span: Span
    op_span: Span


@node
class Keyword(Node):
    """A keyword argument ``name=value`` of a call; ``name_span`` covers the name."""

    name: str
    value: Expr
    span: Span
    name_span: Span


@node
class Call(Node):
    """``func(args..., name=value...)``. ``func`` is usually a :class:`Name`.
    Positional arguments come first; keyword names are distinct."""

    func: Expr
    args: tuple[Expr, ...]
    kwargs: tuple[Keyword, ...]
    span: Span


@node
class Attribute(Node):
    """``obj.name`` (not called); ``name_span`` covers the name after the dot."""

    obj: Expr
    name: str
    span: Span
    name_span: Span


@node
class MethodCall(Node):
    """``obj.name(args..., key=value...)``; ``name_span`` covers the method name."""

    obj: Expr
    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[Keyword, ...]
    span: Span
    name_span: Span


@node
class Slice(Node):
    """``start:stop:step`` inside an index; a missing part is ``None``."""

    start: Expr | None
    stop: Expr | None
    step: Expr | None
    span: Span


@node
class EllipsisIndex(Node):
    """``...`` inside an index: as many full slices as the other items leave."""

    span: Span


@node
class Index(Node):
    """``obj[i]``, ``obj[i, j]``, ``obj[1:3]``, ``obj[:, 0]``: one item per axis."""

    obj: Expr
    items: tuple[Expr | Slice | EllipsisIndex, ...]
    span: Span


@node
class TupleLit(Node):
    """``(a, b)``, ``(a,)``, ``()``, or the bare ``a, b`` on the right of ``=``."""

    items: tuple[Expr, ...]
    span: Span


@node
class Logic(Node):
    """``left and right`` / ``left or right``: short-circuit, on truth values."""

    op: str
    left: Expr
    right: Expr
    span: Span
    op_span: Span


@node
class Not(Node):
    """``not operand``."""

    operand: Expr
    span: Span


# ------------------------------------------------------------------- statements


@node
class Assign(Node):
    """``name = value``; ``name_span`` covers the name."""

    name: str
    value: Expr
    span: Span
    name_span: Span


@node
class Unpack(Node):
    """``a, b = value``: unpack a tuple (or a tensor's first dimension)."""

    names: tuple[str, ...]
    value: Expr
    span: Span
    name_spans: tuple[Span, ...]


@node
class SetItem(Node):
    """``obj[i, ...] = value``: in place, as PyTorch's index assignment."""

    obj: Expr
    items: tuple[Expr | Slice, ...]
    value: Expr
    span: Span
    target_span: Span


@node
class SetAttr(Node):
    """``obj.name = value`` for ``grad``, ``data`` and ``requires_grad``."""

    obj: Expr
    name: str
    value: Expr
    span: Span
    name_span: Span


@node
class AugAssign(Node):
    """``target op= value`` (``op`` is ``'+' '-' '*' '/'``); ``target`` is a
    :class:`Name`, an :class:`Index` or an :class:`Attribute`. In place."""

    target: Expr
    op: str
    value: Expr
    span: Span
    op_span: Span


@node
class Block(Node):
    """The statements between ``{`` and ``}``."""

    statements: tuple[Statement, ...]
    span: Span


@node
class FuncDef(Node):
    """``name(p1, p2, ...) = body`` (an expression) or ``name(p1, ...) { ... }``
    (``body`` is a :class:`Block`); parameter names are distinct."""

    name: str
    params: tuple[str, ...]
    body: Expr | Block
    span: Span
    name_span: Span
    param_spans: tuple[Span, ...]


@node
class ExprStmt(Node):
    """An expression evaluated as a statement (its value is displayed)."""

    expr: Expr
    span: Span


@node
class Assert(Node):
    """``assert test`` or ``assert test, "message"``."""

    test: Expr
    message: String | None
    span: Span


@node
class Import(Node):
    """``import "path.ad"``; ``path`` is decoded, ``path_span`` covers the string."""

    path: str
    span: Span
    path_span: Span


@node
class For(Node):
    """``for var in iterable { body }``; ``var_span`` covers the name."""

    var: str
    iterable: Expr
    body: Block
    span: Span
    var_span: Span


@node
class While(Node):
    """``while test { body }``."""

    test: Expr
    body: Block
    span: Span


@node
class If(Node):
    """``if test { body } else ...``; ``orelse`` is a :class:`Block`, an
    :class:`If` (``else if``) or ``None``."""

    test: Expr
    body: Block
    orelse: Block | If | None
    span: Span


@node
class GradMode(Node):
    """``no_grad { ... }`` (``enabled`` false) or ``enable_grad { ... }``."""

    enabled: bool
    body: Block
    span: Span


@node
class Break(Node):
    """``break``."""

    span: Span


@node
class Continue(Node):
    """``continue``."""

    span: Span


@node
class Return(Node):
    """``return`` or ``return value``."""

    value: Expr | None
    span: Span


@node
class Program(Node):
    """A whole script or one-liner: its statements in order."""

    statements: tuple[Statement, ...]
    span: Span


#: Any expression node.
Expr = (
    Number
    | Bool
    | String
    | NoneLit
    | Name
    | ListLit
    | Unary
    | Binary
    | Call
    | Attribute
    | MethodCall
    | Index
    | TupleLit
    | Logic
    | Not
)
#: Any statement node.
Statement = (
    Assign
    | Unpack
    | SetItem
    | SetAttr
    | AugAssign
    | FuncDef
    | ExprStmt
    | Assert
    | Import
    | For
    | While
    | If
    | GradMode
    | Break
    | Continue
    | Return
)

# Fields that hold spans, not child nodes; the rest are looked up per class once.
_NOT_CHILDREN = frozenset(
    {
        "span",
        "op_span",
        "name_span",
        "param_spans",
        "path_span",
        "name_spans",
        "target_span",
        "var_span",
    }
)
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def iter_children(node: Node) -> Iterator[Node]:
    """Yield the direct child nodes of ``node`` in source order."""
    names = _CHILD_FIELDS.get(type(node))
    if names is None:
        names = tuple(f.name for f in fields(node) if f.name not in _NOT_CHILDREN)
        _CHILD_FIELDS[type(node)] = names
    for name in names:
        value = getattr(node, name)
        if isinstance(value, Node):
            yield value
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Node):
                    yield item


def walk(node: Node) -> Iterator[Node]:
    """Yield ``node`` and every node below it, parents before children, in
    source order. Iterative, so it is safe on arbitrarily deep trees."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(tuple(iter_children(current))))


# ----------------------------------------------------------- cheap construction
#
# A script has a node per operand and operator, so building nodes is much of a
# parse. The ``__init__`` that ``dataclass(frozen=True)`` writes sets each field
# through ``object.__setattr__``, looked up anew per field; the one below sets
# the slots through their descriptors, bound once: half the cost, with the same
# signature, the same checks (arity, keywords) and the same frozen instances.
#
# The functions are written out in :mod:`adcli.lang._node_makers` (generated by
# :func:`makers_source`, kept in step by a test), so Python's bytecode cache
# applies: compiling them at each start took a twentieth of ``adcli eval``'s
# start-up. Should that module not match the classes, they are compiled here.


_MAKERS_HEADER = (
    '"""The nodes\' ``__init__``, span getters and parser makers: generated by\n'
    "``adcli.lang.nodes.makers_source`` (run ``python -m adcli.lang.nodes``), do not\n"
    'edit. The names they use are set in this module by ``nodes._fast_inits``."""\n'
    "# ruff: noqa: F821\n\n"
    "#: each class's fields, in order: checked against the classes before use\n"
)


def makers_source(classes: list[type]) -> str:
    """The source of :mod:`adcli.lang._node_makers` for ``classes``: per class an
    ``__init__``, a getter per span field and a maker for the parser (:data:`MAKERS`).
    The names they use (``_cls_C``, ``_twin_C``, ``_set_C_field``) are
    set in that module's namespace by :func:`_fast_inits`."""
    listed = []
    for cls in classes:
        quoted = ", ".join(f'"{name}"' for name in cls._field_names)
        listed.append(
            f'    "{cls.__name__}": ({quoted}{"," if len(cls._field_names) == 1 else ""}),\n'
        )
    sources = [f"{_MAKERS_HEADER}FIELDS = {{\n{''.join(listed)}}}\n"]
    for cls in classes:
        c = cls.__name__
        names = list(cls._field_names)
        for name in names:
            if name in SPAN_FIELDS:
                sources.append(
                    f"def _get_{c}_{name}(self):\n"
                    f"    value = self._{name}\n"
                    f"    if type(value) is int:\n"
                    f"        value = self._lines.span(value)\n"
                    f"        _set_{c}_{name}(self, value)\n"
                    f"    return value\n"
                )
        sets = "".join(f"    _set_{c}_{name}(self, {name})\n" for name in names)
        sources.append(f"def _init_{c}(self, {', '.join(names)}):\n{sets}")
        # The maker fills a twin's slots (plain attribute stores, which CPython
        # specializes), then gives the node its class.
        stores = "".join(
            f"    self.{'_' if name in SPAN_FIELDS else ''}{name} = {name}\n" for name in names
        )
        sources.append(
            f"def _make_{c}(lines, {', '.join(names)}):\n"
            f"    self = _twin_{c}()\n    self._lines = lines\n{stores}"
            f"    self.__class__ = _cls_{c}\n    return self\n"
        )
    return "\n\n".join(sources)


def _twin(cls: type) -> type:
    """A subclass of ``cls`` that adds no slot and lets its slots be assigned: a
    maker fills one, then sets its ``__class__`` to ``cls`` (the layouts are the
    same). Stores into it are CPython's quickest, where ``cls``'s own frozen
    ``__setattr__`` would leave only a slot's ``__set__`` to call, twice as slow."""
    return type(
        cls.__name__,
        (cls,),
        {
            "__slots__": (),
            "__init__": object.__init__,  # made by calling it: quicker than object.__new__
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
            "__module__": cls.__module__,
            "__qualname__": f"{cls.__qualname__}.<being made>",
        },
    )


def _fast_inits(classes: list[type]) -> None:
    """Give each node class the ``__init__``, span properties and maker of
    :mod:`adcli.lang._node_makers` (or, where it does not match the classes, the
    same functions compiled from :func:`makers_source`)."""
    from adcli.lang import _node_makers

    namespace = vars(_node_makers)
    if namespace.get("FIELDS") != {cls.__name__: cls._field_names for cls in classes}:
        namespace = {}
        exec(makers_source(classes), namespace)  # noqa: S102 - our own code, from field names
    namespace.update(int=int)
    for cls in classes:
        c = cls.__name__
        namespace[f"_cls_{c}"] = cls
        namespace[f"_twin_{c}"] = _twin(cls)
        for name in cls._field_names:
            slot = f"_{name}" if name in SPAN_FIELDS else name
            namespace[f"_set_{c}_{name}"] = getattr(cls, slot).__set__
    for cls in classes:
        c = cls.__name__
        init = namespace[f"_init_{c}"]
        init.__name__ = "__init__"
        init.__qualname__ = f"{cls.__qualname__}.__init__"
        type.__setattr__(cls, "__init__", init)
        for name in cls._field_names:
            if name in SPAN_FIELDS:
                type.__setattr__(cls, name, property(namespace[f"_get_{c}_{name}"]))
        MAKERS[cls] = namespace[f"_make_{c}"]


#: node class -> ``make(lines, *fields)``: a node whose span fields may be packed
#: offsets (ints) read through ``lines`` (a :class:`Lines`); for the parser.
MAKERS: dict[type, Any] = {}


def _all_node_classes(base: type = Node) -> Iterator[type]:
    for sub in base.__subclasses__():
        yield sub
        yield from _all_node_classes(sub)


#: The node classes that have fields, in the order :mod:`adcli.lang._node_makers` has them.
NODE_CLASSES = [c for c in _all_node_classes() if c._field_names]
_fast_inits(NODE_CLASSES)


if __name__ == "__main__":  # regenerate adcli/lang/_node_makers.py
    from pathlib import Path

    Path(__file__).with_name("_node_makers.py").write_text(makers_source(NODE_CLASSES))
