"""The backward pass and what is built on it: backward, grad, jacobian, hessian,
gradcheck (nth-order derivatives are :mod:`adcli.engine.taylor`'s).

:func:`run_backward` is the one walk over a graph. It is iterative (a
100,000-op chain is fine), visits only nodes that lead to what was asked for,
and runs each node's derivative rules from the op table either on raw arrays
or, with ``create_graph``, on tensors with recording on.
"""

from __future__ import annotations

import gc

import numpy as np

from adcli.backend import to_numpy
from adcli.engine import ops as _ops
from adcli.engine.functional import cast, stack_rows
from adcli.engine.tensor import (
    BACKWARD_TWICE,
    STATE,
    AccumulateGrad,
    AccumulationEvent,
    Meta,
    Node,
    Tensor,
    check_deadline,
    check_differentiable,
    check_finite,
    enable_grad,
    format_shape,
    grad_node,
    make_result,
    no_grad,
)
from adcli.errors import AdcliError

_raw_namespaces: dict[str, _ops.RawOps] = {}
_graph_namespace: list = []


def _raw_ops(backend) -> _ops.RawOps:
    found = _raw_namespaces.get(backend.name)
    if found is None:
        found = _raw_namespaces[backend.name] = _ops.RawOps(backend.xp)
    return found


def graph_ops() -> _ops.GraphOps:
    if not _graph_namespace:
        _graph_namespace.append(_ops.GraphOps())
    return _graph_namespace[0]


def topological(roots, targets):
    """Nodes reachable from ``roots``, each after all its consumers (iterative DFS).

    With ``targets``, keep only nodes on a path to one of them.
    """
    visited = set()
    post = []
    for root in roots:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(root.next))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child is not None and child not in visited:
                    visited.add(child)
                    stack.append((child, iter(child.next)))
                    break
            else:
                stack.pop()
                post.append(node)
    if targets is None:
        post.reverse()
        return post, None
    needed = set()
    for node in post:  # children come before their consumers here
        if node in targets or any(c in needed for c in node.next if c is not None):
            needed.add(node)
    order = [n for n in reversed(post) if n in needed]
    return order, needed


def _owns(array) -> bool:
    """Whether ``array`` is a fresh, writeable buffer that may become someone's ``.grad``."""
    if isinstance(array, np.ndarray):
        return array.base is None and array.flags.writeable
    if isinstance(array, np.generic):
        return False
    return getattr(array, "base", None) is None


def run_backward(
    roots: list,
    seeds: list,
    *,
    retain_graph: bool,
    create_graph: bool,
    targets: dict | None = None,
    accumulate: bool = True,
    freed_by=None,
) -> dict:
    """Propagate ``seeds`` (one per root node) back through the graph.

    With ``accumulate``, leaves' ``.grad`` receive their gradients. With
    ``targets`` (a set of nodes), only paths to them are walked and their
    gradients are returned as ``{node: gradient}`` (raw arrays, or tensors
    with ``create_graph``). ``freed_by`` is an opaque tag remembered on the
    nodes whose saved values this pass frees (to say later who freed them).
    """
    with _gc_paused():
        return _run_backward(
            roots, seeds, retain_graph, create_graph, targets, accumulate, freed_by
        )


class _gc_paused:
    """The cyclic garbage collector off for one backward pass: the pass makes only
    short-lived, acyclic objects, and each collection would rescan the whole graph."""

    __slots__ = ("was_enabled",)

    def __enter__(self):
        self.was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc):
        if self.was_enabled:
            gc.enable()
        return False


def _run_backward(roots, seeds, retain_graph, create_graph, targets, accumulate, freed_by):
    order, needed = topological(roots, targets)
    grads: dict = {}
    handed: set = set()
    for node, seed in zip(roots, seeds):
        prev = grads.get(node)
        grads[node] = seed if prev is None else prev + seed
        handed.add(id(seed))
    captured: dict = {}
    recorded_ops = graph_ops() if create_graph else None
    raw_cache: dict = {}
    anomaly = STATE.anomaly
    timed = STATE.deadline is not None
    mode = enable_grad() if create_graph else no_grad()
    with mode:
        for node in order:
            if timed:
                check_deadline()
            g = grads.pop(node, None)
            if g is None:
                continue
            if targets is not None and node in targets:
                captured[node] = g
            if type(node) is AccumulateGrad:
                if accumulate:
                    _accumulate(node.variable, g, create_graph, handed)
                continue
            if node.freed:
                raise AdcliError("value", BACKWARD_TWICE, hint=_twice_hint(node))
            if accumulate and node.retained is not None:
                _accumulate(node.retained, g, create_graph, handed)
            if create_graph:
                F = recorded_ops
            else:
                F = raw_cache.get(node.backend)
                if F is None:
                    F = raw_cache[node.backend] = _raw_ops(node.backend)
            if create_graph and anomaly:
                _propagate_in_anomaly_mode(node, g, F, grads, needed)
            else:
                _propagate(node, g, F, create_graph, grads, needed, anomaly)
            if not retain_graph and (node.saved is not None or node.out_data is not None):
                node.saved = None
                node.out_data = None
                node.freed = freed_by if freed_by is not None else True
    return captured


