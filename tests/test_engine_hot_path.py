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
    __slots__ = ("i", "next", "seq")

    def __init__(self, i, nxt):
        self.i = self.seq = i
        self.next = tuple(nxt)


def _reference_order(roots, targets):
    """What PyTorch's engine runs: every node reachable from the roots, the newest
    first (a node is newer than its inputs); with targets, those on a path to one."""
    reached, pending = set(), [r for r in roots if r is not None]
    while pending:
        node = pending.pop()
        if node not in reached:
            reached.add(node)
            pending.extend(c for c in node.next if c is not None)
    order = sorted(reached, key=lambda n: -n.seq)
    if targets is None:
        return order
    needed = set()
    for node in reversed(order):
        if node in targets or any(c in needed for c in node.next if c is not None):
            needed.add(node)
    return [n for n in order if n in needed]


def test_topological_order_is_pytorchs():
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


def _float32_graph(r: random.Random):
    """A random graph of float32 ops on (1,) leaves of mixed magnitudes, where the
    order gradients are summed in shows in their last bits: its leaves, its ops
    ``(kind, a, b, constant)`` on earlier values, and the values its loss sums."""
    leaves = [r.choice([1e-3, 0.1, 1.0, 3.0, 1e3, 1e4]) * r.uniform(0.5, 2) for _ in range(3)]
    ops = []
    for count in range(3, 3 + r.randint(3, 25)):
        ops.append(
            (r.choice("+*c-"), r.randrange(count), r.randrange(count), r.choice([1e-4, 0.3, 1e4]))
        )
    return leaves, ops, r.sample(range(3, 3 + len(ops)), min(4, len(ops)))


def _sums_in_pytorchs_order(leaves, ops, outs):
    """The leaves' gradients as PyTorch's engine sums them, worked out with NumPy on
    float32: the ops run backward newest first, each adding its inputs' parts to
    what they have, in the order of its inputs."""
    f32 = np.float32
    values = [f32(v) for v in leaves]
    graph = []  # (kind, inputs, constant), in the order made
    for kind, a, b, c in ops:
        x, y = values[a], values[b]
        values.append(
            x + y if kind == "+" else x * y if kind == "*" else x * f32(c) if kind == "c" else x - y
        )
        graph.append((kind, (a, b) if kind != "c" else (a,), c))
    total = outs[0]
    for o in outs[1:]:  # the loss: a chain of additions, made last
        graph.append(("+", (total, o), None))
        values.append(values[total] + values[o])
        total = len(values) - 1
    held = {total: f32(1.0)}
    for k in range(len(graph) - 1, -1, -1):
        g = held.pop(len(leaves) + k, None)
        if g is None:
            continue
        kind, inputs, c = graph[k]
        if kind == "+":
            parts = [g, g]
        elif kind == "-":
            parts = [g, -g]
        elif kind == "*":
            parts = [g * values[inputs[1]], g * values[inputs[0]]]
        else:
            parts = [g * f32(c)]
        for i, part in zip(inputs, parts):
            held[i] = part if i not in held else held[i] + part
    return [held.get(i) for i in range(len(leaves))]


def test_gradients_are_summed_in_pytorchs_order():
    # Checked against PyTorch 2.13 itself on 300 such graphs: the same bits in all.
    for trial in range(200):
        leaves, ops, outs = _float32_graph(random.Random(trial))
        tensors = [E.tensor([v], dtype="float32", requires_grad=True) for v in leaves]
        values = list(tensors)
        for kind, a, b, c in ops:
            x, y = values[a], values[b]
            values.append(
                x + y if kind == "+" else x * y if kind == "*" else x * c if kind == "c" else x - y
            )
        loss = values[outs[0]]
        for o in outs[1:]:
            loss = loss + values[o]
        with np.errstate(all="ignore"):
            loss.backward()
            expected = _sums_in_pytorchs_order(leaves, ops, outs)
        got = [None if t.grad is None else t.grad._data[0] for t in tensors]
        assert [None if v is None else v.tobytes() for v in got] == [
            None if v is None else np.float32(v).tobytes() for v in expected
        ], trial
