"""Hostile input for the fuzz tests (tests/test_fuzz.py) and the long run (scripts/fuzz).

Hypothesis strategies build programs from the grammar's constructs (numbers,
names, calls of real builtins with random arity and keywords, operators,
brackets, indexing, attributes and methods, known and unknown, statements),
mutate real programs, and make random text and bytes. :func:`check_in_session`
is the property every one of them must keep: running it either works or
raises an :class:`AdcliError` with a known kind, a message in words and a
place; whatever it displays renders, as text and as strict JSON.
"""

from __future__ import annotations

import functools
import io
import re
import signal
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from adcli.errors import KINDS, AdcliError
from adcli.lang import builtins as B
from adcli.lang.interpreter import Limits, Session

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "fuzz_corpus"
EXAMPLES = HERE.parent / "scripts" / "examples"

#: Small enough that no generated program can take long or much memory.
FUZZ_LIMITS = {
    "max_elements": 200_000,
    "max_bytes": 8 * 1024 * 1024,
    "max_calls": 20_000,
    "timeout": 3.0,
}
#: Past this, a single example is a hang (the time limit above should stop it long before).
HANG_SECONDS = 60


def fuzz_settings(max_examples: int) -> settings:
    """Reproducible settings: a fixed derandomized run, no example database, no deadline."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


# ------------------------------------------------------------------------ building blocks
PRELUDE = (
    "x = randn(3, requires_grad=true)\n"
    "y = randn(3, requires_grad=true)\n"
    "z = 2\n"
    "w = randn(2, 2, requires_grad=true)\n"
    "f(a) = sum(a^2)\n"
    "g(a, b) = a * b\n"
)
VARIABLES = ["x", "y", "z", "w", "f", "g", "q"]
BUILTIN_NAMES = sorted(B.BUILTINS)
HOSTILE_NAMES = [
    "__import__", "eval", "exec", "open", "os", "sys", "__builtins__", "globals",
    "getattr", "compile", "input", "breakpoint", "exit", "type", "object",
]  # fmt: skip
ATTRIBUTES = sorted(B.ATTRIBUTES) + [
    "__class__", "__dict__", "__globals__", "_data", "_grad_fn", "_backend", "numpy",
    "foo", "grad_fn", "mro", "__init__",
]  # fmt: skip
METHODS = sorted(B.METHODS) + ["foo", "__class__", "__init__", "_data", "numpy", "tolist"]
KEYWORDS = [
    "requires_grad", "dtype", "device", "dim", "keepdim", "retain_graph", "create_graph",
    "order", "method", "gradient", "rtol", "atol", "eps", "x", "axis", "__class__",
]  # fmt: skip
NUMBERS = [
    "0", "1", "2", "3", "-1", ".5", "2.5", "1e-3", "1e999999", "1e-999999", "10", "64",
    "100000", "1e9", "1e12", "99999999999999999999999", "0.0", "1e308",
]  # fmt: skip
STRINGS = [
    '"cpu"', '"cuda"', '"cuda:1"', '"float64"', '"float32"', '"int8"', '"taylor"',
    '"nested"', '"auto"', '""', '"\\""', '"a.ad"', '"/etc/passwd"', '"\\\\"', '"é"',
]  # fmt: skip
IMPORTS = [
    '"missing.ad"', '"/etc/passwd"', '"/etc/passwd.ad"', '"cycle_a.ad"', '""', '".ad"',
    '"../nothing.ad"', '"/dev/null"', '"import_target.ad"', '"import_target.ad"',
]  # fmt: skip
OPERATORS = ["+", "-", "*", "/", "@", "^", "**", "==", "!=", "<", "<=", ">", ">="]
#: Fragments a mutation inserts: syntax, odd characters, keywords.
TOKENS = [
    "(", ")", "[", "]", ",", "=", "^", "**", "@", ".", ":", ";", "\n", '"', "#", "\\",
    "-", "1e999", "requires_grad=", "\x00", "\u202e", "é", "λ", "😀", "\ufeff", "'", "!",
    "{", "}", "$", "`", "\t", "\r", "  ", "x", "f(", ".backward()", "assert ", "import ",
    "\u00a0", "\u2028", "\U0001d465", "٣", "²",
]  # fmt: skip
#: Characters that make random text likely to reach past the lexer.
SYNTAX_ALPHABET = "()[]{}<>=+-*/^@.,:;\"'#\\ \n\t0123456789abcxyzfgeE_"


def _join(items) -> str:
    return ", ".join(items)


numbers = st.one_of(
    st.sampled_from(NUMBERS),
    st.integers(0, 10**6).map(str),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(repr),
)
names = st.one_of(
    st.sampled_from(VARIABLES),
    st.sampled_from(BUILTIN_NAMES),
    st.sampled_from(HOSTILE_NAMES),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True),
)
atoms = st.one_of(
    numbers,
    names,
    st.sampled_from(STRINGS),
    st.sampled_from(["true", "false", "none"]),
)


def _receiver(text: str) -> str:
    """``text`` as the left of ``.name`` (a bare ``0`` would lex as ``0.``)."""
    return f"({text})" if text[:1].isdigit() or text[:1] == "." else text


@st.composite
def _keywords(draw, children) -> list[str]:
    """Up to two ``name=value`` arguments, each name once (a repeat is a syntax error)."""
    names = draw(st.lists(st.sampled_from(KEYWORDS), max_size=2, unique=True))
    return [f"{name}={draw(children)}" for name in names]


def _extend(children):
    args = st.lists(children, max_size=4)
    kwargs = _keywords(children)
    receivers = children.map(_receiver)
    slices = st.one_of(
        children,
        st.tuples(
            st.one_of(st.just(""), children),
            st.one_of(st.just(""), children),
            st.sampled_from(["", ":", ":2", ":-1", ":0"]),
        ).map(lambda t: f"{t[0]}:{t[1]}{t[2]}"),
    )
    return st.one_of(
        st.tuples(st.sampled_from("-+"), children).map("".join),
        st.tuples(children, st.sampled_from(OPERATORS), children, st.booleans()).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})" if t[3] else f"{t[0]} {t[1]} {t[2]}"
        ),
        st.tuples(st.one_of(st.sampled_from(BUILTIN_NAMES), names), args, kwargs).map(
            lambda t: f"{t[0]}({_join(t[1] + t[2])})"
        ),
        st.tuples(receivers, st.sampled_from(METHODS), args, kwargs).map(
            lambda t: f"{t[0]}.{t[1]}({_join(t[2] + t[3])})"
        ),
        st.tuples(receivers, st.sampled_from(ATTRIBUTES)).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(children, st.lists(slices, min_size=1, max_size=3)).map(
            lambda t: f"{t[0]}[{_join(t[1])}]"
        ),
        st.lists(children, max_size=4).map(lambda items: f"[{_join(items)}]"),
        children.map(lambda c: f"({c})"),
    )


expressions = st.recursive(atoms, _extend, max_leaves=12)

# Mostly well-typed tensor expressions, so the engine itself is exercised (shapes,
# dtypes, NaN, higher orders), not only the front end's checks.
TENSOR_ATOMS = [
    "x", "y", "w", "z", "randn(3)", "ones(2, 3)", "tensor([1., 2., 3.])", "zeros(3)",
    "0", "1", "2", "-1", ".5", "1e-3", "1e30", "0.0", "eye(2)", "arange(3)",
    "ones(3, dtype=\"float64\")", "tensor(0.0, requires_grad=true)",
]  # fmt: skip
UNARY_FUNCTIONS = [
    "sqrt", "log", "exp", "abs", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "sign",
    "sum", "mean", "detach", "clone", "transpose", "no_grad", "item", "shape", "numel",
]  # fmt: skip
BINARY_FUNCTIONS = ["pow", "mm", "matmul", "dot", "maximum", "minimum", "allclose"]
POSTFIX = [
    ".T", "[0]", "[1:]", "[::-1]", "[0, 0]", ".sum()", ".mean()", ".detach()", ".grad",
    ".data", ".shape", ".to(\"float64\")", ".reshape(-1)", ".item()", ".zero_()",
    ".requires_grad_()", ".retain_grad()", ".clone()", ".grad_fn", ".is_leaf",
]  # fmt: skip


def _extend_tensor(children):
    return st.one_of(
        st.tuples(st.sampled_from(UNARY_FUNCTIONS), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(BINARY_FUNCTIONS), children, children).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"
        ),
        st.tuples(children, st.sampled_from(OPERATORS[:7]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(children, st.sampled_from(POSTFIX)).map(lambda t: f"({t[0]}){t[1]}"),
        st.tuples(children, st.sampled_from(["0", "-1", "1", "[0, 1]"]), st.booleans()).map(
            lambda t: f"sum({t[0]}, dim={t[1]}, keepdim={str(t[2]).lower()})"
        ),
        st.tuples(children, children, children).map(lambda t: f"where({t[0]} > 0, {t[1]}, {t[2]})"),
        st.tuples(children, st.sampled_from(["-1", "3", "1, 3", "3, 1", "2, 3"])).map(
            lambda t: f"reshape({t[0]}, {t[1]})"
        ),
        st.tuples(children, st.sampled_from(["2, 3", "3", "1, 0", "0"])).map(
            lambda t: f"expand({t[0]}, {t[1]})"
        ),
        children.map(lambda c: f"grad(sum({c}), x, create_graph=true)"),
        st.tuples(children, st.integers(1, 6), st.sampled_from(["auto", "taylor", "nested"])).map(
            lambda t: f'grad(sum({t[0]}), x, order={t[1]}, method="{t[2]}")'
        ),
        st.tuples(st.sampled_from(["jacobian", "hessian", "gradcheck"]), children).map(
            lambda t: f"{t[0]}(f, {t[1]})"
        ),
    )


tensor_expressions = st.recursive(st.sampled_from(TENSOR_ATOMS), _extend_tensor, max_leaves=8)
tensor_statements = st.one_of(
    st.tuples(st.sampled_from(["x", "y", "v", "w"]), tensor_expressions).map(
        lambda t: f"{t[0]} = {t[1]}"
    ),
    tensor_expressions,
    tensor_expressions.map(lambda e: f"v = {e}\nv.backward()"),
    tensor_expressions.map(lambda e: f"sum({e}).backward(retain_graph=true)"),
    tensor_expressions.map(lambda e: f"sum({e}).backward(create_graph=true)"),
    tensor_expressions.map(lambda e: f"assert allclose({e}, {e})"),
    st.tuples(tensor_expressions, st.sampled_from(["", ", 1", ", ones(3)"])).map(
        lambda t: f"backward(sum({t[0]}){t[1]})"
    ),
    st.sampled_from(["anomaly(true)", "anomaly(false)", "zero_grad(x, y)", "seed(1)"]),
)

statements = st.one_of(
    st.tuples(st.sampled_from(VARIABLES), expressions).map(lambda t: f"{t[0]} = {t[1]}"),
    st.tuples(
        st.sampled_from(["f", "g", "h", "k", "sin", "x"]),
        st.lists(st.sampled_from(["a", "b", "x"]), max_size=3, unique=True),
        expressions,
    ).map(lambda t: f"{t[0]}({_join(t[1])}) = {t[2]}"),
    expressions,
    expressions.map(lambda e: f"assert {e}"),
    expressions.map(lambda e: f'assert {e}, "it failed"'),
    st.sampled_from(IMPORTS).map(lambda p: f"import {p}"),
    st.sampled_from(VARIABLES).map(lambda v: f"{v}.backward()"),
    st.tuples(st.sampled_from(VARIABLES), expressions).map(
        lambda t: f"grad({t[1]}, {t[0]}, order={len(t[1]) % 5 + 1})"
    ),
)


@st.composite
def programs(draw) -> str:
    """A program of 1 to 5 generated statements, usually after a prelude that binds names."""
    body = draw(st.lists(st.one_of(statements, tensor_statements), min_size=1, max_size=5))
    separator = draw(st.sampled_from(["\n", "; ", "\n\n", " ;\n"]))
    prelude = draw(st.sampled_from([PRELUDE, PRELUDE, ""]))
    return prelude + separator.join(body) + draw(st.sampled_from(["", "\n"]))


#: Corpus files that run into the time limit on purpose: slow to mutate.
SLOW_SEEDS = ("nested_order",)


@functools.cache
def seed_programs() -> tuple[str, ...]:
    """Real programs to mutate: the examples, the corpus, and the prelude (read once)."""
    found = [p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.ad"))]
    for p in sorted(CORPUS.glob("*.ad")):
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if len(text) < 4000 and not p.name.startswith(SLOW_SEEDS):
            found.append(text)
    return (*found, PRELUDE + "f(x) + g(x, y)\n")


@st.composite
def mutated_programs(draw) -> str:
    """A real program with one to four small edits: cut, insert, duplicate, swap, truncate."""
    text = draw(st.sampled_from(seed_programs()))
    for _ in range(draw(st.integers(1, 4))):
        n = len(text)
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 12)))
        edit = draw(st.sampled_from(["cut", "insert", "duplicate", "swap", "truncate"]))
        if edit == "cut":
            text = text[:i] + text[j:]
        elif edit == "insert":
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[i:]
        elif edit == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif edit == "swap" and 0 < i < n:
            text = text[: i - 1] + text[i] + text[i - 1] + text[i + 1 :]
        elif edit == "truncate":
            text = text[:i]
    return text


random_text = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=SYNTAX_ALPHABET, max_size=120),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", "surrogateescape")),
)


# ----------------------------------------------------------------------------- the property
class Hang(BaseException):
    """An example ran past HANG_SECONDS (BaseException: nothing in adcli may catch it)."""


@contextmanager
def watchdog(seconds: float = HANG_SECONDS):
    """Turn a hang into a :class:`Hang` (SIGALRM; the main thread on POSIX only)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(signum, frame):
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


