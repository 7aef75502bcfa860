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

``joint_vjp`` (optional)
    all inputs' gradients in one call, when their rules share work; the engine
    uses it only when more than one input needs a gradient (the ``vjps`` stay
    the definition, and are used alone otherwise).

``taylor`` (optional)
    the rule that pushes a truncated Taylor series through the op (see
    :mod:`adcli.engine.taylor`).

``api`` (optional)
    how the op is offered to users, in neutral terms (:class:`Api`): its public
    name, its parameters with PyTorch's names and defaults, whether it is also a
    tensor method, and where it is smooth (``domain``, which the generated tests
    sample). The engine makes the public function and the method from it; the
    language turns the same description into its builtins. Composite ops (built
    from these primitives) declare theirs in :mod:`adcli.engine.public`.

Gradients whose shape is larger than their input's (broadcasting in the
forward pass) are summed back by the engine in one place, not in rules.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import field
from functools import partial

import numpy as np

from adcli.backend import to_numpy
from adcli.engine import series
from adcli.engine.tensor import apply
from adcli.records import record

_NUMBER = (int, float)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: the default of a parameter that must be given
REQUIRED = _Required()

#: what a parameter takes: a tensor (numbers become tensors), an operand (a tensor or a
#: number, kept as given), tensors (a sequence of them), a number, an int (whole number),
#: a dim (int), dims (an int or a tuple of them), a shape (sizes), a bool, a str, or any value
PARAM_KINDS = frozenset(
    {"tensor", "operand", "tensors", "number", "int", "dim", "dims", "shape", "bool", "str", "any"}
)
#: kinds whose argument is an input of the op (the rest are its parameters)
INPUT_KINDS = frozenset({"tensor", "operand"})


@record(frozen=True, slots=True)
class Param:
    """One parameter of an op as PyTorch names it: its kind, default and how it is passed."""

    name: str
    kind: str = "tensor"
    default: object = REQUIRED
    keyword_only: bool = False
    variadic: bool = False  # ``*shape``: the rest of the positional arguments

    @property
    def required(self) -> bool:
        return self.default is REQUIRED and not self.variadic


@record(frozen=True, slots=True)
class Api:
    """How an op is offered: public name, PyTorch's parameters, method or not, domain.

    ``method``: also a tensor method (its first parameter is the tensor); a
    string names the method differently. ``function``: also a function
    (``False`` for method-only names such as ``view``). ``group`` sorts the
    documentation (elementwise, reduction, shape, loss, math, creation).
    ``domain``: per tensor input, where the op is smooth (``any``, ``pos``,
    ``away0``, ``small``, ``unit`` (in (-1, 1)), ``gt1``, ``prob``).
    ``composite``: for ops built from others, what they are built from.
    ``reference``: the same function as an expression of ``x`` (and ``y``) in
    mpmath's names (``"atan(x)"``), which the generated tests evaluate to 50
    digits, derivatives included.
    """

    name: str
    params: tuple
    method: bool | str = False
    function: bool = True
    group: str = "elementwise"
    domain: tuple = ()
    composite: str = ""
    reference: str = ""
    doc: str = ""
    #: an int64 or bool input gives a result of its own dtype (abs, relu, sign...), not a
    #: floating one (sqrt of an integer tensor is float, as in PyTorch)
    keeps_integers: bool = False

    @property
    def method_name(self) -> str | None:
        if not self.method:
            return None
        return self.method if isinstance(self.method, str) else self.name


def parse_params(text: str) -> tuple:
    """Parameters from ``"input, dim:dims=None, *, keepdim:bool=False, *shape:shape"``."""
    params = []
    keyword_only = False
    for part in _split_top_level(text):
        if not part:
            continue
        if part == "*":
            keyword_only = True
            continue
        variadic = part.startswith("*")
        part = part.lstrip("*")
        default = REQUIRED
        if "=" in part:
            part, raw = part.split("=", 1)
            default = _literal(raw.strip())
        name, _, kind = part.partition(":")
        kind = kind.strip() or "tensor"
        if kind not in PARAM_KINDS:
            raise ValueError(f"unknown parameter kind {kind!r} in {text!r}")
        params.append(Param(name.strip(), kind, default, keyword_only, variadic))
        if variadic:
            keyword_only = True
    return tuple(params)


#: defaults already read (only immutable ones: each parameter gets its own list)
_LITERALS: dict[str, object] = {}


def _literal(raw: str) -> object:
    """``ast.literal_eval(raw)``, remembered: the table has a few dozen defaults, mostly
    ``None`` and ``False``, and compiling each anew was a tenth of its import."""
    value = _LITERALS.get(raw, _LITERALS)
    if value is _LITERALS:
        value = ast.literal_eval(raw)
        if value is None or type(value) in (bool, int, float, str):
            _LITERALS[raw] = value
    return value


def _split_top_level(text: str) -> list:
    """``text`` split at the commas that are not inside brackets."""
    if not any(bracket in text for bracket in "([{"):
        return [part.strip() for part in text.split(",")]
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return parts


def api(name, params="input", **kw) -> Api:
    """An :class:`Api` with its parameters written as a Python-like signature string."""
    domain = kw.pop("domain", ())
    if isinstance(domain, str):
        domain = (domain,)
    return Api(name, parse_params(params), domain=tuple(domain), **kw)


@record(frozen=True, slots=True, eq=False)
class OpDef:
    """One primitive of :data:`TABLE`: its forward, one VJP per input, Taylor rule and API."""

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
    #: optional ``joint(F, g, out, *inputs, **params) -> tuple`` giving every input's
    #: gradient at once, used when two or more are wanted (``solve`` shares one solve)
    joint_vjp: Callable | None = None
    api: Api | None = None
    doc: str = field(default="", repr=False)

    def grad_fn_name(self, params) -> str:
        name = self.backward_name
        return name if isinstance(name, str) else name(params)


TABLE: dict[str, OpDef] = {}


class EachInput:
    """The ``vjps`` of an op with any number of inputs (``cat``): one rule, told which input.

    ``rule(F, g, out, *inputs, index=i, **params)``; ``vjps[i]`` is that rule for input ``i``.
    """

    __slots__ = ("rule",)

    def __init__(self, rule) -> None:
        self.rule = rule

    def __getitem__(self, i):
        return partial(_with_index, self.rule, i)

    def __iter__(self):
        yield self.rule


def _with_index(rule, i, F, g, out, *inputs, **params):
    return rule(F, g, out, *inputs, index=i, **params)


