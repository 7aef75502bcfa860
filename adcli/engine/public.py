"""The public ops, each declared once: the table's exposed entries and the composites.

:data:`PUBLIC` maps a public name to a :class:`Public`: its :class:`~adcli.engine.ops.Api`
(PyTorch's parameter names and defaults, method or not) and the function that
runs it. Two sources fill it:

* every entry of :data:`adcli.engine.ops.TABLE` with an ``api``: its function is
  generated (a unary op is ``apply`` on one tensor; an op with parameters binds
  them by name), unless a *front* below checks and normalises its arguments
  first (``@front("clamp")``);
* the composites below (``@composite(api(...))``): ops written with others, whose
  numbers and ``grad_fn`` names are what a PyTorch user sees (``square`` is a
  ``PowBackward``, ``l1_loss`` a ``MeanBackward``, ``cross_entropy`` an
  ``NllLossBackward``...). Each says what it is built from.

The engine package exports every name here, attaches the methods to
:class:`Tensor`, and the language generates its builtins and methods from the
same registry: a new op is its table entry (and its series rule).
"""

from __future__ import annotations

import builtins
import inspect
import math
from collections.abc import Callable

import numpy as np

from adcli.backend import resolve_dtype
from adcli.engine import functional as FN
from adcli.engine import ops as T
from adcli.engine.ops import INPUT_KINDS, REQUIRED, TABLE, Api, OpDef, api
from adcli.engine.tensor import Tensor, apply, check_elements, format_shape, make_result
from adcli.errors import AdcliError
from adcli.records import record


@record(frozen=True, slots=True)
class Public:
    """A public op: how it is offered, the function that runs it, its table entry."""

    api: Api
    fn: Callable
    op: OpDef | None = None  # the table entry (None for a composite)


PUBLIC: dict[str, Public] = {}
_FRONTS: dict[str, Callable] = {}


def front(name: str):
    """The function of the table entry whose public name is ``name`` (it checks its arguments)."""

    def register(fn):
        _FRONTS[name] = fn
        return fn

    return register


def composite(spec: Api):
    """Register the decorated function as the public op ``spec`` (built from other ops)."""

    def register(fn):
        PUBLIC[spec.name] = Public(spec, fn)
        return fn

    return register


# ----- argument helpers ------------------------------------------------------------------------


def _int(value, what) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise FN.wrong_type(what + " must be a whole number, got {got}", value)
    return int(value)


def _dim(x: Tensor, dim) -> int:
    """One dim, in range (negative counts from the end)."""
    return FN.dims(_int(dim, "dim"), x.ndim)[0] if x.ndim else 0


def _dim_list(x: Tensor, dims) -> tuple:
    """Dims in the order given (each in range), for flip, roll, permute-like ops."""
    if dims is None:
        return ()
    if not isinstance(dims, (tuple, list)):
        dims = (dims,)
    n = builtins.max(x.ndim, 1)
    out = []
    for d in dims:
        d = _int(d, "dim")
        if not -n <= d < n:
            raise AdcliError(
                "value",
                f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})",
            )
        out.append(d % n)
    if len(set(out)) != len(out):
        raise AdcliError("value", f"dims {list(dims)} repeat a dim")
    return tuple(out)


def _reduction(reduction) -> str:
    if reduction not in ("mean", "sum", "none"):
        raise AdcliError("value", f'reduction must be "mean", "sum" or "none", got {reduction!r}')
    return reduction


def _same_shape_loss(name, x: Tensor, t: Tensor) -> None:
    try:
        np.broadcast_shapes(x.shape, t.shape)
    except ValueError:
        raise AdcliError(
            "shape",
            f"{name}: the target's shape {format_shape(t.shape)} does not broadcast to the "
            f"input's {format_shape(x.shape)}",
        ) from None


# ----- fronts of table entries -----------------------------------------------------------------

_FRONTS.update(
    {
        "sum": FN.sum,
        "mean": FN.mean,
        "reshape": FN.reshape,
        "permute": FN.permute,
        "transpose": FN.transpose,
        "expand": FN.expand,
        "where": FN.where,
        "clone": FN.clone,
        "mm": FN.mm,
        "dot": FN.dot,
    }
)


