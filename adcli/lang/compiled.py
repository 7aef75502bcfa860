"""Statements of a loop body compiled once into Python closures.

A loop runs its body many times; walking the AST each time resolves the same
names and dispatches on the same node types again and again. Here each
statement of a block becomes a closure the first time the block runs (kept
per session, keyed by the block), with the dispatch done: a number is a
constant, a variable a dictionary read, ``a op b`` on tensors a direct call of
the engine's operator, ``sin(y)`` a direct call of the builtin (after a check
that no user function or variable shadows it). Whatever is not one of these
forms falls back to the evaluator, so the results and errors are the same.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

from adcli import engine as E
from adcli.engine.tensor import Tensor
from adcli.errors import AdcliError
from adcli.lang import builtins as B
from adcli.lang import nodes as N

#: Expressions deeper than this are left to the evaluator (it counts depth).
_MAX_DEPTH = 24
_MISSING = object()
_ENGINE_ERRORS = (ValueError, TypeError, IndexError, ZeroDivisionError, OverflowError)

# Tensor's own operators take the engine's fastest path (numbers on either side too).
TENSOR_OPS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "^": E.pow,
    "@": lambda a, b: E.matmul(a, b),
    "%": E.remainder,
    "//": E.floor_divide,
    "==": E.eq,
    "!=": E.ne,
    "<": E.lt,
    "<=": E.le,
    ">": E.gt,
    ">=": E.ge,
}
FAST_OPERANDS = frozenset({Tensor, float, int})


def compile_block(ev, block: N.Block) -> tuple:
    """``((statement, run), ...)`` for the statements of ``block``; ``run(display)``."""
    return tuple((stmt, compile_statement(ev, stmt)) for stmt in block.statements)


def compile_statement(ev, stmt) -> Callable:
    if type(stmt) is N.Assign:
        value = compile_expr(ev, stmt.value, 0)
        name = stmt.name

        def assign(display):
            result = value()
            if ev._call_depth:
                ev.variables_[name] = result
            else:
                ev._bind_name(name, result)

        return assign
    handler = type(ev).EXEC[type(stmt)]
    return lambda display: handler(ev, stmt, display)


def compile_expr(ev, node, depth: int) -> Callable:
    kind = type(node)
    if kind is N.Number:
        constant = node.value
        return lambda: constant
    if depth > _MAX_DEPTH:
        return lambda: ev.eval(node)
    if kind is N.Name:
        name = node.id

        def variable():
            found = ev.variables_.get(name, _MISSING)
            if found is _MISSING:
                return ev.eval(node)
            return found

        return variable
    if kind is N.Binary:
        return _binary(ev, node, depth)
    if kind is N.Call:
        return _call(ev, node, depth)
    return lambda: ev.eval(node)


def _binary(ev, node: N.Binary, depth: int) -> Callable:
    left = compile_expr(ev, node.left, depth + 1)
    right = compile_expr(ev, node.right, depth + 1)
    fn = TENSOR_OPS[node.op]
    span = node.op_span
    operate = ev._operate

    def binary():
        a = left()
        b = right()
        if type(a) is Tensor and type(b) in FAST_OPERANDS and not ev.detect_anomaly:
            try:
                return fn(a, b)
            except AdcliError as err:
                raise err.at(span) from None
        return operate(node, a, b)

    return binary


def _call(ev, node: N.Call, depth: int) -> Callable:
    func = node.func
    if type(func) is not N.Name or node.kwargs:
        return lambda: ev.eval(node)
    name = func.id
    target = B.BUILTINS.get(name)
    if target is None or target.lazy or target.check_call(len(node.args), ()) is not None:
        return lambda: ev.eval(node)
    if name in ("grad", "jacobian", "hessian", "jvp", "vjp", "hvp", "backward"):
        return lambda: ev.eval(node)  # their inputs argument reads a bracket list specially
    args = tuple(compile_expr(ev, a, depth + 1) for a in node.args)
    impl = target.fn
    span = node.span

    def shadowed() -> bool:
        return (
            name in ev.functions
            or name in ev.variables_
            or (ev._globals is not None and name in ev._globals)
        )

    if len(args) == 1:
        (only,) = args

        def call1():
            if shadowed() or ev.detect_anomaly:
                return ev.eval(node)
            value = only()
            try:
                return impl(ev, value)
            except AdcliError as err:
                raise err.at(span) from None
            except _ENGINE_ERRORS as exc:
                raise AdcliError("value", f"{name}(): {exc}", span) from None

        return call1

    def call():
        if shadowed() or ev.detect_anomaly:
            return ev.eval(node)
        values = [a() for a in args]
        try:
            return impl(ev, *values)
        except AdcliError as err:
            raise err.at(span) from None
        except _ENGINE_ERRORS as exc:
            raise AdcliError("value", f"{name}(): {exc}", span) from None

    return call


__all__ = ["FAST_OPERANDS", "TENSOR_OPS", "compile_block", "compile_expr", "compile_statement"]
