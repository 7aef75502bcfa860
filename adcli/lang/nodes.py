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

from collections.abc import Iterator
from dataclasses import MISSING, dataclass, fields

from adcli.errors import Span


class Node:
    """Base class of every AST node. Every node has a ``span``."""

    __slots__ = ()
    span: Span


# ------------------------------------------------------------------ expressions


@dataclass(frozen=True, slots=True)
class Number(Node):
    """A number literal: ``int`` when written with digits only, else ``float``.
    ``text`` is the literal as written (``"1e-3"``)."""

    value: int | float
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Bool(Node):
    """``true`` or ``false``."""

    value: bool
    span: Span


@dataclass(frozen=True, slots=True)
class String(Node):
    """A string literal, escapes already decoded."""

    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class NoneLit(Node):
    """``none``: the no-value literal (an extension)."""

    span: Span


@dataclass(frozen=True, slots=True)
class Name(Node):
    """A variable or function name; ``span`` covers the name."""

    id: str
    span: Span


@dataclass(frozen=True, slots=True)
class ListLit(Node):
    """A bracket literal ``[a, b, ...]``; items are expressions (often
    signed numbers, or nested bracket literals)."""

    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Unary(Node):
    """``-operand`` or ``+operand``."""

    op: str
    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Binary(Node):
    """``left op right``: arithmetic, matrix product, power or comparison.
    ``op_span`` covers the operator, for a caret under ``@`` in a shape error."""

    op: str
    left: Expr
    right: Expr
    span: Span
    op_span: Span


@dataclass(frozen=True, slots=True)
class Keyword(Node):
    """A keyword argument ``name=value`` of a call; ``name_span`` covers the name."""

    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class Call(Node):
    """``func(args..., name=value...)``. ``func`` is usually a :class:`Name`.
    Positional arguments come first; keyword names are distinct."""

    func: Expr
    args: tuple[Expr, ...]
    kwargs: tuple[Keyword, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Attribute(Node):
    """``obj.name`` (not called); ``name_span`` covers the name after the dot."""

    obj: Expr
    name: str
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class MethodCall(Node):
    """``obj.name(args..., key=value...)``; ``name_span`` covers the method name."""

    obj: Expr
    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[Keyword, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class Slice(Node):
    """``start:stop:step`` inside an index; a missing part is ``None``."""

    start: Expr | None
    stop: Expr | None
    step: Expr | None
    span: Span


@dataclass(frozen=True, slots=True)
class EllipsisIndex(Node):
    """``...`` inside an index: as many full slices as the other items leave."""

    span: Span


@dataclass(frozen=True, slots=True)
class Index(Node):
    """``obj[i]``, ``obj[i, j]``, ``obj[1:3]``, ``obj[:, 0]``: one item per axis."""

    obj: Expr
    items: tuple[Expr | Slice | EllipsisIndex, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class TupleLit(Node):
    """``(a, b)``, ``(a,)``, ``()``, or the bare ``a, b`` on the right of ``=``."""

    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Logic(Node):
    """``left and right`` / ``left or right``: short-circuit, on truth values."""

    op: str
    left: Expr
    right: Expr
    span: Span
    op_span: Span


@dataclass(frozen=True, slots=True)
class Not(Node):
    """``not operand``."""

    operand: Expr
    span: Span


# ------------------------------------------------------------------- statements


@dataclass(frozen=True, slots=True)
class Assign(Node):
    """``name = value``; ``name_span`` covers the name."""

    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class Unpack(Node):
    """``a, b = value``: unpack a tuple (or a tensor's first dimension)."""

    names: tuple[str, ...]
    value: Expr
    span: Span
    name_spans: tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class SetItem(Node):
    """``obj[i, ...] = value``: in place, as PyTorch's index assignment."""

    obj: Expr
    items: tuple[Expr | Slice, ...]
    value: Expr
    span: Span
    target_span: Span


@dataclass(frozen=True, slots=True)
class SetAttr(Node):
    """``obj.name = value`` for ``grad``, ``data`` and ``requires_grad``."""

    obj: Expr
    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class AugAssign(Node):
    """``target op= value`` (``op`` is ``'+' '-' '*' '/'``); ``target`` is a
    :class:`Name`, an :class:`Index` or an :class:`Attribute`. In place."""

    target: Expr
    op: str
    value: Expr
    span: Span
    op_span: Span


@dataclass(frozen=True, slots=True)
class Block(Node):
    """The statements between ``{`` and ``}``."""

    statements: tuple[Statement, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class FuncDef(Node):
    """``name(p1, p2, ...) = body`` (an expression) or ``name(p1, ...) { ... }``
    (``body`` is a :class:`Block`); parameter names are distinct."""

    name: str
    params: tuple[str, ...]
    body: Expr | Block
    span: Span
    name_span: Span
    param_spans: tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class ExprStmt(Node):
    """An expression evaluated as a statement (its value is displayed)."""

    expr: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Assert(Node):
    """``assert test`` or ``assert test, "message"``."""

    test: Expr
    message: String | None
    span: Span


@dataclass(frozen=True, slots=True)
class Import(Node):
    """``import "path.ad"``; ``path`` is decoded, ``path_span`` covers the string."""

    path: str
    span: Span
    path_span: Span


@dataclass(frozen=True, slots=True)
class For(Node):
    """``for var in iterable { body }``; ``var_span`` covers the name."""

    var: str
    iterable: Expr
    body: Block
    span: Span
    var_span: Span


@dataclass(frozen=True, slots=True)
class While(Node):
    """``while test { body }``."""

    test: Expr
    body: Block
    span: Span


@dataclass(frozen=True, slots=True)
class If(Node):
    """``if test { body } else ...``; ``orelse`` is a :class:`Block`, an
    :class:`If` (``else if``) or ``None``."""

    test: Expr
    body: Block
    orelse: Block | If | None
    span: Span


@dataclass(frozen=True, slots=True)
class GradMode(Node):
    """``no_grad { ... }`` (``enabled`` false) or ``enable_grad { ... }``."""

    enabled: bool
    body: Block
    span: Span


@dataclass(frozen=True, slots=True)
class Break(Node):
    """``break``."""

    span: Span


@dataclass(frozen=True, slots=True)
class Continue(Node):
    """``continue``."""

    span: Span


@dataclass(frozen=True, slots=True)
class Return(Node):
    """``return`` or ``return value``."""

    value: Expr | None
    span: Span


@dataclass(frozen=True, slots=True)
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


def _fast_init(cls: type) -> None:
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        return
    if hasattr(cls, "__post_init__"):
        return
    names = [f.name for f in fields(cls) if f.init]
    if len(names) != len(fields(cls)) or any(
        f.default is not MISSING or f.default_factory is not MISSING for f in fields(cls)
    ):
        return
    if not all(name.isidentifier() for name in names):
        return
    setters = {f"_set_{name}": getattr(cls, name).__set__ for name in names}
    body = "".join(f"    _set_{name}(self, {name})\n" for name in names) or "    pass\n"
    source = f"def __init__(self, {', '.join(names)}):\n{body}"
    namespace: dict = {}
    exec(source, setters, namespace)  # noqa: S102 - our own code, built from field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init


def _all_node_classes(base: type = Node) -> Iterator[type]:
    for sub in base.__subclasses__():
        yield sub
        yield from _all_node_classes(sub)


for _cls in list(_all_node_classes()):
    _fast_init(_cls)
del _cls