@front("clamp")
def clamp(input, min=None, max=None):
    if min is None and max is None:
        raise AdcliError("value", "clamp: at least one of 'min' or 'max' must not be None")
    x = FN.as_tensor(input)
    lo = None if min is None else float(_scalar(min, "min"))
    hi = None if max is None else float(_scalar(max, "max"))
    return apply(T.CLAMP, (x,), {"min": lo, "max": hi})


def _scalar(value, what):
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise AdcliError("type", f"{what} must be a number (a tensor min/max is not supported)")
        return value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FN.wrong_type(what + " must be a number, got {got}", value)
    return value


@front("gelu")
def gelu(input, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise AdcliError("value", f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return apply(T.GELU, (FN.as_tensor(input),), {"approximate": approximate})


@front("trace")
def trace(input):
    x = FN.as_tensor(input)
    if x.ndim != 2:
        raise AdcliError("shape", f"trace: expected a matrix, but got a {x.ndim}-d tensor")
    return apply(T.TRACE, (x,))


# ----- composites: elementwise -----------------------------------------------------------------


@composite(api("square", method=True, composite="pow(input, 2): PowBackward, as PyTorch"))
def square(input):
    return FN.pow(FN.as_tensor(input), 2)


@composite(api("deg2rad", method=True, composite="input * pi/180: MulBackward, as PyTorch"))
def deg2rad(input):
    return FN.as_tensor(input) * (math.pi / 180.0)


@composite(api("rad2deg", method=True, composite="input * 180/pi: MulBackward, as PyTorch"))
def rad2deg(input):
    return FN.as_tensor(input) * (180.0 / math.pi)


@composite(api("pow", "input, exponent:operand", method=True, group="math"))
def pow(input, exponent):
    if not isinstance(input, Tensor) and not isinstance(exponent, Tensor):
        input = FN.as_tensor(input)
    return FN.pow(input, exponent)


@composite(api("matmul", "input, other", method=True, group="math", composite="dot, mv, mm, bmm"))
def matmul(input, other):
    return FN.matmul(input, other)


@composite(api("t", method=True, group="shape", composite="transpose of a <= 2-d tensor"))
def t(input):
    return FN.transpose(input)


# ----- composites: reductions ------------------------------------------------------------------


def _extreme(largest: bool):
    full, by_dim, arg, both = (
        (T.MAX, T.MAX_DIM, T.ARGMAX, T.MAXIMUM)
        if largest
        else (T.MIN, T.MIN_DIM, T.ARGMIN, T.MINIMUM)
    )

    def f(input, dim=None, keepdim=False):
        x = FN.as_tensor(input)
        if isinstance(dim, Tensor):  # max(a, b): the elementwise maximum, as torch.max
            return FN.binary(both, x, dim)
        if x.numel() == 0:
            raise AdcliError("value", "max(): expected a non-empty tensor")
        if dim is None:
            return apply(full, (x,))
        d = _dim(x, dim)
        if x.ndim == 0:
            return (x.clone(), make_result(np.asarray(0, dtype=np.int64), x._backend))
        params = {"dim": d, "keepdim": bool(keepdim)}
        return (apply(by_dim, (x,), params), apply(arg, (x,), params))

    return f


_MAX_DOC = "max(x): ties share the gradient; max(x, dim): (values, indices), to the index"
PUBLIC["max"] = Public(
    api(
        "max",
        "input, dim:any=None, keepdim:bool=False",
        method=True,
        group="reduction",
        doc=_MAX_DOC,
    ),
    _extreme(True),
    T.MAX,
)
PUBLIC["min"] = Public(
    api(
        "min",
        "input, dim:any=None, keepdim:bool=False",
        method=True,
        group="reduction",
        doc=_MAX_DOC,
    ),
    _extreme(False),
    T.MIN,
)


def _amax(entry):
    def f(input, dim=(), keepdim=False):
        x = FN.as_tensor(input)
        dims = FN.dims(dim, x.ndim) if dim not in ((), None, []) else None
        if x.numel() == 0:
            raise AdcliError("value", f"{entry.name}(): expected a non-empty tensor")
        if dims is None and not keepdim:
            return apply(entry, (x,))
        return apply(entry, (x,), {"dim": dims, "keepdim": bool(keepdim)})

    return f


for _entry in (T.AMAX, T.AMIN):
    PUBLIC[_entry.name] = Public(
        api(_entry.name, "input, dim:dims=(), keepdim:bool=False", method=True, group="reduction"),
        _amax(_entry),
        _entry,
    )


def _arg(entry):
    def f(input, dim=None, keepdim=False):
        x = FN.as_tensor(input)
        if x.numel() == 0:
            raise AdcliError("value", f"{entry.name}(): expected a non-empty tensor")
        params = {"dim": None if dim is None else _dim(x, dim), "keepdim": bool(keepdim)}
        if x.ndim == 0:
            params["dim"] = None
        return apply(entry, (x,), params)

    return f


for _entry in (T.ARGMAX, T.ARGMIN):
    PUBLIC[_entry.name] = Public(
        api(_entry.name, "input, dim:dim=None, keepdim:bool=False", method=True, group="reduction"),
        _arg(_entry),
        _entry,
    )


def _all_any(entry):
    def f(input, dim=None, keepdim=False):
        x = FN.as_tensor(input)
        dims = FN.dims(dim, x.ndim)
        return apply(entry, (x,), {"dim": dims, "keepdim": bool(keepdim)})

    return f


for _entry in (T.ALL, T.ANY):
    PUBLIC[_entry.name] = Public(
        api(
            _entry.name, "input, dim:dims=None, keepdim:bool=False", method=True, group="reduction"
        ),
        _all_any(_entry),
        _entry,
    )


@front("prod")
def prod(input, dim=None, keepdim=False):
    x = FN.as_tensor(input)
    if dim is None:
        return apply(T.PROD, (x,), {"dim": None, "keepdim": False})
    return apply(T.PROD, (x,), {"dim": _dim(x, dim), "keepdim": bool(keepdim)})


def _var_std(entry):
    def f(input, dim=None, *, correction=1, keepdim=False):
        x = FN.as_tensor(input)
        dims = FN.dims(dim, x.ndim)
        return apply(
            entry,
            (x,),
            {"dim": dims, "correction": _int(correction, "correction"), "keepdim": bool(keepdim)},
        )

    return f


_front_var = front("var")(_var_std(T.VAR))
_front_std = front("std")(_var_std(T.STD))


@front("norm")
def norm(input, p=2, dim=None, keepdim=False):
    x = FN.as_tensor(input)
    if p == "fro" or p is None:
        p = 2
    if isinstance(p, str):
        if p in ("inf", "-inf"):
            p = float(p)
        else:
            raise AdcliError("value", f"norm: p must be a number, 'fro' or inf, got {p!r}")
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise FN.wrong_type("norm: p must be a number, got {got}", p)
    return apply(
        T.NORM, (x,), {"p": float(p), "dim": FN.dims(dim, x.ndim), "keepdim": bool(keepdim)}
    )


@front("logsumexp")
def logsumexp(input, dim, keepdim=False):
    x = FN.as_tensor(input)
    dims = FN.dims(dim, x.ndim)
    if dims is None:
        dims = tuple(range(x.ndim))
    return apply(T.LOGSUMEXP, (x,), {"dim": dims, "keepdim": bool(keepdim)})


def _along(entry):
    def f(input, dim):
        x = FN.as_tensor(input)
        if x.ndim == 0:
            return apply(entry, (FN.reshape(x, 1),), {"dim": 0}).reshape(())
        return apply(entry, (x,), {"dim": _dim(x, dim)})

    return f


for _entry in (T.SOFTMAX, T.LOG_SOFTMAX, T.CUMSUM, T.CUMPROD):
    front(_entry.name)(_along(_entry))


# ----- composites and fronts: shapes -------------------------------------------------------------


def _sequence(tensors, what) -> list:
    if isinstance(tensors, Tensor):
        raise AdcliError("type", f"{what}() takes a sequence of tensors (a tuple or a list)")
    if not isinstance(tensors, (tuple, list)) or not tensors:
        raise AdcliError("type", f"{what}() expects a non-empty sequence of tensors")
    out = [FN.as_tensor(t) for t in tensors]
    for t in out[1:]:
        FN.same_device(out[0], t, what)
    return out


@front("cat")
def cat(tensors, dim=0):
    xs = _sequence(tensors, "cat")
    ref = next((x for x in xs if x.ndim > 0), None)
    if ref is None:
        raise AdcliError("shape", "cat: zero-dimensional tensors cannot be concatenated")
    d = _dim(ref, dim)
    for i, x in enumerate(xs):
        if x.ndim != ref.ndim or any(
            a != b for j, (a, b) in enumerate(zip(x.shape, ref.shape)) if j != d
        ):
            raise AdcliError(
                "shape",
                f"cat: sizes of tensors must match except in dimension {d} "
                f"(tensor 0 is {format_shape(ref.shape)}, tensor {i} is {format_shape(x.shape)})",
            )
    sizes = tuple(x.shape[d] for x in xs)
    out_shape = ref.shape[:d] + (builtins.sum(sizes),) + ref.shape[d + 1 :]
    check_elements(out_shape, "the result of cat")
    return apply(T.CAT, tuple(xs), {"dim": d, "sizes": sizes})


@front("stack")
def stack(tensors, dim=0):
    xs = _sequence(tensors, "stack")
    for i, x in enumerate(xs):
        if x.shape != xs[0].shape:
            raise AdcliError(
                "shape",
                f"stack expects each tensor to be equal size, but got {format_shape(xs[0].shape)} "
                f"at entry 0 and {format_shape(x.shape)} at entry {i}",
            )
    n = xs[0].ndim + 1
    d = _int(dim, "dim")
    if not -n <= d < n:
        raise AdcliError(
            "value",
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})",
        )
    check_elements((len(xs),) + xs[0].shape, "the result of stack")
    return apply(T.STACK, tuple(xs), {"dim": d % n})


