"""Every op of the table: first and second derivatives against central finite differences.

For each case of ``engine_cases.CASES`` (float64 inputs, several shapes,
broadcasting pairs, Python numbers on either side) with ``L = sum(f(x) * w)``:

* ``grad(L, x)`` matches central differences of ``L``;
* the Hessian-vector product ``grad(sum(grad(L, x, create_graph=True) * v), x)``
  matches central differences of the first gradient along ``v``.

Gradients are never checked against themselves.
"""

from __future__ import annotations

import engine_cases as C
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import adcli.engine as E


@pytest.mark.parametrize("case", C.CASES, ids=repr)
def test_first_derivative_matches_finite_differences(case):
    C.check_first(case)


@pytest.mark.parametrize("case", C.CASES, ids=repr)
def test_hessian_vector_product_matches_finite_differences(case):
    C.check_hvp(case)


@pytest.mark.parametrize("case", C.CASES, ids=repr)
def test_case_reaches_the_ops_it_claims(case):
    arrays = C.draw_inputs(case)
    xs = C.make_inputs(case, arrays)
    recorded = C.table_ops_in_graph(case.fn(*xs))
    assert case.ops <= recorded, f"{case.name}: claims {set(case.ops)}, graph has {recorded}"


def test_every_differentiable_table_op_has_a_gradient_case():
    reached = set()
    for case in C.CASES:
        xs = C.make_inputs(case, C.draw_inputs(case))
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
    for f in (
        lambda t: t > 0,
        lambda t: t >= 0,
        lambda t: t < 0,
        lambda t: t <= 0,
        lambda t: E.eq(t, t),
        lambda t: E.ne(t, 0.0),
    ):
        y = f(x)
        assert y.grad_fn is None
        assert not y.requires_grad


@st.composite
def broadcast_pairs(draw):
    """Two shapes that broadcast: each drops some leading dims of one shape and sets some to 1."""
    full = draw(st.lists(st.integers(1, 3), max_size=3))

    def one():
        drop = draw(st.integers(0, len(full)))
        return tuple(1 if draw(st.booleans()) else s for s in full[drop:])

    return one(), one()


BINARY_BY_NAME = {name: (f, da, db) for name, f, da, db in C.BINARY}


@settings(max_examples=40, deadline=None)
@given(broadcast_pairs(), st.sampled_from(sorted(BINARY_BY_NAME)))
def test_broadcasting_binary_ops_match_finite_differences(shapes, name):
    f, da, db = BINARY_BY_NAME[name]
    sa, sb = shapes
    case = C.Case(
        f"{name}{list(sa)}x{list(sb)} (drawn)",
        f,
        (C.Input(sa, da), C.Input(sb, db)),
        frozenset({name}),
    )
    C.check_first(case)
    C.check_hvp(case)
