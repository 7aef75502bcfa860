"""The ``adcli`` command line (see ``man adcli`` and shared/spec/cli.md).

The commands are thin: they turn options into calls on an interpreter
:class:`~adcli.lang.interpreter.Session` and hand whatever comes back to
:mod:`adcli.cli.render`. The interpreter is imported inside the commands, so
``--help`` and ``--version`` stay quick.

Exit codes, and which failure gets which:

* 0: everything ran and every assert held.
* 1: a program failed (syntax, runtime or assert error), and also an
  environment failure the command line asked for but the machine cannot give:
  ``--device cuda`` without a GPU or CuPy. That is reported like a program
  error, as kind ``device`` with null line and column in ``--json``.
* 2: the command line is malformed: unknown option, missing file, a ``--at``
  that is not ``NAME=VALUE`` or whose VALUE is not a literal, a ``--dtype`` or
  ``--device`` that is not a valid name. These are usage errors: Click's
  plain message on stderr, never JSON, even with ``--json``.
"""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from time import perf_counter
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from adcli import __version__
from adcli.cli.render import (
    Renderer,
    array_json,
    error_json,
    failure_json,
    graph_json,
    is_node,
    value_json,
)
from adcli.errors import AdcliError

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
DEVICE_RE = re.compile(r"(cpu|cuda(:\d+)?)\Z")
# A token after the command that starts with "-" but cannot be an option (say "-x^2").
NOT_AN_OPTION_RE = re.compile(r"-(\d|[^=]*[^A-Za-z0-9_=-])")

GLOBAL_NOTE = (
    "The global options (--device, --dtype, --seed, --json, --debug, --detect-anomaly, "
    "--timeout and the --max-* limits) may also come after the command name."
)


@dataclass(frozen=True)
class GlobalOptions:
    """The options every command takes."""

    device: str = "cpu"
    dtype: str = "float32"
    seed: int | None = None
    json: bool = False
    debug: bool = False
    detect_anomaly: bool = False
    no_cache: bool = False
    #: limits given on the command line (the others keep the session's defaults)
    max_elements: int | None = None
    max_bytes: int | None = None
    max_depth: int | None = None
    max_call_depth: int | None = None
    max_calls: int | None = None
    max_order: int | None = None
    max_source_bytes: int | None = None
    timeout: float | None = None


class Dtype(str, Enum):
    """The floating types a session can default to."""

    float32 = "float32"
    float64 = "float64"


class Method(str, Enum):
    """How nth derivatives are computed."""

    auto = "auto"
    taylor = "taylor"
    nested = "nested"


