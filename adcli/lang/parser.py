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

A statement whose shape (its tokens' kinds, and the state it starts in) was
met before is built by that shape's replay, a function written out once from
the tables that makes the same handler calls the driver would, so a script of
many alike statements is mostly built without the driver (see :class:`_Shapes`).

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
from collections.abc import Iterable, Iterator
from itertools import accumulate, compress, repeat
from operator import add, attrgetter, itemgetter, ne, not_, or_
from time import monotonic
from typing import Any

from adcli import __version__
from adcli.errors import AdcliError, Span
from adcli.lang import cache, nodes
from adcli.lang.sources import DEFAULT_MAX_SOURCE_BYTES, read_source

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SOURCE_BYTES",
    "build_lark",
    "grammar_text",
    "is_complete",
    "parse",
    "parse_with_lark",
    "read_source",
    "set_cache",
]

#: Whole-number literals from here up are floats (as results of arithmetic are).
_INT_LIMIT = 2**63
#: How deeply brackets may nest before a script is refused (kind "limit").
DEFAULT_MAX_DEPTH = 200


def parse(
    source: str,
    filename: str = "<eval>",
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES,
    timeout: float | None = None,
    cache: bool = False,
) -> nodes.Program:
    """Parse a whole script or one-liner into a :class:`~adcli.lang.nodes.Program`.

    ``filename`` goes into every span. Raises :class:`AdcliError` of kind
    ``"syntax"`` for malformed input, and of kind ``"limit"`` when brackets
    nest deeper than ``max_depth``, the source is larger than
    ``max_source_bytes``, or parsing takes more than ``timeout`` seconds.

    With ``cache`` (and unless :func:`set_cache` turned it off), a script of
    some size is looked up in the cache of parsed scripts first, and stored
    there once parsed (see :mod:`adcli.lang.astcache`).
    """
    deadline = _Deadline(timeout) if timeout else None
    key = None
    if cache and _use_cache and type(source) is str and len(source) >= CACHED_FROM_CHARS:
        from adcli.lang import astcache  # here: most one-liners never need it

        _check_size(source, filename, max_source_bytes)
        tables = _get_tables()
        versions = f"adcli {__version__}; lark {tables.data['lark']}"
        key = astcache.entry_key(source, tables.data["grammar"], versions)
        program = astcache.load(key, filename, max_depth, len(source))
        if program is not None:
            return program
    found: dict[str, int] = {}
    try:
        program = _parse(source, filename, max_depth, max_source_bytes, deadline, found)
    except _Unclosed as unclosed:
        raise unclosed.error from None
    if key is not None and "depth" in found:
        astcache.store(key, program, found["depth"])
    return program


_use_cache = True
#: Scripts shorter than this are parsed faster than an entry of the cache is read.
CACHED_FROM_CHARS = 1024


def set_cache(enabled: bool) -> None:
    """Turn the cache of parsed scripts on or off for this process (``--no-cache``)."""
    global _use_cache
    _use_cache = bool(enabled)


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


class _Token(tuple):
    """One token of the careful lexer: its terminal's name (``type``), its text
    (``value``), its offsets packed in one int (:func:`nodes.packed`) and its
    :class:`Span`. A token the fast driver shifts is a plain tuple of the first
    three; the builder reads only those three."""

    __slots__ = ()

    def __new__(cls, type: str, value: Any, pos: int, span: Span) -> _Token:  # noqa: PYI034
        return tuple.__new__(cls, (type, value, pos, span))

    type = property(itemgetter(0))
    value = property(itemgetter(1))
    span = property(itemgetter(3))
    line = property(lambda self: self[3][1])
    column = property(lambda self: self[3][2])
    end_line = property(lambda self: self[3][3])
    end_column = property(lambda self: self[3][4])

    def __repr__(self) -> str:
        return f"_Token({self[0]!r}, {self[1]!r}, {self.line}:{self.column})"


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


def _failed(error, position: int, filename: str, line: int, column: int) -> _Token:
    """The token that ends the careful lexer's list with ``error`` at this place."""
    return _Token(
        _FAILED, error, _packed(position, position), Span(filename, line, column, line, 0)
    )


def _tokenize(
    source: str,
    filename: str,
    max_depth: int,
    tables: _Tables,
    deadline: _Deadline | None = None,
) -> list[_Token]:
    """Split ``source`` into tokens, ending with ``$END`` (or ``$FAILED``): a
    Python loop per token, careful about every error; :func:`_fast_chunks` is
    the lexer of scripts without errors."""
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
                append(
                    _Token(
                        kind,
                        "\n",
                        _packed(position, end),
                        Span(filename, line, column, line, column + 1),
                    )
                )
            line += 1
            line_start = end
            continue
        if kind == _NO_TOKEN:
            error = _character_error(source, position, line, line_start, filename)
            append(_failed(error, position, filename, line, column))
            return tokens
        value = found.group()
        if deadline is not None and not len(tokens) % _CHUNK:
            deadline.check(filename)
        if kind in keywords:
            kind = keywords[kind].get(value, kind)
        span = Span(filename, line, column, line, column + end - position)
        token = _Token(kind, value, _packed(position, end), span)
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
                append(_failed(error, position, filename, line, column))
                return tokens
            open_brackets.append(token)
        elif kind in _CLOSERS:
            error = _close_bracket(token, open_brackets, filename)
            if error is not None:
                append(_failed(error, position, filename, line, column))
                return tokens
        append(token)
    position = len(source)
    end_column = position - line_start + 1
    if open_brackets:
        opener = open_brackets[-1]
        error = AdcliError("syntax", f"'{opener.value}' was never closed", _span(opener, filename))
        at = _packed(position, position)
        append(_Token(_FAILED, _Unclosed(error), at, Span(filename, line, end_column, line, 0)))
    else:
        at = _packed(position, position)
        append(_Token(_END, "", at, Span(filename, line, end_column, line, end_column)))
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


class _Fallback(Exception):
    """The fast lexer met something only the careful one reports well."""


class _Deadline:
    """The time limit of one parse (``--timeout``): checked once per chunk of tokens."""

    __slots__ = ("limit", "when")

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.when = monotonic() + limit

    def check(
        self, filename: str, token: tuple | None = None, lines: nodes.Lines | None = None
    ) -> None:
        """Raise once past the limit, at ``token`` (a :class:`_Token`, or a fast
        token whose span ``lines`` knows)."""
        if monotonic() > self.when:
            if token is None:
                where = Span(filename, 1, 1, 1, 1)
            elif isinstance(token, _Token):
                where = token.span
            else:
                where = lines.span(token[2]) if lines is not None else Span(filename, 1, 1, 1, 1)
            error = AdcliError(
                "limit",
                f"parsing ran past the time limit of {self.limit:g} s",
                where,
                hint="make it smaller, or raise the limit with --timeout",
            )
            error.timed_out = True  # type: ignore[attr-defined]
            raise error


def _parse(
    source: str,
    filename: str,
    max_depth: int,
    max_source_bytes: int,
    deadline: _Deadline | None = None,
    found: dict[str, int] | None = None,
) -> nodes.Program:
    """Parse with the fast lexer, and on any error again with the careful one.
    ``found["depth"]`` is set to the deepest bracket nesting when the fast one
    parsed the script."""
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
        try:
            if not tables.fast or len(source) > _MAX_OFFSET:
                raise _Fallback
            depth = [0]
            builder = _AstBuilder(filename, source)
            chunks = _fast_chunks(source, filename, max_depth, tables, deadline, depth, builder)
            program = _run_fast(tables, chunks, builder)
            if found is not None:
                found["depth"] = depth[0]
        except (_Fallback, AdcliError) as failed:
            if getattr(failed, "timed_out", False):
                raise
            # Errors are rare: the careful lexer finds the first one in source
            # order and words it (bracket errors, stray characters, limits).
            tokens = _tokenize(source, filename, max_depth, tables, deadline)
            builder = _AstBuilder(filename, source)
            program = _run(tables, _in_chunks(tokens, deadline, filename), builder, tokens)
    finally:
        if collecting:
            gc.enable()
    return nodes.Program(program.statements, _program_span(source, filename))


#: Tokens lexed (and parsed) at a time: lexing is done in C a chunk at a
#: time, so memory stays that of the tree being built, not of the tokens.
_CHUNK = 2048
#: Characters lexed at a time by the fast lexer (then on to the end of the line).
_CHUNK_CHARS = 8192
_SHIFT = nodes.SPAN_SHIFT
_LOW = (1 << _SHIFT) - 1  # the end offset of a packed span
_HIGH = ~_LOW  # its start
#: Offsets past this do not fit a packed span: the careful path parses such a text.
_MAX_OFFSET = _LOW


def _packed(start: int, end: int) -> int:
    return start << _SHIFT | end


