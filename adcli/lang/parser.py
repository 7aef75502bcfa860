"""Source text → :mod:`adcli.lang.nodes`, with syntax errors in words.

The syntax lives in ``grammar/adcli.lark`` and nowhere else. Lark compiles it
(strictly: a grammar conflict is an error) into LALR(1) tables and a list of
terminals; this module runs those tables with its own small lexer and driver,
which is several times faster than Lark's general-purpose ones and lets the
lexer do the bracket work in the same pass:

* a newline inside ``( )`` or ``[ ]`` does not end a statement;
* brackets must match, and may nest at most ``max_depth`` deep;
* rules whose name starts with ``_`` are spliced into their parent and ``?``
  rules with one child pass it through, as in Lark's trees; every other rule
  or alias names a method of :class:`_AstBuilder`, which returns a node.

Neither the lexer, the driver nor the builder recurses, so a 100,000-term
``1+1+...+1`` parses. The compiled tables are cached as JSON under the user's
cache directory, keyed by the grammar's text, so the usual
start-up neither builds tables nor imports Lark.
"""

from __future__ import annotations

import gc
import json
import os
import re
import threading
import zlib
from typing import Any

from adcli.errors import AdcliError, Span
from adcli.lang import nodes

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SOURCE_BYTES",
    "build_lark",
    "grammar_text",
    "is_complete",
    "parse",
    "read_source",
]

#: Whole-number literals from here up are floats (as results of arithmetic are).
_INT_LIMIT = 2**63
#: How deeply brackets may nest before a script is refused (kind "limit").
DEFAULT_MAX_DEPTH = 200
#: The largest source accepted, in UTF-8 bytes (kind "limit").
DEFAULT_MAX_SOURCE_BYTES = 10 * 1024 * 1024


def parse(
    source: str,
    filename: str = "<eval>",
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES,
) -> nodes.Program:
    """Parse a whole script or one-liner into a :class:`~adcli.lang.nodes.Program`.

    ``filename`` goes into every span. Raises :class:`AdcliError` of kind
    ``"syntax"`` for malformed input, and of kind ``"limit"`` when brackets
    nest deeper than ``max_depth`` or the source is larger than
    ``max_source_bytes``.
    """
    try:
        return _parse(source, filename, max_depth, max_source_bytes)
    except _Unclosed as unclosed:
        raise unclosed.error from None


def read_source(
    path: str | os.PathLike,
    filename: str | None = None,
    max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES,
) -> str:
    """The text of the script at ``path``: UTF-8, a leading byte-order mark dropped.

    Bytes that are not UTF-8 are a syntax error at the first of them (``filename``,
    default ``path``, goes into its span). At most ``max_source_bytes`` are read
    (``/dev/zero`` never ends): more is a ``limit`` error. ``OSError`` passes to
    the caller.
    """
    filename = filename or str(path)
    with open(path, "rb") as file:
        data = file.read(max_source_bytes + 1)
    if len(data) > max_source_bytes:
        raise AdcliError(
            "limit",
            f"source too large (more than {max_source_bytes} bytes; limit {max_source_bytes})",
            Span(filename, 1, 1, 1, 1),
            hint="split it into several files, or raise the limit with --max-source-bytes",
        )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        line_start = data.rfind(b"\n", 0, start) + 1
        line = data.count(b"\n", 0, start) + 1
        column = len(data[line_start:start].decode("utf-8", "replace")) + 1
        raise AdcliError(
            "syntax",
            f"byte 0x{data[start]:02X} is not UTF-8 text",
            Span(filename, line, column, line, column + 1),
            hint="save the script as UTF-8",
        ) from None


def is_complete(source: str) -> bool:
    """Whether ``source`` is a complete input for the REPL.

    False only when a bracket is still open at the end, so another line may
    complete it; input that fails to parse for any other reason (``1 +``) is
    complete, and :func:`parse` reports its error.
    """
    try:
        _parse(source, "<input>", DEFAULT_MAX_DEPTH, DEFAULT_MAX_SOURCE_BYTES)
    except _Unclosed:
        return False
    except AdcliError:
        return True
    return True


def grammar_text() -> str:
    """The text of ``adcli.lark``: shipped inside the package as
    ``adcli/grammar/``, or at the top of the source tree."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # adcli/
    for folder in (
        os.path.join(package, "grammar"),
        os.path.join(os.path.dirname(package), "grammar"),
    ):
        try:
            with open(os.path.join(folder, "adcli.lark"), encoding="utf-8") as file:
                return file.read()
        except FileNotFoundError:
            continue
    # Installed somewhere without plain files (a zip): ask the import system.
    from importlib.resources import files

    return files("adcli.grammar").joinpath("adcli.lark").read_text(encoding="utf-8")


# ---------------------------------------------------------------------- tokens


class _Token:
    """One token: its terminal's name (``type``), its text and its place."""

    __slots__ = ("column", "end_column", "end_line", "line", "type", "value")

    def __init__(
        self, type: str, value: Any, line: int, column: int, end_line: int, end_column: int
    ) -> None:
        self.type = type
        self.value = value
        self.line = line
        self.column = column
        self.end_line = end_line
        self.end_column = end_column

    def __repr__(self) -> str:
        return f"_Token({self.type!r}, {self.value!r}, {self.line}:{self.column})"


