"""The gradient cases for every op of the engine's table.

Each :class:`Case` is a function of a few float tensors and how to draw its
inputs. The tests in ``test_engine_grads.py`` check, for every case, the first
derivative and a Hessian-vector product of ``L = sum(f(inputs) * w)`` against
central finite differences in float64, and that every differentiable entry of
``adcli.engine.ops.TABLE`` is reached by some case (an op without a gradient
test cannot land).

Functions take their inputs' device into account (constants are made with
:func:`const`), so the CUDA tests can reuse a subset of these cases.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import adcli.engine as E
from adcli.backend import Backend
from adcli.engine.ops import TABLE
from adcli.engine.tensor import Tensor, apply, no_grad

#: A second "device" that is NumPy underneath: lets ``to_device`` be tested on a CPU.
FAKE_DEVICE = Backend("fake:0", np, False, None)


@dataclass(frozen=True)
class Input:
    """How to draw one input: its shape, its domain and its dtype.

    Domains: ``any`` (standard normal), ``pos`` (in [0.5, 2]), ``away0``
    (|x| in [0.3, 1.5], for kinks and poles at zero), ``small`` (in [-1, 1]),
    ``grid`` (multiples of 1/64, exact in float32, for casts), ``unit`` (in
    [-0.8, 0.8]), ``gt1`` (in [1.2, 3]), ``prob`` (in [0.1, 0.9]). The table's
    ``Api.domain`` names one of these per input.
    """

    shape: tuple
    domain: str = "any"
    dtype: str = "float64"


@dataclass(frozen=True)
class Case:
    name: str
    fn: Callable
    inputs: tuple
    #: table ops this case must reach (checked against the recorded graph)
    ops: frozenset
    eps: float = 1e-6
    rtol: float = 1e-6
    atol: float = 1e-7

    def __repr__(self) -> str:
        return self.name


def draw(spec: Input, rng: np.random.Generator) -> np.ndarray:
    shape = spec.shape
    if spec.domain == "any":
        x = rng.standard_normal(shape)
    elif spec.domain == "pos":
        x = rng.uniform(0.5, 2.0, shape)
    elif spec.domain == "away0":
        x = rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 1.5, shape)
    elif spec.domain == "small":
        x = rng.uniform(-1.0, 1.0, shape)
    elif spec.domain == "grid":
        x = rng.integers(-128, 128, shape) / 64.0
    elif spec.domain == "unit":
        x = rng.uniform(-0.8, 0.8, shape)
    elif spec.domain == "gt1":
        x = rng.uniform(1.2, 3.0, shape)
    elif spec.domain == "prob":
        x = rng.uniform(0.1, 0.9, shape)
    else:
        raise ValueError(spec.domain)
    return np.asarray(x, dtype=spec.dtype)


def direction(spec: Input, rng: np.random.Generator) -> np.ndarray:
    """A direction for the Hessian-vector product (exact steps on a grid)."""
    if spec.domain == "grid":
        v = rng.integers(-4, 5, spec.shape) / 4.0
    else:
        v = rng.standard_normal(spec.shape)
    return np.asarray(v, dtype=spec.dtype)


def rng_for(case: Case, salt: str = "") -> np.random.Generator:
    return np.random.default_rng(zlib.crc32((case.name + salt).encode()))


def const(values, like: Tensor) -> Tensor:
    """A constant tensor on ``like``'s device (float64 unless ``values`` is boolean)."""
    array = np.asarray(values)
    if array.dtype != bool:
        array = array.astype(np.float64)
    return Tensor(like.backend.asarray(array), like.backend)


def cond_mask(shape) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(repr(shape).encode()))
    mask = rng.random(shape) > 0.5
    if mask.size >= 2:  # both branches taken
        mask.reshape(-1)[0] = True
        mask.reshape(-1)[1] = False
    return mask


# ----- the cases ---------------------------------------------------------------------------------

CASES: list[Case] = []


def case(name, fn, *inputs, ops, **kw) -> None:
    specs = tuple(i if isinstance(i, Input) else Input(i) for i in inputs)
    CASES.append(Case(name, fn, specs, frozenset(ops), **kw))


UNARY_SHAPES = [(), (3,), (2, 3)]

UNARY = [
    ("exp", E.exp, "any"),
    ("log", E.log, "pos"),
    ("sqrt", E.sqrt, "pos"),
    ("sin", E.sin, "any"),
    ("cos", E.cos, "any"),
    ("tanh", E.tanh, "any"),
    ("sigmoid", E.sigmoid, "any"),
    ("relu", E.relu, "away0"),
    ("abs", E.abs, "away0"),
    ("neg", E.neg, "any"),
    ("clone", E.clone, "any"),
]
for _name, _f, _domain in UNARY:
    for _shape in UNARY_SHAPES:
        case(f"{_name}{list(_shape)}", _f, Input(_shape, _domain), ops={_name})

# sigmoid far out on both sides (its two-branch forward), and operators
case("sigmoid[wide]", lambda x: E.sigmoid(x * 8.0), Input((6,), "any"), ops={"sigmoid", "mul"})
case("-x operator", lambda x: -x, Input((2, 3)), ops={"neg"})
case(
    "x.exp().log() methods", lambda x: x.exp().sqrt().log(), Input((3,)), ops={"exp", "sqrt", "log"}
)

BINARY_SHAPES = [
    ((), ()),
    ((3,), (3,)),
    ((2, 3), (2, 3)),
    ((3, 1), (1, 4)),
    ((4,), (3, 4)),
    ((3, 4), (4,)),
    ((), (2, 3)),
    ((2, 3), ()),
    ((2, 1, 3), (4, 1)),
]