def op(name, backward_name, forward, vjps, *, save=(), **kw) -> OpDef:
    """Declare one primitive (and register it in :data:`TABLE`)."""
    if not isinstance(vjps, EachInput):
        vjps = tuple(vjps)
    entry = OpDef(name, backward_name, forward, vjps, frozenset(save), **kw)
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
    api=api("exp", method=True, reference="exp(x)"),
)
LOG = op(
    "log",
    "LogBackward",
    lambda xp, a: xp.log(a),
    (lambda F, g, out, a: g / a,),
    save=(0,),
    elementwise=True,
    taylor=series.log,
    api=api("log", method=True, domain="pos", reference="log(x)"),
)
SQRT = op(
    "sqrt",
    "SqrtBackward",
    lambda xp, a: xp.sqrt(a),
    (lambda F, g, out, a: g / (2.0 * out),),
    save_output=True,
    elementwise=True,
    taylor=series.sqrt,
    api=api("sqrt", method=True, domain="pos", reference="sqrt(x)"),
)
SIN = op(
    "sin",
    "SinBackward",
    lambda xp, a: xp.sin(a),
    (lambda F, g, out, a: g * F.cos(a),),
    save=(0,),
    elementwise=True,
    taylor=series.sin,
    api=api("sin", method=True, reference="sin(x)"),
)
COS = op(
    "cos",
    "CosBackward",
    lambda xp, a: xp.cos(a),
    (lambda F, g, out, a: -g * F.sin(a),),
    save=(0,),
    elementwise=True,
    taylor=series.cos,
    api=api("cos", method=True, reference="cos(x)"),
)
TANH = op(
    "tanh",
    "TanhBackward",
    lambda xp, a: xp.tanh(a),
    (lambda F, g, out, a: g * (1.0 - out * out),),
    save_output=True,
    elementwise=True,
    taylor=series.tanh,
    api=api("tanh", method=True, reference="tanh(x)"),
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
    api=api("sigmoid", method=True, reference="1/(1+exp(-x))"),
)
ABS = op(
    "abs",
    "AbsBackward",
    lambda xp, a: xp.abs(a),
    (lambda F, g, out, a: g * F.sign(a),),
    save=(0,),
    elementwise=True,
    taylor=series.abs,
    api=api("abs", keeps_integers=True, method=True, domain="away0"),
)
RELU = op(
    "relu",
    "ReluBackward",
    lambda xp, a: xp.maximum(a, 0).astype(a.dtype, copy=False),
    (lambda F, g, out, a: g * F.positive(out),),
    save_output=True,
    elementwise=True,
    taylor=series.relu,
    api=api("relu", keeps_integers=True, method=True, domain="away0"),
)

# ----- ops with no derivative (their results need no grad) -------------------------------------
SIGN = op(
    "sign",
    "SignBackward",
    lambda xp, a: xp.sign(a),
    # As PyTorch: the result requires grad and its gradient is zero everywhere.
    (lambda F, g, out, a: g * 0.0,),
    elementwise=True,
    taylor=series.constant,
    api=api("sign", keeps_integers=True, method=True),
)
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
    api=api("where", "condition, input:operand, other:operand", method=False),
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
    api=api("sum", "input, dim:dims=None, keepdim:bool=False", method=True, group="reduction"),
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
    api=api("mean", "input, dim:dims=None, keepdim:bool=False", method=True, group="reduction"),
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
    api=api("expand", "input, *size:shape", method=True, group="shape"),
)

# ----- shape and layout -------------------------------------------------------------------------
RESHAPE = op(
    "reshape",
    "ViewBackward",
    lambda xp, a, shape: xp.reshape(a, shape),
    (lambda F, g, out, a, shape: F.reshape(g, shape=a.shape),),
    taylor=series.linear_map("reshape"),
    api=api("reshape", "input, *shape:shape", method=True, group="shape"),
)


def _inverse_axes(axes):
    inverse = [0] * len(axes)
    for i, a in enumerate(axes):
        inverse[a] = i
    return tuple(inverse)


def _permute_op(name, backward_name, exposure=None):
    return op(
        name,
        backward_name,
        lambda xp, a, axes: xp.transpose(a, axes),
        (lambda F, g, out, a, axes: F.permute(g, axes=_inverse_axes(axes)),),
        taylor=series.linear_map(name),
        api=exposure,
    )


PERMUTE = _permute_op(
    "permute", "PermuteBackward", api("permute", "input, *dims:shape", method=True, group="shape")
)
TRANSPOSE = _permute_op(
    "transpose",
    "TransposeBackward",
    api("transpose", "input, dim0:dim=None, dim1:dim=None", method=True, group="shape"),
)
T = _permute_op("t", "TBackward")


def _index_name(params):
    key = params["key"] if params else ()
    if any(hasattr(k, "dtype") for k in key):
        return "IndexBackward"
    if len(key) == 1 and isinstance(key[0], int):
        return "SelectBackward"
    if all(isinstance(k, slice) for k in key):
        return "SliceBackward"
    if all(k is None or k is Ellipsis for k in key):
        return "UnsqueezeBackward" if None in key else "AliasBackward"
    return "IndexBackward"


def _is_gather(key) -> bool:
    """Whether ``key`` holds an integer index array (whose repeats must add up)."""
    for k in key:
        dtype = getattr(k, "dtype", None)
        if dtype is not None and dtype.kind in "iu":
            return True
    return False


def _scatter_add(xp, out, key, values) -> None:
    """``out[key] += values`` where repeated indices each add (NumPy's ``add.at``)."""
    at = getattr(xp.add, "at", None)
    if at is not None:
        at(out, key, values)
        return
    # an array module without ufunc.at: accumulate over a flat index of the positions
    positions = xp.arange(out.size).reshape(out.shape)[key]
    flat = out.reshape(-1)
    flat += xp.bincount(
        positions.reshape(-1),
        weights=xp.broadcast_to(values, positions.shape).reshape(-1),
        minlength=out.size,
    ).astype(out.dtype)


def _index_backward_forward(xp, g, key, shape):
    out = xp.zeros(shape, dtype=g.dtype)
    if _is_gather(key):
        _scatter_add(xp, out, key, g)
    else:
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


def _index_zero_forward(xp, a, key):
    out = a.copy()
    out[key] = 0
    return out


INDEX_ZERO = op(
    "index_zero",
    "IndexPutBackward",
    _index_zero_forward,
    # Zeroing the positions at key is a projection: its own transpose.
    (lambda F, g, out, a, key: F.index_zero(g, key=key),),
    taylor=series.linear_map("index_zero"),
    doc="a copy with the positions at key set to zero (the gradient of an overwritten tensor)",
)


def _index_put_forward(xp, a, value, key, accumulate, shape, inplace=False):
    out = a.copy()
    if accumulate:
        _scatter_add(xp, out, key, value)
    else:
        out[key] = value
    return out


def _index_put_taylor(F, out, a, value, key, accumulate, shape, inplace=False):
    result = [None]
    for k in range(1, len(a)):
        ak, vk = a[k], value[k]
        if vk is None:
            result.append(None if ak is None else ak if accumulate else F.index_zero(ak, key=key))
        elif ak is None:
            result.append(F.index_backward(vk, key=key, shape=shape))
        else:
            result.append(F.index_put(ak, vk, key=key, accumulate=accumulate, shape=shape))
    return result


