"""The backward pass and what is built on it: backward, grad, jacobian, hessian,
gradcheck (nth-order derivatives are :mod:`adcli.engine.taylor`'s).

:func:`run_backward` is the one walk over a graph. It is iterative (a
100,000-op chain is fine), visits only nodes that lead to what was asked for,
and runs each node's derivative rules from the op table either on raw arrays
or, with ``create_graph``, on tensors with recording on.
"""

from __future__ import annotations

import gc
from operator import attrgetter

import numpy as np

from adcli.backend import to_numpy
from adcli.engine import ops as _ops
from adcli.engine.functional import cast, index_put, reshape, stack_rows, wrong_type
from adcli.engine.functional import sum as sum_all
from adcli.engine.tensor import (
    BACKWARD_TWICE,
    MODIFIED_IN_PLACE,
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
    no_grad_fn_error,
    origin,
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
    """Nodes reachable from ``roots``, each after all its consumers: the newest first
    (by ``seq``, the order they were made in), as PyTorch's engine runs them.

    With ``targets``, keep only nodes on a path to one of them.
    """
    seen = set(roots)
    seen.discard(None)
    stack = list(seen)
    add, push, pop = seen.add, stack.append, stack.pop
    while stack:
        for child in pop().next:
            if child is not None and child not in seen:
                add(child)
                push(child)
    post = sorted(seen, key=_made)  # oldest first: children before their consumers
    if targets is None:
        post.reverse()
        return post, None
    needed = set()
    for node in post:
        if node in targets:
            needed.add(node)
            continue
        for c in node.next:
            if c is not None and c in needed:
                needed.add(node)
                break
    order = [n for n in reversed(post) if n in needed]
    return order, needed


_made = attrgetter("seq")


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
    if not create_graph:
        with no_grad():
            _plain_pass(
                order, grads, targets, needed, captured, accumulate, handed, retain_graph, freed_by
            )
        return captured
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
                raise AdcliError(
                    "value",
                    BACKWARD_TWICE,
                    details={"reason": "graph_freed", "freed_by": where_freed(node)},
                )
            if accumulate and node.retained is not None:
                kept = node.retained()
                if kept is not None:
                    _accumulate(kept, g, create_graph, handed)
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


def _plain_pass(
    order, grads, targets, needed, captured, accumulate, handed, retain_graph, freed_by
):
    """The walk of :func:`_run_backward` without ``create_graph``: rules on raw arrays.

    The same steps, in the same order, as the general loop and :func:`_propagate`,
    unrolled for this case (the per-op cost of a plain backward).
    """
    state = STATE
    anomaly = state.anomaly
    timed = state.deadline is not None
    backend = F = None
    metas_made: dict = {}  # one Meta per shape for the inputs rules see only the shape of
    made = metas_made.get
    get = grads.get
    pop = grads.pop
    for node in order:
        if timed:
            check_deadline()
        g = pop(node, None)
        if g is None:
            continue
        if targets is not None and node in targets:
            captured[node] = g
        if type(node) is AccumulateGrad:
            if accumulate:
                _accumulate(node.variable, g, False, handed)
            continue
        if node.freed:
            raise AdcliError(
                "value",
                BACKWARD_TWICE,
                details={"reason": "graph_freed", "freed_by": where_freed(node)},
            )
        if accumulate and node.retained is not None:
            kept = node.retained()
            if kept is not None:
                _accumulate(kept, g, False, handed)
        if node.backend is not backend:
            backend = node.backend
            F = _raw_ops(backend)
        # _propagate, unrolled
        op = node.op
        out_shape = node.out_shape
        metas = node.in_meta
        if g.shape != out_shape and (
            not op.elementwise or any(m is not None and m != out_shape for m in metas)
        ):
            g = F.expand(g, shape=out_shape)
        saved = node.saved
        out = node.out_data
        if node.stamp < state.mutations and (saved is not None or out is not None):
            check_versions(node)
        # What the rules see of each input: its array (saved), a Meta (its shape only) or
        # the number it was; unrolled for one and two inputs.
        n = len(metas)
        if n == 1:
            value = saved[0] if saved is not None else None
            if value is None:
                shape = metas[0]
                if shape is not None:
                    value = made(shape) or _new_meta(shape, metas_made)
            elif type(value) is Tensor:
                value = value._data
            inputs = (value,)
        elif n == 2:
            first, second = saved if saved is not None else _TWO_NONES
            if first is None:
                shape = metas[0]
                if shape is not None:
                    first = made(shape) or _new_meta(shape, metas_made)
            elif type(first) is Tensor:
                first = first._data
            if second is None:
                shape = metas[1]
                if shape is not None:
                    second = made(shape) or _new_meta(shape, metas_made)
            elif type(second) is Tensor:
                second = second._data
            inputs = (first, second)
        else:
            inputs = []
            add = inputs.append
            for value, shape in zip(saved if saved is not None else (None,) * n, metas):
                if value is None:
                    add(None if shape is None else made(shape) or _new_meta(shape, metas_made))
                elif type(value) is Tensor:
                    add(value._data)
                else:
                    add(value)
        params = node.params
        vjps = op.vjps
        joint = None
        if op.joint_vjp is not None and _wanted(node, needed) > 1:
            joint = op.joint_vjp(F, g, out, *inputs, **(params or {}))
        i = -1
        for nxt in node.next:
            i += 1
            if nxt is None or (needed is not None and nxt not in needed):
                continue
            rule = vjps[i]
            if rule is None:
                continue
            if joint is not None:
                gi = joint[i]
            elif params:
                gi = rule(F, g, out, *inputs, **params)
            else:
                gi = rule(F, g, out, *inputs)
            shape = metas[i]
            if gi.shape != shape:
                gi = F.sum_to(gi, shape=shape)
            if anomaly:
                check_finite(gi, op, "backward", node)
            prev = get(nxt)
            grads[nxt] = gi if prev is None else prev + gi
        if not retain_graph and (saved is not None or out is not None):
            node.saved = None
            node.out_data = None
            node.freed = freed_by if freed_by is not None else True


_TWO_NONES = (None, None)


def _new_meta(shape, made: dict) -> Meta:
    """The :class:`Meta` a rule sees for an unsaved input of ``shape``: one per shape and pass."""
    meta = made[shape] = Meta(shape, None)
    return meta


def where_freed(node):
    """The ``freed_by`` tag of the pass that freed ``node``'s saved values (None: unknown)."""
    where = node.freed
    return None if where is True or where is False else where


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
    if node.stamp < STATE.mutations and (saved is not None or node.out_data is not None):
        check_versions(node)
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
    joint = None
    if op.joint_vjp is not None and _wanted(node, needed) > 1:
        joint = op.joint_vjp(F, g, out, *inputs, **(params or {}))
    for i, nxt in enumerate(node.next):
        if nxt is None or (needed is not None and nxt not in needed):
            continue
        rule = op.vjps[i]
        if rule is None:
            continue
        if joint is not None:
            gi = joint[i]
        elif params:
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


def check_versions(node: Node) -> None:
    """PyTorch's error when a value ``node`` saved was changed in place since."""
    if node.stamp == -1:
        what = f"output 0 of {node.name()}"
    else:
        what = None
        for value in node.saved or ():
            if type(value) is Tensor and value._version > node.stamp:
                what = (
                    f"a {value.dtype} tensor of shape {format_shape(value.shape)} saved by "
                    f"{node.name()}"
                )
                break
        if what is None:
            return
    raise AdcliError(
        "value",
        f"{MODIFIED_IN_PLACE}: {what}",
        hint="compute on a copy (clone()) before changing it in place, or do the in-place "
        "update after backward",
    )


def _wanted(node: Node, needed) -> int:
    """How many of ``node``'s inputs a gradient is propagated to."""
    count = 0
    for i, nxt in enumerate(node.next):
        if nxt is not None and node.op.vjps[i] is not None and (needed is None or nxt in needed):
            count += 1
    return count


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
        var._grad = made = make_result(g, var._backend)
        made._origin = "backward"
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
        raise no_grad_fn_error(y)
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
    t = make_result(g, x._backend)
    t._origin = "grad"
    return t


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
    ``allow_unused=True, materialize_grads=True``); an output that does not
    require grad at all is PyTorch's error (:func:`no_grad_fn_error`), never
    a silent zero.
    """
    single = isinstance(inputs, Tensor)
    xs = [inputs] if single else list(inputs)
    y = outputs
    if not isinstance(y, Tensor):
        raise AdcliError("type", "grad() needs a tensor output")
    for x in xs:
        check_differentiable(x)
    root = grad_node(y)
    if root is None:
        raise no_grad_fn_error(y)
    if retain_graph is None:
        retain_graph = create_graph
    results = []
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
        if g is None:
            g = zeros_like(x)
            if not create_graph:
                g._origin = "grad"
            results.append(g)
        else:
            results.append(_materialize(g, x, create_graph))
    return results[0] if single else results


def _fresh_leaf(x: Tensor) -> Tensor:
    leaf = Tensor(x._data, x._backend, requires_grad=True)
    leaf.name = x.name
    return leaf


def _inputs(what: str, inputs) -> tuple[list, bool]:
    """``inputs`` as a list of tensors, and whether it was one tensor (not a sequence)."""
    if isinstance(inputs, Tensor):
        return [inputs], True
    if isinstance(inputs, (list, tuple)) and inputs:
        for x in inputs:
            if not isinstance(x, Tensor):
                raise wrong_type(what + ": the inputs must be tensors, got {got}", x)
        return list(inputs), False
    raise AdcliError("type", f"{what}: the inputs must be a tensor or a tuple of tensors")


def _differentiable_inputs(xs: list, create_graph: bool) -> list:
    """What ``f`` is called on: each input as a fresh leaf that requires grad, or, with
    ``create_graph`` and an input that already requires grad, the input itself (so the
    results stay connected to it and can be differentiated again), as PyTorch does."""
    out = []
    for x in xs:
        if x.dtype not in ("float32", "float64"):
            raise AdcliError("type", "only Tensors of floating point dtype can require gradients")
        out.append(x if create_graph and x._requires_grad else _fresh_leaf(x))
    return out


def _call(what: str, f, leaves: list) -> Tensor:
    y = f(*leaves)
    if not isinstance(y, Tensor):
        raise wrong_type(what + ": the function must return a tensor, got {got}", y)
    return y


def _finish(value: Tensor, create_graph: bool) -> Tensor:
    """PyTorch's functional API hands back detached results unless ``create_graph``."""
    return value if create_graph else value.detach()


