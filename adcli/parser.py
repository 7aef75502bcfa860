"""Source text → :mod:`adcli.nodes`, with syntax errors in words.

The syntax itself lives in ``grammar/adcli.lark``. Lark parses it LALR(1)
and calls :class:`_AstBuilder` at each reduction (an inline transformer), so
no Lark tree is ever built or walked: parsing never recurses, however deep or
long the expression. :class:`_BracketPostLex` sits between Lark's lexer and
its parser: it drops newlines inside ``( )`` and ``[ ]``, matches brackets,
and refuses nesting deeper than ``max_depth``.

The Lark parser is built on first use (importing this module does not import
Lark) and its tables are cached on disk by Lark (``cache=True``).
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adcli import nodes
from adcli.errors import AdcliError, Span

if TYPE_CHECKING:
    from lark import Lark, Token

__all__ = ["DEFAULT_MAX_DEPTH", "DEFAULT_MAX_SOURCE_BYTES", "is_complete", "parse"]

#: How deeply brackets may nest before a script is refused (kind "limit").
DEFAULT_MAX_DEPTH = 200
#: The largest source accepted, in UTF-8 bytes (kind "limit").
DEFAULT_MAX_SOURCE_BYTES = 10 * 1024 * 1024

_OPENERS = {"LPAR": "(", "LSQB": "["}
_CLOSERS = {"RPAR": "(", "RSQB": "["}
_SEPARATORS = frozenset({"_NEWLINE", "SEMICOLON"})
# Tokens that can begin an operand; one of them where an operator was due
# usually means a missing operator or comma.
_OPERAND_STARTS = frozenset({"NAME", "NUMBER", "STRING", "TRUE", "FALSE", "NONE"})
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
_ESCAPE_RE = re.compile(r"\\(.)")


def parse(
    source: str,
    filename: str = "<eval>",
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES,
) -> nodes.Program:
    """Parse a whole script or one-liner into a :class:`~adcli.nodes.Program`.

    ``filename`` goes into every span. Raises :class:`AdcliError` of kind
    ``"syntax"`` for malformed input and ``"limit"`` when brackets nest deeper
    than ``max_depth`` or the source is larger than ``max_source_bytes``.
    """
    try:
        return _parse(source, filename, max_depth, max_source_bytes)
    except _Unclosed as unclosed:
        raise unclosed.error from None


def is_complete(source: str) -> bool:
    """Whether ``source`` is a complete input for the REPL.

    False only when a bracket is still open at the end, so another line may
    complete it; input that fails to parse for any other reason (``1 +``) is
    complete, and parsing it reports the error.
    """
    try:
        _parse(source, "<input>", DEFAULT_MAX_DEPTH, DEFAULT_MAX_SOURCE_BYTES)
    except _Unclosed:
        return False
    except AdcliError:
        return True
    return True


# --------------------------------------------------------------------- driver


class _Unclosed(Exception):
    """A bracket still open at the end of the input (carries the user's error)."""

    def __init__(self, error: AdcliError) -> None:
        super().__init__(error.message)
        self.error = error


class _ParseState:
    """What one parse needs to know beside the tokens: shared by the
    post-lexer, the AST builder and the error translation."""

    __slots__ = ("current", "filename", "max_depth", "open_brackets", "paren_spans", "previous")

    def __init__(self, filename: str, max_depth: int) -> None:
        self.filename = filename
        self.max_depth = max_depth
        self.open_brackets: list[Token] = []
        self.previous: Token | None = None
        self.current: Token | None = None
        # id(node) -> its span including the parentheses around it. Nodes keep
        # their own spans (a Name's span is the name); parents extend over the
        # parentheses, so the span of (a + b) * c starts at '('.
        self.paren_spans: dict[int, Span] = {}


_lark: Lark | None = None
_lark_guard = threading.Lock()
# The post-lexer and builder are fixed when the Lark parser is built, so the
# state of the parse in progress sits here; one parse at a time.
_parse_lock = threading.Lock()
_state: _ParseState | None = None


def _parse(source: str, filename: str, max_depth: int, max_source_bytes: int) -> nodes.Program:
    global _state
    if not isinstance(source, str):
        raise TypeError(f"source must be str, not {type(source).__name__}")
    _check_size(source, filename, max_source_bytes)
    source = source.removeprefix("\ufeff")
    lark_parser = _get_lark()

    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

    with _parse_lock:
        state = _state = _ParseState(filename, max_depth)
        try:
            program = lark_parser.parse(source)
        except UnexpectedCharacters as error:
            raise _character_error(error, source, state) from None
        except UnexpectedToken as error:
            raise _token_error(error, state) from None
        except UnexpectedEOF:
            raise _end_of_input_error(state) from None
        except VisitError as error:  # only if a Lark Transformer is ever used here
            if isinstance(error.orig_exc, AdcliError):
                raise error.orig_exc from None
            raise
        finally:
            _state = None
    return replace(program, span=_program_span(source, filename))


def _check_size(source: str, filename: str, max_source_bytes: int) -> None:
    # len() counts characters; only encode when the text might be too large.
    if len(source) * 4 <= max_source_bytes:
        return
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > max_source_bytes:
        raise AdcliError(
            "limit",
            f"source too large ({size} bytes; limit {max_source_bytes})",
            Span(filename, 1, 1, 1, 1),
        )


def _program_span(source: str, filename: str) -> Span:
    last_line = source.count("\n") + 1
    last_column = len(source) - (source.rfind("\n") + 1) + 1
    return Span(filename, 1, 1, last_line, last_column)


def _get_lark() -> Lark:
    """Build the Lark parser once, on first use."""
    global _lark
    if _lark is None:
        with _lark_guard:
            if _lark is None:
                _lark = _build_lark()
    return _lark


def grammar_text() -> str:
    """The text of ``adcli.lark``, from the installed package or the source tree."""
    try:
        from importlib.resources import files

        return files("adcli.grammar").joinpath("adcli.lark").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        path = Path(__file__).resolve().parent.parent / "grammar" / "adcli.lark"
        return path.read_text(encoding="utf-8")


def _build_lark(**options: Any) -> Lark:
    from lark import Lark

    settings: dict[str, Any] = {
        "parser": "lalr",
        "lexer": "basic",
        "postlex": _BracketPostLex(),
        "transformer": _AstBuilder(),
        # Spans are computed from tokens by _AstBuilder; positions are
        # propagated too, for debugging the grammar with plain trees.
        "propagate_positions": True,
        "maybe_placeholders": False,
        "cache": True,
    }
    settings.update(options)
    return Lark(grammar_text(), **settings)


# ----------------------------------------------------------------- post-lexer


class _BracketPostLex:
    """Drops newlines inside brackets, matches brackets and limits their depth.

    Lark calls :meth:`process` once per parse with the token stream; the
    parser pulls one token at a time, so an error raised here comes after
    every earlier token has parsed.
    """

    always_accept = ("_NEWLINE",)

    def process(self, stream):
        state = _state
        assert state is not None, "parse() sets the state"
        open_brackets = state.open_brackets
        for token in stream:
            kind = token.type
            if kind == "_NEWLINE":
                if open_brackets:
                    continue
            elif kind in _OPENERS:
                if len(open_brackets) >= state.max_depth:
                    raise AdcliError(
                        "limit",
                        f"expression nested too deeply (limit {state.max_depth})",
                        _token_span(token, state.filename),
                        hint="split the expression into several statements",
                    )
                open_brackets.append(token)
            elif kind in _CLOSERS:
                _close_bracket(token, open_brackets, state.filename)
            state.previous = state.current
            state.current = token
            yield token
        if open_brackets:
            opener = open_brackets[-1]
            raise _Unclosed(
                AdcliError(
                    "syntax",
                    f"'{opener}' was never closed",
                    _token_span(opener, state.filename),
                )
            )


def _close_bracket(token: Token, open_brackets: list[Token], filename: str) -> None:
    if not open_brackets:
        raise AdcliError(
            "syntax",
            f"unexpected '{token}'",
            _token_span(token, filename),
            hint=f"there is no '{_CLOSERS[token.type]}' open for it to close",
        )
    opener = open_brackets.pop()
    if opener.type != _OPENERS_OF[token.type]:
        raise AdcliError(
            "syntax",
            f"closing '{token}' does not match '{opener}' opened at line {opener.line}, "
            f"column {opener.column}",
            _token_span(token, filename),
        )


_OPENERS_OF = {"RPAR": "LPAR", "RSQB": "LSQB"}


# -------------------------------------------------------------- AST building


def _token_span(token: Token, filename: str) -> Span:
    return Span(filename, token.line, token.column, token.end_line, token.end_column)


def _spanning(filename: str, first: Span, last: Span) -> Span:
    return Span(filename, first.line, first.column, last.end_line, last.end_column)


class _AstBuilder:
    """Lark callbacks, one per rule or alias in the grammar; each receives the
    rule's children (AST nodes and the tokens the grammar keeps) and returns
    an AST node. Lark calls them during parsing, bottom-up."""

    # ---- statements

    def start(self, children: list) -> nodes.Program:
        # The real span is filled in by _parse(), which knows the source.
        return nodes.Program(tuple(children), Span(_file(), 1, 1, 1, 1))

    def expr_stmt(self, children: list) -> nodes.ExprStmt:
        (expr,) = children
        return nodes.ExprStmt(expr, _extent(expr))

    def assign(self, children: list) -> nodes.Assign | nodes.FuncDef:
        target, value = children
        filename = _file()
        span = _spanning(filename, _extent(target), _extent(value))
        if isinstance(target, nodes.Name):
            return nodes.Assign(target.id, value, span, target.span)
        if isinstance(target, nodes.Call) and isinstance(target.func, nodes.Name):
            return _function_definition(target, value, span)
        raise AdcliError(
            "syntax",
            f"cannot assign to {_describe(target)}",
            target.span,
            hint="the left of '=' is a name, or a definition such as f(x, y)",
        )

    def assert_stmt(self, children: list) -> nodes.Assert:
        keyword, test, *rest = children
        filename = _file()
        message = _string_node(rest[0], filename) if rest else None
        last = message.span if message is not None else _extent(test)
        return nodes.Assert(
            test, message, _spanning(filename, _token_span(keyword, filename), last)
        )

    def import_stmt(self, children: list) -> nodes.Import:
        keyword, path = children
        filename = _file()
        path_node = _string_node(path, filename)
        span = _spanning(filename, _token_span(keyword, filename), path_node.span)
        return nodes.Import(path_node.value, span, path_node.span)

    # ---- operators

    def compare(self, children: list) -> nodes.Binary:
        return _fold_binary(children, _file())

    def arith(self, children: list) -> nodes.Binary:
        return _fold_binary(children, _file())

    def term(self, children: list) -> nodes.Binary:
        return _fold_binary(children, _file())

    def power(self, children: list) -> nodes.Binary:
        return _fold_binary(children, _file())

    def unary(self, children: list) -> nodes.Unary:
        op, operand = children
        filename = _file()
        span = _spanning(filename, _token_span(op, filename), _extent(operand))
        return nodes.Unary(str(op), operand, span)

    # ---- postfix

    def call(self, children: list) -> nodes.Call | nodes.MethodCall:
        func = children[0]
        closing = children[-1]
        args, kwargs = children[1] if len(children) == 3 else ((), ())
        filename = _file()
        span = _spanning(filename, _extent(func), _token_span(closing, filename))
        if isinstance(func, nodes.Attribute):
            return nodes.MethodCall(func.obj, func.name, args, kwargs, span, func.name_span)
        return nodes.Call(func, args, kwargs, span)

    def arguments(self, children: list) -> tuple[tuple, tuple]:
        args: list = []
        kwargs: list[nodes.Keyword] = []
        seen: set[str] = set()
        for item in children:
            if isinstance(item, nodes.Keyword):
                if item.name in seen:
                    raise AdcliError(
                        "syntax", f"keyword argument '{item.name}' given twice", item.name_span
                    )
                seen.add(item.name)
                kwargs.append(item)
            elif kwargs:
                raise AdcliError(
                    "syntax",
                    "positional argument after keyword argument",
                    item.span,
                    hint="put positional arguments first, then name=value ones",
                )
            else:
                args.append(item)
        return tuple(args), tuple(kwargs)

    def keyword(self, children: list) -> nodes.Keyword:
        name, value = children
        filename = _file()
        name_span = _token_span(name, filename)
        return nodes.Keyword(
            str(name), value, _spanning(filename, name_span, _extent(value)), name_span
        )

    def attribute(self, children: list) -> nodes.Attribute:
        obj, name = children
        filename = _file()
        name_span = _token_span(name, filename)
        return nodes.Attribute(
            obj, str(name), _spanning(filename, _extent(obj), name_span), name_span
        )

    def index(self, children: list) -> nodes.Index:
        obj, items, closing = children
        filename = _file()
        span = _spanning(filename, _extent(obj), _token_span(closing, filename))
        return nodes.Index(obj, items, span)

    def subscripts(self, children: list) -> tuple:
        return tuple(children)

    def slice(self, children: list) -> nodes.Slice:
        filename = _file()
        parts: list[Any] = [None]
        for child in children:
            if isinstance(child, nodes.Node):
                parts[-1] = child
            else:  # a COLON token
                parts.append(None)
        start, stop, step = (parts + [None, None])[:3]
        first, last = children[0], children[-1]
        first_span = (
            _extent(first) if isinstance(first, nodes.Node) else _token_span(first, filename)
        )
        last_span = _extent(last) if isinstance(last, nodes.Node) else _token_span(last, filename)
        return nodes.Slice(start, stop, step, _spanning(filename, first_span, last_span))

    # ---- atoms

    def number(self, children: list) -> nodes.Number:
        (token,) = children
        text = str(token)
        span = _token_span(token, _file())
        try:
            value: int | float = int(text) if text.isdigit() else float(text)
        except ValueError:  # more digits than int() accepts
            raise AdcliError("limit", "number literal has too many digits", span) from None
        return nodes.Number(value, text, span)

    def string(self, children: list) -> nodes.String:
        return _string_node(children[0], _file())

    def true(self, children: list) -> nodes.Bool:
        return nodes.Bool(True, _token_span(children[0], _file()))

    def false(self, children: list) -> nodes.Bool:
        return nodes.Bool(False, _token_span(children[0], _file()))

    def none(self, children: list) -> nodes.NoneLit:
        return nodes.NoneLit(_token_span(children[0], _file()))

    def name(self, children: list) -> nodes.Name:
        (token,) = children
        return nodes.Name(str(token), _token_span(token, _file()))

    def paren(self, children: list) -> nodes.Node:
        opening, inner, closing = children
        filename = _file()
        span = _spanning(filename, _token_span(opening, filename), _token_span(closing, filename))
        _state.paren_spans[id(inner)] = span
        return inner

    def list(self, children: list) -> nodes.ListLit:
        filename = _file()
        span = _spanning(
            filename, _token_span(children[0], filename), _token_span(children[-1], filename)
        )
        return nodes.ListLit(tuple(children[1:-1]), span)


def _file() -> str:
    assert _state is not None
    return _state.filename


def _extent(node: nodes.Node) -> Span:
    """The span of ``node`` including any parentheses around it."""
    return _state.paren_spans.get(id(node), node.span)


def _fold_binary(children: list, filename: str) -> nodes.Binary:
    """Fold ``[operand, op, operand, op, operand, ...]`` left to right in a loop
    (a 100,000-term chain is a flat list here, never a deep tree)."""
    left = children[0]
    start = _extent(left)
    for position in range(1, len(children), 2):
        op, right = children[position], children[position + 1]
        symbol = "^" if op == "**" else str(op)
        end = _extent(right)
        span = Span(filename, start.line, start.column, end.end_line, end.end_column)
        left = nodes.Binary(symbol, left, right, span, _token_span(op, filename))
        start = span
    return left


def _string_node(token: Token, filename: str) -> nodes.String:
    body = str(token)[1:-1]
    if "\\" in body:
        body = _ESCAPE_RE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), body)
    return nodes.String(body, _token_span(token, filename))