BINARY = [
    ("add", lambda a, b: a + b, "any", "any"),
    ("sub", lambda a, b: a - b, "any", "any"),
    ("mul", lambda a, b: a * b, "any", "any"),
    ("div", lambda a, b: a / b, "any", "away0"),
    ("pow_tensor", lambda a, b: a**b, "pos", "any"),
]
for _name, _f, _da, _db in BINARY:
    for _sa, _sb in BINARY_SHAPES:
        case(f"{_name}{list(_sa)}x{list(_sb)}", _f, Input(_sa, _da), Input(_sb, _db), ops={_name})
# the function forms too
case("add() function", E.add, (2, 3), (3,), ops={"add"})
case("sub() function", E.sub, (2, 3), (3,), ops={"sub"})
case("mul() function", E.mul, (2, 3), (3,), ops={"mul"})
case("div() function", E.div, (2, 3), Input((3,), "away0"), ops={"div"})
case("pow() function", E.pow, Input((3,), "pos"), (3,), ops={"pow_tensor"})

# Python numbers on either side
NUMBER_CASES = [
    ("x + 2", lambda x: x + 2, "any", "add"),
    ("2 + x", lambda x: 2 + x, "any", "add"),
    ("x - 2", lambda x: x - 2, "any", "sub"),
    ("2 - x", lambda x: 2 - x, "any", "sub"),
    ("x * 3", lambda x: x * 3, "any", "mul"),
    ("3 * x", lambda x: 3 * x, "any", "mul"),
    ("x / 3", lambda x: x / 3, "any", "div"),
    ("3 / x", lambda x: 3 / x, "away0", "div"),
    ("x ** 2", lambda x: x**2, "any", "pow"),
    ("x ** 3", lambda x: x**3, "any", "pow"),
    ("x ** 0.5", lambda x: x**0.5, "pos", "pow"),
    ("x ** -1", lambda x: x**-1, "away0", "pow"),
    ("x ** -2.5", lambda x: x**-2.5, "pos", "pow"),
    ("x ** 1", lambda x: x**1, "any", "pow"),
    ("x ** 0", lambda x: x**0, "any", "pow"),
    ("x ** 2.0", lambda x: x**2.0, "any", "pow"),
    ("2 ** x", lambda x: 2**x, "any", "pow_tensor"),
    ("0.5 ** x", lambda x: 0.5**x, "any", "pow_tensor"),
    ("2.5 ** x", lambda x: 2.5**x, "any", "pow_tensor"),
    ("pow(x, 3)", lambda x: E.pow(x, 3), "any", "pow"),
    ("x ** 2 ** 0.5 (right assoc)", lambda x: x**2**0.5, "pos", "pow"),
]
for _name, _f, _domain, _op in NUMBER_CASES:
    for _shape in [(), (2, 3)]:
        case(f"{_name} {list(_shape)}", _f, Input(_shape, _domain), ops={_op})

# where (the condition carries no gradient); maximum/minimum are built on it
for _sc, _sa, _sb in [((3,), (3,), (3,)), ((2, 3), (3,), (2, 1)), ((2, 3), (), (2, 3))]:
    case(
        f"where{list(_sc)}:{list(_sa)},{list(_sb)}",
        lambda a, b, _sc=_sc: E.where(const(cond_mask(_sc), a), a, b),
        _sa,
        _sb,
        ops={"where"},
    )
case(
    "where(c, x, 0.0)",
    lambda a: E.where(const(cond_mask((2, 3)), a), a, 0.0),
    (2, 3),
    ops={"where"},
)
case(
    "where(c, 1.5, x)",
    lambda a: E.where(const(cond_mask((2, 3)), a), 1.5, a),
    (2, 3),
    ops={"where"},
)
case(
    "where(x > 0, x, x*x)",
    lambda a: E.where(a > 0, a, a * a),
    Input((2, 3), "away0"),
    ops={"where", "mul"},
)
for _sa, _sb in [((3,), (3,)), ((3, 1), (1, 4)), ((), (2, 3))]:
    case(f"maximum{list(_sa)}x{list(_sb)}", E.maximum, _sa, _sb, ops={"maximum"})
    case(f"minimum{list(_sa)}x{list(_sb)}", E.minimum, _sa, _sb, ops={"minimum"})
case("maximum(x, 0.3)", lambda a: E.maximum(a, 0.3), Input((2, 3), "away0"), ops={"maximum"})
case("minimum(0.3, x)", lambda a: E.minimum(0.3, a), Input((2, 3), "away0"), ops={"minimum"})

# composites
case("tan", E.tan, Input((2, 3), "small"), ops={"tan"})
case("sqrt(sum(x^2))", lambda x: E.sqrt(E.sum(x**2, dim=0)), (5,), ops={"sqrt", "sum", "pow"})
case(
    "log(x^2 + y^2) + z*x*y mean",
    lambda x, y: E.mean(E.log(x**2 + y**2) + const([0.5, -1.0, 2.0], x) * x * y),
    Input((3,), "away0"),
    Input((3,), "away0"),
    ops={"mean", "log", "pow", "add", "mul"},
)
case("x^2 + xy + y^2", lambda x, y: x**2 + x * y + y**2, (2, 2), (2, 2), ops={"pow", "mul", "add"})
case("softplus-ish", lambda x: E.log(1.0 + E.exp(x)), (4,), ops={"log", "exp", "add"})
case("x * x (same input twice)", lambda x: x * x, (3,), ops={"mul"})
case("x / x.sum()", lambda x: x / x.sum(), Input((4,), "pos"), ops={"div", "sum"})