def _pieces(x: Tensor, d: int, sizes) -> tuple:
    out = []
    start = 0
    for size in sizes:
        key = (slice(None),) * d + (slice(start, start + size),)
        out.append(apply(T.SPLIT, (x,), {"key": key}))
        start += size
    return tuple(out)


@composite(
    api(
        "split",
        "tensor, split_size_or_sections:any, dim:dim=0",
        method=True,
        group="shape",
        composite="pieces are SplitBackward",
    )
)
def split(tensor, split_size_or_sections, dim=0):
    x = FN.as_tensor(tensor)
    if x.ndim == 0:
        raise AdcliError("shape", "split: a 0-d tensor cannot be split")
    d = _dim(x, dim)
    n = x.shape[d]
    if isinstance(split_size_or_sections, (tuple, list)):
        sizes = [_int(s, "each section") for s in split_size_or_sections]
        if builtins.sum(sizes) != n or builtins.min(sizes, default=0) < 0:
            raise AdcliError(
                "value",
                f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size "
                f"at dimension {d}), but got split_sizes={sizes}",
            )
    else:
        size = _int(split_size_or_sections, "split_size")
        if size <= 0:
            raise AdcliError("value", f"split_size must be positive, got {size}")
        sizes = [builtins.min(size, n - s) for s in range(0, n, size)] or [0]
    return _pieces(x, d, sizes)