def _function_definition(target: nodes.Call, body: nodes.Node, span: Span) -> nodes.FuncDef:
    name = target.func
    assert isinstance(name, nodes.Name)
    if target.kwargs:
        raise AdcliError(
            "syntax",
            "cannot assign to a call with keyword arguments",
            target.kwargs[0].span,
            hint="a function definition lists plain parameter names: f(x, y) = ...",
        )
    params: list[str] = []
    for arg in target.args:
        if not isinstance(arg, nodes.Name):
            raise AdcliError(
                "syntax",
                "cannot assign to a call with non-name arguments",
                arg.span,
                hint="a function definition lists plain parameter names: f(x, y) = ...",
            )
        if arg.id in params:
            raise AdcliError("syntax", f"duplicate parameter '{arg.id}'", arg.span)
        params.append(arg.id)
    return nodes.FuncDef(
        name.id,
        tuple(params),
        body,
        span,
        name.span,
        tuple(arg.span for arg in target.args),
    )


_DESCRIPTIONS = {
    nodes.Number: "a number",
    nodes.String: "a string",
    nodes.NoneLit: "none",
    nodes.ListLit: "a bracket literal",
    nodes.Unary: "an expression",
    nodes.Call: "a call",
    nodes.Attribute: "an attribute",
    nodes.MethodCall: "a method call",
    nodes.Index: "an indexed element",
}