def _fast_chunks(
    source: str,
    filename: str,
    max_depth: int,
    tables: _Tables,
    deadline: _Deadline | None,
    deepest_seen: list[int] | None = None,
    builder: _AstBuilder | None = None,
) -> Iterator[tuple[str, list[str], list[int]]]:
    """The tokens in chunks of whole lines, each made by C loops (``findall``,
    ``join``, ``map``, ``accumulate``) with no Python code per token: per chunk the
    tokens' kinds as one string of codes (one character per kind, see
    :class:`_Codes`), their texts and their packed offsets. A match of the regex
    is a token with the space before it (see :class:`_Texts`), so the matches
    tile the source and their offsets are sums of their lengths. Anything the
    careful :func:`_tokenize` would report (a character that starts no token, a
    bracket closed wrongly or nested too deeply, one left open) raises
    :class:`_Fallback` instead."""
    texts = tables.texts
    code_of = texts.code_of.__getitem__
    value_of = texts.value_of.__getitem__
    place_of = texts.place_of.__getitem__
    scaled_length = texts.scaled_length.__getitem__
    scan = tables.scan_regex.findall
    codes = tables.codes
    newline = codes[_NEWLINE]
    no_token = codes[_NO_TOKEN]
    ignored = [codes[kind] for kind in tables.ignored]
    marks = texts.marks
    depth_of = texts.depth_delta.__getitem__
    level_of = texts.level_delta.__getitem__
    else_code = codes["ELSE"] if "ELSE" in tables.kinds else None
    scale = texts.scale
    lines = builder.lines if builder is not None else nodes.Lines(filename, source)
    depth = 0
    level = 0
    #: newlines held back from the end of a chunk (code, texts, places): an `else`
    #: may follow them
    pending: tuple[str, list, list] | None = None
    before_pending = None  # the code of the last token yielded before them
    size = len(source)
    position = 0
    last_place = 0
    while position < size:
        # A chunk ends after a newline: no token but the newline holds one.
        stop = source.find("\n", position + _CHUNK_CHARS) + 1 or size
        found = scan(source, position, stop)
        code = "".join(map(code_of, found))
        if no_token in code or (stop < size and code[-1] != newline):
            raise _Fallback
        values = list(map(value_of, found))
        # (each match's start, times scale: its length times scale, summed)
        starts = accumulate(map(scaled_length, found), initial=position * scale)
        places = list(map(add, starts, map(place_of, found)))
        del found
        position = stop
        for kind in ignored:
            if kind in code:
                keep = list(map(texts.significant.__getitem__, code))
                code = "".join(compress(code, keep))
                values = list(compress(values, keep))
                places = list(compress(places, keep))
                break
        if not code:
            continue
        # Brackets: the depth (for the limit), and newlines inside ( ) or [ ], which
        # are only space (inside { } they end statements; a brace never opens
        # inside a parenthesis: blocks are statements). Worked out on the brackets
        # and newlines alone.
        bracketing = code.translate(marks)
        if level or len(bracketing) != bracketing.count(newline):
            depths = list(accumulate(map(depth_of, bracketing), initial=depth))
            depth = depths[-1]
            deepest = max(depths)
            # (A closing bracket with none open is not looked for: the grammar's
            # brackets are balanced, so the parser stops at it.)
            if deepest > max_depth:
                raise _Fallback
            if deepest_seen is not None and deepest > deepest_seen[0]:
                deepest_seen[0] = deepest
            levels = list(accumulate(map(level_of, bracketing), initial=level))
            if max(levels) and newline in compress(bracketing, levels):
                # (the level before a newline is the one it is at)
                inside = list(
                    map(
                        or_,
                        map(ne, code, repeat(newline)),
                        map(not_, accumulate(map(level_of, code), initial=level)),
                    )
                )
                code = "".join(compress(code, inside))
                values = list(compress(values, inside))
                places = list(compress(places, inside))
            level = levels[-1]
        if pending is not None:
            code = pending[0] + code
            values[:0] = pending[1]
            places[:0] = pending[2]
            pending = None
        if else_code is not None and else_code in code:
            code, values, places = _join_else(code, values, places, before_pending, codes)
        # Hold back trailing newlines: the next chunk may start with `else`.
        kept = len(code.rstrip(newline))
        if kept < len(code):
            pending = (code[kept:], values[kept:], places[kept:])
            code = code[:kept]
            del values[kept:], places[kept:]
        if code:
            before_pending = code[-1]
            last_place = places[-1]
            yield code, values, places
        if deadline is not None:
            deadline.check(filename, (None, None, last_place), lines)
    if depth:
        raise _Fallback
    if pending is not None:
        yield pending
    yield codes[_END], [""], [_packed(size, size)]


def _join_else(
    code: str, values: list, places: list, before: str | None, codes: _Codes
) -> tuple[str, list, list]:
    """Drop the newlines between a ``}`` and an ``else`` (``before``: the code of
    the token before the chunk): they do not end the if statement."""
    newline, brace, else_code = codes[_NEWLINE], codes["RBRACE"], codes["ELSE"]
    keep: list[int] = []
    for at, kind in enumerate(code):
        if kind == else_code and keep and code[keep[-1]] == newline:
            last = len(keep)
            while last and code[keep[last - 1]] == newline:
                last -= 1
            if (code[keep[last - 1]] if last else before) == brace:
                del keep[last:]
        keep.append(at)
    return (
        "".join([code[at] for at in keep]),
        [values[at] for at in keep],
        [places[at] for at in keep],
    )


def _in_chunks(
    tokens: list[_Token], deadline: _Deadline | None, filename: str
) -> Iterator[list[_Token]]:
    if deadline is None:
        yield tokens
        return
    for start in range(0, len(tokens), _CHUNK):
        chunk = tokens[start : start + _CHUNK]
        yield chunk
        deadline.check(filename, chunk[-1])


class _ShiftReduce(tuple):
    """The action "shift, then reduce by this one-token rule": (rule, origin)."""

    __slots__ = ()


class _Chain(dict):
    """The action "reduce by a one-child ?rule" of one state and lookahead: such
    reductions come in chains (atom -> postfix -> ... -> expr), each replacing
    the top state, so the state the chain ends in depends only on the state
    below; this maps that state to it, filled in as met."""

    __slots__ = ("action", "kind")


class _Stuck(_Fallback):
    """The driver met a token it cannot take: the ``index``-th of the parse, with the
    stacks as they were then."""

    def __init__(self, index: int, states: list, values: list) -> None:
        super().__init__(index)
        self.index, self.states, self.values = index, states, values


def _run(
    tables: _Tables,
    chunks: Iterable[list[_Token]],
    builder: _AstBuilder,
    every_token: list[_Token],
) -> nodes.Program:
    """The LALR(1) loop of :func:`_run_fast` over the careful lexer's tokens, with the
    actions as Lark's tables have them (no replays, no fused reductions), so that a
    syntax error can be worded from the states it stopped in and can look around
    the culprit in ``every_token`` (a bracket opened lines before, a Python habit)."""
    codes = tables.codes

    def triples() -> Iterator[tuple[str, list, list]]:
        for tokens in chunks:
            yield "".join([codes[token[0]] for token in tokens]), tokens, []

    try:
        return _run_fast(tables, triples(), builder, careful=True)
    except _Stuck as stuck:
        index = stuck.index
        token = every_token[index]
        before = every_token[index - 1] if index else None
        raise _syntax_error(
            token, before, every_token, stuck.states, stuck.values, tables, builder, index
        ) from None


def _run_fast(
    tables: _Tables,
    chunks: Iterable[tuple[str, list, list]],
    builder: _AstBuilder,
    careful: bool = False,
) -> nodes.Program:
    """The LALR(1) loop: shift tokens, reduce rules, build nodes bottom-up, over the
    fast lexer's chunks (see :func:`_fast_chunks`), a token's kind its code (the
    actions are looked up by it). A statement whose shape was parsed before is built
    by that shape's compiled replay (see :class:`_Shapes`) instead of token by token.
    A token the loop shifts becomes the tuple ``(kind, text, packed offsets)`` the
    builder reads. A token it cannot take raises :class:`_Stuck`.

    ``careful``: the chunks hold the careful lexer's tokens in place of the texts (see
    :func:`_run`), and neither replays nor fused reductions are used."""
    actions = tables.careful_actions if careful else tables.fused_actions
    reductions = tables.reductions
    handlers = [
        getattr(builder, name) if name else splice
        for name, splice in zip(tables.handler_names, tables.splicers)
    ]
    kind_named = tables.codes.kinds
    end_state = tables.end_state
    end_code = tables.codes[_END]
    # (no statement starts, for replays, in the careful loop)
    opens = frozenset() if careful else frozenset(tables.codes[kind] for kind in _STATEMENT_STARTS)
    state = tables.start_state
    states = [state]
    values: list[Any] = []
    push = values.append
    push_state = states.append
    shapes = None if careful else tables.shapes  # (None too where the fast path is off)
    memo_get = shapes.memo.get if shapes is not None else None
    ending = shapes.ending if shapes is not None else None
    longest = _MAX_SHAPE_TOKENS
    lines = builder.lines
    kind = None
    starting = not careful  # the next token may start a statement
    base = 0  # how many tokens the chunks before this one held
    at = 0
    try:
        for code, texts, places in chunks:
            base += at
            # The same codes with each separator and brace as one character:
            # where a statement ends is a find.
            if ending is not None:
                find_end = code.translate(ending).find
            count = len(code)
            at = 0
            while at < count:
                kind = code[at]
                at += 1
                while True:
                    action = actions[state][kind]
                    if starting and (
                        type(action) is _ShiftReduce or type(action) is int and action >= 0
                    ):
                        # A statement starts (its first token is shifted now): built at
                        # once by its shape's replay if it has one; the token after it
                        # (a separator or a brace) is next.
                        starting = False
                        end = find_end(_END_CODE, at - 1)
                        if at <= end < at + longest:
                            key = (state, code[at - 1 : end + 1])
                            entry = memo_get(key)
                            if entry.__class__ is not tuple:
                                entry = shapes.sighted(key, entry)
                            if entry is not None:
                                node = entry[0](texts, places, at - 1, handlers, lines)
                                separated = entry[2]
                                if separated is None:
                                    push(node)
                                    state = entry[1]
                                    push_state(state)
                                    at = end
                                    break
                                # The separator too: the statement joins the list
                                # (what the list's splicer would do).
                                origin, starting = separated
                                values[-1].append(node)
                                state = states[-1] = actions[states[-2]][origin]
                                at = end + 1
                                break
                    if type(action) is int:
                        if action >= 0:  # shift
                            push_state(action)
                            if careful:
                                push(texts[at - 1])
                            else:
                                push((kind_named[kind], texts[at - 1], places[at - 1]))
                            state = action
                            if kind in opens:
                                starting = True
                            break
                        # Reduce: the node replaces the rule's symbols on the stacks.
                        rule = ~action
                        size, origin, pick, single = reductions[rule]
                        if size == 1:
                            children = values[-1:]
                        elif size:
                            children = values[-size:]
                            del values[1 - size :]
                            del states[1 - size :]
                        else:
                            children = []
                            push(None)
                            push_state(None)
                        if pick is not None:
                            children = pick(children)
                        if single and len(children) == 1:
                            values[-1] = children[0]
                        else:
                            values[-1] = handlers[rule](children)
                        state = states[-1] = actions[states[-2]][origin]
                        if state == end_state and kind == end_code:
                            return values[-1]
                    elif type(action) is _ShiftReduce:
                        rule, origin = action
                        push(handlers[rule]([(kind_named[kind], texts[at - 1], places[at - 1])]))
                        state = actions[state][origin]
                        push_state(state)
                        break
                    else:
                        # A chain of one-child ?rules: nothing to build, only a new state.
                        below = states[-2]
                        state = action.get(below)
                        if state is None:
                            state = _chain_end(tables, action, below)
                        states[-1] = state
    except KeyError:
        if kind is None or kind in actions[state]:
            raise
        raise _Stuck(base + at - 1, states, values) from None
    raise AssertionError("the last chunk always ends with $END or $FAILED")