class GlobalOptionsAnywhere(TyperGroup):
    """A group whose own options may also follow the command name.

    ``adcli eval "1+1" --json`` is rewritten to ``adcli --json eval "1+1"`` before
    parsing. Every option of the group (except help) is moved, so a new global
    option needs no change here. A token after the command that starts with ``-``
    but cannot be an option (``-x^2``) is passed as an argument after ``--``.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._hoist(ctx, list(args)))

    def _hoist(self, ctx: Any, args: list[str]) -> list[str]:
        group_flags, group_valued = _option_names(self.get_params(ctx))
        help_names = set(ctx.help_option_names)
        i = 0
        while i < len(args) and args[i].startswith("-") and args[i] != "--":
            i += 2 if args[i] in group_valued else 1
        if i >= len(args) or args[i] == "--":
            return args
        command = self.get_command(ctx, args[i])
        if command is None:
            return args  # Click reports the unknown command
        cmd_flags, cmd_valued = _option_names(command.params)
        hoisted: list[str] = []
        rest: list[str] = []
        loose: list[str] = []
        j = i + 1
        while j < len(args):
            token = args[j]
            name = token.split("=", 1)[0]
            if token == "--":
                loose.extend(args[j + 1 :])
                break
            if name in cmd_flags or name in cmd_valued or name in help_names:
                take = 2 if token in cmd_valued else 1
                rest.extend(args[j : j + take])
            elif name in group_flags or name in group_valued:
                take = 2 if token in group_valued else 1
                hoisted.extend(args[j : j + take])
            elif NOT_AN_OPTION_RE.match(token):
                take = 1
                loose.append(token)
            else:
                take = 1
                rest.append(token)
            j += take
        tail = ["--", *loose] if loose else []
        return [*args[:i], *hoisted, args[i], *rest, *tail]


def _option_names(params: list[Any]) -> tuple[set[str], set[str]]:
    """The names of the options in ``params``: those that are flags, those that take a value."""
    flags: set[str] = set()
    valued: set[str] = set()
    for param in params:
        if getattr(param, "param_type_name", "") != "option":
            continue
        names = [*param.opts, *param.secondary_opts]
        if param.is_flag or param.count:
            flags.update(names)
        else:
            valued.update(names)
    return flags, valued


app = typer.Typer(
    cls=GlobalOptionsAnywhere,
    name="adcli",
    help="Differentiate expressions with PyTorch's autograd semantics.",
    context_settings={"help_option_names": ["-h", "--help"]},
    # Plain Click messages: usage errors stay one greppable line, not a Rich panel.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        Renderer().line(f"adcli {__version__}")
        raise typer.Exit(0)


def _check_device(value: str) -> str:
    if not DEVICE_RE.match(value):
        raise typer.BadParameter(f"{value!r} is not a device: use cpu, cuda or cuda:N")
    return value


@app.callback(invoke_without_command=True, epilog="Run 'adcli COMMAND --help' for a command.")
def root(
    ctx: typer.Context,
    device: Annotated[
        str,
        typer.Option(
            metavar="cpu|cuda|cuda:N",
            callback=_check_device,
            help="Where tensors live by default.",
        ),
    ] = "cpu",
    dtype: Annotated[Dtype, typer.Option(help="Default floating type.")] = Dtype.float32,
    seed: Annotated[
        int | None, typer.Option(help="Seed the random generator (randn is reproducible).")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Machine-readable JSON on standard output.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the Python traceback behind an error.")
    ] = False,
    detect_anomaly: Annotated[
        bool,
        typer.Option(
            "--detect-anomaly",
            help="Check every result, forward and backward, for NaN and Inf, and report the "
            "operation that made one (slower).",
        ),
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Neither read nor write the cache of parsed scripts (in $XDG_CACHE_HOME/adcli).",
        ),
    ] = False,
    max_elements: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="Most elements in one tensor [default: 50000000]."),
    ] = None,
    max_bytes: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            help="Most bytes in one new tensor, and in all the tensors variables hold "
            "[default: 4294967296].",
        ),
    ] = None,
    max_depth: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            help="Deepest nesting of brackets; expressions may nest 10 N deep [default: 200].",
        ),
    ] = None,
    max_call_depth: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="Deepest nesting of function calls [default: 64]."),
    ] = None,
    max_calls: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            help="Most function calls one statement may make [default: 1000000].",
        ),
    ] = None,
    max_order: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            help="Highest derivative order (grad order=, --order) [default: 64].",
        ),
    ] = None,
    max_source_bytes: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="Largest script, in bytes [default: 10485760]."),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            metavar="SECONDS",
            help="Stop a program (each file, each REPL entry) that runs longer "
            "[default: no limit].",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Differentiate expressions with PyTorch's autograd semantics.

    Plain `adcli` on a terminal starts the REPL.
    """
    ctx.obj = GlobalOptions(
        device=device,
        dtype=dtype.value,
        seed=seed,
        json=json_output,
        debug=debug,
        detect_anomaly=detect_anomaly,
        no_cache=no_cache,
        max_elements=max_elements,
        max_bytes=max_bytes,
        max_depth=max_depth,
        max_call_depth=max_call_depth,
        max_calls=max_calls,
        max_order=max_order,
        max_source_bytes=max_source_bytes,
        timeout=timeout,
    )
    if no_cache:
        from adcli.lang.parser import set_cache

        set_cache(False)
    if ctx.invoked_subcommand is not None or ctx.resilient_parsing:
        return
    if sys.stdin.isatty() and sys.stdout.isatty():
        from adcli.cli.repl import run_repl

        raise typer.Exit(run_repl(ctx.obj))
    Renderer().usage(f"{ctx.get_usage()}\nTry 'adcli --help' for help.")
    raise typer.Exit(2)


