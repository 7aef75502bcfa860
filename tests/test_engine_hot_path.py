"""The per-op fast paths give exactly what the general paths give (bits, dtype, shape, warnings)."""

import math
import random
import warnings

import numpy as np
import pytest

import adcli.engine as E
from adcli.engine import ops as T
from adcli.engine.autodiff import topological

VALUES = [
    0.0,
    -0.0,
    1.5,
    -3.25,
    0.1,
    1e-300,
    1.0000001e-300,
    -1e-300,
    1e-310,
    2.2250738585072014e-308,
    1e300,
    -1e300,
    1e308,
    -1e308,
    math.inf,
    -math.inf,
    math.nan,
]
OPERATORS = ["__add__", "__sub__", "__mul__", "__truediv__"]


def _numpy(name, array, number):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = getattr(array, name)(number)
    return out, [str(w.message) for w in caught]


@pytest.mark.parametrize("name", OPERATORS)
def test_float64_number_ops_are_numpys_bits(name):
    for x in VALUES:
        for s in VALUES:
            t = E.tensor([x], dtype="float64", requires_grad=True)
            expected, expected_warnings = _numpy(name, t.array, s)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                y = getattr(t, name)(s)
            got = y.array
            assert type(got) is np.ndarray and got.dtype == np.float64 and got.shape == (1,)
            assert got.tobytes() == expected.tobytes(), (x, name, s)
            assert got.base is None and got.flags.writeable and got.flags.c_contiguous
            assert [str(w.message) for w in caught] == expected_warnings, (x, name, s)
            assert y.grad_fn.name() == T.TABLE[
                name.strip("_").replace("truediv", "div")
            ].grad_fn_name(None)
            assert y.grad_fn.in_meta == ((1,), None) and y.grad_fn.out_shape == (1,)


def test_number_ops_keep_other_shapes_and_dtypes():
    for dtype in ("float32", "float64"):
        for shape in ((), (3,), (1, 1)):
            t = E.tensor(np.full(shape, 1.25).tolist(), dtype=dtype, requires_grad=True)
            for name in OPERATORS:
                for s in (0.5, 3, 0.0):
                    expected, _ = _numpy(name, t.array, s)
                    with np.errstate(all="ignore"):
                        got = getattr(t, name)(s).array
                    assert type(got) is type(expected)
                    assert got.dtype == expected.dtype and got.shape == expected.shape
                    assert np.asarray(got).tobytes() == np.asarray(expected).tobytes()


def test_direct_forwards_are_the_forwards():
    x = np.array([0.25, 0.5, 0.75])
    y = np.array([0.5, 0.125, 2.0])
    found = 0
    for entry in T.TABLE.values():
        direct = T.direct_forward(entry)
        if direct is None:
            continue
        found += 1
        args = (x,) if entry.forward.__code__.co_argcount == 2 else (x, y)
        if entry.name == "trace":
            args = (np.outer(x, y),)
        with np.errstate(all="ignore"):
            expected = entry.forward(np, *args)
            got = direct(*args)
        assert np.asarray(got).tobytes() == np.asarray(expected).tobytes(), entry.name
    assert found > 10
    assert T.direct_forward(T.SIN) is np.sin
    assert T.direct_forward(T.ADD) is None  # a + b is not a call of the module


class _Node:
    __slots__ = ("i", "next")

    def __init__(self, i, nxt):
        self.i = i
        self.next = tuple(nxt)


def _reference_order(roots, targets):
    """The walk's order as first written: one (node, iterator) stack entry per visit."""
    visited, post = set(), []
    for root in roots:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(root.next))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child is not None and child not in visited:
                    visited.add(child)
                    stack.append((child, iter(child.next)))
                    break
            else:
                stack.pop()
                post.append(node)
    if targets is None:
        return list(reversed(post))
    needed = set()
    for node in post:
        if node in targets or any(c in needed for c in node.next if c is not None):
            needed.add(node)
    return [n for n in reversed(post) if n in needed]


def test_topological_order_is_unchanged():
    # The order decides in which order gradients are summed, hence their last bits.
    for trial in range(500):
        r = random.Random(trial)
        nodes = []
        for i in range(r.randint(1, 30)):
            nxt = [
                r.choice(nodes) if nodes and r.random() < 0.8 else None
                for _ in range(r.randint(0, 4))
            ]
            nodes.append(_Node(i, nxt))
        roots = [r.choice(nodes) for _ in range(r.randint(1, 3))]
        targets = None if r.random() < 0.5 else set(r.sample(nodes, min(2, len(nodes))))
        order, _ = topological(roots, targets)
        assert [n.i for n in order] == [n.i for n in _reference_order(roots, targets)]
