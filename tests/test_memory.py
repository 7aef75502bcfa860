"""Memory does not grow with repetitions (issue 10, item 5).

A leaf holds its AccumulateGrad weakly, as in PyTorch, so reference counting
alone frees a big leaf the moment nothing reaches it. Measured with
tracemalloc (NumPy reports its buffers to it), never with a clock.
"""

from __future__ import annotations

import contextlib
import gc
import tracemalloc
import weakref

import numpy as np
import pytest

from adcli import engine as E
from adcli.errors import AdcliError
from adcli.lang.interpreter import Session

PROGRAM = "seed(0); x = randn(1000000, requires_grad=true); y = sqrt(sum(x^2)); y.backward()\n"


def peak_of(repetitions: int) -> int:
    s = Session()
    s.run(PROGRAM)  # warm: first-use allocations are not what is measured
    tracemalloc.start()
    try:
        for _ in range(repetitions):
            s.run(PROGRAM)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def collector_off():
    """The cyclic collector off: only reference counting may free anything."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    yield
    if was:
        gc.enable()


def test_twenty_repetitions_peak_as_five_do(collector_off):
    five, twenty = peak_of(5), peak_of(20)
    assert five > 8_000_000  # the leaf and its gradient (4 MB each) were measured
    assert twenty <= 1.15 * five, (five, twenty)


def test_twenty_repetitions_peak_as_five_do_with_the_collectors_defaults():
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        five, twenty = peak_of(5), peak_of(20)
    finally:
        gc.set_threshold(*saved)
    assert twenty <= 1.15 * five, (five, twenty)


def test_a_leaf_used_in_a_graph_is_freed_by_refcounting(collector_off):
    x = E.randn(1000, requires_grad=True)
    y = E.sum(E.mul(x, x))
    y.backward()
    gone = weakref.ref(x)
    node = weakref.ref(y.grad_fn.next[0].next[0])  # x's AccumulateGrad
    del x, y
    assert gone() is None and node() is None


def test_a_retained_non_leaf_is_freed_by_refcounting(collector_off):
    x = E.randn(10, requires_grad=True)
    h = E.mul(x, 2.0)
    h.retain_grad()
    E.sum(h).backward()
    assert h.grad is not None
    gone = weakref.ref(h)
    del h
    assert gone() is None


def test_the_accumulator_is_shared_while_a_graph_holds_it():
    x = E.randn(3, requires_grad=True)
    a, b = E.mul(x, 2.0), E.mul(x, 3.0)
    assert a.grad_fn.next[0] is b.grad_fn.next[0]
    E.sum(E.add(a, b)).backward()
    assert x.grad.numpy().tolist() == [5.0, 5.0, 5.0]


def test_a_session_rebinding_a_big_leaf_holds_one(collector_off):
    s = Session()
    s.run("x = randn(100000, requires_grad=true); sum(x^2).backward()")
    first = weakref.ref(s.lookup("x"))
    s.run("x = randn(100000, requires_grad=true); sum(x^2).backward()")
    assert first() is None


HOLDERS = (E.Tensor, E.Node, E.AccumulateGrad, Session, np.ndarray)

NO_CYCLE_PROGRAMS = [
    "x = randn(100, requires_grad=true); y = sum(x^2); y.backward(); y.backward()",
    "x = randn(100, requires_grad=true); g = grad(sum(sin(x)), x); grad(g, x)",
    "x = randn(100, requires_grad=true)\ng = grad(sum(sin(x)), x, create_graph=true)\ngrad(sum(g), x)",
    "x = randn(5, requires_grad=true); f(v) = sum(v^3); hessian(f, x)",
    "x = randn(5, requires_grad=true); f(v) = sum(v^3); gradcheck(f, x)",
    "x = randn(5, requires_grad=true); f(v) = v * 2; jacobian(f, x)",
    "x = randn(5, requires_grad=true); y = x * 2; y.retain_grad(); sum(y).backward(); y.grad",
    "x = randn(5, requires_grad=true); grad(sum(x^5), x, order=4)",
    "x = randn(5, requires_grad=true); grad(sum(x^5), x, order=2)",
    "x = randn(5); assert sum(x) > 1e9",
]


@pytest.mark.parametrize("program", NO_CYCLE_PROGRAMS)
def test_a_session_leaves_no_cyclic_garbage(program, collector_off):
    """Whatever a program did (errors included), reference counting frees it all.

    (Not covered: ``backward(create_graph=true)`` makes ``x.grad`` part of a graph
    that leads back to ``x``, a cycle PyTorch has too and warns about.)
    """
    s = Session()
    with contextlib.suppress(AdcliError):  # errors are part of what is checked
        s.run(program, "<test>", emit=lambda output: None)
    del s
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        # Only what holds arrays counts (pytest may leave cycles of its own).
        found = [type(o).__name__ for o in gc.garbage if isinstance(o, HOLDERS)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert found == [], found
