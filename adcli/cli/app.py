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

import errno
import inspect
import os
import re
import sys
from contextlib import contextmanager, suppress
from enum import Enum
from pathlib import Path
from time import perf_counter
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from adcli import __version__
from adcli.cli import graph, plot
from adcli.cli.options import GlobalOptions, open_session, session_limits
from adcli.cli.render import OutputLost, Renderer, clip, error_text, failure_json, printable
from adcli.cli.results import CheckResult, EvalResult, FileResult, RunResult
from adcli.errors import AdcliError
from adcli.lang.limits import LimitOption, limit_options

__all__ = ["GlobalOptions", "app", "main", "open_session", "session_limits"]

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
DEVICE_RE = re.compile(r"(cpu|cuda(:\d+)?)\Z")
# A token after the command that starts with "-" but cannot be an option (say "-x^2").
NOT_AN_OPTION_RE = re.compile(r"-(\d|[^=]*[^A-Za-z0-9_=-])")

GLOBAL_NOTE = (
    "The global options (--device, --dtype, --seed, --json, --debug, --detect-anomaly, "
    "--timeout and the --max-* limits) may also come after the command name."
)


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
        with _close_suggestions_only():
            return super().parse_args(ctx, self._hoist(ctx, list(args)))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return _plain_usage(super().collect_usage_pieces(ctx))

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


class Command(TyperCommand):
    """A command whose usage line reads ``PROGRAM``, not Typer's ``{PROGRAM}``, and whose
    "did you mean" suggestions are only close ones (``--bogus`` suggests nothing)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        with _close_suggestions_only():
            return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return _plain_usage(super().collect_usage_pieces(ctx))


def _plain_usage(pieces: list[str]) -> list[str]:
    return [re.sub(r"\{([^{}]*)\}", r"\1", piece) for piece in pieces]


@contextmanager
def _close_suggestions_only():
    """Drop suggestions for an unknown option that are not really close to it.

    Click compares the names with their dashes, so ``--bogus`` and ``--cost`` look
    alike (the ``--`` matches); here only the names after the dashes count.
    """
    from difflib import SequenceMatcher

    try:
        yield
    except typer.BadParameter.__mro__[1] as exc:  # Click's UsageError, as Typer ships it
        if not hasattr(exc, "possibilities") or not hasattr(exc, "option_name"):
            raise  # not an unknown option
        wrong = exc.option_name.lstrip("-")
        exc.possibilities = [
            p
            for p in exc.possibilities or []
            if SequenceMatcher(None, wrong, p.lstrip("-")).ratio() >= 0.7
        ]
        raise


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


def command(name: str):
    """``@app.command(name)`` with the project's usage and suggestions, and the global note."""
    return app.command(name, cls=Command, epilog=GLOBAL_NOTE)


# The options' callbacks carry no annotations: Typer reads each callback's signature
# on every start, and evaluating string annotations (``from __future__ import
# annotations``) for a dozen of them took a tenth of adcli eval's start-up.
def _show_version(value):  # value: bool
    if value:
        Renderer().line(f"adcli {__version__}")
        raise typer.Exit(0)


def _check_device(value):  # value: str -> str
    if not DEVICE_RE.match(value):
        raise typer.BadParameter(f"{value!r} is not a device: use cpu, cuda or cuda:N")
    return value


def with_limit_options(func):
    """Add one global option per limit of :class:`~adcli.lang.limits.Limits` to ``func``.

    The options (``--max-call-depth N``, ``--timeout SECONDS``, ...) are generated from
    the fields: name, help, metavar, default and allowed range come from there, and
    each value is checked as it is read (``--timeout nan`` and ``--max-source-bytes``
    beyond any file are usage errors). ``func`` receives them as ``**limits``.
    """
    signature = inspect.signature(func, eval_str=True)
    params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    added = []
    for spec in limit_options():
        option = typer.Option(
            spec.flag,
            metavar=spec.metavar,
            help=f"{spec.help} [default: {spec.shown}]",
            callback=_limit_checker(spec),
            show_default=False,
        )
        annotation = Annotated[spec.kind | None, option]  # type: ignore[operator]
        added.append(
            inspect.Parameter(
                spec.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
            )
        )
    func.__signature__ = signature.replace(parameters=[*params, *added])
    func.__annotations__ = {**func.__annotations__, **{p.name: p.annotation for p in added}}
    return func


