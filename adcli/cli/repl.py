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
from adcli.cli.render import Renderer, output_json, summary
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


def history_path() -> Path:
    """Where the history lives: ``$XDG_STATE_HOME/adcli/history``, else ``~/.local/state``."""
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "adcli" / "history"


def run_repl(opts: Any) -> int:
    """Run the REPL with the global options ``opts`` until end of input; returns the exit status."""
    from adcli.cli.app import open_session

    renderer = Renderer(json_mode=opts.json, debug=opts.debug)
    try:
        session = open_session(opts)
    except AdcliError as err:
        renderer.fail(err)
        return 1
    session.keep_tape_inputs = True  # symbolic(...) can spell what earlier lines computed
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    read = _terminal_reader(session) if interactive else _stream_reader(sys.stdin)
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
            self.renderer.line(HELP.format(history=history_path()))
        elif name == ":vars":
            rows = [[n, summary(v)] for n, v in sorted(self.session.variables().items())]
            rows += [[n, repr(f)] for n, f in sorted(self.session.functions.items())]
            if rows:
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
            self.renderer.line(f"device: {self.device}")
            return
        try:
            self.session.set_device(device)
        except AdcliError as err:
            self.renderer.fail(err)
            return
        self.device = device
        self.renderer.notice(f"default device is now {device}")


def _stream_reader(stream: Any) -> Callable[[], str]:
    """Statements from a non-terminal stream: lines joined while a bracket is open."""
    from adcli.lang.parser import is_complete

    def read() -> str:
        lines: list[str] = []
        while True:
            line = stream.readline()
            if not line:
                if lines:  # end of input inside a bracket: run it, and show the syntax error
                    return "\n".join(lines)
                raise EOFError
            lines.append(line.rstrip("\r\n"))
            text = "\n".join(lines)
            if is_complete(text):
                return text

    return read


def _terminal_reader(session: Any) -> Callable[[], str]:
    """A prompt_toolkit prompt: history, completion, Enter ends a statement only when complete."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer, Completion
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    from prompt_toolkit.key_binding import KeyBindings

    from adcli.lang.parser import is_complete

    class SessionCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterator[Completion]:
            for text, back in completions(session, document.text_before_cursor):
                yield Completion(text, start_position=-back)

    bindings = KeyBindings()

    @bindings.add("enter")
    def _enter(event: Any) -> None:
        buffer = event.current_buffer
        if buffer.text.strip().startswith(":") or is_complete(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    path = history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        history: Any = FileHistory(str(path))
    except OSError:
        history = InMemoryHistory()

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
