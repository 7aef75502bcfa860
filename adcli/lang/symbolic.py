"""Derivatives as expressions of the language, rebuilt from the tape.

The engine records, for each op, a node with the op's table entry, its
parameters and (when asked, :attr:`STATE.keep_inputs`) its inputs. This module
reads that graph back as an expression DAG of :class:`Sym` nodes, then
differentiates the DAG *symbolically* by running the op table's own VJP rules
on symbols: a rule written as ``g * F.cos(a)`` builds the symbol
``g * cos(a)``. So every op of the table that the engine can differentiate,
this module can too, without a rule of its own; what it needs per op is only
how the language spells it (:data:`SPELLINGS`, or a builtin of the same name).

Symbols are hash-consed, so equal subexpressions are one node; the smart
constructors fold constants, drop ``x*1``, ``x+0``, ``x^1`` and ``0*x``, and
collect like terms of sums and products. The printer names every subexpression
used more than once as a statement (``t1 = x^2 + 1; 2*t1*x``): the result is a
program that ``adcli eval`` runs to the same derivative.

It knows the language's spelling, so it lives in the language layer; the
engine is read only through its public objects (``Tensor.grad_fn``, nodes'
``op``, ``params``, ``inputs``, and the op table).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from adcli.engine.ops import TABLE, EachInput
from adcli.engine.tensor import Tensor, origin_of
from adcli.errors import AdcliError

#: most nodes a spelled expression may have (beyond it the formula is unreadable anyway)
MAX_NODES = 20_000
#: most numbers a constant written as a bracket literal may have
MAX_LITERAL = 1_000

_NUMBER = (int, float)

#: the op of a variable's symbol (not a name of the table, which has an op "var")
VARIABLE = "$variable"


class Sym:
    """One node of an expression DAG: a variable, a constant, or a table op on symbols."""

    __slots__ = ("args", "builder", "name", "op", "params", "shape", "value")

    def __init__(self, builder, op, args=(), params=None, shape=(), value=None, name=None):
        self.builder = builder
        self.op = op  # VARIABLE, "const", or the name of an op in TABLE
        self.args = args
        self.params = params
        self.shape = tuple(shape)
        self.value = value  # a constant's value: a float, or a float64 array
        self.name = name  # a variable's name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self):
        return np.dtype("float64")

    def __repr__(self) -> str:
        try:
            return f"Sym({render(self)})"
        except AdcliError:
            return f"Sym({self.op})"

    # Operators, so that the table's rules (written with Python operators) build symbols.
    def __add__(self, other):
        return self.builder.apply("add", (self, other))

    def __radd__(self, other):
        return self.builder.apply("add", (other, self))

    def __sub__(self, other):
        return self.builder.apply("sub", (self, other))

    def __rsub__(self, other):
        return self.builder.apply("sub", (other, self))

    def __mul__(self, other):
        return self.builder.apply("mul", (self, other))

    def __rmul__(self, other):
        return self.builder.apply("mul", (other, self))

    def __truediv__(self, other):
        return self.builder.apply("div", (self, other))

    def __rtruediv__(self, other):
        return self.builder.apply("div", (other, self))

    def __neg__(self):
        return self.builder.apply("neg", (self,))

    def __pow__(self, other):
        # As the engine's ``**``: a tensor exponent is the op that differentiates in it too.
        tensor_exponent = isinstance(other, Sym) and other.op != "const"
        return self.builder.apply("pow_tensor" if tensor_exponent else "pow", (self, other))

    def __rpow__(self, other):
        return self.builder.apply("pow_tensor", (other, self))

    __hash__ = object.__hash__


def _all_equal(s: Sym, number: float) -> bool:
    if s.op != "const":
        return False
    v = s.value
    if isinstance(v, float):
        return v == number
    return bool(v.size) and bool(np.all(v == number))


def _scalar(s: Sym) -> float | None:
    """A constant of shape () as a float, else None."""
    if s.op == "const" and s.shape == ():
        return float(s.value)
    return None


def _params_key(params) -> str:
    if not params:
        return ""
    return repr(sorted(params.items()))


class _Ops:
    """``F`` for the rules: every op of the table, building symbols."""

    def __init__(self, builder) -> None:
        self._builder = builder

    def __getattr__(self, name):
        if name not in TABLE:
            raise AttributeError(name)
        builder = self._builder
        return lambda *args, **params: builder.apply(name, args, params or None)


class Builder:
    """Makes symbols: interned, simplified, constants folded."""

    def __init__(self) -> None:
        self._interned: dict = {}
        self.F = _Ops(self)
        self.count = 0

    # ----- leaves --------------------------------------------------------------------------
    def var(self, name: str, shape) -> Sym:
        key = ("var", name, tuple(shape))
        found = self._interned.get(key)
        if found is None:
            found = self._interned[key] = Sym(self, VARIABLE, shape=shape, name=name)
        return found

    def const(self, value) -> Sym:
        if isinstance(value, Sym):
            return value
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, _NUMBER) or (isinstance(value, np.ndarray) and value.ndim == 0):
            value = float(value)
            key = ("const", repr(value))
            shape: tuple = ()
        else:
            value = np.asarray(value, dtype=np.float64)
            key = ("const", value.shape, value.tobytes())
            shape = value.shape
        found = self._interned.get(key)
        if found is None:
            found = self._interned[key] = Sym(self, "const", shape=shape, value=value)
        return found

    def full(self, shape, number: float) -> Sym:
        shape = tuple(shape)
        if shape == ():
            return self.const(float(number))
        return self.const(np.full(shape, float(number)))

    # ----- ops -----------------------------------------------------------------------------
    def apply(self, name: str, args, params=None) -> Sym:
        """``name(*args, **params)`` as a symbol, simplified."""
        args = tuple(self.const(a) if not isinstance(a, Sym) else a for a in args)
        params = params or None
        simplify = _SIMPLIFY.get(name)
        if simplify is not None:
            found = simplify(self, args, params)
            if found is not None:
                return found
        if all(a.op == "const" for a in args) and name in TABLE:
            return self._fold(name, args, params)
        return self.node(name, args, params)

    def node(self, name: str, args, params=None, shape=None) -> Sym:
        """The interned node itself, with no simplification."""
        key = (name, tuple(id(a) for a in args), _params_key(params))
        found = self._interned.get(key)
        if found is not None:
            return found
        self.count += 1
        if self.count > MAX_NODES:
            raise AdcliError(
                "limit",
                f"the expression has more than {MAX_NODES:,} parts: too large to spell",
                hint="differentiate a smaller piece of the program",
            )
        if shape is None:
            shape = _infer_shape(name, args, params)
        found = self._interned[key] = Sym(self, name, tuple(args), params, shape)
        return found

    def _fold(self, name: str, args, params) -> Sym:
        entry = TABLE[name]
        values = [np.asarray(a.value, dtype=np.float64) for a in args]
        with np.errstate(all="ignore"):
            out = entry.forward(np, *values, **(params or {}))
        out = np.asarray(out)
        if out.dtype.kind == "b":
            out = out.astype(np.float64)
        return self.const(out if out.ndim else float(out))


def _infer_shape(name: str, args, params) -> tuple:
    entry = TABLE.get(name)
    if entry is not None and entry.elementwise and name not in ("sum_to",):
        try:
            return tuple(np.broadcast_shapes(*(a.shape for a in args)))
        except ValueError:
            pass
    # Run the op's own forward on dummy arrays of the right shapes (zero-stride views);
    # where those are degenerate (the inverse of a matrix of equal entries), on random ones.
    dummies = [np.broadcast_to(np.float64(0.5), a.shape) for a in args]
    with np.errstate(all="ignore"):
        try:
            out = entry.forward(np, *dummies, **(params or {}))
        except AdcliError:
            rng = np.random.default_rng(0)
            dummies = [rng.uniform(0.5, 1.5, size=a.shape) for a in args]
            out = entry.forward(np, *dummies, **(params or {}))
    return tuple(np.shape(out))


# ----- simplification -------------------------------------------------------------------------
_MAX_TERMS = 64


def _terms(s: Sym, sign: float, out: list, b: Builder | None = None) -> bool:
    """Append ``(coefficient, term)`` pairs of the sum ``sign * s``; False when too long."""
    if len(out) > _MAX_TERMS:
        return False
    op = s.op
    if op == "add":
        return _terms(s.args[0], sign, out, b) and _terms(s.args[1], sign, out, b)
    if op == "sub":
        return _terms(s.args[0], sign, out, b) and _terms(s.args[1], -sign, out, b)
    if op == "neg":
        return _terms(s.args[0], -sign, out, b)
    if op == "div" and b is not None:
        c = _scalar(s.args[0])
        if c is not None and c < 0:  # -2/t is the term 2/t, subtracted
            out.append((-sign, b.node("div", (b.const(-c), s.args[1]))))
            return True
    c = _scalar(s)
    if c is not None:
        out.append((sign * c, None))
        return True
    if op == "mul":
        c = _scalar(s.args[0])
        if c is not None:
            out.append((sign * c, s.args[1]))
            return True
        c = _scalar(s.args[1])
        if c is not None:
            out.append((sign * c, s.args[0]))
            return True
    out.append((sign, s))
    return True


def _scaled(b: Builder, c: float, t: Sym) -> Sym:
    if c == 1:
        return t
    if c == -1:
        return b.node("neg", (t,))
    if c == 0:
        return b.full(t.shape, 0.0)
    return b.node("mul", (b.const(c), t))


def _linear(b: Builder, args, signs, shape) -> Sym | None:
    """A sum or difference with like terms collected and constants added up."""
    terms: list = []
    for a, sign in zip(args, signs):
        if not _terms(a, sign, terms, b):
            return None
    constant = 0.0
    coefficients: dict = {}
    order: list = []
    for c, t in terms:
        if t is None:
            constant += c
            continue
        if id(t) not in coefficients:
            coefficients[id(t)] = 0.0
            order.append(t)
        coefficients[id(t)] += c
    result = None
    for t in order:
        c = coefficients[id(t)]
        if c == 0:
            continue
        if result is None:
            result = _scaled(b, c, t)
        elif c < 0:
            result = b.node("sub", (result, _scaled(b, -c, t)))
        else:
            result = b.node("add", (result, _scaled(b, c, t)))
    if constant != 0 or result is None:
        if result is None:
            result = b.const(constant)
        elif constant < 0:
            result = b.node("sub", (result, b.const(-constant)))
        else:
            result = b.node("add", (result, b.const(constant)))
    if result.shape != shape:
        if result.op == "const" and result.shape == ():
            return b.full(shape, float(result.value))
        return None
    return result


def _simplify_add(b, args, params):
    shape = tuple(np.broadcast_shapes(args[0].shape, args[1].shape))
    return _linear(b, args, (1.0, 1.0), shape)


def _simplify_sub(b, args, params):
    if args[0] is args[1]:
        return b.full(args[0].shape, 0.0)
    shape = tuple(np.broadcast_shapes(args[0].shape, args[1].shape))
    return _linear(b, args, (1.0, -1.0), shape)


def _simplify_neg(b, args, params):
    return _linear(b, args, (-1.0,), args[0].shape)


def _factors(s: Sym, out: list) -> float | None:
    """Append ``(base, exponent)`` factors of the product ``s``; returns its scalar coefficient."""
    if len(out) > _MAX_TERMS:
        return None
    op = s.op
    if op == "mul":
        left = _factors(s.args[0], out)
        right = _factors(s.args[1], out) if left is not None else None
        return None if right is None else left * right
    if op == "neg":
        inner = _factors(s.args[0], out)
        return None if inner is None else -inner
    c = _scalar(s)
    if c is None and s.op == "const" and s.value.size and np.all(s.value == s.value.flat[0]):
        c = float(s.value.flat[0])  # full(shape, c): its shape is restored by the caller
    if c is not None:
        return c
    if op == "div" and _scalar(s.args[1]) is None:
        numerator = _factors(s.args[0], out)
        below: list = []
        denominator = _factors(s.args[1], below) if numerator is not None else None
        if denominator is None or denominator == 0:
            return None
        out.extend((base, -e) for base, e in below)
        return numerator / denominator
    if op == "pow":
        e = _scalar(s.args[1])
        if e is not None:
            out.append((s.args[0], e))
            return 1.0
    out.append((s, 1.0))
    return 1.0


def _simplify_mul(b, args, params, divide: bool = False):
    shape = tuple(np.broadcast_shapes(args[0].shape, args[1].shape))
    if _all_equal(args[0], 0.0) or (_all_equal(args[1], 0.0) and not divide):
        return b.full(shape, 0.0)
    factors: list = []
    coefficient = _factors(args[0], factors)
    if coefficient is None:
        return None
    below: list = []
    c = _factors(args[1], below)
    if c is None or (divide and c == 0):
        return None
    if divide:
        coefficient /= c
        factors.extend((base, -e) for base, e in below)
    else:
        coefficient *= c
        factors.extend(below)
    if coefficient == 0:
        return b.full(shape, 0.0)
    exponents: dict = {}
    order: list = []
    for base, e in factors:
        if id(base) not in exponents:
            exponents[id(base)] = 0.0
            order.append(base)
        exponents[id(base)] += e
    above = None
    below = None
    for base in order:
        e = exponents[id(base)]
        if e == 0:
            continue
        part = base if abs(e) == 1 else b.node("pow", (base, b.const(abs(e))))
        if e > 0:
            above = part if above is None else b.node("mul", (above, part))
        else:
            below = part if below is None else b.node("mul", (below, part))
    if above is None:
        result = b.const(coefficient)
        if below is not None:
            result = b.node("div", (result, below))
    else:
        if below is not None:
            above = b.node("div", (above, below))
        result = _scaled(b, coefficient, above)
    if result.shape != shape:
        if result.op == "const":
            return b.full(shape, float(np.asarray(result.value).flat[0]))
        try:
            if tuple(np.broadcast_shapes(result.shape, shape)) != shape:
                return None
        except ValueError:
            return None
        return b.node("expand", (result,), {"shape": shape})
    return result


def _simplify_div(b, args, params):
    a, d = args
    shape = tuple(np.broadcast_shapes(a.shape, d.shape))
    if _scalar(d) is None and d.op != "const":
        return _simplify_mul(b, args, params, divide=True)
    if _all_equal(d, 1.0) and a.shape == shape:
        return a
    if _all_equal(a, 0.0):
        return b.full(shape, 0.0)
    if a is d:
        return b.full(shape, 1.0)
    c = _scalar(d)
    if c is not None and c != 0 and a.op != "const":
        inverse = 1.0 / c
        if float(repr(inverse)) == inverse and len(repr(inverse)) <= 8:  # 0.5, 0.25: exact
            return b.apply("mul", (b.const(inverse), a))
    return None


def _simplify_pow(b, args, params):
    base, e = args
    c = _scalar(e)
    if c is None:
        return None
    if c == 1:
        return base
    if c == 0:
        return b.full(base.shape, 1.0)
    if base.op == "pow":
        inner = _scalar(base.args[1])
        if inner is not None and float(inner).is_integer() and float(c).is_integer():
            return b.apply("pow", (base.args[0], b.const(inner * c)))
    return None


def _simplify_sum(b, args, params):
    a = args[0]
    params = params or {}
    dim = params.get("dim")
    if a.shape == () and dim in (None, ()):
        return a
    if dim is None and not params.get("keepdim") and a.op == "sum":
        return b.apply("sum", (a.args[0],))  # a sum of all of a partial sum is the sum of all
    return None


def _simplify_reshape(b, args, params):
    a = args[0]
    shape = tuple(params["shape"])
    if a.shape == shape:
        return a
    if a.op == "reshape":
        return b.apply("reshape", (a.args[0],), {"shape": shape})
    if shape == () and a.op == "sum_to":  # one element: summing everything is the same
        return b.apply("sum", (a.args[0],))
    if a.op == "const":
        value = np.reshape(np.asarray(a.value), shape)
        return b.const(value if shape else float(value))
    return None


def _simplify_expand(b, args, params):
    a = args[0]
    shape = tuple(params["shape"])
    if a.shape == shape:
        return a
    if a.op == "const":
        return b.const(np.array(np.broadcast_to(np.asarray(a.value), shape)))
    return None


def _simplify_sum_to(b, args, params):
    a = args[0]
    shape = tuple(params["shape"])
    if a.shape == shape:
        return a
    if a.op == "expand" and a.args[0].shape == shape:
        return a.args[0]
    try:
        if tuple(np.broadcast_shapes(a.shape, shape)) == shape:
            return a  # smaller than the target: the engine leaves it as it is
    except ValueError:
        pass
    return None


def _identity(b, args, params):
    return args[0]


def _simplify_permute(b, args, params):
    a = args[0]
    axes = tuple(params["axes"])
    if axes == tuple(range(len(axes))):
        return a
    return None


def _simplify_where(b, args, params):
    cond, x, y = args
    shape = tuple(np.broadcast_shapes(cond.shape, x.shape, y.shape))
    if x is y and x.shape == shape:
        return x
    if cond.op == "const":
        if np.all(np.asarray(cond.value) != 0) and x.shape == shape:
            return x
        if np.all(np.asarray(cond.value) == 0) and y.shape == shape:
            return y
    return None


_SIMPLIFY: dict[str, Callable] = {
    "add": _simplify_add,
    "sub": _simplify_sub,
    "neg": _simplify_neg,
    "mul": _simplify_mul,
    "div": _simplify_div,
    "pow": _simplify_pow,
    "pow_tensor": _simplify_pow,
    "sum": _simplify_sum,
    "reshape": _simplify_reshape,
    "expand": _simplify_expand,
    "sum_to": _simplify_sum_to,
    "cast": _identity,
    "to_device": _identity,
    "clone": _identity,
    "permute": _simplify_permute,
    "transpose": _simplify_permute,
    "where": _simplify_where,
}


# ----- reading the tape -------------------------------------------------------------------------
def from_tape(builder: Builder, value, names: dict) -> Sym:
    """The expression DAG that computed ``value``; ``names`` maps ``id(tensor)`` to a name."""
    if not isinstance(value, Tensor):
        if isinstance(value, (bool, int, float)):
            return builder.const(float(value))
        raise AdcliError("type", "symbolic() needs a tensor or a number")
    memo: dict = {}
    # Iterative post-order over the nodes: long chains are fine.
    root = _leaf_or_node(builder, value, names, memo)
    if root is not None:
        return root
    stack = [(value.grad_fn, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in memo:
            continue
        inputs = getattr(node, "inputs", None)
        if inputs is None:
            raise AdcliError(
                "value",
                f"the tape of this value ({node.name()}) was recorded without its inputs",
                hint="symbolic forms need the program run with them kept: use "
                "'adcli eval ... --symbolic', or call symbolic() in the script itself",
            )
        if not expanded:
            stack.append((node, True))
            for a in inputs:
                if isinstance(a, Tensor) and a.grad_fn is not None and id(a.grad_fn) not in memo:
                    stack.append((a.grad_fn, False))
            continue
        args = []
        for a in inputs:
            if isinstance(a, Tensor):
                found = _leaf_or_node(builder, a, names, memo)
                args.append(found if found is not None else memo[id(a.grad_fn)])
            else:
                args.append(a)
        memo[id(node)] = builder.apply(node.op.name, args, node.params)
    return memo[id(value.grad_fn)]


def _leaf_or_node(builder, t: Tensor, names, memo):
    """The symbol of a tensor without a recorded node (a variable, a constant, or an op on
    constants read back from its origin); None for a tensor whose node is not built yet."""
    name = names.get(id(t))
    if t.grad_fn is None:
        if name is not None:
            return builder.var(name, t.shape)
        return _from_origin(builder, t, names, memo)
    if id(t.grad_fn) in memo:
        return memo[id(t.grad_fn)]
    return None


def _spellable_origin(t: Tensor):
    """The origin of ``t`` if spelling it keeps derivatives right, else None.

    An op that is not differentiable (``x > 0``) has a zero derivative either way; an op
    on inputs that need no grad depends on no variable being differentiated. But an op
    run under ``no_grad`` on an input that requires grad is a constant: it stays one.
    """
    origin = origin_of(t)
    if origin is None:
        return None
    op, inputs, _ = origin
    if op.differentiable and any(
        isinstance(a, Tensor) and (a.requires_grad or a.grad_fn is not None) for a in inputs
    ):
        return None
    return origin


def _from_origin(builder, t: Tensor, names, memo) -> Sym:
    """``t`` as a constant, or as the op on constants that made it (iteratively)."""
    key = ("origin", id(t))
    if key in memo:
        return memo[key]
    stack = [(t, False)]
    while stack:
        current, expanded = stack.pop()
        ckey = ("origin", id(current))
        if ckey in memo:
            continue
        origin = _spellable_origin(current)
        if origin is None:
            data = current.numpy().astype(np.float64)
            memo[ckey] = builder.const(data if data.ndim else float(data))
            continue
        op, inputs, params = origin
        pending = [
            a
            for a in inputs
            if isinstance(a, Tensor)
            and a.grad_fn is None
            and id(a) not in names
            and ("origin", id(a)) not in memo
        ]
        if not expanded and pending:
            stack.append((current, True))
            stack.extend((a, False) for a in pending)
            continue
        args = []
        for a in inputs:
            if not isinstance(a, Tensor):
                args.append(a)
            elif id(a) in names:
                args.append(builder.var(names[id(a)], a.shape))
            elif a.grad_fn is not None:  # a non-differentiable op of a tensor that needs grad
                args.append(from_tape(builder, a, names))
            else:
                args.append(memo[("origin", id(a))])
        memo[ckey] = builder.apply(op.name, args, params)
    return memo[key]


# ----- symbolic reverse mode --------------------------------------------------------------------
def _topological(root: Sym) -> list:
    """Op nodes reachable from ``root``, inputs before their consumers."""
    seen: set = set()
    post: list = []
    stack = [(root, iter(root.args))]
    seen.add(id(root))
    while stack:
        node, children = stack[-1]
        for child in children:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append((child, iter(child.args)))
                break
        else:
            stack.pop()
            post.append(node)
    return post


def derivative(builder: Builder, y: Sym, x: Sym) -> Sym:
    """d sum(y) / d x as a symbol of ``x``'s shape (the table's VJP rules, run on symbols)."""
    order = _topological(y)
    depends: set = {id(x)}
    for node in order:
        if any(id(a) in depends for a in node.args):
            depends.add(id(node))
    if id(y) not in depends:
        return builder.full(x.shape, 0.0)
    F = builder.F
    grads: dict = {id(y): builder.const(1.0)}
    result = None
    for node in reversed(order):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        if node is x:
            result = g
            continue
        if node.op in (VARIABLE, "const"):
            continue
        entry = TABLE[node.op]
        if g.shape != node.shape and (
            not entry.elementwise
            or any(a.shape != node.shape for a in node.args if id(a) in depends)
        ):
            g = F.expand(g, shape=node.shape)
        inputs = [float(a.value) if _scalar_const(a) else a for a in node.args]
        params = node.params or {}
        for i, a in enumerate(node.args):
            if id(a) not in depends:
                continue
            rule = _rule_of(entry, i)
            if rule is None:
                continue
            gi = rule(F, g, node, *inputs, **params)
            if not isinstance(gi, Sym):
                gi = builder.const(gi)
            if gi.shape != a.shape:
                gi = F.sum_to(gi, shape=a.shape)
            prev = grads.get(id(a))
            # The newest contribution comes from earlier in the program: put it first.
            grads[id(a)] = gi if prev is None else gi + prev
    if result is None:
        return builder.full(x.shape, 0.0)
    if result.shape != x.shape:
        result = F.expand(result, shape=x.shape)
    return result


def _rule_of(entry, i: int):
    """The VJP rule of input ``i`` (None: no gradient), for fixed or any-arity ops (cat)."""
    vjps = entry.vjps
    if isinstance(vjps, EachInput):
        return vjps[i]
    return vjps[i] if i < len(vjps) else None


def _scalar_const(s: Sym) -> bool:
    return s.op == "const" and s.shape == ()


def derivatives(builder: Builder, y: Sym, x: Sym, order: int) -> list:
    """``[D1, ..., Dn]``: D1 = d sum(y)/dx, Dk = d sum(D(k-1))/dx (the spec's nth derivative)."""
    out = []
    current = y
    for _ in range(order):
        current = derivative(builder, builder.apply("sum", (current,)), x)
        out.append(current)
    return out


# ----- spelling -------------------------------------------------------------------------------
# Precedence levels of the language, loosest to tightest.
_COMPARE, _ADD, _MUL, _UNARY, _POW, _ATOM = range(6)


def format_number(v: float) -> str:
    """A number as the language reads it back exactly."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v.is_integer() and abs(v) < 1e16:
        return str(int(v))
    return repr(v)


def _number_level(text: str) -> int:
    if "/" in text:
        return _MUL
    return _UNARY if text.startswith("-") else _ATOM


def _fraction(v: float) -> str | None:
    """``2/3`` for 0.6666666666666666: a small fraction that reads back as exactly ``v``."""
    if v.is_integer() or not math.isfinite(v):
        return None
    for k in range(2, 13):
        n = round(v * k)
        if n != 0 and abs(n) < 10_000 and n / k == v:
            return f"{n}/{k}"
    return None


def _shape_args(shape) -> str:
    return ", ".join(str(int(s)) for s in shape)


def _const_text(s: Sym) -> tuple[str, int]:
    if s.shape == ():
        v = float(s.value)
        text = format_number(v)
        fraction = _fraction(v)
        if fraction is not None and len(fraction) < len(text):
            text = fraction
        return text, _number_level(text)
    v = np.asarray(s.value)
    flat = v.reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        first = float(flat[0])
        if first == 0:
            return f"zeros({_shape_args(s.shape)})", _ATOM
        if first == 1:
            return f"ones({_shape_args(s.shape)})", _ATOM
        return f"full([{_shape_args(s.shape)}], {format_number(first)})", _ATOM
    if flat.size > MAX_LITERAL:
        raise AdcliError(
            "limit",
            f"symbolic: a constant of shape {list(s.shape)} ({flat.size:,} numbers) is too "
            "large to write as a literal",
            hint="bind it to a variable first: the formula then names it",
        )
    return _bracket(v.tolist()), _ATOM


def _bracket(items) -> str:
    if isinstance(items, list):
        return "[" + ", ".join(_bracket(i) for i in items) + "]"
    return format_number(items)


def _dim_text(dim) -> str:
    if isinstance(dim, (tuple, list)):
        if len(dim) == 1:
            return str(int(dim[0]))
        return "[" + ", ".join(str(int(d)) for d in dim) + "]"
    return str(int(dim))


def _reduction(fn: str):
    def spell(p, s):
        text = p.arg(s.args[0])
        params = s.params or {}
        dim = params.get("dim")
        if dim is not None:
            text += f", dim={_dim_text(dim)}"
        if params.get("keepdim"):
            text += ", keepdim=true"
        return f"{fn}({text})", _ATOM

    return spell


def _infix(symbol: str, level: int, right_tighter: bool = True):
    def spell(p, s):
        left = p.operand(s.args[0], level)
        right = p.operand(s.args[1], level + 1 if right_tighter else level)
        return f"{left} {symbol} {right}", level

    return spell


def _spell_mul(p, s):
    left = p.operand(s.args[0], _MUL)
    second = s.args[1]
    if second.op == "div" and id(second) not in p.named:
        # c*(a/b) is written c*a/b: the same number, read left to right.
        return (
            f"{left}*{p.operand(second.args[0], _MUL + 1)}/{p.operand(second.args[1], _MUL + 1)}",
            _MUL,
        )
    if second.op == "mul" and id(second) not in p.named:
        return f"{left}*{p.operand(second, _MUL)}", _MUL  # a*(b*c) is a*b*c
    right = p.operand(second, _MUL + 1)
    return f"{left}*{right}", _MUL


def _spell_div(p, s):
    left = p.operand(s.args[0], _MUL)
    right = p.operand(s.args[1], _MUL + 1)
    return f"{left}/{right}", _MUL


def _spell_pow(p, s):
    base = p.operand(s.args[0], _ATOM)
    exponent = p.operand(s.args[1], _UNARY)
    return f"{base}^{exponent}", _POW


def _spell_neg(p, s):
    return "-" + p.operand(s.args[0], _UNARY + 1), _UNARY


def _call(fn: str):
    def spell(p, s):
        return f"{fn}({', '.join(p.arg(a) for a in s.args)})", _ATOM

    return spell


def _spell_reshape(p, s):
    shape = tuple(s.params["shape"])
    if shape == ():
        return f"sum({p.arg(s.args[0])})", _ATOM  # one element: its sum is it
    return f"reshape({p.arg(s.args[0])}, {_shape_args(shape)})", _ATOM


def _spell_expand(p, s):
    shape = tuple(s.params["shape"])
    return f"expand({p.arg(s.args[0])}, {_shape_args(shape)})", _ATOM


def _spell_permute(p, s):
    axes = tuple(s.params["axes"])
    return f"permute({p.arg(s.args[0])}, {_shape_args(axes)})", _ATOM


def _spell_sum_to(p, s):
    a = s.args[0]
    shape = tuple(s.params["shape"])
    if shape == ():
        return f"sum({p.arg(a)})", _ATOM
    lead = a.ndim - len(shape)
    axes = list(range(lead))
    for i, n in enumerate(shape):
        if n == 1 and a.shape[i + lead] != 1:
            axes.append(i + lead)
    text = f"sum({p.arg(a)}, dim={_dim_text(axes)}, keepdim=true)"
    if lead:
        text = f"sum({text})" if shape == () else f"reshape({text}, {_shape_args(shape)})"
    return text, _ATOM


def _key_text(key) -> str:
    parts = []
    for k in key:
        if isinstance(k, slice):
            start = "" if k.start is None else str(k.start)
            stop = "" if k.stop is None else str(k.stop)
            part = f"{start}:{stop}"
            if k.step is not None:
                part += f":{k.step}"
            parts.append(part)
        elif isinstance(k, (int, np.integer)):
            parts.append(str(int(k)))
        else:
            raise AdcliError("value", f"symbolic: cannot spell the index {k!r}")
    return ", ".join(parts)


def _spell_index(p, s):
    return f"{p.operand(s.args[0], _ATOM)}[{_key_text(s.params['key'])}]", _ATOM


def _spell_index_backward(p, s):
    # The gradient of a[key]: g placed into zeros of a's shape. For integer keys that
    # is g times a one-hot mask; slices have no spelling in the language.
    key = s.params["key"]
    shape = tuple(s.params["shape"])
    g = s.args[0]
    if len(key) == 1 and isinstance(key[0], slice) and len(shape) <= 2:
        # A slice of the first axis: a constant 0/1 matrix puts g back in place.
        rows = np.arange(shape[0])[key[0]]
        placing = np.zeros((shape[0], len(rows)))
        placing[rows, np.arange(len(rows))] = 1
        return f"matmul({_bracket(placing.tolist())}, {p.arg(g)})", _ATOM
    if not all(isinstance(k, (int, np.integer)) for k in key):
        return _spell_placed(p, g, key, shape)  # any other key: a constant placement matrix
    mask = np.zeros(shape[: len(key)] + (1,) * (len(shape) - len(key)))
    mask[tuple(int(k) for k in key)] = 1
    return f"{_bracket(mask.tolist())}*{p.operand(g, _MUL + 1)}", _MUL


def _compare(symbol: str):
    def spell(p, s):
        left = p.operand(s.args[0], _ADD)
        right = p.operand(s.args[1], _ADD)
        return f"{left} {symbol} {right}", _COMPARE

    return spell


def _spell_positive(p, s):
    return f"{p.operand(s.args[0], _ADD)} > 0", _COMPARE


# ----- the table's helper ops (masks and weights inside VJP rules) and the v2 ops -------------
def _filled(s: Sym, number: float) -> str:
    """``number`` everywhere in ``s``'s shape: ``ones(2, 3)`` (a tensor of the session's
    dtype, where a bare number in where() would be the default float32)."""
    return _const_text(s.builder.full(s.shape, number))[0]


def _as_mask(s: Sym, condition: str) -> tuple[str, int]:
    """A 0/1 float mask of a boolean expression (the helpers' values)."""
    return f"where({condition}, {_filled(s, 1)}, {_filled(s, 0)})", _ATOM


def _spell_ties(p, s):
    a, best = s.args
    return _as_mask(s, f"{p.operand(a, _ADD)} == {p.operand(best, _ADD)}")


def _spell_finite_mask(p, s):
    return _as_mask(s, f"isfinite({p.arg(s.args[0])})")


def _spell_clamp_mask(p, s):
    a = p.operand(s.args[0], _ADD)
    params = s.params or {}
    parts = []
    if params.get("min") is not None:
        parts.append(_as_mask(s, f"{a} >= {format_number(params['min'])}")[0])
    if params.get("max") is not None:
        parts.append(_as_mask(s, f"{a} <= {format_number(params['max'])}")[0])
    if not parts:
        return f"ones_like({p.arg(s.args[0])})", _ATOM
    return "*".join(parts), _MUL if len(parts) > 1 else _ATOM


def _spell_maximum_weight(p, s):
    a = p.operand(s.args[0], _ADD)
    b = p.operand(s.args[1], _ADD)
    one, half, zero = _filled(s, 1), _filled(s, 0.5), _filled(s, 0)
    return f"where({a} > {b}, {one}, where({a} == {b}, {half}, {zero}))", _ATOM


def _spell_step(p, s):
    params = s.params
    a = p.operand(s.args[0], _ADD)
    low, high = _filled(s, params["low"]), _filled(s, params["high"])
    return f"where({a} > 0, {high}, {low})", _ATOM


def _positions(shape, dim: int) -> str:
    """``arange(n)`` shaped to run along ``dim`` of a tensor of ``shape`` (as the table's)."""
    n = shape[dim]
    trailing = len(shape) - dim - 1
    if trailing == 0:
        return f"arange({n})"
    return f"reshape(arange({n}), {_shape_args((n,) + (1,) * trailing)})"


def _spell_index_mask(p, s):
    a = s.args[0]
    dim = int(s.params["dim"]) % max(a.ndim, 1)
    arg = "argmax" if s.params.get("largest", True) else "argmin"
    best = f"unsqueeze({arg}({p.arg(a)}, dim={dim}), {dim})"
    return _as_mask(s, f"{_positions(a.shape, dim)} == {best}")


def _position_test(symbol: str):
    # one_hot / from_index: booleans of a's shape, from a's shape alone
    def spell(p, s):
        a = s.args[0]
        dim = int(s.params["dim"]) % max(a.ndim, 1)
        test = f"{_positions(a.shape, dim)} {symbol} {int(s.params['index'])}"
        if a.ndim == 1:
            return test, _COMPARE
        return f"expand({test}, {_shape_args(a.shape)})", _ATOM

    return spell


def _spell_with_dim_keyword(fn: str, keyword: str = "dim"):
    def spell(p, s):
        params = s.params or {}
        value = params[keyword]
        return f"{fn}({p.arg(s.args[0])}, {keyword}={_param_text(value)})", _ATOM

    return spell


def _spell_roll(p, s):
    params = s.params
    shifts, dims = params["shifts"], params["dims"]
    return (
        f"roll({p.arg(s.args[0])}, shifts={_param_text(shifts)}, dims={_param_text(dims)})",
        _ATOM,
    )


def _spell_repeat(p, s):
    return f"repeat({p.arg(s.args[0])}, {_shape_args(s.params['sizes'])})", _ATOM


def _spell_sequence(fn: str):
    def spell(p, s):
        items = ", ".join(p.arg(a) for a in s.args)
        return f"{fn}([{items}], dim={int(s.params['dim'])})", _ATOM

    return spell


def _letters(n: int, skip: str = "") -> str:
    return "".join(c for c in "abcdefghijklmnopqrstuvwxyz" if c not in skip)[:n]


def _spell_diagonal_backward(p, s):
    # g (the diagonals, last dim k) placed on the diagonal of zeros(shape): an einsum with
    # a constant 0/1 array E[k, i, j] (i and j at dim1 and dim2 of the result).
    g = s.args[0]
    params = s.params
    shape = tuple(params["shape"])
    offset = int(params.get("offset", 0))
    dim1 = int(params.get("dim1", 0)) % len(shape)
    dim2 = int(params.get("dim2", 1)) % len(shape)
    k = g.shape[-1] if g.ndim else 1
    m, n = shape[dim1], shape[dim2]
    if k * m * n > MAX_LITERAL:
        raise AdcliError(
            "limit", "symbolic: a diagonal placement is too large to write as a literal"
        )
    placing = np.zeros((k, m, n))
    for t in range(k):
        placing[t, t + max(-offset, 0), t + max(offset, 0)] = 1
    batch = _letters(len(shape) - 2, "kij")
    out = []
    it = iter(batch)
    for axis in range(len(shape)):
        out.append("i" if axis == dim1 else "j" if axis == dim2 else next(it))
    equation = f"{batch}k,kij->{''.join(out)}"
    return f'einsum("{equation}", {p.arg(g)}, {_bracket(placing.tolist())})', _ATOM


def _spell_remainder(p, s):
    return _infix("%", _MUL)(p, s)


def _spell_floor_divide(p, s):
    return _infix("//", _MUL)(p, s)


def _key_mask(shape, key) -> np.ndarray:
    """1 everywhere but at ``key`` (0 there), as a float array of ``shape``."""
    mask = np.ones(shape)
    mask[key] = 0
    return mask


def _placement(key, g_shape, shape) -> np.ndarray:
    """The 0/1 matrix P with index_backward(g) = reshape(P @ flat(g)): one column per g."""
    size = int(np.prod(g_shape, dtype=np.int64))
    columns = []
    for j in range(size):
        e = np.zeros(size)
        e[j] = 1
        # the table's own scatter: a position that a key names twice gets both
        placed = TABLE["index_backward"].forward(np, e.reshape(g_shape), key=key, shape=shape)
        columns.append(np.asarray(placed, dtype=np.float64).reshape(-1))
    return np.stack(columns, axis=1) if columns else np.zeros((int(np.prod(shape)), 0))


def _spell_placed(p, g: Sym, key, shape) -> tuple[str, int]:
    """``g`` put at ``key`` of zeros(shape), by a constant placement matrix."""
    total = int(np.prod(shape, dtype=np.int64))
    size = int(np.prod(g.shape, dtype=np.int64))
    if total * size > MAX_LITERAL:
        raise AdcliError(
            "limit",
            f"symbolic: placing {size:,} values into a tensor of shape {list(shape)} is too "
            "large to write as a literal",
            hint="differentiate a smaller piece of the program",
        )
    placing = _placement(key, g.shape, shape)
    flat = p.arg(g) if g.ndim == 1 else f"reshape({p.arg(g)}, {size})"
    if size == 1 and g.ndim == 0:
        flat = f"reshape({p.arg(g)}, 1)"
    text = f"matmul({_bracket(placing.tolist())}, {flat})"
    if len(shape) != 1:
        text = f"reshape({text}, {_shape_args(shape)})" if shape else f"sum({text})"
    return text, _ATOM


def _spell_index_zero(p, s):
    a = s.args[0]
    mask = _key_mask(a.shape, s.params["key"])
    return f"{p.operand(a, _MUL)}*{_const_text(s.builder.const(mask))[0]}", _MUL


def _spell_overwrite(p, a: Sym, value: Sym, key, accumulate: bool) -> tuple[str, int]:
    shape = a.shape
    picked = np.zeros(shape)[key].shape
    if value.shape != picked:
        value = _expanded(value, picked)
    kept = p.operand(a, _ADD)
    if not accumulate:
        mask = _const_text(a.builder.const(_key_mask(shape, key)))[0]
        kept = f"{p.operand(a, _MUL)}*{mask}"
    if _all_equal(value, 0.0):  # zeros written (the rule of an overwritten tensor)
        return (kept, _MUL) if not accumulate else (kept, _ADD)
    placed = _spell_placed(p, value, key, shape)[0]
    if _all_equal(a, 0.0):
        return placed, _ATOM
    return f"{kept} + {placed}", _ADD


def _expanded(value: Sym, shape) -> Sym:
    return value.builder.apply("expand", (value,), {"shape": tuple(shape)})


def _spell_index_put(p, s):
    params = s.params
    return _spell_overwrite(p, s.args[0], s.args[1], params["key"], bool(params["accumulate"]))


def _spell_copy_slices(p, s):
    return _spell_overwrite(p, s.args[0], s.args[1], s.params["key"], False)


def _spell_nll_loss_backward(p, s):
    # The gradient of nll_loss in x: -g at each row's target (over the kept rows' count for
    # "mean"). The target is a constant, so the 0/1 weights are a literal.
    g, target = s.args
    params = s.params
    if target.op != "const":
        raise AdcliError("value", "symbolic: nll_loss with a target that is not a constant")
    shape = tuple(params["shape"])
    ignore = params.get("ignore_index", -100)
    reduction = params.get("reduction", "mean")
    idx = np.asarray(target.value).astype(np.int64)
    keep = (idx != ignore).astype(np.float64)
    safe = np.where(idx != ignore, idx, 0)
    if len(shape) > 1:
        weight = (np.arange(shape[-1]) == safe[..., None]) * keep[..., None]
    else:
        weight = (np.arange(shape[-1]) == safe) * keep
    weight = -weight.astype(np.float64)
    if reduction == "mean":
        weight = weight / keep.sum()
    literal = _const_text(s.builder.const(weight))[0]
    if g.shape == ():
        return f"{literal}*{p.operand(g, _MUL + 1)}", _MUL
    column = f"reshape({p.arg(g)}, {_shape_args(g.shape + (1,))})"
    return f"{literal}*{column}", _MUL


def _spell_einsum(p, s):
    operands = ", ".join(p.arg(a) for a in s.args)
    return f'einsum("{s.params["equation"]}", {operands})', _ATOM


def _spell_solve(p, s):
    return f"solve({p.arg(s.args[0])}, {p.arg(s.args[1])})", _ATOM


#: How the language spells each op of the table: ``spell(printer, sym) -> (text, level)``.
#: An op missing here is spelled as a call of the builtin of the same name, if there is one.
SPELLINGS: dict[str, Callable] = {
    "add": _infix("+", _ADD),
    "sub": _infix("-", _ADD),
    "mul": _spell_mul,
    "div": _spell_div,
    "neg": _spell_neg,
    "pow": _spell_pow,
    "pow_tensor": _spell_pow,
    "sum": _reduction("sum"),
    "mean": _reduction("mean"),
    "sum_to": _spell_sum_to,
    "expand": _spell_expand,
    "reshape": _spell_reshape,
    "permute": _spell_permute,
    "transpose": _spell_permute,
    "t": _call("transpose"),
    "index": _spell_index,
    "index_backward": _spell_index_backward,
    "mm": _call("mm"),
    "mv": _call("matmul"),
    "vm": _call("matmul"),
    "bmm": _call("matmul"),
    "dot": _call("dot"),
    "eq": _compare("=="),
    "ne": _compare("!="),
    "lt": _compare("<"),
    "le": _compare("<="),
    "gt": _compare(">"),
    "ge": _compare(">="),
    "positive": _spell_positive,
    "clone": _call("clone"),
    # helper ops of the VJP rules: masks and weights, as comparisons made 0/1
    "ties": _spell_ties,
    "finite_mask": _spell_finite_mask,
    "clamp_mask": _spell_clamp_mask,
    "maximum_weight": _spell_maximum_weight,
    "step": _spell_step,
    "index_mask": _spell_index_mask,
    "one_hot": _position_test("=="),
    "from_index": _position_test(">="),
    # reductions and v2 shape ops (the table's parameters, in the builtins' spelling)
    "max": _reduction("max"),
    "min": _reduction("min"),
    "amax": _reduction("amax"),
    "amin": _reduction("amin"),
    "max_dim": _reduction("amax"),  # max(x, dim=d) is a pair; its values are amax's
    "min_dim": _reduction("amin"),
    "prod": _reduction("prod"),
    "logsumexp": _reduction("logsumexp"),
    "softmax": _spell_with_dim_keyword("softmax"),
    "log_softmax": _spell_with_dim_keyword("log_softmax"),
    "cumsum": _spell_with_dim_keyword("cumsum"),
    "cumprod": _spell_with_dim_keyword("cumprod"),
    "squeeze": _spell_reshape,
    "unsqueeze": _spell_reshape,
    "flip": _spell_with_dim_keyword("flip", "dims"),
    "roll": _spell_roll,
    "repeat": _spell_repeat,
    "split": _spell_index,
    "cat": _spell_sequence("cat"),
    "stack": _spell_sequence("stack"),
    "diagonal_backward": _spell_diagonal_backward,
    "diag_embed": _spell_diagonal_backward,
    "remainder": _spell_remainder,
    "floor_divide": _spell_floor_divide,
    "index_zero": _spell_index_zero,
    "index_put": _spell_index_put,
    "copy_slices": _spell_copy_slices,
    "nll_loss_backward": _spell_nll_loss_backward,
    "einsum": _spell_einsum,
    "tensordot": _spell_einsum,
    "solve": _spell_solve,
}


def spelling_of(op_name: str) -> Callable | None:
    """How ``op_name`` is spelled, or None when the language has no spelling for it."""
    found = SPELLINGS.get(op_name)
    if found is not None:
        return found
    from adcli.lang.builtins import BUILTINS

    builtin = BUILTINS.get(op_name)
    if builtin is None:
        return None
    return _generic_call(op_name)


def _generic_call(fn: str):
    def spell(p, s):
        parts = [p.arg(a) for a in s.args]
        for key, value in (s.params or {}).items():
            if value is None:  # the builtins' default for an absent option
                continue
            parts.append(f"{key}={_param_text(value)}")
        return f"{fn}({', '.join(parts)})", _ATOM

    return spell


def _param_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return format_number(float(value))
    if isinstance(value, (tuple, list)):  # a tuple of the language: (0,) or (0, 1)
        items = [_param_text(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise AdcliError("value", f"symbolic: cannot spell the parameter {value!r}")


class _Printer:
    def __init__(self, named: dict) -> None:
        self.named = named  # id(sym) -> name for subexpressions spelled as statements
        self.memo: dict = {}

    def spell(self, s: Sym, top: bool = False) -> tuple[str, int]:
        if not top:
            name = self.named.get(id(s))
            if name is not None:
                return name, _ATOM
        found = self.memo.get(id(s))
        if found is not None and not top:
            return found
        if s.op == VARIABLE:
            result = (s.name, _ATOM)
        elif s.op == "const":
            result = _const_text(s)
        else:
            spell = spelling_of(s.op)
            if spell is None:
                entry = TABLE.get(s.op)
                grad_fn = entry.grad_fn_name(s.params) if entry is not None else s.op
                raise AdcliError(
                    "value",
                    f"symbolic: the op '{s.op}' ({grad_fn}) has no spelling in the language yet",
                    hint="add one to adcli.lang.symbolic.SPELLINGS",
                )
            result = spell(self, s)
        if not top:
            self.memo[id(s)] = result
        return result

    def operand(self, s: Sym, level: int) -> str:
        text, own = self.spell(s)
        return text if own >= level else f"({text})"

    def arg(self, s: Sym) -> str:
        return self.spell(s)[0]


def render(s: Sym) -> str:
    """One expression, every subexpression written out in place."""
    return _Printer({}).spell(s)[0]


def _reference_counts(root: Sym) -> tuple[list, dict]:
    order = _topological(root)
    counts: dict = {}
    for node in order:
        for a in node.args:
            counts[id(a)] = counts.get(id(a), 0) + 1
    return order, counts


def _worth_naming(s: Sym) -> bool:
    if s.op == VARIABLE:
        return False
    if s.op == "const":
        return s.shape != () and s.value.size > 4
    return not (s.op == "neg" and s.args[0].op in (VARIABLE, "const"))


def program(root: Sym, taken=()) -> str:
    """``root`` as a program: subexpressions used twice or more named first (``t1 = ...``)."""
    order, counts = _reference_counts(root)
    taken = set(taken) | {n.name for n in order if n.op == VARIABLE}
    named: dict = {}
    statements = []
    printer = _Printer(named)
    index = 0
    for node in order:
        if node is root or counts.get(id(node), 0) < 2 or not _worth_naming(node):
            continue
        index += 1
        name = f"t{index}"
        while name in taken:
            index += 1
            name = f"t{index}"
        statements.append(f"{name} = {printer.spell(node, top=True)[0]}")
        named[id(node)] = name
    statements.append(printer.spell(root, top=True)[0])
    return "; ".join(statements)


# ----- SymPy (the optional ``symbolic`` extra) ----------------------------------------------------
def sympy_available() -> bool:
    try:
        import sympy  # noqa: F401
    except ImportError:
        return False
    return True


#: The elementwise ops SymPy knows, as functions of the ``sympy`` module.
_SYMPY_FUNCTIONS = {
    "exp": "exp",
    "log": "log",
    "sqrt": "sqrt",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "tanh": "tanh",
    "abs": "Abs",
    "sign": "sign",
}
_FROM_SYMPY = {v: k for k, v in _SYMPY_FUNCTIONS.items()}

#: Past this many operations SymPy's simplify is slow: the basic form is kept.
SYMPY_MAX_OPS = 400


def to_sympy(s: Sym):
    """The SymPy expression of a DAG of scalars, or None where it has other ops or shapes."""
    import sympy

    memo: dict = {}
    for node in _topological(s):
        if node.shape != ():
            return None
        op = node.op
        if op == VARIABLE:
            value = sympy.Symbol(node.name, real=True)
        elif op == "const":
            v = float(node.value)
            # Short decimals (2, 0.5, 1.5) as exact rationals, so SymPy can cancel them.
            exact = math.isfinite(v) and len(repr(v)) <= 8
            value = sympy.nsimplify(v, rational=True) if exact else sympy.Float(v)
        else:
            args = [memo[id(a)] for a in node.args]
            if op == "add":
                value = args[0] + args[1]
            elif op == "sub":
                value = args[0] - args[1]
            elif op == "mul":
                value = args[0] * args[1]
            elif op == "div":
                value = args[0] / args[1]
            elif op == "neg":
                value = -args[0]
            elif op in ("pow", "pow_tensor"):
                value = args[0] ** args[1]
            elif op == "sigmoid":
                value = 1 / (1 + sympy.exp(-args[0]))
            elif op in _SYMPY_FUNCTIONS:
                value = getattr(sympy, _SYMPY_FUNCTIONS[op])(args[0])
            else:
                return None
        memo[id(node)] = value
    return memo[id(s)]


def from_sympy(builder: Builder, expr) -> Sym | None:
    """A SymPy expression back as a symbol, or None where it uses what the language lacks."""
    import sympy

    if expr.is_Symbol:
        return builder.var(expr.name, ())
    if expr.is_Number:
        return builder.const(float(expr)) if expr.is_finite else None
    if expr is sympy.pi or expr is sympy.E:
        return builder.const(float(expr))
    args = [from_sympy(builder, a) for a in expr.args]
    if any(a is None for a in args):
        return None
    if expr.is_Add:
        out = args[0]
        for a in args[1:]:
            out = builder.apply("add", (out, a))
        return out
    if expr.is_Mul:
        out = args[0]
        for a in args[1:]:
            out = builder.apply("mul", (out, a))
        return out
    if expr.is_Pow:
        base, exponent = args
        e = _scalar(exponent)
        if e == 0.5:
            return builder.apply("sqrt", (base,))
        if e == -0.5:
            return builder.apply("div", (1.0, builder.apply("sqrt", (base,))))
        if e is not None and e < 0:
            return builder.apply("div", (1.0, builder.apply("pow", (base, -e))))
        if base.op == "const" and abs(float(base.value) - math.e) < 1e-15:
            return builder.apply("exp", (exponent,))
        return builder.apply("pow" if e is not None else "pow_tensor", (base, exponent))
    name = type(expr).__name__
    if name in _FROM_SYMPY and len(args) == 1:
        return builder.apply(_FROM_SYMPY[name], (args[0],))
    return None


def sympy_simplified(builder: Builder, s: Sym) -> tuple[Sym, object] | None:
    """``(symbol, sympy expression)`` of ``s`` simplified by SymPy, or None where it cannot."""
    import sympy

    expr = to_sympy(s)
    if expr is None or sympy.count_ops(expr) > SYMPY_MAX_OPS:
        return None
    try:
        simpler = sympy.simplify(expr)
    except Exception:  # noqa: BLE001 - SymPy gave up: keep the basic form
        return None
    back = from_sympy(builder, simpler)
    return None if back is None else (back, simpler)


def latex_of(s: Sym | None) -> str:
    """LaTeX of a derivative of scalars (needs SymPy: the ``symbolic`` extra; without it,
    this is the error that says so, whatever ``s`` is)."""
    try:
        import sympy
    except ImportError:
        raise AdcliError(
            "value",
            "--latex needs SymPy, which is not installed",
            hint="install the symbolic extra: pip install 'adcli[symbolic]'",
        ) from None
    expr = to_sympy(s)
    if expr is None:
        raise AdcliError(
            "value",
            "--latex: this derivative has tensor-valued parts that LaTeX output cannot show",
            hint="--latex works for derivatives of scalar variables",
        )
    found = sympy_simplified(s.builder, s)
    return sympy.latex(found[1] if found is not None else expr)


# ----- what the interpreter and the command line call ------------------------------------------
def _names_of(variables: dict) -> dict:
    return {id(v): name for name, v in variables.items() if isinstance(v, Tensor)}


def value_program(value, variables: dict) -> str:
    """The program (in the session's variables) that computes ``value``, from its tape."""
    builder = Builder()
    names = _names_of(variables)
    return program(from_tape(builder, value, names), set(variables))


def derivative_symbols(value, x: Tensor, name: str, order: int, variables: dict) -> list[Sym]:
    """``[D1, ..., Dn]`` of ``value`` with respect to the variable ``x``, as symbols."""
    builder = Builder()
    names = _names_of(variables)
    names[id(x)] = name
    y = from_tape(builder, value, names)
    return derivatives(builder, y, builder.var(name, x.shape), order)


def derivative_programs(
    value, x: Tensor, name: str, order: int, variables: dict, simplify: str = "basic"
) -> list[str]:
    """``[D1, ..., Dn]`` of ``value`` with respect to ``x``, as programs.

    ``simplify``: ``"basic"`` (this module's rules), ``"sympy"`` (then SymPy's
    simplify where the derivative is of scalars, kept when it is shorter), or
    ``"auto"`` (SymPy when it is installed).
    """
    if simplify == "auto":
        simplify = "sympy" if sympy_available() else "basic"
    out = []
    for d in derivative_symbols(value, x, name, order, variables):
        text = program(d, set(variables))
        if simplify == "sympy":
            found = sympy_simplified(d.builder, d)
            if found is not None:
                other = program(found[0], set(variables))
                if len(other) < len(text):
                    text = other
        out.append(text)
    return out


def derivative_latex(value, x: Tensor, name: str, order: int, variables: dict) -> list[str]:
    """``[D1, ..., Dn]`` as LaTeX (SymPy, the ``symbolic`` extra)."""
    return [latex_of(d) for d in derivative_symbols(value, x, name, order, variables)]