#: Words of Python's own errors: an AdcliError message carrying them leaked an exception's
#: text instead of saying what went wrong in the language's terms.
LEAKED = re.compile(
    r"Traceback|NoneType|object has no attribute|unsupported operand type\(s\)|"
    r"required positional argument|positional arguments? but|ufunc|dtype\(|numpy\.|np\.|<class |Python int|C long|"
    r"could not be promoted|invalid literal for int|codec can't"
)
#: What a message quotes of the program (names, strings), left out of that search.
QUOTED = re.compile(r"'[^']*'")


def leaked(message: str) -> bool:
    """Whether an error message carries Python's words rather than the language's."""
    return LEAKED.search(QUOTED.sub("''", message)) is not None


def check_error(err: BaseException, source: str = "") -> None:
    """What every error a program causes must be: an AdcliError, in words, with a place."""
    context = f"\n--- program ---\n{source!r}"
    assert isinstance(err, AdcliError), f"{type(err).__name__}: {err}{context}"
    assert err.kind in KINDS, f"unknown kind {err.kind!r}{context}"
    assert isinstance(err.message, str) and err.message.strip(), f"no message{context}"
    assert not leaked(err.message), f"leaked Python text: {err.message!r}{context}"
    assert err.span is not None, f"no place for {err!r}{context}"
    assert err.span.line >= 1 and err.span.column >= 1, f"bad place {err.span}{context}"


