"""adcli's parser against Lark's own: the same grammar, the same AST builder, equal trees.

``parse`` runs adcli's lexer (C loops over one master regex) and its LALR
driver; ``parse_with_lark`` runs Lark's lexer and LALR parser over the same
builder. On every program of the corpus (the examples, the test programs, the
fuzz corpus, and generated programs) both must give equal ASTs with equal
spans, or both must refuse the program.
"""

from __future__ import annotations

import random
from dataclasses import fields
from pathlib import Path

import pytest

from adcli.errors import AdcliError
from adcli.lang import nodes
from adcli.lang.parser import parse, parse_with_lark

ROOT = Path(__file__).resolve().parents[1]
CORPUS = sorted(
    [
        *ROOT.glob("scripts/examples/*.ad"),
        *ROOT.glob("tests/programs/*.ad"),
        *ROOT.glob("tests/fuzz_corpus/*.ad"),
    ]
)
# Lark's parser is slow and its tree walk deep: the corpus's giants are left to the fuzz tests.
MAX_CHARS = 200_000


def flat(program: nodes.Program) -> list[tuple]:
    """Every node in order with its own fields (spans included): compares deep trees
    without recursion."""
    out = []
    for node in nodes.walk(program):
        own = []
        for f in fields(node):
            value = getattr(node, f.name)
            if isinstance(value, nodes.Node):
                continue
            if isinstance(value, tuple) and any(isinstance(v, nodes.Node) for v in value):
                continue
            own.append(value)
        out.append((type(node).__name__, *own))
    return out


def outcome_ours(source: str, name: str):
    try:
        return flat(parse(source, name, max_depth=100_000))
    except AdcliError as err:
        return ("refused", err.kind)


def outcome_lark(source: str, name: str):
    try:
        return flat(parse_with_lark(source, name))
    except AdcliError as err:
        return ("refused", err.kind)
    except Exception as err:  # noqa: BLE001 - any Lark error means "refused"
        return ("refused", type(err).__name__)


def assert_same(source: str, name: str) -> None:
    ours, theirs = outcome_ours(source, name), outcome_lark(source, name)
    if isinstance(ours, tuple) or isinstance(theirs, tuple):
        assert isinstance(ours, tuple) and isinstance(theirs, tuple), (name, ours, theirs)
    else:
        assert ours == theirs, name


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_parses_as_lark_parses_it(path: Path) -> None:
    source = path.read_bytes().decode("utf-8", "surrogateescape")
    if len(source) > MAX_CHARS:
        pytest.skip("too large for Lark's tree walk")
    assert_same(source, path.name)


def test_corpus_is_not_empty() -> None:
    assert len(CORPUS) > 20
    assert any(isinstance(outcome_ours(p.read_text("utf-8", "replace"), "x"), list) for p in CORPUS)


# ------------------------------------------------------------------ generated programs

NAMES = ["x", "y", "w_1", "grad", "sin", "t", "assertx", "true_", "nonefied"]