#: A statement starts after these (and at the start): a statement of a known
#: shape is the tokens from there up to the next separator or brace.
_STATEMENT_STARTS = frozenset({_NEWLINE, "SEMICOLON", "LBRACE"})
_STATEMENT_ENDS = (_NEWLINE, "SEMICOLON", "LBRACE", "RBRACE")
#: Longer statements are parsed token by token (they seldom repeat).
_MAX_SHAPE_TOKENS = 64
#: Shapes remembered (sightings and replays) before the memo starts afresh.
_MAX_SHAPES = 1024
#: A shape gets a replay the second time it is met: one met once costs nothing more.
_REPLAY_AFTER = 2
#: What every separator and brace becomes in the copy of the codes that finds ends.
_END_CODE = "\x00"


_codes_lock = threading.Lock()


class _Codes(dict):
    """Token kind -> one character of its own, given out as kinds are met."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: dict[str, str] = {}  # the other way round

    def __missing__(self, kind: str) -> str:
        with _codes_lock:  # two kinds never get one code
            code = self.get(kind)
            if code is None:
                code = self[kind] = chr(0x21 + len(self))  # printable ASCII, then beyond
                self.kinds[code] = kind
        return code


class _Shapes:
    """Replays of statement shapes, for :func:`_run_fast`.

    The LALR actions that parse a statement depend only on the state it starts in and
    the kinds of its tokens (up to the separator after it), and so do the handler
    calls they make and which children each call gets. The second time a statement
    of one shape is met, those actions are worked out once from the kinds alone and
    written out as a function that makes the same handler calls on the statement's
    tokens: every later statement of that shape is built by it at once, without the
    loop. The nodes are the ones the loop would build (the handlers build them); a
    shape whose parse would not stay inside the statement (a block, a syntax
    error) gets no replay."""

    def __init__(self, tables: _Tables) -> None:
        self.tables = tables
        self.codes = tables.codes
        #: the translation that makes every separator and brace _END_CODE (codes
        #: are ASCII while they last: str.translate is quickest on ASCII)
        self.ending = {ord(self.codes[kind]): _END_CODE for kind in _STATEMENT_ENDS}
        #: (state, codes of the statement's kinds and of the token after it) ->
        #: how often met (int), its replay (function, state after), or False
        self.memo: dict[tuple[int, str], Any] = {}
        self._compiled: dict[str, Any] = {}

    def sighted(self, key: tuple[int, str], entry: Any) -> tuple[Any, int, Any] | None:
        """A statement of the shape ``key`` (the state it starts in, the codes of its
        kinds and of the token after it) whose memo entry is ``entry``, not a replay:
        count the sighting; its replay (function, state after, what the separator
        after it does: see :meth:`_separated`), made now, the second time; None to
        parse it token by token."""
        memo = self.memo
        if entry is None:
            if len(memo) >= _MAX_SHAPES:
                memo.clear()
            memo[key] = 1
            return None
        if entry is False:
            return None
        if entry + 1 < _REPLAY_AFTER:
            memo[key] = entry + 1
            return None
        made = self._make(key[0], key[1])
        memo[key] = made if made is not None else False
        return made

    def _make(self, start_state: int, code: str) -> tuple[Any, int, Any] | None:
        """The replay of a statement of the kinds ``code[:-1]`` followed by
        ``code[-1]``, starting in ``start_state``, the state after it and what the
        separator does (see :meth:`_separated`); None if its parse would not stay
        inside it."""
        tables = self.tables
        kinds = [self.codes.kinds.get(c) for c in code]
        if None in kinds:
            return None
        actions = tables.fused_actions
        reductions = tables.reductions
        rules = tables.rules
        last = len(kinds) - 1
        states = [start_state]
        # What the values stack holds: ("t", k) token k, ("c", rule, children) the
        # handler call that reducing by rule makes, ("s", [...]) a _rule's
        # children waiting to be spliced.
        values: list[tuple] = []
        for position, kind in enumerate(code):
            while True:
                action = actions[states[-1]].get(kind)
                if action is None:
                    return None  # a syntax error: the loop words it
                if type(action) is int and action >= 0 or type(action) is _ShiftReduce:
                    if position == last:
                        return None  # the token after the statement is shifted into it
                    if type(action) is int:
                        states.append(action)
                        values.append(("t", position))
                    else:
                        rule, origin = action
                        values.append(("c", rule, [("t", position)]))
                        states.append(actions[states[-1]][origin])
                    break
                if type(action) is _Chain:
                    if len(states) < 2:
                        return None
                    states[-1] = _chain_end(tables, action, states[-2])
                    continue
                rule = ~action
                size, origin, pick, single = reductions[rule]
                if size > len(values):
                    return None  # it would reduce what came before the statement
                children = values[len(values) - size :]
                del values[len(values) - size :]
                del states[len(states) - size :]
                _, _, how, modes = rules[rule]
                if how == _SPLICE or pick is not None:
                    picked: list[tuple] = []
                    for child, mode in zip(children, modes):
                        if mode == _KEEP:
                            picked.append(child)
                        elif mode == _INLINE:
                            if child[0] != "s":
                                return None
                            picked.extend(child[1])
                    children = picked
                if how == _SPLICE:
                    result: tuple = ("s", children)
                elif single and len(children) == 1:
                    result = children[0]
                else:
                    if any(child[0] == "s" for child in children):
                        return None
                    result = ("c", rule, children)
                values.append(result)
                states.append(actions[states[-1]][origin])
                if origin == "statement":
                    if position != last or len(values) != 1 or result[0] != "c":
                        return None
                    replay = self._compile(kinds[:last], result)
                    return replay, states[-1], self._separated(states[-1], code[last])
        return None

    def _separated(self, after: int, separator: str) -> tuple[str, bool] | None:
        """What shifting the ``separator`` after a statement (in state ``after``) and
        the reduction that must follow do, when they can be done at once: that
        reduction appends the statement to the list before it (a ``_rule`` of the
        list spliced in, the statement and the separator, dropped), whatever token
        comes next. Then (its origin, whether a statement may start next); else None."""
        tables = self.tables
        shift = tables.fused_actions[after].get(separator)
        if type(shift) is not int or shift < 0:
            return None
        rule = tables.sole_reduction(shift)
        if rule is None:
            return None
        origin, size, how, modes = tables.rules[rule]
        if how != _SPLICE or size != 3 or modes != (_INLINE, _KEEP, _DROP):
            return None
        starts = separator in {self.codes[kind] for kind in _STATEMENT_STARTS}
        return origin, starts

    def _compile(self, kinds: list[str], tree: tuple) -> Any:
        """The function ``shape(texts, places, start, handlers, lines)`` that makes
        the handler calls of ``tree`` on the statement's tokens (of ``kinds``), in the
        order the loop makes them (children first, left to right)."""
        source = _ShapeWriter(self.tables.handler_names).write(kinds, tree)
        shape = self._compiled.get(source)
        if shape is None:
            if len(self._compiled) >= _MAX_SHAPES:
                self._compiled.clear()
            namespace: dict[str, Any] = dict(_SHAPE_NAMES)
            # Written from rule numbers, token positions (ints) and the fixed
            # templates of _ShapeWriter alone.
            exec(source, namespace)  # noqa: S102
            shape = self._compiled[source] = namespace["shape"]
        return shape


#: What a replay's code refers to, besides its arguments.
_SHAPE_NAMES: dict[str, Any] = {}


class _ShapeWriter:
    """Writes a statement shape's handler calls out as Python.

    A handler call is ``h[rule]([children])``, a token child the tuple ``(kind,
    text, packed offsets)`` the loop would have shifted. A few handlers, the ones
    nearly every statement calls, are written out in place instead: ``number``
    always, and when the statement holds no parentheses (then no node of it has a
    span other than its own, and ``_AstBuilder.extent`` is its ``_span``)
    ``name``, the binary ``fold``, a ``call`` of anything but an attribute,
    positional ``arguments``, ``assign`` to a name and ``expr_stmt``. Each is the
    handler's own common case, making the same node (the differential tests parse
    every statement shape both ways)."""

    INLINE = frozenset({"name", "compare", "arith", "term", "power", "call", "arguments"})
    INLINE |= {"assign", "expr_stmt"}

    def __init__(self, handler_names: list[str | None]) -> None:
        self.names = handler_names
        self.lines: list[str] = []
        self.inline = True
        self.kinds: list[str] = []

    def write(self, kinds: list[str], tree: tuple) -> str:
        self.kinds = kinds
        self.inline = not self._has(tree, "paren")
        result = self._materialize(self._value(tree))
        size = len(kinds)
        body = "".join(f"    {line}\n" for line in self.lines)
        # Only the texts and places the calls use are read.
        used = set(re.findall(r"\b[vp][0-9]+\b", f"{body} {result}"))
        reads = "".join(
            f"    {kind}{k} = {kind.upper()}[{f'i + {k}' if k else 'i'}]\n"
            for k in range(size)
            for kind in "vp"
            if f"{kind}{k}" in used
        )
        return f"def shape(V, P, i, h, L):\n{reads}{body}    return {result}\n"

    def _has(self, tree: tuple, name: str) -> bool:
        stack = [tree]
        while stack:
            item = stack.pop()
            if item[0] == "c":
                if self.names[item[1]] == name:
                    return True
                stack.extend(item[2])
        return False

    def _emit(self, expression: str) -> str:
        variable = f"n{len(self.lines)}"
        self.lines.append(f"{variable} = {expression}")
        return variable

    # A value: ("t", k) token k; ("name", k) the Name of token k, not made yet;
    # ("node", variable, span, handler) a node; ("args", [variables]) positional
    # arguments, not packed yet.

    def _value(self, item: tuple) -> tuple:
        if item[0] == "t":
            return item
        _, rule, children = item
        values = [self._value(child) for child in children]  # children first
        name = self.names[rule]
        if name == "number" and values[0][0] == "t":
            # A number's value, once its text has been read (by the handler, which
            # words a number of too many digits), is kept by its text.
            k = values[0][1]
            variable = self._emit(
                f"_make_number(L, N[v{k}], v{k}, p{k}) if v{k} in N "
                f"else h[{rule}]([{self._materialize(values[0])}])"
            )
            return ("node", variable, f"{variable}._span", name)
        if self.inline and name in self.INLINE:
            inlined = getattr(self, f"_inline_{'fold' if name in _FOLDS else name}")(values)
            if inlined is not None:
                return inlined
        arguments = ", ".join(self._materialize(value) for value in values)
        variable = self._emit(f"h[{rule}]([{arguments}])")
        span = f"{variable}._span"
        return ("node", variable, span, name)

    def _materialize(self, value: tuple) -> str:
        if value[0] == "t":
            k = value[1]
            return f"({self.kinds[k]!r}, v{k}, p{k})"
        if value[0] == "name":
            k = value[1]
            return self._emit(f"_make_name(L, v{k}, p{k})")
        if value[0] == "args":
            return f"(({''.join(v + ', ' for v in value[1])}), ())"
        return value[1]

    @staticmethod
    def _span(value: tuple) -> str:
        if value[0] in ("t", "name"):
            return f"p{value[1]}"
        return value[2]

    def _inline_name(self, values: list) -> tuple | None:
        (token,) = values
        return ("name", token[1]) if token[0] == "t" else None

    def _inline_fold(self, values: list) -> tuple | None:
        left = self._materialize(values[0])
        start = f"({self._span(values[0])} & H)"
        for position in range(1, len(values), 2):
            op, right = values[position], values[position + 1]
            if op[0] != "t":
                return None
            k = op[1]
            left = self._emit(
                f"_make_binary(L, '^' if v{k} == '**' else v{k}, {left}, "
                f"{self._materialize(right)}, {start} | ({self._span(right)} & W), p{k})"
            )
        return ("node", left, f"{left}._span", "fold")

    def _inline_arguments(self, values: list) -> tuple | None:
        if any(v[0] == "t" or (v[0] == "node" and v[3] == "keyword") for v in values):
            return None
        return ("args", [self._materialize(v) for v in values])

    def _inline_call(self, values: list) -> tuple | None:
        func, *rest = values
        if func[0] not in ("name", "node") or (func[0] == "node" and func[3] == "attribute"):
            return None
        closing = rest[-1]
        if closing[0] != "t" or len(rest) > 2:
            return None
        if len(rest) == 2:
            args = rest[0]
            if args[0] == "args":
                packed = f"({''.join(v + ', ' for v in args[1])}), ()"
            else:
                packed = f"*{self._materialize(args)}"
        else:
            packed = "(), ()"
        variable = self._emit(
            f"_make_call(L, {self._materialize(func)}, {packed}, "
            f"({self._span(func)} & H) | (p{closing[1]} & W))"
        )
        return ("node", variable, f"{variable}._span", "call")

    def _inline_assign(self, values: list) -> tuple | None:
        target, value = values
        if target[0] != "name" or value[0] in ("t", "args"):
            return None
        k = target[1]
        variable = self._emit(
            f"_make_assign(L, v{k}, {self._materialize(value)}, "
            f"(p{k} & H) | ({self._span(value)} & W), p{k})"
        )
        return ("node", variable, f"{variable}._span", "assign")

    def _inline_expr_stmt(self, values: list) -> tuple | None:
        (value,) = values
        if value[0] in ("t", "args"):
            return None
        variable = self._emit(
            f"_make_expr_stmt(L, {self._materialize(value)}, {self._span(value)})"
        )
        return ("node", variable, f"{variable}._span", "expr_stmt")


_FOLDS = frozenset({"compare", "arith", "term", "power"})


def _chain_end(tables: _Tables, chain: _Chain, below: int) -> int:
    """The state a chain of one-child ?rule reductions ends in, over state ``below``
    (remembered in the chain)."""
    state = chain.get(below)
    if state is None:
        state = chain[below] = _follow_passes(tables, below, chain.action, chain.kind)
    return state


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


class _KindOf(dict):
    """Text -> the kind of the token it is (a keyword's own kind, or
    ``no_token`` for a character that starts none), worked out on first request."""

    def __init__(self, tables: _Tables) -> None:
        super().__init__()
        self.tables = tables

    def __missing__(self, text: str) -> str:
        tables = self.tables
        literals = tables.data["literals"]
        kind = _NO_TOKEN
        for name, pattern in tables.data["terminals"]:
            literal = literals.get(name)
            if text == literal if literal is not None else re.fullmatch(pattern, text):
                kind = tables.keywords.get(name, {}).get(text, name)
                break
        if len(self) < _MAX_TEXTS and len(text) <= _LONGEST_TEXT_KEPT:
            self[text] = kind
        return kind


#: Distinct texts whose kinds are remembered.
_MAX_TEXTS = 20_000
#: Longer texts (a long string, spaces before a token) are worked out each time: the
#: memos outlive a parse, and would otherwise keep up to _MAX_TEXTS of them.
_LONGEST_TEXT_KEPT = 256


class _Texted(dict):
    """Text -> what ``make`` says of it, worked out on first request (at most
    :data:`_MAX_TEXTS` kept)."""

    __slots__ = ("make",)

    def __missing__(self, text: str) -> Any:
        value = self.make(text)
        if len(self) < _MAX_TEXTS and len(text) <= _LONGEST_TEXT_KEPT:
            self[text] = value
        return value


class _Texts:
    """What the fast lexer reads of a match's text, one lookup each: the code of its
    kind, the token's own text (the match without the spaces before it) and where
    the token sits in it, as the number that, added to the match's start times
    :attr:`scale`, packs the token's offsets (see :func:`_packed`). And the tables
    that tell brackets and newlines from other tokens by their codes."""

    def __init__(self, tables: _Tables) -> None:
        kind_of, codes = tables.kind_of, tables.codes
        spaces = "" if tables.spaces is None else tables.spaces[2]
        self.code_of = _Texted()
        self.code_of.make = lambda text: codes[kind_of[text.lstrip(spaces) or text]]
        self.value_of = _Texted()
        self.value_of.make = lambda text: text.lstrip(spaces) or text
        self.place_of = _Texted()
        self.place_of.make = lambda text: (
            (len(text) - len(text.lstrip(spaces) or text)) << _SHIFT | len(text)
        )
        #: start * scale == start << _SHIFT | start
        self.scale = scale = (1 << _SHIFT) + 1
        self.scaled_length = _Texted()
        self.scaled_length.make = lambda text: len(text) * scale
        every = list(codes.kinds)
        self.significant = {code: tables.significant.get(codes.kinds[code], True) for code in every}
        depth = {codes[name]: step for name, step in tables.bracket_delta.items()}
        level = {
            codes[name]: step
            for name, step in tables.bracket_delta.items()
            if name not in ("LBRACE", "RBRACE")
        }
        newline = codes[_NEWLINE]
        self.depth_delta = {code: depth.get(code, 0) for code in every}
        self.level_delta = {code: level.get(code, 0) for code in every}
        #: str.translate: keeps the codes of brackets and newlines, drops the rest
        self.marks = {ord(code): None for code in every if code not in depth and code != newline}


def _leading_spaces(terminals: list[list[str]], ignored: list[str]) -> tuple[str, str, str] | None:
    """(name, pattern, characters) of the ignored terminal that is a run of some
    characters none of the other terminals starts with (``[ \\t]+``), or None. Then
    the spaces before a token are as good as part of it: the regex that matches
    them and the token together finds the same tokens as one trying each
    terminal in turn at every place."""
    try:
        from re import _constants as c
        from re import _parser
    except ImportError:  # pragma: no cover - the re module's insides moved
        return None
    for name, pattern in terminals:
        if name not in ignored:
            continue
        try:
            parsed = list(_parser.parse(pattern))
        except Exception:  # noqa: BLE001, S112 - unknown: not taken
            continue
        if len(parsed) != 1 or parsed[0][0] is not c.MAX_REPEAT:
            continue
        low, high, item = parsed[0][1]
        if low != 1 or high is not c.MAXREPEAT:
            continue
        chars = _first_characters(pattern)
        if chars is None or 10 in chars:
            continue
        # The run is of those characters and only those: one literal or a set of them.
        (op, av), *rest = list(item) or [(None, None)]
        if rest or not (
            op is c.LITERAL
            or op is c.IN
            and all(kind is c.LITERAL or kind is c.RANGE for kind, _ in av)
        ):
            continue
        others = [_first_characters(p) for n, p in terminals if n != name]
        if any(first is None or first & chars for first in others):
            continue
        return name, pattern, "".join(map(chr, sorted(chars)))
    return None


#: The terminals a script is made of most, most first: the fast lexer's regex tries
#: them in this order where that changes no match.
_LIKELY = [
    "NAME",
    "WHITESPACE",
    "_NEWLINE",
    "LPAR",
    "RPAR",
    "COMMA",
    "EQUAL",
    "NUMBER",
    "DOT",
    "ADD_OP",
    "MUL_OP",
    "POW_OP",
    "LSQB",
    "RSQB",
    "COMP_OP",
    "AUG_OP",
    "COLON",
    "STRING",
    "COMMENT",
    "LBRACE",
    "RBRACE",
    "SEMICOLON",
]


def _scan_order(terminals: list[list[str]]) -> list[list[str]]:
    """The terminals in matching order, the likeliest moved up past those that
    cannot match where it does: two terminals whose first characters may overlap
    (see :func:`_first_characters`) keep their order, so the first alternative that
    matches at any place is the same terminal either way."""
    firsts = [_first_characters(pattern) for _, pattern in terminals]
    rank = {name: i for i, name in enumerate(_LIKELY)}
    before = [
        {j for j in range(i) if firsts[i] is None or firsts[j] is None or firsts[i] & firsts[j]}
        for i in range(len(terminals))
    ]
    placed: list[int] = []
    left = list(range(len(terminals)))
    while left:
        ready = [i for i in left if before[i].issubset(placed)]
        best = min(ready, key=lambda i: (rank.get(terminals[i][0], len(rank)), i))
        placed.append(best)
        left.remove(best)
    return [terminals[i] for i in placed]


def _first_characters(pattern: str) -> frozenset[int] | None:
    """The code points a match of ``pattern`` may start with, or None when that
    is not known (a class, a category, a pattern that may match nothing...)."""
    try:
        from re import _constants as c
        from re import _parser

        parsed = _parser.parse(pattern)
    except Exception:  # noqa: BLE001 - unknown: keeps its place
        return None

    def first(items: Any) -> tuple[set[int] | None, bool]:
        """The first characters of a sequence, and whether it may match nothing."""
        out: set[int] = set()
        for op, av in items:
            if op is c.LITERAL:
                return out | {av}, False
            if op is c.IN and av and av[0][0] is not c.NEGATE:
                chars: set[int] = set()
                for item, value in av:
                    if item is c.LITERAL:
                        chars.add(value)
                    elif item is c.RANGE and value[1] - value[0] < 512:
                        chars.update(range(value[0], value[1] + 1))
                    else:
                        return None, False
                return out | chars, False
            if op is c.BRANCH:
                empty = False
                for branch in av[1]:
                    chars_, may_be_empty = first(branch)
                    if chars_ is None:
                        return None, False
                    out |= chars_
                    empty = empty or may_be_empty
                if not empty:
                    return out, False
                continue
            if op in (c.MAX_REPEAT, c.MIN_REPEAT):
                chars_, may_be_empty = first(av[2])
                if chars_ is None:
                    return None, False
                out |= chars_
                if av[0] > 0 and not may_be_empty:
                    return out, False
                continue
            if op is c.SUBPATTERN:
                chars_, may_be_empty = first(av[3])
                if chars_ is None:
                    return None, False
                out |= chars_
                if not may_be_empty:
                    return out, False
                continue
            return None, False
        return out, True

    chars, empty = first(parsed)
    return None if chars is None or empty else frozenset(chars)


def _plain_pattern(pattern: str, newline: bool) -> bool:
    """Whether a terminal's pattern suits the fast lexer: no groups that capture,
    anchors, lookarounds, back references, atomic groups or possessive repeats (so
    that whatever it matches at a place, it matches on its own, and a text's kind
    can be told from the text alone), and no match holding a newline (so that a
    chunk may end after one) unless ``newline``: the newline terminal, exactly
    ``\\n``. Anything this does not know is not plain."""
    try:
        from re import _constants as c
        from re import _parser

        parsed = _parser.parse(pattern)
    except Exception:  # noqa: BLE001 - any doubt: the careful lexer
        return False
    if newline:
        return list(parsed) == [(c.LITERAL, 10)]
    if parsed.state.flags & (c.SRE_FLAG_DOTALL | c.SRE_FLAG_MULTILINE):
        return False
    safe_categories = {c.CATEGORY_DIGIT, c.CATEGORY_WORD, c.CATEGORY_NOT_SPACE}

    def holds_newline(items: list) -> bool:  # an IN set's items
        negated = bool(items) and items[0][0] is c.NEGATE
        listed = False
        for op, av in items[negated:]:
            if op is c.LITERAL:
                listed = listed or av == 10
            elif op is c.RANGE:
                listed = listed or av[0] <= 10 <= av[1]
            elif op is c.CATEGORY and av in safe_categories and not negated:
                pass
            else:
                return True
        return not listed if negated else listed

    def plain(items: Any) -> bool:
        for op, av in items:
            if op is c.LITERAL:
                if av == 10:
                    return False
            elif op is c.NOT_LITERAL:
                if av != 10:
                    return False
            elif op is c.IN:
                if holds_newline(av):
                    return False
            elif op is c.ANY:
                pass  # '.' without DOTALL (checked above)
            elif op is c.CATEGORY:
                if av not in safe_categories:
                    return False
            elif op is c.BRANCH:
                if not all(plain(branch) for branch in av[1]):
                    return False
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
                if not plain(av[2]):
                    return False
            elif op is c.SUBPATTERN:
                group, add_flags, _, sub = av
                if group is not None or add_flags & (c.SRE_FLAG_DOTALL | c.SRE_FLAG_MULTILINE):
                    return False
                if not plain(sub):
                    return False
            else:
                return False
        return True

    return plain(parsed)


class _Tables:
    """The grammar compiled for :func:`_run`: plain data, cached as JSON.

    ``actions[state][symbol]`` is a state to shift to (>= 0), ``~rule`` to
    reduce by, or after a reduction the state to go to for the rule's
    origin. ``rules[i]`` is ``(origin, size, how, modes)``; the handler for
    rule ``i`` is the :class:`_AstBuilder` method ``handler_names[i]``.

    Data from a cache file is checked here, whole, before it is used: any
    doubt is a ``ValueError`` and the caller rebuilds the tables.
    """

    FORMAT = 3

    def __init__(self, data: Any, made: Any = None) -> None:
        # ``made``: the generated module of these tables (see :func:`tables_source`),
        # whose data is our own code's, not a file's: not checked again, and its
        # pickers and leading spaces already worked out.
        if made is None:
            _validate_tables(data)
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
        # For each rule: how to pick its children from the symbols popped
        # (None: keep them all, as they are); a _rule's reduction is its
        # splicer, which makes the _Splice itself.
        self.pickers, self.splicers = _pickers(self.rules, made.PICKERS if made else None)
        # What _run reads: per rule (size, origin, picker, expand a single
        # child); per state and symbol a shift (>= 0), a reduction (~rule), a goto,
        # or a _Chain for the one-child ?rules.
        self.reductions = [
            (size, origin, pick, index in self.expand_single)
            for index, ((origin, size, _, _), pick) in enumerate(zip(self.rules, self.pickers))
        ]
        self.fast_actions: list[dict[str, Any]] = []
        for row in self.actions:
            fast: dict[str, Any] = {}
            for symbol, action in row.items():
                if action < 0 and self.pass_origins[~action] is not None:
                    chain = _Chain()
                    chain.action, chain.kind = action, symbol
                    fast[symbol] = chain
                else:
                    fast[symbol] = action
            self.fast_actions.append(fast)
        # The fast lexer's regex: one alternative per terminal (the ignored ones
        # too), in matching order, and last any one character, so its matches
        # tile the source: ``findall`` gives the texts alone, in C, and their
        # offsets follow from their lengths. A text's kind is the first terminal
        # that matches all of it (the one the regex took there: see
        # :func:`_plain_pattern`), found once per distinct text by ``kind_of``.
        # The careful lexer's regex, made when first needed, names each match.
        # The terminals come likeliest first where that changes no match (see
        # _scan_order): a regex tries them in turn at every token.
        # Where one ignored terminal is a run of some characters that start no other
        # terminal (spaces), a match is a token with the spaces before it: half the
        # matches, and only comments and spaces at the very end left to drop.
        if made is None:
            self.spaces = _leading_spaces(data["terminals"], data["ignored"])
        else:
            self.spaces = made.SPACES
        terminals = data["terminals"]
        try:
            if self.spaces is None:
                alternatives = "|".join(f"(?:{pattern})" for _, pattern in terminals)
            else:
                name, spacing, chars = self.spaces
                others = "|".join(f"(?:{p})" for n, p in terminals if n != name)
                # One space before a token is the usual case, and the quickest to try.
                one = " ?" if " " in chars else ""
                alternatives = f"{one}(?:{others})|(?:{spacing})(?:{others})|(?:{spacing})"
            self.scan_regex = re.compile(alternatives + "|[\\s\\S]")
        except (re.error, RecursionError, OverflowError) as exc:
            raise ValueError(f"a terminal's pattern does not compile: {exc}") from None
        self._regex: re.Pattern | None = None
        self.ignored = frozenset(data["ignored"])
        self.keywords: dict[str, dict[str, str]] = data["keywords"]
        # What the fast lexer needs: which kinds are kept, a text's kind (its
        # keyword as the careful lexer finds it, terminal by terminal), and what
        # each bracket does to the depth.
        names = [name for name, _ in data["terminals"]] + [_NO_TOKEN]
        self.significant = {name: name not in self.ignored for name in names}
        for mapping in self.keywords.values():
            self.significant.update((keyword, True) for keyword in mapping.values())
        fast = bool(data["balanced"]) and self.scan_regex.groups == 0 and data["plain"]
        self.kind_of = _KindOf(self)
        self.bracket_delta = {name: 1 for name in _OPENERS if name in names}
        self.bracket_delta.update({name: -1 for name in _CLOSERS if name in names})
        # For the fast path only (a syntax error there is worded by the careful
        # path, which sees the states as Lark's tables have them): a shift into
        # a state whose one action is to reduce a one-token rule (atom: NAME)
        # reduces at once, without waiting for the next token.
        #
        # The fast path knows a token's kind by its code (see _Codes): its rows are
        # keyed by codes for the terminals, by name for the rules.
        self.kinds = frozenset(self.significant) | {_END, _FAILED}
        self.codes = codes = _Codes()
        for kind in (*_STATEMENT_ENDS, *sorted(self.kinds)):  # every kind, now
            codes[kind]
        symbols = {symbol for row in self.actions for symbol in row}
        if not symbols.isdisjoint(codes.kinds) or not self.kinds.issuperset(
            symbol for symbol in symbols if symbol.isupper()
        ):
            fast = False  # a rule named like a code, or a terminal without a code
        self.fused_actions: list[dict[str, Any]] = []
        fused: dict[int, _ShiftReduce | None] = {}
        for row in self.fast_actions:
            out: dict[str, Any] = {}
            for symbol, action in row.items():
                if symbol.isupper():
                    if type(action) is int and action >= 0:
                        if action not in fused:
                            fused[action] = self._default_reduction(action)
                        if fused[action] is not None:
                            action = fused[action]
                    symbol = codes[symbol]
                out[symbol] = action
            self.fused_actions.append(out)
        self.fast = fast
        self._careful_actions: list[dict[str, Any]] | None = None
        self.texts = _Texts(self)
        self.shapes = _Shapes(self) if fast else None

    @property
    def careful_actions(self) -> list[dict[str, Any]]:
        """The actions of Lark's tables, keyed by code for the terminals (made when the
        careful path first runs: an error)."""
        if self._careful_actions is None:
            codes = self.codes
            self._careful_actions = [
                {
                    codes[symbol] if symbol.isupper() else symbol: action
                    for symbol, action in row.items()
                }
                for row in self.fast_actions
            ]
        return self._careful_actions

    @property
    def regex(self) -> re.Pattern:
        """The careful lexer's regex: one match per terminal, the ignored ones too."""
        if self._regex is None:
            alternatives = [
                f"(?:{pattern})(?P<{name}>)" for name, pattern in self.data["terminals"]
            ]
            alternatives.append(f"[\\s\\S](?P<{_NO_TOKEN}>)")
            self._regex = re.compile("|".join(alternatives))
        return self._regex

    def sole_reduction(self, state: int) -> int | None:
        """The rule that ``state`` reduces by whatever token comes next (its one
        action), or None."""
        actions = set(self.actions[state].values())
        if len(actions) != 1:
            return None
        (action,) = actions
        return ~action if action < 0 else None

    def _default_reduction(self, state: int) -> _ShiftReduce | None:
        rule = self.sole_reduction(state)
        if rule is None:
            return None
        size, origin, pick, single = self.reductions[rule]
        if size != 1 or pick is not None or single or self.handler_names[rule] is None:
            return None
        return _ShiftReduce((rule, origin))


