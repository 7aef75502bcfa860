"""What each builtin function and method of the language does (registered into
:data:`adcli.lang.builtins.BUILTINS` and :data:`METHOD_IMPLS`).

Each implementation takes the running :class:`~adcli.lang.interpreter.Session`
first, converts the language's values (numbers, bracket literals, shapes) to
what the engine wants, and calls the engine.
"""

from __future__ import annotations

import inspect
from math import prod

import numpy as np

from adcli import engine as E
from adcli.backend import resolve_dtype
from adcli.engine.tensor import Tensor, check_differentiable, no_grad_fn_error
from adcli.errors import AdcliError
from adcli.lang import nodes as N
from adcli.lang.builtins import BUILTINS, CREATION_KEYWORDS, METHODS, Builtin, builtin
from adcli.lang.text import print_text
from adcli.lang.values import Output, type_name
from adcli.lang.wording import kind_of

METHOD_IMPLS: dict = {}


def method(name):
    def register(fn):
        METHOD_IMPLS[name] = fn
        return fn

    return register


# ----- conversions ---------------------------------------------------------------------------


def _t(s, value) -> Tensor:
    return s._tensor_of(value)


def _t_like(s, value, other) -> Tensor:
    """``value`` as a tensor; a number beside a tensor takes that tensor's dtype and
    device, so a Python float meets a float64 tensor at full precision."""
    if isinstance(other, Tensor) and isinstance(value, (int, float)):
        if isinstance(value, bool):
            value = float(value)
        return E.tensor(value, dtype=other.dtype, device=other.backend)
    return s._tensor_of(value)


def _bool(value, what) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise AdcliError("type", f"{what} must be true or false, got {value!r}")


def whole_number(value, what) -> int:
    """A whole number from a number, a one-element tensor or a whole float."""
    if isinstance(value, bool):
        raise AdcliError("type", f"{what} must be a whole number, not a bool")
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    raise AdcliError("type", f"{what} must be a whole number, got {kind_of(value)}")


def _num(value, what) -> float | int:
    """A plain number from a number or a one-element tensor (bools are not numbers here)."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    raise AdcliError("type", f"{what} must be a number, got {_describe(value)}")


def _describe(value) -> str:
    return type_name(value)


def as_bool(value, what) -> bool:
    """``true``/``false`` (or 1/0) for a flag such as ``requires_grad``."""
    return _bool(value, what)


def stack_nested(s, values) -> Tensor:
    """A bracket literal holding tensors: stacked along a new first axis at each
    level, differentiably (``[x, y]`` is ``stack((x, y))``). Numbers among them
    become tensors of the session's dtype."""
    if not isinstance(values, list):
        return _t(s, values)
    if not values:
        return E.tensor([], dtype=s.dtype, device=s.backend)
    return E.stack([stack_nested(s, v) for v in values])


def _shape(values, what="shape") -> tuple:
    """A shape from ``2, 3``, ``[2, 3]`` or a shape value."""
    if len(values) == 1 and isinstance(values[0], (tuple, Tensor)):
        v = values[0]
        if isinstance(v, Tensor):
            if v.ndim > 1:
                raise AdcliError("type", f"{what} must be a list of whole numbers")
            values = tuple(v.numpy().reshape(-1).tolist())
        else:
            values = v
    return tuple(whole_number(v, f"each size in {what}") for v in values)


def _dim(value):
    if value is None:
        return None
    if isinstance(value, (tuple, Tensor)):
        return _shape((value,), "dim")
    return whole_number(value, "dim")


def _creation(s, kw) -> dict:
    dtype = kw.get("dtype", s.dtype)
    device = kw.get("device", s.backend)
    for name in ("dtype", "device"):
        if name in kw and not isinstance(kw[name], str):
            raise AdcliError("type", f'{name}= takes a string such as "float64" or "cuda"')
    return {
        "dtype": dtype,
        "device": device,
        "requires_grad": _bool(kw.get("requires_grad", False), "requires_grad"),
    }


