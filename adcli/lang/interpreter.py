"""A session that runs ``.ad`` programs: state and the public API.

A :class:`Session` holds variables, user functions and settings (device,
dtype, random generator, limits). The work is done by its parts:
:class:`~adcli.lang.evaluator.Evaluator` (statements and expressions) and
:class:`~adcli.lang.derivatives.DerivativeServices` (what ``--wrt``,
``--check`` and ``--cost`` need). It never prints: every displayed value,
``print`` and warning goes to an ``emit`` callback as an :class:`Output`.

Safety: user input never reaches ``eval``/``exec``; attributes and methods
come from fixed tables; ``import`` reads only ``.ad`` files.
"""

from __future__ import annotations

import gc
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from time import monotonic

import numpy as np

from adcli import engine as E
from adcli.backend import get_backend, resolve_dtype
from adcli.engine.promotion import get_default_dtype, set_default_dtype
from adcli.engine.tensor import STATE, Tensor
from adcli.errors import AdcliError, Span
from adcli.lang import builtins as B
from adcli.lang import nodes as N
from adcli.lang import sources
from adcli.lang.derivatives import DerivativeServices
from adcli.lang.evaluator import CONSTANTS, Evaluator, is_literal
from adcli.lang.parser import parse
from adcli.lang.values import DEFAULT_MAX_ELEMENTS, Accumulation, Limits, Output, UserFunction
from adcli.lang.wording import worded

__all__ = ["DEFAULT_MAX_ELEMENTS", "Limits", "Output", "Session", "UserFunction"]

#: Programs with this many statements run with the objects alive before them frozen.
_FREEZE_STATEMENTS = 1000

KEYWORDS = (
    "assert",
    "import",
    "true",
    "false",
    "none",
    "for",
    "in",
    "while",
    "if",
    "else",
    "break",
    "continue",
    "return",
    "and",
    "or",
    "not",
    "no_grad",
    "enable_grad",
)


