"""The derivative services the command line uses: ``--wrt``/``--order``
derivatives, their finite-difference checks and cost reports (mixed into
:class:`~adcli.lang.interpreter.Session`; they re-run the program through the
evaluator and the engine's Taylor driver and diagnostics)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from adcli import engine as E
from adcli.engine import diagnostics
from adcli.engine.tensor import Tensor, no_grad_fn_error, origin
from adcli.errors import AdcliError
from adcli.lang import seeing
from adcli.lang.wording import worded


class DerivativeServices:
    """``derivatives``, ``function_of``, ``derivative_checks``, ``derivative_costs``."""

    def derivatives(self, y, wrt: list[str], order: int, method: str = "auto") -> dict[str, list]:
        """Derivatives of ``y`` of orders 1..order for each name (the spec's nth derivative)."""
        self._check_order(order, None)
        out = {}
        for name in wrt:
            if name not in self.variables_:
                raise AdcliError(
                    "name", f"--wrt {name}: unknown name '{name}'" + self._suggest(name)
                )
            x = self.variables_[name]
            if not isinstance(x, Tensor):
                raise AdcliError("type", f"--wrt {name}: '{name}' is not a tensor")
            if not x.requires_grad:
                raise AdcliError(
                    "value",
                    f"--wrt {name}: '{name}' does not require grad (bind it with --at, or "
                    "create it with requires_grad=true)",
                )
            if not isinstance(y, Tensor) or not y.requires_grad:
                if isinstance(y, Tensor) and origin(y) is not None:
                    # A gradient computed without a graph: a forgotten create_graph.
                    raise worded(no_grad_fn_error(y))
                # A value that does not depend on any leaf: every derivative vanishes.
                out[name] = [E.zeros_like(x) for _ in range(order)]
                continue
            # The graph is kept: every name in wrt goes through it.
            out[name] = self._with_engine_settings(
                lambda x=x: E.nth_grads(y, x, order, method=method, retain_graph=True), None
            )
        return out

    def function_of(self, source: str, name: str, filename: str = "<eval>") -> Callable:
        """``f(t)``: the value of ``source`` run with ``name`` bound to tensor ``t``.

        For finite differences and cost reports, which must re-evaluate the
        program; it runs silently and leaves the session's variables as they were.
        """
        program = self._parse(source, filename)

        def f(t):
            saved = dict(self.variables_), dict(self.functions), self._emit
            held = dict(self._held), self._held_total
            self._emit = None
            try:
                self.variables_[name] = t
                return self._run_program(program, Path.cwd())
            finally:
                self.variables_, self.functions = saved[0], saved[1]
                self._emit = saved[2]
                self._held, self._held_total = held

        return f

    def symbolic_derivatives(
        self, y, wrt: list[str], order: int, simplify: str = "basic", latex: bool = False
    ) -> dict[str, list[str]]:
        """Per name, the derivatives of orders 1..order as programs of the language.

        ``simplify``: ``"basic"``, ``"sympy"`` or ``"auto"`` (see
        :func:`adcli.lang.symbolic.derivative_programs`); ``latex``: LaTeX instead.
        """
        from adcli.lang import symbolic  # start-up: only --symbolic needs it

        self._check_order(order, None)
        if latex and not symbolic.sympy_available():
            symbolic.latex_of(None)  # says which extra is missing (no place in the program)

        def spell(name):
            x = self._wrt_tensor(name)
            if latex:
                return symbolic.derivative_latex(y, x, name, order, self.variables_)
            return symbolic.derivative_programs(y, x, name, order, self.variables_, simplify)

        return {
            name: self._with_engine_settings(lambda name=name: spell(name), None) for name in wrt
        }

    def describe_graph(self, value, values: bool = False) -> list[dict]:
        """The grad_fn graph of ``value`` (see :func:`adcli.lang.seeing.describe_graph`)."""
        return self._with_engine_settings(lambda: seeing.describe_graph(value, values), None)

    def plot(self, source: str, name: str, a: float, b: float, *, points=200, order=1, emit=None):
        """:class:`~adcli.lang.seeing.PlotData`: the program's value, ``name`` bound to the
        points of [a, b] (one vector), and its first ``order`` derivatives, in one pass."""
        f = self.function_of(source, name, "<plot>")
        return self._with_engine_settings(
            lambda: seeing.sample(
                f,
                a,
                b,
                points=points,
                order=order,
                dtype=self.dtype,
                device=self.backend,
                wrt=name,
            ),
            emit,
        )

    def derivative_checks(self, source: str, wrt: list[str], order: int) -> dict:
        """Per name: Taylor vs nested vs finite differences (Richardson, float64), by order."""
        self._check_order(order, None)
        return {
            name: self._with_engine_settings(
                lambda name=name: diagnostics.check_orders(
                    self.function_of(source, name), self._wrt_tensor(name), order
                ),
                None,
            )
            for name in wrt
        }

    def derivative_costs(self, source: str, wrt: list[str], order: int, methods: list[str]) -> dict:
        """Per name and method: graph nodes, seconds and peak bytes of each order."""
        self._check_order(order, None)
        out = {}
        for name in wrt:
            f = self.function_of(source, name)
            x = self._wrt_tensor(name)
            out[name] = {
                m: self._with_engine_settings(
                    lambda f=f, x=x, m=m: diagnostics.cost_report(f, x, order, m), None
                )
                for m in methods
            }
        return out

    def _wrt_tensor(self, name: str) -> Tensor:
        x = self.variables_.get(name)
        if not isinstance(x, Tensor):
            raise AdcliError(
                "name", f"--wrt {name}: '{name}' is not a tensor variable" + self._suggest(name)
            )
        return x