def _check_bytes(s, shape, dtype) -> None:
    n = prod(shape)
    size = n * resolve_dtype(dtype).itemsize
    if size > s.limits.max_bytes:
        raise AdcliError(
            "limit",
            f"a tensor of shape {list(shape)} would take {size:,} bytes, over the limit of "
            f"{s.limits.max_bytes:,}",
            hint="make it smaller, or raise the limit with --max-bytes",
        )


# ----- creation ------------------------------------------------------------------------------


@builtin("tensor", ("data",), keywords=CREATION_KEYWORDS, doc="a tensor from a literal")
def _tensor(s, data, **kw):
    opts = _creation(s, kw)
    if isinstance(data, bool):
        data = float(data)
    if isinstance(data, tuple):
        data = list(data)
    if not isinstance(data, (Tensor, int, float, list)):
        raise AdcliError("type", f"tensor() takes a number or a bracket literal, got {data!r}")
    return E.tensor(data, **opts)


def _sized(kind):
    def make(s, *shape, **kw):
        shape = _shape(shape)
        opts = _creation(s, kw)
        _check_bytes(s, shape, opts["dtype"])
        if kind in ("randn", "rand"):
            return getattr(E, kind)(*shape, generator=s.rng, **opts)
        return getattr(E, kind)(*shape, **opts)

    return make


for _kind in ("randn", "rand", "zeros", "ones"):
    builtin(
        _kind,
        ("shape",),
        required=0,
        variadic=True,
        keywords=CREATION_KEYWORDS,
        doc=f"{_kind}(*shape)",
    )(_sized(_kind))


@builtin("full", ("shape", "value"), keywords=CREATION_KEYWORDS)
def _full(s, shape, value, **kw):
    shape = (
        _shape((shape,)) if not isinstance(shape, (int, float)) else (whole_number(shape, "shape"),)
    )
    opts = _creation(s, kw)
    _check_bytes(s, shape, opts["dtype"])
    return E.full(shape, _num(value, "the fill value"), **opts)


@builtin("eye", ("n", "m"), required=1, keywords=CREATION_KEYWORDS)
def _eye(s, n, m=None, **kw):
    return E.eye(
        whole_number(n, "n"), None if m is None else whole_number(m, "m"), **_creation(s, kw)
    )


@builtin("arange", ("start", "end", "step"), required=1, keywords=CREATION_KEYWORDS)
def _arange(s, start, end=None, step=1, **kw):
    start = _num(start, "start")
    end = None if end is None else _num(end, "end")
    return E.arange(start, end, _num(step, "step"), **_creation(s, kw))


@builtin("linspace", ("start", "end", "steps"), keywords=CREATION_KEYWORDS)
def _linspace(s, start, end, steps, **kw):
    return E.linspace(
        _num(start, "start"), _num(end, "end"), whole_number(steps, "steps"), **_creation(s, kw)
    )


@builtin("randn_like", ("input",), keywords=frozenset({"dtype", "requires_grad"}))
def _randn_like(s, x, dtype=None, requires_grad=False):
    x = _t(s, x)
    if dtype is not None and not isinstance(dtype, str):
        raise AdcliError("type", 'dtype= takes a string such as "float64"')
    return E.randn_like(
        x, dtype=dtype, requires_grad=_bool(requires_grad, "requires_grad"), generator=s.rng
    )


# ----- autograd ----------------------------------------------------------------------------------


def _where_now(s, what: str):
    """The tag a pass leaves on the nodes it frees: which builtin, and where it ran."""
    span = s._statement_span
    return None if span is None else (what, f"{span.file}:{span.line}:{span.column}")