def _limit_checker(spec: LimitOption):
    def check(value):  # value: Any -> Any (no annotations: see _show_version)
        if value is not None:
            problem = spec.problem(value)
            if problem:
                raise typer.BadParameter(problem)
        return value

    return check


@app.callback(invoke_without_command=True, epilog="Run 'adcli COMMAND --help' for a command.")
@with_limit_options
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
        int | None,
        typer.Option(min=0, metavar="N", help="Seed the random generator (randn is reproducible)."),
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
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Show the version and exit."
        ),
    ] = False,
    **limits: Any,
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
        limits={name: value for name, value in limits.items() if value is not None},
    )
    if ctx.invoked_subcommand is not None or ctx.resilient_parsing:
        return
    if (
        sys.stdin is not None
        and sys.stdout is not None
        and sys.stdin.isatty()
        and sys.stdout.isatty()
    ):
        from adcli.cli.repl import run_repl

        raise typer.Exit(run_repl(ctx.obj))
    Renderer().usage(f"{ctx.get_usage()}\nTry 'adcli --help' for help.")
    raise typer.Exit(2)


# -------------------------------------------------------------------------------------------
# Helpers the commands share
# -------------------------------------------------------------------------------------------
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
            f"{clip(printable(text))!r} is not NAME=VALUE (say x=1.5 or x=[1, 2.5, -3])",
            param_hint="'--at'",
        )
    return name, literal.strip()


def _check_names(names: list[str], option: str) -> list[str]:
    for name in names:
        if not NAME_RE.match(name):
            raise typer.BadParameter(
                f"{clip(printable(name))!r} is not a variable name", param_hint=f"'{option}'"
            )
    return list(dict.fromkeys(names))


# -------------------------------------------------------------------------------------------
# The commands
# -------------------------------------------------------------------------------------------
@command("eval")
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
    symbolic: Annotated[
        bool,
        typer.Option(
            "--symbolic",
            help="With --wrt: also each derivative as an expression of the language, "
            "rebuilt from the tape and simplified.",
        ),
    ] = False,
    latex: Annotated[
        bool,
        typer.Option(
            "--latex",
            help="With --symbolic: also each derivative as LaTeX (needs SymPy: the symbolic "
            "extra).",
        ),
    ] = False,
) -> None:
    """Run a one-liner and show the value of its last expression."""
    opts: GlobalOptions = ctx.obj
    bindings = [_split_binding(text) for text in at or []]
    wrt_names = _check_names(wrt or [], "--wrt")
    if order > 1 and not wrt_names:
        raise typer.BadParameter("needs --wrt NAME", param_hint="'--order'")
    for flag, on in (("--check", check), ("--cost", cost), ("--symbolic", symbolic)):
        if on and not wrt_names:
            raise typer.BadParameter("needs --wrt NAME", param_hint=f"'{flag}'")
    if latex and not symbolic:
        raise typer.BadParameter("needs --symbolic", param_hint="'--latex'")

    renderer = Renderer(json_mode=opts.json, debug=opts.debug)
    session = _session_or_exit(renderer, opts)
    session.keep_tape_inputs = symbolic
    leaves = []
    for name, literal in bindings:
        try:
            leaves.append((name, session.make_tensor(literal, requires_grad=name in wrt_names)))
        except AdcliError as err:
            raise typer.BadParameter(
                f"{name}={clip(printable(literal))}: {err.message}", param_hint="'--at'"
            ) from None

    result = EvalResult(graph=graph)
    with reporting(renderer, session):
        session.mark_wrt(wrt_names)  # a --wrt name the program binds becomes a leaf needing grad
        for name, tensor in leaves:
            session.bind(name, tensor)
        result.value = session.run(program, "<eval>", emit=_held_back(renderer))
        # `x.grad` shows None; `x = 1` shows nothing.
        result.displays_none = result.value is None and session.last_output is not None
        if wrt_names:
            result.derivatives = session.derivatives(result.value, wrt_names, order, method.value)
        if check:
            result.checks = session.derivative_checks(program, wrt_names, order)
        if symbolic:
            result.symbolic = session.symbolic_derivatives(
                result.value, wrt_names, order, simplify="auto"
            )
        if latex:
            result.latex = session.symbolic_derivatives(result.value, wrt_names, order, latex=True)
        if cost:
            methods = [method.value] + (["nested"] if check and method.value != "nested" else [])
            result.costs = session.derivative_costs(program, wrt_names, order, methods)
    result.outputs = renderer.outputs
    renderer.eval_result(result)


