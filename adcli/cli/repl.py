"""The interactive session: read a statement, run it, show what it displays, repeat.

On a terminal the line editor is prompt_toolkit (history, tab completion, editing
a statement over several lines); off a terminal statements are read from standard
input as they come, with no prompt. Either way a statement goes on to the next
line only while a bracket or string is open (``parser.is_complete``), an error or
Ctrl-C never ends the session, and end of input (Ctrl-D) ends it with status 0.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from adcli import __version__
from adcli.cli.options import open_session
from adcli.cli.render import OutputLost, Renderer, output_json, summary
from adcli.errors import AdcliError

PROMPT = "ad> "
CONTINUATION = "... "
COMMANDS = (":help", ":vars", ":reset", ":device", ":quit")
# The dotted name being typed at the cursor: `x`, `x.`, `x.gr`, `x.grad.ze`.
DOTTED_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]*)*\Z")

HELP = """\
Type statements of the .ad language (see `man adcli-lang`); values are shown as they come.
A statement goes on over several lines while a bracket or a brace is open.

  :help            this text
  :vars            the variables and functions defined so far
  :reset           forget every variable and function
  :device [NAME]   show the default device, or switch it (cpu, cuda, cuda:N)
  :quit            leave (so does Ctrl-D)

Tab completes names, builtins, attributes and methods; Ctrl-C clears the line or
interrupts a computation; history is kept in {history}."""


#: The longest input line or entry read off a terminal, when no limit says otherwise.
DEFAULT_MAX_ENTRY = 10 * 1024 * 1024
#: Below this size an entry is re-checked for completeness on every line (cheap); above
#: it only when the brackets close or it has doubled, so a huge paste stays linear.
SMALL_ENTRY = 1024


def history_path() -> Path:
    """Where the history lives: ``$XDG_STATE_HOME/adcli/history``, else ``~/.local/state``.

    A relative ``XDG_STATE_HOME`` is ignored, as the XDG spec says.
    """
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "adcli" / "history"


def run_repl(opts: Any) -> int:
    """Run the REPL with the global options ``opts`` until end of input; returns the exit status."""
    renderer = Renderer(json_mode=opts.json, debug=opts.debug)
    try:
        session = open_session(opts)
    except AdcliError as err:
        renderer.fail(err)
        return 1
    session.keep_tape_inputs = True  # symbolic(...) can spell what earlier lines computed
    if sys.stdin is None:
        renderer.fail(AdcliError("value", "cannot read <stdin>: standard input is closed"))
        return 1
    interactive = sys.stdin.isatty() and sys.stdout is not None and sys.stdout.isatty()
    limit = session.limits.max_source_bytes
    if interactive:
        read = _terminal_reader(session, renderer)
    else:
        read = _stream_reader(sys.stdin, limit)
    if interactive:
        renderer.line(
            f"adcli {__version__} (device {opts.device}, {opts.dtype}). "
            "Type :help for help, Ctrl-D to leave."
        )
    repl = _Repl(session, renderer, opts.device)
    while True:
        try:
            text = read()
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        except AdcliError as err:  # an endless line (`< /dev/zero`): nothing more can be read
            renderer.fail(err)
            return 1
        except (OSError, ValueError) as exc:  # standard input went away
            renderer.fail(AdcliError("value", f"cannot read <stdin>: {exc}"))
            return 1
        if not repl.handle(text):
            break
    if interactive:
        renderer.line("")
    return 0


class _Repl:
    """What to do with each statement or ``:command`` the user enters."""

    def __init__(self, session: Any, renderer: Renderer, device: str) -> None:
        self.session = session
        self.renderer = renderer
        self.device = device
        if renderer.json_mode:
            self.emit: Callable[[Any], None] = lambda out: renderer.json(output_json(out))
        else:
            self.emit = renderer.emit

    def handle(self, text: str) -> bool:
        """Run one entry; False when the user asked to leave."""
        stripped = text.strip()
        if not stripped:
            return True
        if stripped.startswith(":"):
            return self.command(stripped)
        try:
            self.session.run(text, "<stdin>", emit=self.emit)
        except KeyboardInterrupt:
            self.renderer.notice("interrupted")
        except OutputLost:
            raise
        except Exception as exc:  # noqa: BLE001 - an error is shown; the session goes on
            self.renderer.fail(exc, self.session.source_lines)
        return True

    def command(self, line: str) -> bool:
        """A ``:command``; False for ``:quit``."""
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        if name in (":quit", ":q", ":exit"):
            return False
        if name == ":help":
            if self.renderer.json_mode:
                self.renderer.json({"help": HELP.format(history=history_path())})
            else:
                self.renderer.line(HELP.format(history=history_path()))
        elif name == ":vars":
            variables = sorted(self.session.variables().items())
            functions = sorted(self.session.functions.items())
            if self.renderer.json_mode:  # stdout carries only JSON
                shown: dict = {"variables": {n: summary(v) for n, v in variables}}
                if functions:
                    shown["functions"] = {n: repr(f) for n, f in functions}
                self.renderer.json(shown)
            elif variables or functions:
                rows = [[n, summary(v)] for n, v in variables]
                rows += [[n, repr(f)] for n, f in functions]
                self.renderer.table("variables", ["name", "value"], rows)
            else:
                self.renderer.line("no variables yet")
        elif name == ":reset":
            self.session.reset()
            self.renderer.notice("session reset: every variable and function is gone")
        elif name == ":device":
            self.switch_device(arg)
        else:
            err = AdcliError("name", f"unknown command {name!r}", hint="':help' lists them")
            self.renderer.fail(err)
        return True

    def switch_device(self, device: str) -> None:
        """``:device`` shows the default device; ``:device NAME`` switches it."""
        if not device:
            if self.renderer.json_mode:
                self.renderer.json({"device": self.device})
            else:
                self.renderer.line(f"device: {self.device}")
            return
        try:
            self.session.set_device(device)
        except AdcliError as err:
            self.renderer.fail(err)
            return
        self.device = device
        self.renderer.notice(f"default device is now {device}")


class Continuation:
    """Whether the lines of an entry so far make a complete statement, in linear time.

    The parser decides (:func:`~adcli.lang.parser.is_complete`), but asking it after
    every line of a 2,000-line bracket literal costs O(n^2). A cheap scan of each new
    line keeps the bracket depth (strings and comments skipped); the parser is asked
    when the brackets close, on every line of a small entry, and on a large one only
    each time it has doubled in size.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.size = 0
        self.checked_size = 0

    def complete_after(self, line: str, text: str) -> bool:
        """Add ``line`` (``text`` is the whole entry so far): is the entry complete?"""
        from adcli.lang.parser import is_complete

        self.depth += _bracket_change(line)
        self.size = len(text)
        if self.depth > 0 and self.size > SMALL_ENTRY and self.size < 2 * self.checked_size:
            return False
        self.checked_size = self.size
        return is_complete(text)