def _twice_hint(node) -> str:
    where = node.freed
    said = ""
    if where is not True and where is not None:
        said = f" (it was freed by the backward at {where})"
    return (
        "pass retain_graph=true to the first backward if you need a second one, or use "
        "grad(...), which leaves .grad alone" + said
    )


def _propagate_in_anomaly_mode(node: Node, g, F, grads: dict, needed) -> None:
    """:func:`_propagate` with ``create_graph`` in anomaly mode.

    The derivative rule's ops are recorded like forward ops; a NaN they make is
    reported as this node's backward (checked on each gradient it hands on) rather
    than as some forward op of the rule, and the nodes they record carry this
    node's place in the source, so a higher order points there too.
    """
    saved = STATE.context, STATE.anomaly
    STATE.context, STATE.anomaly = node.context, False
    try:
        _propagate(node, g, F, True, grads, needed, True)
    finally:
        STATE.context, STATE.anomaly = saved


def _propagate(node: Node, g, F, create_graph: bool, grads: dict, needed, anomaly) -> None:
    op = node.op
    out_shape = node.out_shape
    if g.shape != out_shape and (
        not op.elementwise
        # A small gradient may pass an elementwise op only where no input was
        # broadcast: summing it back must see every broadcast copy.
        or any(m is not None and m != out_shape for m in node.in_meta)
    ):
        g = F.expand(g, shape=out_shape)
    saved = node.saved
    metas = node.in_meta
    inputs = []
    for i, shape in enumerate(metas):
        value = saved[i] if saved is not None else None
        if value is None:
            inputs.append(Meta(shape, None) if shape is not None else None)
        elif type(value) is Tensor:
            inputs.append(value if create_graph else value._data)
        else:
            inputs.append(value)
    out = node.out_data
    if out is not None and create_graph:
        t = make_result(out, node.backend)
        t._requires_grad = True
        t._grad_fn = node
        out = t
    params = node.params
    for i, nxt in enumerate(node.next):
        if nxt is None or (needed is not None and nxt not in needed):
            continue
        rule = op.vjps[i]
        if rule is None:
            continue
        if params:
            gi = rule(F, g, out, *inputs, **params)
        else:
            gi = rule(F, g, out, *inputs)
        shape = metas[i]
        if gi.shape != shape:
            gi = F.sum_to(gi, shape=shape)
        if anomaly:
            check_finite(gi._data if create_graph else gi, op, "backward", node)
        prev = grads.get(nxt)
        grads[nxt] = gi if prev is None else prev + gi


def _accumulate(var: Tensor, g, create_graph: bool, handed: set) -> None:
    """Add ``g`` into ``var.grad`` the way PyTorch's AccumulateGrad does."""
    shape = var._data.shape
    dtype = var._data.dtype
    if create_graph:
        F = graph_ops()
        if g.shape != shape:
            g = F.expand(g, shape=shape)
        if g._data.dtype != dtype:
            g = F.cast(g, dtype=dtype, source=g._data.dtype)
        old = var._grad
        if old is None:
            if id(g) in handed or not _owns(g._data):
                g = F.clone(g)
            handed.add(id(g))
            var._grad = g
        else:
            var._grad = old + g
            _report_accumulation(var, old._data, g._data, var._grad._data)
        return
    xp = var._backend.xp
    if g.shape != shape:
        g = xp.broadcast_to(g, shape)
    if g.dtype != dtype:
        g = g.astype(dtype)
    old = var._grad
    if old is None:
        if id(g) in handed or not _owns(g):
            g = xp.array(g, copy=True)
        handed.add(id(g))
        var._grad = make_result(g, var._backend)
        return
    data = old._data
    before = to_numpy(data).copy() if STATE.on_accumulate is not None else None
    if isinstance(data, np.generic) or not _owns_or_view_writeable(data):
        old._data = data + g
    else:
        data += g  # in place: whoever holds this .grad sees it, as in PyTorch
    if before is not None:
        _report_accumulation(var, before, g, old._data)