def _held_back(renderer: Renderer) -> Any:
    """An emit callback for eval: values are held back (only the last is shown), the rest shown."""

    def emit(output: Any) -> None:
        if output.kind != "value":
            renderer.emit(output)

    return emit


def _files_argument(help: str) -> Any:
    return Annotated[
        list[str],
        typer.Argument(metavar="FILE...", help=help, show_default=False),
    ]


RunFiles = _files_argument("Scripts to run in order; '-' reads standard input.")
CheckFiles = _files_argument("Scripts to check, in order; '-' reads standard input.")


class OutputFormat(str, Enum):
    """How errors are reported besides the usual text."""

    text = "text"
    github = "github"


OutputFormatOption = Annotated[
    OutputFormat,
    typer.Option(
        "--output-format",
        help="'github' also prints each error as a GitHub Actions annotation "
        "(::error file=F,line=L,col=C::message).",
    ),
]


def _existing_files(files: list[str]) -> list[str]:
    """The files, checked up front: a missing or unusable one is a command-line error (exit 2).

    A name that cannot even be looked at (too long, a symlink loop, a folder without
    search permission) is said so in words, never as a traceback.
    """
    import stat

    from adcli.lang.sources import describe_os_error

    for name in files:
        if name == "-":
            continue
        shown = clip(printable(name))
        try:
            if "\0" in name:
                raise ValueError("embedded null byte")
            mode = os.stat(name).st_mode
        except FileNotFoundError:
            raise typer.BadParameter(
                f"file {shown!r} does not exist", param_hint="'FILE...'"
            ) from None
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(
                f"cannot use {shown!r}: {describe_os_error(exc)}", param_hint="'FILE...'"
            ) from None
        if stat.S_ISDIR(mode):
            raise typer.BadParameter(f"{shown!r} is a directory", param_hint="'FILE...'")
    return files


def _display_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


def _report_target(path: Path) -> Path:
    """Where a report at ``path`` really goes: symlinks followed, so that the link stays."""
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):
        return path


def _is_special(path: Path) -> bool:
    """Whether ``path`` exists and is not a regular file (a device, a FIFO, a socket)."""
    import stat

    try:
        return not stat.S_ISREG(os.stat(path).st_mode) and not path.is_dir()
    except (OSError, ValueError):
        return False


