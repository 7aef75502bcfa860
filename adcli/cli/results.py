"""What the commands return: plain records the renderer turns into text or JSON.

A command decides what to compute and collects it here; :class:`adcli.cli.render.Renderer`
alone decides how it looks (``eval_result``, ``file_result``, ``run_summary``,
``check_result``). A :class:`FileResult` holds no engine objects, so a file run in a
worker process (``run -j N``) comes back whole.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from adcli.records import record


@record()
class EvalResult:
    """``adcli eval``: the last value and whatever else was asked for."""

    value: Any = None
    #: the last statement displayed None (``x.grad``), as opposed to displaying nothing
    displays_none: bool = False
    outputs: list[dict[str, Any]] = field(default_factory=list)
    derivatives: dict[str, list[Any]] | None = None
    graph: bool = False
    checks: dict[str, Any] | None = None
    costs: dict[str, Any] | None = None
    #: per name, each order's derivative as a program of the language (--symbolic)
    symbolic: dict[str, list[str]] | None = None
    #: the same as LaTeX (--latex)
    latex: dict[str, list[str]] | None = None


@record()
class FileResult:
    """One script of ``adcli run``."""

    name: str
    ok: bool
    seconds: float
    outputs: list[dict[str, Any]] = field(default_factory=list)
    #: the error's JSON object (``failure_json``), or None
    error: dict[str, Any] | None = None
    #: the error as people see it: message, source line, caret, hint (plain text)
    report: str | None = None
    #: what a worker process wrote, in order: ("out" | "err", text)
    captured: list[tuple[str, str]] = field(default_factory=list)


@record()
class RunResult:
    """``adcli run``: every script that ran, those left unrun, and the wall time."""

    files: list[FileResult]
    not_run: list[str]
    seconds: float

    @property
    def failed(self) -> int:
        return sum(1 for f in self.files if not f.ok)

    @property
    def passed(self) -> int:
        return sum(1 for f in self.files if f.ok)


@record()
class CheckResult:
    """``adcli check`` of one script: its problems, and the source lines under their carets."""

    name: str
    errors: list[Any]
    #: (file, line number) -> that line's text
    lines: dict[tuple[str, int], str | None] = field(default_factory=dict)

    def source_lines(self, file: str) -> Any:
        """A :data:`~adcli.cli.render.SourceLines` lookup that knows only the needed lines."""
        return _SparseLines(self.lines, file)


class _SparseLines:
    """A list-like view of the few lines of a file that errors point at."""

    def __init__(self, lines: dict[tuple[str, int], str | None], file: str) -> None:
        self._lines = lines
        self._file = file
        self._last = max((n for (f, n) in lines if f == file), default=0)

    def __len__(self) -> int:
        return self._last

    def __bool__(self) -> bool:
        return self._last > 0

    def __getitem__(self, index: int) -> str:
        text = self._lines.get((self._file, index + 1))
        return text if text is not None else ""