@builtin(
    "backward",
    ("y", "gradient"),
    required=1,
    keywords=frozenset({"retain_graph", "create_graph", "inputs"}),
)
def _backward(s, y, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    if not isinstance(y, Tensor):
        raise AdcliError("type", f"backward() needs a tensor, got {y!r}")
    return _do_backward(s, y, gradient, retain_graph, create_graph, inputs)


def _inputs(value, what) -> list:
    """The tensors of ``inputs=``/grad's ``x``: a tensor, or a tuple or list of them."""
    items = list(value) if isinstance(value, tuple) else [value]
    for item in items:
        if not isinstance(item, Tensor):
            raise AdcliError("type", f"{what} must be tensors, got {type_name(item)}")
    if not items:
        raise AdcliError("value", f"{what} must not be empty")
    return items


def _do_backward(s, y, gradient, retain_graph, create_graph, inputs=None):
    if gradient is not None:
        gradient = _t_like(s, gradient, y)
        if gradient.dtype != y.dtype:
            gradient = E.cast(gradient, y.dtype)
    if inputs is not None:
        inputs = _inputs(inputs, "backward(inputs=)")
    E.backward(
        y,
        gradient,
        retain_graph=None if retain_graph is None else _bool(retain_graph, "retain_graph"),
        create_graph=_bool(create_graph, "create_graph"),
        inputs=inputs,
        freed_by=_where_now(s, "backward"),
    )


@builtin(
    "grad",
    ("y", "x", "grad_outputs"),
    required=2,
    keywords=frozenset({"create_graph", "retain_graph", "order", "method"}),
)
def _grad(
    s, y, x, grad_outputs=None, create_graph=False, retain_graph=None, order=None, method="auto"
):
    if isinstance(x, tuple):
        xs = _inputs(x, "grad()'s inputs")
        if order is not None:
            return tuple(
                _grad(s, y, xi, grad_outputs, create_graph, True, order, method) for xi in xs
            )
        for xi in xs:
            check_differentiable(xi)
        if not isinstance(y, Tensor):
            # A number does not require grad: PyTorch's error, never a silent zero.
            raise no_grad_fn_error(y)
        if grad_outputs is not None:
            grad_outputs = _t(s, grad_outputs)
            if grad_outputs.dtype != y.dtype:
                grad_outputs = E.cast(grad_outputs, y.dtype)
        return tuple(
            E.grad(
                y,
                xs,
                grad_outputs,
                retain_graph=None if retain_graph is None else _bool(retain_graph, "retain_graph"),
                create_graph=_bool(create_graph, "create_graph"),
                freed_by=_where_now(s, "grad"),
            )
        )
    if not isinstance(x, Tensor):
        raise AdcliError("type", f"grad(y, x): x must be a tensor, got {x!r}")
    check_differentiable(x)
    create_graph = _bool(create_graph, "create_graph")
    retain_graph = None if retain_graph is None else _bool(retain_graph, "retain_graph")
    if not isinstance(y, Tensor):
        # A number does not require grad: PyTorch's error, never a silent zero.
        raise no_grad_fn_error(y)
    if order is not None:
        order = whole_number(order, "order")
        if order < 1:
            raise AdcliError("value", f"order must be at least 1, got {order}")
        s._check_order(order, None)
        if method not in ("auto", "taylor", "nested"):
            raise AdcliError(
                "value", f'method must be "auto", "taylor" or "nested", got {method!r}'
            )
        return E.nth_grads(
            y,
            x,
            order,
            create_graph=create_graph,
            method=method,
            retain_graph=retain_graph,
            freed_by=_where_now(s, "grad"),
        )[-1]
    if grad_outputs is not None:
        grad_outputs = _t_like(s, grad_outputs, y)
        if grad_outputs.dtype != y.dtype:
            grad_outputs = E.cast(grad_outputs, y.dtype)
    return E.grad(
        y,
        x,
        grad_outputs,
        retain_graph=retain_graph,
        create_graph=create_graph,
        freed_by=_where_now(s, "grad"),
    )


# ----- functional transforms (torch.autograd.functional) and linear algebra (opsB) ----------
# One block, so that it can move as a whole when table ops become builtins by themselves.


def _transform_inputs(s, x):
    """A tensor, or a tuple (or list) of tensors: the inputs of a functional transform."""
    if isinstance(x, (tuple, list)):
        return tuple(_t(s, v) for v in x)
    return _t(s, x)


def _transform(name, engine_fn, with_vector):
    params = ("f", "x", "v") if with_vector else ("f", "x")
    required = 3 if name == "hvp" else 2

    @builtin(name, params, required=required, keywords=frozenset({"create_graph"}))
    def run(s, f, x, v=None, create_graph=False):
        args = [s.as_callable(f, s._statement_span), _transform_inputs(s, x)]
        if with_vector:
            args.append(None if v is None else _transform_inputs(s, v))
        return engine_fn(*args, create_graph=_bool(create_graph, "create_graph"))

    return run


_transform("jacobian", E.jacobian, False)
_transform("hessian", E.hessian, False)
_transform("jvp", E.jvp, True)
_transform("vjp", E.vjp, True)
_transform("hvp", E.hvp, True)


@builtin("einsum", ("equation", "operands"), required=2, variadic=True)
def _einsum(s, equation, *operands):
    if len(operands) == 1 and isinstance(operands[0], (tuple, list)):
        operands = tuple(operands[0])
    return E.einsum(equation, *(_t(s, x) for x in operands))


@builtin("tensordot", ("a", "b", "dims"), required=2)
def _tensordot(s, a, b, dims=2):
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, float) and dims.is_integer():
        dims = int(dims)
    if isinstance(dims, (tuple, list)):
        dims = tuple(
            [whole_number(d, "dims") for d in (part if isinstance(part, (tuple, list)) else [part])]
            for part in dims
        )
    return E.tensordot(_t(s, a), _t(s, b), dims)