@composite(
    api(
        "chunk",
        "input, chunks:int, dim:dim=0",
        method=True,
        group="shape",
        composite="split into ceil(size / chunks)-sized pieces",
    )
)
def chunk(input, chunks, dim=0):
    x = FN.as_tensor(input)
    chunks = _int(chunks, "chunks")
    if chunks <= 0:
        raise AdcliError("value", f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = _dim(x, dim)
    size = builtins.max(1, -(-x.shape[d] // chunks))
    return split(x, size, d)


@composite(
    api("squeeze", "input, dim:dims=None", method=True, group="shape", composite="SqueezeBackward")
)
def squeeze(input, dim=None):
    x = FN.as_tensor(input)
    dims = FN.dims(dim, x.ndim) if dim is not None else tuple(range(x.ndim))
    dims = dims or ()
    shape = tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1))
    return apply(T.SQUEEZE, (x,), {"shape": shape})


@composite(
    api("unsqueeze", "input, dim:dim", method=True, group="shape", composite="UnsqueezeBackward")
)
def unsqueeze(input, dim):
    x = FN.as_tensor(input)
    n = x.ndim + 1
    d = _int(dim, "dim")
    if not -n <= d < n:
        raise AdcliError(
            "value",
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})",
        )
    d %= n
    return apply(T.UNSQUEEZE, (x,), {"shape": x.shape[:d] + (1,) + x.shape[d:]})


@composite(
    api(
        "flatten",
        "input, start_dim:dim=0, end_dim:dim=-1",
        method=True,
        group="shape",
        composite="reshape: ViewBackward",
    )
)
def flatten(input, start_dim=0, end_dim=-1):
    x = FN.as_tensor(input)
    if x.ndim == 0:
        return FN.reshape(x, 1)
    s, e = _dim(x, start_dim), _dim(x, end_dim)
    if s > e:
        raise AdcliError("value", "flatten() has invalid args: start_dim cannot come after end_dim")
    shape = x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :]
    return FN.reshape(x, *shape)