INDEX_PUT = op(
    "index_put",
    # PyTorch's name for an in-place index assignment (x[i] = v) is CopySlices
    lambda params: "CopySlices" if params and params.get("inplace") else "IndexPutBackward",
    _index_put_forward,
    (
        lambda F, g, out, a, value, key, accumulate, shape, inplace=False: (
            g if accumulate else F.index_zero(g, key=key)
        ),
        lambda F, g, out, a, value, key, accumulate, shape, inplace=False: F.index(g, key=key),
    ),
    taylor=_index_put_taylor,
    doc="a copy of a with value written (or added, with accumulate) at key; value has "
    "the shape of a[key]",
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
    api=api("mm", "input, mat2", method=True, group="math"),
)
DOT = op(
    "dot",
    "DotBackward",
    lambda xp, a, b: xp.dot(a, b),
    (lambda F, g, out, a, b: g * b, lambda F, g, out, a, b: g * a),
    save=(0, 1),
    taylor=series.bilinear("dot"),
    api=api("dot", "input, tensor", method=True, group="math"),
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
    api=api("clone", method=True, group="shape"),
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


# ----- v2 elementwise functions (each with its VJP in table ops and its series rule) -----------
def _unary_op(name, backward_name, forward, vjp, *, save=(0,), save_output=False, **kw):
    return op(
        name,
        backward_name,
        forward,
        (vjp,),
        save=save,
        save_output=save_output,
        elementwise=True,
        **kw,
    )


_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

TAN = _unary_op(
    "tan",
    "TanBackward",
    lambda xp, a: xp.tan(a),
    lambda F, g, out, a: g * (1.0 + out * out),
    save=(),
    save_output=True,
    taylor=series.tan,
    api=api("tan", method=True, domain="small", reference="tan(x)"),
)
ASIN = _unary_op(
    "asin",
    "AsinBackward",
    lambda xp, a: xp.arcsin(a),
    lambda F, g, out, a: g * F.rsqrt(1.0 - a * a),
    taylor=series.asin,
    api=api("asin", method=True, domain="unit", reference="asin(x)"),
)
ACOS = _unary_op(
    "acos",
    "AcosBackward",
    lambda xp, a: xp.arccos(a),
    lambda F, g, out, a: -g * F.rsqrt(1.0 - a * a),
    taylor=series.acos,
    api=api("acos", method=True, domain="unit", reference="acos(x)"),
)
ATAN = _unary_op(
    "atan",
    "AtanBackward",
    lambda xp, a: xp.arctan(a),
    lambda F, g, out, a: g / (1.0 + a * a),
    taylor=series.atan,
    api=api("atan", method=True, reference="atan(x)"),
)
SINH = _unary_op(
    "sinh",
    "SinhBackward",
    lambda xp, a: xp.sinh(a),
    lambda F, g, out, a: g * F.cosh(a),
    taylor=series.sinh,
    api=api("sinh", method=True, reference="sinh(x)"),
)
COSH = _unary_op(
    "cosh",
    "CoshBackward",
    lambda xp, a: xp.cosh(a),
    lambda F, g, out, a: g * F.sinh(a),
    taylor=series.cosh,
    api=api("cosh", method=True, reference="cosh(x)"),
)
ASINH = _unary_op(
    "asinh",
    "AsinhBackward",
    lambda xp, a: xp.arcsinh(a),
    lambda F, g, out, a: g * F.rsqrt(a * a + 1.0),
    taylor=series.asinh,
    api=api("asinh", method=True, reference="asinh(x)"),
)
ACOSH = _unary_op(
    "acosh",
    "AcoshBackward",
    lambda xp, a: xp.arccosh(a),
    lambda F, g, out, a: g * F.rsqrt(a * a - 1.0),
    taylor=series.acosh,
    api=api("acosh", method=True, domain="gt1", reference="acosh(x)"),
)
ATANH = _unary_op(
    "atanh",
    "AtanhBackward",
    lambda xp, a: xp.arctanh(a),
    lambda F, g, out, a: g / (1.0 - a * a),
    taylor=series.atanh,
    api=api("atanh", method=True, domain="unit", reference="atanh(x)"),
)
LOG2 = _unary_op(
    "log2",
    "Log2Backward",
    lambda xp, a: xp.log2(a),
    lambda F, g, out, a: g / (a * _LN2),
    taylor=series.log2,
    api=api("log2", method=True, domain="pos", reference="log(x, 2)"),
)
LOG10 = _unary_op(
    "log10",
    "Log10Backward",
    lambda xp, a: xp.log10(a),
    lambda F, g, out, a: g / (a * _LN10),
    taylor=series.log10,
    api=api("log10", method=True, domain="pos", reference="log10(x)"),
)
LOG1P = _unary_op(
    "log1p",
    "Log1pBackward",
    lambda xp, a: xp.log1p(a),
    lambda F, g, out, a: g / (a + 1.0),
    taylor=series.log1p,
    api=api("log1p", method=True, domain="pos", reference="log1p(x)"),
)
EXPM1 = _unary_op(
    "expm1",
    "Expm1Backward",
    lambda xp, a: xp.expm1(a),
    lambda F, g, out, a: g * (out + 1.0),
    save=(),
    save_output=True,
    taylor=series.expm1,
    api=api("expm1", method=True, reference="expm1(x)"),
)
EXP2 = _unary_op(
    "exp2",
    "Exp2Backward",
    lambda xp, a: xp.exp2(a),
    lambda F, g, out, a: g * (out * _LN2),
    save=(),
    save_output=True,
    taylor=series.exp2,
    api=api("exp2", method=True, reference="2**x"),
)


def _special(name):
    """``erf`` or ``erfc`` on arrays of any device (NumPy has neither: SciPy's, else math's)."""

    def forward(xp, a):
        host = a if xp is np else to_numpy(a)
        try:  # imported here, not at start-up: SciPy is optional and slow to import
            from scipy import special

            out = getattr(special, name)(host)
        except ImportError:
            out = np.vectorize(getattr(math, name), otypes=[host.dtype])(host)
        out = np.asarray(out).astype(a.dtype, copy=False)
        return out if xp is np else xp.asarray(out)

    return forward


_erf_forward = _special("erf")


ERF = _unary_op(
    "erf",
    "ErfBackward",
    _erf_forward,
    lambda F, g, out, a: g * (F.exp(-(a * a)) * _TWO_OVER_SQRT_PI),
    taylor=series.erf,
    api=api("erf", method=True, reference="erf(x)"),
)
ERFC = _unary_op(
    "erfc",
    "ErfcBackward",
    _special("erfc"),  # not 1 - erf: that loses every digit for large x
    lambda F, g, out, a: g * (F.exp(-(a * a)) * -_TWO_OVER_SQRT_PI),
    taylor=series.erfc,
    api=api("erfc", method=True, reference="erfc(x)"),
)
RSQRT = _unary_op(
    "rsqrt",
    "RsqrtBackward",
    lambda xp, a: 1.0 / xp.sqrt(a),
    lambda F, g, out, a: g * (out * out * out * -0.5),
    save=(0,),
    save_output=True,
    taylor=series.rsqrt,
    api=api("rsqrt", method=True, domain="pos", reference="1/sqrt(x)"),
)
RECIPROCAL = _unary_op(
    "reciprocal",
    "ReciprocalBackward",
    lambda xp, a: 1.0 / a,
    lambda F, g, out, a: -g * (out * out),
    save=(0,),
    save_output=True,
    taylor=series.reciprocal,
    api=api("reciprocal", method=True, domain="away0", reference="1/x"),
)


def _zero_grad_rule(F, g, out, a, **params):
    return g * 0.0


def _step_op(name, backward_name, forward, params="input"):
    # Piecewise constant: zero gradient everywhere (PyTorch's), and an all-zero series.
    return op(
        name,
        backward_name,
        forward,
        (_zero_grad_rule,),
        elementwise=True,
        taylor=series.constant,
        api=api(name, params, method=True),
    )


FLOOR = _step_op("floor", "FloorBackward", lambda xp, a: xp.floor(a))
CEIL = _step_op("ceil", "CeilBackward", lambda xp, a: xp.ceil(a))
TRUNC = _step_op("trunc", "TruncBackward", lambda xp, a: xp.trunc(a))
ROUND = _step_op(
    "round",
    "RoundBackward",
    lambda xp, a, decimals=0: xp.round(a, decimals),
    "input, *, decimals:int=0",
)

# masks and weights (no gradient): the derivative rules below are written with them
CLAMP_MASK = op(
    "clamp_mask",
    "ClampMaskBackward",
    lambda xp, a, min=None, max=None: (
        ((a >= min) if min is not None else xp.ones(a.shape, bool))
        & ((a <= max) if max is not None else xp.ones(a.shape, bool))
    ).astype(a.dtype),
    (None,),
    differentiable=False,
)
MAXIMUM_WEIGHT = op(
    "maximum_weight",
    "MaximumWeightBackward",
    lambda xp, a, b: xp.where(a > b, 1.0, xp.where(a == b, 0.5, 0.0)).astype(xp.result_type(a, b)),
    (None, None),
    differentiable=False,
)
STEP = op(
    "step",
    "StepBackward",
    lambda xp, a, low, high: xp.where(a > 0, high, low).astype(a.dtype),
    (None,),
    differentiable=False,
)
FINITE_MASK = op(
    "finite_mask",
    "FiniteMaskBackward",
    lambda xp, a: xp.isfinite(a).astype(a.dtype),
    (None,),
    differentiable=False,
)
ISFINITE = op(
    "isfinite",
    "IsfiniteBackward",
    lambda xp, a: xp.isfinite(a),
    (None,),
    differentiable=False,
    api=api("isfinite", method=True),
)
ISNAN = op(
    "isnan",
    "IsnanBackward",
    lambda xp, a: xp.isnan(a),
    (None,),
    differentiable=False,
    api=api("isnan", method=True),
)


def _clamp_forward(xp, a, min=None, max=None):
    out = a
    if min is not None:
        out = xp.maximum(out, min)
    if max is not None:
        out = xp.minimum(out, max)
    return out.astype(a.dtype, copy=False)


CLAMP = op(
    "clamp",
    "ClampBackward",
    _clamp_forward,
    # The boundary is inside: min <= x <= max passes the gradient (PyTorch's subgradient).
    (lambda F, g, out, a, min=None, max=None: g * F.clamp_mask(a, min=min, max=max),),
    save=(0,),
    elementwise=True,
    taylor=series.clamp,
    api=api("clamp", "input, min:number=None, max:number=None", method=True, domain="any"),
)


def _maximum_forward(xp, a, b):
    return xp.maximum(a, b)


MAXIMUM = op(
    "maximum",
    "MaximumBackward",
    _maximum_forward,
    # Ties split the gradient evenly, as PyTorch does.
    (
        lambda F, g, out, a, b: g * F.maximum_weight(a, b),
        lambda F, g, out, a, b: g * (1.0 - F.maximum_weight(a, b)),
    ),
    save=(0, 1),
    elementwise=True,
    taylor=series.maximum,
    api=api("maximum", "input, other", method=True, domain=("any", "any")),
)
MINIMUM = op(
    "minimum",
    "MinimumBackward",
    lambda xp, a, b: xp.minimum(a, b),
    (
        lambda F, g, out, a, b: g * F.maximum_weight(b, a),
        lambda F, g, out, a, b: g * (1.0 - F.maximum_weight(b, a)),
    ),
    save=(0, 1),
    elementwise=True,
    taylor=series.minimum,
    api=api("minimum", "input, other", method=True, domain=("any", "any")),
)


def _softplus_forward(xp, a, beta=1.0, threshold=20.0):
    z = a * beta
    soft = (xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))) / beta
    return xp.where(z > threshold, a, soft).astype(a.dtype, copy=False)