# reductions
for _dim, _keep in [
    (None, False),
    (None, True),
    (0, False),
    (1, True),
    (-1, False),
    ((0, 2), False),
    ((0, 2), True),
    ((2, 0, 1), False),
    ([1], True),
]:
    case(
        f"sum(dim={_dim}, keepdim={_keep})",
        lambda x, d=_dim, k=_keep: E.sum(x, dim=d, keepdim=k),
        (2, 3, 4),
        ops={"sum"},
    )
    case(
        f"mean(dim={_dim}, keepdim={_keep})",
        lambda x, d=_dim, k=_keep: E.mean(x, dim=d, keepdim=k),
        (2, 3, 4),
        ops={"mean"},
    )
case("sum of 0-d", E.sum, (), ops={"sum"})
case("mean of 0-d", E.mean, (), ops={"mean"})
case("sum(0-d, dim=0)", lambda x: E.sum(x, dim=0), (), ops={"sum"})
case("x.sum(1) method", lambda x: x.sum(1), (2, 3), ops={"sum"})
case("x.mean(0, keepdim) method", lambda x: x.mean(0, keepdim=True), (2, 3), ops={"mean"})
case("sum(x)^2 (nonlinear after a sum)", lambda x: E.sum(x) ** 2, (2, 3), ops={"sum", "pow"})
case(
    "mean(x, 1)*x (broadcast back)",
    lambda x: E.mean(x, 1, keepdim=True) * x,
    (2, 3),
    ops={"mean", "mul"},
)

# sum_to and expand (one undoes the other)
for _src, _dst in [
    ((2, 3, 4), (3, 1)),
    ((2, 3), ()),
    ((2, 3), (1, 3)),
    ((4, 3), (3,)),
    ((3,), (3,)),
]:
    case(
        f"sum_to{list(_src)}->{list(_dst)}",
        lambda x, s=_dst: apply(TABLE["sum_to"], (x,), {"shape": s}) ** 2,
        _src,
        ops={"sum_to"},
    )
for _src, _dst in [((3, 1), (2, 3, 4)), ((), (2, 3)), ((3,), (2, 3)), ((1, 3), (1, 3))]:
    case(
        f"expand{list(_src)}->{list(_dst)}",
        lambda x, s=_dst: E.expand(x, *s) ** 2,
        _src,
        ops={"expand"},
    )

# shapes and layout
for _src, _dst in [
    ((2, 3), (3, 2)),
    ((6,), (2, 3)),
    ((), (1,)),
    ((2, 3), (-1,)),
    ((2, 3, 4), (4, -1)),
    ((1,), ()),
]:
    case(
        f"reshape{list(_src)}->{list(_dst)}",
        lambda x, s=_dst: E.reshape(x, *s) * E.sin(E.reshape(x, *s)),
        _src,
        ops={"reshape"},
    )
case("x.reshape((3, 2)) method", lambda x: x.reshape((3, 2)), (2, 3), ops={"reshape"})
case("permute(2,0,1)", lambda x: E.permute(x, 2, 0, 1) ** 2, (2, 3, 4), ops={"permute"})
case(
    "permute((1,0))",
    lambda x: E.permute(x, (1, 0)) * const([1.0, 2.0], x),
    (2, 3),
    ops={"permute", "mul"},
)
case("transpose(x, 0, 2)", lambda x: E.transpose(x, 0, 2) ** 2, (2, 3, 4), ops={"transpose"})
case("transpose(x, -1, 0)", lambda x: E.transpose(x, -1, 0) ** 2, (2, 3), ops={"transpose"})
case("transpose(x) (t)", lambda x: E.transpose(x) ** 2, (2, 3), ops={"t"})
case("x.T", lambda x: x.T * x.T, (3, 2), ops={"permute"})
case("x.t()", lambda x: x.t() ** 3, (3, 2), ops={"t"})

# indexing
INDEX_KEYS = [
    ("x[1]", (4,), 1),
    ("x[-1]", (4,), -1),
    ("x[1:3]", (4,), slice(1, 3)),
    ("x[::2]", (5,), slice(None, None, 2)),
    ("x[-3:]", (5,), slice(-3, None)),
    ("x[None]", (3,), None),
    ("x[1, :]", (2, 3), (1, slice(None))),
    ("x[:, -1]", (2, 3), (slice(None), -1)),
    ("x[0:2, 1]", (3, 3), (slice(0, 2), 1)),
    ("x[1, 2] (0-d)", (2, 3), (1, 2)),
    ("x[None, :, 1]", (2, 3), (None, slice(None), 1)),
    ("x[..., 1]", (2, 3, 4), (Ellipsis, 1)),
    ("x[1::2, 0:5:2]", (4, 5), (slice(1, None, 2), slice(0, 5, 2))),
]
for _name, _shape, _key in INDEX_KEYS:
    case(_name, lambda x, k=_key: x[k] ** 2, _shape, ops={"index"})
case("x[1][0] * x[1][1] (chained)", lambda x: x[1][0] * x[1][1], (2, 3), ops={"index"})
case("x[0] + x[0] (repeated index)", lambda x: x[0] * x[0] + x[1], (3,), ops={"index"})
case(
    "index_backward",
    lambda g: apply(TABLE["index_backward"], (g,), {"key": (slice(0, 4, 2),), "shape": (5,)}) ** 2,
    (2,),
    ops={"index_backward"},
)
case(
    "index_backward 2d",
    lambda g: apply(TABLE["index_backward"], (g,), {"key": (1, slice(None)), "shape": (2, 3)}) ** 2,
    (3,),
    ops={"index_backward"},
)
case("index under create_graph", lambda x: x[1:3] * x[0], (4,), ops={"index"})