def _report_accumulation(var: Tensor, before, added, after) -> None:
    """Tell the listener (if any) that a backward added into an existing ``.grad``."""
    listener = STATE.on_accumulate
    if listener is not None:
        listener(
            AccumulationEvent(
                var,
                np.array(to_numpy(before)),
                np.array(to_numpy(added)),
                np.array(to_numpy(after)),
            )
        )


def _owns_or_view_writeable(array) -> bool:
    flags = getattr(array, "flags", None)
    return flags is None or bool(getattr(flags, "writeable", True))


# ----- the public entry points -------------------------------------------------------------------


def _seed(y: Tensor, gradient, create_graph: bool, what: str):
    if gradient is None:
        if y._data.size != 1:
            raise AdcliError(
                "value",
                "grad can be implicitly created only for scalar outputs",
                hint=f"{what} of a tensor of shape {format_shape(y.shape)} needs a gradient "
                "of that shape (e.g. ones of it), or sum()/mean() the output first",
            )
        seed = y._backend.xp.ones(y._data.shape, dtype=y._data.dtype)
        return make_result(seed, y._backend) if create_graph else seed
    if not isinstance(gradient, Tensor):
        raise AdcliError("type", "the gradient must be a tensor")
    if gradient.shape != y.shape:
        raise AdcliError(
            "shape",
            f"Mismatch in shape: grad_output[0] has a shape of {format_shape(gradient.shape)} "
            f"and output[0] has a shape of {format_shape(y.shape)}.",
        )
    if gradient._backend is not y._backend:
        raise AdcliError(
            "device",
            f"the gradient is on {gradient.device} but the output is on {y.device}",
        )
    return gradient if create_graph else gradient._data


def backward(
    y: Tensor, gradient=None, retain_graph=None, create_graph=False, inputs=None, freed_by=None
) -> None:
    """``y.backward(...)``: accumulate gradients into the leaves' ``.grad``."""
    if not isinstance(y, Tensor):
        raise AdcliError("type", "backward() needs a tensor")
    root = grad_node(y)
    if root is None:
        raise AdcliError(
            "value",
            "element 0 of tensors does not require grad and does not have a grad_fn",
            hint="make a leaf with requires_grad=true and compute from it",
        )
    seed = _seed(y, gradient, create_graph, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    targets = None
    if inputs is not None:
        targets = {grad_node(t) for t in inputs} - {None}
    run_backward(
        [root],
        [seed],
        retain_graph=retain_graph,
        create_graph=create_graph,
        targets=targets,
        freed_by=freed_by,
    )


def _materialize(g, x: Tensor, create_graph: bool) -> Tensor:
    """A gradient of exactly ``x``'s shape and dtype, as a tensor."""
    if create_graph:
        F = graph_ops()
        if g.shape != x.shape:
            g = F.clone(F.expand(g, shape=x.shape))
        if g._data.dtype != x._data.dtype:
            g = F.cast(g, dtype=x._data.dtype, source=g._data.dtype)
        return g
    xp = x._backend.xp
    if g.shape != x.shape or not _owns(g):
        g = xp.array(xp.broadcast_to(g, x.shape), copy=True)
    if g.dtype != x._data.dtype:
        g = g.astype(x._data.dtype)
    return make_result(g, x._backend)


def zeros_like(x: Tensor) -> Tensor:
    return make_result(x._backend.xp.zeros(x._data.shape, x._data.dtype), x._backend)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph=False,
    freed_by=None,
):
    """dy/dx for each x in ``inputs`` (a tensor or a list), leaving ``.grad`` alone.

    An input the output does not depend on gets zeros of its shape (PyTorch's
    ``allow_unused=True, materialize_grads=True``).
    """
    single = isinstance(inputs, Tensor)
    xs = [inputs] if single else list(inputs)
    y = outputs
    if not isinstance(y, Tensor):
        raise AdcliError("type", "grad() needs a tensor output")
    for x in xs:
        check_differentiable(x)
    root = grad_node(y)
    if retain_graph is None:
        retain_graph = create_graph
    results = []
    if root is None:
        results = [zeros_like(x) for x in xs]
    else:
        seed = _seed(y, grad_outputs, create_graph, "grad")
        nodes = [grad_node(x) for x in xs]
        captured = run_backward(
            [root],
            [seed],
            retain_graph=retain_graph,
            create_graph=create_graph,
            targets=set(nodes),
            accumulate=False,
            freed_by=freed_by,
        )
        for x, node in zip(xs, nodes):
            g = captured.get(node)
            results.append(zeros_like(x) if g is None else _materialize(g, x, create_graph))
    return results[0] if single else results


