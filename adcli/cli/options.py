"""The options every command takes, and the session they open.

Its own module so that the commands (:mod:`adcli.cli.app`) and the REPL
(:mod:`adcli.cli.repl`) both reach :func:`open_session` without importing each
other. The interpreter is imported only when a session is opened, so ``--help``
stays quick.
"""

from __future__ import annotations

import gc
from dataclasses import field
from typing import Any

from adcli.lang.limits import Limits
from adcli.records import record


@record(frozen=True)
class GlobalOptions:
    """The options every command takes."""

    device: str = "cpu"
    dtype: str = "float32"
    seed: int | None = None
    json: bool = False
    debug: bool = False
    detect_anomaly: bool = False
    #: ``--no-cache``: neither read nor write the cache of parsed scripts
    no_cache: bool = False
    #: limits given on the command line, by field name (the others keep their defaults)
    limits: dict[str, Any] = field(default_factory=dict)
    #: ``--output-format``: "text", or "github" for GitHub Actions annotations too
    output_format: str = "text"


def session_limits(opts: GlobalOptions) -> Limits:
    """The session's :class:`~adcli.lang.limits.Limits`, with those given on the command line."""
    return Limits.from_options(opts.limits)


def open_session(opts: GlobalOptions) -> Any:
    """A fresh interpreter session with the global options (may raise a device error)."""
    collecting = gc.isenabled()
    gc.disable()  # while the interpreter is imported: many objects, no garbage
    try:
        from adcli.lang.interpreter import Session
        from adcli.lang.parser import set_cache
    finally:
        if collecting:
            gc.enable()

    if opts.no_cache:  # here, not in the app: -j workers open their own sessions
        set_cache(False)
    return Session(
        device=opts.device,
        dtype=opts.dtype,
        seed=opts.seed,
        limits=session_limits(opts),
        detect_anomaly=opts.detect_anomaly,
    )