# advanced indexing: gathers (repeats add up in the backward), masks, mixed with slices
_GATHER = np.array([2, 0, 2, -1])
ADVANCED_KEYS = [
    ("x[int64 gather with repeats]", (4,), lambda x: _gather(x, _GATHER)),
    ("x[[1, 1, 0]] (list)", (3, 2), [1, 1, 0]),
    ("x[:, [0, 2, 0]]", (2, 3), (slice(None), [0, 2, 0])),
    ("x[[0, 1], [2, 2]] (paired)", (2, 3), ([0, 1], [2, 2])),
    ("x[[[0, 1], [1, 1]]] (2-d gather)", (2, 3), [[0, 1], [1, 1]]),
    ("x[None, [1, 0], ...]", (2, 2, 3), (None, [1, 0], Ellipsis)),
    ("x[bool mask]", (2, 3), lambda x: x[_mask(x, (2, 3))]),
    ("x[row mask, 1:]", (3, 2), lambda x: x[_mask(x, (3,)), 1:]),
]
for _name, _shape, _key in ADVANCED_KEYS:
    if callable(_key):
        case(_name, lambda x, f=_key: f(x) ** 2, _shape, ops={"index"})
    else:
        case(_name, lambda x, k=_key: x[k] ** 2, _shape, ops={"index"})


def _gather(x, indices):
    return x[Tensor(x.backend.asarray(indices.astype(np.int64)), x.backend)]


def _mask(x, shape):
    return const(cond_mask(shape), x)


case(
    "index_put(x, [1, 3], v)",
    lambda x, v: E.index_put(x, ([1, 3],), v) ** 2,
    (4,),
    (2,),
    ops={"index_put"},
)
case(
    "index_put(x, mask, v) broadcast v",
    lambda x, v: E.index_put(x, (slice(None), _mask(x, (3,))), v) ** 2,
    (2, 3),
    (1,),
    ops={"index_put"},
)
case(
    "index_zero",
    lambda g: apply(TABLE["index_zero"], (g,), {"key": (slice(None), 1)}) ** 2,
    (2, 3),
    ops={"index_zero"},
)
case(
    "index_put(x, [0, 0, 2], v, accumulate)",
    lambda x, v: E.index_put(x, ([0, 0, 2],), v, accumulate=True) ** 2,
    (3, 2),
    (3, 2),
    ops={"index_put"},
)
case(
    "index_put(x, 1, v) (a row)",
    lambda x, v: E.index_put(x, 1, v) * x,
    (2, 3),
    (3,),
    ops={"index_put"},
)

# linear algebra
case("mm[2,3]@[3,4]", E.mm, (2, 3), (3, 4), ops={"mm"})
case("mm[1,2]@[2,2]", E.mm, (1, 2), (2, 2), ops={"mm"})
case("mm(x, x.T)", lambda x: E.mm(x, x.T), (2, 3), ops={"mm", "permute"})
case("dot", E.dot, (3,), (3,), ops={"dot"})
case("dot(x, x)", lambda x: E.dot(x, x), (4,), ops={"dot"})
case("mv [2,3]@[3]", E.matmul, (2, 3), (3,), ops={"mv"})
case("vm [3]@[3,4]", E.matmul, (3,), (3, 4), ops={"vm"})
case("bmm [2,3,4]@[2,4,5]", E.matmul, (2, 3, 4), (2, 4, 5), ops={"bmm"})
case("bmm broadcast [2,1,3,4]@[3,4,2]", E.matmul, (2, 1, 3, 4), (3, 4, 2), ops={"bmm"})
case("bmm [3,4]@[2,4,5]", E.matmul, (3, 4), (2, 4, 5), ops={"bmm"})
case("bmm [2,3,4]@[4,2]", E.matmul, (2, 3, 4), (4, 2), ops={"bmm"})
case("bmm [4]@[2,4,3]", E.matmul, (4,), (2, 4, 3), ops={"bmm", "reshape"})
case("bmm [2,3,4]@[4]", E.matmul, (2, 3, 4), (4,), ops={"bmm", "reshape"})
case("bmm [1,3,4]@[2,4,2]", E.matmul, (1, 3, 4), (2, 4, 2), ops={"bmm"})
case("a @ b operator (mm)", lambda a, b: a @ b, (2, 3), (3, 2), ops={"mm"})
case("matmul dot", E.matmul, (3,), (3,), ops={"dot"})
case("matmul mm", E.matmul, (2, 3), (3, 2), ops={"mm"})
case("tanh(W@x)", lambda w, x: E.tanh(w @ x), (3, 2), (2,), ops={"mv", "tanh"})


def _conditioned(x, shift=3.0):
    """``x`` plus ``shift`` on the diagonal of each matrix: far from singular."""
    return x + const(shift * np.eye(x.shape[-1]), x)


EINSUM_CASES = [
    ("ij,jk->ik", (2, 3), (3, 4)),
    ("ij,jk", (2, 3), (3, 2)),
    ("ii->", (3, 3)),
    ("ii->i", (3, 3)),
    ("ij->", (2, 3)),
    ("ij->j", (2, 3)),
    ("i,i->", (3,), (3,)),
    ("i,j->ij", (2,), (3,)),
    ("bij,bjk->bik", (2, 2, 3), (2, 3, 2)),
    ("...ij,...jk->...ik", (2, 2, 3), (3, 2)),
    ("...i,i", (2, 3), (3,)),
    ("ij,ij,ij->i", (2, 3), (2, 3), (2, 3)),
    ("iji->j", (2, 3, 2)),
    ("ij,kj->ikj", (1, 3), (2, 3)),
]
for _eq, *_shapes in EINSUM_CASES:
    case(f"einsum {_eq}", lambda *xs, e=_eq: E.einsum(e, *xs), *_shapes, ops={"einsum"})
