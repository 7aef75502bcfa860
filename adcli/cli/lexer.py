"""A Pygments lexer for ``.ad`` programs (``pygmentize -l adcli``, files ``*.ad``).

Its keywords and operators are read from the grammar (``grammar/adcli.lark``):
every quoted literal there that is a word is a keyword (``true``, ``false``,
``none`` are constants), every other one an operator or punctuation, so a
keyword added to the grammar is highlighted with no change here (the grammar's
comments are skipped, its quoted ``"//"`` is not one). The names that open a
grad-mode block (``no_grad {``) come from the parser and are keywords before a
brace. Builtin
names come from the language's table of builtins. Registered as a Pygments
plugin in ``pyproject.toml``; the REPL uses it for its input line and error
reports use it for the source line, on a terminal only.
"""

from __future__ import annotations

import re

from pygments.lexer import RegexLexer, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
)

CONSTANTS = frozenset({"true", "false", "none"})
# Symbols that separate or group rather than compute; every other symbol is an operator.
PUNCTUATION = frozenset({"(", ")", "[", "]", "{", "}", ",", ";", ":", ".", "..."})

# One piece of a grammar line, left to right: a quoted literal, a // comment (the rest
# of the line), or a /regular expression/ (skipped: its quotes are not literals). The
# order matters: "//" is a literal, // outside quotes starts a comment, and a comment
# holding two slashes is not a regular expression.
_PIECE = re.compile(
    r'"(?P<literal>(?:[^"\\\n]|\\.)*)"'
    r"|(?P<comment>//[^\n]*)"
    r"|/(?:[^/\\\n]|\\.)+/[imslux]*"
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def grammar_literals(text: str | None = None) -> tuple[set[str], set[str]]:
    """(words, symbols): the quoted literals of the grammar, split into keywords and the rest."""
    if text is None:
        from adcli.lang.parser import grammar_text

        text = grammar_text()
    found_words: set[str] = set()
    symbols: set[str] = set()
    for line in text.splitlines():
        for match in _PIECE.finditer(line):
            if match.group("comment") is not None:
                break
            literal = match.group("literal")
            if literal is None:
                continue
            literal = _unescape(literal)
            if _WORD.match(literal):
                found_words.add(literal)
            elif literal:
                symbols.add(literal)
    return found_words, symbols


def _unescape(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal)


def _block_words() -> tuple[str, ...]:
    """Names that open a block without being keywords of the grammar (``no_grad {``)."""
    try:
        from adcli.lang.parser import GRAD_MODE_BLOCKS
    except ImportError:  # pygmentize without adcli's dependencies
        return ()
    return GRAD_MODE_BLOCKS


def _builtin_names() -> list[str]:
    try:
        from adcli.lang import interpreter  # noqa: F401 - registers every builtin
    except ImportError:  # pygmentize without adcli's dependencies: names stay plain
        return []
    from adcli.lang.builtins import BUILTINS

    return sorted(BUILTINS)


def _tokens() -> dict:
    keywords, symbols = grammar_literals()
    operators = sorted(symbols - PUNCTUATION, key=len, reverse=True)
    punctuation = sorted(symbols & PUNCTUATION, key=len, reverse=True)
    rules = [
        (r"[ \t\f\r]+", Text.Whitespace),
        (r"\n", Text.Whitespace),
        (r"#[^\n]*", Comment.Single),
        (r'"(?:[^"\\\n]|\\[^\n])*"', String.Double),
        (r'"[^\n]*', String.Double),  # an unclosed string, up to the end of the line
        (r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", Number),
        (words(sorted(keywords & CONSTANTS), suffix=r"\b"), Keyword.Constant),
        (words(sorted(keywords - CONSTANTS), suffix=r"\b"), Keyword),
    ]
    blocks = _block_words()
    if blocks:
        rules.append((words(blocks, suffix=r"\b(?=\s*\{)"), Keyword))
    rules += [
        (words(_builtin_names(), suffix=r"\b(?=\s*\()"), Name.Builtin),
        (r"[A-Za-z_][A-Za-z0-9_]*(?=\s*\()", Name.Function),
        (r"[A-Za-z_][A-Za-z0-9_]*", Name),
        (words(operators), Operator),
        (words(punctuation), Punctuation),
        (r"[^\s]", Text),  # anything else the language would reject: shown, not dropped
    ]
    return {"root": rules}


class AdLexer(RegexLexer):
    """Pygments lexer for the adcli language."""

    name = "adcli"
    aliases = ("adcli", "ad")
    filenames = ("*.ad",)
    mimetypes = ("text/x-adcli",)
    tokens = _tokens()


def highlight_line(line: str) -> list[tuple[str, str]]:
    """``(text, Rich style)`` pieces of one source line, for an error report on a terminal."""
    styles = {
        Comment: "dim",
        String: "green",
        Number: "cyan",
        Keyword.Constant: "magenta",
        Keyword: "bold magenta",
        Name.Builtin: "blue",
        Name.Function: "blue",
        Operator: "yellow",
    }
    pieces = []
    for token, text in AdLexer(stripnl=False, ensurenl=False).get_tokens(line):
        style = ""
        for kind, s in styles.items():
            if token in kind:
                style = s
                break
        pieces.append((text, style))
    return pieces