# -------------------------------------------------------------------------------------------
# Helpers the commands share
# -------------------------------------------------------------------------------------------
def open_session(opts: GlobalOptions) -> Any:
    """A fresh interpreter session with the global options (may raise a device error)."""
    from adcli.lang.interpreter import Session

    return Session(
        device=opts.device,
        dtype=opts.dtype,
        seed=opts.seed,
        limits=session_limits(opts),
        detect_anomaly=opts.detect_anomaly,
    )


def session_limits(opts: GlobalOptions) -> Any:
    """The session's :class:`~adcli.lang.interpreter.Limits`, with those given on the command line."""
    from adcli.lang.interpreter import Limits

    given = {
        name: getattr(opts, name)
        for name in (
            "max_elements",
            "max_bytes",
            "max_call_depth",
            "max_calls",
            "max_order",
            "max_source_bytes",
            "timeout",
        )
        if getattr(opts, name) is not None
    }
    if opts.max_depth is not None:
        given["max_depth"] = opts.max_depth
        given["max_expr_depth"] = 10 * opts.max_depth
    return Limits(**given)


def _session_or_exit(renderer: Renderer, opts: GlobalOptions) -> Any:
    """A session, or exit 1 with the error if the machine cannot give what was asked."""
    with reporting(renderer, None):
        return open_session(opts)