SOFTPLUS = op(
    "softplus",
    "SoftplusBackward",
    _softplus_forward,
    (
        lambda F, g, out, a, beta=1.0, threshold=20.0: F.where(
            F.gt(a * beta, threshold), g, g * F.sigmoid(a * beta)
        ),
    ),
    save=(0,),
    elementwise=True,
    taylor=series.softplus,
    api=api("softplus", "input, beta:number=1.0, threshold:number=20.0", reference="log(1+exp(x))"),
)
SILU = _unary_op(
    "silu",
    "SiluBackward",
    lambda xp, a: a * _sigmoid_forward(xp, a),
    lambda F, g, out, a: g * (F.sigmoid(a) * (1.0 + a * (1.0 - F.sigmoid(a)))),
    taylor=series.silu,
    api=api("silu", reference="x/(1+exp(-x))"),
)
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = math.sqrt(2.0 / math.pi)


def _gelu_forward(xp, a, approximate="none"):
    if approximate == "tanh":
        return 0.5 * a * (1.0 + xp.tanh(_GELU_C * (a + 0.044715 * a * a * a)))
    return (0.5 * a * (1.0 + _erf_forward(xp, a * _SQRT_HALF))).astype(a.dtype, copy=False)


def _gelu_grad(F, g, out, a, approximate="none"):
    if approximate == "tanh":
        u = _GELU_C * (a + 0.044715 * a * a * a)
        t = F.tanh(u)
        du = _GELU_C * (1.0 + 3 * 0.044715 * a * a)
        return g * (0.5 * (1.0 + t) + 0.5 * a * (1.0 - t * t) * du)
    phi = F.exp(a * a * -0.5) * _INV_SQRT_2PI
    cdf = (F.erf(a * _SQRT_HALF) + 1.0) * 0.5
    return g * (cdf + a * phi)


GELU = op(
    "gelu",
    "GeluBackward",
    _gelu_forward,
    (_gelu_grad,),
    save=(0,),
    elementwise=True,
    taylor=series.gelu,
    api=api("gelu", "input, approximate:str='none'", reference="x*(1+erf(x/sqrt(2)))/2"),
)
LEAKY_RELU = op(
    "leaky_relu",
    "LeakyReluBackward",
    lambda xp, a, negative_slope=0.01: xp.where(a > 0, a, a * negative_slope).astype(
        a.dtype, copy=False
    ),
    # At 0 the slope is negative_slope (PyTorch's: x > 0 ? g : g * slope).
    (lambda F, g, out, a, negative_slope=0.01: g * F.step(a, low=negative_slope, high=1.0),),
    save=(0,),
    elementwise=True,
    taylor=series.leaky_relu,
    api=api("leaky_relu", "input, negative_slope:number=0.01", domain="away0"),
)
HYPOT = op(
    "hypot",
    "HypotBackward",
    lambda xp, a, b: xp.hypot(a, b),
    (lambda F, g, out, a, b: g * a / out, lambda F, g, out, a, b: g * b / out),
    save=(0, 1),
    save_output=True,
    elementwise=True,
    taylor=series.hypot,
    api=api(
        "hypot", "input, other", method=True, domain=("away0", "away0"), reference="hypot(x, y)"
    ),
)
ATAN2 = op(
    "atan2",
    "Atan2Backward",
    lambda xp, a, b: xp.arctan2(a, b),
    (
        lambda F, g, out, a, b: g * b / (a * a + b * b),
        lambda F, g, out, a, b: -g * a / (a * a + b * b),
    ),
    save=(0, 1),
    elementwise=True,
    taylor=series.atan2,
    api=api(
        "atan2", "input, other", method=True, domain=("away0", "away0"), reference="atan2(x, y)"
    ),
)


