"""Linear algebra: ``einsum``, ``tensordot``, ``det``, ``inverse``, ``solve``.

Each is an entry of the one op table (registered here with :func:`ops.op`, so
the table in :mod:`adcli.engine.ops` stays the one place rules are looked up)
followed by its public function. Every VJP is written with table ops (``F``),
so first and second derivatives, and any order after, come from the same rules:

* ``einsum``: the gradient for an operand is another einsum of ``g`` with the
  other operands (a repeated subscript, a diagonal, is put back with identity
  matrices; a subscript only that operand has is broadcast back);
* ``tensordot``: an einsum too (its forward is the array module's BLAS one);
* ``det``: ``g * det(A) * inverse(A)^T``;
* ``inverse``: ``-Y^T g Y^T`` with ``Y = inverse(A)``;
* ``solve`` (``X = A^-1 B``): ``gB = solve(A^T, g)``, ``gA = -gB X^T``.

``einsum`` and ``tensordot`` are multilinear, and ``inverse`` and ``solve`` have
short series recurrences, so they have Taylor rules (``grad(..., order=n)``
stays polynomial through them); so has ``det``, through ``(log det A)' = tr(A^-1 A')``.
"""

from __future__ import annotations

import numpy as np

from adcli.backend import array_module_of
from adcli.engine import ops
from adcli.engine.functional import expand, wrong_type
from adcli.engine.tensor import Tensor, apply, check_elements, format_shape
from adcli.errors import AdcliError

# string.ascii_uppercase + string.ascii_lowercase (importing string compiles a regex)
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# ----- einsum equations ---------------------------------------------------------------------------


def _parse(equation: str) -> tuple[list[str], str]:
    """``"ab,bc->ac"`` as (``["ab", "bc"]``, ``"ac"``): an explicit equation, no ``...``."""
    inputs, output = equation.split("->")
    return inputs.split(","), output


def _unused_letters(equation: str) -> list[str]:
    used = set(equation)
    return [c for c in _LETTERS if c not in used]


def _eye_like(g, n: int):
    """An ``n x n`` identity of ``g``'s dtype, on ``g``'s device (a constant: no gradient)."""
    if isinstance(g, Tensor):
        backend = g.backend
        with backend.scope():
            return backend.xp.eye(n, dtype=g.array.dtype)
    return array_module_of(g).eye(n, dtype=g.dtype)


def _einsum_forward(xp, *operands, equation):
    return xp.einsum(equation, *operands, optimize=len(operands) > 1)


def _einsum_vjp(position: int):
    def rule(F, g, out, *operands, equation):
        inputs, output = _parse(equation)
        own = inputs[position]
        shape = operands[position].shape
        fresh = _unused_letters(equation)
        target = []
        seen = {}
        identities = []  # (subscripts, size): a repeated letter is a diagonal
        for letter, size in zip(own, shape):
            if letter in seen:
                new = fresh.pop()
                identities.append((letter + new, size))
                target.append(new)
            else:
                seen[letter] = size
                target.append(letter)
        others = [s for i, s in enumerate(inputs) if i != position]
        present = set(output).union(*others, *(s for s, _ in identities))
        kept = "".join(c for c in target if c in present)
        subscripts = [output, *others, *(s for s, _ in identities)]
        args = [g, *(o for i, o in enumerate(operands) if i != position)]
        args += [_eye_like(g, size) for _, size in identities]
        grad = F.einsum(*args, equation=",".join(subscripts) + "->" + kept)
        if len(kept) != len(target):  # letters only this operand has: broadcast back
            grad = F.reshape(
                grad, shape=tuple(s if c in present else 1 for c, s in zip(target, shape))
            )
            grad = F.expand(grad, shape=tuple(shape))
        return grad

    return rule


def _multilinear_taylor(op_name: str):
    """The Taylor rule of an op linear in each input: coefficient k of the result is the
    op applied to every choice of one coefficient per input whose orders add up to k."""

    def rule(F, out, *jets, **params):
        f = getattr(F, op_name)
        degree = len(jets[0]) - 1
        result = [None]
        for k in range(1, degree + 1):
            acc = None
            for choice in _orders(jets, k):
                term = f(*(jet[j] for jet, j in zip(jets, choice)), **params)
                acc = term if acc is None else acc + term
            result.append(acc)
        return result

    rule.__name__ = rule.__qualname__ = f"taylor_{op_name}"
    return rule