def _pickers(
    rules: list[tuple[str, int, int, tuple[int, ...]]], made: dict | None = None
) -> tuple[list, list]:
    """Per rule, a function that picks its children from the symbols it pops
    (None for a rule that keeps them all, or a _rule) and, for a ``_rule``, one
    that passes them up as a :class:`_Splice`: the kept ones, with the lists of
    ``_rule`` children spliced in (the first one's list is reused: left
    recursion builds one list, no copying). Written out as code from the modes
    alone (small integers), all compiled in one go; those in ``made`` (by
    ``(modes, splice)``: the generated module's) are taken from there."""
    made = dict(made or {})
    sources = _picker_sources(rules, set(made))
    if sources:
        namespace: dict[str, Any] = {"_Splice": _Splice}
        # Built from the rules' modes, which are validated ints.
        exec("".join(sources.values()), namespace)  # noqa: S102
        made.update((key, namespace[f"_pick_{i}"]) for i, key in enumerate(sources))
    pickers = [None if how == _SPLICE else made.get((modes, False)) for _, _, how, modes in rules]
    splicers = [made[modes, True] if how == _SPLICE else None for _, _, how, modes in rules]
    return pickers, splicers


def _picker_sources(rules, known: set) -> dict[tuple[tuple[int, ...], bool], str]:
    """The source of each picker :func:`_pickers` makes that is not in ``known``, by
    ``(modes, splice)``, named ``_pick_0``, ``_pick_1``... in order."""
    sources: dict[tuple[tuple[int, ...], bool], str] = {}
    for _, _, how, modes in rules:
        splice = how == _SPLICE
        if (modes, splice) in sources or (modes, splice) in known:
            continue
        if not splice and all(m == _KEEP for m in modes):
            continue
        body = []
        for index, mode in enumerate(modes):
            if mode == _DROP:
                continue
            if not body:
                if mode == _INLINE:
                    body.append(f"out = c[{index}]")
                else:
                    body.append(f"out = {'_Splice(' if splice else ''}[c[{index}]]{')' * splice}")
            else:
                body.append(f"out.{'extend' if mode == _INLINE else 'append'}(c[{index}])")
        if not body:
            body.append("out = _Splice()" if splice else "out = []")
        name = f"_pick_{len(sources)}"
        lines = "".join(f"    {line}\n" for line in body)
        sources[modes, splice] = f"def {name}(c):\n{lines}    return out\n"
    return sources