case("einsum(ij,ij) of (x, x)", lambda x: E.einsum("ij,ij->", x, x) * x, (2, 2), ops={"einsum"})
case("tensordot dims=1", lambda a, b: E.tensordot(a, b, 1), (2, 3), (3, 4), ops={"tensordot"})
case("tensordot dims=0", lambda a, b: E.tensordot(a, b, 0), (2,), (3,), ops={"tensordot"})
case(
    "tensordot dims=([1, 0], [0, 2])",
    lambda a, b: E.tensordot(a, b, ([1, 0], [0, 2])),
    (3, 2),
    (2, 4, 3),
    ops={"tensordot"},
)
case("det 2x2", E.det, (2, 2), ops={"det"})
case("det 3x3", lambda x: E.det(_conditioned(x)), (3, 3), ops={"det"})
case("det batched", lambda x: E.det(_conditioned(x)), (2, 3, 3), ops={"det"})
case("det 1x1", E.det, (1, 1), ops={"det"})
case("inverse 3x3", lambda x: E.inverse(_conditioned(x)), (3, 3), ops={"inverse"})
case("inverse batched", lambda x: E.inverse(_conditioned(x)), (2, 2, 2), ops={"inverse"})
case(
    "solve(A, b) vector",
    lambda a, b: E.solve(_conditioned(a), b),
    (3, 3),
    (3,),
    ops={"solve"},
)
case(
    "solve(A, B) matrix",
    lambda a, b: E.solve(_conditioned(a), b),
    (3, 3),
    (3, 2),
    ops={"solve"},
)
case(
    "solve batched A, broadcast B",
    lambda a, b: E.solve(_conditioned(a), b),
    (2, 2, 2),
    (2, 3),
    ops={"solve"},
)
case(
    "solve batched A, batch of vectors b",
    lambda a, b: E.solve(_conditioned(a), b),
    (2, 3, 3),
    (2, 3),
    ops={"solve"},
)
case(
    "solve batched A, one vector b",
    lambda a, b: E.solve(_conditioned(a), b),
    (2, 2, 2),
    (2,),
    ops={"solve"},
)
case("solve(A, A) (both depend on x)", lambda a: E.solve(_conditioned(a), a), (2, 2), ops={"solve"})

# copies, types and devices
case(
    "cast f64->f32",
    lambda x: E.cast(x, "float32"),
    Input((2, 3), "grid"),
    ops={"cast"},
    eps=2.0**-12,
)
case(
    "cast f64->f32->f64 squared",
    lambda x: E.cast(E.cast(x, "float32"), "float64") ** 2,
    Input((2, 3), "grid"),
    ops={"cast", "pow"},
    eps=2.0**-12,
)
# (a float32 leaf's gradient is float32: squares keep it exact, so differences stay exact)
case(
    "cast f32->f64 (f32 leaf)",
    lambda x: E.cast(x, "float64") ** 2,
    Input((3,), "grid", "float32"),
    ops={"cast", "pow"},
    eps=2.0**-12,
)
case(
    "f32 leaf * f64 (promotes)",
    lambda x, y: x * y,
    Input((3,), "grid", "float32"),
    Input((3,), "grid"),
    ops={"mul"},
    eps=2.0**-12,
)
case(
    "to(fake device) and back",
    lambda x: E.to(E.sin(E.to(x, FAKE_DEVICE)) * 2.0, "cpu"),
    (2, 3),
    ops={"to_device", "sin"},
)
case("clone then in-place-free use", lambda x: E.clone(x) * x, (3,), ops={"clone", "mul"})


# ----- generated from the table: every elementwise public op, at every shape ------------------
#: elementwise public ops whose cases are written by hand below (they need arguments)
HAND_WRITTEN = frozenset({"clamp", "where"})
GENERATED_BINARY_SHAPES = [
    ((), ()),
    ((3,), (3,)),
    ((2, 3), (2, 3)),
    ((3, 1), (1, 4)),
    ((4,), (2, 4)),
]


def _generated_cases():
    for name, public in sorted(E.PUBLIC.items()):
        spec = public.api
        if spec.group != "elementwise" or name in HAND_WRITTEN or not spec.function:
            continue
        if public.op is not None and not public.op.differentiable:
            continue
        n = sum(1 for p in spec.params if p.kind in ("tensor", "operand"))
        domains = spec.domain or ("any",) * n
        claims = {public.op.name} if public.op is not None else set()
        shapes = [(s,) for s in UNARY_SHAPES] if n == 1 else GENERATED_BINARY_SHAPES
        for shape in shapes:
            inputs = [Input(s, d) for s, d in zip(shape, domains)]
            label = "x".join(str(list(s)) for s in shape)
            case(f"{name}{label} [table]", public.fn, *inputs, ops=claims)


_generated_cases()

# elementwise ops with arguments, and methods
case("clamp(x, -0.5, 0.5)", lambda x: E.clamp(x, -0.5, 0.5), (3, 4), ops={"clamp"})
case("clamp(x, min=0.1)", lambda x: E.clamp(x, min=0.1), (2, 3), ops={"clamp"})
case("x.clamp(max=0.2)", lambda x: x.clamp(max=0.2), (2, 3), ops={"clamp"})
case(
    "leaky_relu(x, 0.2)", lambda x: E.leaky_relu(x, 0.2), Input((2, 3), "away0"), ops={"leaky_relu"}
)
case(
    "softplus(x, beta=2, threshold=1)",
    lambda x: E.softplus(x * 2.0, beta=2.0, threshold=1.0),
    Input((3, 4), "away0"),
    ops={"softplus"},
)
case("gelu(x, approximate=tanh)", lambda x: E.gelu(x, approximate="tanh"), (2, 3), ops={"gelu"})
case("round(x, decimals=1)", lambda x: E.round(x * 3.0, decimals=1), (4,), ops={"round"})
case("x.atan().asinh() methods", lambda x: x.atan().asinh().square(), (3,), ops={"atan", "asinh"})
case("atan2(x, 2.0)", lambda x: E.atan2(x, 2.0), (3,), ops={"atan2"})
case("maximum(x, x) ties split", lambda x: E.maximum(x, x * 1.0), (3,), ops={"maximum"})