def _fresh_leaf(x: Tensor) -> Tensor:
    leaf = Tensor(x._data, x._backend, requires_grad=True)
    leaf.name = x.name
    return leaf


def _vjp_rows(y: Tensor, x: Tensor, create_graph: bool = False) -> list:
    """d y[i] / d x for every element i of ``y``: one reverse pass per element."""
    n = y.numel()
    if y._grad_fn is None and not y._requires_grad:
        return [zeros_like(x) for _ in range(n)]
    xp = y._backend.xp
    rows = []
    for i in range(n):
        onehot = xp.zeros(n, dtype=y._data.dtype)
        onehot[i] = 1
        seed = make_result(onehot.reshape(y.shape), y._backend)
        rows.append(grad(y, x, grad_outputs=seed, retain_graph=True, create_graph=create_graph))
    return rows


def jacobian(f, x: Tensor, create_graph: bool = False) -> Tensor:
    """J[i..., j...] = d f(x)[i...] / d x[j...], one reverse pass per output element."""

    leaf = _fresh_leaf(x)
    y = f(leaf)
    if not isinstance(y, Tensor):
        raise AdcliError("type", "jacobian(f, x): f must return a tensor")
    _check_square("jacobian", y.numel(), x.numel())
    return stack_rows(_vjp_rows(y, leaf, create_graph), y.shape + x.shape)


def _check_square(what: str, rows: int, columns: int) -> None:
    """Refuse a jacobian-like result of ``rows * columns`` elements over the element limit."""
    if rows * columns > STATE.max_elements:
        raise AdcliError(
            "limit",
            f"the {what} would hold {rows:,} x {columns:,} = {rows * columns:,} elements, "
            f"over the limit of {STATE.max_elements:,}",
            hint="use a smaller input, or raise the limit with --max-elements",
        )


def hessian(f, x: Tensor) -> Tensor:
    """H[i..., j...] = d^2 f / dx[i...] dx[j...] for a scalar-valued ``f``."""

    n = x.numel()
    _check_square("hessian", n, n)  # before any work: n reverse passes would follow
    leaf = _fresh_leaf(x)
    y = f(leaf)
    if not isinstance(y, Tensor) or y.numel() != 1:
        raise AdcliError("value", "hessian(f, x): f must return a tensor with one element")
    g = grad(y, leaf, create_graph=True)
    return stack_rows(_vjp_rows(g, leaf), leaf.shape + leaf.shape)


def gradcheck(f, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3) -> dict:
    """Compare f's analytic jacobian with central finite differences, in float64.

    Returns ``{"ok": bool, "max_abs_error": float, "max_rel_error": float}``.
    """

    xs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    xs64 = [Tensor(cast(x.detach(), "float64")._data, x._backend, requires_grad=True) for x in xs]
    worst_abs = 0.0
    worst_rel = 0.0
    ok = True
    y = f(*xs64)
    if not isinstance(y, Tensor):
        raise AdcliError("type", "gradcheck: f must return a tensor")
    ny = y.numel()
    for x in xs64:
        _check_square("gradcheck's jacobian", ny, x.numel())
    for k, x in enumerate(xs64):
        analytic = np.zeros((ny, x.numel()))
        for i, row in enumerate(_vjp_rows(y, x)):
            analytic[i] = row.numpy().ravel()
        numeric = np.zeros_like(analytic)
        flat = x._data.reshape(-1)
        with no_grad():
            for j in range(x.numel()):
                check_deadline()
                orig = flat[j].copy() if hasattr(flat[j], "copy") else flat[j]
                flat[j] = orig + eps
                plus = f(*xs64).numpy().ravel()
                flat[j] = orig - eps
                minus = f(*xs64).numpy().ravel()
                flat[j] = orig
                numeric[:, j] = (plus - minus) / (2 * eps)
        err = np.abs(analytic - numeric)
        if err.size:
            worst_abs = max(worst_abs, float(err.max()))
            rel = err / np.maximum(np.abs(numeric), 1e-12)
            worst_rel = max(worst_rel, float(np.where(err > atol, rel, 0.0).max()))
        if not np.all(err <= atol + rtol * np.abs(numeric)):
            ok = False
    return {"ok": ok, "max_abs_error": worst_abs, "max_rel_error": worst_rel}


def _tensor_backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (PyTorch's backward)."""
    backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)


Tensor.backward = _tensor_backward