def _check_report_path(path: Path, option: str) -> None:
    """A report can be written at ``path``: its folder exists and takes a new file (exit 2)."""
    import tempfile

    from adcli.lang.sources import describe_os_error

    shown = clip(printable(str(path)))
    if _is_special(path):  # /dev/stdout, a FIFO: written in place, never replaced
        if not os.access(path, os.W_OK):
            raise typer.BadParameter(f"cannot write {shown!r}", param_hint=option)
        return
    target = _report_target(path)
    if target.is_dir():
        raise typer.BadParameter(f"{shown!r} is a directory", param_hint=option)
    folder = target.parent
    if not folder.is_dir():
        raise typer.BadParameter(f"no directory for {shown!r}", param_hint=option)
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(
            f"cannot write {shown!r}: {describe_os_error(exc)}", param_hint=option
        ) from None


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing: a temporary file in the same folder,
    flushed to disk and renamed over ``path`` (an earlier file survives any failure).

    A symlink is followed (the link stays a link); a path that is not a regular file
    (``/dev/stdout``, a FIFO) is written in place: it cannot be replaced, only fed.
    """
    import tempfile

    if _is_special(path):
        with open(path, "wb") as file:
            file.write(data)
        return
    target = _report_target(path)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


@command("run")
def run_command(
    ctx: typer.Context,
    files: RunFiles,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Show only errors.")] = False,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first failing file.")
    ] = False,
    junit: Annotated[
        Path | None,
        typer.Option(metavar="PATH", dir_okay=False, help="Write a JUnit XML report to PATH."),
    ] = None,
    output_format: OutputFormatOption = OutputFormat.text,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            max=256,
            metavar="N",
            help="Run the files in N processes; output and reports stay in file order.",
        ),
    ] = 1,
) -> None:
    """Run .ad scripts in order, each in a fresh session."""
    opts: GlobalOptions = ctx.obj
    if junit is not None:
        _check_report_path(junit, "'--junit'")
    _existing_files(files)
    renderer = Renderer(json_mode=opts.json, debug=opts.debug, quiet=quiet)
    annotate = output_format is OutputFormat.github
    several = len(files) > 1
    started = perf_counter()
    done: list[FileResult] = []
    for result in _run_files(opts, files, renderer, jobs, several):
        if result.captured:
            for stream, text in result.captured:
                (renderer.write_out if stream == "out" else renderer.write_err)(text)
        renderer.file_result(result, annotate)
        done.append(result)
        if not result.ok and fail_fast:
            break
    run = RunResult(done, [_display_name(p) for p in files[len(done) :]], perf_counter() - started)
    if several and not quiet:
        renderer.run_summary(run)

    if junit is not None:
        from adcli.cli.render import junit_xml

        report = junit_xml([(f.name, f.seconds, f.error, f.report) for f in run.files], run.not_run)
        try:
            write_atomically(junit, report)
        except OSError as exc:
            renderer.fail(
                AdcliError(
                    "value",
                    f"cannot write the JUnit report {clip(printable(str(junit)))!r}: "
                    f"{exc.strerror or exc}",
                )
            )
            raise typer.Exit(1) from None
    if run.failed:
        raise typer.Exit(1)


def _run_files(opts: GlobalOptions, files: list[str], renderer: Renderer, jobs: int, several: bool):
    """Run each file, yielding its result in file order (in ``jobs`` processes when > 1)."""
    if jobs <= 1 or len(files) <= 1:
        for path in files:
            if several:
                renderer.file_header(_display_name(path))
            yield run_file(opts, path, renderer)
        return
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from adcli.lang.sources import read_stream

    stdin_text = None
    if "-" in files:
        try:
            stdin_text = read_stream(sys.stdin, "<stdin>", session_limits(opts).max_source_bytes)
        except AdcliError as err:
            stdin_text = err
    style = {"json": renderer.json_mode, "quiet": renderer.quiet, "several": several}
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(files)),
        mp_context=get_context("spawn"),
        initializer=_worker_started,
    ) as pool:
        futures = [
            pool.submit(run_file_captured, opts, path, stdin_text if path == "-" else None, style)
            for path in files
        ]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _worker_started() -> None:
    """In a ``-j`` worker: Ctrl-C (sent to the whole process group) ends it at once and
    quietly; the parent reports the interruption."""
    import signal

    signal.signal(signal.SIGINT, lambda *_: os._exit(130))


def run_file(
    opts: GlobalOptions, path: str, renderer: Renderer, stdin_text: Any = None
) -> FileResult:
    """Run one script in a fresh session, showing its output through ``renderer`` as it comes."""
    from adcli.lang.sources import read_stream

    name = _display_name(path)
    renderer.outputs = []
    started = perf_counter()
    error: BaseException | None = None
    session = None
    try:
        session = open_session(opts)
        if path == "-":
            if isinstance(stdin_text, AdcliError):
                raise stdin_text
            # Read no more than may run: `yes | adcli run -` must not fill the memory.
            source = (
                stdin_text
                if stdin_text is not None
                else read_stream(sys.stdin, "<stdin>", session.limits.max_source_bytes)
            )
            session.run(source, "<stdin>", emit=renderer.emit)
        else:
            session.run_file(path, emit=renderer.emit)
    except Exception as exc:  # noqa: BLE001 - an AdcliError, or a bug reported as one
        error = exc
    seconds = perf_counter() - started
    if error is None:
        return FileResult(name, True, seconds, renderer.outputs)
    lines = session.source_lines if session is not None else None
    renderer.report(error, lines)
    report = (
        error_text(error, lines, explain=True).plain
        if isinstance(error, AdcliError)
        else failure_json(error)["message"]
    )
    return FileResult(name, False, seconds, renderer.outputs, failure_json(error), report)


def run_file_captured(opts: GlobalOptions, path: str, stdin_text: Any, style: dict) -> FileResult:
    """:func:`run_file` in a worker process: what it would show is captured, in order."""
    captured: list[tuple[str, str]] = []

    class Capture:
        def __init__(self, stream: str) -> None:
            self.stream = stream
            self.encoding = "utf-8"

        def write(self, text: str) -> int:
            if captured and captured[-1][0] == self.stream:
                captured[-1] = (self.stream, captured[-1][1] + text)
            else:
                captured.append((self.stream, text))
            return len(text)

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return False

    renderer = Renderer(
        json_mode=style["json"],
        debug=opts.debug,
        quiet=style["quiet"],
        out_file=Capture("out"),
        err_file=Capture("err"),
    )
    if style["several"]:
        renderer.file_header(_display_name(path))
    result = run_file(opts, path, renderer, stdin_text)
    result.captured = captured
    return result


@command("check")
def check_command(
    ctx: typer.Context, files: CheckFiles, output_format: OutputFormatOption = OutputFormat.text
) -> None:
    """Parse and check scripts (syntax, unknown names, arity) without running them."""
    from adcli.lang.check import check_source
    from adcli.lang.sources import read_source, read_stream

    opts: GlobalOptions = ctx.obj
    limits = session_limits(opts)
    renderer = Renderer(json_mode=opts.json, debug=opts.debug)
    annotate = output_format is OutputFormat.github
    failed = False
    for path in _existing_files(files):
        name = _display_name(path)
        result = CheckResult(name, [])
        try:
            if path == "-":
                source = read_stream(sys.stdin, name, limits.max_source_bytes)
            else:
                source = read_source(path, name, limits.max_source_bytes)
            result.errors = list(check_source(source, name, lines=result.lines, limits=limits))
        except AdcliError as err:
            result.errors = [err]
        failed = failed or bool(result.errors)
        renderer.check_result(result, annotate)
    if failed:
        raise typer.Exit(1)


@command("explain")
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
            f"Usage: adcli explain [CODE]\nError: unknown error code {clip(printable(code))!r}; "
            f"the codes are {codes}."
        )
        raise typer.Exit(2)
    renderer.explain([entry])


@command("repl")
def repl_command(ctx: typer.Context) -> None:
    """An interactive session (':help' inside it for its commands)."""
    from adcli.cli.repl import run_repl

    raise typer.Exit(run_repl(ctx.obj))


# -------------------------------------------------------------------------------------------
# The console script
# -------------------------------------------------------------------------------------------
# Commands that live in their own modules.
app.command("plot", epilog=GLOBAL_NOTE)(plot.make_command(open_session, reporting, Renderer))
app.command("graph", epilog=GLOBAL_NOTE)(graph.make_command(open_session, reporting))


def main() -> None:
    """The ``adcli`` console script: the app, made safe against a hostile environment.

    Closed standard descriptors are held by ``/dev/null`` opened the wrong way round
    (so a write fails instead of landing in a file opened later); a stream that cannot
    encode Unicode falls back to ASCII; output that cannot be written ends adcli with
    one line on stderr and exit 1 (quietly for a closed pipe); Ctrl-C exits 130.
    """
    try:
        _guard_standard_streams()
        code = _run_app()
    except KeyboardInterrupt:
        code = 130
    except OutputLost as lost:
        code = _output_lost(lost.errno, lost.reason)
    code = _flush_standard_streams(code)
    sys.exit(code)


def _run_app() -> int:
    """Run the Typer app (which shows usage errors and turns Ctrl-C into 130): its exit code."""
    commands = app.registered_commands
    try:
        # Typer builds every command's options (by inspecting its signature) on each
        # start; when the command is the first word, only that one is needed, which
        # saves about 10 ms of the start-up (a third of what Typer takes).
        first = sys.argv[1] if len(sys.argv) > 1 else None
        if first is not None and not any(k.endswith("_COMPLETE") for k in os.environ):
            chosen = [c for c in commands if c.name == first]
            if chosen:
                app.registered_commands = chosen
                for info in (app.registered_callback, *chosen):
                    _evaluate_annotations(info.callback)
        app(prog_name="adcli")
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except OSError as exc:  # Click writing its help or usage to a stdout that is gone
        if exc.errno in (errno.EPIPE, errno.ENOSPC, errno.EBADF, errno.EFBIG, errno.EIO):
            return _output_lost(exc.errno, exc.strerror or str(exc))
        raise
    finally:
        app.registered_commands = commands
    return 0


def _evaluate_annotations(func: Any) -> None:
    """Evaluate the string annotations of a command's function once, in place (as
    ``inspect.signature(eval_str=True)`` does): Typer evaluates each several times
    over while it builds the command, which was a tenth of the start-up."""
    if func is None:
        return
    with suppress(Exception):  # left as they are for Typer, which reports what is wrong
        func.__annotations__ = inspect.get_annotations(func, eval_str=True)


def _output_lost(number: int | None, reason: str) -> int:
    _silence_stdout()
    if number != errno.EPIPE:
        try:
            sys.stderr.write(f"adcli: error: cannot write standard output: {reason}\n")
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass
    return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's own last flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until exit


def _flush_standard_streams(code: int) -> int:
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError) as exc:
        code = _output_lost(getattr(exc, "errno", None), getattr(exc, "strerror", None) or str(exc))
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except (OSError, ValueError):
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives until exit
    return code


def _guard_standard_streams() -> None:
    """Make closed descriptors 0-2 fail cleanly, and non-Unicode streams write ASCII."""
    for fd, name, flags in (
        (0, "stdin", os.O_WRONLY),
        (1, "stdout", os.O_RDONLY),
        (2, "stderr", os.O_RDONLY),
    ):
        try:
            os.fstat(fd)
        except OSError:
            # Opened the wrong way round: reading or writing it fails with EBADF, and the
            # descriptor cannot be handed to a file opened later (a report, a script).
            try:
                held = os.open(os.devnull, flags)
                if held != fd:
                    os.dup2(held, fd)
                    os.close(held)
            except OSError:
                continue
            if name == "stdin":
                sys.stdin = None
            else:
                setattr(sys, name, open(fd, "w", encoding="utf-8", closefd=False))  # noqa: SIM115
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if not encoding.startswith("utf"):
            try:
                stream.reconfigure(errors="replace")
            except (AttributeError, ValueError):
                pass