@composite(
    api(
        "view", "input, *shape:shape", method=True, group="shape", composite="reshape: ViewBackward"
    )
)
def view(input, *shape):
    return FN.reshape(input, *shape)


@composite(api("flip", "input, dims:any", method=True, group="shape", composite="FlipBackward"))
def flip(input, dims):
    x = FN.as_tensor(input)
    d = _dim_list(x, dims)
    if not d or x.ndim == 0:
        return FN.clone(x)
    return apply(T.FLIP, (x,), {"dims": d})


@composite(api("fliplr", method=True, group="shape", composite="flip(input, 1)"))
def fliplr(input):
    x = FN.as_tensor(input)
    if x.ndim < 2:
        raise AdcliError("shape", "fliplr: input must be at least 2-dimensional")
    return flip(x, (1,))


@composite(api("flipud", method=True, group="shape", composite="flip(input, 0)"))
def flipud(input):
    x = FN.as_tensor(input)
    if x.ndim < 1:
        raise AdcliError("shape", "flipud: input must be at least 1-dimensional")
    return flip(x, (0,))


@composite(
    api(
        "rot90",
        "input, k:int=1, dims:any=(0, 1)",
        method=True,
        group="shape",
        composite="flip and transpose, as PyTorch",
    )
)
def rot90(input, k=1, dims=(0, 1)):
    x = FN.as_tensor(input)
    d = _dim_list(x, dims)
    if len(d) != 2 or x.ndim < 2:
        raise AdcliError("value", "rot90: expected two different dims of a tensor of >= 2 dims")
    k = _int(k, "k") % 4
    d0, d1 = d
    if k == 0:
        return FN.clone(x)
    if k == 1:
        return FN.transpose(flip(x, (d1,)), d0, d1)
    if k == 2:
        return flip(x, (d0, d1))
    return flip(FN.transpose(x, d0, d1), (d1,))


@composite(
    api(
        "roll",
        "input, shifts:any, dims:any=None",
        method=True,
        group="shape",
        composite="RollBackward",
    )
)
def roll(input, shifts, dims=None):
    x = FN.as_tensor(input)
    if dims is None:  # over the flattened tensor
        return apply(T.ROLL, (x,), {"shifts": _int(shifts, "shifts"), "dims": None})
    d = _dim_list(x, dims)
    s = shifts if isinstance(shifts, (tuple, list)) else (shifts,)
    s = tuple(_int(v, "shifts") for v in s)
    if len(s) != len(d):
        raise AdcliError(
            "value", f"roll: shifts and dimensions must align (got {len(s)} and {len(d)})"
        )
    return apply(T.ROLL, (x,), {"shifts": s, "dims": d})


def _sizes(values, what) -> tuple:
    if len(values) == 1 and isinstance(values[0], (tuple, list)):
        values = tuple(values[0])
    return tuple(_int(v, what) for v in values)


@composite(
    api("repeat", "input, *repeats:shape", method=True, group="shape", composite="RepeatBackward")
)
def repeat(input, *repeats):
    x = FN.as_tensor(input)
    sizes = _sizes(repeats, "repeats")
    if len(sizes) < x.ndim:
        raise AdcliError(
            "value",
            "Number of dimensions of repeat dims can not be smaller than number of dimensions "
            "of tensor",
        )
    if builtins.min(sizes, default=0) < 0:
        raise AdcliError("value", f"repeat: sizes cannot be negative ({list(sizes)})")
    padded = (1,) * (len(sizes) - x.ndim) + x.shape
    check_elements(tuple(a * b for a, b in zip(padded, sizes)), "the result of repeat")
    return apply(T.REPEAT, (x,), {"sizes": sizes})


@composite(
    api("tile", "input, dims:shape", method=True, group="shape", composite="repeat: RepeatBackward")
)
def tile(input, dims):
    x = FN.as_tensor(input)
    sizes = _sizes((dims,), "dims")
    sizes = (1,) * (x.ndim - len(sizes)) + sizes
    return repeat(x, sizes)


@composite(
    api(
        "broadcast_to",
        "input, size:shape",
        method=True,
        group="shape",
        composite="expand: ExpandBackward",
    )
)
def broadcast_to(input, size):
    return FN.expand(input, _sizes((size,), "size"))


