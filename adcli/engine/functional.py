"""The engine's public ops: argument checking and normalising, then the table.

Everything here either creates a tensor or calls :func:`apply` with an entry
of :mod:`adcli.engine.ops`; composite ops (``tan``, ``softmax``...) are written
with those and need no derivative rule of their own. Python operators on
:class:`Tensor` are attached at the bottom.
"""

from __future__ import annotations

import builtins
import operator
from math import prod

import numpy as np

from adcli.backend import CPU, Backend, get_backend, resolve_dtype, to_numpy
from adcli.engine import ops as T
from adcli.engine.promotion import (
    FLOAT32,
    FLOAT64,
    get_default_dtype,
    result_type,
    true_divide_type,
)
from adcli.engine.tensor import (
    STATE,
    Tensor,
    apply,
    apply_binary,
    apply_number,
    apply_unary,
    check_elements,
    device_mismatch,
    format_shape,
    make_result,
    mark_modified,
    writeable,
)
from adcli.errors import AdcliError

_NUMBER = (int, float)
#: NumPy's (and so every backend's) most dimensions and largest size of one dimension
_MAX_DIMS = 64
_MAX_SIZE = 2**62


# ----- creation ---------------------------------------------------------------------------------


#: PyTorch's words for ``requires_grad=True`` on an int64 or bool tensor
FLOAT_ONLY_GRAD = "only Tensors of floating point dtype can require gradients"


def _finish(array, backend: Backend, requires_grad: bool) -> Tensor:
    t = make_result(array, backend)
    if requires_grad:
        if array.dtype.kind != "f":
            raise AdcliError("type", FLOAT_ONLY_GRAD)
        t._requires_grad = True
    return t


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    out = []
    for s in shape:
        if (
            isinstance(s, bool)
            or not isinstance(s, (int, np.integer))
            and not (isinstance(s, float) and s.is_integer())
        ):
            raise AdcliError("type", f"a shape is made of whole numbers, got {s!r}")
        s = int(s)
        if s < 0:
            raise AdcliError("value", f"a shape cannot have a negative size ({s})")
        if s >= _MAX_SIZE:  # more than any array could index, even with no elements
            raise AdcliError(
                "limit",
                f"a size of {s:,} in shape {format_shape(shape)} is too large",
                details={"limit": "max_elements", "requested": s},
            )
        out.append(s)
    if len(out) > _MAX_DIMS:
        raise AdcliError("limit", f"a tensor has at most {_MAX_DIMS} dimensions, not {len(out)}")
    return tuple(out)


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor from nested lists of numbers (or a number, or a tensor: copied)."""
    backend = get_backend(device)
    np_dtype = resolve_dtype(dtype)
    if isinstance(data, Tensor):
        host = to_numpy(data._data).astype(np_dtype)
    else:
        try:
            host = np.asarray(data, dtype=np_dtype)
        except (ValueError, TypeError) as exc:
            if "maximum number of dimension" in str(exc):
                raise AdcliError(
                    "limit", f"tensor(): a tensor has at most {_MAX_DIMS} dimensions"
                ) from None
            raise AdcliError(
                "value", f"tensor(): the data is not a regular grid of numbers ({exc})"
            ) from None
    check_elements(host.shape)
    array = host.copy() if backend is CPU else backend.asarray(host)
    return _finish(array, backend, requires_grad)


def _filled(kind, shape, value, dtype, device, requires_grad) -> Tensor:
    shape = _shape_arg(shape)
    check_elements(shape)
    backend = get_backend(device)
    np_dtype = resolve_dtype(dtype)
    xp = backend.xp
    with backend.scope():
        if kind == "zeros":
            array = xp.zeros(shape, np_dtype)
        elif kind == "ones":
            array = xp.ones(shape, np_dtype)
        else:
            array = xp.full(shape, value, np_dtype)
    return _finish(array, backend, requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _filled("zeros", shape, 0, dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _filled("ones", shape, 1, dtype, device, requires_grad)


def full(shape, value, dtype=None, device=None, requires_grad=False) -> Tensor:
    if isinstance(shape, _NUMBER):
        shape = (shape,)
    if isinstance(value, Tensor):
        value = value.item()
    return _filled("full", (tuple(shape),), value, dtype, device, requires_grad)


def zeros_like(x: Tensor, requires_grad=False) -> Tensor:
    return zeros(*x.shape, dtype=x.dtype, device=x._backend, requires_grad=requires_grad)


def ones_like(x: Tensor, requires_grad=False) -> Tensor:
    return ones(*x.shape, dtype=x.dtype, device=x._backend, requires_grad=requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    n, m = _shape_arg((n, n if m is None else m))
    check_elements((n, m))
    return _host_made(np.eye(n, m, dtype=resolve_dtype(dtype)), device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    if step == 0:
        raise AdcliError("value", "arange(): step must be nonzero")
    count = builtins.max(0, int(np.ceil((end - start) / step)))
    check_elements((count,))
    np_dtype = resolve_dtype(dtype)
    if np_dtype.kind != "f":
        return _host_made(np.arange(start, end, step, dtype=np_dtype), device, requires_grad)
    # As PyTorch: each value start + i * step in double precision, then stored in
    # the dtype (NumPy's float32 arange accumulates in float32).
    values = float(start) + np.arange(count, dtype=np.float64) * float(step)
    return _host_made(values.astype(np_dtype, copy=False), device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False) -> Tensor:
    (steps,) = _shape_arg((steps,))
    check_elements((steps,))
    np_dtype = resolve_dtype(dtype)
    if np_dtype.kind != "f":
        return _host_made(np.linspace(start, end, steps, dtype=np_dtype), device, requires_grad)
    # As PyTorch: in double precision, the first half counted up from start and the
    # second down from end (so both ends are exact), then stored in the dtype.
    start, end = float(start), float(end)
    step = (end - start) / (steps - 1) if steps > 1 else 0.0
    i = np.arange(steps, dtype=np.float64)
    half = builtins.max(steps // 2, 1)  # one step: just start
    values = np.where(i < half, start + i * step, end - (steps - 1 - i) * step)
    return _host_made(values.astype(np_dtype, copy=False), device, requires_grad)


def _host_made(host: np.ndarray, device, requires_grad) -> Tensor:
    backend = get_backend(device)
    array = host if backend is CPU else backend.asarray(host)
    return _finish(array, backend, requires_grad)


# Made on first use: importing numpy.random takes a tenth of the start-up.
_default_generator: np.random.Generator | None = None


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the engine's default random generator (returns it)."""
    global _default_generator
    _default_generator = np.random.default_rng(seed)
    return _default_generator