@contextmanager
def reporting(renderer: Renderer, session: Any):
    """Turn an error inside the block into its report and exit code 1.

    In JSON mode the report is ``{"error": {...}}`` on stdout; otherwise the error,
    its source line and a caret on stderr. Exceptions that are not AdcliError are
    bugs: reported as kind ``internal`` (``--debug`` shows the traceback).
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - an AdcliError, or a bug to report; ^C passes
        renderer.fail(exc, session.source_lines if session is not None else None)
        raise typer.Exit(1) from None


def _split_binding(text: str) -> tuple[str, str]:
    name, sep, literal = text.partition("=")
    name = name.strip()
    if not sep or not NAME_RE.match(name) or not literal.strip():
        raise typer.BadParameter(
            f"{text!r} is not NAME=VALUE (say x=1.5 or x=[1, 2.5, -3])", param_hint="'--at'"
        )
    return name, literal.strip()


def _check_names(names: list[str], option: str) -> list[str]:
    for name in names:
        if not NAME_RE.match(name):
            raise typer.BadParameter(f"{name!r} is not a variable name", param_hint=f"'{option}'")
    return list(dict.fromkeys(names))


# -------------------------------------------------------------------------------------------
# The commands
# -------------------------------------------------------------------------------------------
@app.command("eval", epilog=GLOBAL_NOTE)
def eval_command(
    ctx: typer.Context,
    program: Annotated[
        str,
        typer.Argument(
            metavar="PROGRAM", help="Statements separated by ';'; the last value is shown."
        ),
    ],
    at: Annotated[
        list[str] | None,
        typer.Option(
            "--at",
            metavar="NAME=VALUE",
            help="Bind a variable first: a number or a bracket literal. Repeatable.",
        ),
    ] = None,
    wrt: Annotated[
        list[str] | None,
        typer.Option(
            "--wrt",
            metavar="NAME",
            help="Differentiate the last value with respect to NAME (a leaf that requires "
            "grad). Repeatable.",
        ),
    ] = None,
    order: Annotated[
        int,
        typer.Option(min=1, help="With --wrt: also the 2nd ... Nth derivatives."),
    ] = 1,
    graph: Annotated[
        bool, typer.Option("--graph", help="Also show the grad_fn chain of the last value.")
    ] = False,
    method: Annotated[
        Method,
        typer.Option(
            help="How --order derivatives are computed: Taylor mode from order 3 "
            "(auto), always Taylor mode, or nested reverse passes."
        ),
    ] = Method.auto,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="With --wrt: compare Taylor mode, nesting and finite "
            "differences (float64), order by order.",
        ),
    ] = False,
    cost: Annotated[
        bool,
        typer.Option("--cost", help="With --wrt: graph nodes, time and peak memory per order."),
    ] = False,
) -> None:
    """Run a one-liner and show the value of its last expression."""
    opts: GlobalOptions = ctx.obj
    bindings = [_split_binding(text) for text in at or []]
    wrt_names = _check_names(wrt or [], "--wrt")
    if order > 1 and not wrt_names:
        raise typer.BadParameter("needs --wrt NAME", param_hint="'--order'")
    for flag, on in (("--check", check), ("--cost", cost)):
        if on and not wrt_names:
            raise typer.BadParameter("needs --wrt NAME", param_hint=f"'{flag}'")

    renderer = Renderer(json_mode=opts.json, debug=opts.debug)
    session = _session_or_exit(renderer, opts)
    leaves = []
    for name, literal in bindings:
        try:
            leaves.append((name, session.make_tensor(literal, requires_grad=name in wrt_names)))
        except AdcliError as err:
            raise typer.BadParameter(
                f"{name}={literal}: {err.message}", param_hint="'--at'"
            ) from None

    derivatives = None
    with reporting(renderer, session):
        session.mark_wrt(wrt_names)  # a --wrt name the program binds becomes a leaf needing grad
        for name, tensor in leaves:
            session.bind(name, tensor)
        value = session.run(program, "<eval>", emit=_held_back(renderer))
        # `x.grad` shows None; `x = 1` shows nothing.
        displays_none = value is None and session.last_output is not None
        if wrt_names:
            derivatives = session.derivatives(value, wrt_names, order, method.value)
        checks = session.derivative_checks(program, wrt_names, order) if check else None
        costs = None
        if cost:
            methods = [method.value] + (["nested"] if check and method.value != "nested" else [])
            costs = session.derivative_costs(program, wrt_names, order, methods)

    if renderer.json_mode:
        result = value_json(value)
        result["outputs"] = renderer.outputs
        if derivatives is not None:
            result["grads"] = {n: array_json(ds[0].numpy()) for n, ds in derivatives.items()}
            result["derivatives"] = {
                n: [array_json(d.numpy()) for d in ds] for n, ds in derivatives.items()
            }
        if graph:
            result["graph"] = graph_json(
                value if is_node(value) else getattr(value, "grad_fn", None)
            )
        if checks is not None:
            result["check"] = checks
        if costs is not None:
            result["cost"] = costs
        renderer.json(result)
        return
    if value is not None or displays_none:
        renderer.value(value)
    if derivatives is not None:
        renderer.derivatives(derivatives)
    if graph and not is_node(value):  # a grad_fn value is already shown as its chain
        renderer.graph(value)
    if checks is not None:
        renderer.derivative_checks(checks)
    if costs is not None:
        renderer.derivative_costs(costs)


def _held_back(renderer: Renderer) -> Any:
    """An emit callback for eval: values are held back (only the last is shown), the rest shown."""

    def emit(output: Any) -> None:
        if output.kind != "value":
            renderer.emit(output)

    return emit


FilesArgument = Annotated[
    list[str],
    typer.Argument(
        metavar="FILE...",
        help="Scripts to run in order; '-' reads standard input.",
        show_default=False,
    ),
]


def _existing_files(files: list[str]) -> list[str]:
    """The files, checked up front: a missing one is a command-line error (exit 2)."""
    for name in files:
        if name == "-":
            continue
        path = Path(name)
        if not path.exists():
            raise typer.BadParameter(f"file {name!r} does not exist", param_hint="'FILE...'")
        if path.is_dir():
            raise typer.BadParameter(f"{name!r} is a directory", param_hint="'FILE...'")
    return files


def _display_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


@app.command("run", epilog=GLOBAL_NOTE)
def run_command(
    ctx: typer.Context,
    files: FilesArgument,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Show only errors.")] = False,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first failing file.")
    ] = False,
    junit: Annotated[
        Path | None,
        typer.Option(metavar="PATH", dir_okay=False, help="Write a JUnit XML report to PATH."),
    ] = None,
) -> None:
    """Run .ad scripts in order, each in a fresh session."""
    opts: GlobalOptions = ctx.obj
    if junit is not None and not junit.resolve().parent.is_dir():
        raise typer.BadParameter(f"no directory for {str(junit)!r}", param_hint="'--junit'")
    renderer = Renderer(json_mode=opts.json, debug=opts.debug, quiet=quiet)
    results: list[tuple[str, float, Any]] = []
    names = [_display_name(path) for path in _existing_files(files)]
    for index, path in enumerate(files):
        session = _session_or_exit(renderer, opts)
        renderer.outputs = []
        started = perf_counter()
        error: BaseException | None = None
        try:
            if path == "-":
                # Read no more than may run: `yes | adcli run -` must not fill the memory.
                source = sys.stdin.read(session.limits.max_source_bytes + 1)
                session.run(source, "<stdin>", emit=renderer.emit)
            else:
                session.run_file(path, emit=renderer.emit)
        except Exception as exc:  # noqa: BLE001 - an AdcliError, or a bug reported as one
            error = exc
        if error is not None:
            renderer.report(error, session.source_lines)
        if renderer.json_mode:
            renderer.json(
                {
                    "file": names[index],
                    "ok": error is None,
                    "outputs": renderer.outputs,
                    "error": failure_json(error) if error is not None else None,
                }
            )
        results.append((names[index], perf_counter() - started, error))
        if error is not None and fail_fast:
            break

    if junit is not None:
        from adcli.cli.render import junit_xml

        try:
            junit.write_bytes(junit_xml(results, names[len(results) :]))
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot write {str(junit)!r}: {exc.strerror}", param_hint="'--junit'"
            ) from None
    if any(error is not None for _, _, error in results):
        raise typer.Exit(1)


@app.command("check", epilog=GLOBAL_NOTE)
def check_command(ctx: typer.Context, files: FilesArgument) -> None:
    """Parse and check scripts (syntax, unknown names, arity) without running them."""
    from adcli.lang.check import check_source

    opts: GlobalOptions = ctx.obj
    renderer = Renderer(json_mode=opts.json, debug=opts.debug)
    failed = False
    for path in _existing_files(files):
        name = _display_name(path)
        try:
            source = sys.stdin.read(_STDIN_LIMIT) if path == "-" else _read(path)
            errors = list(check_source(source, name))
        except AdcliError as err:
            source, errors = "", [err]
        failed = failed or bool(errors)
        if renderer.json_mode:
            renderer.json(
                {"file": name, "ok": not errors, "errors": [error_json(e) for e in errors]}
            )
            continue
        lines = source.splitlines()
        for err in errors:
            renderer.report(err, lambda file, lines=lines, name=name: _lines_of(file, name, lines))
        if not errors:
            renderer.line(f"{name}: ok")
    if failed:
        raise typer.Exit(1)


#: ``check -`` reads no more than parse accepts (and one more, so that parse says so).
_STDIN_LIMIT = 10 * 1024 * 1024 + 1


def _read(path: str) -> str:
    from adcli.lang.parser import read_source

    try:
        return read_source(path)
    except OSError as exc:
        raise AdcliError("value", f"cannot read {path}: {exc.strerror or exc}") from None


def _lines_of(file: str, checked: str, lines: list[str]) -> list[str] | None:
    """Source lines for an error's caret: the checked text, or an imported file from disk."""
    if file == checked:
        return lines
    try:
        return Path(file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None


@app.command("explain", epilog=GLOBAL_NOTE)
def explain_command(
    ctx: typer.Context,
    code: Annotated[
        str | None,
        typer.Argument(
            metavar="[CODE]",
            help="An error code such as E004, or a kind such as shape; without one, list them all.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Say what an error code means and how to fix it, with an example."""
    from adcli.cli.explain import EXPLANATIONS, lookup

    opts: GlobalOptions = ctx.obj
    renderer = Renderer(json_mode=opts.json, debug=opts.debug)
    if code is None:
        renderer.explain(list(EXPLANATIONS.values()))
        return
    entry = lookup(code)
    if entry is None:
        codes = ", ".join(f"{e.code} ({e.kind})" for e in EXPLANATIONS.values())
        renderer.usage(
            f"Usage: adcli explain [CODE]\nError: unknown error code {code!r}; "
            f"the codes are {codes}."
        )
        raise typer.Exit(2)
    renderer.explain([entry])


@app.command("repl", epilog=GLOBAL_NOTE)
def repl_command(ctx: typer.Context) -> None:
    """An interactive session (':help' inside it for its commands)."""
    from adcli.cli.repl import run_repl

    raise typer.Exit(run_repl(ctx.obj))


def main() -> None:
    """The ``adcli`` console script."""
    app(prog_name="adcli")
