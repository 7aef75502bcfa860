"""The op table as the one home of an op: what is generated from it, and what it must declare.

* Every public op (``adcli.engine.PUBLIC``: the table's exposed entries and
  the composites) is a function of the engine, a builtin of the language and,
  where PyTorch has one, a method of both; it has a line on the man page.
* Values against NumPy (or ``math``), for every elementwise op at several
  shapes and for the reductions, shape ops and losses.
* Each elementwise or linear op has a Taylor rule; each op a gradient case
  (``engine_cases.py``, checked by ``test_engine_grads``).
* PyTorch's subgradients at kinks and edges, float32 kept, errors as AdcliError.

Gradients are checked against finite differences in ``test_engine_grads`` and
against the nested method in ``test_taylor`` (both run every generated case).
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import engine_cases as C
import mpmath
import numpy as np
import pytest

import adcli.engine as E
from adcli.backend import cuda_available
from adcli.engine.ops import TABLE
from adcli.engine.public import PUBLIC
from adcli.errors import AdcliError
from adcli.lang import builtins as B
from adcli.lang import manual
from adcli.lang.interpreter import Session

ROOT = Path(__file__).resolve().parents[1]

# ----- what PyTorch has ---------------------------------------------------------------------------

#: public ops that torch.Tensor also has as methods (torch 2.x)
TORCH_METHODS = frozenset(
    [
        "abs",
        "acos",
        "acosh",
        "asin",
        "asinh",
        "atan",
        "atan2",
        "atanh",
        "ceil",
        "clamp",
        "cos",
        "cosh",
        "cumsum",
        "cumprod",
        "deg2rad",
        "diag",
        "diagonal",
        "dot",
        "erf",
        "erfc",
        "exp",
        "exp2",
        "expm1",
        "flip",
        "fliplr",
        "flipud",
        "floor",
        "hypot",
        "isfinite",
        "isnan",
        "log",
        "log10",
        "log1p",
        "log2",
        "logsumexp",
        "matmul",
        "max",
        "maximum",
        "mean",
        "min",
        "minimum",
        "mm",
        "nan_to_num",
        "norm",
        "outer",
        "permute",
        "pow",
        "prod",
        "rad2deg",
        "reciprocal",
        "relu",
        "repeat",
        "reshape",
        "roll",
        "rot90",
        "round",
        "rsqrt",
        "sigmoid",
        "sign",
        "sin",
        "sinh",
        "softmax",
        "log_softmax",
        "split",
        "chunk",
        "sqrt",
        "square",
        "squeeze",
        "std",
        "sum",
        "t",
        "tan",
        "tanh",
        "tile",
        "trace",
        "transpose",
        "tril",
        "triu",
        "trunc",
        "unsqueeze",
        "var",
        "view",
        "expand",
        "broadcast_to",
        "flatten",
        "amax",
        "amin",
        "argmax",
        "argmin",
        "all",
        "any",
        "clone",
        "numel",
        "size",
        "dim",
        "double",
        "float",
        "long",
        "bool",
        "tolist",
    ]
)
#: the contract's v2 builtin names this registry provides (the rest are the language's own
#: or another engineer's: einsum, tensordot, det, inverse, solve, range, jvp/vjp/hvp)
V2_NAMES = frozenset(
    [
        "tan",
        "asin",
        "acos",
        "atan",
        "atan2",
        "sinh",
        "cosh",
        "asinh",
        "acosh",
        "atanh",
        "log2",
        "log10",
        "log1p",
        "expm1",
        "exp2",
        "erf",
        "erfc",
        "square",
        "rsqrt",
        "reciprocal",
        "sign",
        "floor",
        "ceil",
        "round",
        "trunc",
        "clamp",
        "maximum",
        "minimum",
        "where",
        "softplus",
        "silu",
        "gelu",
        "leaky_relu",
        "deg2rad",
        "rad2deg",
        "hypot",
        "max",
        "min",
        "amax",
        "amin",
        "argmax",
        "argmin",
        "prod",
        "var",
        "std",
        "norm",
        "logsumexp",
        "softmax",
        "log_softmax",
        "cumsum",
        "cumprod",
        "all",
        "any",
        "cat",
        "stack",
        "split",
        "chunk",
        "squeeze",
        "unsqueeze",
        "flatten",
        "view",
        "permute",
        "transpose",
        "flip",
        "fliplr",
        "flipud",
        "rot90",
        "roll",
        "repeat",
        "tile",
        "expand",
        "broadcast_to",
        "diag",
        "diagonal",
        "trace",
        "tril",
        "triu",
        "outer",
        "zeros_like",
        "ones_like",
        "full_like",
        "randn_like",
        "clone",
        "mse_loss",
        "l1_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "cross_entropy",
        "nll_loss",
        "nan_to_num",
        "len",
        "isfinite",
        "isnan",
    ]
)
METHOD_ONLY = frozenset({"size", "dim", "double", "float", "long", "bool", "tolist"})


def test_every_v2_name_is_public():
    assert not V2_NAMES - set(PUBLIC), sorted(V2_NAMES - set(PUBLIC))
    assert not METHOD_ONLY - set(PUBLIC)


@pytest.mark.parametrize("name", sorted(TORCH_METHODS))
def test_a_method_pytorch_has_is_declared_and_reachable(name):
    assert name in PUBLIC, f"{name} is not a public op"
    assert PUBLIC[name].api.method_name == name, f"{name} should also be a tensor method"
    assert hasattr(E.Tensor, name)
    assert name in B.METHODS, f".{name}() is not a method of the language"


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_op_is_exported_and_a_builtin(name):
    public = PUBLIC[name]
    if not public.api.function:
        assert name not in B.BUILTINS or name in ("float", "bool")
        return
    assert name in B.BUILTINS, f"{name} is not a builtin of the language"
    builtin = B.BUILTINS[name]
    positional = [p.name for p in public.api.params if not p.keyword_only and not p.variadic]
    assert builtin.params == tuple(positional), "the builtin's parameters are the declaration's"
    if name != "len":
        assert getattr(E, name) is public.fn


def test_declared_parameters_follow_pytorch_names():
    # spot checks of torch's argument names and defaults
    def params(name):
        return {p.name: p.default for p in PUBLIC[name].api.params}

    assert params("clamp") == {"input": E.ops.REQUIRED, "min": None, "max": None}
    assert params("leaky_relu")["negative_slope"] == 0.01
    assert params("softplus") == {"input": E.ops.REQUIRED, "beta": 1.0, "threshold": 20.0}
    assert params("var")["correction"] == 1
    assert params("transpose") == {"input": E.ops.REQUIRED, "dim0": None, "dim1": None}
    assert params("mse_loss")["reduction"] == "mean"
    assert params("nll_loss")["ignore_index"] == -100
    assert params("gelu")["approximate"] == "none"
    assert params("cat") == {"tensors": E.ops.REQUIRED, "dim": 0}


def test_the_man_page_lists_every_public_op_and_is_up_to_date():
    page = (ROOT / "man" / "adcli-lang.7").read_text()
    current = manual.page_section(page)
    assert current is not None, "the man page lost its generated section"
    for public in PUBLIC.values():
        assert manual.op_line(public) in current, f"no man-page line for {public.api.name}"
    assert current == manual.section(), "man/adcli-lang.7 is stale: python scripts/gen_man_ops.py"


def test_every_elementwise_or_linear_op_has_a_taylor_rule():
    for name, public in PUBLIC.items():
        entry = public.op
        if entry is None or not entry.differentiable:
            continue
        if entry.elementwise or public.api.group in ("elementwise", "shape"):
            assert entry.taylor is not None, (
                f"{name} is elementwise or linear but has no series rule"
            )
    for name in ("cumsum", "trace", "sum", "mean", "flip", "roll", "repeat", "cat", "stack"):
        assert TABLE[name].taylor is not None, name


def test_every_differentiable_public_op_has_a_gradient_case():
    reached = set()
    for case in C.CASES:
        reached |= C.table_ops_in_graph(case.fn(*C.make_inputs(case, C.draw_inputs(case))))
    for name, public in PUBLIC.items():
        if public.op is not None and public.op.differentiable:
            assert public.op.name in reached, f"{name}: no gradient case"


# ----- values against NumPy -------------------------------------------------------------------------

_erf = np.vectorize(math.erf)
_phi = lambda x: 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))

ELEMENTWISE_REFERENCE = {
    "abs": np.abs,
    "acos": np.arccos,
    "acosh": np.arccosh,
    "asin": np.arcsin,
    "asinh": np.arcsinh,
    "atan": np.arctan,
    "atan2": np.arctan2,
    "atanh": np.arctanh,
    "ceil": np.ceil,
    "cos": np.cos,
    "cosh": np.cosh,
    "deg2rad": np.deg2rad,
    "erf": _erf,
    "erfc": lambda x: 1.0 - _erf(x),
    "exp": np.exp,
    "exp2": np.exp2,
    "expm1": np.expm1,
    "floor": np.floor,
    "gelu": lambda x: x * _phi(x),
    "hypot": np.hypot,
    "isfinite": np.isfinite,
    "isnan": np.isnan,
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "log": np.log,
    "log10": np.log10,
    "log1p": np.log1p,
    "log2": np.log2,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "nan_to_num": np.nan_to_num,
    "rad2deg": np.rad2deg,
    "reciprocal": np.reciprocal,
    "relu": lambda x: np.maximum(x, 0.0),
    "round": np.round,
    "rsqrt": lambda x: 1.0 / np.sqrt(x),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "sign": np.sign,
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "sin": np.sin,
    "sinh": np.sinh,
    "softplus": lambda x: np.log1p(np.exp(x)),
    "sqrt": np.sqrt,
    "square": np.square,
    "tan": np.tan,
    "tanh": np.tanh,
    "trunc": np.trunc,
}
NOT_PLAIN = {"clamp", "where"}  # need more arguments: below


def _elementwise_names():
    return sorted(
        n for n, p in PUBLIC.items() if p.api.group == "elementwise" and n not in NOT_PLAIN
    )


def test_every_elementwise_op_has_a_reference():
    declared = {n for n in _elementwise_names() if PUBLIC[n].api.reference}
    missing = set(_elementwise_names()) - set(ELEMENTWISE_REFERENCE) - declared
    assert not missing, f"elementwise ops without a reference (Api.reference or here): {missing}"


def _mp_function(public):
    """The declared reference as a function of mpmath numbers."""
    return eval(f"lambda x, y=None: {public.api.reference}", vars(mpmath))


def _referenced(arity):
    return sorted(
        n
        for n, p in PUBLIC.items()
        if p.api.reference
        and sum(1 for q in p.api.params if q.kind in ("tensor", "operand")) == arity
    )


@pytest.mark.parametrize("name", _referenced(1) + _referenced(2))
def test_values_match_the_declared_mpmath_reference(name):
    public = PUBLIC[name]
    spec = public.api
    n = sum(1 for p in spec.params if p.kind in ("tensor", "operand"))
    domains = spec.domain or ("any",) * n
    arrays = [_draw(d, (5,), name + str(i)) for i, d in enumerate(domains)]
    out = public.fn(*[E.tensor(a, dtype="float64") for a in arrays]).numpy()
    f = _mp_function(public)
    with mpmath.workdps(50):
        expected = [float(f(*[mpmath.mpf(float(a[i])) for a in arrays])) for i in range(5)]
    np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", _referenced(1))
def test_derivatives_to_order_6_match_mpmath(name):
    """Taylor mode (and so each op's series rule) against mpmath's derivatives, 50 digits."""
    public = PUBLIC[name]
    domain = (public.api.domain or ("any",))[0]
    points = _draw(domain, (2,), name + "nth")
    f = _mp_function(public)
    for point in points:
        x = E.tensor(float(point), dtype="float64", requires_grad=True)
        derivs = [d.item() for d in E.nth_grads(public.fn(x), x, 6, method="taylor")]
        with mpmath.workdps(50):
            expected = [float(mpmath.diff(f, mpmath.mpf(float(point)), k)) for k in range(1, 7)]
        np.testing.assert_allclose(
            derivs, expected, rtol=1e-9, atol=1e-10, err_msg=f"{name}({point})"
        )


def _draw(domain, shape, name):
    rng = np.random.default_rng(zlib.crc32(f"{name}{shape}".encode()))
    return C.draw(C.Input(shape, domain), rng)


@pytest.mark.parametrize("name", _elementwise_names())
@pytest.mark.parametrize("shape", [(), (4,), (2, 3)], ids=str)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_elementwise_values_match_numpy(name, shape, dtype):
    spec = PUBLIC[name].api
    n = sum(1 for p in spec.params if p.kind in ("tensor", "operand"))
    domains = spec.domain or ("any",) * n
    arrays = [_draw(d, shape, name + str(i)).astype(dtype) for i, d in enumerate(domains)]
    out = PUBLIC[name].fn(*[E.tensor(a, dtype=dtype) for a in arrays])
    expected = ELEMENTWISE_REFERENCE[name](*[a.astype(np.float64) for a in arrays])
    assert out.shape == np.shape(expected)
    if np.asarray(expected).dtype == bool:
        assert out.dtype == "bool"
    else:
        assert out.dtype == dtype, "float32 stays float32"
    rtol = 1e-12 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(out.numpy().astype(np.float64), expected, rtol=rtol, atol=rtol)


def _f64(values):
    return E.tensor(values, dtype="float64")


X = np.random.default_rng(7).standard_normal((3, 4))
P = np.random.default_rng(8).uniform(0.5, 2.0, (3, 4))

VALUE_ROWS = [
    ("max", lambda: E.max(_f64(X)), X.max()),
    ("max dim values", lambda: E.max(_f64(X), dim=1)[0], X.max(1)),
    ("max dim indices", lambda: E.max(_f64(X), dim=1)[1], X.argmax(1)),
    ("min dim keepdim", lambda: E.min(_f64(X), 0, True)[0], X.min(0, keepdims=True)),
    ("amax tuple", lambda: E.amax(_f64(X), (0, 1)), X.max()),
    ("amin", lambda: E.amin(_f64(X), 1), X.min(1)),
    ("argmax", lambda: E.argmax(_f64(X)), X.argmax()),
    ("argmin dim", lambda: E.argmin(_f64(X), 0), X.argmin(0)),
    ("prod", lambda: E.prod(_f64(P)), P.prod()),
    ("prod dim", lambda: E.prod(_f64(P), 1, keepdim=True), P.prod(1, keepdims=True)),
    ("var", lambda: E.var(_f64(X)), X.var(ddof=1)),
    ("var dim correction=0", lambda: E.var(_f64(X), 0, correction=0), X.var(0)),
    ("std dims", lambda: E.std(_f64(X), (0, 1)), X.std(ddof=1)),
    ("norm", lambda: E.norm(_f64(X)), np.linalg.norm(X)),
    ("norm p=1 dim", lambda: E.norm(_f64(X), 1, 1), np.abs(X).sum(1)),
    ("norm p=3", lambda: E.norm(_f64(X), 3), (np.abs(X) ** 3).sum() ** (1 / 3)),
    ("norm inf", lambda: E.norm(_f64(X), float("inf")), np.abs(X).max()),
    ("norm fro", lambda: E.norm(_f64(X), "fro"), np.linalg.norm(X)),
    ("logsumexp", lambda: E.logsumexp(_f64(X), 1), np.log(np.exp(X).sum(1))),
    ("logsumexp big", lambda: E.logsumexp(_f64([1000.0, 1000.0]), 0), 1000.0 + np.log(2.0)),
    ("softmax", lambda: E.softmax(_f64(X), 1), np.exp(X) / np.exp(X).sum(1, keepdims=True)),
    ("log_softmax", lambda: E.log_softmax(_f64(X), 0), X - np.log(np.exp(X).sum(0))),
    ("cumsum", lambda: E.cumsum(_f64(X), 1), X.cumsum(1)),
    ("cumprod", lambda: E.cumprod(_f64(P), 0), P.cumprod(0)),
    ("erfc far out", lambda: E.erfc(_f64([5.0, 10.0])), [math.erfc(5.0), math.erfc(10.0)]),
    ("all", lambda: E.all(_f64(P)), True),
    ("any dim", lambda: E.any(_f64(X) > 1.0, 1), (X > 1.0).any(1)),
    ("cat", lambda: E.cat([_f64(X), _f64(P)], 1), np.concatenate([X, P], 1)),
    ("stack", lambda: E.stack([_f64(X), _f64(P)], 2), np.stack([X, P], 2)),
    ("squeeze", lambda: E.squeeze(_f64(X[None, :, None])), X),
    ("unsqueeze", lambda: E.unsqueeze(_f64(X), -1), X[:, :, None]),
    ("flatten", lambda: E.flatten(_f64(X)), X.reshape(-1)),
    ("flip", lambda: E.flip(_f64(X), (0, 1)), X[::-1, ::-1]),
    ("fliplr", lambda: E.fliplr(_f64(X)), np.fliplr(X)),
    ("flipud", lambda: E.flipud(_f64(X)), np.flipud(X)),
    ("rot90", lambda: E.rot90(_f64(X)), np.rot90(X)),
    ("rot90 k=3", lambda: E.rot90(_f64(X), 3), np.rot90(X, 3)),
    ("roll", lambda: E.roll(_f64(X), 2), np.roll(X, 2)),
    ("roll dims", lambda: E.roll(_f64(X), (1, -1), (0, 1)), np.roll(X, (1, -1), (0, 1))),
    ("repeat", lambda: E.repeat(_f64(X), 2, 1, 2), np.tile(X, (2, 1, 2))),
    ("tile", lambda: E.tile(_f64(X), (2,)), np.tile(X, (1, 2))),
    ("broadcast_to", lambda: E.broadcast_to(_f64(X[0]), (2, 4)), np.broadcast_to(X[0], (2, 4))),
    ("diag vector", lambda: E.diag(_f64(X[0]), -1), np.diag(X[0], -1)),
    ("diag matrix", lambda: E.diag(_f64(X), 1), np.diag(X, 1)),
    ("diagonal", lambda: E.diagonal(_f64(X), 0, 1, 0), np.diagonal(X, 0, 1, 0)),
    ("trace", lambda: E.trace(_f64(X)), np.trace(X)),
    ("tril", lambda: E.tril(_f64(X), -1), np.tril(X, -1)),
    ("triu", lambda: E.triu(_f64(X)), np.triu(X)),
    ("outer", lambda: E.outer(_f64(X[0]), _f64(P[1])), np.outer(X[0], P[1])),
    ("view", lambda: _f64(X).view(2, -1), X.reshape(2, -1)),
    ("clamp", lambda: E.clamp(_f64(X), -0.5, 0.5), np.clip(X, -0.5, 0.5)),
    ("clamp min", lambda: E.clamp(_f64(X), min=0.0), np.maximum(X, 0.0)),
    ("where", lambda: E.where(_f64(X) > 0, _f64(X), 0.0), np.where(X > 0, X, 0.0)),
    ("mse_loss", lambda: E.mse_loss(_f64(X), _f64(P)), ((X - P) ** 2).mean()),
    ("l1_loss sum", lambda: E.l1_loss(_f64(X), _f64(P), "sum"), np.abs(X - P).sum()),
    (
        "bce",
        lambda: E.binary_cross_entropy(_f64(P / 2.5), _f64(P / 3.0)),
        -(P / 3 * np.log(P / 2.5) + (1 - P / 3) * np.log(1 - P / 2.5)).mean(),
    ),
    (
        "bce with logits",
        lambda: E.binary_cross_entropy_with_logits(_f64(X), _f64(P / 3.0), reduction="none"),
        -(P / 3 * np.log(1 / (1 + np.exp(-X))) + (1 - P / 3) * np.log(1 - 1 / (1 + np.exp(-X)))),
    ),
    (
        "nll_loss",
        lambda: E.nll_loss(_f64(X), _f64([1.0, 0.0, 3.0])),
        -(X[0, 1] + X[1, 0] + X[2, 3]) / 3,
    ),
    (
        "nll_loss ignore_index",
        lambda: E.nll_loss(_f64(X), _f64([1.0, -100.0, 3.0])),
        -(X[0, 1] + X[2, 3]) / 2,
    ),
    (
        "cross_entropy",
        lambda: E.cross_entropy(_f64(X), _f64([1.0, 0.0, 3.0]), reduction="sum"),
        -sum((X - np.log(np.exp(X).sum(1, keepdims=True)))[i, t] for i, t in enumerate([1, 0, 3])),
    ),
]


@pytest.mark.parametrize(("name", "f", "expected"), VALUE_ROWS, ids=[r[0] for r in VALUE_ROWS])
def test_values_match_numpy(name, f, expected):
    out = f()
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert out.shape == np.shape(expected)


def test_split_and_chunk_pieces():
    x = _f64(np.arange(10.0))
    assert [p.shape for p in E.split(x, 4)] == [(4,), (4,), (2,)]
    assert [p.shape for p in E.split(x, [3, 7])] == [(3,), (7,)]
    assert [p.shape for p in E.chunk(x, 3)] == [(4,), (4,), (2,)]
    assert [p.shape for p in x.chunk(5)] == [(2,)] * 5
    np.testing.assert_array_equal(E.split(x, 4)[2].numpy(), [8.0, 9.0])


# ----- PyTorch's grad_fn names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("f", "name"),
    [
        (lambda x: E.atan(x), "AtanBackward"),
        (lambda x: E.square(x), "PowBackward"),
        (lambda x: E.max(x), "MaxBackward"),
        (lambda x: E.max(x, dim=0)[0], "MaxBackward"),
        (lambda x: E.amax(x, 0), "AmaxBackward"),
        (lambda x: E.norm(x), "LinalgVectorNormBackward"),
        (lambda x: E.var(x), "VarBackward"),
        (lambda x: E.clamp(x, min=0), "ClampBackward"),
        (lambda x: E.maximum(x, x * 2), "MaximumBackward"),
        (lambda x: E.cat([x, x]), "CatBackward"),
        (lambda x: E.stack([x, x]), "StackBackward"),
        (lambda x: E.split(x, 1)[0], "SplitBackward"),
        (lambda x: E.unsqueeze(x, 0), "UnsqueezeBackward"),
        (lambda x: E.flatten(x), "ViewBackward"),
        (lambda x: E.l1_loss(x, x * 0), "MeanBackward"),
        (lambda x: E.mse_loss(x, x * 0), "MseLossBackward"),
        (lambda x: E.cross_entropy(E.unsqueeze(x, 0), E.tensor([1.0])), "NllLossBackward"),
        (lambda x: E.softmax(x, 0), "SoftmaxBackward"),
        (lambda x: E.deg2rad(x), "MulBackward"),
        (lambda x: E.floor(x), "FloorBackward"),
    ],
)
def test_grad_fn_names_are_pytorchs(f, name):
    x = E.tensor([0.5, 1.5, -1.0], dtype="float64", requires_grad=True)
    assert f(x).grad_fn.name() == name


# ----- kinks and edges: PyTorch's subgradients exactly ------------------------------------------


def _grad(f, values):
    x = E.tensor(values, dtype="float64", requires_grad=True)
    return E.grad(E.sum(f(x)), x).numpy()


def test_full_max_and_min_split_ties_evenly():
    np.testing.assert_array_equal(_grad(E.max, [1.0, 3.0, 3.0]), [0.0, 0.5, 0.5])
    np.testing.assert_array_equal(_grad(E.min, [2.0, 2.0, 2.0, 5.0]), [1 / 3, 1 / 3, 1 / 3, 0])
    np.testing.assert_array_equal(_grad(lambda x: E.amax(x, 0), [4.0, 4.0]), [0.5, 0.5])


def test_max_along_a_dim_gives_the_gradient_to_the_returned_index():
    g = _grad(lambda x: E.max(x, dim=1)[0], [[3.0, 3.0, 1.0], [0.0, 2.0, 2.0]])
    np.testing.assert_array_equal(g, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    _values, indices = E.max(E.tensor([[3.0, 3.0, 1.0]]), dim=1)
    assert indices.dtype == "int64" and indices.tolist() == [0]


def test_abs_relu_clamp_and_leaky_relu_at_the_boundary():
    np.testing.assert_array_equal(_grad(E.abs, [0.0]), [0.0])
    np.testing.assert_array_equal(_grad(E.relu, [0.0]), [0.0])
    np.testing.assert_array_equal(_grad(lambda x: E.clamp(x, min=0.0, max=1.0), [0.0, 1.0]), [1, 1])
    np.testing.assert_array_equal(_grad(lambda x: E.clamp(x, -1.0, 1.0), [-2.0, 2.0]), [0, 0])
    np.testing.assert_array_equal(_grad(lambda x: E.leaky_relu(x, 0.1), [0.0]), [0.1])
    np.testing.assert_array_equal(_grad(lambda x: E.maximum(x, x * 1.0), [2.0]), [1.0])


def test_sqrt_of_zero_and_norm_of_zero():
    with np.errstate(divide="ignore"):
        assert _grad(E.sqrt, [0.0])[0] == math.inf
    np.testing.assert_array_equal(_grad(E.norm, [0.0, 0.0]), [0.0, 0.0])
    np.testing.assert_array_equal(
        _grad(lambda x: E.norm(x, dim=1), [[0.0, 0.0], [3.0, 4.0]]), [[0.0, 0.0], [0.6, 0.8]]
    )


def test_floor_and_friends_have_zero_gradient():
    for f in (E.floor, E.ceil, E.round, E.trunc, E.sign):
        x = E.tensor([0.3, 1.7], dtype="float64", requires_grad=True)
        y = f(x)
        assert y.requires_grad
        np.testing.assert_array_equal(E.grad(E.sum(y), x).numpy(), [0.0, 0.0])


def test_prod_with_zeros_is_exact():
    np.testing.assert_array_equal(_grad(E.prod, [2.0, 0.0, 3.0]), [0.0, 6.0, 0.0])
    np.testing.assert_array_equal(_grad(E.prod, [0.0, 0.0, 3.0]), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(
        _grad(lambda x: E.prod(x, 1), [[2.0, 0.0], [3.0, 4.0]]), [[0.0, 2.0], [4.0, 3.0]]
    )


def test_prod_with_a_zero_has_the_exact_hessian():
    # f = x0 x1 x2 at (2, 0, 3): H = [[0, x2, x1], [x2, 0, x0], [x1, x0, 0]]
    x = E.tensor([2.0, 0.0, 3.0], dtype="float64", requires_grad=True)
    h = E.hessian(E.prod, x).numpy()
    np.testing.assert_array_equal(h, [[0.0, 3.0, 0.0], [3.0, 0.0, 2.0], [0.0, 2.0, 0.0]])
    m = E.tensor([[0.0, 2.0], [0.0, 5.0]], dtype="float64", requires_grad=True)
    (g,) = E.grad(E.sum(E.prod(m, 0)), [m], create_graph=True)
    np.testing.assert_array_equal(g.numpy(), [[0.0, 5.0], [0.0, 2.0]])
    (h2,) = E.grad(E.sum(g * E.tensor([[1.0, 0.0], [0.0, 0.0]], dtype="float64")), [m])
    np.testing.assert_array_equal(h2.numpy(), [[0.0, 0.0], [1.0, 0.0]])


def test_cumprod_with_zeros_is_exact():
    # d/dx_i of sum(cumprod(x)) = sum over j >= i of prod_{k <= j, k != i} x_k
    np.testing.assert_array_equal(
        _grad(lambda x: E.cumprod(x, 0), [2.0, 0.0, 3.0]), [1.0, 2.0 + 6.0, 0.0]
    )
    np.testing.assert_array_equal(_grad(lambda x: E.cumprod(x, 1), [[0.0, 0.0]]), [[1.0, 0.0]])
    # and its Hessian: sum(cumprod(x)) = x0 + x0 x1 + x0 x1 x2 at (2, 0, 3)
    x = E.tensor([2.0, 0.0, 3.0], dtype="float64", requires_grad=True)
    h = E.hessian(lambda t: E.sum(E.cumprod(t, 0)), x).numpy()
    np.testing.assert_array_equal(h, [[0.0, 1.0 + 3.0, 0.0], [4.0, 0.0, 2.0], [0.0, 2.0, 0.0]])


def test_nan_to_num_passes_gradient_only_where_finite():
    g = _grad(E.nan_to_num, [1.0, math.nan, math.inf])
    np.testing.assert_array_equal(g, [1.0, 0.0, 0.0])


def test_integer_and_bool_results_carry_no_gradient():
    x = E.tensor([1.0, -2.0], dtype="float64", requires_grad=True)
    for y in (E.argmax(x), E.isfinite(x), E.all(x > 0), x.long(), x.bool()):
        assert not y.requires_grad and y.grad_fn is None
    assert x.long().dtype == "int64" and x.bool().dtype == "bool"
    assert x.double() is x and x.float().dtype == "float32"
    assert x.float().grad_fn.name() == "ToCopyBackward"


def test_methods_and_utilities():
    x = E.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3
    assert x.dim() == 2 and x.numel() == 6
    assert x.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert PUBLIC["len"].fn(x) == 2
    assert x.sum(dim=1).tolist() == [6.0, 15.0]
    assert x.relu().view(3, 2).shape == (3, 2)
    assert x.unsqueeze(0).shape == (1, 2, 3)


@pytest.mark.parametrize(
    ("f", "kind"),
    [
        (lambda: E.clamp(E.ones(2)), "value"),
        (lambda: E.cat([E.ones(2), E.ones(2, 2)]), "shape"),
        (lambda: E.cat(E.ones(2)), "type"),
        (lambda: E.stack([E.ones(2), E.ones(3)]), "shape"),
        (lambda: E.softmax(E.ones(2), 2), "value"),
        (lambda: E.max(E.ones(0)), "value"),
        (lambda: E.repeat(E.ones(2, 2), 2), "value"),
        (lambda: E.mse_loss(E.ones(2), E.ones(3)), "shape"),
        (lambda: E.mse_loss(E.ones(2), E.ones(2), reduction="avg"), "value"),
        (lambda: E.nll_loss(E.ones(2, 3), E.tensor([0.0, 5.0])), "value"),
        (lambda: E.nll_loss(E.ones(2, 3), E.tensor([0.5, 1.0])), "value"),
        (lambda: E.binary_cross_entropy(E.tensor([1.5]), E.tensor([1.0])), "value"),
        (lambda: E.trace(E.ones(2)), "shape"),
        (lambda: E.unsqueeze(E.ones(2), 3), "value"),
        (lambda: E.split(E.ones(4), [1, 2]), "value"),
        (lambda: E.gelu(E.ones(1), approximate="fast"), "value"),
        (lambda: E.leaky_relu(E.ones(1), 0.1, 3), "type"),
    ],
)
def test_bad_arguments_are_adcli_errors(f, kind):
    with pytest.raises(AdcliError) as info:
        f()
    assert info.value.kind == kind


# ----- in the language ---------------------------------------------------------------------------


def run(source):
    s = Session()
    outputs = s.run(source, "<test>")
    return s, outputs


def value(source):
    s = Session()
    result = None
    for line in source.strip().splitlines():
        result = s.eval_expr(line) if hasattr(s, "eval_expr") else None
    return s, result


def _session_value(source, name):
    s = Session()
    s.run(source, "<test>")
    return s.variables_[name]


def test_the_language_reaches_new_builtins_and_methods():
    src = """
x = tensor([0.5, -1.0, 2.0], requires_grad=true)
y = sum(atan(x) + x.asinh() + clamp(x, min=0.0) + x.square() + leaky_relu(x, negative_slope=0.2))
g = grad(y, x)
"""
    g = _session_value(src, "g").numpy()
    x = np.array([0.5, -1.0, 2.0])
    expected = 1 / (1 + x**2) + 1 / np.sqrt(1 + x**2) + (x >= 0) + 2 * x + np.where(x > 0, 1, 0.2)
    np.testing.assert_allclose(g, expected, rtol=1e-6)


def test_a_bracket_list_given_to_cat_is_a_list_of_tensors_with_their_gradients():
    src = """
a = tensor([1.0, 2.0], requires_grad=true)
y = sum(cat([a, a * 2.0]) ** 2) + sum(stack([a, a], dim=1))
g = grad(y, a)
"""
    np.testing.assert_allclose(_session_value(src, "g").numpy(), [10.0 + 2, 20.0 + 2])


def test_reductions_and_shapes_in_the_language():
    src = """
x = tensor([[1.0, 5.0, 2.0], [4.0, 0.0, 3.0]], dtype="float64")
a = var(x, dim=1, correction=0)
b = x.softmax(1)
c = x.permute(1, 0).flatten()
d = x.size()
e = x.dim()
f = len(x)
m = amax(x, dim=[0, 1])
t = x.tolist()
"""
    s = Session()
    s.run(src, "<test>")
    v = s.variables_
    xs = np.array([[1.0, 5.0, 2.0], [4.0, 0.0, 3.0]])
    np.testing.assert_allclose(v["a"].numpy(), xs.var(1))
    np.testing.assert_allclose(v["b"].numpy().sum(1), [1.0, 1.0])
    np.testing.assert_array_equal(v["c"].numpy(), xs.T.reshape(-1))
    assert v["d"] == (2, 3) and v["e"] == 2 and v["f"] == 2
    assert v["m"].item() == 5.0
    assert v["t"] == ((1.0, 5.0, 2.0), (4.0, 0.0, 3.0))


def test_a_program_may_define_a_function_named_like_a_v2_op_but_not_a_v1_one():
    s = Session()
    s.run("norm(v) = sum(v * v)\ny = norm(tensor([1.0, 2.0]))", "<test>")
    assert s.variables_["y"].item() == 5.0
    with pytest.raises(AdcliError) as info:
        s.run("sqrt(v) = v", "<test>")
    assert "cannot redefine the builtin 'sqrt'" in info.value.message


def test_creation_like_a_tensor_in_the_language():
    src = """
x = ones(2, 3, dtype="float64")
seed(3)
a = randn_like(x)
seed(3)
b = randn_like(x)
c = full_like(x, 2.5)
d = zeros_like(x, dtype="float32")
e = ones_like(x, requires_grad=true)
"""
    s = Session()
    s.run(src, "<test>")
    v = s.variables_
    np.testing.assert_array_equal(v["a"].numpy(), v["b"].numpy())
    assert v["a"].shape == (2, 3) and v["a"].dtype == "float64"
    assert v["c"].numpy().tolist() == [[2.5] * 3] * 2
    assert v["d"].dtype == "float32" and v["e"].requires_grad


def test_required_parameters_may_be_given_by_keyword():
    src = """
x = tensor([[1.0, 2.0], [3.0, 5.0]])
a = softmax(x, dim=1)
b = x.softmax(dim=0)
c = pow(x, exponent=2)
d = transpose(x, dim0=0, dim1=1)
"""
    s = Session()
    s.run(src, "<test>")
    v = s.variables_
    np.testing.assert_allclose(v["a"].numpy().sum(1), [1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(v["b"].numpy().sum(0), [1.0, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(v["c"].numpy(), [[1.0, 4.0], [9.0, 25.0]])
    np.testing.assert_array_equal(v["d"].numpy(), [[1.0, 3.0], [2.0, 5.0]])
    with pytest.raises(AdcliError) as info:
        s.run("y = softmax(x)", "<test>")
    assert info.value.message == "softmax() takes 2 arguments, but 1 was given"


def test_language_errors_name_the_builtin_and_the_place():
    s = Session()
    with pytest.raises(AdcliError) as info:
        s.run("x = ones(2)\ny = clamp(x)", "<test>")
    assert info.value.kind == "value" and info.value.span.line == 2
    with pytest.raises(AdcliError) as info:
        s.run("y = softmax(ones(2), 0, dimm=0)", "<test>")
    assert "unexpected keyword argument 'dimm'" in info.value.message
    with pytest.raises(AdcliError) as info:
        s.run("y = ones(2).clamp(1, 2, 3)", "<test>")
    assert info.value.kind == "type"


def test_the_nth_derivative_of_new_ops_uses_taylor_mode():
    # atan's 5th derivative at 0.5 against its closed form 24 (5x^4 - 10x^2 + 1) / (1 + x^2)^5
    x = E.tensor(0.5, dtype="float64", requires_grad=True)
    d5 = E.nth_grads(E.atan(x), x, 5, method="taylor")[-1].item()
    assert d5 == pytest.approx(24 * (5 * 0.5**4 - 10 * 0.5**2 + 1) / (1 + 0.25) ** 5, rel=1e-12)


# ----- the whole table on CUDA (skipped without a GPU and CuPy) ---------------------------------

_TABLE_ROW_NAMES = {r[0] for r in C.REDUCTION_ROWS + C.SHAPE_ROWS + C.LOSS_ROWS}
CUDA_TABLE_CASES = [c for c in C.CASES if c.name.endswith("[table]") or c.name in _TABLE_ROW_NAMES]


@pytest.mark.cuda
@pytest.mark.skipif(not cuda_available(), reason="no CUDA GPU / CuPy not installed")
@pytest.mark.parametrize("case", CUDA_TABLE_CASES, ids=repr)
def test_the_table_on_cuda_matches_finite_differences(case):
    C.check_first(case, device="cuda")
    C.check_hvp(case, device="cuda")
