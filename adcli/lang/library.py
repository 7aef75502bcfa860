"""What each builtin function and method of the language does (registered into
:data:`adcli.lang.builtins.BUILTINS` and :data:`METHOD_IMPLS`).

Each implementation takes the running :class:`~adcli.lang.interpreter.Session`
first, converts the language's values (numbers, bracket literals, shapes) to
what the engine wants, and calls the engine.
"""

from __future__ import annotations

import numpy as np

from adcli import engine as E
from adcli.engine.functional import kind_of
from adcli.engine.tensor import Tensor
from adcli.errors import AdcliError
from adcli.lang import nodes as N
from adcli.lang.builtins import BUILTINS, CREATION_KEYWORDS, METHODS, Builtin, builtin

METHOD_IMPLS: dict = {}


def method(name):
    def register(fn):
        METHOD_IMPLS[name] = fn
        return fn

    return register


# ----- conversions ---------------------------------------------------------------------------


def _t(s, value) -> Tensor:
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
    from adcli.lang.interpreter import _type_name

    return _type_name(value)


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
    from math import prod

    from adcli.backend import resolve_dtype

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


def _where_now(s) -> str | None:
    span = s._statement_span
    return None if span is None else f"{span.file}:{span.line}:{span.column}"


@builtin(
    "backward", ("y", "gradient"), required=1, keywords=frozenset({"retain_graph", "create_graph"})
)
def _backward(s, y, gradient=None, retain_graph=None, create_graph=False):
    if not isinstance(y, Tensor):
        raise AdcliError("type", f"backward() needs a tensor, got {y!r}")
    return _do_backward(s, y, gradient, retain_graph, create_graph)


def _do_backward(s, y, gradient, retain_graph, create_graph):
    if gradient is not None:
        gradient = _t(s, gradient)
        if gradient.dtype != y.dtype:
            gradient = E.cast(gradient, y.dtype)
    E.backward(
        y,
        gradient,
        retain_graph=None if retain_graph is None else _bool(retain_graph, "retain_graph"),
        create_graph=_bool(create_graph, "create_graph"),
        freed_by=_where_now(s),
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
    if not isinstance(x, Tensor):
        raise AdcliError("type", f"grad(y, x): x must be a tensor, got {x!r}")
    if not x.requires_grad:
        raise AdcliError(
            "value",
            "One of the differentiated Tensors does not require grad",
            hint="create it with requires_grad=true",
        )
    create_graph = _bool(create_graph, "create_graph")
    if order is not None:
        order = whole_number(order, "order")
        if order < 1:
            raise AdcliError("value", f"order must be at least 1, got {order}")
        s._check_order(order, None)
        if not isinstance(y, Tensor):
            return E.zeros_like(x)
        if method not in ("auto", "taylor", "nested"):
            raise AdcliError(
                "value", f'method must be "auto", "taylor" or "nested", got {method!r}'
            )
        return E.nth_grads(y, x, order, create_graph=create_graph, method=method)[-1]
    if not isinstance(y, Tensor):
        return E.zeros_like(x)
    if grad_outputs is not None:
        grad_outputs = _t(s, grad_outputs)
        if grad_outputs.dtype != y.dtype:
            grad_outputs = E.cast(grad_outputs, y.dtype)
    return E.grad(
        y,
        x,
        grad_outputs,
        retain_graph=None if retain_graph is None else _bool(retain_graph, "retain_graph"),
        create_graph=create_graph,
        freed_by=_where_now(s),
    )


@builtin("jacobian", ("f", "x"))
def _jacobian(s, f, x):
    return E.jacobian(s.as_callable(f, s._statement_span), _t(s, x))


@builtin("hessian", ("f", "x"))
def _hessian(s, f, x):
    return E.hessian(s.as_callable(f, s._statement_span), _t(s, x))


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
    s.rng = np.random.default_rng(whole_number(n, "seed"))


@builtin("print", (), variadic=True)
def _print(s, *values):
    from adcli.lang.interpreter import Output

    text = " ".join(_plain(v) for v in values)
    s._show(Output("print", values, text, s._statement_span))


def _plain(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, Tensor):
        return np.array2string(v.numpy(), precision=4, separator=", ")
    if isinstance(v, tuple):
        return "[" + ", ".join(str(i) for i in v) + "]"
    return str(v)


@builtin("allclose", ("a", "b"), keywords=frozenset({"rtol", "atol"}))
def _allclose(s, a, b, rtol=1e-5, atol=1e-8):
    return E.allclose(_t(s, a), _t(s, b), rtol=_num(rtol, "rtol"), atol=_num(atol, "atol"))


@builtin("shape", ("x",))
def _shape_of(s, x):
    return tuple(_t(s, x).shape)


@builtin("item", ("x",))
def _item(s, x):
    return _t(s, x).item()


# ----- methods -----------------------------------------------------------------------------------


@method("backward")
def _m_backward(s, x, gradient=None, retain_graph=None, create_graph=False):
    return _do_backward(s, x, gradient, retain_graph, create_graph)


METHOD_IMPLS.update(
    {
        "zero_": lambda s, x: x.zero_(),
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
    if target in ("float32", "float64"):
        return E.cast(x, target)
    return E.to(x, target)


@method("requires_grad_")
def _m_requires_grad(s, x, flag=True):
    x.requires_grad = _bool(flag, "requires_grad")
    return x


# ----- the engine's public ops: builtins and methods generated from their declarations ---------


def _convert(s, p, value):
    """An argument for parameter ``p`` of a public op, from a language value."""
    kind = p.kind
    if value is None and p.default is None:
        return None
    if kind == "tensor":
        return value if type(value) is Tensor else _t(s, value)
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
        values = [_convert(s, p, v) for p, v in zip(positional, args)]
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

    return call


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