@builtin("det", ("x",), doc="torch.linalg.det")
def _det(s, x):
    return E.det(_t(s, x))


@builtin("inverse", ("x",), doc="torch.linalg.inv")
def _inverse(s, x):
    return E.inverse(_t(s, x))


@builtin("solve", ("A", "B"))
def _solve(s, a, b):
    return E.solve(_t(s, a), _t(s, b))


_CASTS = {"long": "int64", "bool": "bool", "float": "float32", "double": "float64"}
for _method, _dtype in _CASTS.items():
    METHOD_IMPLS[_method] = lambda s, x, d=_dtype: E.cast(x, d)
METHOD_IMPLS["det"] = lambda s, x: E.det(x)
METHOD_IMPLS["inverse"] = lambda s, x: E.inverse(x)


@builtin(
    "gradcheck", ("f", "x"), required=2, variadic=True, keywords=frozenset({"eps", "atol", "rtol"})
)
def _gradcheck(s, f, *xs, eps=1e-6, atol=1e-5, rtol=1e-3):
    report = E.gradcheck(
        s.as_callable(f, s._statement_span),
        [_t(s, x) for x in xs],
        eps=_num(eps, "eps"),
        atol=_num(atol, "atol"),
        rtol=_num(rtol, "rtol"),
    )
    return report["ok"]


@builtin("detach", ("x",))
def _detach(s, x):
    return _t(s, x).detach()


@builtin("no_grad", ("expr",), lazy=True, doc="evaluate expr without recording")
def _no_grad(s, node):
    with E.no_grad():
        return s.eval(node.args[0])


@builtin("zero_grad", ("x",), required=1, variadic=True)
def _zero_grad(s, *xs):
    for x in xs:
        if not isinstance(x, Tensor):
            raise AdcliError("type", f"zero_grad() takes tensors, got {x!r}")
        if x._grad is not None:
            x._grad.zero_()


@builtin("anomaly", ("on",))
def _anomaly(s, on):
    s.detect_anomaly = _bool(on, "anomaly")
    E.STATE.anomaly = s.detect_anomaly


# ----- utilities -------------------------------------------------------------------------------


@builtin("seed", ("n",))
def _seed(s, n):
    n = whole_number(n, "seed")
    if n < 0:
        raise AdcliError("value", f"seed(n): n must be a non-negative whole number, got {n}")
    s.rng = np.random.default_rng(n)


@builtin("print", (), variadic=True)
def _print(s, *values):
    text = " ".join(print_text(v, s.dtype) for v in values)
    s._show(Output("print", values, text, s._statement_span))


@builtin("allclose", ("a", "b"), keywords=frozenset({"rtol", "atol"}))
def _allclose(s, a, b, rtol=1e-5, atol=1e-8):
    return E.allclose(
        _t_like(s, a, b), _t_like(s, b, a), rtol=_num(rtol, "rtol"), atol=_num(atol, "atol")
    )


