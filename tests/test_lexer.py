"""The Pygments lexer for .ad: on every example script each token is typed and the text
round-trips; keywords and operators agree with the grammar; it is a Pygments plugin; and
it colours the REPL's input and error snippets on a terminal only."""

from __future__ import annotations

import re
from importlib import import_module
from pathlib import Path

import pytest
from pygments.token import (
    Comment,
    Error,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
)

from adcli.cli.lexer import AdLexer, grammar_literals, highlight_line
from adcli.cli.render import error_text
from adcli.errors import AdcliError, Span
from adcli.lang.parser import grammar_text

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "scripts" / "examples").glob("*.ad"))
PROGRAMS = sorted((REPO / "tests" / "programs").glob("**/*.ad"))


def _tokens(text: str):
    return list(AdLexer(stripnl=False, ensurenl=False).get_tokens(text))


@pytest.mark.parametrize("path", EXAMPLES + PROGRAMS, ids=lambda p: p.name)
def test_every_script_round_trips_with_every_token_typed(path):
    text = path.read_text(encoding="utf-8")
    tokens = _tokens(text)
    assert "".join(t for _, t in tokens) == text
    for kind, value in tokens:
        assert kind not in Error, value
        if kind is Text:  # the catch-all: only for characters the language rejects
            pytest.fail(f"untyped token {value!r} in {path.name}")


def test_keywords_and_operators_come_from_the_grammar():
    words, symbols = grammar_literals()
    # Every keyword terminal of the grammar (NAME: "word") is a keyword of the lexer.
    declared = set(re.findall(r'^[A-Z_]+:\s*"([a-z_]+)"\s*$', grammar_text(), re.MULTILINE))
    assert declared and declared <= words
    for word in words:
        kind = _tokens(word)[0][0]
        assert kind in Keyword, word
    for symbol in symbols:
        kinds = {k for k, _ in _tokens(f"a {symbol} b")[2:3]}
        assert kinds and all(
            k in Operator
            or k in Text.Punctuation
            or k in Name.Punctuation
            or str(k).startswith("Token.Punctuation")
            for k in kinds
        ), symbol


def test_a_keyword_added_to_the_grammar_is_highlighted():
    words, symbols = grammar_literals('FOR: "for"\n?x: a "%" b  // "notme"\nR: /"re"/\n')
    assert words == {"for"}
    assert symbols == {"%"}


def test_a_quoted_double_slash_is_an_operator_not_a_comment():
    words, symbols = grammar_literals('OP: "*" | "//" | "%"  // a comment with / two / slashes\n')
    assert words == set()
    assert symbols == {"*", "//", "%"}
    words, symbols = grammar_literals()
    for v2 in ("//", "%", "+=", "-=", "*=", "/=", "...", "{", "}", "@", "**"):
        assert v2 in symbols, v2
    for keyword in ("for", "in", "while", "if", "else", "break", "continue", "return"):
        assert keyword in words, keyword
    assert {"and", "or", "not"} <= words


def test_token_types_of_v2_syntax():
    text = "f(x) {\n  for i in range(3) { x += i // 2 % 3 }\n  return x[..., 0]\n}\n"
    text += "no_grad { w -= 0.1 * w.grad }\ny = no_grad(x)\nif not a and b or c { break }\n"
    tokens = _tokens(text)
    kinds: dict[str, set] = {}
    for kind, value in tokens:
        kinds.setdefault(value, set()).add(kind)
    for keyword in ("for", "in", "return", "if", "not", "and", "or", "break"):
        assert kinds[keyword] == {Keyword}, keyword
    for op in ("+=", "//", "%", "-=", "*"):
        assert kinds[op] == {Operator}, op
    for punct in ("{", "}", "...", "[", "]"):
        assert kinds[punct] == {Punctuation}, punct
    # `no_grad {` opens a block (a keyword); `no_grad(x)` is the builtin.
    assert kinds["no_grad"] == {Keyword, Name.Builtin}
    assert not [v for k, v in tokens if k is Text]


def test_token_types_of_a_line():
    kinds = {v: k for k, v in _tokens('y = sqrt(x) + f(2.5e-3) # c\nassert true, "m"\n')}
    assert kinds["y"] is Name
    assert kinds["sqrt"] is Name.Builtin
    assert kinds["f"] is Name.Function
    assert kinds["2.5e-3"] is Number
    assert kinds["+"] is Operator
    assert kinds["# c"] is Comment.Single
    assert kinds["assert"] is Keyword
    assert kinds["true"] is Keyword.Constant
    assert kinds['"m"'] is String.Double


def test_registered_as_a_pygments_plugin_for_ad_files():
    text = (REPO / "pyproject.toml").read_text()  # (tomllib is Python 3.11+; we support 3.10)
    section = text.split('[project.entry-points."pygments.lexers"]', 1)[1].split("\n[", 1)[0]
    target = re.search(r'^adcli\s*=\s*"([^"]+)"', section, re.MULTILINE).group(1)
    module, _, attr = target.partition(":")
    assert getattr(import_module(module), attr) is AdLexer
    assert "*.ad" in AdLexer.filenames and "adcli" in AdLexer.aliases
    assert '"pygments>=2.13"' in text and '"plotext>=5.2"' in text


def test_error_snippets_are_highlighted_only_when_asked():
    err = AdcliError("name", "unknown name 'q'", Span("<eval>", 1, 5, 1, 6))

    def lines(_):
        return ["x = q + sin(2)"]

    plain = error_text(err, lines)
    coloured = error_text(err, lines, highlight=True)
    assert plain.plain == coloured.plain
    start = plain.plain.index("x = q")
    end = start + len("x = q + sin(2)")
    assert not [s for s in plain.spans if start <= s.start < end]
    styled = {coloured.plain[s.start : s.end]: str(s.style) for s in coloured.spans}
    assert styled.get("sin") == "blue"
    assert highlight_line("1") == [("1", "cyan")]


def test_the_repl_prompt_uses_the_lexer(monkeypatch):
    from prompt_toolkit.lexers import PygmentsLexer

    from adcli.cli import repl
    from adcli.cli.render import Renderer
    from adcli.lang.interpreter import Session

    captured = {}

    class FakePrompt:
        def __init__(self, **kwargs):
            captured.update(kwargs)
            self.prompt = lambda: ""

    monkeypatch.setattr("prompt_toolkit.PromptSession", FakePrompt)
    monkeypatch.delenv("NO_COLOR", raising=False)
    repl._terminal_reader(Session(), Renderer())
    assert isinstance(captured["lexer"], PygmentsLexer)
    captured.clear()
    monkeypatch.setenv("NO_COLOR", "1")
    repl._terminal_reader(Session(), Renderer())
    assert "lexer" not in captured