def _random(kind, shape, generator, dtype, device, requires_grad) -> Tensor:
    shape = _shape_arg(shape)
    check_elements(shape)
    rng = generator if generator is not None else _default_generator
    if rng is None:
        rng = manual_seed(0)
    np_dtype = resolve_dtype(dtype)
    # Drawn on the host so that a seed gives the same numbers on every device,
    # and in float64 so that it gives the same numbers in every dtype.
    draw = rng.standard_normal if kind == "randn" else rng.random
    if np.dtype(np_dtype) == np.float64:
        host = draw(shape, dtype=np.float64)
    else:
        host = _drawn_in_pieces(draw, shape, np_dtype)
    return _host_made(host, device, requires_grad)


#: float64 numbers drawn at a time for a tensor of another dtype (512 KB).
_DRAW_PIECE = 1 << 16


def _drawn_in_pieces(draw, shape, np_dtype) -> np.ndarray:
    """``draw(shape, dtype=float64).astype(np_dtype)``, the same numbers, without
    the float64 array: drawn a piece at a time into one small buffer (a generator
    gives the same stream however the draws are split)."""
    out = np.empty(shape, dtype=np_dtype)
    flat = out.reshape(-1)
    size = flat.size
    if size <= _DRAW_PIECE:
        flat[...] = draw(size, dtype=np.float64)
        return out
    piece = np.empty(_DRAW_PIECE, dtype=np.float64)
    for start in range(0, size, _DRAW_PIECE):
        stop = min(size, start + _DRAW_PIECE)
        part = piece[: stop - start]
        draw(dtype=np.float64, out=part)
        flat[start:stop] = part
    return out