# reductions
R3 = (2, 3, 4)
REDUCTION_ROWS = [
    ("max(x)", lambda x: E.max(x), (3, 4), "any", {"max"}),
    ("min(x)", lambda x: E.min(x), (3, 4), "any", {"min"}),
    ("max(x, dim=1)[0]", lambda x: E.max(x, dim=1)[0], R3, "any", {"max_dim"}),
    ("min(x, 0, keepdim)[0]", lambda x: E.min(x, 0, keepdim=True)[0], R3, "any", {"min_dim"}),
    ("x.max(dim=-1)[0]", lambda x: x.max(dim=-1)[0], (3, 4), "any", {"max_dim"}),
    ("amax(x)", lambda x: E.amax(x), (3, 4), "any", {"amax"}),
    ("amax(x, (0, 2))", lambda x: E.amax(x, (0, 2)), R3, "any", {"amax"}),
    ("amin(x, 1, keepdim)", lambda x: E.amin(x, 1, keepdim=True), R3, "any", {"amin"}),
    ("prod(x)", lambda x: E.prod(x), (3, 4), "pos", {"prod"}),
    ("prod(x, 1)", lambda x: E.prod(x, 1), R3, "away0", {"prod"}),
    ("x.prod(0, keepdim)", lambda x: x.prod(0, keepdim=True), (3, 4), "pos", {"prod"}),
    ("var(x)", lambda x: E.var(x), (3, 4), "any", {"var"}),
    ("var(x, 1)", lambda x: E.var(x, 1), R3, "any", {"var"}),
    (
        "var(x, (0, 2), correction=0, keepdim)",
        lambda x: E.var(x, (0, 2), correction=0, keepdim=True),
        R3,
        "any",
        {"var"},
    ),
    ("std(x)", lambda x: E.std(x), (3, 4), "any", {"std"}),
    ("x.std(0, correction=0)", lambda x: x.std(0, correction=0), (3, 4), "any", {"std"}),
    ("norm(x)", lambda x: E.norm(x), (3, 4), "any", {"norm"}),
    ("norm(x, dim=1)", lambda x: E.norm(x, dim=1), R3, "any", {"norm"}),
    ("norm(x, p=1)", lambda x: E.norm(x, p=1), (3, 4), "away0", {"norm"}),
    ("norm(x, p=3, dim=0, keepdim)", lambda x: E.norm(x, 3, 0, True), (3, 4), "away0", {"norm"}),
    ("norm(x, p=inf)", lambda x: E.norm(x, p=float("inf")), (3, 4), "any", {"norm"}),
    ("logsumexp(x, 1)", lambda x: E.logsumexp(x, 1), R3, "any", {"logsumexp"}),
    (
        "logsumexp(x, (0, 1), keepdim)",
        lambda x: E.logsumexp(x, (0, 1), True),
        R3,
        "any",
        {"logsumexp"},
    ),
    ("softmax(x, 1)", lambda x: E.softmax(x, 1), (3, 4), "any", {"softmax"}),
    ("softmax(x, 0) 1-d", lambda x: E.softmax(x, 0), (5,), "any", {"softmax"}),
    ("log_softmax(x, -1)", lambda x: E.log_softmax(x, -1), R3, "any", {"log_softmax"}),
    ("cumsum(x, 1)", lambda x: E.cumsum(x, 1), R3, "any", {"cumsum"}),
    ("x.cumsum(0)", lambda x: x.cumsum(0), (4,), "any", {"cumsum"}),
    ("cumprod(x, 0)", lambda x: E.cumprod(x, 0), (4, 3), "pos", {"cumprod"}),
    ("cumprod(x, 1)", lambda x: E.cumprod(x, 1), (2, 4), "away0", {"cumprod"}),
]
SHAPE_ROWS = [
    ("squeeze(x)", lambda x: E.squeeze(x) ** 2, (1, 3, 1), "any", {"squeeze"}),
    ("squeeze(x, 0)", lambda x: E.squeeze(x, 0) * E.sin(x[0]), (1, 3), "any", {"squeeze"}),
    (
        "x.unsqueeze(1)",
        lambda x: x.unsqueeze(1) * const([[1.0], [2.0], [3.0]], x),
        (3,),
        "any",
        {"unsqueeze"},
    ),
    ("unsqueeze(x, -1)", lambda x: E.unsqueeze(x, -1) ** 3, (2, 3), "any", {"unsqueeze"}),
    ("flatten(x)", lambda x: E.flatten(x) ** 2, R3, "any", {"reshape"}),
    ("flatten(x, 1)", lambda x: E.flatten(x, 1) ** 2, R3, "any", {"reshape"}),
    ("x.view(6, -1)", lambda x: x.view(6, -1) ** 2, R3, "any", {"reshape"}),
    ("flip(x, (0, 1))", lambda x: E.flip(x, (0, 1)) ** 2, (2, 3), "any", {"flip"}),
    ("fliplr(x)", lambda x: E.fliplr(x) * x, (2, 3), "any", {"flip"}),
    ("flipud(x)", lambda x: E.flipud(x) * x, (3, 2), "any", {"flip"}),
    ("rot90(x)", lambda x: E.rot90(x) ** 2, (2, 3), "any", {"flip"}),
    ("rot90(x, 2)", lambda x: E.rot90(x, 2) * x, (3, 3), "any", {"flip"}),
    ("rot90(x, -1)", lambda x: E.rot90(x, -1) ** 2, (2, 3), "any", {"flip"}),
    ("roll(x, 1, 0)", lambda x: E.roll(x, 1, 0) * x, (3, 2), "any", {"roll"}),
    ("roll(x, (1, 2), (0, 1))", lambda x: E.roll(x, (1, 2), (0, 1)) * x, (3, 4), "any", {"roll"}),
    ("roll(x, 2) flat", lambda x: E.roll(x, 2) * x, (2, 3), "any", {"roll"}),
    ("repeat(x, 2, 1, 3)", lambda x: E.repeat(x, 2, 1, 3) ** 2, (3, 4), "any", {"repeat"}),
    ("x.repeat(2)", lambda x: x.repeat(2) ** 2, (3,), "any", {"repeat"}),
    ("tile(x, (2,))", lambda x: E.tile(x, (2,)) ** 2, (2, 3), "any", {"repeat"}),
    ("broadcast_to(x, (2, 3))", lambda x: E.broadcast_to(x, (2, 3)) ** 2, (3,), "any", {"expand"}),
    ("diag(v)", lambda x: E.diag(x) ** 2, (3,), "any", {"diag_embed"}),
    ("diag(v, 1)", lambda x: E.diag(x, 1) * 2.0, (3,), "any", {"diag_embed"}),
    ("diag(m)", lambda x: E.diag(x) ** 2, (3, 3), "any", {"diagonal"}),
    ("diag(m, -1)", lambda x: E.diag(x, -1) ** 2, (3, 4), "any", {"diagonal"}),
    ("diagonal(x, 0, 1, 2)", lambda x: E.diagonal(x, 0, 1, 2) ** 2, (2, 3, 3), "any", {"diagonal"}),
    ("trace(m)", lambda x: E.trace(x) ** 2, (3, 4), "any", {"trace"}),
    ("x.trace()", lambda x: x.trace() * x[0, 0], (3, 3), "any", {"trace"}),
    ("tril(m)", lambda x: E.tril(x) ** 2, (3, 4), "any", {"tril"}),
    ("triu(m, 1)", lambda x: E.triu(x, 1) ** 2, (3, 4), "any", {"triu"}),
    ("tril(batch, -1)", lambda x: E.tril(x, -1) ** 2, (2, 3, 3), "any", {"tril"}),
    ("outer(u, u)", lambda x: E.outer(x, x), (3,), "any", {"mul"}),
    (
        "split(x, 2, 1) pieces",
        lambda x: E.split(x, 2, 1)[0] * E.split(x, 2, 1)[1][:, :1],
        (2, 3),
        "any",
        {"split"},
    ),
    ("chunk(x, 2)[1]", lambda x: E.chunk(x, 2)[1] ** 2, (5, 2), "any", {"split"}),
    ("split(x, [1, 3])[1]", lambda x: E.split(x, [1, 3])[1] ** 2, (4,), "any", {"split"}),
]
# the same at 0-d (a scalar tensor is its own reduction)
SCALAR_ROWS = [
    ("max(0-d)", E.max, (), "any", {"max"}),
    ("amax(0-d)", E.amax, (), "any", {"amax"}),
    ("prod(0-d)", E.prod, (), "pos", {"prod"}),
    ("norm(0-d)", E.norm, (), "away0", {"norm"}),
    ("logsumexp(0-d, 0)", lambda x: E.logsumexp(x, 0), (), "any", {"logsumexp"}),
    ("cumsum(0-d, 0)", lambda x: E.cumsum(x, 0) ** 2, (), "any", {"cumsum"}),
    ("max(0-d, dim=0)[0]", lambda x: E.max(x, 0)[0] ** 2, (), "any", {"clone"}),
    ("squeeze(0-d)", lambda x: E.squeeze(x) ** 2, (), "any", {"squeeze"}),
    ("unsqueeze(0-d, 0)", lambda x: E.unsqueeze(x, 0) ** 2, (), "any", {"unsqueeze"}),
    ("stack 0-d", lambda x: E.stack([x, x * 2.0]) ** 2, (), "any", {"stack"}),
]
for _name, _f, _shape, _domain, _ops in REDUCTION_ROWS + SHAPE_ROWS + SCALAR_ROWS:
    case(_name, _f, Input(_shape, _domain), ops=_ops)