def _describe(node: nodes.Node) -> str:
    """How an error message names an expression that cannot be assigned to."""
    if isinstance(node, nodes.Bool):
        return "true" if node.value else "false"
    if isinstance(node, nodes.Binary):
        return "a comparison" if node.op in ("==", "!=", "<", "<=", ">", ">=") else "an expression"
    return _DESCRIPTIONS.get(type(node), "an expression")


# --------------------------------------------------------------------- errors


def _character_error(error: Any, source: str, state: _ParseState) -> AdcliError:
    """A character no token can start with: an unterminated string or a stray one."""
    filename = state.filename
    char = error.char
    line, column = error.line, error.column
    if char == '"':
        end_of_line = source.find("\n", error.pos_in_stream)
        if end_of_line < 0:
            end_of_line = len(source)
        if end_of_line > 0 and source[end_of_line - 1] == "\r":
            end_of_line -= 1
        width = max(1, end_of_line - error.pos_in_stream)
        return AdcliError(
            "syntax",
            "unterminated string",
            Span(filename, line, column, line, column + width),
            hint='close the string with " on the same line',
        )
    shown = f"'{char}'" if char.isprintable() and char != "'" else _codepoint(char)
    hint = None
    if char == "'":
        hint = 'strings are written in double quotes: "..."'
    elif char in "\u201c\u201d":
        hint = 'use straight double quotes: "..."'
    elif char.isalpha():
        hint = "names use ASCII letters, digits and _"
    elif char == "!":
        hint = "'!=' means not equal; there is no '!' operator"
    return AdcliError(
        "syntax", f"invalid character {shown}", Span(filename, line, column, line, column + 1), hint
    )