def _orders(jets, k: int):
    """Tuples of coefficient orders, one per jet, adding up to ``k``, that are not zero."""
    if len(jets) == 1:
        if k < len(jets[0]) and jets[0][k] is not None:
            yield (k,)
        return
    first = jets[0]
    for j in range(min(k, len(first) - 1) + 1):
        if first[j] is None:
            continue
        for rest in _orders(jets[1:], k - j):
            yield (j, *rest)


EINSUM = ops.op(
    "einsum",
    "EinsumBackward",
    _einsum_forward,
    tuple(_einsum_vjp(i) for i in range(52)),  # one per operand: a rule ignores the rest
    save=range(52),
    taylor=_multilinear_taylor("einsum"),
    doc="Einstein summation over an explicit equation (no ...), one rule for every operand",
)


def _normalize(equation, operands) -> tuple[str, list]:
    """PyTorch's einsum equation made explicit (``...`` spelled out, the output written),
    and the operands, with size-1 dims expanded to the sizes their subscript has."""
    if not isinstance(equation, str):
        raise wrong_type("einsum(): the equation must be a string, got {got}", equation)
    text = equation.replace(" ", "")
    if text.count("->") > 1:
        raise AdcliError("value", "einsum(): an equation has at most one '->'")
    lhs, arrow, rhs = text.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise AdcliError(
            "value",
            "einsum(): more operands were provided than specified in the equation"
            if len(operands) > len(terms)
            else "einsum(): fewer operands were provided than specified in the equation",
        )
    for term in [*terms, rhs]:
        body = term.replace("...", "", 1)
        bad = [c for c in body if c not in _LETTERS]
        if bad:
            raise AdcliError(
                "value",
                f"einsum(): invalid subscript given at index {text.index(bad[0])} in the "
                f"equation string, subscripts must be in [a-zA-Z]",
            )
    spare = _unused_letters(text)
    ellipsis_dims = 0
    counts = []
    for term, x in zip(terms, operands):
        letters = len(term.replace("...", ""))
        if "..." in term:
            extra = x.ndim - letters
            if extra < 0:
                raise AdcliError(
                    "shape",
                    f"einsum(): the number of subscripts in the equation ({letters}) is more "
                    f"than the number of dimensions ({x.ndim}) for operand {len(counts)}",
                )
            ellipsis_dims = max(ellipsis_dims, extra)
        elif letters != x.ndim:
            raise AdcliError(
                "shape",
                f"einsum(): the number of subscripts in the equation ({letters}) does not match "
                f"the number of dimensions ({x.ndim}) for operand {len(counts)} and no "
                "ellipsis was given",
            )
        counts.append(x.ndim - letters)
    broadcast = "".join(spare[:ellipsis_dims])
    explicit = []
    for term, extra in zip(terms, counts):
        explicit.append(term.replace("...", broadcast[ellipsis_dims - extra :]))
    if arrow:
        if "..." in rhs:
            output = rhs.replace("...", broadcast)
        else:
            output = rhs  # the dims under ... are summed
        for c in output:
            if output.count(c) > 1:
                raise AdcliError("value", f"einsum(): output subscript {c} appears more than once")
            if not any(c in t for t in explicit):
                raise AdcliError(
                    "value",
                    f"einsum(): output subscript {c} does not appear in the equation for any "
                    "input operand",
                )
    else:
        joined = "".join(terms).replace("...", "")
        output = broadcast + "".join(sorted(c for c in set(joined) if joined.count(c) == 1))
    sizes: dict[str, int] = {}
    for position, (term, x) in enumerate(zip(explicit, operands)):
        for j, (c, n) in enumerate(zip(term, x.shape)):
            if term.index(c) != j and x.shape[term.index(c)] != n:
                raise AdcliError(
                    "shape",
                    f"einsum(): subscript {c} is repeated for operand {position} but "
                    f"the sizes don't match, {x.shape[term.index(c)]} != {n}",
                )
            known = sizes.get(c, 1)
            if n != 1 and known != 1 and n != known:
                raise AdcliError(
                    "shape",
                    f"einsum(): subscript {c} has size {n} for operand {position} which does "
                    "not broadcast with previously seen "
                    f"size {known}",
                )
            sizes[c] = max(known, n) if n != 0 else 0
    check_elements(tuple(sizes[c] for c in output), "the result of einsum")
    expanded = []
    for term, x in zip(explicit, operands):
        want = tuple(sizes[c] for c in term)
        expanded.append(x if want == x.shape else expand(x, *want))
    return ",".join(explicit) + "->" + output, expanded


