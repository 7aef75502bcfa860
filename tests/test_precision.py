"""Every number that reaches a tensor keeps full double precision until the
tensor's dtype is known (contract v2, "Bracket literals"; issue 10, item 1).

Expected values are Python's own float64 arithmetic on the literal's text
(``float(text)``, closed forms), never adcli's output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adcli.engine.tensor import Tensor
from adcli.lang.interpreter import Session

PI_ISH = "1.3360425586891356"  # needs all 53 bits: float32 would make it 1.3360425233840942
TENTH = 0.1


def ev(source: str, **options):
    return Session(**options).run(source, "<test>")


def values(t) -> list[float]:
    assert isinstance(t, Tensor)
    return np.asarray(t.numpy(), dtype=np.float64).reshape(-1).tolist()


def bits(x: float) -> bytes:
    return np.float64(x).tobytes()


# ----- the paths, one regression each -------------------------------------------------------------
def test_a_bracket_literal_under_dtype_float64_is_exact():
    t = ev(f'tensor([0.1, {PI_ISH}], dtype="float64")')
    assert t.dtype == "float64"
    assert values(t) == [0.1, float(PI_ISH)]


def test_a_nested_bracket_literal_under_dtype_float64_is_exact():
    t = ev(f'tensor([[0.1, -{PI_ISH}], [1/3, 2e-300]], dtype="float64")')
    assert values(t) == [0.1, -float(PI_ISH), 1 / 3, 2e-300]


def test_a_float32_literal_is_rounded_once_from_the_double():
    t = ev(f"tensor([0.1, {PI_ISH}])")
    assert t.dtype == "float32"
    assert t.numpy().tolist() == [np.float32(0.1), np.float32(float(PI_ISH))]


def test_an_at_value_is_exact_under_a_float64_session():
    s = Session(dtype="float64")
    assert values(s.make_tensor(f"[0.1, -{PI_ISH}]")) == [0.1, -float(PI_ISH)]
    assert values(s.make_tensor(PI_ISH)) == [float(PI_ISH)]


def test_full_keeps_its_value():
    assert values(ev(f'full([2], {PI_ISH}, dtype="float64")')) == [float(PI_ISH)] * 2


def test_arange_is_start_plus_i_step_in_double():
    got = values(ev('arange(0.1, 2, 0.3, dtype="float64")'))
    assert got == [0.1 + i * 0.3 for i in range(7)]
    got = values(ev(f'arange({PI_ISH}, 3, 1, dtype="float64")'))
    assert got == [float(PI_ISH), float(PI_ISH) + 1]


def test_linspace_bounds_are_exact_and_steps_are_double():
    got = values(ev(f'linspace(0.1, {PI_ISH}, 3, dtype="float64")'))
    a, b = 0.1, float(PI_ISH)
    assert got[0] == a and got[-1] == b
    assert math.isclose(got[1], (a + b) / 2, rel_tol=0, abs_tol=2**-52)
    assert values(ev('linspace(0.1, 0.7, 1, dtype="float64")')) == [0.1]


def test_allclose_tolerances_are_exact():
    base = 'a = tensor(0.0, dtype="float64"); b = tensor(1e-9, dtype="float64")\n'
    # 1.0000000001e-9 and 0.9999999999e-9 are the same number in float32.
    assert ev(base + "allclose(a, b, rtol=0, atol=1.0000000001e-9)") is True
    assert ev(base + "allclose(a, b, rtol=0, atol=0.9999999999e-9)") is False


def test_allclose_with_a_number_compares_in_the_tensors_dtype():
    assert ev('allclose(tensor(0.1, dtype="float64"), 0.1, rtol=0, atol=0)') is True


def test_where_constants_are_exact():
    src = 'x = tensor([1.0, 2.0], dtype="float64"); c = x > 1.5\n'
    assert values(ev(src + f"where(c, x, {PI_ISH})")) == [float(PI_ISH), 2.0]
    assert values(ev(src + f"where(c, {PI_ISH}, x)")) == [1.0, float(PI_ISH)]


def test_where_of_two_numbers_is_in_the_session_dtype():
    assert ev("where(tensor([1.0]) > 0, 0.5, 0.25)").dtype == "float32"
    assert ev("where(tensor([1.0]) > 0, 0.5, 0.25)", dtype="float64").dtype == "float64"


def test_python_numbers_in_arithmetic_with_float64_tensors_are_exact():
    c = float(PI_ISH)
    src = 'x = tensor([0.5, 3.0], dtype="float64")\n'
    assert values(ev(src + f"x * {PI_ISH}")) == [0.5 * c, 3.0 * c]
    assert values(ev(src + f"x + {PI_ISH}")) == [0.5 + c, 3.0 + c]
    assert values(ev(src + f"{PI_ISH} - x")) == [c - 0.5, c - 3.0]
    assert values(ev(src + f"{PI_ISH} / x")) == [c / 0.5, c / 3.0]
    assert values(ev(src + f"x ^ {PI_ISH}")) == [0.5**c, 3.0**c]
    assert values(ev(src + f"maximum({PI_ISH}, x)")) == [c, 3.0]
    assert values(ev(src + f"minimum(x, {PI_ISH})")) == [0.5, c]


def test_a_gradient_with_a_float64_constant_is_exact():
    c = float(PI_ISH)
    src = 'x = tensor(0.5, dtype="float64", requires_grad=true)\n'
    assert ev(src + f"grad(x * {PI_ISH}, x)").item() == c
    got = ev(src + f"grad(pow(x, {PI_ISH}), x)").item()
    assert math.isclose(got, c * 0.5 ** (c - 1), rel_tol=1e-15)


# ----- property: any float64 literal, every path -------------------------------------------------
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=60, deadline=None)
@given(finite, finite)
def test_random_float64_literals_become_bit_identical_tensors(a, b):
    ta, tb = repr(a), repr(b)
    want = [float(ta), float(tb)]
    s = Session(dtype="float64")
    paths = {
        "literal": f'tensor([{ta}, {tb}], dtype="float64")',
        "nested literal": f'tensor([[{ta}], [{tb}]], dtype="float64")',
        "number": f'tensor({ta}, dtype="float64")',
        "full": f'full([1], {ta}, dtype="float64")',
        "linspace": f'linspace({ta}, {tb}, 2, dtype="float64")',
        "where": f'where(tensor([1.0, 0.0]) > 0.5, {ta}, tensor({tb}, dtype="float64"))',
        "sum with zero": f'tensor(0.0, dtype="float64") + {ta}',
    }
    for name, program in paths.items():
        got = values(Session().run(program, "<test>"))
        expected = want[: len(got)] if name != "sum with zero" else [0.0 + want[0]]
        if name == "linspace":  # end - 0 * step: -0.0 may come out as 0.0 (as in PyTorch)
            assert got == expected, (name, program, got)
            continue
        assert [bits(g) for g in got] == [bits(e) for e in expected], (name, program, got)
    at = values(s.make_tensor(f"[{ta}, {tb}]"))
    assert [bits(g) for g in at] == [bits(e) for e in want], ("--at", ta, tb)


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=64))
def test_random_literals_through_arange_start(a):
    got = values(ev(f'arange({a!r}, {a!r} + 2.5, 1, dtype="float64")'))
    assert [bits(g) for g in got] == [bits(a + i * 1.0) for i in range(len(got))]
    assert got and got[0] == float(repr(a))  # (-0.0 + 0 * step is 0.0, as in PyTorch)


@pytest.mark.parametrize("text", ["0.1", PI_ISH, "1e-310", "-2.5e+30", "123456789.123456789"])
def test_float32_paths_round_once(text):
    want = np.float32(float(text))
    for program in (f"tensor([{text}])", f"full([1], {text})", f"tensor({text})"):
        got = ev(program).numpy().reshape(-1)[0]
        assert got.tobytes() == want.tobytes(), program


def test_a_number_as_grad_outputs_or_gradient_keeps_full_precision():
    src = 'x = tensor(2.0, dtype="float64", requires_grad=true)\n'
    assert ev(src + f"grad(x * 1.0, x, {PI_ISH})").item() == float(PI_ISH)
    assert ev(src + f"backward(x * 1.0, {PI_ISH})\nx.grad").item() == float(PI_ISH)


def test_engine_allclose_with_a_number_uses_the_tensors_dtype():
    from adcli import engine as E

    assert E.allclose(E.tensor(0.1, dtype="float64"), 0.1, rtol=0, atol=0)
    assert E.allclose(0.1, E.tensor(0.1, dtype="float64"), rtol=0, atol=0)


def test_engine_where_of_two_numbers_is_in_the_default_dtype():
    from adcli import engine as E

    c = E.gt(E.tensor([1.0, -1.0]), 0.0)
    assert E.where(c, 0.5, 0.25).dtype == "float32"
    assert E.where(c, E.tensor(0.1, dtype="float64"), 0.2).numpy().tolist() == [0.1, 0.2]