def _codepoint(char: str) -> str:
    if char == "'":
        return '"\'"'
    return f"U+{ord(char):04X}"


def _token_error(error: Any, state: _ParseState) -> AdcliError:
    """Translate Lark's UnexpectedToken into words, with the caret on the culprit."""
    token = error.token
    expected = set(error.expected)
    filename = state.filename
    at_end = token.type in ("$END", "_NEWLINE")
    # The parser fails on the token it just pulled; at the end of the input
    # that token is Lark's $END, and the post-lexer's last token came before it.
    before = state.current if token.type == "$END" else state.previous
    if token.type == "$END" and before is None:
        return _end_of_input_error(state)

    if at_end:
        where = (
            _just_after(before, filename) if before is not None else _token_span(token, filename)
        )
    else:
        where = _token_span(token, filename)
    after = ""
    if before is not None and before.type not in _SEPARATORS:
        after = " after a string" if before.type == "STRING" else f" after '{before}'"
    found = "" if at_end else f", found {_describe_token(token)}"

    if token.type == "COMP_OP" and _follows_comparison(error):
        return AdcliError(
            "syntax",
            "comparisons cannot be chained",
            where,
            hint="add parentheses: (a < b) == c",
        )
    if "NUMBER" in expected:  # an operand is due here
        if after or at_end:
            return AdcliError("syntax", f"expected an expression{after}{found}", where)
        return AdcliError("syntax", f"unexpected {_describe_token(token)}", where)
    if expected == {"NAME"}:
        return AdcliError("syntax", f"expected an attribute name{after}{found}", where)
    if expected == {"STRING"}:  # after 'import', or after 'assert test,'
        if before is not None and before.type == "IMPORT":
            what, hint = "a file name", 'write import "path.ad"'
        else:
            what, hint = "a message", 'write assert test, "message"'
        return AdcliError(
            "syntax", f"expected {what} in double quotes{after}{found}", where, hint
        )
    if at_end:
        return (
            _end_of_input_error(state)
            if token.type == "$END"
            else AdcliError("syntax", "unexpected end of line", where)
        )
    hint = None
    if token.type in _OPERAND_STARTS:
        hint = "is an operator, ',' or ';' missing before it?"
    elif token.type == "EQUAL":
        hint = "use '==' to compare"
    return AdcliError("syntax", f"unexpected {_describe_token(token)}", where, hint)


def _follows_comparison(error: Any) -> bool:
    """Whether the parser stack ends in ``operand COMP_OP operand``."""
    parser_state = getattr(error, "state", None)
    values = getattr(parser_state, "value_stack", ())
    return len(values) >= 2 and getattr(values[-2], "type", None) == "COMP_OP"


def _end_of_input_error(state: _ParseState) -> AdcliError:
    last = state.current
    if last is None:
        span = Span(state.filename, 1, 1, 1, 2)
    else:
        span = _just_after(last, state.filename)
    return AdcliError("syntax", "unexpected end of input", span)


def _just_after(token: Token, filename: str) -> Span:
    if token.type == "_NEWLINE":  # the caret goes at the end of that line
        return Span(filename, token.line, token.column, token.line, token.column + 1)
    return Span(filename, token.end_line, token.end_column, token.end_line, token.end_column + 1)


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "end of input"
    if token.type == "_NEWLINE":
        return "end of line"
    if token.type == "STRING":
        return "a string" if len(token) > 20 else f"string {token}"
    return f"'{token}'"
