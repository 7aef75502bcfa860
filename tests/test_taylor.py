"""Taylor mode (``adcli.engine.taylor``): the nested method's nth derivatives, in polynomial time.

* Every gradient case of the table (``engine_cases.CASES``) and a set of
  composites: Taylor mode and nested differentiation agree in float64 to
  1e-10, orders 1..6, with respect to each input.
* Every differentiable op of the table has a Taylor rule reached by a case
  (or is listed in ``FALLS_BACK``).
* Univariate functions against mpmath (50 digits), orders 1..10.
* The API: ``nth_grads(method=...)``, fallback with a warning, ``check_orders``,
  ``cost_report``, the benchmark's quick mode.

Float32, measured against mpmath (the seven oracle functions below, x = 0.5,
1.3, 2.0; float64 stays within 3e-13 throughout):

* orders 1..10: ~1e-7 at order 1 (one rounding), typically 1e-7..1e-6 after,
  worst 4e-5 (``sigmoid``, order 9: a derivative small next to the terms that
  cancel into it). Cancellation in the recurrences (each coefficient is a sum
  of ~k products of earlier ones) is what grows the error.
* orders 11..34: still 1e-7..1e-4 (worst ``x^x``: 1e-4 at order 30), except
  where the true derivative itself overflows float32 (``1/x`` at x = 0.5 from
  order 30: 30!/0.5^31 > 3.4e38).
* order 35 on: inf/nan. The kth coefficient is ``f^(k)/k!`` and the reverse
  pass is seeded with ``k!``, which passes float32's 3.4e38 at k = 35 (and for
  entire functions ``f^(k)/k!`` underflows float32 about there too). The
  engine warns when that happens; use float64 for high orders.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import warnings
import zlib
from pathlib import Path

import engine_cases as C
import mpmath
import numpy as np
import pytest

import adcli.engine as E
from adcli.engine import diagnostics as D
from adcli.engine import taylor as TM
from adcli.engine.ops import TABLE, OpDef
from adcli.engine.taylor import nth_grads
from adcli.engine.tensor import STATE, apply
from adcli.errors import AdcliError

ORDERS = 6
RTOL = 1e-10

#: differentiable ops that knowingly have no Taylor rule (``auto`` falls back to nested for them)
FALLS_BACK: frozenset = frozenset()


def _engine_sums_broadcast_gradients() -> bool:
    """Whether reverse mode sums a gradient over a broadcast when the seed is a scalar.

    (``grad(sum(x0 + b), x0)`` for a 0-d ``x0`` and ``b`` of 6 elements must be 6.)
    """
    x = E.tensor(0.5, dtype="float64", requires_grad=True)
    return E.grad(E.sum(x + E.zeros(2, 3, dtype="float64")), x).item() == 6.0


def _leaf(values, dtype="float64"):
    return E.tensor(values, dtype=dtype, requires_grad=True)


def _compare_with_nested(y, x, orders, rtol, name, fd_f=None):
    """Taylor mode against the nested method; on a mismatch, explain it or fail."""
    taylor = [d.numpy() for d in TM.taylor_grads(y, x, orders)]
    nested = [d.numpy() for d in nth_grads(y, x, orders, method="nested")]
    scale = max([1.0] + [float(np.max(np.abs(n), initial=0.0)) for n in nested])
    try:
        for k, (t, n) in enumerate(zip(taylor, nested), start=1):
            assert t.shape == n.shape and t.dtype == n.dtype, (name, k)
            np.testing.assert_allclose(
                t, n, rtol=rtol, atol=rtol * scale, err_msg=f"{name}: order {k}"
            )
    except AssertionError:
        if _engine_sums_broadcast_gradients() or fd_f is None:
            raise
        # The nested method is the one that is off (see the probe); Taylor must match FD.
        fd, _, _ = D.finite_difference_grads(fd_f, x, min(orders, 3))
        for k, (t, f) in enumerate(zip(taylor, fd), start=1):
            np.testing.assert_allclose(
                t,
                f,
                rtol=1e-5,
                atol=1e-5 * max(1.0, np.max(np.abs(f))),
                err_msg=f"{name}: order {k} against finite differences",
            )
        pytest.xfail(
            "the engine's reverse mode skips summing a scalar-seeded gradient over a "
            "broadcast, so nested differentiation is off here; Taylor mode matches "
            "finite differences"
        )


# ----- every case of the gradient table ----------------------------------------------------


def _case_params():
    for case in C.CASES:
        for i in range(len(case.inputs)):
            yield pytest.param(case, i, id=f"{case.name}/input{i}")


@pytest.mark.parametrize(("case", "index"), list(_case_params()))
def test_taylor_matches_nested_on_every_gradient_case(case, index):
    arrays = C.draw_inputs(case)
    xs = C.make_inputs(case, arrays)
    y = case.fn(*xs)
    without = C.table_ops_in_graph(y) & FALLS_BACK
    if without:
        with pytest.raises(TM.NoTaylorRule):
            TM.taylor_grads(y, xs[index], 2)
        return
    low_precision = any(s.dtype == "float32" for s in case.inputs) or "cast" in case.ops
    rtol = 1e-5 if low_precision else RTOL

    def with_others_fixed(x):
        args = list(C.make_inputs(case, arrays, requires_grad=False))
        args[index] = x
        return case.fn(*args)

    _compare_with_nested(y, xs[index], ORDERS, rtol, case.name, with_others_fixed)


# ----- composites: sums inside, products of matrices, broadcasting, every recurrence ---------


def _const(values):
    return E.tensor(values, dtype="float64")


COMPOSITES = {
    "log(x^2+1)*sqrt(x^2+1)": (lambda x: E.log(x**2 + 1) * E.sqrt(x**2 + 1), (5,), "any"),
    "softmax": (lambda x: E.exp(x) / E.sum(E.exp(x)), (4,), "any"),
    "x * sum(x^2) (sum inside)": (lambda x: x * E.sum(x**2), (4,), "any"),
    "sin(mean(x, 1, keepdim)) * x": (
        lambda x: E.sin(E.mean(x, 1, keepdim=True)) * x,
        (2, 3),
        "any",
    ),
    "mm(sin(X), X.T)": (lambda x: E.mm(E.sin(x), x.T), (2, 3), "any"),
    "tanh(W @ x) @ W": (
        lambda x: E.matmul(
            E.tanh(E.matmul(_const([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]]), x)),
            _const([[1.0, 2.0], [-0.5, 0.25]]),
        ),
        (3,),
        "any",
    ),
    "bmm(X, exp(X)^T)": (lambda x: E.matmul(x, E.permute(E.exp(x), 0, 2, 1)), (2, 2, 3), "small"),
    "dot(x, cos(x))": (lambda x: E.dot(x, E.cos(x)), (4,), "any"),
    "outer broadcast": (lambda x: E.reshape(x, 3, 1) * E.reshape(E.sin(x), 1, 3) ** 2, (3,), "any"),
    "x + c (broadcast to a matrix)": (lambda x: E.exp(x + _const([[0.5], [-1.0]])), (3,), "small"),
    "x^x": (lambda x: x**x, (3,), "pos"),
    "x^sin(x)": (lambda x: x ** E.sin(x), (3,), "pos"),
    "2^x": (lambda x: 2.0**x, (3,), "any"),
    "c^x (tensor base)": (lambda x: _const([0.5, 2.0, 3.0]) ** x, (3,), "any"),
    "x^c (tensor exponent)": (lambda x: x ** _const([0.5, -1.5, 3.0]), (3,), "pos"),
    "x^2.5": (lambda x: x**2.5, (3,), "pos"),
    "x^-1.5": (lambda x: x**-1.5, (3,), "pos"),
    "x^11 (recurrence)": (lambda x: x**11, (3,), "pos"),
    "(x - x0)^9 with a zero (squaring)": (
        lambda x: (x - _const([0.5, 1.0, 1.5])) ** 9,
        (3,),
        "grid",
    ),
    "x^5 at zero": (lambda x: (x * 0.0) ** 5 + x**5, (3,), "any"),
    "sqrt(exp(x) + x^2) (dense sqrt)": (lambda x: E.sqrt(E.exp(x) + x**2), (3,), "any"),
    "sin(exp(x)) (dense sin)": (lambda x: E.sin(E.exp(x)), (3,), "small"),
    "log(2 + sin(x)) (dense log)": (lambda x: E.log(2.0 + E.sin(x)), (3,), "any"),
    "tanh(x)^3": (lambda x: E.tanh(x) ** 3, (3,), "any"),
    "sigmoid(x * sum(x))": (lambda x: E.sigmoid(x * E.sum(x)), (3,), "small"),
    "cos(x)*exp(-x^2)": (lambda x: E.cos(x) * E.exp(-(x**2)), (3,), "any"),
    "1/(1 + x^2) (div by a series)": (lambda x: 1.0 / (1.0 + x**2), (3,), "any"),
    "where(x > 0, x^3, sin(x))": (lambda x: E.where(x > 0, x**3, E.sin(x)), (4,), "away0"),
    "relu(x)^3 + abs(x)^2.5": (lambda x: E.relu(x) ** 3 + E.abs(x) ** 2.5, (4,), "away0"),
    "x[1:3] * x[0] * x[None]": (lambda x: E.sum(x[1:3] * x[0]) * x[None], (4,), "any"),
    "exp(x).T @ x reshaped": (
        lambda x: E.mm(E.reshape(E.exp(x), 2, 2).T, E.reshape(x, 2, 2)),
        (4,),
        "small",
    ),
    "tan (sin/cos)": (lambda x: E.tan(x), (3,), "small"),
}


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_taylor_matches_nested_on_composites(name):
    f, shape, domain = COMPOSITES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x = _leaf(C.draw(C.Input(shape, domain), rng))
    _compare_with_nested(f(x), x, ORDERS, RTOL, name, f)


def test_every_differentiable_op_has_a_taylor_rule_or_falls_back():
    for name, entry in TABLE.items():
        if entry.differentiable and name not in FALLS_BACK:
            assert entry.taylor is not None, f"'{name}' has no Taylor rule and is not in FALLS_BACK"
    assert all(TABLE[name].taylor is None for name in FALLS_BACK)


def test_every_taylor_rule_is_reached_by_a_case():
    reached = set()
    for case in C.CASES:
        reached |= C.table_ops_in_graph(case.fn(*C.make_inputs(case, C.draw_inputs(case))))
    for f, shape, domain in COMPOSITES.values():
        x = _leaf(C.draw(C.Input(shape, domain), np.random.default_rng(0)))
        reached |= C.table_ops_in_graph(f(x))
    with_rule = {name for name, entry in TABLE.items() if entry.taylor is not None}
    assert not with_rule - reached, f"Taylor rules without a case: {with_rule - reached}"


def test_non_differentiable_ops_are_constants_of_the_series():
    x = _leaf([-1.0, 0.5, 2.0])
    y = E.sign(x) * x**3 + E.where(x > 0, x, 0.0) * (x >= 1.0)
    _compare_with_nested(y, x, 4, RTOL, "sign, comparisons")


# ----- against 50 digits ---------------------------------------------------------------------

ORACLE = {
    "1/x": (lambda x: 1 / x, lambda t: 1 / t),
    "exp(sin(x))": (lambda x: E.exp(E.sin(x)), lambda t: mpmath.exp(mpmath.sin(t))),
    "log(x^2+1)*sqrt(x^2+1)": (
        lambda x: E.log(x**2 + 1) * E.sqrt(x**2 + 1),
        lambda t: mpmath.log(t**2 + 1) * mpmath.sqrt(t**2 + 1),
    ),
    "tanh(x)^3": (lambda x: E.tanh(x) ** 3, lambda t: mpmath.tanh(t) ** 3),
    "x^x": (lambda x: x**x, lambda t: t**t),
    "sigmoid(x)": (E.sigmoid, lambda t: 1 / (1 + mpmath.exp(-t))),
    "cos(x)*exp(-x^2)": (
        lambda x: E.cos(x) * E.exp(-(x**2)),
        lambda t: mpmath.cos(t) * mpmath.exp(-(t**2)),
    ),
}
POINTS = [0.5, 1.3, 2.0]
ORACLE_ORDERS = 10


def _exact(g) -> np.ndarray:
    """[order][point] derivatives at 50 digits (mpmath.diff, all orders in one go)."""
    with mpmath.workdps(50):
        rows = [
            [float(d) for d in mpmath.diffs(g, mpmath.mpf(p), ORACLE_ORDERS)][1:] for p in POINTS
        ]
    return np.array(rows).T


def _relative_errors(name, dtype) -> list:
    f, g = ORACLE[name]
    x = _leaf(POINTS, dtype)
    got = TM.taylor_grads(f(x), x, ORACLE_ORDERS)
    exact = _exact(g)
    return [
        float(np.max(np.abs(d.numpy().astype(np.float64) - e) / np.abs(e)))
        for d, e in zip(got, exact)
    ]


@pytest.mark.parametrize("name", list(ORACLE))
def test_taylor_matches_mpmath_to_order_10(name):
    errors = _relative_errors(name, "float64")
    assert max(errors) <= 1e-6, dict(enumerate(errors, start=1))


@pytest.mark.parametrize("name", list(ORACLE))
def test_float32_accuracy_degrades_gracefully(name):
    """Float32 (see the module docstring): about 1e-7 at order 1, never worse than 1e-3 by 10."""
    errors = _relative_errors(name, "float32")
    assert errors[0] <= 1e-6
    assert max(errors) <= 1e-3, dict(enumerate(errors, start=1))


# ----- what the series and the API do -----------------------------------------------------------


def test_coefficients_of_exp_are_exp_over_factorials():
    x = _leaf([0.3, -1.2])
    coefficients = TM.taylor_coefficients(E.exp(x), x, 6)
    for k, c in enumerate(coefficients):
        np.testing.assert_allclose(c.numpy(), np.exp(x.numpy()) / math.factorial(k), rtol=1e-14)


def test_sparse_series_stay_sparse():
    x = _leaf([0.5, 1.5])
    coefficients = TM.taylor_coefficients(x**2 + 1, x, 6)
    assert all(c is None for c in coefficients[3:])


def test_nth_grads_methods_agree_and_auto_uses_taylor_from_order_3():
    x = _leaf(np.linspace(0.2, 1.5, 7))
    y = E.log(x**2 + 1) * E.sqrt(x**2 + 1)
    results = {}
    nodes = {}
    for method in ("auto", "taylor", "nested"):
        with D.counting_nodes() as count:
            results[method] = nth_grads(y, x, 7, method=method)
        nodes[method] = count[0]
    for a, b, c in zip(*results.values()):
        np.testing.assert_allclose(a.numpy(), c.numpy(), rtol=1e-10)
        np.testing.assert_allclose(b.numpy(), c.numpy(), rtol=1e-10)
    assert nodes["auto"] == nodes["taylor"] < nodes["nested"] / 10


def test_nth_grads_rejects_an_unknown_method():
    x = _leaf([1.0])
    with pytest.raises(AdcliError, match="method"):
        nth_grads(E.exp(x), x, 3, method="symbolic")


def _square_without_a_rule():
    """An op like the table's, but without a Taylor rule (not registered in TABLE)."""
    return OpDef(
        "square_no_taylor",
        "SquareBackward",
        lambda xp, a: a * a,
        (lambda F, g, out, a: g * 2.0 * a,),
        frozenset({0}),
        elementwise=True,
    )