@composite(
    api(
        "diagonal",
        "input, offset:int=0, dim1:dim=0, dim2:dim=1",
        method=True,
        group="shape",
        composite="DiagonalBackward",
    )
)
def diagonal(input, offset=0, dim1=0, dim2=1):
    x = FN.as_tensor(input)
    if x.ndim < 2:
        raise AdcliError("shape", f"diagonal: expected a tensor of at least 2 dims, got {x.ndim}")
    d1, d2 = _dim(x, dim1), _dim(x, dim2)
    if d1 == d2:
        raise AdcliError("value", f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return apply(T.DIAGONAL, (x,), {"offset": _int(offset, "offset"), "dim1": d1, "dim2": d2})


@composite(
    api(
        "diag",
        "input, diagonal:int=0",
        method=True,
        group="shape",
        composite="a matrix: diagonal(); a vector: DiagEmbedBackward",
    )
)
def diag(input, diagonal=0):
    x = FN.as_tensor(input)
    k = _int(diagonal, "diagonal")
    if x.ndim == 2:
        return globals()["diagonal"](x, k)
    if x.ndim != 1:
        raise AdcliError("shape", f"diag: expected a 1-d or 2-d tensor, got {x.ndim}-d")
    n = x.shape[0] + builtins.abs(k)
    check_elements((n, n), "the result of diag")
    return apply(T.DIAG_EMBED, (x,), {"shape": (n, n), "offset": k, "dim1": 0, "dim2": 1})


def _triangle(entry):
    def f(input, diagonal=0):
        x = FN.as_tensor(input)
        if x.ndim < 2:
            raise AdcliError("shape", f"{entry.name}: input tensor must have at least 2 dimensions")
        return apply(entry, (x,), {"diagonal": _int(diagonal, "diagonal")})

    return f


for _entry in (T.TRIL, T.TRIU):
    PUBLIC[_entry.name] = Public(
        api(_entry.name, "input, diagonal:int=0", method=True, group="shape"),
        _triangle(_entry),
        _entry,
    )


@composite(
    api(
        "outer",
        "input, vec2",
        method=True,
        group="shape",
        composite="input[:, None] * vec2: MulBackward, as PyTorch",
    )
)
def outer(input, vec2):
    u, v = FN.as_tensor(input), FN.as_tensor(vec2)
    if u.ndim != 1 or v.ndim != 1:
        raise AdcliError("shape", "outer: both arguments must be 1-d tensors")
    return FN.reshape(u, u.shape[0], 1) * FN.reshape(v, 1, v.shape[0])


# ----- creation like another tensor --------------------------------------------------------------


def _like_dtype(x, dtype):
    return x.dtype if dtype is None else dtype


@composite(
    api("zeros_like", "input, *, dtype:str=None, requires_grad:bool=False", group="creation")
)
def zeros_like(input, *, dtype=None, requires_grad=False):
    x = FN.as_tensor(input)
    return FN.zeros(
        *x.shape, dtype=_like_dtype(x, dtype), device=x._backend, requires_grad=requires_grad
    )


@composite(api("ones_like", "input, *, dtype:str=None, requires_grad:bool=False", group="creation"))
def ones_like(input, *, dtype=None, requires_grad=False):
    x = FN.as_tensor(input)
    return FN.ones(
        *x.shape, dtype=_like_dtype(x, dtype), device=x._backend, requires_grad=requires_grad
    )


@composite(
    api(
        "full_like",
        "input, fill_value:number, *, dtype:str=None, requires_grad:bool=False",
        group="creation",
    )
)
def full_like(input, fill_value, *, dtype=None, requires_grad=False):
    x = FN.as_tensor(input)
    return FN.full(
        x.shape,
        fill_value,
        dtype=_like_dtype(x, dtype),
        device=x._backend,
        requires_grad=requires_grad,
    )


@composite(
    api(
        "randn_like",
        "input, *, dtype:str=None, requires_grad:bool=False, generator:any=None",
        group="creation",
    )
)
def randn_like(input, *, dtype=None, requires_grad=False, generator=None):
    x = FN.as_tensor(input)
    return FN.randn(
        *x.shape,
        generator=generator,
        dtype=_like_dtype(x, dtype),
        device=x._backend,
        requires_grad=requires_grad,
    )


# ----- losses ------------------------------------------------------------------------------------


def _loss_inputs(name, input, target):
    x, t = FN.as_tensor(input), FN.as_tensor(target)
    FN.same_device(x, t, name)
    _same_shape_loss(name, x, t)
    return x, t


@front("mse_loss")
def mse_loss(input, target, reduction="mean"):
    x, t = _loss_inputs("mse_loss", input, target)
    return apply(T.MSE_LOSS, (x, t), {"reduction": _reduction(reduction)})


@composite(
    api(
        "l1_loss",
        "input, target, reduction:str='mean'",
        group="loss",
        composite="abs(input - target) reduced: MeanBackward (PyTorch's l1_loss is composite too)",
    )
)
def l1_loss(input, target, reduction="mean"):
    x, t = _loss_inputs("l1_loss", input, target)
    loss = FN.abs(x - t)
    reduction = _reduction(reduction)
    if reduction == "mean":
        return FN.mean(loss)
    if reduction == "sum":
        return FN.sum(loss)
    return loss


def _weighted(entry, x, t, weight, reduction):
    if weight is None:
        return apply(entry, (x, t), {"reduction": reduction})
    loss = apply(entry, (x, t), {"reduction": "none"}) * FN.as_tensor(weight)
    if reduction == "mean":
        return FN.mean(loss)
    if reduction == "sum":
        return FN.sum(loss)
    return loss


@front("binary_cross_entropy")
def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    x, t = _loss_inputs("binary_cross_entropy", input, target)
    if x.shape != t.shape:
        raise AdcliError(
            "shape",
            f"Using a target size ({format_shape(t.shape)}) that is different to the input size "
            f"({format_shape(x.shape)}) is deprecated. Please ensure they have the same size.",
        )
    data = x.numpy()
    if ((data < 0) | (data > 1)).any():
        raise AdcliError("value", "all elements of input should be between 0 and 1")
    return _weighted(T.BINARY_CROSS_ENTROPY, x, t, weight, _reduction(reduction))


@front("binary_cross_entropy_with_logits")
def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    x, t = _loss_inputs("binary_cross_entropy_with_logits", input, target)
    if pos_weight is not None:
        raise AdcliError("value", "binary_cross_entropy_with_logits: pos_weight is not supported")
    return _weighted(T.BINARY_CROSS_ENTROPY_WITH_LOGITS, x, t, weight, _reduction(reduction))


def _class_targets(name, x: Tensor, t: Tensor, ignore_index) -> Tensor:
    """Class indices: int64, or floats holding whole numbers (until int64 tensors are common)."""
    want = () if x.ndim == 1 else (x.shape[0],)
    if x.ndim not in (1, 2) or t.shape != want:
        raise AdcliError(
            "shape",
            f"{name}: expected an input of shape (C,) or (N, C) and class indices of shape "
            f"{format_shape(want)}, got {format_shape(x.shape)} and {format_shape(t.shape)}",
        )
    data = t.numpy()
    if data.dtype.kind == "f" and not np.all(np.floor(data) == data):
        raise AdcliError("value", f"{name}: class indices must be whole numbers")
    idx = data.astype(np.int64)
    classes = x.shape[-1]
    bad = (idx != ignore_index) & ((idx < 0) | (idx >= classes))
    if bad.any():
        raise AdcliError(
            "value",
            f"{name}: Target {int(idx[bad].reshape(-1)[0])} is out of bounds (classes: {classes})",
        )
    return t


@front("nll_loss")
def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    x, t = FN.as_tensor(input), FN.as_tensor(target)
    if weight is not None:
        raise AdcliError("value", "nll_loss: weight= is not supported")
    ignore_index = _int(ignore_index, "ignore_index")
    _class_targets("nll_loss", x, t, ignore_index)
    return apply(
        T.NLL_LOSS, (x, t), {"ignore_index": ignore_index, "reduction": _reduction(reduction)}
    )


@composite(
    api(
        "cross_entropy",
        "input, target, weight:any=None, ignore_index:int=-100, reduction:str='mean', "
        "label_smoothing:number=0.0",
        group="loss",
        composite="nll_loss(log_softmax(input)): NllLossBackward, as PyTorch",
    )
)
def cross_entropy(
    input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0
):
    x, t = FN.as_tensor(input), FN.as_tensor(target)
    if weight is not None or label_smoothing:
        raise AdcliError("value", "cross_entropy: weight= and label_smoothing= are not supported")
    reduction = _reduction(reduction)
    class_dim = 0 if x.ndim == 1 else 1
    logp = apply(T.LOG_SOFTMAX, (x,), {"dim": class_dim})
    if t.shape == x.shape and t.dtype.startswith("float"):  # class probabilities
        loss = -FN.sum(logp * t, dim=class_dim)
        if reduction == "mean":
            return FN.sum(loss) / (x.shape[0] if x.ndim > 1 else 1)
        return FN.sum(loss) if reduction == "sum" else loss
    return nll_loss(logp, t, ignore_index=ignore_index, reduction=reduction)


# ----- tensor utilities (methods) -----------------------------------------------------------------


@composite(api("size", "input, dim:dim=None", function=False, method=True, group="utility"))
def size(input, dim=None):
    x = FN.as_tensor(input)
    if dim is None:
        return tuple(x.shape)
    return x.shape[_dim(x, dim)]


@composite(api("numel", method=True, group="utility"))
def numel(input):
    return FN.as_tensor(input).numel()


@composite(api("dim", function=False, method=True, group="utility"))
def dim(input):
    return FN.as_tensor(input).ndim


def _to_dtype(name):
    def f(input):
        x = FN.as_tensor(input)
        target = resolve_dtype(name) if name in ("float32", "float64") else np.dtype(name)
        if x._data.dtype == target:
            return x
        if target.kind == "f" and x._data.dtype.kind == "f":
            return FN.cast(x, name)
        # to an integer or bool dtype: no gradient flows (as PyTorch)
        return make_result(x._data.astype(target), x._backend)

    return f


for _method, _dtype in (
    ("double", "float64"),
    ("float", "float32"),
    ("long", "int64"),
    ("bool", "bool"),
):
    PUBLIC[_method] = Public(
        api(_method, function=False, method=True, group="utility", doc=f"a copy as {_dtype}"),
        _to_dtype(_dtype),
    )


@composite(api("tolist", function=False, method=True, group="utility"))
def tolist(input):
    return FN.as_tensor(input).tolist()


@composite(api("len", group="utility", doc="the size of the first dimension"))
def length(input):
    x = FN.as_tensor(input)
    if x.ndim == 0:
        raise AdcliError("type", "len() of a 0-d tensor")
    return x.shape[0]


# ----- the table's own entries --------------------------------------------------------------------


def _generic(entry: OpDef) -> Callable:
    """The public function of a table entry with no front: bind by name, then apply."""
    spec = entry.api
    params = spec.params
    if len(params) == 1 and params[0].kind == "tensor":
        return FN.unary(entry, floating=not spec.keeps_integers)
    if len(params) == 2 and all(p.kind in INPUT_KINDS for p in params):

        def binary(input, other):
            return FN.binary(entry, input, other)

        binary.__name__ = spec.name
        return binary
    signature = signature_of(spec)

    def general(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise AdcliError("type", f"{spec.name}(): {exc}") from None
        bound.apply_defaults()
        inputs = []
        values = {}
        for p in params:
            v = bound.arguments[p.name]
            if p.kind == "tensor":
                inputs.append(FN.as_tensor(v))
            elif p.kind == "operand":
                inputs.append(FN.as_operand(v))
            else:
                values[p.name] = v
        return apply(entry, tuple(inputs), values or None)

    general.__name__ = spec.name
    general.__signature__ = signature
    return general


def signature_of(spec: Api) -> inspect.Signature:
    """The Python signature that ``spec`` describes."""
    out = []
    for p in spec.params:
        if p.variadic:
            kind = inspect.Parameter.VAR_POSITIONAL
        elif p.keyword_only:
            kind = inspect.Parameter.KEYWORD_ONLY
        else:
            kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        default = inspect.Parameter.empty if p.default is REQUIRED or p.variadic else p.default
        out.append(inspect.Parameter(p.name, kind, default=default))
    return inspect.Signature(out)


def _build() -> None:
    for entry in TABLE.values():
        spec = entry.api
        if spec is None or spec.name in PUBLIC:
            continue
        fn = _FRONTS.get(spec.name) or _generic(entry)
        PUBLIC[spec.name] = Public(spec, fn, entry)


def _attach_methods() -> None:
    for public in PUBLIC.values():
        name = public.api.method_name
        if name is None or name in Tensor.__dict__:  # the tensor's own (numel, tolist, T...)
            continue
        setattr(Tensor, name, public.fn)


_build()
_attach_methods()