def render_everything(session, values, err=None) -> None:
    """Show what ran, as a person and as strict JSON would see it (must not raise)."""
    from rich.console import Console

    from adcli.cli.render import (
        dumps,
        error_json,
        error_text,
        output_json,
        value_json,
        value_renderable,
    )

    console = Console(file=io.StringIO(), width=80)
    for value in values:
        console.print(value_renderable(value))
        dumps(value_json(value))
    if err is not None:
        console.print(error_text(err, session.source_lines, explain=True))
        dumps(error_json(err))
    for output in getattr(session, "_fuzz_outputs", []):
        dumps(output_json(output))


def check_in_session(source: str, filename: str = "<fuzz>", limits: dict | None = None):
    """Run ``source`` in a fresh session: it works, or fails with a proper AdcliError."""
    session = Session(seed=0, limits=Limits(**(limits or FUZZ_LIMITS)))
    outputs: list = []
    session._fuzz_outputs = outputs  # type: ignore[attr-defined]
    with watchdog():
        try:
            value = session.run(source, filename, emit=outputs.append, base_dir=CORPUS)
        except AdcliError as err:
            check_error(err, source)
            render_everything(session, [], err)
            return err
        except Exception as exc:  # noqa: BLE001 - the bug this looks for
            check_error(exc, source)
        shown = [o.value for o in outputs if o.kind == "value"] + [value]
        render_everything(session, shown)
    return None