def _nan_to_num_forward(xp, a, nan=0.0, posinf=None, neginf=None):
    return xp.nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf)


NAN_TO_NUM = op(
    "nan_to_num",
    "NanToNumBackward",
    _nan_to_num_forward,
    (lambda F, g, out, a, nan=0.0, posinf=None, neginf=None: g * F.finite_mask(a),),
    save=(0,),
    elementwise=True,
    taylor=series.nan_to_num,
    api=api(
        "nan_to_num",
        "input, nan:number=0.0, posinf:number=None, neginf:number=None",
        method=True,
    ),
)


# ----- v2 reductions ---------------------------------------------------------------------------
def _keep(F, t, a_shape, dim, keepdim):
    """``t`` (a reduction's result or gradient) with the reduced dims kept as size 1."""
    if keepdim or dim is None:  # (a full reduction's 0-d result broadcasts as it is)
        return t
    return F.reshape(t, shape=_kept_shape(a_shape, dim))


TIES = op(
    "ties",
    "TiesBackward",
    lambda xp, a, best: (a == best).astype(a.dtype),
    (None, None),
    differentiable=False,
)


def _first_index_mask(xp, a, dim, largest=True):
    index = xp.argmax(a, axis=dim) if largest else xp.argmin(a, axis=dim)
    positions = xp.arange(a.shape[dim]).reshape((-1,) + (1,) * (a.ndim - dim - 1))
    return (positions == xp.expand_dims(index, dim)).astype(a.dtype)


INDEX_MASK = op(
    "index_mask",
    "IndexMaskBackward",
    lambda xp, a, dim, largest: _first_index_mask(xp, a, dim, largest),
    (None,),
    differentiable=False,
)


def _ties_grad(F, g, out, a, dim=None, keepdim=False):
    # Equal extreme values share the gradient evenly (PyTorch's amax/amin and full max/min).
    best = _keep(F, out, a.shape, dim, keepdim)
    mask = F.ties(a, best)
    count = F.sum(mask, dim=dim, keepdim=True)
    return _keep(F, g, a.shape, dim, keepdim) * (mask / count)


def _extreme_op(name, backward_name, forward):
    return op(
        name,
        backward_name,
        forward,
        (_ties_grad,),
        save=(0,),
        save_output=True,
        taylor=series.extreme,
    )


MAX = _extreme_op(
    "max",
    "MaxBackward",
    lambda xp, a, dim=None, keepdim=False: xp.max(a, axis=dim, keepdims=keepdim),
)
MIN = _extreme_op(
    "min",
    "MinBackward",
    lambda xp, a, dim=None, keepdim=False: xp.min(a, axis=dim, keepdims=keepdim),
)
AMAX = _extreme_op(
    "amax",
    "AmaxBackward",
    lambda xp, a, dim=None, keepdim=False: xp.max(a, axis=dim, keepdims=keepdim),
)
AMIN = _extreme_op(
    "amin",
    "AminBackward",
    lambda xp, a, dim=None, keepdim=False: xp.min(a, axis=dim, keepdims=keepdim),
)


def _select_dim_grad(largest):
    # max(x, dim=d): the gradient goes to the index returned (the first extreme one).
    def rule(F, g, out, a, dim, keepdim=False):
        g = g if keepdim else F.reshape(g, shape=_kept_shape(a.shape, (dim,)))
        return g * F.index_mask(a, dim=dim, largest=largest)

    return rule


MAX_DIM = op(
    "max_dim",
    "MaxBackward",
    lambda xp, a, dim, keepdim=False: xp.max(a, axis=dim, keepdims=keepdim),
    (_select_dim_grad(True),),
    save=(0,),
    taylor=series.max_dim,
)
MIN_DIM = op(
    "min_dim",
    "MinBackward",
    lambda xp, a, dim, keepdim=False: xp.min(a, axis=dim, keepdims=keepdim),
    (_select_dim_grad(False),),
    save=(0,),
    taylor=series.min_dim,
)


def _arg_forward(largest):
    def forward(xp, a, dim=None, keepdim=False):
        f = xp.argmax if largest else xp.argmin
        if dim is None:
            out = xp.asarray(f(a))
            return out.reshape((1,) * a.ndim) if keepdim else out
        return f(a, axis=dim, keepdims=keepdim)

    return forward


ARGMAX = op("argmax", "ArgmaxBackward", _arg_forward(True), (None,), differentiable=False)
ARGMIN = op("argmin", "ArgminBackward", _arg_forward(False), (None,), differentiable=False)
ALL = op(
    "all",
    "AllBackward",
    lambda xp, a, dim=None, keepdim=False: xp.all(a, axis=dim, keepdims=keepdim),
    (None,),
    differentiable=False,
)
ANY = op(
    "any",
    "AnyBackward",
    lambda xp, a, dim=None, keepdim=False: xp.any(a, axis=dim, keepdims=keepdim),
    (None,),
    differentiable=False,
)


def _has_zero(a) -> bool:
    data = getattr(a, "_data", a)
    if not hasattr(data, "dtype") or not hasattr(data, "any"):
        return True  # no values to look at (a symbol): the form that is right everywhere
    return bool((data == 0).any())


ONE_HOT = op(
    "one_hot",
    "OneHotBackward",
    lambda xp, a, dim, index: (
        (xp.arange(a.shape[dim]).reshape((-1,) + (1,) * (a.ndim - dim - 1)) == index)
        & xp.ones(a.shape, dtype=bool)
    ),
    (None,),
    differentiable=False,
)


def _prod_grad(F, g, out, a, dim=None, keepdim=False):
    dims = None if dim is None else (dim,)
    g = _keep(F, g, a.shape, dims, keepdim)
    if not _has_zero(a):
        return g * _keep(F, out, a.shape, dims, keepdim) / a
    # Some factors are 0: the product of the others, each one's own (O(n^2), and written
    # in table ops, so that the second derivative is exact there too).
    flat = dim is None
    x = F.reshape(a, shape=(-1,)) if flat else a
    d = 0 if flat else dim
    grad = None
    for i in range(x.shape[d]):
        hot = F.one_hot(x, dim=d, index=i)
        others = F.prod(F.where(hot, 1.0, x), dim=d, keepdim=True)
        term = F.where(hot, others, 0.0)
        grad = term if grad is None else grad + term
    if flat:
        grad = F.reshape(grad, shape=a.shape)
    return g * grad


PROD = op(
    "prod",
    "ProdBackward",
    lambda xp, a, dim=None, keepdim=False: xp.prod(a, axis=dim, keepdims=keepdim),
    (_prod_grad,),
    save=(0,),
    save_output=True,
    api=api("prod", "input, dim:dim=None, keepdim:bool=False", method=True, group="reduction"),
    taylor=series.prod,
)