def _validate_tables(data: Any) -> None:
    """Raise ``ValueError`` unless ``data`` has exactly the shape :class:`_Tables`
    needs, every state and rule number in range: a damaged or hostile cache
    file may hold any JSON at all."""

    def need(condition: bool, what: str) -> None:
        if not condition:
            raise ValueError(f"bad parser tables: {what}")

    def is_int(value: Any) -> bool:
        return type(value) is int

    def is_str(value: Any) -> bool:
        return type(value) is str

    need(type(data) is dict, "not an object")
    for key in _TABLE_KEYS:
        need(key in data, f"no {key!r}")
    need(data["format"] == _Tables.FORMAT, "another format")
    actions, rules = data["actions"], data["rules"]
    need(type(actions) is list and 0 < len(actions) <= _MAX_STATES, "actions")
    need(type(rules) is list and 0 < len(rules) <= _MAX_RULES, "rules")
    states, n_rules = len(actions), len(rules)
    for row in actions:
        need(type(row) is dict and len(row) <= _MAX_SYMBOLS, "an action row")
        for action in row.values():
            need(is_int(action) and -n_rules <= action < states, "an action")
    need(is_int(data["start_state"]) and 0 <= data["start_state"] < states, "start state")
    need(is_int(data["end_state"]) and 0 <= data["end_state"] < states, "end state")
    for rule in rules:
        need(type(rule) is list and len(rule) == 4, "a rule")
        origin, size, how, modes = rule
        need(is_str(origin) and is_int(size) and how in (_PASS, _SPLICE, _BUILD), "a rule")
        need(type(modes) is list and len(modes) == size, "a rule's modes")
        need(all(mode in (_DROP, _KEEP, _INLINE) for mode in modes), "a rule's modes")
        need(how != _PASS or modes == [_KEEP], "a pass-through rule")
    names = data["handler_names"]
    need(type(names) is list and len(names) == n_rules, "handler names")
    for name, (_, _, how, _) in zip(names, rules):
        if how == _BUILD:
            need(is_str(name) and not name.startswith("_"), "a handler name")
            need(callable(getattr(_AstBuilder, name, None)), f"no builder method {name!r}")
        else:
            need(name is None, "a handler name")
    single = data["expand_single"]
    need(type(single) is list and all(is_int(i) and 0 <= i < n_rules for i in single), "expand")
    terminals = data["terminals"]
    need(type(terminals) is list and 0 < len(terminals) <= _MAX_SYMBOLS, "terminals")
    for terminal in terminals:
        need(type(terminal) is list and len(terminal) == 2, "a terminal")
        need(all(is_str(part) for part in terminal), "a terminal")
        need(terminal[0].isidentifier() and terminal[0] != _NO_TOKEN, "a terminal's name")
        need(len(terminal[1]) <= _MAX_PATTERN, "a terminal's pattern")
    ignored = data["ignored"]
    need(type(ignored) is list and all(is_str(name) for name in ignored), "ignored")
    keywords = data["keywords"]
    need(type(keywords) is dict, "keywords")
    for mapping in keywords.values():
        need(type(mapping) is dict, "keywords")
        need(all(is_str(k) and is_str(v) for k, v in mapping.items()), "keywords")
    need(type(data["balanced"]) is bool, "balanced")
    need(type(data["plain"]) is bool, "plain")
    literals = data["literals"]
    need(type(literals) is dict, "literals")
    need(all(is_str(k) and is_str(v) and v for k, v in literals.items()), "literals")