def test_auto_falls_back_to_nested_with_a_warning_when_an_op_has_no_rule():
    square = _square_without_a_rule()
    x = _leaf([0.5, 2.0])
    y = E.sin(apply(square, (x,)))
    said = []
    previous = STATE.warn
    STATE.warn = said.append
    try:
        got = nth_grads(y, x, 4)
    finally:
        STATE.warn = previous
    assert len(said) == 1 and "square_no_taylor" in said[0] and "nested" in said[0]
    expected = nth_grads(y, x, 4, method="nested")
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.numpy(), b.numpy())
    assert TM.missing_rules(y, x) == {"square_no_taylor"}
    with pytest.raises(AdcliError, match="no Taylor rule for square_no_taylor"):
        nth_grads(y, x, 4, method="taylor")


def test_output_that_does_not_depend_on_x_gives_zeros():
    x = _leaf([1.0, 2.0])
    z = _leaf([3.0, 4.0])
    for y in (E.exp(z), z * 2.0):
        for d in TM.taylor_grads(y, x, 4):
            np.testing.assert_array_equal(d.numpy(), np.zeros(2))


def test_y_is_x():
    x = _leaf([1.0, 2.0])
    d1, d2, d3 = TM.taylor_grads(x, x, 3)
    np.testing.assert_array_equal(d1.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(d2.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(d3.numpy(), [0.0, 0.0])


def test_other_leaves_are_held_constant():
    x = _leaf([0.4, 0.9])
    z = _leaf([1.5, -0.5])
    y = E.exp(x * z) + E.sin(z) * x**3
    _compare_with_nested(y, x, 5, RTOL, "two leaves")


def test_a_non_leaf_x_is_differentiated_holding_its_inputs_fixed():
    a = _leaf([0.4, 0.9])
    x = a * 2.0
    y = E.exp(x) * a
    _compare_with_nested(y, x, 4, RTOL, "non-leaf x")


def test_results_are_differentiable_with_create_graph():
    x = _leaf([0.3, 0.8])
    y = E.tanh(x) * E.exp(x)
    expected = nth_grads(y, x, 5, method="nested")[-1]
    d4 = TM.taylor_grads(y, x, 4, create_graph=True)[-1]
    d5 = E.grad(E.sum(d4), x)
    np.testing.assert_allclose(d5.numpy(), expected.numpy(), rtol=1e-10)


def test_taylor_grad_is_the_last_of_taylor_grads():
    x = _leaf([0.3, 0.8])
    y = E.sigmoid(x) ** 2
    np.testing.assert_allclose(
        TM.taylor_grad(y, x, 5).numpy(), TM.taylor_grads(y, x, 5)[-1].numpy(), rtol=1e-14
    )


def test_the_graph_of_y_is_kept():
    x = _leaf([0.3, 0.8])
    y = E.sin(x) * x
    first = TM.taylor_grads(y, x, 5)
    again = TM.taylor_grads(y, x, 5)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    E.sum(y).backward()  # still possible: nothing was freed


def test_a_freed_graph_is_an_error_that_says_so():
    x = _leaf([0.3, 0.8])
    y = E.sin(x) * x
    E.sum(y).backward()
    with pytest.raises(AdcliError, match="backward through the graph a second time"):
        TM.taylor_grads(y, x, 3)


def test_x_must_require_grad():
    x = E.tensor([1.0, 2.0], dtype="float64")
    with pytest.raises(AdcliError, match="does not require grad"):
        TM.taylor_grads(E.exp(x), x, 3)


def test_float32_stays_float32():
    x = _leaf([0.5, 1.0], "float32")
    for d in TM.taylor_grads(E.exp(E.sin(x)), x, 4):
        assert d.dtype == "float32"


def test_check_orders_on_a_function_and_on_a_tensor():
    def f(x):
        return E.exp(E.sin(x)) * x

    x = _leaf([0.2, 0.9, -0.4])
    report = D.check_orders(f, x, 4)
    assert report["finite_differences"] and report["dtype"] == "float64"
    assert [row["order"] for row in report["orders"]] == [1, 2, 3, 4]
    for row in report["orders"]:
        assert row["taylor_vs_nested"] < 1e-12
        assert row["taylor_vs_fd"] < 1e-5
    assert report["max_disagreement"] < 1e-5
    y = f(x)
    report = D.check_orders(y, x, 3)
    assert not report["finite_differences"]
    assert all(row["taylor_vs_fd"] is None for row in report["orders"])


def test_check_orders_projects_large_inputs_onto_a_few_directions():
    x = _leaf(np.linspace(-1, 1, 40))
    report = D.check_orders(lambda t: E.sin(t) * E.sum(t**2), x, 3)
    assert all(len(row) == 4 for row in report["orders"])
    assert max(row["taylor_vs_fd"] for row in report["orders"]) < 1e-5
    if _engine_sums_broadcast_gradients():  # else nested is off at order 3 (see above)
        assert report["max_disagreement"] < 1e-5


def test_cost_report_counts_nodes_time_and_memory():
    x = _leaf(np.linspace(0.2, 1.5, 50))
    y = E.log(x**2 + 1) * E.sqrt(x**2 + 1)
    taylor = D.cost_report(y, x, 7, "taylor")
    nested = D.cost_report(y, x, 7, "nested")
    assert [r["order"] for r in taylor] == list(range(1, 8))
    for row in taylor + nested:
        assert set(row) == {"order", "nodes", "seconds", "peak_bytes"}
        assert row["seconds"] >= 0 and row["peak_bytes"] >= 0
    assert taylor[-1]["nodes"] * 10 < nested[-1]["nodes"]
    from_f = D.cost_report(lambda t: E.exp(t) * t, x, 2, "auto")
    assert from_f[0]["nodes"] > 0


def test_counting_nodes_restores_the_engine():
    tape = sys.modules["adcli.engine.tensor"]
    original = tape._record
    with D.counting_nodes() as count:
        x = _leaf([1.0])
        E.exp(x) * x
    assert count[0] == 2
    assert tape._record is original


def test_benchmark_quick_mode_runs_and_reports():
    path = Path(__file__).resolve().parents[1] / "scripts" / "bench" / "nth_order.py"
    spec = importlib.util.spec_from_file_location("nth_order_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = module.run(quick=True)
    taylor = results["methods"]["adcli-taylor"]
    assert [r["order"] for r in taylor] == [1, 2, 3, 4]
    assert all(r["nodes"] > 0 for r in taylor)
    assert "adcli-nested" in results["methods"]
    assert "summary" in results


def test_float32_beyond_its_range_warns():
    x = _leaf([0.5], "float32")
    said = []
    previous = STATE.warn
    STATE.warn = said.append
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NumPy's overflow warnings
            TM.taylor_grad(E.exp(x), x, 36)
    finally:
        STATE.warn = previous
    assert said and "float32" in said[0] and "35!" in said[0]
