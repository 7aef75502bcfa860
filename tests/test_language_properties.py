"""Random programs never escape as anything but an AdcliError.

Programs are built from the grammar's constructs — numbers, names bound
earlier, strings, bracket literals, calls of the real builtins with random
arguments and keywords, operators, brackets, indexing and slicing, attributes
and methods — and each either runs or fails with an :class:`AdcliError` whose
kind is one of :data:`adcli.errors.KINDS` and whose span has a line and a
column. Random text must do the same, and the static checker must return
such errors rather than raise.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adcli.errors import KINDS, AdcliError
from adcli.lang import builtins as B
from adcli.lang.check import check_source
from adcli.lang.interpreter import Limits, Session

SETTINGS = settings(
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# Small limits keep every program quick: a runaway allocation or order is a limit error.
LIMITS = {
    "max_elements": 4096,
    "max_bytes": 1 << 20,
    "max_order": 3,
    "max_calls": 2000,
    "timeout": 5.0,
}

VARIABLES = ["a", "b", "m", "v"]
PRELUDE = (
    "a = tensor([0.5, 1.5, -2.0], requires_grad=true)\n"
    "b = 2.5\n"
    "m = tensor([[1., 2.], [3., 4.]], requires_grad=true)\n"
    "v = randn(2)\n"
    "sq(p) = p * p\n"
)
FUNCTIONS = ["sq"]
BUILTIN_NAMES = sorted(B.BUILTINS)
ATTRIBUTE_NAMES = sorted(B.ATTRIBUTES) + ["nope"]
METHOD_NAMES = sorted(B.METHODS) + ["nope"]
KEYWORD_NAMES = sorted(
    {k for b in B.BUILTINS.values() for k in b.keywords}
    | {p for b in B.BUILTINS.values() for p in b.params}
    | {k for _, _, kws in B.METHODS.values() for k in kws}
    | {"bogus"}
)
STRINGS = [
    '"float64"',
    '"float32"',
    '"cpu"',
    '"cuda"',
    '"taylor"',
    '"nested"',
    '"x"',
    '""',
    r'"a\"b"',
    r'"\\"',
]


def numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(-3, 6).map(str),
        st.sampled_from(["0", "1", "2", "2.5", ".5", "1e-3", "1e3", "0.0", "3.", "1e30"]),
    )


def bracket_literals() -> st.SearchStrategy[str]:
    signed = st.tuples(st.sampled_from(["", "-", "+"]), numbers()).map("".join)
    row = st.lists(signed, min_size=0, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]")
    matrix = st.lists(row, min_size=1, max_size=3).map(lambda rs: "[" + ", ".join(rs) + "]")
    return st.one_of(row, matrix)


def atoms() -> st.SearchStrategy[str]:
    # Mostly numbers and tensors, so that programs get past their first operator.
    return st.one_of(
        st.sampled_from(VARIABLES),
        numbers(),
        st.sampled_from(VARIABLES),
        bracket_literals(),
        st.sampled_from(["true", "false", "none", "undefined_name"]),
        st.sampled_from(STRINGS),
        st.sampled_from(BUILTIN_NAMES + FUNCTIONS),  # functions as values: jacobian(f, x)
    )


def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    args = st.lists(inner, min_size=0, max_size=3)
    kwargs = st.lists(
        st.tuples(
            st.sampled_from(KEYWORD_NAMES),
            st.one_of(inner, st.sampled_from(["true", "false", '"float64"', "0", "1", "2", "-1"])),
        ),
        min_size=0,
        max_size=2,
        unique_by=lambda kv: kv[0],
    )

    def call(name, positional, keywords):
        parts = list(positional) + [f"{k}={v}" for k, v in keywords]
        return f"{name}({', '.join(parts)})"

    subscript = st.one_of(
        inner,
        st.sampled_from(
            ["0", "1", "-1", "5", ":", "1:", ":2", "0:2", "::2", "1:3:1", "0, 1", "0, :", ":, 1"]
        ),
    )
    return st.one_of(
        st.builds(call, st.sampled_from(BUILTIN_NAMES + FUNCTIONS + ["nofn"]), args, kwargs),
        st.builds(lambda op, x: f"{op}{x}", st.sampled_from(["-", "+", "- -"]), inner),
        st.builds(
            lambda x, op, y: f"{x} {op} {y}",
            inner,
            st.sampled_from(["+", "-", "*", "/", "@", "^", "**", "==", "<", ">=", "!="]),
            inner,
        ),
        inner.map(lambda x: f"({x})"),
        st.builds(lambda x, s: f"({x})[{s}]", inner, subscript),
        st.builds(lambda x, n: f"({x}).{n}", inner, st.sampled_from(ATTRIBUTE_NAMES)),
        st.builds(
            lambda x, n, a, k: call(f"({x}).{n}", a, k),
            inner,
            st.sampled_from(METHOD_NAMES),
            st.lists(inner, max_size=2),
            kwargs,
        ),
        st.builds(lambda xs: "[" + ", ".join(xs) + "]", st.lists(inner, min_size=1, max_size=3)),
    )


EXPRESSIONS = st.recursive(atoms(), extend, max_leaves=10)


def statements() -> st.SearchStrategy[str]:
    return st.one_of(
        EXPRESSIONS,
        st.builds(lambda n, e: f"{n} = {e}", st.sampled_from(VARIABLES + ["fresh"]), EXPRESSIONS),
        st.builds(lambda e: f"g(a, q) = {e}", EXPRESSIONS),
        st.builds(lambda e: f"assert {e}", EXPRESSIONS),
        st.builds(lambda e: f'assert {e}, "message"', EXPRESSIONS),
    )


STATEMENT_LISTS = st.lists(statements(), min_size=1, max_size=4)
PROGRAMS = STATEMENT_LISTS.map(lambda stmts: PRELUDE + "\n".join(stmts) + "\n")


def assert_well_formed(err: AdcliError) -> None:
    assert err.kind in KINDS, err.kind
    assert err.span is not None, err
    assert err.span.line >= 1 and err.span.column >= 1, err.span
    assert isinstance(err.message, str) and err.message


def run_program(source: str) -> None:
    session = Session(seed=0, limits=Limits(**LIMITS))
    try:
        session.run(source, "<prop>", lambda output: None)
    except AdcliError as err:
        assert_well_formed(err)


@SETTINGS
@given(PROGRAMS)
def test_random_programs_run_or_fail_with_an_adcli_error(source):
    run_program(source)


@SETTINGS
@given(STATEMENT_LISTS)
def test_statements_run_one_by_one_in_one_session(stmts):
    # Each statement runs even when an earlier one failed, as in the REPL.
    session = Session(seed=0, limits=Limits(**LIMITS))
    session.run(PRELUDE, "<prelude>")
    for stmt in stmts:
        try:
            session.run(stmt, "<stdin>", lambda output: None)
        except AdcliError as err:
            assert_well_formed(err)


@SETTINGS
@given(PROGRAMS)
def test_the_checker_reports_adcli_errors_on_random_programs(source):
    for err in check_source(source, "<prop>"):
        assert_well_formed(err)


ALPHABET = st.sampled_from(
    list('abxyz0123456789.eE+-*/@^()[]{},;:=<>!#"\\ \t\n_') + ["**", "true", "sqrt", "grad("]
)


@SETTINGS
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_random_text_never_escapes_as_an_internal_error(text):
    run_program(text)
    for err in check_source(text, "<prop>"):
        assert_well_formed(err)


@SETTINGS
@given(st.text(max_size=30))
def test_arbitrary_unicode_never_escapes_as_an_internal_error(text):
    run_program(text)