_TABLE_KEYS = (
    "format",
    "actions",
    "start_state",
    "end_state",
    "rules",
    "handler_names",
    "expand_single",
    "terminals",
    "ignored",
    "keywords",
    "balanced",
    "plain",
    "literals",
)
# Bounds far above any grammar of this language; a cache file past them is damaged.
_MAX_STATES = 100_000
_MAX_RULES = 100_000
_MAX_SYMBOLS = 10_000
_MAX_PATTERN = 10_000
#: The largest table cache file read (a grammar's tables take about 100 KB).
_MAX_TABLES_BYTES = 16 * 1024 * 1024


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
    made = _made_tables()
    if made is not None and made.GRAMMAR == text:
        # The shipped grammar's tables, generated into a module (see tables_source)
        return _Tables({**made.DATA, "grammar": text}, made)
    # The file name tells grammars (and Lark versions) apart cheaply; the
    # text inside decides.
    lark_version = _lark_version()
    checksum = zlib.crc32(f"{lark_version}\0{text}".encode())
    name = f"grammar-{_Tables.FORMAT}-{checksum:08x}.json"
    cache_file = os.path.join(cache.cache_dir(), name)
    raw = cache.read_bounded(cache_file, _MAX_TABLES_BYTES)
    if raw is not None:
        try:
            data = json.loads(raw)
            if data["grammar"] == text and data["lark"] == lark_version:
                return _Tables(data)
        except (ValueError, KeyError, TypeError, RecursionError, MemoryError):
            pass  # damaged, or not ours: rebuilt below
    data = _compile_grammar(text)
    data["grammar"] = text
    data["lark"] = lark_version
    raw = json.dumps(data, separators=(",", ":")).encode()
    tables = _Tables(json.loads(raw))  # exactly what a later run reads back
    cache.write_atomic(cache_file, raw)
    cache.prune(os.path.dirname(cache_file), "grammar-", keep=8)
    return tables


def _made_tables() -> Any:
    """The module of tables generated for the shipped grammar, or None."""
    try:
        from adcli.lang import _grammar_tables
    except ImportError:  # pragma: no cover - not generated (see tables_source)
        return None
    _grammar_tables._Splice = _Splice  # what its pickers make
    return _grammar_tables


_TABLES_HEADER = (
    '"""The LALR tables of the shipped grammar (grammar/adcli.lark), compiled by Lark:\n'
    "generated by ``adcli.lang.parser.tables_source`` (run ``python -m adcli.lang.parser``),\n"
    "do not edit. The parser uses them while ``GRAMMAR`` is the text of the grammar\n"
    "file, and compiles the grammar itself otherwise (its tables then kept in the cache\n"
    'directory): Python\'s bytecode cache makes them quicker to load than that file."""\n\n'
    "# fmt: off\n"
    "# ruff: noqa\n"
    "# (the pickers' _Splice is set here by adcli.lang.parser._made_tables)\n\n"
)


def tables_source(text: str | None = None) -> str:
    """The source of :mod:`adcli.lang._grammar_tables`: the tables of ``text`` (by
    default the grammar file's) as Lark compiles them, their pickers written out
    (see :func:`_pickers`) and their leading spaces (see :func:`_leading_spaces`)."""
    text = grammar_text() if text is None else text
    data = _canonical_states(_compile_grammar(text))
    data["lark"] = _lark_version()
    data = json.loads(json.dumps(data))  # as the cache file holds them: lists, not tuples
    tables = _Tables({**data, "grammar": text})  # (checks them)
    sources = _picker_sources(tables.rules, set())
    parts = [_TABLES_HEADER, f"GRAMMAR = {text!r}\n\n", "DATA = {\n"]
    for key, value in data.items():
        if key in ("actions", "rules", "terminals", "handler_names"):
            items = "".join(f"  {item!r},\n" for item in value)
            parts.append(f" {key!r}: [\n{items} ],\n")
        else:
            parts.append(f" {key!r}: {value!r},\n")
    parts.append("}\n\n")
    parts.append(f"SPACES = {tables.spaces!r}\n\n")
    parts.extend(f"{source}\n" for source in sources.values())
    picked = "".join(f" {key!r}: _pick_{i},\n" for i, key in enumerate(sources))
    parts.append(f"PICKERS = {{\n{picked}}}\n")
    return "".join(parts)


