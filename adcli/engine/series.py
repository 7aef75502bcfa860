"""Taylor-series arithmetic and the per-op series rules of the op table.

A rule is ``rule(F, out, *inputs, **params) -> list`` (like a VJP without
``g``). Each input is a :class:`Jet` ``[c0, c1, ..., cK]``: ``c0`` is the
input's value when the node saved it (a tensor or a number; the same values
the VJPs see, still connected to ``x`` through the original graph) and
``None`` otherwise; ``None`` in ``c1..cK`` is an exact zero. ``out`` is the
result's value (only with ``save_output``), ``F`` the recorded ops. The rule
returns the result's ``[_, c1, ..., cK]`` (item 0 is ignored). Linear ops map
every coefficient; nonlinear ones only ever need the values their VJPs need,
so the graph always holds what a rule asks for.

The driver that pushes series through a recorded graph is
:mod:`adcli.engine.taylor`; the op table (:mod:`adcli.engine.ops`) names each
op's rule from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from adcli.engine.tensor import Tensor
from adcli.errors import AdcliError

_NUMBER = (int, float)


class Jet(list):
    """A truncated Taylor series ``[c0, c1, ..., cK]`` of one tensor along ``t``.

    ``c0`` is the value (or ``None`` when unknown: the rule did not need it);
    ``None`` among ``c1..cK`` is an exact zero, so sparse series stay cheap.
    """

    __slots__ = ()

    @property
    def degree(self) -> int:
        return len(self) - 1

    def nonzero(self) -> list:
        """The indices ``k >= 1`` whose coefficient is not an exact zero."""
        return [k for k in range(1, len(self)) if self[k] is not None]


class NoTaylorRule(AdcliError):
    """An op on the path from ``x`` to ``y`` has no Taylor rule."""

    def __init__(self, op_names) -> None:
        names = ", ".join(sorted(op_names))
        super().__init__(
            "value",
            f"no Taylor rule for {names}: the nth derivative cannot use method='taylor'",
            hint="use method='nested' (or 'auto', which falls back to it)",
        )
        self.op_names = frozenset(op_names)


# ----- arithmetic on coefficients where None is an exact zero -----------------------------------


def _plus(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _minus(a, b):
    if b is None:
        return a
    if a is None:
        return -b
    return a - b


def _scaled(a, s):
    if a is None:
        return None
    return a if s == 1 else a * s


def _total(terms):
    """The sum of the terms that are not None (None when all are)."""
    acc = None
    for t in terms:
        if t is not None:
            acc = t if acc is None else acc + t
    return acc


def _cauchy(a, b, k: int, product=None, lo: int = 0):
    """Coefficient ``k`` of the product of two series: sum of ``a[j] * b[k-j]``, ``lo <= j <= k``.

    ``product`` replaces ``*`` for bilinear ops (``F.mm``...).
    """
    acc = None
    for j in range(lo, k + 1):
        u = a[j]
        w = b[k - j]
        if u is None or w is None:
            continue
        term = u * w if product is None else product(u, w)
        acc = term if acc is None else acc + term
    return acc


def _square_coefficient(y, k: int):
    """Coefficient ``k`` of ``y * y``, using the symmetry (half the products)."""
    acc = None
    for i in range((k + 1) // 2):
        u = y[i]
        w = y[k - i]
        if u is not None and w is not None:
            acc = u * w if acc is None else acc + u * w
    if acc is not None:
        acc = acc * 2.0
    if k % 2 == 0 and y[k // 2] is not None:
        acc = _plus(acc, y[k // 2] * y[k // 2])
    return acc


def _weighted_by_index(a) -> dict:
    """``{j: j * a[j]}`` for the nonzero ``a[j]``, ``j >= 1`` (the derivative's coefficients)."""
    return {j: _scaled(a[j], float(j)) for j in a.nonzero()}


def _zero_result(degree: int) -> list:
    return [None] * (degree + 1)


# ----- the rules: linear ops -------------------------------------------------------------------


def add(F, out, a, b):
    return [None] + [_plus(a[k], b[k]) for k in range(1, len(a))]


def sub(F, out, a, b):
    return [None] + [_minus(a[k], b[k]) for k in range(1, len(a))]


def neg(F, out, a):
    return [None] + [None if c is None else -c for c in a[1:]]


def linear_map(op_name: str) -> Callable:
    """The rule of an op that is linear in its one input: apply it to every coefficient."""

    def rule(F, out, a, **params):
        f = getattr(F, op_name)
        return [None] + [None if c is None else f(c, **params) for c in a[1:]]

    rule.__name__ = rule.__qualname__ = f"taylor_{op_name}"
    return rule


def bilinear(op_name: str) -> Callable:
    """The rule of a product (``mul``, ``mm``, ``dot``...): a Cauchy product of the series."""

    def rule(F, out, a, b):
        product = None if op_name == "mul" else getattr(F, op_name)
        return [None] + [_cauchy(a, b, k, product) for k in range(1, len(a))]

    rule.__name__ = rule.__qualname__ = f"taylor_{op_name}"
    return rule


mul = bilinear("mul")


def where(F, out, cond, a, b):
    mask = cond[0]
    result = [None]
    for k in range(1, len(a)):
        if a[k] is None and b[k] is None:
            result.append(None)
        else:
            result.append(
                F.where(mask, 0.0 if a[k] is None else a[k], 0.0 if b[k] is None else b[k])
            )
    return result


def abs(F, out, a):  # the op's name (shadows the builtin here only)
    sign = F.sign(a[0])
    return [None] + [None if c is None else c * sign for c in a[1:]]


def relu(F, out, a):
    mask = F.positive(out)
    return [None] + [None if c is None else c * mask for c in a[1:]]


# ----- the rules: quotients and the usual recurrences ----------------------------------------


def div(F, out, a, b):
    """c = a / b:  c[k] = (a[k] - sum_{j>=1} b[j] c[k-j]) / b[0]."""
    b0 = b[0]
    nz_b = b.nonzero()
    c = [a[0] / b0 if nz_b else None]
    for k in range(1, len(a)):
        s = _total(b[j] * c[k - j] for j in nz_b if j <= k and c[k - j] is not None)
        num = _minus(a[k], s)
        c.append(None if num is None else num / b0)
    return c


def _exp_series(a, y0) -> list:
    """y = exp(a) from y[0]:  y[k] = (1/k) sum_j (j a[j]) y[k-j]."""
    ja = _weighted_by_index(a)
    y = [y0]
    for k in range(1, len(a)):
        s = _total(ja[j] * y[k - j] for j in ja if j <= k and y[k - j] is not None)
        y.append(_scaled(s, 1.0 / k))
    return y


def exp(F, out, a):
    return _exp_series(a, out)


def _log_series(a, y0) -> list:
    """y = log(a):  y[k] = (a[k] - (1/k) sum_{1<=j<k} a[j] (k-j) y[k-j]) / a[0]."""
    a0 = a[0]
    nz = a.nonzero()
    y = [y0]
    iy = {}  # i * y[i], made once each
    for k in range(1, len(a)):
        s = _total(iy[k - j] * a[j] for j in nz if j < k and (k - j) in iy)
        num = _minus(a[k], _scaled(s, 1.0 / k))
        yk = None if num is None else num / a0
        y.append(yk)
        if yk is not None:
            iy[k] = _scaled(yk, float(k))
    return y


def log(F, out, a):
    return _log_series(a, None)


def _power_recurrence(a, a0, y0, p) -> list:
    """y = a^p (a[0] != 0) from a * y' = p * a' * y.

    k a0 y[k] = sum_{j>=1} ((p+1) j - k) a[j] y[k-j]. ``p`` is a number or a
    tensor that does not vary with ``t``. Costs O(K * nonzeros of a).
    """
    nz = a.nonzero()
    y = [y0]
    scalar = isinstance(p, _NUMBER)
    p1 = p + 1.0
    for k in range(1, len(a)):
        if scalar:
            # Terms whose weight (p+1) j / k - 1 vanishes are skipped, not multiplied by 0.
            s = _total(
                _scaled(a[j] * y[k - j], (p1 * j) / k - 1.0)
                for j in nz
                if j <= k and y[k - j] is not None and p1 * j != k
            )
        else:
            pairs = [(j, a[j] * y[k - j]) for j in nz if j <= k and y[k - j] is not None]
            if not pairs:
                y.append(None)
                continue
            weighted = _total(_scaled(t, float(j)) for j, t in pairs)
            s = _minus(p1 * weighted * (1.0 / k), _total(t for _, t in pairs))
        y.append(None if s is None else s / a0)
    return y


def _jet_product(a, b) -> Jet:
    """The full product series, value included."""
    first = None if a[0] is None or b[0] is None else a[0] * b[0]
    return Jet([first] + [_cauchy(a, b, k) for k in range(1, len(a))])


def _jet_square(a) -> Jet:
    first = None if a[0] is None else a[0] * a[0]
    return Jet([first] + [_square_coefficient(a, k) for k in range(1, len(a))])


def _integer_power(a, p: int) -> Jet:
    """a^p for a whole p >= 1 by repeated squaring: exact where a[0] == 0, too."""
    result = None
    base = a
    while True:
        if p & 1:
            result = base if result is None else _jet_product(result, base)
        p >>= 1
        if not p:
            return result
        base = _jet_square(base)


#: whole exponents up to this use repeated squaring; larger ones the recurrence
_SQUARING_UP_TO = 8


def _is_whole(p) -> bool:
    return isinstance(p, int) or (isinstance(p, float) and p.is_integer())


def _any_zero(value) -> bool:
    data = value._data if isinstance(value, Tensor) else value
    return bool((data == 0).any()) if hasattr(data, "any") else data == 0


def pow(F, out, a, b):  # the op's name (shadows the builtin here only)
    """a^b: a whole or real exponent, a tensor exponent, or exp(b log a) when b varies.

    Serves both ``pow`` (constant exponent; the result is not saved, so it is
    recomputed from the saved base when a recurrence needs it) and ``pow_tensor``.
    """
    degree = a.degree
    a0, b0 = a[0], b[0]
    if out is None and not (isinstance(a0, _NUMBER) and isinstance(b0, _NUMBER)):
        out = a0**b0
    if b.nonzero():
        # The exponent varies with t: a^b = exp(b * log a).
        if isinstance(a0, _NUMBER):
            if a0 == 0:
                return _zero_result(degree)
            log_a = Jet([math.log(a0)] + [None] * degree)
        else:
            log_a = Jet(_log_series(a, F.log(a0)))
        exponent = Jet([None] + [_cauchy(b, log_a, k) for k in range(1, degree + 1)])
        return _exp_series(exponent, out)
    if not a.nonzero():
        return _zero_result(degree)
    if isinstance(b0, _NUMBER):
        if b0 == 0:
            return _zero_result(degree)
        if b0 == 1:
            return [None] + list(a[1:])
        if _is_whole(b0) and b0 > 1 and (b0 <= _SQUARING_UP_TO or _any_zero(a0)):
            return _integer_power(a, int(b0))
    return _power_recurrence(a, a0, out, b0)


def sqrt(F, out, a):
    """y = sqrt(a), from y[0] (the input is not saved; a[0] = y[0]^2 where needed)."""
    nz = a.nonzero()
    degree = a.degree
    if 3 * len(nz) < degree:
        # A sparse input (say x^2 + 1): the power recurrence is O(K) here.
        return _power_recurrence(a, out * out, out, 0.5)
    y = [out]
    twice = out * 2.0
    for k in range(1, degree + 1):
        s = None
        for i in range(1, (k + 1) // 2):
            u, w = y[i], y[k - i]
            if u is not None and w is not None:
                s = u * w if s is None else s + u * w
        if s is not None:
            s = s * 2.0
        if k % 2 == 0 and y[k // 2] is not None:
            s = _plus(s, y[k // 2] * y[k // 2])
        num = _minus(a[k], s)
        y.append(None if num is None else num / twice)
    return y


def _sin_cos_series(a, s0, c0):
    """s' = c a', c' = -s a':  s[k] = (1/k) sum j a[j] c[k-j], c[k] = -(1/k) sum j a[j] s[k-j]."""
    ja = _weighted_by_index(a)
    s = [s0]
    c = [c0]
    for k in range(1, len(a)):
        sk = _total(ja[j] * c[k - j] for j in ja if j <= k and c[k - j] is not None)
        ck = _total(ja[j] * s[k - j] for j in ja if j <= k and s[k - j] is not None)
        s.append(_scaled(sk, 1.0 / k))
        c.append(_scaled(ck, -1.0 / k))
    return s, c


def sin(F, out, a):
    return _sin_cos_series(a, F.sin(a[0]), F.cos(a[0]))[0]


def cos(F, out, a):
    return _sin_cos_series(a, F.sin(a[0]), F.cos(a[0]))[1]


def _riccati(a, y0, z0, z_next):
    """y' = z a' where z is a polynomial in y (tanh, sigmoid): y[k] = (1/k) sum j a[j] z[k-j]."""
    ja = _weighted_by_index(a)
    y = [y0]
    z = [z0]
    degree = a.degree
    for k in range(1, degree + 1):
        s = _total(ja[j] * z[k - j] for j in ja if j <= k and z[k - j] is not None)
        y.append(_scaled(s, 1.0 / k))
        if k < degree:
            z.append(z_next(y, k))
    return y


def tanh(F, out, a):
    """tanh' = 1 - y^2."""
    return _riccati(a, out, 1.0 - out * out, lambda y, k: _scaled(_square_coefficient(y, k), -1.0))


def sigmoid(F, out, a):
    """sigmoid' = y (1 - y) = y - y^2."""
    return _riccati(a, out, out * (1.0 - out), lambda y, k: _minus(y[k], _square_coefficient(y, k)))


# ----- v2 rules: functions whose derivative is a series we can build --------------------------


def _integrate(a, d, y0=None) -> list:
    """y with y' = d(t) a'(t):  y[k] = (1/k) sum_{1<=j<=k} j a[j] d[k-j] (``d`` a full series)."""
    ja = _weighted_by_index(a)
    y = [y0]
    for k in range(1, len(a)):
        s = _total(ja[j] * d[k - j] for j in ja if j <= k and d[k - j] is not None)
        y.append(_scaled(s, 1.0 / k))
    return y


def _affine_square(a, c: float, s: float) -> Jet:
    """The series of ``c + s * a^2``, value included."""
    sq = _jet_square(a)
    return Jet([sq[0] * s + c] + [_scaled(x, s) for x in sq[1:]])


def _power_of(u, p: float) -> list:
    """The series of ``u^p`` (``u[0] != 0``), value included."""
    return _power_recurrence(u, u[0], u[0] ** p, p)


def _scaled_series(y, s: float) -> list:
    return [None] + [_scaled(c, s) for c in y[1:]]


def tan(F, out, a):
    """tan' = 1 + y^2."""
    return _riccati(a, out, 1.0 + out * out, lambda y, k: _square_coefficient(y, k))


def asin(F, out, a):
    return _integrate(a, _power_of(_affine_square(a, 1.0, -1.0), -0.5))


def acos(F, out, a):
    return _scaled_series(asin(F, out, a), -1.0)


def atan(F, out, a):
    return _integrate(a, _power_of(_affine_square(a, 1.0, 1.0), -1.0))


def asinh(F, out, a):
    return _integrate(a, _power_of(_affine_square(a, 1.0, 1.0), -0.5))


def acosh(F, out, a):
    return _integrate(a, _power_of(_affine_square(a, -1.0, 1.0), -0.5))


def atanh(F, out, a):
    return _integrate(a, _power_of(_affine_square(a, 1.0, -1.0), -1.0))


def _sinh_cosh_series(a, s0, c0):
    """s' = c a', c' = s a'."""
    ja = _weighted_by_index(a)
    s = [s0]
    c = [c0]
    for k in range(1, len(a)):
        sk = _total(ja[j] * c[k - j] for j in ja if j <= k and c[k - j] is not None)
        ck = _total(ja[j] * s[k - j] for j in ja if j <= k and s[k - j] is not None)
        s.append(_scaled(sk, 1.0 / k))
        c.append(_scaled(ck, 1.0 / k))
    return s, c


def sinh(F, out, a):
    return _sinh_cosh_series(a, F.sinh(a[0]), F.cosh(a[0]))[0]


def cosh(F, out, a):
    return _sinh_cosh_series(a, F.sinh(a[0]), F.cosh(a[0]))[1]


def log2(F, out, a):
    return _scaled_series(_log_series(a, None), 1.0 / math.log(2.0))


def log10(F, out, a):
    return _scaled_series(_log_series(a, None), 1.0 / math.log(10.0))


def log1p(F, out, a):
    return _log_series(Jet([a[0] + 1.0] + list(a[1:])), None)


def expm1(F, out, a):
    return _exp_series(a, out + 1.0)


def exp2(F, out, a):
    return _exp_series(Jet([None] + [_scaled(c, math.log(2.0)) for c in a[1:]]), out)


def _gauss(F, a) -> list:
    """The series of ``exp(-a^2)``, value included."""
    e = _affine_square(a, 0.0, -1.0)
    return _exp_series(e, F.exp(e[0]))


def erf(F, out, a):
    return _integrate(a, [_scaled(c, 2.0 / math.sqrt(math.pi)) for c in _gauss(F, a)])


def erfc(F, out, a):
    return _scaled_series(erf(F, out, a), -1.0)


def rsqrt(F, out, a):
    return _power_recurrence(a, a[0], out, -0.5)


def reciprocal(F, out, a):
    return _power_recurrence(a, a[0], out, -1.0)


def constant(F, out, a, **params):
    """A piecewise constant op (floor, round...): every coefficient is zero."""
    return _zero_result(a.degree)


def _masked(a, mask):
    return [None] + [None if c is None else c * mask for c in a[1:]]


def clamp(F, out, a, min=None, max=None):  # the op's parameter names (shadow builtins here only)
    return _masked(a, F.clamp_mask(a[0], min=min, max=max))


def nan_to_num(F, out, a, **params):
    return _masked(a, F.finite_mask(a[0]))


def leaky_relu(F, out, a, negative_slope=0.01):
    return _masked(a, F.step(a[0], low=negative_slope, high=1.0))


def _blend(a, b, w):
    """a * w + b * (1 - w), coefficient by coefficient (None is zero)."""
    result = [None]
    for k in range(1, len(a)):
        u = None if a[k] is None else a[k] * w
        v = None if b[k] is None else b[k] * (1.0 - w)
        result.append(_plus(u, v))
    return result


def maximum(F, out, a, b):
    return _blend(a, b, F.maximum_weight(a[0], b[0]))


def minimum(F, out, a, b):
    return _blend(a, b, F.maximum_weight(b[0], a[0]))


def _sigmoid_jet(F, a) -> list:
    """The series of ``sigmoid(a)``, value included."""
    s0 = F.sigmoid(a[0])
    return sigmoid(F, s0, a)


def softplus(F, out, a, beta=1.0, threshold=20.0):
    z = Jet([a[0] * beta] + [_scaled(c, beta) for c in a[1:]])
    soft = _integrate(a, _sigmoid_jet(F, z))
    # Past the threshold softplus is the identity: where(linear, a, soft), coefficient-wise.
    return where(F, out, [F.gt(z[0], threshold)], a, soft)


def silu(F, out, a):
    s = _sigmoid_jet(F, a)
    return [None] + [_cauchy(a, s, k) for k in range(1, len(a))]


def gelu(F, out, a, approximate="none"):
    if approximate == "tanh":
        c = math.sqrt(2.0 / math.pi)
        cube = _jet_product(a, _jet_square(a))
        u = Jet([(a[0] + cube[0] * 0.044715) * c])
        u += [_scaled(_plus(a[k], _scaled(cube[k], 0.044715)), c) for k in range(1, len(a))]
        t = tanh(F, F.tanh(u[0]), u)
        t[0] = F.tanh(u[0])
        half = Jet([(t[0] + 1.0) * 0.5] + [_scaled(x, 0.5) for x in t[1:]])
        return [None] + [_cauchy(a, half, k) for k in range(1, len(a))]
    z = Jet([a[0] * math.sqrt(0.5)] + [_scaled(c, math.sqrt(0.5)) for c in a[1:]])
    e = erf(F, None, z)
    cdf = Jet([(F.erf(z[0]) + 1.0) * 0.5] + [_scaled(x, 0.5) for x in e[1:]])
    return [None] + [_cauchy(a, cdf, k) for k in range(1, len(a))]


def hypot(F, out, a, b):
    u = _jet_square(a)
    v = _jet_square(b)
    total = Jet([u[0] + v[0]] + [_plus(u[k], v[k]) for k in range(1, len(a))])
    return sqrt(F, out, total)


def _quotient(n, d) -> list:
    """n / d with None as zero throughout (``d[0]`` a value)."""
    d0 = d[0]
    nz = d.nonzero()
    c = [None if n[0] is None else n[0] / d0]
    for k in range(1, len(n)):
        s = _total(d[j] * c[k - j] for j in nz if j <= k and c[k - j] is not None)
        num = _minus(n[k], s)
        c.append(None if num is None else num / d0)
    return c


def _derivative(a) -> list:
    """The series of ``a'(t)``: ``(m + 1) a[m + 1]`` (one coefficient shorter)."""
    return [_scaled(a[m + 1], float(m + 1)) for m in range(len(a) - 1)]


def atan2(F, out, a, b):
    """theta' = (b a' - a b') / (a^2 + b^2)."""
    da, db = _derivative(a), _derivative(b)
    degree = a.degree
    aa = Jet(list(a[:degree]))
    bb = Jet(list(b[:degree]))
    n = Jet([_minus(_cauchy(bb, da, m), _cauchy(aa, db, m)) for m in range(degree)])
    u, v = _jet_square(aa), _jet_square(bb)
    d = Jet([u[0] + v[0]] + [_plus(u[k], v[k]) for k in range(1, degree)])
    q = _quotient(n, d) if degree else []
    return [None] + [_scaled(q[k - 1], 1.0 / k) for k in range(1, degree + 1)]


# ----- v2 rules: reductions, several inputs, losses -------------------------------------------


def var(F, out, a, dim=None, correction=1, keepdim=False):
    """var = sum(c * c) / (n - correction) with c = a - mean(a): a Cauchy square of c."""
    shape = a[0].shape
    n = math.prod(shape) if dim is None else math.prod(shape[d] for d in dim)
    centred = Jet(
        [a[0] - F.mean(a[0], dim=dim, keepdim=True)]
        + [None if c is None else c - F.mean(c, dim=dim, keepdim=True) for c in a[1:]]
    )
    result = [None]
    for k in range(1, len(a)):
        sq = _square_coefficient(centred, k)
        result.append(
            None if sq is None else F.sum(sq, dim=dim, keepdim=keepdim) * (1.0 / (n - correction))
        )
    return result


def std(F, out, a, dim=None, correction=1, keepdim=False):
    v = var(F, None, a, dim=dim, correction=correction, keepdim=keepdim)
    v[0] = out * out
    return sqrt(F, out, Jet(v))


def _placed(F, jets, keys, shape):
    """Coefficient by coefficient, each input's coefficient placed at its key of ``shape``."""
    result = [None]
    for k in range(1, len(jets[0])):
        acc = None
        for jet, key in zip(jets, keys):
            c = jet[k]
            if c is not None:
                acc = _plus(acc, F.index_backward(c, key=key, shape=shape))
        result.append(acc)
    return result


def _any_coefficient_shape(jets):
    for jet in jets:
        for c in jet[1:]:
            if c is not None:
                return tuple(c.shape)
    return None


def cat(F, out, *jets, dim, sizes):
    some = next(((i, j) for i, j in enumerate(jets) if any(c is not None for c in j[1:])), None)
    if some is None:
        return _zero_result(jets[0].degree)
    _, jet = some
    shape = list(_any_coefficient_shape([jet]))
    shape[dim] = sum(sizes)
    keys = []
    start = 0
    for size in sizes:
        keys.append((slice(None),) * dim + (slice(start, start + size),))
        start += size
    return _placed(F, jets, keys, tuple(shape))


def stack(F, out, *jets, dim):
    shape = _any_coefficient_shape(jets)
    if shape is None:
        return _zero_result(jets[0].degree)
    shape = shape[:dim] + (len(jets),) + shape[dim:]
    keys = [(slice(None),) * dim + (i,) for i in range(len(jets))]
    return _placed(F, jets, keys, shape)


def mse_loss(F, out, a, b, reduction="mean"):
    d = Jet([a[0] - b[0]] + [_minus(a[k], b[k]) for k in range(1, len(a))])
    result = [None]
    for k in range(1, len(a)):
        sq = _square_coefficient(d, k)
        if sq is None or reduction == "none":
            result.append(sq)
        elif reduction == "sum":
            result.append(F.sum(sq))
        else:
            result.append(F.mean(sq))
    return result


def nll_loss(F, out, a, t, **params):
    return [None] + [None if c is None else F.nll_loss(c, t[0], **params) for c in a[1:]]


def nll_loss_backward(F, out, g, t, **params):
    return [None] + [None if c is None else F.nll_loss_backward(c, t[0], **params) for c in g[1:]]


# ----- v2 rules: extremes, norms and softmax (the reductions that are smooth almost everywhere) --


def _kept(F, t, shape, dim, keepdim):
    """A reduction's result with the reduced dims kept as 1 (a full one's 0-d broadcasts)."""
    if keepdim or dim is None:
        return t
    return F.reshape(t, shape=tuple(1 if i in dim else s for i, s in enumerate(shape)))


def _weighted_sums(F, a, w, dim, keepdim):
    """Coefficient by coefficient: ``sum(c * w)`` over ``dim`` (the weights do not vary)."""
    return [None] + [None if c is None else F.sum(c * w, dim=dim, keepdim=keepdim) for c in a[1:]]


def extreme(F, out, a, dim=None, keepdim=False):
    """max, min, amax, amin: the series of the extreme elements (ties averaged, as the VJP)."""
    mask = F.ties(a[0], _kept(F, out, a[0].shape, dim, keepdim))
    w = mask / F.sum(mask, dim=dim, keepdim=True)
    return _weighted_sums(F, a, w, dim, keepdim)


def _selected(largest):
    def rule(F, out, a, dim, keepdim=False):
        w = F.index_mask(a[0], dim=dim, largest=largest)
        return _weighted_sums(F, a, w, (dim,), keepdim)

    rule.__name__ = rule.__qualname__ = "max_dim" if largest else "min_dim"
    return rule


max_dim = _selected(True)
min_dim = _selected(False)


def norm(F, out, a, p=2.0, dim=None, keepdim=False):
    degree = a.degree
    if p == 0:
        return _zero_result(degree)
    sign = F.sign(a[0])
    if p in (math.inf, -math.inf):
        m = F.abs(a[0])
        mask = F.ties(m, _kept(F, out, m.shape, dim, keepdim))
        w = sign * (mask / F.sum(mask, dim=dim, keepdim=True))
        return _weighted_sums(F, a, w, dim, keepdim)
    if p == 1:
        return _weighted_sums(F, a, sign, dim, keepdim)
    if p == 2:
        sq = _jet_square(a)
    else:
        u = Jet([F.abs(a[0])] + [None if c is None else c * sign for c in a[1:]])
        sq = Jet(_power_recurrence(u, u[0], u[0] ** p, p))
    total = Jet(
        [F.sum(sq[0], dim=dim, keepdim=keepdim)]
        + [None if c is None else F.sum(c, dim=dim, keepdim=keepdim) for c in sq[1:]]
    )
    if p == 2:
        return sqrt(F, out, total)
    return _power_recurrence(total, total[0], out, 1.0 / p)


def logsumexp(F, out, a, dim, keepdim=False):
    """log(sum(exp(a))): each exp shifted by the result (stable), summed, then a log series."""
    e = _exp_series(a, F.exp(a[0] - _kept(F, out, a[0].shape, dim, keepdim)))
    s = Jet([None if c is None else F.sum(c, dim=dim, keepdim=keepdim) for c in e])
    return _log_series(s, None)


def softmax(F, out, a, dim):
    """y' = y (a' - sum(y a')), coefficient by coefficient (O(K^2))."""
    da = _derivative(a)
    y = [out]
    u = []  # the series of a' - sum(y a')
    for k in range(1, len(a)):
        m = k - 1
        ya = _cauchy(y, da, m)
        u.append(_minus(da[m], None if ya is None else F.sum(ya, dim=(dim,), keepdim=True)))
        y.append(_scaled(_cauchy(y, u, m), 1.0 / k))
    return y


def log_softmax(F, out, a, dim):
    """z' = a' - sum(p a') with p = exp(z): both series built together."""
    da = _derivative(a)
    z = [out]
    p = [F.exp(out)]
    for k in range(1, len(a)):
        m = k - 1
        pa = _cauchy(p, da, m)
        zk = _minus(da[m], None if pa is None else F.sum(pa, dim=(dim,), keepdim=True))
        z.append(_scaled(zk, 1.0 / k))
        # p' = p z':  p[k] = (1/k) sum_{j=1..k} j z[j] p[k-j]
        s = _total(
            z[j] * p[k - j] * float(j)
            for j in range(1, k + 1)
            if z[j] is not None and p[k - j] is not None
        )
        p.append(_scaled(s, 1.0 / k))
    return z


# ----- v2 rules: products along a dim and the binary cross entropies -----------------------------


def _slices(F, a, d, n):
    """The series of each slice ``a[..., i, ...]`` along dim ``d``."""
    out = []
    for i in range(n):
        key = (slice(None),) * d + (i,)
        out.append(Jet([None if c is None else F.index(c, key=key) for c in a]))
    return out


def prod(F, out, a, dim=None, keepdim=False):
    """The Cauchy product of the slices' series, one slice at a time (zeros exact)."""
    shape = tuple(a[0].shape)
    if dim is None:
        a = Jet([None if c is None else F.reshape(c, shape=(-1,)) for c in a])
        d = 0
    else:
        d = dim
    n = a[0].shape[d]
    if n == 0:
        return _zero_result(a.degree)
    acc = None
    for s in _slices(F, a, d, n):
        acc = s if acc is None else _jet_product(acc, s)
    result = [None] + list(acc[1:])
    if dim is not None and keepdim:
        kept = tuple(1 if i == dim else s for i, s in enumerate(shape))
        result = [None] + [None if c is None else F.reshape(c, shape=kept) for c in result[1:]]
    return result


def cumprod(F, out, a, dim):
    shape = tuple(a[0].shape)
    n = shape[dim]
    partial = []
    acc = None
    for s in _slices(F, a, dim, n):
        acc = s if acc is None else _jet_product(acc, s)
        partial.append(acc)
    keys = [(slice(None),) * dim + (i,) for i in range(n)]
    return _placed(F, partial, keys, shape)


def _reduced(F, terms, reduction):
    if reduction == "none":
        return terms
    f = F.sum if reduction == "sum" else F.mean
    return [None] + [None if c is None else f(c) for c in terms[1:]]


def _one_minus(a) -> Jet:
    return Jet([1.0 - a[0]] + [None if c is None else -c for c in a[1:]])


def binary_cross_entropy(F, out, x, t, reduction="mean"):
    """-(t log x + (1 - t) log(1 - x)), reduced (the clamp of the logs at -100 aside)."""
    log_x = Jet([F.log(x[0])] + _log_series(x, None)[1:])
    u = _one_minus(x)
    log_u = Jet([F.log(u[0])] + _log_series(u, None)[1:])
    s = _one_minus(t)
    terms = [None] + [
        _scaled(_plus(_cauchy(t, log_x, k), _cauchy(s, log_u, k)), -1.0) for k in range(1, len(x))
    ]
    return _reduced(F, terms, reduction)


def binary_cross_entropy_with_logits(F, out, x, t, reduction="mean"):
    """softplus(x) - t x, reduced."""
    soft = Jet([None] + softplus(F, None, x, 1.0, math.inf)[1:])
    terms = [None] + [_minus(soft[k], _cauchy(t, x, k)) for k in range(1, len(x))]
    return _reduced(F, terms, reduction)


def remainder(F, out, a, b):
    """a - floor(a / b) * b: away from the jumps, floor(a / b) is a constant q."""
    q = F.floor_divide(a[0], b[0])
    result = [None]
    for k in range(1, len(a)):
        ak, bk = a[k], b[k]
        if bk is None:
            result.append(ak)
        else:
            result.append(_minus(ak, q * bk))
    return result


def copy_slices(F, out, a, b, key, shape):
    """``a`` with ``b`` written at ``key``: linear in both, coefficient by coefficient."""
    result = [None]
    for k in range(1, len(a)):
        ak, bk = a[k], b[k] if isinstance(b, list) else None
        if ak is None and bk is None:
            result.append(None)
        elif ak is None:
            result.append(F.index_backward(bk, key=key, shape=shape))
        else:
            result.append(F.copy_slices(ak, 0.0 if bk is None else bk, key=key, shape=shape))
    return result