class _Unclosed(Exception):
    """A bracket still open at the end of the input (carries the user's error)."""

    def __init__(self, error: AdcliError) -> None:
        super().__init__(error.message)
        self.error = error


# A token of this type stands where lexing failed; the parser raises the
# error it carries (token.value) only if it gets that far, so errors are
# reported in source order.
# Names that open a grad-mode block (`no_grad { ... }`): plain names to the grammar,
# told apart by the builder; the lexer highlights them as keywords before a brace.
GRAD_MODE_BLOCKS = ("no_grad", "enable_grad")

_FAILED = "$FAILED"
_END = "$END"
_NO_TOKEN = "no_token"  # a regex group name; terminal names are upper case
_NEWLINE = "_NEWLINE"
_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSERS = {"RPAR": "LPAR", "RSQB": "LSQB", "RBRACE": "LBRACE"}
_OPENING_TEXT = {"RPAR": "(", "RSQB": "[", "RBRACE": "{"}
_SEPARATORS = frozenset({_NEWLINE, "SEMICOLON"})
# Tokens that begin an operand; one of them where an operator was due
# usually means a missing operator, comma or semicolon.
_OPERAND_STARTS = frozenset({"NAME", "NUMBER", "STRING", "TRUE", "FALSE", "NONE"})


def _tokenize(source: str, filename: str, max_depth: int, tables: _Tables) -> list[_Token]:
    """Split ``source`` into tokens, ending with ``$END`` (or ``$FAILED``)."""
    ignored = tables.ignored
    keywords = tables.keywords
    tokens: list[_Token] = []
    append = tokens.append
    open_brackets: list[_Token] = []
    line, line_start, position = 1, 0, 0
    for found in tables.regex.finditer(source):
        kind = found.lastgroup
        if kind in ignored:
            continue
        position, end = found.span()
        column = position - line_start + 1
        if kind == _NEWLINE:
            # Inside ( ) or [ ] a newline is only space; inside { } it ends a statement.
            if not open_brackets or open_brackets[-1].type == "LBRACE":
                append(_Token(kind, "\n", line, column, line, column + 1))
            line += 1
            line_start = end
            continue
        if kind == _NO_TOKEN:
            error = _character_error(source, position, line, line_start, filename)
            append(_Token(_FAILED, error, line, column, line, 0))
            return tokens
        value = found.group()
        if kind in keywords:
            kind = keywords[kind].get(value, kind)
        token = _Token(kind, value, line, column, line, column + end - position)
        if kind == "ELSE" and tokens and tokens[-1].type == _NEWLINE:
            # `}` newline `else`: the newlines do not end the if statement.
            last = len(tokens)
            while last and tokens[last - 1].type == _NEWLINE:
                last -= 1
            if last and tokens[last - 1].type == "RBRACE":
                del tokens[last:]
        if kind in _OPENERS:
            if len(open_brackets) >= max_depth:
                error = AdcliError(
                    "limit",
                    f"expression nested too deeply (limit {max_depth})",
                    _span(token, filename),
                    hint="split the expression into several statements, or raise the limit "
                    "with --max-depth",
                )
                append(_Token(_FAILED, error, line, column, line, 0))
                return tokens
            open_brackets.append(token)
        elif kind in _CLOSERS:
            error = _close_bracket(token, open_brackets, filename)
            if error is not None:
                append(_Token(_FAILED, error, line, column, line, 0))
                return tokens
        append(token)
    position = len(source)
    end_column = position - line_start + 1
    if open_brackets:
        opener = open_brackets[-1]
        error = AdcliError("syntax", f"'{opener.value}' was never closed", _span(opener, filename))
        append(_Token(_FAILED, _Unclosed(error), line, end_column, line, 0))
    else:
        append(_Token(_END, "", line, end_column, line, end_column))
    return tokens


def _close_bracket(token: _Token, open_brackets: list[_Token], filename: str) -> AdcliError | None:
    opening = _OPENING_TEXT[token.type]
    if not open_brackets:
        return AdcliError(
            "syntax",
            f"unexpected '{token.value}'",
            _span(token, filename),
            hint=f"there is no '{opening}' open for it to close",
        )
    opener = open_brackets.pop()
    if opener.type != _CLOSERS[token.type]:
        return AdcliError(
            "syntax",
            f"closing '{token.value}' does not match '{opener.value}' opened at line "
            f"{opener.line}, column {opener.column}",
            _span(token, filename),
        )
    return None


# ---------------------------------------------------------------------- driver

# How the driver treats a rule's reduction (see _Tables.rules).
_PASS, _SPLICE, _BUILD = 0, 1, 2
# How a rule treats each symbol it pops: drop it, keep it, or splice its list.
_DROP, _KEEP, _INLINE = 0, 1, 2


class _Splice(list):
    """The children of a ``_rule``, waiting to be spliced into its parent."""

    __slots__ = ()