@builtin("shape", ("x",))
def _shape_of(s, x):
    return tuple(_t(s, x).shape)


@builtin("item", ("x",))
def _item(s, x):
    return _t(s, x).item()


# ----- methods -----------------------------------------------------------------------------------


@method("backward")
def _m_backward(s, x, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    return _do_backward(s, x, gradient, retain_graph, create_graph, inputs)


@builtin("range", ("start", "stop", "step"), required=1, doc="range(n), range(a, b[, step])")
def _range(s, start, stop=None, step=1):
    start = whole_number(start, "range()'s start")
    if stop is None:
        start, stop = 0, start
    else:
        stop = whole_number(stop, "range()'s stop")
    step = whole_number(step, "range()'s step")
    if step == 0:
        raise AdcliError("value", "range() arg 3 must not be zero")
    return range(start, stop, step)


@builtin("len", ("input",), doc="the length of a tuple, a range, or a tensor's first dimension")
def _len(s, x):
    if isinstance(x, (tuple, range, str)):
        return len(x)
    if isinstance(x, Tensor):
        if x.ndim == 0:
            raise AdcliError("type", "len() of a 0-d tensor")
        return x.shape[0]
    raise AdcliError("type", f"{type_name(x)} has no len()")


METHOD_IMPLS.update(
    {
        "zero_": lambda s, x: E.zero_(x),
        "detach": lambda s, x: x.detach(),
        "cuda": lambda s, x, index=0: E.to(x, f"cuda:{whole_number(index, 'index')}"),
        "cpu": lambda s, x: E.to(x, "cpu"),
        "item": lambda s, x: x.item(),
        "retain_grad": lambda s, x: x.retain_grad(),
    }
)


@method("to")
def _m_to(s, x, target):
    if not isinstance(target, str):
        raise AdcliError("type", '.to() takes a device ("cpu", "cuda") or a dtype ("float64")')
    if target in ("float32", "float64", "int64", "bool"):
        return E.cast(x, target)
    return E.to(x, target)


@method("requires_grad_")
def _m_requires_grad(s, x, flag=True):
    x.requires_grad = _bool(flag, "requires_grad")
    return x


# ----- the engine's public ops: builtins and methods generated from their declarations ---------


def _convert(s, p, value, like=None):
    """An argument for parameter ``p`` of a public op, from a language value.

    ``like`` is the call's first tensor argument: a number given where a tensor is
    wanted takes its dtype and device (a Python float beside a float64 tensor stays
    exact, and does not widen a float32 one), as PyTorch's wrapped numbers do."""
    kind = p.kind
    if value is None and p.default is None:
        return None
    if kind == "tensor":
        if type(value) is Tensor:
            return value
        return _t(s, value) if like is None else _t_like(s, value, like)
    if kind == "operand":
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, (Tensor, int, float)):
            return value
        raise AdcliError("type", f"{p.name} must be a tensor or a number, got {_describe(value)}")
    if kind == "tensors":
        if isinstance(value, (tuple, list)):
            return tuple(_t(s, v) for v in value)
        return value  # the engine says what it wants
    if kind == "number":
        return _num(value, p.name)
    if kind in ("int", "dim"):
        return whole_number(value, p.name)
    if kind == "dims":
        return _dim(value)
    if kind == "shape":
        return _shape((value,), p.name)
    if kind == "bool":
        return _bool(value, p.name)
    if kind == "str" and not isinstance(value, str):
        raise AdcliError("type", f"{p.name} must be a string, got {_describe(value)}")
    return value


def _language_value(value):
    """Lists (``tolist``) become the language's tuples."""
    if isinstance(value, list):
        return tuple(_language_value(v) for v in value)
    return value