def _var_forward(xp, a, dim=None, correction=1, keepdim=False):
    return xp.var(a, axis=dim, ddof=correction, keepdims=keepdim)


def _var_grad(F, g, out, a, dim=None, correction=1, keepdim=False):
    n = _reduced_count(a.shape, dim) - correction
    centred = a - F.mean(a, dim=dim, keepdim=True)
    return _keep(F, g, a.shape, dim, keepdim) * centred * (2.0 / n)


def _std_grad(F, g, out, a, dim=None, correction=1, keepdim=False):
    n = _reduced_count(a.shape, dim) - correction
    centred = a - F.mean(a, dim=dim, keepdim=True)
    return _keep(F, g, a.shape, dim, keepdim) * centred / (_keep(F, out, a.shape, dim, keepdim) * n)


VAR = op(
    "var",
    "VarBackward",
    _var_forward,
    (_var_grad,),
    save=(0,),
    taylor=series.var,
    api=api(
        "var",
        "input, dim:dims=None, *, correction:int=1, keepdim:bool=False",
        method=True,
        group="reduction",
    ),
)
STD = op(
    "std",
    "StdBackward",
    lambda xp, a, dim=None, correction=1, keepdim=False: xp.sqrt(
        _var_forward(xp, a, dim, correction, keepdim)
    ),
    (_std_grad,),
    save=(0,),
    save_output=True,
    taylor=series.std,
    api=api(
        "std",
        "input, dim:dims=None, *, correction:int=1, keepdim:bool=False",
        method=True,
        group="reduction",
    ),
)


def _norm_forward(xp, a, p=2.0, dim=None, keepdim=False):
    m = xp.abs(a)
    if p == 2:
        return xp.sqrt(xp.sum(a * a, axis=dim, keepdims=keepdim))
    if p == 1:
        return xp.sum(m, axis=dim, keepdims=keepdim)
    if p == math.inf:
        return xp.max(m, axis=dim, keepdims=keepdim)
    if p == -math.inf:
        return xp.min(m, axis=dim, keepdims=keepdim)
    if p == 0:
        return xp.sum(m != 0, axis=dim, keepdims=keepdim).astype(a.dtype)
    return xp.sum(m**p, axis=dim, keepdims=keepdim) ** (1.0 / p)


def _norm_grad(F, g, out, a, p=2.0, dim=None, keepdim=False):
    g = _keep(F, g, a.shape, dim, keepdim)
    norm = _keep(F, out, a.shape, dim, keepdim)
    if p == 0:
        return g * 0.0
    if p == 1:
        return g * F.sign(a)
    if p in (math.inf, -math.inf):
        m = F.abs(a)
        mask = F.ties(m, norm)
        return g * F.sign(a) * (mask / F.sum(mask, dim=dim, keepdim=True))
    # The norm of zero has gradient zero (PyTorch masks it), not 0/0.
    zero = F.eq(norm, 0.0)
    safe = F.where(zero, 1.0, norm)
    if p == 2:
        return F.where(zero, 0.0, g * a / safe)
    return F.where(zero, 0.0, g * a * F.abs(a) ** (p - 2) / safe ** (p - 1))


NORM = op(
    "norm",
    "LinalgVectorNormBackward",
    _norm_forward,
    (_norm_grad,),
    save=(0,),
    save_output=True,
    api=api(
        "norm", "input, p:any=2, dim:dims=None, keepdim:bool=False", method=True, group="reduction"
    ),
    taylor=series.norm,
)


def _logsumexp_forward(xp, a, dim, keepdim=False):
    m = xp.max(a, axis=dim, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    out = xp.log(xp.sum(xp.exp(a - m), axis=dim, keepdims=True)) + m
    return out if keepdim else xp.squeeze(out, axis=dim)


LOGSUMEXP = op(
    "logsumexp",
    "LogsumexpBackward",
    _logsumexp_forward,
    (
        lambda F, g, out, a, dim, keepdim=False: (
            _keep(F, g, a.shape, dim, keepdim) * F.exp(a - _keep(F, out, a.shape, dim, keepdim))
        ),
    ),
    save=(0,),
    save_output=True,
    api=api("logsumexp", "input, dim:dims, keepdim:bool=False", method=True, group="reduction"),
    taylor=series.logsumexp,
)


def _softmax_forward(xp, a, dim):
    e = xp.exp(a - xp.max(a, axis=dim, keepdims=True))
    return e / xp.sum(e, axis=dim, keepdims=True)


def _log_softmax_forward(xp, a, dim):
    shifted = a - xp.max(a, axis=dim, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=dim, keepdims=True))


SOFTMAX = op(
    "softmax",
    "SoftmaxBackward",
    _softmax_forward,
    (lambda F, g, out, a, dim: out * (g - F.sum(g * out, dim=(dim,), keepdim=True)),),
    save_output=True,
    api=api("softmax", "input, dim:dim", method=True, group="reduction"),
    taylor=series.softmax,
)
LOG_SOFTMAX = op(
    "log_softmax",
    "LogSoftmaxBackward",
    _log_softmax_forward,
    (lambda F, g, out, a, dim: g - F.exp(out) * F.sum(g, dim=(dim,), keepdim=True),),
    save_output=True,
    api=api("log_softmax", "input, dim:dim", method=True, group="reduction"),
    taylor=series.log_softmax,
)


def _reverse_cumsum(F, g, dim):
    return F.flip(F.cumsum(F.flip(g, dims=(dim,)), dim=dim), dims=(dim,))


CUMSUM = op(
    "cumsum",
    "CumsumBackward",
    lambda xp, a, dim: xp.cumsum(a, axis=dim),
    (lambda F, g, out, a, dim: _reverse_cumsum(F, g, dim),),
    taylor=series.linear_map("cumsum"),
    api=api("cumsum", "input, dim:dim", method=True, group="reduction"),
)


FROM_INDEX = op(
    "from_index",
    "FromIndexBackward",
    lambda xp, a, dim, index: (
        (xp.arange(a.shape[dim]).reshape((-1,) + (1,) * (a.ndim - dim - 1)) >= index)
        & xp.ones(a.shape, dtype=bool)
    ),
    (None,),
    differentiable=False,
)


def _cumprod_grad(F, g, out, a, dim):
    if not _has_zero(a):
        return _reverse_cumsum(F, g * out, dim) / a
    # Some factors are 0 (PyTorch is exact there too): for each i, the sum over j >= i of
    # g_j times the product of a_k, k <= j, k != i. O(n^2), in table ops (so it differentiates).
    grad = None
    for i in range(a.shape[dim]):
        hot = F.one_hot(a, dim=dim, index=i)
        partial = F.cumprod(F.where(hot, 1.0, a), dim=dim)
        total = F.sum(
            F.where(F.from_index(a, dim=dim, index=i), g * partial, 0.0), dim=(dim,), keepdim=True
        )
        term = F.where(hot, total, 0.0)
        grad = term if grad is None else grad + term
    return grad