def _canonical_states(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its states numbered in the order a walk from the start state
    meets them (by symbol name), each row's symbols in order: Lark numbers them in
    an order that changes from one process to the next."""
    actions = data["actions"]
    number = {data["start_state"]: 0}
    order = [data["start_state"]]
    for state in order:  # (grows as it goes: breadth first)
        for symbol in sorted(actions[state]):
            target = actions[state][symbol]
            if target >= 0 and target not in number:
                number[target] = len(order)
                order.append(target)
    for state in range(len(actions)):  # (none is unreachable in an LALR table)
        if state not in number:
            number[state] = len(order)
            order.append(state)
    renumbered = [
        {symbol: number[v] if v >= 0 else v for symbol, v in sorted(actions[state].items())}
        for state in order
    ]
    return {
        **data,
        "actions": renumbered,
        "start_state": number[data["start_state"]],
        "end_state": number[data["end_state"]],
    }


def _lark_version() -> str:
    """Lark's version, without importing Lark (which start-up avoids): the name
    of its ``lark-X.Y.Z.dist-info`` folder, else the size and time of its code."""
    from importlib.util import find_spec

    try:
        spec = find_spec("lark")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return "none"
    package = os.path.dirname(spec.origin)
    try:
        for entry in sorted(os.listdir(os.path.dirname(package))):
            if entry.startswith("lark-") and entry.endswith((".dist-info", ".egg-info")):
                return entry.split("-")[1].removesuffix(".dist").removesuffix(".egg")
        info = os.stat(spec.origin)
    except OSError:
        return "unknown"
    return f"{info.st_size}-{info.st_mtime_ns}"


def parse_with_lark(source: str, filename: str = "<eval>") -> nodes.Program:
    """Parse ``source`` with Lark's own lexer and LALR parser over the same
    builder as :func:`parse`: the reference the differential tests compare
    :func:`parse` with. Slow, and its errors are Lark's exceptions."""
    from lark import Token
    from lark.lark import PostLex
    from lark.visitors import Transformer_NonRecursive

    class BracketNewlines(PostLex):
        """Drop a newline inside ( ) or [ ] (not { }), and those between a ``}`` and an
        ``else``, as adcli's lexer does."""

        always_accept = ()

        def process(self, stream: Iterator[Any]) -> Iterator[Any]:
            opened: list[str] = []
            held: list[Any] = []  # newlines after a `}`: an `else` may follow
            last_kind = None
            for token in stream:
                if token.type == _NEWLINE:
                    if opened and opened[-1] != "LBRACE":
                        continue
                    if held or last_kind == "RBRACE":
                        held.append(token)
                        continue
                elif held:
                    if token.type != "ELSE":
                        yield from held
                    held = []
                if token.type in _OPENERS:
                    opened.append(token.type)
                elif token.type in _CLOSERS and opened:
                    opened.pop()
                last_kind = token.type
                yield token
            yield from held

    source = source.removeprefix("\ufeff")
    builder = _AstBuilder(filename, source)

    class Build(Transformer_NonRecursive):
        def __default__(self, data: Any, children: list, meta: Any) -> Any:
            return getattr(builder, data)(list(children))

        def __default_token__(self, token: Token) -> _Token:
            span = Span(filename, token.line, token.column, token.end_line, token.end_column)
            return _Token(token.type, str(token), _packed(token.start_pos, token.end_pos), span)

    global _reference_lark
    if _reference_lark is None:
        _reference_lark = build_lark(lexer="basic", postlex=BracketNewlines(), strict=False)
    tree = _reference_lark.parse(source)
    program = Build(visit_tokens=True).transform(tree)
    return nodes.Program(program.statements, _program_span(source, filename))


_reference_lark: Any = None


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

    data = {
        "format": _Tables.FORMAT,
        "actions": actions,
        "start_state": table.start_states["start"],
        "end_state": table.end_states["start"],
        "rules": rules,
        "handler_names": handler_names,
        "expand_single": expand_single,
        # In the order the lexers try them (see _scan_order): the likeliest first.
        "terminals": _scan_order(
            [[t.name, t.pattern.to_regexp()] for t in terminals if t.name not in embedded]
        ),
        # The terminals that are one plain string: a text is one of them if it is that string.
        "literals": {
            t.name: t.pattern.value
            for t in terminals
            if isinstance(t.pattern, PatternStr) and not t.pattern.flags and t.name not in embedded
        },
        "ignored": sorted(lark.ignore_tokens),
        "keywords": keywords,
        "balanced": _brackets_balanced(lark.rules),
    }
    data["plain"] = all(_plain_pattern(p, name == _NEWLINE) for name, p in data["terminals"])
    return data


def _brackets_balanced(rules: list) -> bool:
    """Whether every rule holds as many of each opening bracket as of its closing
    one: then a script the grammar accepts has its brackets nested properly, and
    the fast lexer may count depth instead of matching brackets one by one."""
    for rule in rules:
        names = [symbol.name for symbol in rule.expansion if symbol.is_term]
        for opener, closer in _OPENERS.items():
            if names.count(opener) != names.count(closer):
                return False
    return True


# ----------------------------------------------------------------- AST building


def _span(token: _Token, filename: str) -> Span:
    return token[3]


_MAKE = nodes.MAKERS
_make_name = _MAKE[nodes.Name]
_make_number = _MAKE[nodes.Number]
_make_assign = _MAKE[nodes.Assign]
_make_binary = _MAKE[nodes.Binary]
_make_call = _MAKE[nodes.Call]
_make_expr_stmt = _MAKE[nodes.ExprStmt]
#: A number literal's text -> its value, for the replays (filled by the builder).
_NUMBER_VALUES: dict[str, int | float] = {}
_SHAPE_NAMES.update(
    N=_NUMBER_VALUES,
    _make_number=_make_number,
    _make_name=_make_name,
    _make_binary=_make_binary,
    _make_call=_make_call,
    _make_assign=_make_assign,
    _make_expr_stmt=_make_expr_stmt,
    H=_HIGH,
    W=_LOW,
)
_own_span = attrgetter("_span")  # a node's span as the builder stored it (packed)


class _AstBuilder:
    """One method per rule or alias in the grammar. Each receives the rule's
    children (nodes, and the tokens the grammar keeps: tuples whose first three
    items are kind, text and packed offsets) and returns a node. Spans are kept
    packed (see :class:`nodes.Node`) and made only when read. One builder serves
    one parse."""

    def __init__(self, filename: str, source: str = "") -> None:
        self.filename = filename
        self.lines = nodes.Lines(filename, source)
        # id(node) -> its span including the parentheses around it. A node
        # keeps its own span (a Name's is the name); its parent's span covers
        # the parentheses, so the span of (a + b) * c starts at '('.
        # The node is stored too, so that its id is not reused during the parse.
        self.paren_spans: dict[int, tuple[nodes.Node, int]] = {}

    def extent(self, node: nodes.Node) -> int:
        """The (packed) span of ``node`` including any parentheses around it."""
        if self.paren_spans:
            entry = self.paren_spans.get(id(node))
            if entry is not None:
                return entry[1]
        return node._span

    def span(self, pos: int) -> Span:
        """The :class:`Span` of packed offsets, for an error."""
        return self.lines.span(pos)

    # ---- statements

    def start(self, children: list) -> nodes.Program:
        # _parse() gives the program its span; it knows the whole source.
        return nodes.Program(tuple(children), Span(self.filename, 1, 1, 1, 1))

    def expr_stmt(self, children: list) -> nodes.ExprStmt:
        (expr,) = children
        return _make_expr_stmt(self.lines, expr, self.extent(expr))

    def assign(self, children: list) -> nodes.Node:
        target, value = children
        if type(target) is _Name and not self.paren_spans:  # the common case, made short
            first = target._span
            span = (first & _HIGH) | (value._span & _LOW)
            return _make_assign(self.lines, target.id, value, span, first)
        lines = self.lines
        end = self.extent(value)
        span = (self.extent(target) & _HIGH) | (end & _LOW)
        if isinstance(target, nodes.Name):
            return _make_assign(lines, target.id, value, span, target._span)
        if isinstance(target, nodes.Call) and isinstance(target.func, nodes.Name):
            return _function_definition(target, value, span, lines)
        if isinstance(target, nodes.Index):
            return _MAKE[nodes.SetItem](lines, target.obj, target.items, value, span, target._span)
        if isinstance(target, nodes.Attribute):
            return _MAKE[nodes.SetAttr](
                lines, target.obj, target.name, value, span, target._name_span
            )
        raise AdcliError(
            "syntax",
            f"cannot assign to {_describe(target)}",
            self.span(self.extent(target)),
            hint="the left of '=' is a name, a[i], a.grad, or a definition such as f(x, y)",
        )

    def unpack(self, children: list) -> nodes.Unpack:
        *targets, value = children
        for target in targets:
            if not isinstance(target, nodes.Name):
                raise AdcliError(
                    "syntax",
                    f"cannot unpack into {_describe(target)}",
                    self.span(self.extent(target)),
                    hint="unpack into plain names: a, b = ...",
                )
        names = tuple(t.id for t in targets)
        for i, name in enumerate(names):
            if name in names[:i]:
                raise AdcliError("syntax", f"'{name}' is unpacked into twice", targets[i].span)
        span = _join(self.extent(targets[0]), self.extent(value))
        name_spans = tuple(t.span for t in targets)
        return _MAKE[nodes.Unpack](self.lines, names, value, span, name_spans)

    def aug_assign(self, children: list) -> nodes.AugAssign:
        target, op, value = children
        if not isinstance(target, (nodes.Name, nodes.Index, nodes.Attribute)):
            raise AdcliError(
                "syntax",
                f"'{op[1]}' cannot update {_describe(target)}",
                self.span(self.extent(target)),
                hint=f"the left of '{op[1]}' is a name, a[i] or a.data",
            )
        span = _join(self.extent(target), self.extent(value))
        return _MAKE[nodes.AugAssign](self.lines, target, op[1][0], value, span, op[2])

    def block(self, children: list) -> nodes.Block:
        opening, *statements, closing = children
        return _MAKE[nodes.Block](self.lines, tuple(statements), _join(opening[2], closing[2]))

    def block_stmt(self, children: list) -> nodes.Node:
        head, block = children
        span = _join(self.extent(head), block._span)
        if isinstance(head, nodes.Name) and head.id in GRAD_MODE_BLOCKS:
            return _MAKE[nodes.GradMode](self.lines, head.id == "enable_grad", block, span)
        if isinstance(head, nodes.Call) and isinstance(head.func, nodes.Name):
            return _function_definition(head, block, span, self.lines)
        where = block.span
        raise AdcliError(
            "syntax",
            "unexpected '{'",
            Span(self.filename, where.line, where.column, where.line, where.column + 1),
            hint="a block follows for, while, if, else, no_grad, enable_grad, or a function "
            "header such as f(x, y)",
        )

    def for_stmt(self, children: list) -> nodes.For:
        keyword, name, _in, iterable, block = children
        span = _join(keyword[2], block._span)
        return _MAKE[nodes.For](self.lines, name[1], iterable, block, span, name[2])

    def while_stmt(self, children: list) -> nodes.While:
        keyword, test, block = children
        span = _join(keyword[2], block._span)
        return _MAKE[nodes.While](self.lines, test, block, span)

    def if_stmt(self, children: list) -> nodes.If:
        # [IF test block (ELSE IF test block)* (ELSE block)?]
        branches: list[tuple[Any, nodes.Node, nodes.Block]] = []
        orelse: nodes.Block | nodes.If | None = None
        position = 0
        while position < len(children):
            token = children[position]
            if token[0] == "IF":
                branches.append((token, children[position + 1], children[position + 2]))
                position += 3
            elif children[position + 1].__class__ is nodes.Block:  # ELSE block
                orelse = children[position + 1]
                position += 2
            else:  # ELSE IF: the IF comes next
                position += 1
        make = _MAKE[nodes.If]
        for keyword, test, block in reversed(branches):
            last = orelse._span if orelse is not None else block._span
            orelse = make(self.lines, test, block, orelse, _join(keyword[2], last))
        assert isinstance(orelse, nodes.If)
        return orelse

    def break_stmt(self, children: list) -> nodes.Break:
        return _MAKE[nodes.Break](self.lines, children[0][2])

    def continue_stmt(self, children: list) -> nodes.Continue:
        return _MAKE[nodes.Continue](self.lines, children[0][2])

    def return_stmt(self, children: list) -> nodes.Return:
        keyword, *rest = children
        value = rest[0] if rest else None
        last = self.extent(value) if value is not None else keyword[2]
        return _MAKE[nodes.Return](self.lines, value, _join(keyword[2], last))

    def bare_tuple(self, children: list) -> nodes.TupleLit:
        span = _join(self.extent(children[0]), self.extent(children[-1]))
        return _MAKE[nodes.TupleLit](self.lines, tuple(children), span)

    def tuple(self, children: list) -> nodes.TupleLit:
        span = _join(children[0][2], children[-1][2])
        return _MAKE[nodes.TupleLit](self.lines, tuple(children[1:-1]), span)

    def logic(self, children: list) -> nodes.Logic:
        make = _MAKE[nodes.Logic]
        left = children[0]
        start = self.extent(left)
        for position in range(1, len(children), 2):
            op, right = children[position], children[position + 1]
            span = _join(start, self.extent(right))
            left = make(self.lines, op[1], left, right, span, op[2])
            start = span
        return left

    def not_test(self, children: list) -> nodes.Not:
        keyword, operand = children
        span = _join(keyword[2], self.extent(operand))
        return _MAKE[nodes.Not](self.lines, operand, span)

    def assert_stmt(self, children: list) -> nodes.Assert:
        keyword, test, *rest = children
        message = self.string(rest) if rest else None
        last = message._span if message is not None else self.extent(test)
        return _MAKE[nodes.Assert](self.lines, test, message, _join(keyword[2], last))

    def import_stmt(self, children: list) -> nodes.Import:
        keyword, path = children
        path_node = self.string([path])
        span = _join(keyword[2], path_node._span)
        return _MAKE[nodes.Import](self.lines, path_node.value, span, path_node._span)

    # ---- operators

    def fold(self, children: list) -> nodes.Binary:
        """Fold ``[operand, op, operand, op, operand, ...]`` left to right in
        a loop: a 100,000-term chain is a flat list here, never a deep tree."""
        lines = self.lines
        extent = self.extent if self.paren_spans else _own_span
        left = children[0]
        start = extent(left) & _HIGH
        for position in range(1, len(children), 2):
            op, right = children[position], children[position + 1]
            symbol = op[1]
            if symbol == "**":
                symbol = "^"
            left = _make_binary(lines, symbol, left, right, start | (extent(right) & _LOW), op[2])
        return left

    compare = arith = term = power = fold

    def unary(self, children: list) -> nodes.Unary:
        op, operand = children
        span = _join(op[2], self.extent(operand))
        return _MAKE[nodes.Unary](self.lines, op[1], operand, span)

    # ---- postfix

    def call(self, children: list) -> nodes.Call | nodes.MethodCall:
        func = children[0]
        args, kwargs = children[1] if len(children) == 3 else ((), ())
        span = (self.extent(func) & _HIGH) | (children[-1][2] & _LOW)
        if func.__class__ is nodes.Attribute:
            return _MAKE[nodes.MethodCall](
                self.lines, func.obj, func.name, args, kwargs, span, func._name_span
            )
        return _make_call(self.lines, func, args, kwargs, span)

    def arguments(self, children: list) -> tuple[tuple, tuple]:
        if len(children) == 1 and children[0].__class__ is not nodes.Keyword:
            return (children[0],), ()
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
                    self.span(self.extent(item)),
                    hint="put positional arguments first, then name=value ones",
                )
            else:
                args.append(item)
        return tuple(args), tuple(kwargs)

    def keyword(self, children: list) -> nodes.Keyword:
        name, value = children
        span = _join(name[2], self.extent(value))
        return _MAKE[nodes.Keyword](self.lines, name[1], value, span, name[2])

    def attribute(self, children: list) -> nodes.Attribute:
        obj, name = children
        span = _join(self.extent(obj), name[2])
        return _MAKE[nodes.Attribute](self.lines, obj, name[1], span, name[2])

    def index(self, children: list) -> nodes.Index:
        obj, items, closing = children
        span = _join(self.extent(obj), closing[2])
        return _MAKE[nodes.Index](self.lines, obj, items, span)

    def subscripts(self, children: list) -> tuple:
        return tuple(children)

    def ellipsis(self, children: list) -> nodes.EllipsisIndex:
        (token,) = children
        return _MAKE[nodes.EllipsisIndex](self.lines, token[2])

    def slice(self, children: list) -> nodes.Slice:
        parts: list[Any] = [None]
        for child in children:
            if isinstance(child, tuple):  # a colon
                parts.append(None)
            else:
                parts[-1] = child
        start, stop, step = [*parts, None, None][:3]
        first, last = children[0], children[-1]
        first = first[2] if isinstance(first, tuple) else self.extent(first)
        last = last[2] if isinstance(last, tuple) else self.extent(last)
        return _MAKE[nodes.Slice](self.lines, start, stop, step, _join(first, last))

    # ---- atoms

    def number(self, children: list) -> nodes.Number:
        token = children[0]
        text = token[1]
        if text.isdigit() and len(text) < 19:  # the common case: a small whole number
            value: int | float = int(text)
        else:
            try:
                value = int(text) if text.isdigit() else float(text)
            except ValueError:  # more digits than int() accepts
                raise AdcliError(
                    "limit", "number literal has too many digits", self.span(token[2])
                ) from None
            if type(value) is int and value >= _INT_LIMIT:
                # As arithmetic does: whole numbers stay within 64 bits. From the text,
                # so that one past the largest float is inf, as 1e400 is, not an overflow.
                value = float(text)
        if len(_NUMBER_VALUES) < _MAX_TEXTS and len(text) <= _LONGEST_TEXT_KEPT:
            _NUMBER_VALUES[text] = value
        return _make_number(self.lines, value, text, token[2])

    def string(self, children: list) -> nodes.String:
        (token,) = children
        body = token[1][1:-1]
        if "\\" in body:
            body = _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), body)
        return _MAKE[nodes.String](self.lines, body, token[2])

    def true(self, children: list) -> nodes.Bool:
        return _MAKE[nodes.Bool](self.lines, True, children[0][2])

    def false(self, children: list) -> nodes.Bool:
        return _MAKE[nodes.Bool](self.lines, False, children[0][2])

    def none(self, children: list) -> nodes.NoneLit:
        return _MAKE[nodes.NoneLit](self.lines, children[0][2])

    def name(self, children: list) -> nodes.Name:
        token = children[0]
        return _make_name(self.lines, token[1], token[2])

    def paren(self, children: list) -> nodes.Node:
        opening, inner, closing = children
        self.paren_spans[id(inner)] = (inner, _join(opening[2], closing[2]))
        return inner

    def list(self, children: list) -> nodes.ListLit:
        span = _join(children[0][2], children[-1][2])
        return _MAKE[nodes.ListLit](self.lines, tuple(children[1:-1]), span)