def _vjp_rows(y: Tensor, xs, create_graph: bool = False) -> list:
    """d y[i] / d x for every element i of ``y``: one reverse pass per element.

    ``xs`` is a tensor (each row is a tensor) or a list (each row is a list).
    """
    n = y.numel()
    single = isinstance(xs, Tensor)
    targets = [xs] if single else list(xs)
    if y._grad_fn is None and not y._requires_grad:
        _refuse_a_gradient_without_graph(y)
        rows = [[zeros_like(x) for x in targets] for _ in range(n)]
        return [r[0] for r in rows] if single else rows
    xp = y._backend.xp
    rows = []
    for i in range(n):
        onehot = xp.zeros(n, dtype=y._data.dtype)
        onehot[i] = 1
        seed = make_result(onehot.reshape(y.shape), y._backend)
        rows.append(
            grad(y, targets, grad_outputs=seed, retain_graph=True, create_graph=create_graph)
        )
    return [r[0] for r in rows] if single else rows


def _refuse_a_gradient_without_graph(y: Tensor) -> None:
    """A result that does not depend on the input is zeros (``jacobian``, ``hessian``),
    except a gradient computed without a graph: that is a forgotten ``create_graph``,
    never a silent zero."""
    if origin(y) is not None:
        raise no_grad_fn_error(y)


