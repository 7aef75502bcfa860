"""THE TABLE: every primitive op, its forward and its derivative rules, side by side.

An entry is an :class:`OpDef`. What is in scope for its parts:

``forward(xp, *inputs, **params)``
    computes the result on raw arrays of the array module ``xp`` (NumPy or
    CuPy). Inputs are arrays or Python numbers.

``vjps``: one rule per input, ``rule(F, g, out, *inputs, **params)``
    returns the gradient for that input given ``g``, the gradient of the
    result. ``F`` is a namespace holding every op of this table by name
    (``F.exp(x)``, ``F.sum(x, dim=(0,), keepdim=False)``); arithmetic uses
    Python operators. The same rule runs on raw arrays (a plain backward) or
    on tensors with recording on (``create_graph=True``), which is why rules
    must only use ``F`` and operators: then derivatives differentiate again.
    ``out`` is the result (only when ``save_output``); an input whose position
    is not in ``save`` arrives as a :class:`~adcli.engine.tensor.Meta` with
    just its ``shape``. ``None`` in ``vjps`` means "no gradient flows here".

``elementwise``
    True when the rule accepts a ``g`` that merely broadcasts to the result's
    shape (a sum's gradient is a broadcast scalar: keeping it small saves a
    full-size array). Other rules always receive ``g`` of the result's shape.

``taylor`` (optional)
    the rule that pushes a truncated Taylor series through the op (see
    :mod:`adcli.engine.taylor`).

Gradients whose shape is larger than their input's (broadcasting in the
forward pass) are summed back by the engine in one place, not in rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from adcli.backend import to_numpy
from adcli.engine import series
from adcli.engine.tensor import apply

_NUMBER = (int, float)


@dataclass(frozen=True, slots=True, eq=False)
class OpDef:
    name: str
    backward_name: str | Callable[[dict | None], str]
    forward: Callable
    vjps: tuple
    save: frozenset = frozenset()
    save_output: bool = False
    elementwise: bool = False
    differentiable: bool = True
    taylor: Callable | None = None
    out_backend: Callable | None = None
    doc: str = field(default="", repr=False)

    def grad_fn_name(self, params) -> str:
        name = self.backward_name
        return name if isinstance(name, str) else name(params)


TABLE: dict[str, OpDef] = {}


def op(name, backward_name, forward, vjps, *, save=(), **kw) -> OpDef:
    """Declare one primitive (and register it in :data:`TABLE`)."""
    entry = OpDef(name, backward_name, forward, tuple(vjps), frozenset(save), **kw)
    TABLE[name] = entry
    return entry


# ----- elementwise arithmetic (broadcasting) --------------------------------------------------
ADD = op(
    "add",
    "AddBackward",
    lambda xp, a, b: a + b,
    (lambda F, g, out, a, b: g, lambda F, g, out, a, b: g),
    elementwise=True,
    taylor=series.add,
)
SUB = op(
    "sub",
    "SubBackward",
    lambda xp, a, b: a - b,
    (lambda F, g, out, a, b: g, lambda F, g, out, a, b: -g),
    elementwise=True,
    taylor=series.sub,
)
MUL = op(
    "mul",
    "MulBackward",
    lambda xp, a, b: a * b,
    (lambda F, g, out, a, b: g * b, lambda F, g, out, a, b: g * a),
    save=(0, 1),
    elementwise=True,
    taylor=series.mul,
)
DIV = op(
    "div",
    "DivBackward",
    lambda xp, a, b: a / b,
    (lambda F, g, out, a, b: g / b, lambda F, g, out, a, b: -g * a / (b * b)),
    save=(0, 1),
    elementwise=True,
    taylor=series.div,
)
NEG = op(
    "neg",
    "NegBackward",
    lambda xp, a: -a,
    (lambda F, g, out, a: -g,),
    elementwise=True,
    taylor=series.neg,
)


def _pow_forward(xp, a, b):
    if isinstance(b, _NUMBER) and b == 2:
        return a * a
    return a**b


def _pow_grad_base(F, g, out, a, b):
    if isinstance(b, _NUMBER):
        if b == 0:
            return g * 0.0
        if b == 1:
            return g
        if b == 2:
            return (g * 2.0) * a  # g is often a broadcast scalar: scale it first
        return (g * b) * a ** (b - 1)
    # A tensor exponent: where it is 0 PyTorch gives 0 (not 0 * 0^-1 = nan at a == 0).
    return F.where(F.eq(b, 0.0), 0.0, g * b * a ** (b - 1))


def _pow_grad_exponent(F, g, out, a, b):
    # d(a^b)/db = a^b log a. PyTorch masks exactly a == 0 with b >= 0 to 0 (not nan);
    # a negative base gives nan, and 0^b with b < 0 gives -inf.
    if isinstance(a, _NUMBER):
        if a > 0:
            return g * out * math.log(a)
        if a < 0:
            return g * out * math.nan
        return F.where(F.ge(b, 0.0), 0.0, g * out * -math.inf)
    return F.where(F.eq(a, 0.0) * F.ge(b, 0.0), 0.0, g * out * F.log(a))


POW = op(
    "pow",
    "PowBackward",
    _pow_forward,
    (_pow_grad_base, None),
    save=(0, 1),
    elementwise=True,
    doc="a tensor to a constant power (the result is not kept: x^2 holds no extra array)",
    taylor=series.pow,
)
POW_TENSOR = op(
    "pow_tensor",
    "PowBackward",
    _pow_forward,
    (_pow_grad_base, _pow_grad_exponent),
    save=(0, 1),
    save_output=True,
    elementwise=True,
    doc="a power whose exponent (or base) is a tensor",
    taylor=series.pow,
)

# ----- elementwise functions --------------------------------------------------------------
EXP = op(
    "exp",
    "ExpBackward",
    lambda xp, a: xp.exp(a),
    (lambda F, g, out, a: g * out,),
    save_output=True,
    elementwise=True,
    taylor=series.exp,
)
LOG = op(
    "log",
    "LogBackward",
    lambda xp, a: xp.log(a),
    (lambda F, g, out, a: g / a,),
    save=(0,),
    elementwise=True,
    taylor=series.log,
)
SQRT = op(
    "sqrt",
    "SqrtBackward",
    lambda xp, a: xp.sqrt(a),
    (lambda F, g, out, a: g / (2.0 * out),),
    save_output=True,
    elementwise=True,
    taylor=series.sqrt,
)
SIN = op(
    "sin",
    "SinBackward",
    lambda xp, a: xp.sin(a),
    (lambda F, g, out, a: g * F.cos(a),),
    save=(0,),
    elementwise=True,
    taylor=series.sin,
)
COS = op(
    "cos",
    "CosBackward",
    lambda xp, a: xp.cos(a),
    (lambda F, g, out, a: -g * F.sin(a),),
    save=(0,),
    elementwise=True,
    taylor=series.cos,
)
TANH = op(
    "tanh",
    "TanhBackward",
    lambda xp, a: xp.tanh(a),
    (lambda F, g, out, a: g * (1.0 - out * out),),
    save_output=True,
    elementwise=True,
    taylor=series.tanh,
)


def _sigmoid_forward(xp, a):
    # Two branches so that neither exp overflows.
    e = xp.exp(-xp.abs(a))
    return xp.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(e.dtype, copy=False)


SIGMOID = op(
    "sigmoid",
    "SigmoidBackward",
    _sigmoid_forward,
    (lambda F, g, out, a: g * (out * (1.0 - out)),),
    save_output=True,
    elementwise=True,
    taylor=series.sigmoid,
)
ABS = op(
    "abs",
    "AbsBackward",
    lambda xp, a: xp.abs(a),
    (lambda F, g, out, a: g * F.sign(a),),
    save=(0,),
    elementwise=True,
    taylor=series.abs,
)
RELU = op(
    "relu",
    "ReluBackward",
    lambda xp, a: xp.maximum(a, 0).astype(a.dtype, copy=False),
    (lambda F, g, out, a: g * F.positive(out),),
    save_output=True,
    elementwise=True,
    taylor=series.relu,
)

# ----- ops with no derivative (their results need no grad) -------------------------------------
SIGN = op("sign", "SignBackward", lambda xp, a: xp.sign(a), (None,), differentiable=False)
POSITIVE = op(
    "positive",
    "GtBackward",
    lambda xp, a: (a > 0).astype(a.dtype),
    (None,),
    differentiable=False,
)
EQ = op("eq", "EqBackward", lambda xp, a, b: xp.equal(a, b), (None, None), differentiable=False)
NE = op("ne", "NeBackward", lambda xp, a, b: xp.not_equal(a, b), (None, None), differentiable=False)
LT = op("lt", "LtBackward", lambda xp, a, b: xp.less(a, b), (None, None), differentiable=False)
LE = op(
    "le", "LeBackward", lambda xp, a, b: xp.less_equal(a, b), (None, None), differentiable=False
)
GT = op("gt", "GtBackward", lambda xp, a, b: xp.greater(a, b), (None, None), differentiable=False)
GE = op(
    "ge", "GeBackward", lambda xp, a, b: xp.greater_equal(a, b), (None, None), differentiable=False
)


def _where_forward(xp, cond, a, b):
    out = xp.where(cond, a, b)
    return out


WHERE = op(
    "where",
    "WhereBackward",
    _where_forward,
    (
        None,
        lambda F, g, out, cond, a, b: F.where(cond, g, 0.0),
        lambda F, g, out, cond, a, b: F.where(cond, 0.0, g),
    ),
    save=(0,),
    elementwise=True,
    taylor=series.where,
)

# ----- reductions ---------------------------------------------------------------------------


def _kept_shape(shape, dim):
    return tuple(1 if i in dim else s for i, s in enumerate(shape))


def _sum_forward(xp, a, dim=None, keepdim=False):
    return xp.sum(a, axis=dim, keepdims=keepdim)


def _sum_grad(F, g, out, a, dim=None, keepdim=False):
    # Left as a broadcastable (kept-dims) gradient; the consumer or the leaf expands it.
    if dim is None:
        return g if keepdim or g.ndim == 0 else F.reshape(g, shape=())
    if keepdim:
        return g
    return F.reshape(g, shape=_kept_shape(a.shape, dim))


def _reduced_count(shape, dim):
    if dim is None:
        return math.prod(shape)
    return math.prod(shape[d] for d in dim)


SUM = op(
    "sum",
    "SumBackward",
    _sum_forward,
    (_sum_grad,),
    taylor=series.linear_map("sum"),
)
MEAN = op(
    "mean",
    "MeanBackward",
    lambda xp, a, dim=None, keepdim=False: xp.mean(a, axis=dim, keepdims=keepdim),
    (
        lambda F, g, out, a, dim=None, keepdim=False: (
            _sum_grad(F, g, out, a, dim, keepdim) / _reduced_count(a.shape, dim)
        ),
    ),
    taylor=series.linear_map("mean"),
)


def _sum_to_forward(xp, a, shape):
    """Sum ``a`` down to ``shape`` (undoing a broadcast); smaller ``a`` is left as is."""
    if a.shape == shape:
        return a
    lead = a.ndim - len(shape)
    axes = list(range(lead)) if lead > 0 else []
    for i, s in enumerate(shape):
        j = i + lead
        if j >= 0 and s == 1 and a.shape[j] != 1:
            axes.append(j)
    if not axes:
        return a
    out = xp.sum(a, axis=tuple(axes), keepdims=True)
    if lead > 0:
        out = out.reshape(out.shape[lead:])
    return out


SUM_TO = op(
    "sum_to",
    "SumToBackward",
    _sum_to_forward,
    # The result broadcasts back to the input: so does g, which is all we need.
    (lambda F, g, out, a, shape: g,),
    elementwise=True,
    taylor=series.linear_map("sum_to"),
)
EXPAND = op(
    "expand",
    "ExpandBackward",
    lambda xp, a, shape: xp.broadcast_to(a, shape),
    (lambda F, g, out, a, shape: F.sum_to(g, shape=a.shape),),
    taylor=series.linear_map("expand"),
)

# ----- shape and layout -------------------------------------------------------------------------
RESHAPE = op(
    "reshape",
    "ViewBackward",
    lambda xp, a, shape: xp.reshape(a, shape),
    (lambda F, g, out, a, shape: F.reshape(g, shape=a.shape),),
    taylor=series.linear_map("reshape"),
)


def _inverse_axes(axes):
    inverse = [0] * len(axes)
    for i, a in enumerate(axes):
        inverse[a] = i
    return tuple(inverse)


def _permute_op(name, backward_name):
    return op(
        name,
        backward_name,
        lambda xp, a, axes: xp.transpose(a, axes),
        (lambda F, g, out, a, axes: F.permute(g, axes=_inverse_axes(axes)),),
        taylor=series.linear_map(name),
    )


PERMUTE = _permute_op("permute", "PermuteBackward")
TRANSPOSE = _permute_op("transpose", "TransposeBackward")
T = _permute_op("t", "TBackward")


def _index_name(params):
    key = params["key"] if params else ()
    if len(key) == 1 and isinstance(key[0], int):
        return "SelectBackward"
    if all(isinstance(k, slice) for k in key):
        return "SliceBackward"
    return "IndexBackward"


def _index_backward_forward(xp, g, key, shape):
    out = xp.zeros(shape, dtype=g.dtype)
    out[key] = g
    return out


INDEX = op(
    "index",
    _index_name,
    lambda xp, a, key: a[key],
    (lambda F, g, out, a, key: F.index_backward(g, key=key, shape=a.shape),),
    taylor=series.linear_map("index"),
)
INDEX_BACKWARD = op(
    "index_backward",
    "IndexBackwardBackward",
    _index_backward_forward,
    (lambda F, g, out, a, key, shape: F.index(g, key=key),),
    taylor=series.linear_map("index_backward"),
)

# ----- linear algebra ------------------------------------------------------------------------
MM = op(
    "mm",
    "MmBackward",
    lambda xp, a, b: xp.matmul(a, b),
    (
        lambda F, g, out, a, b: F.mm(g, F.t(b, axes=(1, 0))),
        lambda F, g, out, a, b: F.mm(F.t(a, axes=(1, 0)), g),
    ),
    save=(0, 1),
    taylor=series.bilinear("mm"),
)
DOT = op(
    "dot",
    "DotBackward",
    lambda xp, a, b: xp.dot(a, b),
    (lambda F, g, out, a, b: g * b, lambda F, g, out, a, b: g * a),
    save=(0, 1),
    taylor=series.bilinear("dot"),
)


def _outer(F, u, v):
    return F.reshape(u, shape=(u.shape[0], 1)) * F.reshape(v, shape=(1, v.shape[0]))


MV = op(
    "mv",
    "MvBackward",
    lambda xp, a, b: xp.matmul(a, b),
    (lambda F, g, out, a, b: _outer(F, g, b), lambda F, g, out, a, b: F.mv(F.t(a, axes=(1, 0)), g)),
    save=(0, 1),
    taylor=series.bilinear("mv"),
)
VM = op(
    "vm",
    "MmBackward",
    lambda xp, a, b: xp.matmul(a, b),
    (lambda F, g, out, a, b: F.mv(b, g), lambda F, g, out, a, b: _outer(F, a, g)),
    save=(0, 1),
    taylor=series.bilinear("vm"),
)


def _swap_last(F, x):
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return F.permute(x, axes=axes)


BMM = op(
    "bmm",
    "BmmBackward",
    lambda xp, a, b: xp.matmul(a, b),
    (
        lambda F, g, out, a, b: F.sum_to(F.bmm(g, _swap_last(F, b)), shape=a.shape),
        lambda F, g, out, a, b: F.sum_to(F.bmm(_swap_last(F, a), g), shape=b.shape),
    ),
    save=(0, 1),
    taylor=series.bilinear("bmm"),
)

# ----- copies, types and devices ----------------------------------------------------------
CLONE = op(
    "clone",
    "CloneBackward",
    lambda xp, a: a.copy(),
    (lambda F, g, out, a: g,),
    elementwise=True,
    taylor=series.linear_map("clone"),
)
CAST = op(
    "cast",
    "ToCopyBackward",
    lambda xp, a, dtype, source: a.astype(dtype),
    (lambda F, g, out, a, dtype, source: F.cast(g, dtype=source, source=dtype),),
    elementwise=True,
    taylor=series.linear_map("cast"),
)


def _to_device_forward(xp, a, device, source):

    if device.is_cuda and source.is_cuda:
        with device.scope():
            return device.xp.array(a, copy=True)
    return device.asarray(to_numpy(a))


TO_DEVICE = op(
    "to_device",
    "ToCopyBackward",
    _to_device_forward,
    (lambda F, g, out, a, device, source: F.to_device(g, device=source, source=device),),
    out_backend=lambda params: params["device"],
    taylor=series.linear_map("to_device"),
)


# ----- remainder, floor division and index assignment (the language's % // and a[i] = v) -------
FLOOR_DIVIDE = op(
    "floor_divide",
    "FloorDivideBackward",
    lambda xp, a, b: xp.floor_divide(a, b),
    (None, None),
    differentiable=False,
)
REMAINDER = op(
    "remainder",
    "RemainderBackward",
    lambda xp, a, b: xp.remainder(a, b),
    # a - floor(a / b) * b: d/da = 1, d/db = -floor(a / b)
    (lambda F, g, out, a, b: g, lambda F, g, out, a, b: -g * F.floor_divide(a, b)),
    save=(0, 1),
    elementwise=True,
    taylor=series.remainder,
)


def _copy_slices_forward(xp, a, b, key):
    out = a.copy()
    out[key] = b
    return out


COPY_SLICES = op(
    "copy_slices",
    "CopySlices",
    _copy_slices_forward,
    (
        # The overwritten elements get no gradient; the value gets theirs.
        lambda F, g, out, a, b, key: F.copy_slices(g, 0.0, key=key),
        lambda F, g, out, a, b, key: F.index(g, key=key),
    ),
    save=(0,),  # for the Taylor rule (a zero coefficient of a's shape)
    taylor=series.copy_slices,
)


# ----- the two namespaces rules see as ``F`` ---------------------------------------------------
class RawOps:
    """Every op's forward on raw arrays of one array module: a plain backward's ``F``."""

    def __init__(self, xp) -> None:
        for entry in TABLE.values():
            setattr(self, entry.name, partial(entry.forward, xp))


class GraphOps:
    """Every op, recorded on tensors: ``F`` when ``create_graph=True``."""

    def __init__(self) -> None:

        for entry in TABLE.values():
            setattr(self, entry.name, partial(_apply_kw, apply, entry))


def _apply_kw(apply, entry, *args, **params):
    return apply(entry, args, params or None)