CUMPROD = op(
    "cumprod",
    "CumprodBackward",
    lambda xp, a, dim: xp.cumprod(a, axis=dim),
    (_cumprod_grad,),
    save=(0,),
    save_output=True,
    api=api("cumprod", "input, dim:dim", method=True, group="reduction"),
    taylor=series.cumprod,
)


# ----- v2 shape and layout (all linear: each maps every Taylor coefficient) --------------------
def _linear_op(name, backward_name, forward, vjp, **kw):
    return op(name, backward_name, forward, (vjp,), taylor=series.linear_map(name), **kw)


def _reshape_op(name, backward_name):
    return _linear_op(
        name,
        backward_name,
        lambda xp, a, shape: xp.reshape(a, shape),
        lambda F, g, out, a, shape: F.reshape(g, shape=a.shape),
    )


SQUEEZE = _reshape_op("squeeze", "SqueezeBackward")
UNSQUEEZE = _reshape_op("unsqueeze", "UnsqueezeBackward")
FLIP = _linear_op(
    "flip",
    "FlipBackward",
    lambda xp, a, dims: xp.flip(a, axis=dims),
    lambda F, g, out, a, dims: F.flip(g, dims=dims),
)
ROLL = _linear_op(
    "roll",
    "RollBackward",
    lambda xp, a, shifts, dims: xp.roll(a, shifts, axis=dims),
    lambda F, g, out, a, shifts, dims: F.roll(
        g, shifts=tuple(-s for s in shifts) if isinstance(shifts, tuple) else -shifts, dims=dims
    ),
)


def _repeat_grad(F, g, out, a, sizes):
    # g has shape (r0*s0, r1*s1, ...): split each dim into (r, s) and sum the copies.
    lead = len(sizes) - len(a.shape)
    padded = (1,) * lead + tuple(a.shape)
    split = []
    for r, s in zip(sizes, padded):
        split += [r, s]
    summed = F.sum(F.reshape(g, shape=tuple(split)), dim=tuple(range(0, 2 * len(sizes), 2)))
    return F.reshape(summed, shape=a.shape)


REPEAT = _linear_op(
    "repeat",
    "RepeatBackward",
    lambda xp, a, sizes: xp.tile(a, sizes),
    _repeat_grad,
)


def _diagonal_forward(xp, a, offset=0, dim1=0, dim2=1):
    return xp.diagonal(a, offset, dim1, dim2).copy()


def _diagonal_backward_forward(xp, g, shape, offset=0, dim1=0, dim2=1):
    out = xp.zeros(shape, dtype=g.dtype)
    view = xp.moveaxis(out, (dim1, dim2), (-2, -1))
    n = g.shape[-1]
    rows = xp.arange(n) + max(-offset, 0)
    cols = xp.arange(n) + max(offset, 0)
    view[..., rows, cols] = g
    return out


DIAGONAL = _linear_op(
    "diagonal",
    "DiagonalBackward",
    _diagonal_forward,
    lambda F, g, out, a, offset=0, dim1=0, dim2=1: F.diagonal_backward(
        g, shape=a.shape, offset=offset, dim1=dim1, dim2=dim2
    ),
)
DIAGONAL_BACKWARD = _linear_op(
    "diagonal_backward",
    "DiagonalBackwardBackward",
    _diagonal_backward_forward,
    lambda F, g, out, a, shape, offset=0, dim1=0, dim2=1: F.diagonal(
        g, offset=offset, dim1=dim1, dim2=dim2
    ),
)
DIAG_EMBED = _linear_op(
    "diag_embed",
    "DiagEmbedBackward",
    _diagonal_backward_forward,
    lambda F, g, out, a, shape, offset=0, dim1=0, dim2=1: F.diagonal(
        g, offset=offset, dim1=dim1, dim2=dim2
    ),
)
TRACE = _linear_op(
    "trace",
    "TraceBackward",
    lambda xp, a: xp.trace(a),
    lambda F, g, out, a: F.diagonal_backward(
        F.expand(g, shape=(min(a.shape),)), shape=a.shape, offset=0, dim1=0, dim2=1
    ),
    api=api("trace", method=True, group="shape"),
)
TRIL = _linear_op(
    "tril",
    "TrilBackward",
    lambda xp, a, diagonal=0: xp.tril(a, diagonal),
    lambda F, g, out, a, diagonal=0: F.tril(g, diagonal=diagonal),
)
TRIU = _linear_op(
    "triu",
    "TriuBackward",
    lambda xp, a, diagonal=0: xp.triu(a, diagonal),
    lambda F, g, out, a, diagonal=0: F.triu(g, diagonal=diagonal),
)
SPLIT = _linear_op(
    "split",
    "SplitBackward",
    lambda xp, a, key: a[key],
    lambda F, g, out, a, key: F.index_backward(g, key=key, shape=a.shape),
)


def _cat_key(dim, sizes, i):
    start = sum(sizes[:i])
    return (slice(None),) * dim + (slice(start, start + sizes[i]),)


CAT = op(
    "cat",
    "CatBackward",
    lambda xp, *arrays, dim, sizes: xp.concatenate(arrays, axis=dim),
    EachInput(
        lambda F, g, out, *inputs, index, dim, sizes: F.index(g, key=_cat_key(dim, sizes, index))
    ),
    taylor=series.cat,
    api=api("cat", "tensors:tensors, dim:dim=0", group="shape"),
)
STACK = op(
    "stack",
    "StackBackward",
    lambda xp, *arrays, dim: xp.stack(arrays, axis=dim),
    EachInput(
        lambda F, g, out, *inputs, index, dim: F.index(g, key=(slice(None),) * dim + (index,))
    ),
    taylor=series.stack,
    api=api("stack", "tensors:tensors, dim:dim=0", group="shape"),
)


# ----- v2 losses (torch.nn.functional; reduction= "mean", "sum" or "none") ----------------------
def _reduce_forward(xp, x, reduction):
    if reduction == "mean":
        return xp.mean(x)
    if reduction == "sum":
        return xp.sum(x)
    return x


def _reduce_grad(g, reduction, shape):
    """The gradient of the elementwise loss: ``g`` spread back through the reduction."""
    if reduction == "mean":
        return g / math.prod(shape)
    return g


def _broadcast_shape(a, b):
    sa = tuple(getattr(a, "shape", ()))
    sb = tuple(getattr(b, "shape", ()))
    return np.broadcast_shapes(sa, sb)


MSE_LOSS = op(
    "mse_loss",
    "MseLossBackward",
    lambda xp, a, b, reduction="mean": _reduce_forward(xp, (a - b) * (a - b), reduction),
    (
        lambda F, g, out, a, b, reduction="mean": (
            _reduce_grad(g, reduction, _broadcast_shape(a, b)) * 2.0 * (a - b)
        ),
        lambda F, g, out, a, b, reduction="mean": (
            _reduce_grad(g, reduction, _broadcast_shape(a, b)) * -2.0 * (a - b)
        ),
    ),
    save=(0, 1),
    taylor=series.mse_loss,
    api=api("mse_loss", "input, target, reduction:str='mean'", group="loss"),
)


def _bce_forward(xp, x, t, reduction="mean"):
    log_x = xp.maximum(xp.log(x), -100.0)
    log_1mx = xp.maximum(xp.log1p(-x), -100.0)
    return _reduce_forward(xp, -(t * log_x + (1.0 - t) * log_1mx), reduction)