def expression(rng: random.Random, depth: int) -> str:
    if depth <= 0 or rng.random() < 0.25:
        return rng.choice(
            [
                rng.choice(NAMES),
                str(rng.randint(0, 10 ** rng.randint(1, 20))),
                rng.choice(["1.5", ".5", "2.", "1e-3", "3E+2", "0.25e1"]),
                rng.choice(['"s"', '"a\\"b"', '"C:\\\\d"', '""']),
                rng.choice(["true", "false", "none"]),
            ]
        )
    d = depth - 1
    pick = rng.randrange(11)
    if pick == 0:
        ops = ["+", "-", "*", "/", "@", "^", "**"]
        parts = [expression(rng, d) for _ in range(rng.randint(2, 5))]
        out = parts[0]
        for part in parts[1:]:
            out += rng.choice([" ", ""]) + rng.choice(ops) + rng.choice([" ", ""]) + part
        return out
    if pick == 1:
        return rng.choice(["-", "+"]) + expression(rng, d)
    if pick == 2:
        return "(" + rng.choice(["", "\n"]) + expression(rng, d) + rng.choice(["", "\n "]) + ")"
    if pick == 3:
        args = [expression(rng, d) for _ in range(rng.randint(0, 3))]
        args += [f"{rng.choice(NAMES)}={expression(rng, d)}" for _ in range(rng.randint(0, 1))]
        sep = rng.choice([", ", ",\n  ", ","])
        tail = rng.choice(["", ","]) if args else ""
        return f"{rng.choice(NAMES)}({sep.join(args)}{tail})"
    if pick == 4:
        return f"{expression(rng, d)}.{rng.choice(NAMES)}"
    if pick == 5:
        return f"{rng.choice(NAMES)}.{rng.choice(NAMES)}({expression(rng, d)})"
    if pick == 6:
        items = [
            rng.choice(
                [
                    expression(rng, d),
                    ":",
                    f"{expression(rng, d)}:",
                    f":{expression(rng, d)}",
                    "::2",
                    f"1:{expression(rng, d)}:3",
                ]
            )
            for _ in range(rng.randint(1, 3))
        ]
        return f"{rng.choice(NAMES)}[{', '.join(items)}]"
    if pick == 7:
        items = [expression(rng, d) for _ in range(rng.randint(0, 4))]
        return "[" + rng.choice([", ", ",\n"]).join(items) + rng.choice(["", ","]) + "]"
    if pick == 8:
        ops = ["==", "!=", "<", "<=", ">", ">="]
        return f"{expression(rng, d)} {rng.choice(ops)} {expression(rng, d)}"
    if pick == 9:
        return f"{expression(rng, d)}^-{expression(rng, 0)}"
    return expression(rng, d) + rng.choice(["", "  # note", "\t"])


def statement(rng: random.Random) -> str:
    pick = rng.randrange(6)
    if pick == 0:
        return f"{rng.choice(NAMES)} = {expression(rng, 3)}"
    if pick == 1:
        params = ", ".join(rng.sample(NAMES, rng.randint(0, 3)))
        return f"{rng.choice(NAMES)}({params}) = {expression(rng, 3)}"
    if pick == 2:
        message = rng.choice(["", ', "message"'])
        return f"assert {expression(rng, 2)}{message}"
    if pick == 3:
        return rng.choice(['import "lib.ad"', "# only a comment", ""])
    return expression(rng, 4)


def program(rng: random.Random) -> str:
    lines = [statement(rng) for _ in range(rng.randint(1, 12))]
    text = ""
    for line in lines:
        text += line + rng.choice(["\n", "\n", "; ", "\r\n", "\n\n"])
    return text


@pytest.mark.parametrize("seed", range(60))
def test_generated_programs_parse_as_lark_parses_them(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(5):
        assert_same(program(rng), f"gen{seed}.ad")


@pytest.mark.parametrize("seed", range(20))
def test_broken_programs_are_refused_by_both(seed: int) -> None:
    """Cut a generated program anywhere, or drop in a stray character: wherever
    one parser refuses, the other does too, and where both accept, the trees agree."""
    rng = random.Random(1000 + seed)
    for _ in range(5):
        text = program(rng)
        cut = rng.randrange(len(text) + 1)
        assert_same(text[:cut], "cut.ad")
        spot = rng.randrange(len(text) + 1)
        assert_same(
            text[:spot] + rng.choice(["$", "(", "]", "'", "=", ",", "\n"]) + text[spot:], "x"
        )


def test_long_chains_and_many_statements() -> None:
    """Past the fast lexer's chunk size (a few thousand tokens), with brackets across chunks."""
    chain = "y = 1" + " + x" * 3000 + "\n"
    block = "".join(f"z{i} = f(a,\n b[{i}, :])  # c\n" for i in range(1500))
    assert_same(chain + block, "long.ad")