case("cat([x, y], 1)", lambda x, y: E.cat([x, y], 1), (2, 3), (2, 2), ops={"cat"})
case("cat([x, y, x])", lambda x, y: E.cat([x, y, x]) ** 2, (2, 3), (1, 3), ops={"cat"})
case("stack([x, y], 1)", lambda x, y: E.stack([x, y], 1) ** 2, (2, 3), (2, 3), ops={"stack"})
case("stack([x, y, x])", lambda x, y: E.stack((x, y, x)) * 2.0, (3,), (3,), ops={"stack"})
case("outer(u, v)", E.outer, (3,), (4,), ops={"mul"})
case(
    "diagonal_backward",
    lambda g: apply(TABLE["diagonal_backward"], (g,), {"shape": (3, 4), "offset": 1}) ** 2,
    (3,),
    ops={"diagonal_backward"},
)

# losses
TARGETS = [0.0, 2.0, 1.0]
LOSS_ROWS = [
    ("mse_loss", lambda x, y: E.mse_loss(x, y), (3, 4), (3, 4), "any", "any", {"mse_loss"}),
    (
        "mse_loss sum",
        lambda x, y: E.mse_loss(x, y, reduction="sum"),
        (3,),
        (3,),
        "any",
        "any",
        {"mse_loss"},
    ),
    (
        "mse_loss none bcast",
        lambda x, y: E.mse_loss(x, y, "none"),
        (3, 4),
        (4,),
        "any",
        "any",
        {"mse_loss"},
    ),
    ("l1_loss", lambda x, y: E.l1_loss(x, y), (3, 4), (3, 4), "any", "any", {"abs", "mean"}),
    (
        "binary_cross_entropy",
        E.binary_cross_entropy,
        (3, 2),
        (3, 2),
        "prob",
        "prob",
        {"binary_cross_entropy"},
    ),
    (
        "binary_cross_entropy none",
        lambda x, y: E.binary_cross_entropy(x, y, reduction="none"),
        (4,),
        (4,),
        "prob",
        "prob",
        {"binary_cross_entropy"},
    ),
    (
        "bce_with_logits",
        E.binary_cross_entropy_with_logits,
        (3, 2),
        (3, 2),
        "any",
        "prob",
        {"binary_cross_entropy_with_logits"},
    ),
    (
        "bce_with_logits sum",
        lambda x, y: E.binary_cross_entropy_with_logits(x, y, reduction="sum"),
        (4,),
        (4,),
        "any",
        "prob",
        {"binary_cross_entropy_with_logits"},
    ),
]
for _name, _f, _sa, _sb, _da, _db, _ops in LOSS_ROWS:
    case(_name, _f, Input(_sa, _da), Input(_sb, _db), ops=_ops)