def _tensor_args(name, values) -> list:
    out = []
    for v in values:
        if not isinstance(v, Tensor):
            raise wrong_type(name + "(): expected tensors, got {got}", v)
        out.append(v)
    if out:
        first = out[0]
        for v in out[1:]:
            if v.backend is not first.backend:
                raise AdcliError(
                    "device",
                    f"Expected all tensors to be on the same device, but found at least two "
                    f"devices, {first.device} and {v.device}! (in {name})",
                )
    return out


def _same_dtype(name, xs) -> None:
    dtypes = {x.dtype for x in xs}
    if len(dtypes) > 1:
        raise AdcliError(
            "type",
            f"{name}(): expected all operands to have the same dtype, got "
            + " and ".join(sorted(dtypes)),
            hint="cast them first, e.g. with .double() or .float()",
        )


def einsum(equation, *operands) -> Tensor:
    """``torch.einsum``: subscripts in ``[a-zA-Z]``, ``...`` for broadcast dims, an
    implicit output (the letters used once, sorted) when there is no ``->``."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise AdcliError("value", "einsum(): must provide at least one operand")
    if len(operands) > 52:
        raise AdcliError("value", "einsum(): at most 52 operands")
    xs = _tensor_args("einsum", operands)
    _same_dtype("einsum", xs)
    explicit, xs = _normalize(equation, xs)
    return apply(EINSUM, tuple(xs), {"equation": explicit})


# ----- tensordot --------------------------------------------------------------------------------


def _tensordot_equation(a_ndim, b_ndim, dims_a, dims_b) -> str:
    letters = iter(_LETTERS)
    sa = [next(letters) for _ in range(a_ndim)]
    sb = [next(letters) for _ in range(b_ndim)]
    for i, j in zip(dims_a, dims_b):
        sb[j] = sa[i]
    out = [c for i, c in enumerate(sa) if i not in dims_a] + [
        c for j, c in enumerate(sb) if j not in dims_b
    ]
    return "".join(sa) + "," + "".join(sb) + "->" + "".join(out)


def _tensordot_vjp(position: int):
    einsum_rule = _einsum_vjp(position)

    def rule(F, g, out, a, b, dims, equation):
        return einsum_rule(F, g, out, a, b, equation=equation)

    return rule


TENSORDOT = ops.op(
    "tensordot",
    "ViewBackward",  # what PyTorch's tensordot (a reshape of a matrix product) shows
    lambda xp, a, b, dims, equation: xp.tensordot(a, b, axes=dims),
    (_tensordot_vjp(0), _tensordot_vjp(1)),
    save=(0, 1),
    taylor=_multilinear_taylor("tensordot"),
    doc="a contraction of dims[0] of a with dims[1] of b (its rules are einsums)",
)


def tensordot(a, b, dims=2) -> Tensor:
    """``torch.tensordot``: ``dims`` a count (the last of ``a`` with the first of ``b``)
    or a pair of lists of dims."""
    a, b = _tensor_args("tensordot", (a, b))
    _same_dtype("tensordot", (a, b))
    if isinstance(dims, bool):
        raise AdcliError("type", "tensordot(): dims must be a whole number or a pair of lists")
    if isinstance(dims, (int, np.integer)):
        n = int(dims)
        if n < 0:
            raise AdcliError("value", f"tensordot expects dims >= 0, but got dims={n}")
        if n > a.ndim or n > b.ndim:
            raise AdcliError(
                "shape",
                f"tensordot: dims={n} is more than the dims of a ({a.ndim}) or b ({b.ndim})",
            )
        dims_a = tuple(range(a.ndim - n, a.ndim))
        dims_b = tuple(range(n))
    else:
        try:
            first, second = dims
            first = [first] if isinstance(first, (int, np.integer)) else list(first)
            second = [second] if isinstance(second, (int, np.integer)) else list(second)
        except (TypeError, ValueError):
            raise AdcliError(
                "type", "tensordot(): dims must be a whole number or a pair of lists"
            ) from None
        if len(first) != len(second):
            raise AdcliError("value", "tensordot(): both dimension lists should have same length")
        dims_a = tuple(_dim(d, a.ndim) for d in first)
        dims_b = tuple(_dim(d, b.ndim) for d in second)
    for i, j in zip(dims_a, dims_b):
        if a.shape[i] != b.shape[j]:
            raise AdcliError(
                "shape",
                f"contracted dimensions need to match, but first has size {a.shape[i]} in dim "
                f"{i} and second has size {b.shape[j]} in dim {j}",
            )
    out_shape = tuple(s for i, s in enumerate(a.shape) if i not in dims_a) + tuple(
        s for j, s in enumerate(b.shape) if j not in dims_b
    )
    check_elements(out_shape, "the result of tensordot")
    equation = _tensordot_equation(a.ndim, b.ndim, dims_a, dims_b)
    return apply(TENSORDOT, (a, b), {"dims": (list(dims_a), list(dims_b)), "equation": equation})


def _dim(d, ndim: int) -> int:
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
        raise AdcliError("type", f"dim must be a whole number, got {d!r}")
    if not -max(ndim, 1) <= d < max(ndim, 1):
        raise AdcliError(
            "value",
            f"Dimension out of range (expected to be in range of [{-max(ndim, 1)}, "
            f"{max(ndim, 1) - 1}], but got {d})",
        )
    return int(d) % max(ndim, 1)


# ----- det, inverse, solve ------------------------------------------------------------------------


def _mT(F, x):
    """The matrix transpose of the last two dims."""
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return F.permute(x, axes=axes)


def _singular(name: str) -> AdcliError:
    what = "the inversion could not be completed" if name == "linalg.inv" else "The solver failed"
    return AdcliError(
        "value",
        f"{name}: {what} because the input matrix is singular.",
        hint="the matrix (or one in the batch) has no inverse",
    )


def _inverse_forward(xp, a):
    try:
        return xp.linalg.inv(a)
    except np.linalg.LinAlgError:
        raise _singular("linalg.inv") from None


def _solve_forward(xp, a, b, vector=False):
    try:
        if vector:
            return xp.linalg.solve(a, b[..., None])[..., 0]
        return xp.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        raise _singular("torch.linalg.solve") from None


def _det_grad(F, g, out, a):
    # d det(A) = det(A) tr(A^-1 dA): the gradient is g det(A) A^-T, batched over leading dims.
    # A^-T does not exist where det(A) = 0, but the gradient does: it is the cofactor
    # matrix (det(A) A^-T where A is invertible), a polynomial in A, so it is taken
    # from the minors there. (PyTorch returns zeros at an exactly singular A unless
    # create_graph is set; the cofactors are the true derivative, and what it gives then.)
    if _has_zero(out):
        return F.reshape(g, shape=tuple(out.shape) + (1, 1)) * _cofactors(F, a)
    scale = F.reshape(g * out, shape=tuple(out.shape) + (1, 1))
    return scale * _mT(F, F.inverse(a))


def _has_zero(x) -> bool:
    """Whether the determinants ``x`` hold an exact zero (False for what is not numbers:
    rules also run on symbols, to spell derivatives, where the general form is right)."""
    zero = _raw(x) == 0
    return hasattr(zero, "any") and bool(zero.any())


def _raw(x):
    """The array under ``x`` (a rule sees tensors under create_graph, arrays otherwise)."""
    return x._data if isinstance(x, Tensor) else x


def _cofactors(F, a):
    """The cofactor matrices C_ij = (-1)^(i+j) det(A without row i and column j)
    of a batch of square matrices, in engine ops (so they differentiate again)."""
    n = a.shape[-1]
    if n == 1:
        return a * 0.0 + 1.0
    rows, cols, signs = _minor_keys(a, n)
    # minors[..., i, j, :, :] is A without row i and column j: n^2 determinants of n-1.
    minors = F.index(a, key=(Ellipsis, rows, cols))
    return F.det(minors) * signs


def _minor_keys(a, n: int):
    """The index that makes every (n-1)-minor of ``a`` (..., n, n) at once, and the
    cofactors' signs, on ``a``'s device (a tensor's signs are a tensor)."""
    data = _raw(a)
    xp = array_module_of(data)
    others = np.array([[k for k in range(n) if k != i] for i in range(n)], dtype=np.int64)
    rows = xp.asarray(others[:, None, :, None])
    cols = xp.asarray(others[None, :, None, :])
    signs = np.where(np.add.outer(np.arange(n), np.arange(n)) % 2, -1.0, 1.0)
    signs = xp.asarray(signs.astype(data.dtype))
    if isinstance(a, Tensor):
        signs = Tensor(signs, a._backend)
    return rows, cols, signs


def _inverse_grad(F, g, out, a):
    yt = _mT(F, out)
    return -F.bmm(F.bmm(yt, g), yt)


def _solve_grad_a(F, g, out, a, b, vector=False):
    gb = F.solve(_mT(F, a), g, vector=vector)
    if vector:  # the outer product gb x^T, batched
        column = F.reshape(gb, shape=tuple(gb.shape) + (1,))
        row = F.reshape(out, shape=tuple(out.shape[:-1]) + (1, out.shape[-1]))
        return -(column * row)
    return -F.bmm(gb, _mT(F, out))


def _solve_grad_b(F, g, out, a, b, vector=False):
    return F.solve(_mT(F, a), g, vector=vector)


def _solve_joint(F, g, out, a, b, vector=False):
    # Both gradients from one solve with A^T (the rules above would solve twice).
    gb = F.solve(_mT(F, a), g, vector=vector)
    if vector:
        column = F.reshape(gb, shape=tuple(gb.shape) + (1,))
        row = F.reshape(out, shape=tuple(out.shape[:-1]) + (1, out.shape[-1]))
        return -(column * row), gb
    return -F.bmm(gb, _mT(F, out)), gb


def _matvec(F, a, x):
    """``a @ x`` for a batch of matrices and a batch of vectors of the same batch shape."""
    batch = _LETTERS[: x.ndim - 1]
    return F.einsum(a, x, equation=f"{batch}yz,{batch}z->{batch}y")


def _inverse_taylor(F, out, a):
    # Y A = I order by order: Y_k = -Y_0 (sum_{j>=1} A_j Y_{k-j}).
    y = [out]
    for k in range(1, len(a)):
        acc = None
        for j in range(1, k + 1):
            if a[j] is None or y[k - j] is None:
                continue
            term = F.bmm(a[j], y[k - j])
            acc = term if acc is None else acc + term
        y.append(None if acc is None else -F.bmm(out, acc))
    return y


def _solve_taylor(F, out, a, b, vector=False):
    # A X = B order by order: X_k = A_0^-1 (B_k - sum_{j>=1} A_j X_{k-j}).
    x = [out]
    for k in range(1, len(a)):
        acc = b[k]
        for j in range(1, k + 1):
            if a[j] is None or x[k - j] is None:
                continue
            term = _matvec(F, a[j], x[k - j]) if vector else F.bmm(a[j], x[k - j])
            acc = -term if acc is None else acc - term
        x.append(None if acc is None else F.solve(a[0], acc, vector=vector))
    return x


def _det_taylor(F, out, a):
    if _has_zero(out):
        return _det_taylor_by_minors(F, out, a)
    return _det_taylor_inverse(F, out, a)


def _det_taylor_by_minors(F, out, a):
    # Where det(A_0) = 0 there is no A_0^-1, but det'(t) = sum_ij C_ij(t) A'_ij(t) with
    # C(t) the cofactors of A(t): signed determinants of its minors, whose series are
    # the minors of A's coefficients. So k d_k = sum_{i<k} sum_ij C_i (k - i) A_{k-i}.
    n = a[0].shape[-1]
    if n == 1:
        shape = tuple(a[0].shape[:-2])
        return [None if c is None else F.reshape(c, shape=shape) for c in a]
    rows, cols, signs = _minor_keys(a[0], n)
    minors = [None if c is None else F.index(c, key=(Ellipsis, rows, cols)) for c in a]
    cofactors = _det_taylor(F, F.det(minors[0]), minors)
    last = (a[0].ndim - 2, a[0].ndim - 1)
    d = [out]
    for k in range(1, len(a)):
        acc = None
        for i in range(k):
            if cofactors[i] is None or a[k - i] is None:
                continue
            term = F.sum(cofactors[i] * signs * a[k - i], dim=last, keepdim=False)
            term = term * float(k - i)
            acc = term if acc is None else acc + term
        d.append(None if acc is None else acc * (1.0 / k))
    return d


def _det_taylor_inverse(F, out, a):
    # With p(t) = tr(A(t)^-1 A'(t)) = (log det A)'(t): det' = det * p, so
    # k d_k = sum_{j<k} d_j p_{k-1-j}; A(t)^-1 is the series of _inverse_taylor.
    degree = len(a) - 1
    y = _inverse_taylor(F, F.inverse(a[0]), a[:degree])
    d = [out]
    p = []
    for m in range(degree):
        acc = None
        for i in range(m + 1):
            da = a[m - i + 1]
            if y[i] is None or da is None:
                continue
            term = F.bmm(y[i], da) * float(m - i + 1)
            acc = term if acc is None else acc + term
        p.append(None if acc is None else F.einsum(acc, equation=_trace_equation(acc.ndim)))
    for k in range(1, degree + 1):
        acc = None
        for j in range(k):
            if d[j] is None or p[k - 1 - j] is None:
                continue
            term = d[j] * p[k - 1 - j]
            acc = term if acc is None else acc + term
        d.append(None if acc is None else acc * (1.0 / k))
    return d


def _trace_equation(ndim: int) -> str:
    batch = _LETTERS[: ndim - 2]
    return f"{batch}yy->{batch}"


DET = ops.op(
    "det",
    "LinalgDetBackward",
    lambda xp, a: xp.linalg.det(a),
    (_det_grad,),
    save=(0,),
    save_output=True,
    taylor=_det_taylor,
    doc="the determinant of each square matrix in the last two dims",
)
INVERSE = ops.op(
    "inverse",
    "LinalgInvExBackward",
    _inverse_forward,
    (_inverse_grad,),
    save_output=True,
    taylor=_inverse_taylor,
    doc="the inverse of each square matrix in the last two dims",
)
SOLVE = ops.op(
    "solve",
    "LinalgSolveExBackward",
    _solve_forward,
    (_solve_grad_a, _solve_grad_b),
    save=(0,),
    save_output=True,
    taylor=_solve_taylor,
    joint_vjp=_solve_joint,
    doc="X with A X = B: B a batch of matrices, or of vectors with vector=True",
)


def _square(name: str, a: Tensor) -> None:
    if a.ndim < 2:
        raise AdcliError(
            "shape",
            f"{name}: The input tensor A must have at least 2 dimensions.",
        )
    if a.shape[-1] != a.shape[-2]:
        raise AdcliError(
            "shape",
            f"{name}: A must be batches of square matrices, but they are "
            f"{a.shape[-2]} by {a.shape[-1]} matrices",
        )


def _floating(name: str, a: Tensor) -> None:
    if a.dtype not in ("float32", "float64"):
        raise AdcliError(
            "type",
            f"{name}: Expected a floating point tensor as input. Got {a.dtype}",
            hint="cast it first with .float() or .double()",
        )


def det(a) -> Tensor:
    """``torch.linalg.det`` (also ``torch.det``): batched over leading dims."""
    (a,) = _tensor_args("det", (a,))
    _floating("linalg.det", a)
    _square("linalg.det", a)
    return apply(DET, (a,))


def inverse(a) -> Tensor:
    """``torch.linalg.inv`` (also ``torch.inverse``): batched over leading dims."""
    (a,) = _tensor_args("inverse", (a,))
    _floating("linalg.inv", a)
    _square("linalg.inv", a)
    return apply(INVERSE, (a,))


def solve(a, b) -> Tensor:
    """``torch.linalg.solve(A, B)``: ``X`` with ``A X = B``; ``B`` a vector (``A``'s last
    dim, batch dims optional) or a batch of matrices."""
    a, b = _tensor_args("solve", (a, b))
    _floating("linalg.solve", a)
    _same_dtype("linalg.solve", (a, b))
    _square("linalg.solve", a)
    n = a.shape[-1]
    vector = b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape == a.shape[:-1])
    rows = b.shape[-1] if vector else b.shape[-2] if b.ndim >= 2 else None
    if rows != n:
        raise AdcliError(
            "shape",
            f"linalg.solve: Incompatible shapes of A and B for the equation AX = B "
            f"({format_shape(a.shape[-2:])} and {format_shape(b.shape)})",
        )
    core = 1 if vector else 2
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-core])
    except ValueError:
        raise AdcliError(
            "shape",
            f"linalg.solve: the batch dims of A {format_shape(a.shape)} and B "
            f"{format_shape(b.shape)} do not broadcast",
        ) from None
    if a.shape[:-2] != batch:
        a = expand(a, *batch, n, n)
    if b.shape[:-core] != batch:
        b = expand(b, *batch, *b.shape[-core:])
    if vector:
        return apply(SOLVE, (a, b), {"vector": True})
    return apply(SOLVE, (a, b))