def _stack(rows: list, shape: tuple, like: Tensor) -> Tensor:
    """Rows of equal shape as one tensor of ``shape``; differentiable when a row is."""
    if not any(r._requires_grad for r in rows):
        return stack_rows(rows, shape, like=like)
    first = rows[0]
    out = make_result(
        first._backend.xp.zeros((len(rows),) + first.shape, first._data.dtype), first._backend
    )
    for i, row in enumerate(rows):
        out = index_put(out, (i,), row)
    return reshape(out, *shape)


def jacobian(f, inputs, create_graph: bool = False):
    """``torch.autograd.functional.jacobian``: ``J[i..., j...] = d f(x)[i...] / d x[j...]``.

    ``inputs`` is a tensor (one Jacobian) or a tuple of tensors (a tuple of Jacobians,
    one per input, of shape ``f(...).shape + x_k.shape``). With ``create_graph`` the
    Jacobians are differentiable (with respect to inputs that require grad).
    One reverse pass per output element.
    """
    xs, single = _inputs("jacobian(f, x)", inputs)
    leaves = _differentiable_inputs(xs, create_graph)
    y = _call("jacobian(f, x)", f, leaves)
    for x in xs:
        _check_square("jacobian", y.numel(), x.numel())
    rows = _vjp_rows(y, leaves, create_graph)
    out = tuple(
        _finish(_stack([r[k] for r in rows], y.shape + x.shape, leaves[k]), create_graph)
        for k, x in enumerate(xs)
    )
    return out[0] if single else out