def _bracket_change(line: str) -> int:
    """Opening minus closing brackets on one line, outside strings and comments."""
    change = 0
    in_string = False
    escaped = False
    for ch in line:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "#":
            break
        elif ch in "([{":
            change += 1
        elif ch in ")]}":
            change -= 1
    return change


def _stream_reader(stream: Any, limit: int = DEFAULT_MAX_ENTRY) -> Callable[[], str]:
    """Statements from a non-terminal stream: lines joined while a bracket is open.

    No line and no entry may be longer than ``limit`` characters (``< /dev/zero`` is
    one endless line): past it, a ``limit`` error.
    """

    def too_long() -> AdcliError:
        return AdcliError(
            "limit",
            f"input too large (an entry of more than {limit} characters; limit {limit})",
            hint="raise the limit with --max-source-bytes",
        )

    def read() -> str:
        lines: list[str] = []
        size = 0
        continuation = Continuation()
        while True:
            line = stream.readline(limit + 1 - size)
            if not line:
                if lines:  # end of input inside a bracket: run it, and show the syntax error
                    return "\n".join(lines)
                raise EOFError
            size += len(line)
            if size > limit:
                raise too_long()
            lines.append(line.rstrip("\r\n"))
            text = "\n".join(lines)
            if continuation.complete_after(lines[-1], text):
                return text

    return read