def _join(first: int, last: int) -> int:
    """The packed span from the start of ``first`` to the end of ``last``."""
    return (first & _HIGH) | (last & _LOW)


# \" and \\ (the language's escapes), plus \n and \t; any other backslash
# stays as written, so "C:\data" means what it says.
_Name = nodes.Name
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
_ESCAPE = re.compile(r"\\(.)")


def _function_definition(
    target: nodes.Call, body: nodes.Node, span: int, lines: nodes.Lines
) -> nodes.FuncDef:
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
    return _MAKE[nodes.FuncDef](lines, name.id, tuple(params), body, span, name._span, param_spans)


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
    before: _Token | None,
    tokens: list[_Token] | None,
    states: list[int],
    values: list[Any],
    tables: _Tables,
    builder: _AstBuilder,
    index: int | None = None,
) -> Exception:
    """The parser cannot take ``token``: say why in words, with the caret on
    the culprit (just past the previous token when a line or input ends)."""
    if token.type == _FAILED:
        return token.value
    filename = builder.filename
    expected = {symbol for symbol in tables.actions[states[-1]] if symbol.isupper()}
    at_end = token.type in (_END, _NEWLINE)

    if at_end and before is not None:
        where = _just_after(before, filename)
    else:
        where = _span(token, filename)
    after = ""
    if before is not None and before.type not in _SEPARATORS:
        after = " after a string" if before.type == "STRING" else f" after '{before.value}'"
    found = "" if at_end else f", found {_describe_token(token)}"

    if tokens is None:  # the fast lexer's tokens: the careful pass words the error
        return AdcliError("syntax", f"unexpected {_describe_token(token)}", where)
    if index is None:
        index = next(i for i, t in enumerate(tokens) if t is token)
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


if __name__ == "__main__":  # regenerate adcli/lang/_grammar_tables.py
    from pathlib import Path

    Path(__file__).with_name("_grammar_tables.py").write_text(tables_source())