# ------------------------------------------------------------------------- the real process
def run_adcli(args, *, input=None, cwd=None, timeout: float = 120):
    """``python -m adcli ARGS`` as a user runs it (bytes in, text out)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    env.pop("FORCE_COLOR", None)
    env["NO_COLOR"] = "1"
    return subprocess.run(  # noqa: PLW1510 - the exit status is what is checked
        [sys.executable, "-m", "adcli", *args],
        input=input,
        capture_output=True,
        cwd=cwd or HERE.parent,
        env=env,
        timeout=timeout,
    )


def check_error_object(error: dict, where: str) -> None:
    """A JSON error object: a known kind and code, a message, and the line and column."""
    assert error["kind"] in KINDS, f"{where}: kind {error['kind']!r}"
    assert error["code"] == KINDS[error["kind"]], where
    assert isinstance(error["message"], str) and error["message"], where
    assert not leaked(error["message"]), f"{where}: leaked {error['message']!r}"
    for key in ("line", "column"):
        assert isinstance(error[key], int) and error[key] >= 1, f"{where}: {key} {error!r}"


def check_process(proc, *, json_mode: bool, where: str = "") -> list[dict]:
    """What every run of the real command must be: exit 0, 1 or 2, no traceback, and with
    --json one strict JSON object per line whose errors carry kind, message, line, column."""
    import json

    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    where = f"{where} (exit {proc.returncode})\n--- stderr ---\n{err[-2000:]}"
    assert proc.returncode in (0, 1, 2), where
    assert "Traceback" not in err, where
    assert "internal error" not in err, where
    if not json_mode or proc.returncode == 2:
        return []

    def refuse(constant):
        raise AssertionError(f"{where}: non-strict JSON {constant}")

    objects = [json.loads(line, parse_constant=refuse) for line in out.splitlines()]
    assert objects, f"{where}: no JSON on stdout"
    for obj in objects:
        error = obj.get("error")
        if error is not None:
            check_error_object(error, where)
    if proc.returncode == 1:
        assert any(obj.get("error") for obj in objects), where
    return objects