class Session(Evaluator, DerivativeServices):
    """An interpreter session: variables, functions, settings; runs programs."""

    def __init__(
        self, *, device="cpu", dtype="float32", seed=None, limits=None, detect_anomaly=False
    ) -> None:
        self.limits = limits or Limits()
        self.backend = get_backend(device)  # raises a device error early
        self.dtype = resolve_dtype(dtype).name
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise AdcliError("value", f"a seed is a non-negative whole number, got {seed!r}")
        self.seed = seed
        self._rng: np.random.Generator | None = None  # made on first use (see rng)
        self.detect_anomaly = bool(detect_anomaly)
        self.variables_: dict[str, object] = {}
        self.functions: dict[str, UserFunction] = {}
        # Per file run, its source text, split into lines when first asked for (for an
        # error's caret): most runs never need them.
        self.sources: dict[str, str | list[str]] = {}
        self.imported: set[str] = set()
        self.import_stack: list[str] = []
        self.wrt: set[str] = set()
        self._emit: Callable[[Output], None] | None = None
        self._depth = 0
        self._call_depth = 0
        self._calls = 0  # user function calls made by the current statement
        self._held: dict[str, int] = {}  # bytes of the tensor bound to each variable
        self._held_total = 0
        self._statement_span: Span | None = None
        self._globals: dict | None = None  # the session's variables, inside a function body
        self._steps = 0  # statements run by the current program
        self._base_dir = Path.cwd()
        self._compiled: dict[int, tuple] = {}  # loop and function bodies, compiled once
        #: what the last statement run displayed (None when it displayed nothing)
        self.last_output: Output | None = None
        #: record every op's inputs on the tape, so values can be spelled back as
        #: expressions (``symbolic``); a program that mentions ``symbolic`` turns it on
        self.keep_tape_inputs = False
        self._accumulations_seen: set = set()

    # ----- the interface the front end uses ---------------------------------------------------
    @property
    def rng(self) -> np.random.Generator:
        """The session's random generator (from ``seed``), made when first needed:
        importing numpy.random takes a tenth of ``adcli eval``'s start-up."""
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        return self._rng

    @rng.setter
    def rng(self, generator: np.random.Generator) -> None:
        self._rng = generator

    @property
    def device(self) -> str:
        return self.backend.name

    def _parse(self, source: str, filename: str) -> N.Program:
        """Parse under this session's limits, keeping the lines for error carets."""
        self.sources[filename] = source
        return parse(
            source,
            filename,
            max_depth=self.limits.max_depth,
            max_source_bytes=self.limits.max_source_bytes,
            timeout=self.limits.timeout,
            cache=True,
        )

    def run(self, source: str, filename: str = "<eval>", emit=None, base_dir=None):
        """Parse and run ``source``; return the last statement's value if it is an expression."""
        collecting = gc.isenabled()
        gc.disable()  # until _run_parsed has frozen the new tree: no collection scans it first
        try:
            program = self._parse(source, filename)
        except BaseException:
            if collecting:
                gc.enable()
            raise
        return self._run_parsed(program, source, filename, emit, base_dir, collecting)

    def run_program(
        self, program: N.Program, source: str, filename: str = "<eval>", emit=None, base_dir=None
    ):
        """Run ``program``, already parsed from ``source`` (with ``filename`` in its
        spans), as :meth:`run` runs what it parses: the same checks, limits and
        outputs; ``source`` gives error carets their lines."""
        if type(program) is not N.Program:
            raise TypeError(f"run_program() takes a parsed Program, not {type(program).__name__}")
        self.sources[filename] = source
        collecting = gc.isenabled()
        gc.disable()
        return self._run_parsed(program, source, filename, emit, base_dir, collecting)

    def _run_parsed(self, program, source: str, filename: str, emit, base_dir, collecting: bool):
        """Run ``program``; the cyclic collector, off on entry, is on again (if
        ``collecting``) once a long program's tree is frozen: immutable and without
        cycles (reference counting frees it), it is set aside from the collector
        while it runs, so that collections do not rescan it (unless something else
        froze objects already: that is left as it is)."""
        frozen = False
        on_stack = False
        try:
            if collecting:
                frozen = len(program.statements) >= _FREEZE_STATEMENTS and not gc.get_freeze_count()
                if frozen:
                    gc.freeze()
                gc.enable()
                collecting = False
            self._accumulations_seen = set()
            if "symbolic" in source:
                self.keep_tape_inputs = True
            self._steps = 0
            self._compiled.clear()  # bodies are compiled again per program: memory stays bounded
            if base_dir is None:
                base_dir = sources.base_dir_of(filename)
            # A script is on the import stack while it runs: importing it back is a cycle.
            if not filename.startswith("<"):
                self.import_stack.append(sources.identity(filename))
                on_stack = True
            return self._with_engine_settings(
                lambda: self._run_program(program, Path(base_dir)), emit
            )
        finally:
            if collecting:  # (an error before it was turned on again)
                gc.enable()
            if frozen:
                gc.unfreeze()
            if on_stack:
                self.import_stack.pop()

    def run_file(self, path, emit=None):
        """Run the script at ``path`` (its imports resolve relative to it)."""
        p = Path(path)
        if p.suffix == ".py":
            raise AdcliError(
                "value",
                f"{path} is a Python file; adcli runs .ad scripts",
                hint="the .ad language is not Python: see `man adcli-lang` (f(x) = ..., "
                "for i in range(n) { ... }, true/false/none)",
            )
        source = sources.read_source(path, str(path), self.limits.max_source_bytes)
        self.imported.add(sources.identity(str(path)))
        return self.run(source, str(path), emit, base_dir=sources.base_dir_of(str(path)))

    def source_lines(self, filename: str) -> list[str] | None:
        """The lines of ``filename`` as it was run (None for a file not run)."""
        kept = self.sources.get(filename)
        if type(kept) is str:
            kept = self.sources[filename] = kept.splitlines()
        return kept

    def bind(self, name: str, value) -> None:
        self._hold(name, value)
        if isinstance(value, Tensor) and value.is_leaf and value.name is None:
            value.name = name
        self.variables_[name] = value

    def _hold(self, name: str, value) -> None:
        """Count what binding ``name`` to ``value`` adds to the bytes variables hold.

        Each variable counts its tensor's own size (views of one storage count
        each time, erring on the safe side); gradients in ``.grad`` and values
        not bound to a variable are not counted.
        """
        size = value._data.nbytes if type(value) is Tensor else 0
        total = self._held_total - self._held.get(name, 0) + size
        if size and total > self.limits.max_bytes:
            raise AdcliError(
                "limit",
                f"binding '{name}' would bring the tensors held in variables to {total:,} "
                f"bytes, over the limit of {self.limits.max_bytes:,}",
                hint="rebind variables you no longer need (say x = 0), or raise the limit "
                "with --max-bytes",
            )
        if size:
            self._held[name] = size
        else:
            self._held.pop(name, None)
        self._held_total = total

    def lookup(self, name: str):
        return self.variables_[name]

    def variables(self) -> dict[str, object]:
        return dict(self.variables_)

    def mark_wrt(self, names) -> None:
        """Names that become leaves requiring grad whenever a program binds them."""
        self.wrt.update(names)

    def make_tensor(self, literal_text: str, requires_grad: bool = False) -> Tensor:
        """A tensor from a number or bracket literal such as ``[1, 2.5, -3]`` (for --at)."""
        program = parse(literal_text, "<--at>")
        statements = program.statements
        if (
            len(statements) != 1
            or not isinstance(statements[0], N.ExprStmt)
            or not is_literal(statements[0].expr)
        ):
            raise AdcliError(
                "value",
                f"expected a number or a bracket literal such as [1, 2.5, -3], got {literal_text!r}",
            )
        # Read at full precision, then stored in the session's dtype.
        value = self._with_engine_settings(lambda: self._exact(statements[0].expr), None)
        if isinstance(value, list):
            t = E.tensor(value, dtype=self.dtype, device=self.backend)
        else:
            t = self._tensor_of(value, statements[0].expr.span)
            t = E.tensor(t, dtype=self.dtype, device=self.backend)
        if requires_grad:
            t.requires_grad = True
        return t

    def completions(self, prefix: str) -> list[str]:
        """Names, builtins, keywords, and attributes or methods after a dot."""
        if "." in prefix:
            head, _, tail = prefix.rpartition(".")
            pool = sorted(B.ATTRIBUTES | set(B.METHODS))
            return [f"{head}.{p}" for p in pool if p.startswith(tail)]
        pool = (
            set(self.variables_)
            | set(self.functions)
            | set(B.BUILTINS)
            | set(CONSTANTS)
            | set(KEYWORDS)
        )
        return sorted(p for p in pool if p.startswith(prefix))

    def reset(self) -> None:
        self.variables_.clear()
        self._held.clear()
        self._held_total = 0
        self.functions.clear()
        self.imported.clear()
        self._rng = None  # a fresh generator from the seed, when next needed

    def set_device(self, device: str) -> None:
        self.backend = get_backend(device)

    # ----- running ----------------------------------------------------------------------------
    def _with_engine_settings(self, thunk, emit):
        """Run ``thunk`` with this session's limits, anomaly mode and warning sink installed.

        The evaluator recurses on the expression tree, so Python's recursion limit
        is raised for the run to what ``max_expr_depth`` and ``max_call_depth``
        need: the evaluator's own, clearer depth errors come first. (Python-to-Python
        calls use no C stack from 3.11 on, so this is safe.)
        """
        saved = (STATE.max_elements, STATE.anomaly, STATE.warn, STATE.context, self._emit)
        saved_time = (STATE.deadline, STATE.time_limit)
        saved_tape = (STATE.keep_inputs, STATE.on_accumulate)
        STATE.keep_inputs = STATE.keep_inputs or self.keep_tape_inputs
        STATE.on_accumulate = self._accumulated
        saved_dtype = get_default_dtype()
        if self.dtype in ("float32", "float64"):
            set_default_dtype(self.dtype)  # what Python floats and int / int become
        STATE.max_elements = self.limits.max_elements
        STATE.anomaly = self.detect_anomaly
        STATE.warn = self._warn
        timeout = self.limits.timeout
        STATE.deadline = monotonic() + timeout if timeout else None
        STATE.time_limit = timeout
        if emit is not None or self._emit is None:
            self._emit = emit
        recursion_limit = sys.getrecursionlimit()
        needed = 6 * self.limits.max_expr_depth + 12 * self.limits.max_call_depth
        # Past a million frames (limits raised that far), RecursionError stops it instead.
        sys.setrecursionlimit(recursion_limit + min(needed, 1_000_000))
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return thunk()
        except AdcliError as err:
            ctx = getattr(err, "context", None)
            if isinstance(ctx, N.Node):  # a statement (see Evaluator._statement_span)
                ctx = ctx.span
            if isinstance(ctx, Span):
                err.span = ctx
            raise worded(err).at(self._statement_span)
        except RecursionError:
            raise AdcliError(
                "limit",
                "expression nested too deeply for the evaluator",
                self._statement_span,
                hint="split it into several statements",
            ) from None
        except MemoryError:
            raise AdcliError(
                "limit",
                "out of memory: the computation needs more memory than is available",
                self._statement_span,
                hint="use smaller tensors",
            ) from None
        finally:
            (STATE.max_elements, STATE.anomaly, STATE.warn, STATE.context, self._emit) = saved
            STATE.deadline, STATE.time_limit = saved_time
            STATE.keep_inputs, STATE.on_accumulate = saved_tape
            set_default_dtype(saved_dtype)
            sys.setrecursionlimit(recursion_limit)

    def _accumulated(self, event) -> None:
        """A backward added into an existing ``.grad``: shown once per leaf and statement."""
        span = self._statement_span
        key = (id(event.variable), span)
        if key in self._accumulations_seen or self._emit is None:
            return
        if not np.any(event.before):  # into a zeroed .grad: what zero_() is for, nothing to say
            return
        self._accumulations_seen.add(key)
        name = event.variable.name or "tensor"
        self._emit(Output("accumulation", Accumulation(name, event), None, span))

    def _warn(self, message: str) -> None:
        if self._emit is not None:
            self._emit(Output("warning", None, message, self._statement_span))

    def _show(self, output: Output) -> None:
        if self._emit is not None:
            self._emit(output)
