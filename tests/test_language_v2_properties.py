"""Random programs with loops, conditionals, function bodies, tuples and in-place
updates: each runs or fails with an AdcliError (a known kind, with a line and a
column), never hangs past the step and time limits, and ``check`` never raises."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adcli.errors import KINDS, AdcliError
from adcli.lang.check import check_source
from adcli.lang.interpreter import Limits, Session

SETTINGS = settings(
    derandomize=True,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
LIMITS = {
    "max_elements": 4096,
    "max_bytes": 1 << 20,
    "max_steps": 3000,
    "timeout": 5.0,
    "max_order": 3,
}
PRELUDE = (
    "a = tensor([0.5, 1.5, -2.0], requires_grad=true)\n"
    "b = 2.5\n"
    "v = randn(3)\n"
    "t = (1, 2)\n"
    "sq(p) = p * p\n"
    "body(p) {\n  q = p + 1\n  return q * b\n}\n"
)
NAMES = ["a", "b", "v", "t", "i", "n"]

atoms = st.one_of(
    st.sampled_from(NAMES),
    st.integers(-3, 5).map(str),
    st.sampled_from(["0.5", "true", "false", "none", "pi", "inf", "nan", '"s"', "[1, 2, 3]"]),
)


def exprs():
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.tuples(
                inner, st.sampled_from(list("+-*/%") + ["//", "^", "<", "==", "and", "or"]), inner
            ).map(lambda p: f"({p[0]} {p[1]} {p[2]})"),
            inner.map(lambda e: f"not {e}"),
            inner.map(lambda e: f"sq({e})"),
            inner.map(lambda e: f"body({e})"),
            inner.map(lambda e: f"sum({e})"),
            inner.map(lambda e: f"({e},)"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]}, {p[1]})"),
            st.tuples(inner, st.integers(-2, 3)).map(lambda p: f"{p[0]}[{p[1]}]"),
        ),
        max_leaves=6,
    )


def statements(depth: int):
    simple = st.one_of(
        st.tuples(st.sampled_from(NAMES), exprs()).map(lambda p: f"{p[0]} = {p[1]}"),
        st.tuples(st.sampled_from(NAMES), st.sampled_from(["+=", "-=", "*=", "/="]), exprs()).map(
            lambda p: f"{p[0]} {p[1]} {p[2]}"
        ),
        st.tuples(st.sampled_from(["a", "v"]), st.integers(-1, 3), exprs()).map(
            lambda p: f"{p[0]}[{p[1]}] = {p[2]}"
        ),
        exprs().map(lambda e: f"x, y = {e}"),
        exprs(),
        st.sampled_from(["break", "continue", "return 1", "a.grad = none", "print(i)"]),
    )
    if depth == 0:
        return simple

    def block(items):
        return "{ " + "; ".join(items) + " }"

    inner = st.lists(statements(depth - 1), min_size=0, max_size=3).map(block)
    return st.one_of(
        simple,
        st.tuples(st.sampled_from(["range(3)", "range(0)", "t", "v", "b", "(1, 2, 3)"]), inner).map(
            lambda p: f"for i in {p[0]} {p[1]}"
        ),
        st.tuples(exprs(), inner).map(lambda p: f"while {p[0]} {p[1]}"),
        st.tuples(exprs(), inner, inner).map(lambda p: f"if {p[0]} {p[1]} else {p[2]}"),
        inner.map(lambda b: f"no_grad {b}"),
        inner.map(lambda b: f"g(p) {b}\ng(a)"),
    )


programs = st.lists(statements(2), min_size=1, max_size=4).map("\n".join)


def _runs_or_fails_cleanly(source: str) -> None:
    started = time.monotonic()
    try:
        Session(limits=Limits(**LIMITS)).run(PRELUDE + source, "<prop>", lambda output: None)
    except AdcliError as err:
        assert err.kind in KINDS, err
        assert err.span is not None and err.span.line >= 1 and err.span.column >= 1, err
    assert time.monotonic() - started < 30, "ran far past the time limit"


@SETTINGS
@given(programs)
def test_random_v2_programs_only_raise_adcli_errors(source):
    _runs_or_fails_cleanly(source)


@SETTINGS
@given(programs)
def test_check_never_raises_on_random_v2_programs(source):
    for err in check_source(PRELUDE + source, "<prop>"):
        assert isinstance(err, AdcliError) and err.kind in KINDS


@SETTINGS
@given(st.text(alphabet="{}()[];\n ifwhlesoraknd=+-*x1:", max_size=40))
def test_random_braces_and_keywords_only_raise_adcli_errors(text):
    _runs_or_fails_cleanly(text)