BINARY_CROSS_ENTROPY = op(
    "binary_cross_entropy",
    "BinaryCrossEntropyBackward",
    _bce_forward,
    (
        lambda F, g, out, x, t, reduction="mean": (
            _reduce_grad(g, reduction, _broadcast_shape(x, t))
            * (x - t)
            / F.clamp((1.0 - x) * x, min=1e-12, max=None)
        ),
        lambda F, g, out, x, t, reduction="mean": (
            _reduce_grad(g, reduction, _broadcast_shape(x, t))
            * (F.clamp(F.log1p(-x), min=-100.0, max=None) - F.clamp(F.log(x), min=-100.0, max=None))
        ),
    ),
    save=(0, 1),
    api=api(
        "binary_cross_entropy",
        "input, target, weight:any=None, reduction:str='mean'",
        group="loss",
        domain=("prob", "prob"),
    ),
    taylor=series.binary_cross_entropy,
)


def _bce_logits_forward(xp, x, t, reduction="mean"):
    loss = (1.0 - t) * x + xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0.0)
    return _reduce_forward(xp, loss, reduction)


BINARY_CROSS_ENTROPY_WITH_LOGITS = op(
    "binary_cross_entropy_with_logits",
    "BinaryCrossEntropyWithLogitsBackward",
    _bce_logits_forward,
    (
        lambda F, g, out, x, t, reduction="mean": (
            _reduce_grad(g, reduction, _broadcast_shape(x, t)) * (F.sigmoid(x) - t)
        ),
        lambda F, g, out, x, t, reduction="mean": (
            _reduce_grad(g, reduction, _broadcast_shape(x, t)) * -x
        ),
    ),
    save=(0, 1),
    api=api(
        "binary_cross_entropy_with_logits",
        "input, target, weight:any=None, reduction:str='mean', pos_weight:any=None",
        group="loss",
        domain=("any", "prob"),
    ),
    taylor=series.binary_cross_entropy_with_logits,
)


def _nll_parts(xp, x, t, ignore_index):
    """(picked values -x[n, t_n], the keep mask), for x of shape (N, C) or (C,)."""
    idx = t.astype("int64") if hasattr(t, "astype") else int(t)
    keep = idx != ignore_index
    safe = xp.where(keep, idx, 0)
    if x.ndim == 1:
        picked = x[safe]
    else:
        picked = xp.take_along_axis(x, safe[:, None], axis=1)[:, 0]
    return -picked, keep.astype(x.dtype)


def _nll_forward(xp, x, t, ignore_index=-100, reduction="mean"):
    picked, keep = _nll_parts(xp, x, t, ignore_index)
    if reduction == "none":
        return picked * keep
    total = xp.sum(picked * keep)
    if reduction == "sum":
        return total
    return total / xp.sum(keep)


def _nll_backward_forward(xp, g, t, shape, ignore_index=-100, reduction="mean"):
    idx = t.astype("int64") if hasattr(t, "astype") else int(t)
    keep = (idx != ignore_index).astype(g.dtype)
    safe = xp.where(idx != ignore_index, idx, 0)
    weight = -keep * g
    if reduction == "mean":
        weight = weight / xp.sum(keep)
    hit = xp.arange(shape[-1]) == (safe[..., None] if len(shape) > 1 else safe)
    weight = xp.broadcast_to(weight, safe.shape)
    return (hit * (weight[..., None] if len(shape) > 1 else weight)).astype(g.dtype)


NLL_LOSS = op(
    "nll_loss",
    "NllLossBackward",
    _nll_forward,
    (
        lambda F, g, out, x, t, ignore_index=-100, reduction="mean": F.nll_loss_backward(
            g, t, shape=x.shape, ignore_index=ignore_index, reduction=reduction
        ),
        None,
    ),
    save=(1,),
    taylor=series.nll_loss,
    api=api(
        "nll_loss",
        "input, target, weight:any=None, ignore_index:int=-100, reduction:str='mean'",
        group="loss",
    ),
)
NLL_LOSS_BACKWARD = op(
    "nll_loss_backward",
    "NllLossBackwardBackward",
    _nll_backward_forward,
    (
        lambda F, h, out, g, t, shape, ignore_index=-100, reduction="mean": F.nll_loss(
            h, t, ignore_index=ignore_index, reduction=reduction
        ),
        None,
    ),
    save=(1,),
    taylor=series.nll_loss_backward,
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


def _copy_slices_forward(xp, a, b, key, shape):
    out = a.copy()
    out[key] = b
    return out


COPY_SLICES = op(
    "copy_slices",
    "CopySlices",
    _copy_slices_forward,
    (
        # The overwritten elements get no gradient; the value gets theirs.
        lambda F, g, out, a, b, key, shape: F.copy_slices(g, 0.0, key=key, shape=shape),
        lambda F, g, out, a, b, key, shape: F.index(g, key=key),
    ),
    taylor=series.copy_slices,
    doc="a copy of a with b written at key (the language's a[key] = b); shape is a's",
)


# ----- the two namespaces rules see as ``F`` ---------------------------------------------------
# The shapes of forward that are nothing but one call of the array module's function:
# for those the engine may call ``xp.<name>`` itself, without the forward's own frame.
_BARE_CALLS = (lambda xp, a: xp.exp(a), lambda xp, a, b: xp.equal(a, b))


def _bare_call_name(forward) -> str | None:
    """``name`` if ``forward`` is exactly ``lambda xp, a: xp.name(a)`` (or ``(a, b)``)."""
    code = getattr(forward, "__code__", None)
    if code is None or getattr(forward, "__defaults__", None) or forward.__closure__:
        return None
    for template in _BARE_CALLS:
        shape = template.__code__
        if (
            code.co_code == shape.co_code
            and code.co_varnames == shape.co_varnames
            and code.co_consts == shape.co_consts
            and code.co_flags == shape.co_flags
            and code.co_argcount == shape.co_argcount
            and code.co_kwonlyargcount == 0
            and not forward.__kwdefaults__
            and len(code.co_names) == 1
        ):
            return code.co_names[0]
    return None


def direct_forward(entry: OpDef, xp=np):
    """The function of ``xp`` that ``entry.forward(xp, ...)`` merely calls, or None.

    ``SIN``'s forward is ``lambda xp, a: xp.sin(a)``: calling ``np.sin`` directly
    is the same call, one Python frame cheaper (the per-op hot path).
    """
    name = _bare_call_name(entry.forward)
    if name is None:
        return None
    return getattr(xp, name, None)


class RawOps:
    """Every op's forward on raw arrays of one array module: a plain backward's ``F``."""

    def __init__(self, xp) -> None:
        for entry in TABLE.values():
            direct = direct_forward(entry, xp)
            setattr(self, entry.name, direct or partial(entry.forward, xp))


class GraphOps:
    """Every op, recorded on tensors: ``F`` when ``create_graph=True``."""

    def __init__(self) -> None:

        for entry in TABLE.values():
            setattr(self, entry.name, partial(_apply_kw, apply, entry))


def _apply_kw(apply, entry, *args, **params):
    return apply(entry, args, params or None)
