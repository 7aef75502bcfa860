"""The engine's public ops: argument checking and normalising, then the table.

Everything here either creates a tensor or calls :func:`apply` with an entry
of :mod:`adcli.engine.ops`; composite ops (``tan``, ``softmax``...) are written
with those and need no derivative rule of their own. Python operators on
:class:`Tensor` are attached at the bottom.
"""

from __future__ import annotations

import builtins
from math import prod

import numpy as np

from adcli.backend import CPU, Backend, get_backend, resolve_dtype, to_numpy
from adcli.engine import ops as T
from adcli.engine.tensor import (
    STATE,
    Tensor,
    apply,
    apply_binary,
    apply_unary,
    check_elements,
    device_mismatch,
    format_shape,
    make_result,
)
from adcli.errors import AdcliError

_NUMBER = (int, float)
#: NumPy's (and so every backend's) most dimensions and largest size of one dimension
_MAX_DIMS = 64
_MAX_SIZE = 2**62


# ----- creation ---------------------------------------------------------------------------------


def _finish(array, backend: Backend, requires_grad: bool) -> Tensor:
    t = make_result(array, backend)
    if requires_grad:
        if array.dtype.kind != "f":
            raise AdcliError("type", "only tensors of floating point dtype can require gradients")
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


_default_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the engine's default random generator (returns it)."""
    global _default_generator
    _default_generator = np.random.default_rng(seed)
    return _default_generator


def _random(kind, shape, generator, dtype, device, requires_grad) -> Tensor:
    shape = _shape_arg(shape)
    check_elements(shape)
    rng = generator if generator is not None else _default_generator
    np_dtype = resolve_dtype(dtype)
    # Drawn on the host so that a seed gives the same numbers on every device.
    if kind == "randn":
        host = rng.standard_normal(shape, dtype=np.float64).astype(np_dtype)
    else:
        host = rng.random(shape, dtype=np.float64).astype(np_dtype)
    return _host_made(host, device, requires_grad)


def randn(*shape, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _random("randn", shape, generator, dtype, device, requires_grad)


def rand(*shape, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _random("rand", shape, generator, dtype, device, requires_grad)


# ----- elementwise --------------------------------------------------------------------------------


def _as_operand(x):
    if type(x) is Tensor or isinstance(x, Tensor):
        return x
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, _NUMBER):
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
    if type(a) is Tensor and type(b) is Tensor and a._data.shape != b._data.shape:
        _broadcast_check(op.name, a, b)
    return apply(op, (a, b))


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


def neg(a):
    return apply(T.NEG, (_as_operand(a),))


def _unary(op):
    def f(x):
        if type(x) is Tensor:
            return apply_unary(op, x)
        return apply_unary(op, _as_tensor(x))

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
relu = _unary(T.RELU)
abs = _unary(T.ABS)
sign = _unary(T.SIGN)


def tan(x):
    return sin(x) / cos(x)


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
        a = tensor(a, device=cond._backend)
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
    return apply(T.WHERE, (cond, a, b))


def maximum(a, b):
    # Ties share the gradient equally and NaN propagates, as in PyTorch.
    return where(gt(a, b), a, where(lt(a, b), b, (a + b) * 0.5))


def minimum(a, b):
    return where(lt(a, b), a, where(gt(a, b), b, (a + b) * 0.5))


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
    dims = _dims(dim, x.ndim)
    if dims is None and not keepdim:
        return apply(T.MEAN, (x,))
    return apply(T.MEAN, (x,), {"dim": dims, "keepdim": bool(keepdim)})


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
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    dim = 0
    for k in key:
        if isinstance(k, bool):
            raise AdcliError("type", "an index must be a whole number or a slice, not a bool")
        if isinstance(k, (int, np.integer)):
            if dim >= x.ndim:
                raise AdcliError("shape", f"too many indices for a tensor of dimension {x.ndim}")
            size = x.shape[dim]
            if not -size <= k < size:
                raise AdcliError(
                    "shape",
                    f"index {k} is out of bounds for dimension {dim} with size {size}",
                )
            out.append(int(k))
            dim += 1
        elif isinstance(k, float) and k.is_integer():
            out.append(int(k))
            dim += 1
        elif isinstance(k, slice):
            for part in (k.start, k.stop, k.step):
                if part is not None and not isinstance(part, (int, np.integer)):
                    raise AdcliError("type", "slice bounds must be whole numbers")
            if k.step is not None and k.step <= 0:
                raise AdcliError("value", "slice step must be positive")
            if dim >= x.ndim:
                raise AdcliError("shape", f"too many indices for a tensor of dimension {x.ndim}")
            out.append(k)
            dim += 1
        elif k is None or k is Ellipsis:
            out.append(k)
        else:
            raise wrong_type("an index must be a whole number or a slice, got {got}", k)
    return tuple(out)


def index(x, key):
    x = _as_tensor(x)
    return apply(T.INDEX, (x,), {"key": _index_key(x, key)})


# ----- linear algebra -------------------------------------------------------------------------


def _matmul_check(name, a, b, ka, kb):
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
    x = _as_tensor(x)
    target = resolve_dtype(dtype)
    if x._data.dtype == target:
        return x
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


# ----- Python operators on Tensor ---------------------------------------------------------------


def _reflected(f):
    return lambda self, other: f(other, self)


def _attach_operators() -> None:
    # Hot path: the common binary operators go straight to _binary.
    def make(op):
        def forward(self, other):
            kind = type(other)
            if kind is Tensor:
                if self._data.shape != other._data.shape:
                    _broadcast_check(op.name, self, other)
                return apply_binary(op, self, other)
            if kind is float or kind is int:
                return apply_binary(op, self, other)
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
    Tensor.__neg__ = lambda self: apply_unary(T.NEG, self)
    Tensor.__pos__ = lambda self: self
    Tensor.__matmul__ = matmul
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
