"""The command line: the Typer app, its commands, the REPL, the renderer of
values and errors, and ``adcli explain``. Thin: the work happens below."""