def _adapter(spec, fn):
    """``fn(s, *args, **kwargs)``: the language's arguments converted, then the engine's op."""
    params = spec.params
    if len(params) == 1 and params[0].kind == "tensor" and spec.group != "utility":
        return lambda s, x: fn(x if type(x) is Tensor else _t(s, x))  # the per-op hot path
    positional = [p for p in params if not p.keyword_only and not p.variadic]
    variadic = next((p for p in params if p.variadic), None)
    by_name = {p.name: p for p in params}

    def call(s, *args, **kwargs):
        like = next((v for v in args if type(v) is Tensor), None)
        values = [_convert(s, p, v, like) for p, v in zip(positional, args)]
        extra = args[len(positional) :]
        keywords = {}
        for name, v in kwargs.items():
            p = by_name[name]
            if p.keyword_only:
                keywords[name] = _convert(s, p, v)
        missing = [p for p in positional[len(values) :]]
        if any(p.name in kwargs for p in missing):
            for p in missing:
                values.append(_convert(s, p, kwargs[p.name]) if p.name in kwargs else p.default)
        if variadic is not None:
            values.extend(_shape(extra, variadic.name) if variadic.kind == "shape" else extra)
        return _language_value(fn(*values, **keywords))

    call.__signature__ = _signature(params)  # so a builtin displays with its defaults
    return call


def _signature(params) -> inspect.Signature:
    """``(s, input, dim=None, *, keepdim=False)`` of a public op's declaration."""
    P = inspect.Parameter
    out = [P("s", P.POSITIONAL_ONLY)]
    for p in params:
        if p.variadic:
            out.append(P(p.name, P.VAR_POSITIONAL))
        elif p.keyword_only:
            out.append(P(p.name, P.KEYWORD_ONLY, default=p.default))
        elif p.required:
            out.append(P(p.name, P.POSITIONAL_OR_KEYWORD))
        else:
            out.append(P(p.name, P.POSITIONAL_OR_KEYWORD, default=p.default))
    return inspect.Signature(out)


def _lazy_adapter(spec, call):
    """For ops taking a sequence of tensors: a bracket list there is a list of tensors."""
    kinds = [p.kind for p in spec.params if not p.keyword_only and not p.variadic]

    def lazy(s, node):
        args = []
        for i, a in enumerate(node.args):
            if i < len(kinds) and kinds[i] == "tensors" and isinstance(a, N.ListLit):
                args.append(tuple(s.eval(item) for item in a.items))
            else:
                args.append(s.eval(a))
        kwargs = {kw.name: s.eval(kw.value) for kw in node.kwargs}
        try:
            return call(s, *args, **kwargs)
        except AdcliError as err:
            raise err.at(node.span) from None

    return lazy


#: the engine's public ops that were builtins in v1 (a program may not redefine them)
V1_NAMES = frozenset(
    [
        "sqrt",
        "log",
        "exp",
        "pow",
        "abs",
        "sin",
        "cos",
        "tan",
        "tanh",
        "sigmoid",
        "relu",
        "sign",
        "mm",
        "matmul",
        "dot",
        "sum",
        "mean",
        "transpose",
        "reshape",
        "permute",
        "expand",
        "maximum",
        "minimum",
        "where",
        "clone",
        "zeros_like",
        "ones_like",
        "numel",
    ]
)


def _register_public() -> None:
    for name, public in E.PUBLIC.items():
        spec = public.api
        call = _adapter(spec, public.fn)
        positional = [p for p in spec.params if not p.keyword_only and not p.variadic]
        variadic = any(p.variadic for p in spec.params)
        keyword_only = frozenset(p.name for p in spec.params if p.keyword_only and not p.variadic)
        required = sum(1 for p in positional if p.required)
        lazy = any(p.kind == "tensors" for p in spec.params)
        if spec.function and name not in BUILTINS:  # (randn_like: the session's generator)
            BUILTINS[name] = Builtin(
                name,
                _lazy_adapter(spec, call) if lazy else call,
                tuple(p.name for p in positional),
                required,
                variadic,
                keyword_only,
                lazy,
                spec.doc or spec.composite,
                redefinable=name not in V1_NAMES,
            )
        method_name = spec.method_name
        if method_name and method_name not in METHOD_IMPLS:
            rest = positional[1:]
            METHODS[method_name] = (
                sum(1 for p in rest if p.required),
                None if variadic else len(rest),
                frozenset(p.name for p in rest) | keyword_only,
            )
            METHOD_IMPLS[method_name] = call


_register_public()