def _check_square(what: str, rows: int, columns: int) -> None:
    """Refuse a jacobian-like result of ``rows * columns`` elements over the element limit."""
    if rows * columns > STATE.max_elements:
        raise AdcliError(
            "limit",
            f"the {what} would hold {rows:,} x {columns:,} = {rows * columns:,} elements, "
            f"over the limit of {STATE.max_elements:,}",
            details={
                "limit": "max_elements",
                "requested": rows * columns,
                "maximum": STATE.max_elements,
                "advice": "use a smaller input",
            },
        )


def hessian(f, inputs, create_graph: bool = False):
    """``torch.autograd.functional.hessian`` of a scalar-valued ``f``.

    For one tensor ``x``: ``H[i..., j...] = d^2 f / dx[i...] dx[j...]``. For a tuple of
    inputs: a tuple of tuples, ``H[a][b]`` of shape ``x_a.shape + x_b.shape``.
    """
    xs, single = _inputs("hessian(f, x)", inputs)
    total = 0
    for x in xs:
        total += x.numel()
    _check_square("hessian", total, total)  # before any work: n reverse passes would follow
    leaves = _differentiable_inputs(xs, create_graph)
    y = _call("hessian(f, x)", f, leaves)
    if y.numel() != 1:
        raise AdcliError("value", "hessian(f, x): f must return a tensor with one element")
    if grad_node(y) is None:  # f does not depend on its inputs: every block is zeros
        _refuse_a_gradient_without_graph(y)
        gs = [zeros_like(x) for x in leaves]
    else:
        gs = grad(y, leaves, create_graph=True)
    out = []
    for a, g in enumerate(gs):
        rows = _vjp_rows(g, leaves, create_graph)
        out.append(
            tuple(
                _finish(
                    _stack([r[b] for r in rows], xs[a].shape + xb.shape, leaves[b]), create_graph
                )
                for b, xb in enumerate(xs)
            )
        )
    return out[0][0] if single else tuple(out)


def _vectors(what: str, v, like: list, single: bool, name: str) -> list:
    """``v`` as one tensor per entry of ``like``, each of its shape, dtype and device."""
    vs = [v] if single or isinstance(v, Tensor) else list(v) if isinstance(v, (list, tuple)) else v
    if not isinstance(vs, list) or len(vs) != len(like):
        raise AdcliError(
            "type",
            f"{what}: {name} must be a tensor"
            + ("" if single else f" or a tuple of {len(like)} tensors, one per input"),
        )
    out = []
    for k, (vk, x) in enumerate(zip(vs, like)):
        if not isinstance(vk, Tensor):
            raise wrong_type(what + ": " + name + " must be made of tensors, got {got}", vk)
        if vk.shape != x.shape:
            raise AdcliError(
                "shape",
                f"{what}: {name}{'' if len(like) == 1 else f'[{k}]'} has shape "
                f"{format_shape(vk.shape)}, but it must have the shape "
                f"{format_shape(x.shape)}",
            )
        if vk._backend is not x._backend:
            raise AdcliError(
                "device", f"{what}: {name} is on {vk.device}, but the input is on {x.device}"
            )
        if vk._data.dtype != x._data.dtype:
            vk = cast(vk, x._data.dtype)
        out.append(vk)
    return out


def vjp(f, inputs, v=None, create_graph: bool = False):
    """``torch.autograd.functional.vjp``: ``(f(inputs), v^T J)``.

    ``v`` has the output's shape (it may be left out when the output has one
    element); the product has the inputs' structure (a tensor or a tuple).
    """
    xs, single = _inputs("vjp(f, x, v)", inputs)
    leaves = _differentiable_inputs(xs, create_graph)
    y = _call("vjp(f, x, v)", f, leaves)
    if v is None:
        if y.numel() != 1:
            raise AdcliError(
                "value",
                "vjp(f, x, v): the vector v can only be left out when f returns one element",
            )
        seed = None
    else:
        (seed,) = _vectors("vjp(f, x, v)", v, [y], True, "v")
    if grad_node(y) is None:
        products = [zeros_like(x) for x in xs]
    else:
        products = grad(y, leaves, grad_outputs=seed, create_graph=create_graph)
    products = [_finish(p, create_graph) for p in products]
    return _finish(y, create_graph), products[0] if single else tuple(products)