def _parse(source: str, filename: str, max_depth: int, max_source_bytes: int) -> nodes.Program:
    if not isinstance(source, str):
        raise TypeError(f"source must be str, not {type(source).__name__}")
    _check_size(source, filename, max_source_bytes)
    source = source.removeprefix("\ufeff")
    tables = _get_tables()
    # Parsing makes many objects and no reference cycles; pausing the cyclic
    # collector meanwhile saves a quarter of the time on long scripts.
    collecting = gc.isenabled()
    gc.disable()
    try:
        tokens = _tokenize(source, filename, max_depth, tables)
        program = _run(tables, tokens, _AstBuilder(filename))
    finally:
        if collecting:
            gc.enable()
    return nodes.Program(program.statements, _program_span(source, filename))


def _run(tables: _Tables, tokens: list[_Token], builder: _AstBuilder) -> nodes.Program:
    """The LALR(1) loop: shift tokens, reduce rules, build nodes bottom-up."""
    actions = tables.actions
    rules = tables.rules
    pass_origins = tables.pass_origins
    pass_chains = tables.pass_chains
    keeps_all = tables.keeps_all
    expand_single = tables.expand_single
    handlers = [getattr(builder, name) if name else None for name in tables.handler_names]
    end_state = tables.end_state
    states = [tables.start_state]
    values: list[Any] = []
    for index, token in enumerate(tokens):
        kind = token.type
        state = states[-1]
        while True:
            action = actions[state].get(kind)
            if action is None:
                raise _syntax_error(token, tokens, index, states, values, tables, builder)
            if action >= 0:  # shift
                states.append(action)
                values.append(token)
                break
            if pass_origins[~action] is not None:
                # A ?rule with one child: nothing to build, only a new state.
                # Such reductions come in chains (atom -> postfix -> ... ->
                # expr); each replaces the top state and depends only on the
                # state below it, so the chain's end is memoised.
                key = (states[-2], action, kind)
                state = pass_chains.get(key)
                if state is None:
                    state = pass_chains[key] = _follow_passes(tables, states[-2], action, kind)
                states[-1] = state
                continue
            rule_index = ~action
            origin, size, how, modes = rules[rule_index]
            if size:
                children = values[-size:]
                del values[-size:]
                del states[-size:]
            else:
                children = []
            if rule_index not in keeps_all:
                children = _filter_children(children, modes)
            if how == _SPLICE:
                values.append(children if type(children) is _Splice else _Splice(children))
            elif len(children) == 1 and rule_index in expand_single:
                values.append(children[0])
            else:
                values.append(handlers[rule_index](children))
            state = actions[states[-1]][origin]
            states.append(state)
            if state == end_state and kind == _END:
                return values[-1]
    raise AssertionError("the token list always ends with $END or $FAILED")


def _filter_children(popped: list[Any], modes: tuple[int, ...]) -> list[Any]:
    """Drop the tokens a rule does not keep; splice in the lists of its _rules."""
    children: list[Any] = []
    for value, mode in zip(popped, modes):
        if mode == _KEEP:
            children.append(value)
        elif mode == _INLINE:
            if children:
                children.extend(value)
            else:  # left recursion: reuse the list, no copying
                children = value
    return children


def _follow_passes(tables: _Tables, below: int, action: int, kind: str) -> int:
    """The state after a chain of one-child ?rule reductions, starting with
    ``action`` on top of state ``below``, with ``kind`` next."""
    actions = tables.actions
    pass_origins = tables.pass_origins
    while True:
        state = actions[below][pass_origins[~action]]
        action = actions[state].get(kind)
        if action is None or action >= 0 or pass_origins[~action] is None:
            return state


def _check_size(source: str, filename: str, max_source_bytes: int) -> None:
    # len() counts characters; encode only when the text might be too large.
    if len(source) * 4 <= max_source_bytes:
        return
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > max_source_bytes:
        raise AdcliError(
            "limit",
            f"source too large ({size} bytes; limit {max_source_bytes})",
            Span(filename, 1, 1, 1, 1),
            hint="split it into several files, or raise the limit with --max-source-bytes",
        )


def _program_span(source: str, filename: str) -> Span:
    last_line = source.count("\n") + 1
    last_column = len(source) - (source.rfind("\n") + 1) + 1
    return Span(filename, 1, 1, last_line, last_column)


# ---------------------------------------------------------------------- tables