case("nll_loss", lambda x: E.nll_loss(x, const(TARGETS, x)), (3, 4), ops={"nll_loss"})
case(
    "nll_loss sum, ignore_index",
    lambda x: E.nll_loss(x, const([0.0, -100.0, 3.0], x), reduction="sum"),
    (3, 4),
    ops={"nll_loss"},
)
case(
    "nll_loss none",
    lambda x: E.nll_loss(x, const(TARGETS, x), reduction="none") ** 2,
    (3, 4),
    ops={"nll_loss"},
)
case(
    "cross_entropy",
    lambda x: E.cross_entropy(x, const(TARGETS, x)),
    (3, 4),
    ops={"log_softmax", "nll_loss"},
)
case("cross_entropy 1-d", lambda x: E.cross_entropy(x, const(2.0, x)), (4,), ops={"nll_loss"})
case(
    "cross_entropy probabilities",
    lambda x, p: E.cross_entropy(x, E.softmax(p, 1)),
    (3, 4),
    (3, 4),
    ops={"log_softmax", "softmax"},
)
case(
    "nll_loss_backward",
    lambda g: apply(TABLE["nll_loss_backward"], (g, const(TARGETS, g)), {"shape": (3, 4)}) ** 2,
    (),
    ops={"nll_loss_backward"},
)


def table_ops_in_graph(t: Tensor) -> set:
    """The names of the table ops recorded in ``t``'s graph."""
    seen = set()
    names = set()
    stack = [t.grad_fn] if t.grad_fn is not None else []
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        op = getattr(node, "op", None)
        if op is not None:
            names.add(op.name)
        stack.extend(node.next)
    return names


def differentiable_table_ops() -> set:
    return {name for name, entry in TABLE.items() if entry.differentiable}


# ----- the checks (shared with the CUDA tests) ---------------------------------------------------


def make_inputs(case, arrays, device="cpu", requires_grad=True):
    return [
        E.tensor(a, dtype=str(a.dtype), device=device, requires_grad=requires_grad) for a in arrays
    ]


def draw_inputs(case):
    rng = rng_for(case)
    return [draw(spec, rng) for spec in case.inputs]


def weight_for(case, out_shape):
    rng = rng_for(case, "w")
    if any(spec.domain == "grid" for spec in case.inputs):
        # exact in float32 too, so float32 gradients carry no rounding into the differences
        return rng.integers(-4, 5, out_shape) / 4.0
    return rng.standard_normal(out_shape)


def loss(case, xs, w):
    out = case.fn(*xs)
    return E.sum(out * const(w, out))


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
    rng = rng_for(case, "v")
    vs = [direction(spec, rng) for spec in case.inputs]
    xs = make_inputs(case, arrays, device)
    gs = E.grad(loss(case, xs, w), xs, create_graph=True)
    s = None
    for g, v in zip(gs, vs):
        term = E.sum(g * const(v, g))
        s = term if s is None else s + term
    # A gradient that does not require grad (a linear op's) has no graph: its
    # derivative is zero, and grad() of it is PyTorch's error, so it is not asked.
    hvs = E.grad(s, xs) if s.requires_grad else [E.zeros_like(x) for x in xs]
    eps = case.eps
    plus = first_grads(case, [a + eps * v for a, v in zip(arrays, vs)], w)
    minus = first_grads(case, [a - eps * v for a, v in zip(arrays, vs)], w)
    for x, hv, gp, gm in zip(xs, hvs, plus, minus):
        assert hv.shape == x.shape
        fd = (gp.astype(np.float64) - gm.astype(np.float64)) / (2 * eps)
        np.testing.assert_allclose(hv.numpy(), fd, rtol=max(case.rtol, 1e-5), atol=1e-6)


# remainder (x % y, torch.remainder) away from its jumps, and index assignment (CopySlices)
case("x % 0.75", lambda a: a % 0.75, Input((2, 3), "pos"), ops={"remainder"})
case("x % y", lambda a, b: a % b, Input((3,), "pos"), Input((3,), "pos"), ops={"remainder"})


def _set_row(a, b):
    y = a * 1.0
    E.index_put_(y, 0, b)
    return y


def _set_slice(a, b):
    y = a * 1.0
    E.index_put_(y, (slice(None), 1), b * b)
    return y


case("y = x*1; y[0] = v", _set_row, (2, 3), (3,), ops={"copy_slices", "mul"})
case("y = x*1; y[:, 1] = v*v", _set_slice, (2, 3), (2,), ops={"copy_slices", "mul"})
case("y = x*1; y[1] = 2.5 (a number)", lambda a: _set_row(a, 2.5), (2, 3), ops={"copy_slices"})