def jvp(f, inputs, v=None, create_graph: bool = False):
    """``torch.autograd.functional.jvp``: ``(f(inputs), J v)``.

    ``v`` has the inputs' structure (it may be left out for one input of one element).
    Computed as PyTorch does, by the double-backward trick: ``u -> J^T u`` is linear
    in ``u``, and its vector-Jacobian product with ``v`` is ``J v``.
    """
    xs, single = _inputs("jvp(f, x, v)", inputs)
    if v is None:
        if len(xs) != 1 or xs[0].numel() != 1:
            raise AdcliError(
                "value",
                "jvp(f, x, v): the vector v can only be left out for one input of one element",
            )
        vs = [make_result(xs[0]._backend.xp.ones(xs[0].shape, xs[0]._data.dtype), xs[0]._backend)]
    else:
        vs = _vectors("jvp(f, x, v)", v, xs, single, "v")
    leaves = _differentiable_inputs(xs, create_graph)
    y = _call("jvp(f, x, v)", f, leaves)
    if grad_node(y) is None:
        return _finish(y, create_graph), zeros_like(y)
    u = Tensor(y._backend.xp.zeros(y.shape, y._data.dtype), y._backend, requires_grad=True)
    gs = grad(y, leaves, grad_outputs=u, create_graph=True)
    total = None
    for g, vk in zip(gs, vs):
        term = sum_all(g * vk)
        total = term if total is None else total + term
    if grad_node(total) is None:  # f is constant in its inputs, or linear in nothing
        return _finish(y, create_graph), zeros_like(y)
    (product,) = grad(total, [u], create_graph=create_graph)
    return _finish(y, create_graph), _finish(product, create_graph)


def hvp(f, inputs, v, create_graph: bool = False):
    """``torch.autograd.functional.hvp``: ``(f(inputs), H v)`` for a scalar-valued ``f``;
    ``v`` and the product have the inputs' structure."""
    xs, single = _inputs("hvp(f, x, v)", inputs)
    vs = _vectors("hvp(f, x, v)", v, xs, single, "v")
    leaves = _differentiable_inputs(xs, create_graph)
    y = _call("hvp(f, x, v)", f, leaves)
    if y.numel() != 1:
        raise AdcliError("value", "hvp(f, x, v): f must return a tensor with one element")
    if grad_node(y) is None:
        products = [zeros_like(x) for x in xs]
    else:
        gs = grad(y, leaves, create_graph=True)
        total = None
        for g, vk in zip(gs, vs):
            term = sum_all(g * vk)
            total = term if total is None else total + term
        if grad_node(total) is None:
            products = [zeros_like(x) for x in xs]
        else:
            products = grad(total, leaves, create_graph=create_graph)
    products = [_finish(p, create_graph) for p in products]
    return _finish(y, create_graph), products[0] if single else tuple(products)


def gradcheck(f, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3) -> dict:
    """Compare f's analytic jacobian with central finite differences, in float64.

    ``f`` is evaluated with grad mode on, even inside ``no_grad`` (as
    PyTorch's gradcheck does), so a function that itself calls :func:`grad`
    is checked correctly. Returns ``{"ok": bool, "max_abs_error": float,
    "max_rel_error": float}``.
    """

    xs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    xs64 = [Tensor(cast(x.detach(), "float64")._data, x._backend, requires_grad=True) for x in xs]
    worst_abs = 0.0
    worst_rel = 0.0
    ok = True
    with enable_grad():
        y = f(*xs64)
    if not isinstance(y, Tensor):
        raise AdcliError("type", "gradcheck: f must return a tensor")
    ny = y.numel()
    for x in xs64:
        _check_square("gradcheck's jacobian", ny, x.numel())
    for k, x in enumerate(xs64):
        analytic = np.zeros((ny, x.numel()))
        with enable_grad():
            rows = _vjp_rows(y, x)
        for i, row in enumerate(rows):
            analytic[i] = row.numpy().ravel()
        numeric = np.zeros_like(analytic)
        # Perturb a copy: the leaves f first saw (and y's graph) keep their values.
        probe = [Tensor(t._data.copy(), t._backend, requires_grad=True) for t in xs64]
        flat = probe[k]._data.reshape(-1)
        for j in range(x.numel()):
            check_deadline()
            orig = flat[j].copy() if hasattr(flat[j], "copy") else flat[j]
            flat[j] = orig + eps
            plus = _evaluate(f, probe)
            flat[j] = orig - eps
            minus = _evaluate(f, probe)
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


def _evaluate(f, xs: list) -> np.ndarray:
    """``f(*xs)``'s values, flattened, computed with grad mode on (``f`` may call grad)."""
    with enable_grad():
        out = f(*xs)
    if not isinstance(out, Tensor):
        raise AdcliError("type", "gradcheck: f must return a tensor")
    return out.numpy().ravel()


def _tensor_backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (PyTorch's backward)."""
    backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)


Tensor.backward = _tensor_backward