class _Tables:
    """The grammar compiled for :func:`_run`: plain data, cached as JSON.

    ``actions[state][symbol]`` is a state to shift to (>= 0), ``~rule`` to
    reduce by, or after a reduction the state to go to for the rule's
    origin. ``rules[i]`` is ``(origin, size, how, modes)``; the handler for
    rule ``i`` is the :class:`_AstBuilder` method ``handler_names[i]``.
    """

    FORMAT = 1

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.actions: list[dict[str, int]] = data["actions"]
        self.start_state: int = data["start_state"]
        self.end_state: int = data["end_state"]
        self.rules: list[tuple[str, int, int, tuple[int, ...]]] = [
            (origin, size, how, tuple(modes)) for origin, size, how, modes in data["rules"]
        ]
        self.handler_names: list[str | None] = data["handler_names"]
        self.expand_single = frozenset(data["expand_single"])
        # For each rule: its origin if reducing it only changes state, else None.
        self.pass_origins: list[str | None] = [
            origin if how == _PASS else None for origin, _, how, _ in self.rules
        ]
        self.pass_chains: dict[tuple[int, int, str], int] = {}
        # Rules that keep every child as it is: no filtering needed.
        self.keeps_all = frozenset(
            index for index, rule in enumerate(self.rules) if all(m == _KEEP for m in rule[3])
        )
        # One alternative per terminal, in matching order; the last matches
        # any character, so a character that starts no token is seen.
        alternatives = [f"(?P<{name}>{pattern})" for name, pattern in data["terminals"]]
        alternatives.append(f"(?P<{_NO_TOKEN}>[\\s\\S])")
        self.regex = re.compile("|".join(alternatives))
        self.ignored = frozenset(data["ignored"])
        self.keywords: dict[str, dict[str, str]] = data["keywords"]


_tables: _Tables | None = None
_tables_lock = threading.Lock()


def _get_tables() -> _Tables:
    """The compiled grammar: from memory, else the cache file, else Lark."""
    global _tables
    if _tables is None:
        with _tables_lock:
            if _tables is None:
                _tables = _load_tables()
    return _tables


def _load_tables() -> _Tables:
    text = grammar_text()
    # The file name tells grammars apart cheaply; the text inside decides.
    checksum = zlib.crc32(text.encode("utf-8"))
    cache_file = os.path.join(_cache_dir(), f"grammar-{_Tables.FORMAT}-{checksum:08x}.json")
    try:
        with open(cache_file, encoding="utf-8") as file:
            data = json.load(file)
        if data.get("grammar") == text and data.get("format") == _Tables.FORMAT:
            return _Tables(data)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    data = _compile_grammar(text)
    data["grammar"] = text
    _write_cache(cache_file, data)
    return _Tables(data)


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "adcli")


def _write_cache(cache_file: str, data: dict[str, Any]) -> None:
    """Write atomically; a cache that cannot be written is simply skipped."""
    partial = f"{cache_file}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        with open(partial, "w", encoding="utf-8") as file:
            json.dump(data, file, separators=(",", ":"))
        os.replace(partial, cache_file)
    except OSError:
        pass


def build_lark(text: str | None = None, **options: Any) -> Any:
    """A Lark parser for the grammar (``text``, by default ``adcli.lark``),
    built strictly: a shift/reduce or reduce/reduce conflict is an error.
    Only its tables are used; its lexer is a stub, since :func:`_tokenize`
    does the lexing."""
    from lark import Lark
    from lark.lexer import Lexer

    class TablesOnly(Lexer):
        def __init__(self, lexer_conf: Any) -> None:
            pass

        def lex(self, lexer_state: Any, parser_state: Any) -> Any:
            raise NotImplementedError("adcli.lang.parser lexes for itself")

    settings: dict[str, Any] = {
        "parser": "lalr",
        "lexer": TablesOnly,
        "strict": True,
        "maybe_placeholders": False,
        **options,
    }
    return Lark(grammar_text() if text is None else text, **settings)


def _compile_grammar(text: str) -> dict[str, Any]:
    """Compile the grammar with Lark into the plain data of :class:`_Tables`."""
    from lark.lexer import PatternStr
    from lark.parsers.lalr_analysis import Shift

    lark = build_lark(text)
    table = lark.parser.parser.parser.parse_table
    rule_index = {rule: index for index, rule in enumerate(lark.rules)}

    # Lark numbers the states 0..n-1 (an IntParseTable).
    assert sorted(table.states) == list(range(len(table.states)))
    actions: list[dict[str, int]] = []
    for state in range(len(table.states)):
        row = {}
        for symbol, (action, argument) in table.states[state].items():
            row[symbol] = argument if action is Shift else ~rule_index[argument]
        actions.append(row)

    rules, handler_names, expand_single = [], [], []
    for index, rule in enumerate(lark.rules):
        modes = []
        for symbol in rule.expansion:
            if symbol.is_term:
                modes.append(_DROP if symbol.filter_out else _KEEP)
            else:
                modes.append(_INLINE if symbol.name.startswith("_") else _KEEP)
        origin = rule.origin.name
        if origin.startswith("_"):
            how, handler = _SPLICE, None
        elif rule.options.expand1 and modes == [_KEEP]:
            how, handler = _PASS, None
        else:
            how, handler = _BUILD, rule.alias or origin
            if rule.options.expand1:
                expand_single.append(index)
        rules.append((origin, len(modes), how, modes))
        handler_names.append(handler)

    # Order and keywords as Lark's own basic lexer: longer patterns first, and
    # a string terminal that the NAME pattern also matches becomes a keyword.
    terminals = sorted(
        lark.terminals,
        key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name),
    )
    strings = [t for t in terminals if isinstance(t.pattern, PatternStr)]
    keywords: dict[str, dict[str, str]] = {}
    embedded = set()
    for terminal in terminals:
        if isinstance(terminal.pattern, PatternStr):
            continue
        pattern = re.compile(terminal.pattern.to_regexp())
        for string in strings:
            if pattern.fullmatch(string.pattern.value):
                keywords.setdefault(terminal.name, {})[string.pattern.value] = string.name
                embedded.add(string.name)

    return {
        "format": _Tables.FORMAT,
        "actions": actions,
        "start_state": table.start_states["start"],
        "end_state": table.end_states["start"],
        "rules": rules,
        "handler_names": handler_names,
        "expand_single": expand_single,
        "terminals": [[t.name, t.pattern.to_regexp()] for t in terminals if t.name not in embedded],
        "ignored": sorted(lark.ignore_tokens),
        "keywords": keywords,
    }


