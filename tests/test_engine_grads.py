"""Every op of the table: first and second derivatives against central finite differences.

For each case of ``engine_cases.CASES`` (float64 inputs, several shapes,
broadcasting pairs, Python numbers on either side) with ``L = sum(f(x) * w)``:

* ``grad(L, x)`` matches central differences of ``L``;
* the Hessian-vector product ``grad(sum(grad(L, x, create_graph=True) * v), x)``
  matches central differences of the first gradient along ``v``.

Gradients are never checked against themselves.
"""

from __future__ import annotations

import numpy as np
import pytest

import adcli.engine as E
from adcli.engine.tensor import no_grad

try:
    import engine_cases as C
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests import engine_cases as C


def make_inputs(case, arrays, device="cpu", requires_grad=True):
    return [
        E.tensor(a, dtype=str(a.dtype), device=device, requires_grad=requires_grad)
        for a in arrays
    ]


def draw_inputs(case):
    rng = C.rng_for(case)
    return [C.draw(spec, rng) for spec in case.inputs]


def weight_for(case, out_shape):
    rng = C.rng_for(case, "w")
    if any(spec.domain == "grid" for spec in case.inputs):
        # exact in float32 too, so float32 gradients carry no rounding into the differences
        return rng.integers(-4, 5, out_shape) / 4.0
    return rng.standard_normal(out_shape)


def loss(case, xs, w):
    out = case.fn(*xs)
    return E.sum(out * C.const(w, out))


def loss_value(case, arrays, w, device="cpu") -> float:
    with no_grad():
        return float(loss(case, make_inputs(case, arrays, device, False), w).item())


def first_grads(case, arrays, w, device="cpu"):
    xs = make_inputs(case, arrays, device)
    gs = E.grad(loss(case, xs, w), xs)
    return [g.numpy() for g in gs]


def fd_grads(case, arrays, w, device="cpu"):
    """Central differences of L, one element at a time."""
    result = []
    for i, a in enumerate(arrays):
        g = np.zeros(a.shape, dtype=np.float64)
        for j in range(a.size):
            plus = [b.copy() for b in arrays]
            minus = [b.copy() for b in arrays]
            plus[i].reshape(-1)[j] += case.eps
            minus[i].reshape(-1)[j] -= case.eps
            g.reshape(-1)[j] = (
                loss_value(case, plus, w, device) - loss_value(case, minus, w, device)
            ) / (2 * case.eps)
        result.append(g)
    return result


def out_shape(case, arrays):
    with no_grad():
        return case.fn(*make_inputs(case, arrays, requires_grad=False)).shape


def check_first(case, device="cpu"):
    arrays = draw_inputs(case)
    w = weight_for(case, out_shape(case, arrays))
    xs = make_inputs(case, arrays, device)
    gs = E.grad(loss(case, xs, w), xs)
    expected = fd_grads(case, arrays, w)  # on the CPU: the reference
    for x, g, fd in zip(xs, gs, expected):
        assert g.shape == x.shape
        assert g.dtype == x.dtype
        assert g.device == x.device
        np.testing.assert_allclose(g.numpy(), fd, rtol=case.rtol, atol=case.atol)


def check_hvp(case, device="cpu"):
    arrays = draw_inputs(case)
    w = weight_for(case, out_shape(case, arrays))
    rng = C.rng_for(case, "v")
    vs = [C.direction(spec, rng) for spec in case.inputs]
    xs = make_inputs(case, arrays, device)
    gs = E.grad(loss(case, xs, w), xs, create_graph=True)
    s = None
    for g, v in zip(gs, vs):
        term = E.sum(g * C.const(v, g))
        s = term if s is None else s + term
    hvs = E.grad(s, xs)
    eps = case.eps
    plus = first_grads(case, [a + eps * v for a, v in zip(arrays, vs)], w)
    minus = first_grads(case, [a - eps * v for a, v in zip(arrays, vs)], w)
    for x, hv, gp, gm in zip(xs, hvs, plus, minus):
        assert hv.shape == x.shape
        fd = (gp.astype(np.float64) - gm.astype(np.float64)) / (2 * eps)
        np.testing.assert_allclose(hv.numpy(), fd, rtol=max(case.rtol, 1e-5), atol=1e-6)


@pytest.mark.parametrize("case", C.CASES, ids=repr)
def test_first_derivative_matches_finite_differences(case):
    check_first(case)


@pytest.mark.parametrize("case", C.CASES, ids=repr)
def test_hessian_vector_product_matches_finite_differences(case):
    check_hvp(case)


@pytest.mark.parametrize("case", C.CASES, ids=repr)
def test_case_reaches_the_ops_it_claims(case):
    arrays = draw_inputs(case)
    xs = make_inputs(case, arrays)
    recorded = C.table_ops_in_graph(case.fn(*xs))
    assert case.ops <= recorded, f"{case.name}: claims {set(case.ops)}, graph has {recorded}"


def test_every_differentiable_table_op_has_a_gradient_case():
    reached = set()
    for case in C.CASES:
        xs = make_inputs(case, draw_inputs(case))
        reached |= C.table_ops_in_graph(case.fn(*xs))
    missing = C.differentiable_table_ops() - reached
    assert not missing, f"table ops without a gradient case in tests/engine_cases.py: {missing}"


def test_every_table_op_is_a_primitive_with_one_rule_per_input():
    from adcli.engine.ops import TABLE

    for name, entry in TABLE.items():
        assert entry.name == name
        if entry.differentiable:
            assert any(rule is not None for rule in entry.vjps), name


def test_case_names_are_unique():
    names = [c.name for c in C.CASES]
    assert len(names) == len(set(names))


def test_non_differentiable_ops_record_nothing():
    x = E.randn(3, dtype="float64", requires_grad=True)
    for f in (E.sign, lambda t: t > 0, lambda t: t >= 0, lambda t: t < 0, lambda t: t <= 0,
              lambda t: E.eq(t, t), lambda t: E.ne(t, 0.0)):
        y = f(x)
        assert y.grad_fn is None
        assert not y.requires_grad