def randn(*shape, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _random("randn", shape, generator, dtype, device, requires_grad)


def rand(*shape, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _random("rand", shape, generator, dtype, device, requires_grad)


# ----- elementwise --------------------------------------------------------------------------------


def _as_operand(x):
    if type(x) is Tensor or isinstance(x, Tensor):
        return x
    if isinstance(x, _NUMBER):  # a bool stays a bool: it promotes as a bool
        return x
    if isinstance(x, np.ndarray):
        return make_result(x, CPU)
    raise wrong_type("expected a tensor or a number, got {got}", x)


def wrong_type(template: str, x) -> AdcliError:
    """A ``type`` error for value ``x``: ``template`` has ``{got}`` where its kind goes.

    The engine names Python's type; ``details`` carries the value and the
    template, for the language to say it in its own words.
    """
    return AdcliError(
        "type", template.format(got=type(x).__name__), details={"message": template, "got": x}
    )


def _broadcast_check(op_name, a, b) -> None:
    """Shapes must broadcast; the result must fit the element limit."""
    sa = a.shape
    sb = b.shape
    try:
        out = np.broadcast_shapes(sa, sb)
    except ValueError:
        # Name the first dimension (from the right) where they clash, like PyTorch.
        for i in range(1, builtins.min(len(sa), len(sb)) + 1):
            if sa[-i] != sb[-i] and sa[-i] != 1 and sb[-i] != 1:
                dim = builtins.max(len(sa), len(sb)) - i
                raise AdcliError(
                    "shape",
                    f"shapes {format_shape(sa)} and {format_shape(sb)} do not broadcast in "
                    f"{op_name}: the size of tensor a ({sa[-i]}) must match the size of "
                    f"tensor b ({sb[-i]}) at non-singleton dimension {dim}",
                ) from None
        raise
    if prod(out) > STATE.max_elements:
        check_elements(out, f"the result of {op_name}")


def _binary(op, a, b) -> Tensor:
    a = _as_operand(a)
    b = _as_operand(b)
    a, b = _promote(op, a, b)
    if type(a) is Tensor and type(b) is Tensor and a._data.shape != b._data.shape:
        _broadcast_check(op.name, a, b)
    return apply(op, (a, b))


def _promote(op, a, b) -> tuple:
    """``a`` and ``b`` cast (differentiably) to the dtype ``op`` computes in.

    The dtype is :func:`~adcli.engine.promotion.result_type`'s (PyTorch's rules),
    the default floating dtype for a true division of integers. Python numbers
    are left as they are: the array module keeps a number at the array's dtype.
    """
    # (dtype identity, not .kind: this is on the per-op path, and NumPy's builtin
    # dtypes are singletons; anything else takes the general path below)
    da = a._data.dtype if type(a) is Tensor else None
    db = b._data.dtype if type(b) is Tensor else None
    if da is FLOAT32 or da is FLOAT64:
        if da is db or db is None and type(b) is not bool:
            return a, b  # the common case: nothing to promote
    elif da is None and (db is FLOAT32 or db is FLOAT64) and type(a) is not bool:
        return a, b
    dtype = result_type(a, b)
    if op is T.DIV:
        dtype = true_divide_type(dtype)
    elif op is T.SUB:
        _refuse_bool_subtraction(a, b, da, db)
    elif dtype.kind in "biu" and (op is T.POW or op is T.POW_TENSOR):
        exponent = b if type(b) is Tensor else None
        if (isinstance(b, int) and b < 0) or (
            exponent is not None and bool((exponent._data < 0).any())
        ):
            raise AdcliError("value", "Integers to negative integer powers are not allowed.")
    if da is not None and da != dtype:
        a = cast(a, dtype)
    if db is not None and db != dtype:
        b = cast(b, dtype)
    return a, b


def add(a, b):
    return _binary(T.ADD, a, b)


def sub(a, b):
    return _binary(T.SUB, a, b)


def mul(a, b):
    return _binary(T.MUL, a, b)


def div(a, b):
    return _binary(T.DIV, a, b)


def pow(a, b):
    if isinstance(b, Tensor) or not isinstance(a, Tensor):
        return _binary(T.POW_TENSOR, a, b)
    return _binary(T.POW, a, b)


def _refuse_bool_subtraction(a, b, da, db) -> None:
    bools = [da is not None and da.kind == "b" or isinstance(a, bool)]
    bools.append(db is not None and db.kind == "b" or isinstance(b, bool))
    if all(bools):
        raise AdcliError(
            "type",
            "Subtraction, the `-` operator, with two bool tensors is not supported. "
            "Use the `^` or `logical_xor()` operator instead.",
        )
    if any(bools):
        raise AdcliError(
            "type",
            "Subtraction, the `-` operator, with a bool tensor is not supported. If you "
            "are trying to invert a mask, use the `~` or `logical_not()` operator instead.",
            hint="or cast it first with .long() or .float()",
        )


def neg(a):
    a = _as_operand(a)
    if type(a) is Tensor and a._data.dtype.kind == "b":
        raise AdcliError(
            "type",
            "Negation, the `-` operator, on a bool tensor is not supported. If you are "
            "trying to invert a mask, use the `~` or `logical_not()` operator instead.",
            hint="or cast it first with .long() or .float()",
        )
    return apply(T.NEG, (a,))


def _unary(op, floating: bool = True):
    """The public function of a one-input op; ``floating``: int64 and bool inputs are
    computed in the default floating dtype (``sqrt`` of an integer tensor is float)."""

    f32, f64 = FLOAT32, FLOAT64  # closure cells: cheaper than globals on this hot path
    direct = T.direct_forward(op)  # np.sin for sin: the forward without its own frame

    def f(x):
        if type(x) is not Tensor:
            x = _as_tensor(x)
        dtype = x._data.dtype
        if dtype is not f32 and dtype is not f64 and floating and dtype.kind != "f":
            x = cast(x, get_default_dtype())
        return apply_unary(op, x, None, direct)

    f.__name__ = op.name
    f.__doc__ = f"Elementwise {op.name}."
    return f


def _as_tensor(x) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, bool):
        x = float(x)
    if isinstance(x, _NUMBER):
        return make_result(np.asarray(x, dtype=np.float32), CPU)
    raise wrong_type("expected a tensor, got {got}", x)


exp = _unary(T.EXP)
log = _unary(T.LOG)
sqrt = _unary(T.SQRT)
sin = _unary(T.SIN)
cos = _unary(T.COS)
tanh = _unary(T.TANH)
sigmoid = _unary(T.SIGMOID)
relu = _unary(T.RELU, floating=False)
abs = _unary(T.ABS, floating=False)
sign = _unary(T.SIGN, floating=False)


def eq(a, b):
    return _binary(T.EQ, a, b)


def ne(a, b):
    return _binary(T.NE, a, b)


def lt(a, b):
    return _binary(T.LT, a, b)


def le(a, b):
    return _binary(T.LE, a, b)


def gt(a, b):
    return _binary(T.GT, a, b)


def ge(a, b):
    return _binary(T.GE, a, b)


def where(cond, a, b):
    cond = _as_tensor(cond)
    a = _as_operand(a)
    b = _as_operand(b)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        # Two numbers: the default dtype on cond's device, as torch.where (NumPy would
        # make float64); a number beside a tensor takes that tensor's dtype.
        a = tensor(a, dtype=get_default_dtype(), device=cond._backend)
    shapes = [t.shape for t in (cond, a, b) if isinstance(t, Tensor)]
    if len(set(shapes)) > 1:
        try:
            out = np.broadcast_shapes(*shapes)
        except ValueError:
            raise AdcliError(
                "shape",
                "where: shapes " + ", ".join(format_shape(s) for s in shapes) + " do not broadcast",
            ) from None
        check_elements(out, "the result of where")
    if cond.dtype != "bool":
        raise AdcliError(
            "type",
            "where expected condition to be a boolean tensor, but got a tensor with dtype "
            + _TORCH_NAMES[cond.dtype],
            hint="compare first, e.g. where(x > 0, a, b), or cast with .bool()",
        )
    if type(a) is Tensor or type(b) is Tensor:
        a, b = _promote(T.WHERE, a, b)
    return apply(T.WHERE, (cond, a, b))


# ----- reductions ---------------------------------------------------------------------------------


def _dims(dim, ndim: int):
    if dim is None:
        return None
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise AdcliError("type", f"dim must be a whole number, got {d!r}")
        d = int(d)
        if not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise AdcliError(
                "value",
                f"Dimension out of range (expected to be in range of "
                f"[{-builtins.max(ndim, 1)}, {builtins.max(ndim, 1) - 1}], but got {d})",
            )
        out.append(d % ndim if ndim else 0)
    if ndim == 0:
        return None
    if len(set(out)) != len(out):
        repeated = next(d for d in out if out.count(d) > 1)
        raise AdcliError("value", f"dim {repeated} appears multiple times in the list of dims")
    return tuple(sorted(out))


def sum(x, dim=None, keepdim: bool = False):
    x = _as_tensor(x)
    dims = _dims(dim, x.ndim)
    if dims is None and not keepdim:
        return apply(T.SUM, (x,))
    return apply(T.SUM, (x,), {"dim": dims, "keepdim": bool(keepdim)})


def mean(x, dim=None, keepdim: bool = False):
    x = _as_tensor(x)
    if x._data.dtype.kind != "f":
        raise AdcliError(
            "type",
            "mean(): could not infer output dtype. Input dtype must be either a floating "
            f"point or complex dtype. Got: {_TORCH_NAMES.get(x.dtype, x.dtype)}",
            hint="cast it first: x.float() or x.double()",
        )
    dims = _dims(dim, x.ndim)
    if dims is None and not keepdim:
        return apply(T.MEAN, (x,))
    return apply(T.MEAN, (x,), {"dim": dims, "keepdim": bool(keepdim)})


_TORCH_NAMES = {"int64": "Long", "bool": "Bool", "float32": "Float", "float64": "Double"}


# ----- shapes ---------------------------------------------------------------------------------------


def reshape(x, *shape):
    x = _as_tensor(x)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    dims = []
    infer = None
    for i, s in enumerate(shape):
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise AdcliError("type", f"reshape: sizes must be whole numbers, got {s!r}")
        if s == -1:
            if infer is not None:
                raise AdcliError("value", "reshape: only one dimension can be inferred (-1)")
            infer = i
        elif s < 0:
            raise AdcliError("value", f"reshape: invalid size {s}")
        dims.append(int(s))
    if builtins.max(dims, default=0) >= _MAX_SIZE or len(dims) > _MAX_DIMS:
        _shape_arg(tuple(d for d in dims if d != -1))  # says which limit, in words
    n = x.numel()
    known = prod(d for d in dims if d != -1)
    if infer is not None:
        if known == 0 or n % known:
            raise AdcliError(
                "shape", f"shape {format_shape(shape)} is invalid for input of size {n}"
            )
        dims[infer] = n // known
    elif known != n:
        raise AdcliError("shape", f"shape {format_shape(shape)} is invalid for input of size {n}")
    return apply(T.RESHAPE, (x,), {"shape": tuple(dims)})


def permute(x, *axes):
    x = _as_tensor(x)
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    for a in axes:
        _dims(a, x.ndim)  # each in range, as PyTorch checks (_dims sorts, so not its result)
    axes = tuple(int(a) % builtins.max(x.ndim, 1) for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise AdcliError(
            "value",
            f"permute: {list(axes)} is not a permutation of the dims of a {x.ndim}-d tensor",
        )
    return apply(T.PERMUTE, (x,), {"axes": axes})


def transpose(x, dim0=None, dim1=None):
    """Swap two dims; with none given, the matrix transpose of a (<= 2)-d tensor."""
    x = _as_tensor(x)
    if dim0 is None and dim1 is None:
        if x.ndim > 2:
            raise AdcliError(
                "shape",
                f"transpose(x) without dims needs a tensor of at most 2 dims, got {x.ndim}",
            )
        if x.ndim < 2:
            return x
        return apply(T.T, (x,), {"axes": (1, 0)})
    if dim0 is None or dim1 is None:
        raise AdcliError("type", "transpose(x, dim0, dim1) needs both dims")
    d0, d1 = _dims(dim0, x.ndim)[0], _dims(dim1, x.ndim)[0]
    axes = list(range(x.ndim))
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return apply(T.TRANSPOSE, (x,), {"axes": tuple(axes)})


def expand(x, *shape):
    x = _as_tensor(x)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = _shape_arg(shape)
    try:
        fits = np.broadcast_shapes(x.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:  # also fewer dims than x has: broadcast_shapes alone would allow it
        raise AdcliError(
            "shape", f"cannot expand shape {format_shape(x.shape)} to {format_shape(shape)}"
        )
    check_elements(shape)
    return apply(T.EXPAND, (x,), {"shape": shape})


def _index_key(x: Tensor, key) -> tuple:
    """``key`` checked against ``x`` and made of what the array module indexes with.

    Each item of a tuple ``key`` is one subscript, as in PyTorch: a whole number,
    a slice, ``None`` (a new axis), ``...``, an int64 tensor or a list/tuple of
    whole numbers (gather), or a bool tensor (a mask over as many dims as it has).
    """
    if not isinstance(key, tuple):
        key = (key,)
    for k in key:
        kind = type(k)
        if kind is not int and kind is not slice:
            break
    else:
        return _basic_key(x, key)  # whole numbers and slices: the common, cheap case
    items = [_index_item(x, k) for k in key]
    consumed = [_dims_taken(k) for k in items]
    if builtins.sum(consumed) > x.ndim:
        raise AdcliError("shape", f"too many indices for a tensor of dimension {x.ndim}")
    if items.count(Ellipsis) > 1:
        raise AdcliError("value", "an index can only have a single ellipsis ('...')")
    # Which dim of x each subscript starts at (those after `...` count from the end).
    out = []
    dim = 0
    for i, k in enumerate(items):
        if k is Ellipsis:
            dim = x.ndim - builtins.sum(consumed[i + 1 :])
            out.append(k)
            continue
        out.append(_bounded(x, k, dim))
        dim += consumed[i]
    return tuple(out)


def _basic_key(x: Tensor, key: tuple) -> tuple:
    """A key of whole numbers and slices only, checked (one subscript per dim)."""
    if len(key) > x.ndim:
        raise AdcliError("shape", f"too many indices for a tensor of dimension {x.ndim}")
    shape = x.shape
    for dim, k in enumerate(key):
        if type(k) is int:
            size = shape[dim]
            if not -size <= k < size:
                raise AdcliError(
                    "shape", f"index {k} is out of bounds for dimension {dim} with size {size}"
                )
        else:
            _index_item(x, k)  # checks the slice's parts
    return key


def _is_basic(key: tuple) -> bool:
    """Whether ``key`` (checked) holds no index arrays: its result is a view of ``x``."""
    for k in key:
        if hasattr(k, "dtype"):
            return False
    return True


def _dims_taken(k) -> int:
    if k is None or k is Ellipsis:
        return 0
    if isinstance(k, _IndexArray):
        return k.array.ndim if k.mask else 1
    return 1


class _IndexArray:
    """An int64 (gather) or bool (mask) index, as an array of the indexed tensor's device."""

    __slots__ = ("array", "mask")

    def __init__(self, array, mask: bool) -> None:
        self.array = array
        self.mask = mask


def _index_item(x: Tensor, k):
    if isinstance(k, bool):
        raise AdcliError("type", "an index must be a whole number or a slice, not a bool")
    if isinstance(k, (int, np.integer)):
        return int(k)
    if isinstance(k, float) and k.is_integer():
        return int(k)
    if isinstance(k, slice):
        for part in (k.start, k.stop, k.step):
            if part is not None and not isinstance(part, (int, np.integer)):
                raise AdcliError("type", "slice bounds must be whole numbers")
        if k.step is not None and k.step <= 0:
            raise AdcliError("value", "slice step must be positive")
        return k
    if k is None or k is Ellipsis:
        return k
    if isinstance(k, (list, tuple, np.ndarray)):
        try:
            host = np.asarray(k)
        except ValueError:
            host = None
        if host is None or host.dtype.kind not in "iub" or host.size == 0 and len(k):
            if host is not None and host.size == 0:
                host = host.astype(np.int64)
            else:
                raise AdcliError("type", "a list or tuple used as an index must hold whole numbers")
        if host.dtype.kind == "b":
            return _IndexArray(x._backend.asarray(host), True)
        return _IndexArray(x._backend.asarray(host.astype(np.int64)), False)
    if isinstance(k, Tensor):
        kind = k._data.dtype.kind
        if kind not in "iub":
            raise AdcliError(
                "type",
                "tensors used as indices must be long, int, byte or bool tensors",
                hint='make it with dtype="int64" (or .long()), or index with a tuple (0, 2)',
            )
        array = k._data
        if k._backend is not x._backend:  # as PyTorch: a CPU index may index any device
            array = x._backend.asarray(to_numpy(array))
        if kind == "b":
            return _IndexArray(array, True)
        if array.dtype != np.int64:
            array = array.astype(np.int64)
        return _IndexArray(array, False)
    raise wrong_type(
        "an index must be a whole number, a slice, a tensor, ..., or none, got {got}", k
    )


def _bounded(x: Tensor, k, dim: int):
    """``k`` (a subscript starting at ``x``'s dim ``dim``) with its bounds checked."""
    if isinstance(k, int):
        size = x.shape[dim]
        if not -size <= k < size:
            raise AdcliError(
                "shape", f"index {k} is out of bounds for dimension {dim} with size {size}"
            )
        return k
    if not isinstance(k, _IndexArray):
        return k
    array = k.array
    if k.mask:
        want = x.shape[dim : dim + array.ndim]
        for j, (m, s) in enumerate(zip(array.shape, want)):
            if m != s:
                raise AdcliError(
                    "shape",
                    f"The shape of the mask {format_shape(array.shape)} at index {j} does not "
                    f"match the shape of the indexed tensor {format_shape(x.shape)} at index "
                    f"{dim + j}",
                )
        return array
    size = x.shape[dim]
    if array.size:
        lo = int(array.min())
        hi = int(array.max())
        if lo < -size or hi >= size:
            bad = lo if lo < -size else hi
            raise AdcliError(
                "shape", f"index {bad} is out of bounds for dimension {dim} with size {size}"
            )
    return array


def index(x, key):
    """``x[key]`` (differentiable): see :func:`_index_key` for what ``key`` may hold.

    Gathers with repeated indices add their gradients up in the backward pass.
    """
    x = _as_tensor(x)
    key = _index_key(x, key)
    if not _is_basic(key):  # a gather may be larger than x: check before it is made
        check_elements(_index_shape(x, key), "the result of indexing")
    return apply(T.INDEX, (x,), {"key": key})


def _index_shape(x: Tensor, key) -> tuple:
    if _is_basic(key):
        return x._data[key].shape  # a view: nothing is copied
    probe = np.lib.stride_tricks.as_strided(np.zeros((), np.int8), x.shape, (0,) * x.ndim)
    host_key = tuple(to_numpy(k) if hasattr(k, "dtype") else k for k in key)
    return probe[host_key].shape


def index_put(x, key, value, accumulate: bool = False) -> Tensor:
    """A copy of ``x`` with ``x[key] = value`` (PyTorch's out-of-place ``index_put``).

    ``key`` takes every form :func:`index` does; ``value`` (a tensor or a number)
    broadcasts to ``x[key]``'s shape and is cast to ``x``'s dtype. Differentiable in
    ``x`` (zero where overwritten) and in ``value`` (the gathered gradient, summed back
    to ``value``'s shape). With ``accumulate``, ``value`` is added at ``key`` instead
    (repeated indices add up). The in-place ``x[key] = value`` of the language is this
    result written into ``x`` (see the report: the interpreter bumps ``x``'s version).
    """
    return _index_put(_as_tensor(x), key, value, accumulate, False)


def _index_put(x: Tensor, key, value, accumulate: bool, inplace: bool) -> Tensor:
    key = _index_key(x, key)
    target = _index_shape(x, key)
    value = _as_operand(value)
    if isinstance(value, Tensor):
        value = _fitted_value(x, value, target, "index_put")
    else:
        value = make_result(x._backend.xp.full(target, value, x._data.dtype), x._backend)
    if value.shape != target:
        value = expand(value, *target)
    params = {"key": key, "accumulate": bool(accumulate), "shape": x.shape}
    if inplace:
        params["inplace"] = True
    return apply(T.INDEX_PUT, (x, value), params)


#: PyTorch's C names of the dtypes, as its matrix products word a mismatch.
_C_NAMES = {"float32": "float", "float64": "double", "int64": "long int", "bool": "bool"}


def _same_dtype_product(name, a, b) -> None:
    """Matrix products do not promote (PyTorch): both operands must have one dtype."""
    if a.dtype == b.dtype:
        return
    if a.ndim == 1 and b.ndim == 1:
        message = (
            f"expected both vectors to have same dtype, but found "
            f"{_TORCH_NAMES[a.dtype]} and {_TORCH_NAMES[b.dtype]}"
        )
    elif a.ndim <= 2 and b.ndim <= 2:
        message = (
            f"expected m1 and m2 to have the same dtype, but got: "
            f"{_C_NAMES[a.dtype]} != {_C_NAMES[b.dtype]}"
        )
    else:
        message = f"expected scalar type {_TORCH_NAMES[a.dtype]} but found {_TORCH_NAMES[b.dtype]}"
    raise AdcliError(
        "type", f"{name}: {message}", hint="cast one first, e.g. with .double() or .float()"
    )


def _matmul_check(name, a, b, ka, kb):
    _same_dtype_product(name, a, b)
    if ka != kb:
        raise AdcliError(
            "shape",
            f"{name}: shapes {format_shape(a.shape)} and {format_shape(b.shape)} cannot be "
            f"multiplied ({ka} != {kb})",
        )


def mm(a, b):
    a, b = _as_tensor(a), _as_tensor(b)
    if a.ndim != 2 or b.ndim != 2:
        raise AdcliError(
            "shape",
            f"mm: both arguments must be matrices (2-d), got shapes {format_shape(a.shape)} "
            f"and {format_shape(b.shape)}",
        )
    _matmul_check("mm", a, b, a.shape[1], b.shape[0])
    check_elements((a.shape[0], b.shape[1]), "the result of mm")
    return apply(T.MM, (a, b))


def dot(a, b):
    a, b = _as_tensor(a), _as_tensor(b)
    if a.ndim != 1 or b.ndim != 1:
        raise AdcliError(
            "shape",
            f"dot: both arguments must be vectors (1-d), got shapes {format_shape(a.shape)} "
            f"and {format_shape(b.shape)}",
        )
    _matmul_check("dot", a, b, a.shape[0], b.shape[0])
    return apply(T.DOT, (a, b))


def matmul(a, b):
    """NumPy/PyTorch ``@``: vectors, matrices and batches of matrices."""
    a, b = _as_tensor(a), _as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise AdcliError("shape", "matmul: both arguments need at least 1 dimension")
    if a.ndim == 1 and b.ndim == 1:
        return dot(a, b)
    if a.ndim == 2 and b.ndim == 2:
        return mm(a, b)
    if a.ndim == 2 and b.ndim == 1:
        _matmul_check("matmul", a, b, a.shape[1], b.shape[0])
        return apply(T.MV, (a, b))
    if a.ndim == 1 and b.ndim == 2:
        _matmul_check("matmul", a, b, a.shape[0], b.shape[0])
        return apply(T.VM, (a, b))
    # Batched: treat vectors as matrices, then undo.
    squeeze_a = a.ndim == 1
    squeeze_b = b.ndim == 1
    if squeeze_a:
        a = reshape(a, 1, a.shape[0])
    if squeeze_b:
        b = reshape(b, b.shape[0], 1)
    _matmul_check("matmul", a, b, a.shape[-1], b.shape[-2])
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise AdcliError(
            "shape",
            f"matmul: batch shapes {format_shape(a.shape[:-2])} and "
            f"{format_shape(b.shape[:-2])} do not broadcast",
        ) from None
    check_elements(batch + (a.shape[-2], b.shape[-1]), "the result of matmul")
    out = apply(T.BMM, (a, b))
    if squeeze_a:
        out = reshape(out, *(out.shape[:-2] + out.shape[-1:]))
    if squeeze_b:
        out = reshape(out, *out.shape[:-1])
    return out


# ----- copies, types, devices ----------------------------------------------------------------


def clone(x):
    return apply(T.CLONE, (_as_tensor(x),))


def detach(x) -> Tensor:
    return _as_tensor(x).detach()


def cast(x, dtype) -> Tensor:
    """``x`` as ``dtype`` (``x.to(dtype)``); differentiable between floating dtypes,
    while a cast to int64 or bool gives a tensor with no gradient, as PyTorch."""
    x = _as_tensor(x)
    target = resolve_dtype(dtype)
    if x._data.dtype == target:
        return x
    if target.kind != "f":
        return make_result(x._data.astype(target), x._backend)
    return apply(T.CAST, (x,), {"dtype": target, "source": x._data.dtype})


def to(x, device) -> Tensor:
    """``x`` on ``device`` (differentiable; the same tensor if already there)."""
    x = _as_tensor(x)
    target = get_backend(device)
    if target is x._backend:
        return x
    check_elements(x.shape)
    return apply(T.TO_DEVICE, (x,), {"device": target, "source": x._backend})


def stack_rows(rows: list, shape: tuple, like: Tensor | None = None) -> Tensor:
    """Rows (tensors of equal size) stacked and reshaped to ``shape`` (no gradient).

    No rows (an empty output) give zeros of ``like``'s dtype and device.
    """
    if not rows:
        if like is not None:
            return make_result(like._backend.xp.zeros(shape, dtype=like._data.dtype), like._backend)
        return make_result(np.zeros(shape, dtype=np.float32), CPU)
    xp = rows[0]._backend.xp
    data = xp.stack([r._data.reshape(-1) for r in rows]).reshape(shape)
    return make_result(data, rows[0]._backend)


def same_device(a: Tensor, b: Tensor, what: str) -> None:
    if a._backend is not b._backend:
        raise device_mismatch(what, a._backend, b._backend)


def allclose(a, b, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    # A Python number beside a tensor is compared in that tensor's dtype (exactly,
    # for float64), not made a float32 tensor first.
    if isinstance(b, Tensor) and isinstance(a, _NUMBER) and not isinstance(a, bool):
        a = tensor(a, dtype=b.dtype, device=b._backend)
    if isinstance(a, Tensor) and isinstance(b, _NUMBER) and not isinstance(b, bool):
        b = tensor(b, dtype=a.dtype, device=a._backend)
    a, b = _as_tensor(a), _as_tensor(b)
    same_device(a, b, "allclose")
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise AdcliError(
            "shape",
            f"allclose: shapes {format_shape(a.shape)} and {format_shape(b.shape)} do not broadcast",
        ) from None
    return bool(np.allclose(to_numpy(a._data), to_numpy(b._data), rtol=rtol, atol=atol))


# ----- remainder, floor division ----------------------------------------------------------------


def remainder(a, b):
    """``a % b`` as ``torch.remainder``: the result has the sign of ``b``."""
    return _binary(T.REMAINDER, a, b)


def floor_divide(a, b):
    """``a // b``: the floor of the quotient (no gradient flows through it, as in PyTorch)."""
    return _binary(T.FLOOR_DIVIDE, a, b)


# ----- in place ---------------------------------------------------------------------------------

_IN_PLACE = {"+": add, "-": sub, "*": mul, "/": div}


def _alias(t: Tensor) -> Tensor:
    """A new tensor object standing for ``t`` as it is now (same storage and graph)."""
    a = make_result(t._data, t._backend)
    a._requires_grad = t._requires_grad
    a._grad_fn = t._grad_fn
    a._accum = t._accum
    a._version = t._version
    return a


def _records(*tensors) -> bool:
    if not STATE.grad_enabled:
        return False
    return builtins.any(type(t) is Tensor and t._requires_grad for t in tensors)


def _store(target: Tensor, result: Tensor, recorded: bool) -> Tensor:
    """Make ``target`` hold ``result``'s values (and graph, when ``recorded``)."""
    if result._data.shape != target._data.shape:
        raise AdcliError(
            "shape",
            f"output with shape {format_shape(target.shape)} doesn't match the broadcast "
            f"shape {format_shape(result.shape)}",
        )
    if result._data.dtype != target._data.dtype:
        if target._data.dtype.kind in "biu" and result._data.dtype.kind == "f":
            raise AdcliError(
                "type",
                f"result type {result.dtype} can't be cast to the desired output type "
                f"{target.dtype}",
            )
        result = cast(result, target._data.dtype)
    mark_modified(target)
    if recorded:
        # The old values stay with the graph (the alias saved them); the tensor
        # takes the new values and the new grad_fn, as PyTorch's in-place ops do.
        target._data = result._data
        target._grad_fn = result._grad_fn
        target._requires_grad = result._requires_grad
    elif writeable(target._data):
        target._data[...] = result._data  # the same storage: views and .data see it
    else:
        target._data = target._backend.xp.array(result._data, copy=True)
    return target


def update_(target: Tensor, op: str, value) -> Tensor:
    """``target op= value`` in place (``op`` one of ``+ - * /``), with PyTorch's rules:
    an error on a leaf that requires grad (outside no_grad), recorded on a
    tensor that requires grad, and the tensor keeps its identity."""
    if not isinstance(target, Tensor):
        raise wrong_type("expected a tensor, got {got}", target)
    target._check_in_place()
    fn = _IN_PLACE[op]
    if _records(target, value):
        return _store(target, fn(_alias(target), value), True)
    with _NoGrad():
        result = fn(_alias(target), value)
    return _store(target, result, False)


def zero_(target: Tensor) -> Tensor:
    """``target.zero_()``: on a tensor in the graph (a non-leaf, grad mode on) the
    zeroing is recorded, so no gradient flows to what it was computed from."""
    if STATE.grad_enabled and target._grad_fn is not None:
        return _store(target, mul(_alias(target), 0.0), True)
    return target.zero_()


def _fitted_value(x: Tensor, value: Tensor, region: tuple, what: str) -> Tensor:
    """``value`` checked to go into ``region`` (a shape) of ``x``: same device,
    broadcastable, and cast to ``x``'s dtype."""
    same_device(x, value, what)
    try:
        fits = np.broadcast_shapes(value.shape, region) == tuple(region)
    except ValueError:
        fits = False
    if not fits:
        raise AdcliError(
            "shape",
            f"shape mismatch: value tensor of shape {format_shape(value.shape)} cannot be "
            f"broadcast to indexing result of shape {format_shape(region)}",
        )
    if value._data.dtype != x._data.dtype:
        value = cast(value, x._data.dtype)
    return value


def index_put_(target: Tensor, key, value) -> Tensor:
    """``target[key] = value`` in place (its grad_fn becomes CopySlices when recorded)."""
    if not isinstance(target, Tensor):
        raise wrong_type("expected a tensor, got {got}", target)
    target._check_in_place()
    key = _index_key(target, key)
    value = _as_operand(value)
    if type(value) is Tensor:
        value = _fitted_value(target, value, target._data[key].shape, "index assignment")
    if _records(target, value):
        result = apply(T.COPY_SLICES, (_alias(target), value), {"key": key, "shape": target.shape})
        return _store(target, result, True)
    mark_modified(target)
    data = target._data
    if not writeable(data):
        data = target._data = target._backend.xp.array(data, copy=True)
    data[key] = value._data if type(value) is Tensor else value
    return target


class _NoGrad:
    __slots__ = ("prev",)

    def __enter__(self):
        self.prev = STATE.grad_enabled
        STATE.grad_enabled = False

    def __exit__(self, *exc):
        STATE.grad_enabled = self.prev
        return False


# ----- for the public registry (adcli.engine.public) --------------------------------------------
#: a tensor from a tensor or a number (float32 for numbers)
as_tensor = _as_tensor
#: a tensor or a Python number, checked
as_operand = _as_operand
#: the public function of a unary table op (the per-op hot path)
unary = _unary
#: a binary table op on two operands, with the broadcasting check
binary = _binary
#: dims normalised (sorted, in range; None for all)
dims = _dims


# ----- Python operators on Tensor ---------------------------------------------------------------


def _negative(self):
    try:
        return apply_unary(T.NEG, self)
    except TypeError:  # NumPy refuses to negate bools: say it as PyTorch does
        if self._data.dtype.kind == "b":
            return neg(self)
        raise


def _reflected(f):
    return lambda self, other: f(other, self)


_ARITH = {T.ADD: operator.add, T.SUB: operator.sub, T.MUL: operator.mul, T.DIV: operator.truediv}


def _attach_operators() -> None:
    # Hot path: the common binary operators go straight to _binary.
    def make(op):
        # Same dtypes need no promotion, except integer division (a float result)
        # and bool subtraction (PyTorch's error).
        checks_kind = op is T.DIV or op is T.SUB
        f32, f64 = FLOAT32, FLOAT64  # closure cells: cheaper than globals here
        # Python's own operator for the same IEEE operation on two floats (see apply_number);
        # division by a zero float is left to NumPy (inf or nan, and its warning).
        arith = _ARITH[op]
        nonzero = op is T.DIV

        def forward(self, other):
            kind = type(other)
            if kind is Tensor:
                dtype = self._data.dtype
                if dtype is not other._data.dtype or (
                    checks_kind and dtype is not f32 and dtype is not f64
                ):
                    return _binary(op, self, other)  # type promotion first
                if self._data.shape != other._data.shape:
                    _broadcast_check(op.name, self, other)
                return apply_binary(op, self, other)
            if kind is float:
                dtype = self._data.dtype
                if dtype is f64:
                    if nonzero and not other:
                        return apply_number(op, None, self, other)
                    return apply_number(op, arith, self, other)
                if dtype is f32:
                    return apply_number(op, None, self, other)
            elif kind is int:
                dtype = self._data.dtype
                if dtype is f64 or dtype is f32:
                    return apply_number(op, None, self, other)
            return _binary(op, self, other)

        def reflected(self, other):
            return _binary(op, other, self)

        return forward, reflected

    for name, entry in (("add", T.ADD), ("sub", T.SUB), ("mul", T.MUL), ("truediv", T.DIV)):
        fwd, rev = make(entry)
        setattr(Tensor, f"__{name}__", fwd)
        setattr(Tensor, f"__r{name}__", rev)
    Tensor.__pow__ = pow
    Tensor.__rpow__ = _reflected(pow)
    Tensor.__neg__ = _negative
    Tensor.__pos__ = lambda self: self
    Tensor.__matmul__ = matmul
    Tensor.__mod__ = remainder
    Tensor.__rmod__ = _reflected(remainder)
    Tensor.__floordiv__ = floor_divide
    Tensor.__rfloordiv__ = _reflected(floor_divide)
    Tensor.__rmatmul__ = _reflected(matmul)
    Tensor.__getitem__ = index
    Tensor.__eq__ = eq
    Tensor.__ne__ = ne
    Tensor.__lt__ = lt
    Tensor.__le__ = le
    Tensor.__gt__ = gt
    Tensor.__ge__ = ge
    Tensor.__hash__ = object.__hash__
    Tensor.sum = sum
    Tensor.mean = mean
    Tensor.reshape = reshape
    Tensor.T = property(
        lambda self: self if self.ndim < 2 else permute(self, *reversed(range(self.ndim)))
    )
    Tensor.t = transpose
    Tensor.clone = clone
    Tensor.to = to
    Tensor.cuda = lambda self, index=0: to(self, f"cuda:{index}")
    Tensor.cpu = lambda self: to(self, "cpu")
    Tensor.exp = exp
    Tensor.log = log
    Tensor.sqrt = sqrt
    Tensor.abs = abs
    Tensor.pow = pow


_attach_operators()