# ----------------------------------------------------------------- AST building


def _span(token: _Token, filename: str) -> Span:
    return Span(filename, token.line, token.column, token.end_line, token.end_column)


def _spanning(filename: str, first: Span | _Token, last: Span | _Token) -> Span:
    return Span(filename, first.line, first.column, last.end_line, last.end_column)


class _AstBuilder:
    """One method per rule or alias in the grammar. Each receives the rule's
    children (nodes, and the tokens the grammar keeps) and returns a node.
    One builder serves one parse."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        # id(node) -> its span including the parentheses around it. A node
        # keeps its own span (a Name's is the name); its parent's span covers
        # the parentheses, so the span of (a + b) * c starts at '('.
        # The node is stored too, so that its id is not reused during the parse.
        self.paren_spans: dict[int, tuple[nodes.Node, Span]] = {}

    def extent(self, node: nodes.Node) -> Span:
        """The span of ``node`` including any parentheses around it."""
        entry = self.paren_spans.get(id(node))
        return node.span if entry is None else entry[1]

    def token_span(self, token: _Token) -> Span:
        return Span(self.filename, token.line, token.column, token.end_line, token.end_column)

    # ---- statements

    def start(self, children: list) -> nodes.Program:
        # _parse() gives the program its span; it knows the whole source.
        return nodes.Program(tuple(children), Span(self.filename, 1, 1, 1, 1))

    def expr_stmt(self, children: list) -> nodes.ExprStmt:
        (expr,) = children
        return nodes.ExprStmt(expr, self.extent(expr))

    def assign(self, children: list) -> nodes.Node:
        target, value = children
        span = _spanning(self.filename, self.extent(target), self.extent(value))
        if isinstance(target, nodes.Name):
            return nodes.Assign(target.id, value, span, target.span)
        if isinstance(target, nodes.Call) and isinstance(target.func, nodes.Name):
            return _function_definition(target, value, span)
        if isinstance(target, nodes.Index):
            return nodes.SetItem(target.obj, target.items, value, span, target.span)
        if isinstance(target, nodes.Attribute):
            return nodes.SetAttr(target.obj, target.name, value, span, target.name_span)
        raise AdcliError(
            "syntax",
            f"cannot assign to {_describe(target)}",
            self.extent(target),
            hint="the left of '=' is a name, a[i], a.grad, or a definition such as f(x, y)",
        )

    def unpack(self, children: list) -> nodes.Unpack:
        *targets, value = children
        for target in targets:
            if not isinstance(target, nodes.Name):
                raise AdcliError(
                    "syntax",
                    f"cannot unpack into {_describe(target)}",
                    self.extent(target),
                    hint="unpack into plain names: a, b = ...",
                )
        names = tuple(t.id for t in targets)
        for i, name in enumerate(names):
            if name in names[:i]:
                raise AdcliError("syntax", f"'{name}' is unpacked into twice", targets[i].span)
        span = _spanning(self.filename, self.extent(targets[0]), self.extent(value))
        return nodes.Unpack(names, value, span, tuple(t.span for t in targets))

    def aug_assign(self, children: list) -> nodes.AugAssign:
        target, op, value = children
        if not isinstance(target, (nodes.Name, nodes.Index, nodes.Attribute)):
            raise AdcliError(
                "syntax",
                f"'{op.value}' cannot update {_describe(target)}",
                self.extent(target),
                hint=f"the left of '{op.value}' is a name, a[i] or a.data",
            )
        span = _spanning(self.filename, self.extent(target), self.extent(value))
        return nodes.AugAssign(target, op.value[0], value, span, self.token_span(op))

    def block(self, children: list) -> nodes.Block:
        opening, *statements, closing = children
        return nodes.Block(tuple(statements), _spanning(self.filename, opening, closing))

    def block_stmt(self, children: list) -> nodes.Node:
        head, block = children
        span = _spanning(self.filename, self.extent(head), block.span)
        if isinstance(head, nodes.Name) and head.id in GRAD_MODE_BLOCKS:
            return nodes.GradMode(head.id == "enable_grad", block, span)
        if isinstance(head, nodes.Call) and isinstance(head.func, nodes.Name):
            return _function_definition(head, block, span)
        raise AdcliError(
            "syntax",
            "unexpected '{'",
            Span(
                self.filename,
                block.span.line,
                block.span.column,
                block.span.line,
                block.span.column + 1,
            ),
            hint="a block follows for, while, if, else, no_grad, enable_grad, or a function "
            "header such as f(x, y)",
        )

    def for_stmt(self, children: list) -> nodes.For:
        keyword, name, _in, iterable, block = children
        span = _spanning(self.filename, keyword, block.span)
        return nodes.For(name.value, iterable, block, span, self.token_span(name))

    def while_stmt(self, children: list) -> nodes.While:
        keyword, test, block = children
        return nodes.While(test, block, _spanning(self.filename, keyword, block.span))

    def if_stmt(self, children: list) -> nodes.If:
        # [IF test block (ELSE IF test block)* (ELSE block)?]
        branches: list[tuple[Any, nodes.Node, nodes.Block]] = []
        orelse: nodes.Block | nodes.If | None = None
        position = 0
        while position < len(children):
            token = children[position]
            if token.type == "IF":
                branches.append((token, children[position + 1], children[position + 2]))
                position += 3
            elif children[position + 1].__class__ is nodes.Block:  # ELSE block
                orelse = children[position + 1]
                position += 2
            else:  # ELSE IF: the IF comes next
                position += 1
        for keyword, test, block in reversed(branches):
            last = orelse.span if orelse is not None else block.span
            orelse = nodes.If(test, block, orelse, _spanning(self.filename, keyword, last))
        assert isinstance(orelse, nodes.If)
        return orelse

    def break_stmt(self, children: list) -> nodes.Break:
        return nodes.Break(self.token_span(children[0]))

    def continue_stmt(self, children: list) -> nodes.Continue:
        return nodes.Continue(self.token_span(children[0]))

    def return_stmt(self, children: list) -> nodes.Return:
        keyword, *rest = children
        value = rest[0] if rest else None
        last = self.extent(value) if value is not None else keyword
        return nodes.Return(value, _spanning(self.filename, keyword, last))

    def bare_tuple(self, children: list) -> nodes.TupleLit:
        span = _spanning(self.filename, self.extent(children[0]), self.extent(children[-1]))
        return nodes.TupleLit(tuple(children), span)

    def tuple(self, children: list) -> nodes.TupleLit:
        span = _spanning(self.filename, children[0], children[-1])
        return nodes.TupleLit(tuple(children[1:-1]), span)

    def logic(self, children: list) -> nodes.Logic:
        left = children[0]
        start = self.extent(left)
        for position in range(1, len(children), 2):
            op, right = children[position], children[position + 1]
            end = self.extent(right)
            span = Span(self.filename, start.line, start.column, end.end_line, end.end_column)
            left = nodes.Logic(op.value, left, right, span, self.token_span(op))
            start = span
        return left

    def not_test(self, children: list) -> nodes.Not:
        keyword, operand = children
        return nodes.Not(operand, _spanning(self.filename, keyword, self.extent(operand)))

    def assert_stmt(self, children: list) -> nodes.Assert:
        keyword, test, *rest = children
        message = self.string(rest) if rest else None
        last = message.span if message is not None else self.extent(test)
        return nodes.Assert(test, message, _spanning(self.filename, keyword, last))

    def import_stmt(self, children: list) -> nodes.Import:
        keyword, path = children
        path_node = self.string([path])
        span = _spanning(self.filename, keyword, path_node.span)
        return nodes.Import(path_node.value, span, path_node.span)

    # ---- operators

    def fold(self, children: list) -> nodes.Binary:
        """Fold ``[operand, op, operand, op, operand, ...]`` left to right in
        a loop: a 100,000-term chain is a flat list here, never a deep tree."""
        filename = self.filename
        left = children[0]
        start = self.extent(left)
        for position in range(1, len(children), 2):
            op, right = children[position], children[position + 1]
            symbol = "^" if op.value == "**" else op.value
            end = self.extent(right)
            span = Span(filename, start.line, start.column, end.end_line, end.end_column)
            left = nodes.Binary(symbol, left, right, span, self.token_span(op))
            start = span
        return left

    compare = arith = term = power = fold

    def unary(self, children: list) -> nodes.Unary:
        op, operand = children
        span = _spanning(self.filename, op, self.extent(operand))
        return nodes.Unary(op.value, operand, span)

    # ---- postfix

    def call(self, children: list) -> nodes.Call | nodes.MethodCall:
        func = children[0]
        args, kwargs = children[1] if len(children) == 3 else ((), ())
        span = _spanning(self.filename, self.extent(func), children[-1])
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
                    self.extent(item),
                    hint="put positional arguments first, then name=value ones",
                )
            else:
                args.append(item)
        return tuple(args), tuple(kwargs)

    def keyword(self, children: list) -> nodes.Keyword:
        name, value = children
        name_span = self.token_span(name)
        span = _spanning(self.filename, name_span, self.extent(value))
        return nodes.Keyword(name.value, value, span, name_span)

    def attribute(self, children: list) -> nodes.Attribute:
        obj, name = children
        name_span = self.token_span(name)
        span = _spanning(self.filename, self.extent(obj), name_span)
        return nodes.Attribute(obj, name.value, span, name_span)

    def index(self, children: list) -> nodes.Index:
        obj, items, closing = children
        span = _spanning(self.filename, self.extent(obj), closing)
        return nodes.Index(obj, items, span)

    def subscripts(self, children: list) -> tuple:
        return tuple(children)

    def ellipsis(self, children: list) -> nodes.EllipsisIndex:
        (token,) = children
        return nodes.EllipsisIndex(self.token_span(token))

    def slice(self, children: list) -> nodes.Slice:
        parts: list[Any] = [None]
        for child in children:
            if isinstance(child, _Token):  # a colon
                parts.append(None)
            else:
                parts[-1] = child
        start, stop, step = [*parts, None, None][:3]
        first, last = children[0], children[-1]
        if not isinstance(first, _Token):
            first = self.extent(first)
        if not isinstance(last, _Token):
            last = self.extent(last)
        return nodes.Slice(start, stop, step, _spanning(self.filename, first, last))

    # ---- atoms

    def number(self, children: list) -> nodes.Number:
        (token,) = children
        text = token.value
        span = self.token_span(token)
        try:
            value: int | float = int(text) if text.isdigit() else float(text)
        except ValueError:  # more digits than int() accepts
            raise AdcliError("limit", "number literal has too many digits", span) from None
        if type(value) is int and value >= _INT_LIMIT:
            value = float(value)  # as arithmetic does: whole numbers stay within 64 bits
        return nodes.Number(value, text, span)

    def string(self, children: list) -> nodes.String:
        (token,) = children
        body = token.value[1:-1]
        if "\\" in body:
            body = _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), body)
        return nodes.String(body, self.token_span(token))

    def true(self, children: list) -> nodes.Bool:
        return nodes.Bool(True, self.token_span(children[0]))

    def false(self, children: list) -> nodes.Bool:
        return nodes.Bool(False, self.token_span(children[0]))

    def none(self, children: list) -> nodes.NoneLit:
        return nodes.NoneLit(self.token_span(children[0]))

    def name(self, children: list) -> nodes.Name:
        (token,) = children
        return nodes.Name(token.value, self.token_span(token))

    def paren(self, children: list) -> nodes.Node:
        opening, inner, closing = children
        span = _spanning(self.filename, opening, closing)
        self.paren_spans[id(inner)] = (inner, span)
        return inner

    def list(self, children: list) -> nodes.ListLit:
        span = _spanning(self.filename, children[0], children[-1])
        return nodes.ListLit(tuple(children[1:-1]), span)


# \" and \\ (the language's escapes), plus \n and \t; any other backslash
# stays as written, so "C:\data" means what it says.
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
_ESCAPE = re.compile(r"\\(.)")


def _function_definition(target: nodes.Call, body: nodes.Node, span: Span) -> nodes.FuncDef:
    name = target.func
    assert isinstance(name, nodes.Name)
    hint = "a function definition lists plain parameter names: f(x, y) = ..."
    if target.kwargs:
        raise AdcliError(
            "syntax", "cannot assign to a call with keyword arguments", target.kwargs[0].span, hint
        )
    params: list[str] = []
    for arg in target.args:
        if not isinstance(arg, nodes.Name):
            raise AdcliError(
                "syntax", "cannot assign to a call with non-name arguments", arg.span, hint
            )
        if arg.id in params:
            raise AdcliError("syntax", f"duplicate parameter '{arg.id}'", arg.span)
        params.append(arg.id)
    param_spans = tuple(arg.span for arg in target.args)
    return nodes.FuncDef(name.id, tuple(params), body, span, name.span, param_spans)


_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_DESCRIPTIONS = {
    nodes.Number: "a number",
    nodes.String: "a string",
    nodes.NoneLit: "none",
    nodes.ListLit: "a bracket literal",
    nodes.Call: "a call",
    nodes.Attribute: "an attribute",
    nodes.MethodCall: "a method call",
    nodes.Index: "an indexed element",
}


def _describe(node: nodes.Node) -> str:
    """How an error message names an expression that cannot be assigned to."""
    if isinstance(node, nodes.Bool):
        return "true" if node.value else "false"
    if isinstance(node, nodes.Binary) and node.op in _COMPARISONS:
        return "a comparison"
    return _DESCRIPTIONS.get(type(node), "an expression")


# ---------------------------------------------------------------------- errors


def _character_error(
    source: str, position: int, line: int, line_start: int, filename: str
) -> AdcliError:
    """No token starts here: an unterminated string or a stray character."""
    char = source[position]
    column = position - line_start + 1
    if char == '"':
        end_of_line = source.find("\n", position)
        if end_of_line < 0:
            end_of_line = len(source)
        width = max(1, len(source[position:end_of_line].rstrip("\r")))
        return AdcliError(
            "syntax",
            "unterminated string",
            Span(filename, line, column, line, column + width),
            hint='close the string with " on the same line',
        )
    if "\udc80" <= char <= "\udcff":  # a byte that was not UTF-8, kept by surrogateescape
        return AdcliError(
            "syntax",
            f"byte 0x{ord(char) - 0xDC00:02X} is not UTF-8 text",
            Span(filename, line, column, line, column + 1),
            hint="save the script as UTF-8",
        )
    if char == "'":
        shown, hint = '"\'"', 'strings are written in double quotes: "..."'
    elif char.isprintable():
        shown, hint = f"'{char}'", None
    else:
        shown, hint = f"U+{ord(char):04X}", None
    if char in "\u201c\u201d":
        hint = 'use straight double quotes: "..."'
    elif char.isalpha():
        hint = "names use ASCII letters, digits and _"
    elif char == "!":
        hint = "'!=' means not equal; there is no '!' operator"
    span = Span(filename, line, column, line, column + 1)
    return AdcliError("syntax", f"invalid character {shown}", span, hint)


def _syntax_error(
    token: _Token,
    tokens: list[_Token],
    index: int,
    states: list[int],
    values: list[Any],
    tables: _Tables,
    builder: _AstBuilder,
) -> Exception:
    """The parser cannot take ``token``: say why in words, with the caret on
    the culprit (just past the previous token when a line or input ends)."""
    if token.type == _FAILED:
        return token.value
    filename = builder.filename
    expected = {symbol for symbol in tables.actions[states[-1]] if symbol.isupper()}
    at_end = token.type in (_END, _NEWLINE)
    before = tokens[index - 1] if index > 0 else None

    if at_end and before is not None:
        where = _just_after(before, filename)
    else:
        where = _span(token, filename)
    after = ""
    if before is not None and before.type not in _SEPARATORS:
        after = " after a string" if before.type == "STRING" else f" after '{before.value}'"
    found = "" if at_end else f", found {_describe_token(token)}"

    opener = _open_bracket_before(tokens, index)
    if opener is not None and opener.line < token.line and opener.type != "LBRACE":
        # A bracket left open on an earlier line swallowed the newlines after it.
        return AdcliError(
            "syntax",
            f"'{opener.value}' was never closed",
            _span(opener, filename),
            hint=f"the error shows at line {token.line}, but the bracket opened here",
        )
    habit = _python_habit(token, tokens, index, expected)
    if habit is not None:
        message, hint = habit
        return AdcliError("syntax", message, where, hint)

    chained = len(values) >= 2 and getattr(values[-2], "type", None) == "COMP_OP"
    if token.type == "COMP_OP" and chained:
        return AdcliError(
            "syntax", "comparisons cannot be chained", where, "add parentheses: (a < b) == c"
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
            if token.type == "NAME":
                hint = (
                    'import reads .ad files, not Python modules: write import "path.ad" '
                    "(the math builtins need no import)"
                )
        else:
            what, hint = "a message", 'write assert test, "message"'
        return AdcliError("syntax", f"expected {what} in double quotes{after}{found}", where, hint)
    if at_end:
        ending = "end of input" if token.type == _END else "end of line"
        return AdcliError("syntax", f"unexpected {ending}", where)
    hint = None
    if token.type in _OPERAND_STARTS:
        hint = "is an operator, ',' or ';' missing before it?"
    elif token.type == "EQUAL":
        hint = "use '==' to compare"
    return AdcliError("syntax", f"unexpected {_describe_token(token)}", where, hint)


def _open_bracket_before(tokens: list[_Token], index: int) -> _Token | None:
    """The innermost bracket still open before ``tokens[index]`` (errors only: a scan)."""
    stack: list[_Token] = []
    for token in tokens[:index]:
        if token.type in _OPENERS:
            stack.append(token)
        elif token.type in _CLOSERS and stack:
            stack.pop()
    return stack[-1] if stack else None


def _python_habit(token: _Token, tokens: list[_Token], index: int, expected) -> tuple | None:
    """(message, hint) when the input reads like Python (or C) rather than .ad."""
    before = tokens[index - 1] if index > 0 else None
    if before is not None and before.type == "NAME" and before.value == "def":
        return (
            "'def' is Python: .ad defines a function without it",
            "write f(x) = expr, or f(x) { ...; return y }",
        )
    if token.type == "COLON" and "LBRACE" in expected:
        return (
            "unexpected ':' (a block is written in braces, not with ':')",
            "write for i in range(3) { ... }, if x > 0 { ... }, while cond { ... }",
        )
    if (
        before is not None
        and index >= 2
        and before.type == "ADD_OP"
        and tokens[index - 2].type == "ADD_OP"
        and before.value == tokens[index - 2].value
        and token.type in (_END, _NEWLINE, "SEMICOLON", "RBRACE")
    ):
        op = before.value
        return (f"there is no '{op}{op}' operator", f"write x {op}= 1")
    return None


def _just_after(token: _Token, filename: str) -> Span:
    if token.type == _NEWLINE:  # the caret goes at the end of that line
        return Span(filename, token.line, token.column, token.line, token.column + 1)
    return Span(filename, token.end_line, token.end_column, token.end_line, token.end_column + 1)


def _describe_token(token: _Token) -> str:
    if token.type == _END:
        return "end of input"
    if token.type == _NEWLINE:
        return "end of line"
    if token.type == "STRING":
        return "a string" if len(token.value) > 20 else f"string {token.value}"
    return f"'{token.value}'"