def _terminal_reader(session: Any, renderer: Renderer) -> Callable[[], str]:
    """A prompt_toolkit prompt: history, completion, Enter ends a statement only when complete."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer, Completion
    from prompt_toolkit.key_binding import KeyBindings

    class SessionCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterator[Completion]:
            for text, back in completions(session, document.text_before_cursor):
                yield Completion(text, start_position=-back)

    bindings = KeyBindings()
    tracker = _BufferTracker()

    @bindings.add("enter")
    def _enter(event: Any) -> None:
        buffer = event.current_buffer
        if buffer.text.strip().startswith(":") or tracker.complete(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    history = make_history(history_path(), renderer)

    options: dict[str, Any] = {}
    if os.environ.get("NO_COLOR", "") == "":
        from prompt_toolkit.lexers import PygmentsLexer

        from adcli.cli.lexer import AdLexer

        options["lexer"] = PygmentsLexer(AdLexer)
    prompt = PromptSession(
        **options,
        message=PROMPT,
        multiline=True,
        prompt_continuation=CONTINUATION,
        key_bindings=bindings,
        history=history,
        completer=SessionCompleter(),
        complete_while_typing=False,
    )
    return prompt.prompt


class _BufferTracker:
    """:class:`Continuation` for the line editor's buffer, which grows a line at a time
    while a statement is typed or pasted (and may be edited anywhere, then it starts over)."""

    def __init__(self) -> None:
        self.text = ""
        self.continuation = Continuation()

    def complete(self, text: str) -> bool:
        if not text.startswith(self.text) or not self.text:
            self.continuation = Continuation()
            new = text
        else:
            new = text[len(self.text) :]
        self.text = text
        done = self.continuation.complete_after(new, text)
        if done:
            self.text = ""
            self.continuation = Continuation()
        return done


def make_history(path: Path, renderer: Renderer) -> Any:
    """The line editor's history: a file under the state directory, or, where that
    cannot be used (a directory, unwritable, a full disk), in memory with one warning."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    class SafeFileHistory(FileHistory):
        """A file history that falls back to memory, once, when the file fails."""

        broken = False

        def load_history_strings(self) -> Any:
            try:
                yield from super().load_history_strings()
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                self._give_up(exc)

        def store_string(self, string: str) -> None:
            if self.broken:
                return
            try:
                super().store_string(string)
            except (OSError, ValueError) as exc:
                self._give_up(exc)

        def _give_up(self, exc: BaseException) -> None:
            if not self.broken:
                self.broken = True
                renderer.warning(
                    f"history is kept in memory only: cannot use {path}: {_reason(exc)}"
                )

    try:
        if path.exists() and not path.is_file():
            raise IsADirectoryError(21, "not a regular file")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except (OSError, ValueError) as exc:
        renderer.warning(f"history is kept in memory only: cannot use {path}: {_reason(exc)}")
        return InMemoryHistory()
    return SafeFileHistory(str(path))


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def completions(session: Any, before_cursor: str) -> list[tuple[str, int]]:
    """Completions for the text before the cursor: ``(text, characters it replaces)``.

    ``:commands`` complete at the start of a line. Otherwise the session completes the
    dotted name at the cursor; a completion that repeats the whole prefix replaces it,
    one that does not (an attribute name alone) replaces what follows the last dot.
    """
    stripped = before_cursor.lstrip()
    if stripped.startswith(":") and " " not in stripped:
        return [(c, len(stripped)) for c in COMMANDS if c.startswith(stripped)]
    match = DOTTED_NAME_RE.search(before_cursor)
    if match is None:
        return []
    prefix = match.group(0)
    try:
        found = session.completions(prefix)
    except Exception:  # noqa: BLE001 - completion must never break the prompt
        return []
    tail = prefix.rsplit(".", 1)[-1]
    return [(c, len(prefix) if c.startswith(prefix) else len(tail)) for c in found]
