"""Where program text comes from: script files, imports and standard input.

The one home of reading source and resolving ``import`` paths, used by the
interpreter and by ``check`` alike, so both refuse the same things the same way:

* an import names a ``.ad`` file, and the file it *reaches* must be one too:
  the real path (symlinks followed) must end in ``.ad`` and be a regular file,
  so ``ln -s secret.txt notes.ad`` or ``ln -s /proc/self/environ env.ad`` is
  refused before a byte of the target is read;
* a path that cannot be looked at (no search permission, a name longer than
  ``NAME_MAX``, a NUL byte, a symlink loop) is a clean ``value`` error, never
  an ``OSError`` or ``ValueError`` traceback;
* at most ``max_source_bytes`` are read from anything (``/dev/zero`` never ends),
  and bytes that are not UTF-8 are a syntax error at the first of them.

Every failure is an :class:`~adcli.errors.AdcliError`.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

from adcli.errors import AdcliError, Span
from adcli.records import record

#: The largest source accepted, in UTF-8 bytes (kind "limit").
DEFAULT_MAX_SOURCE_BYTES = 10 * 1024 * 1024
#: The suffix every script and every imported file has.
SUFFIX = ".ad"


@record(frozen=True)
class ResolvedImport:
    """Where an ``import "raw"`` leads: the real file, and the name errors show for it."""

    path: Path  # the real path: symlinks resolved, absolute
    filename: str  # as spans name it: relative to the working directory unless raw is absolute

    @property
    def key(self) -> str:
        """The identity of the file (imports of one file by several names are one import)."""
        return str(self.path)


def describe_os_error(exc: BaseException) -> str:
    """Why a path could not be used, in words (``Permission denied``, ``File name too long``)."""
    if isinstance(exc, ValueError):  # os functions refuse a NUL byte with ValueError
        return "the name contains a NUL byte"
    if isinstance(exc, OSError):
        if exc.errno == errno.ELOOP:
            return "too many levels of symbolic links (a symlink loop?)"
        return exc.strerror or str(exc)
    return str(exc)


def real_path(path: str | os.PathLike) -> Path:
    """The absolute real path of ``path`` (every symlink resolved); ``OSError`` or ``ValueError``
    when it cannot be found or looked at."""
    text = os.fspath(path)
    if "\0" in text:
        raise ValueError("embedded null byte")
    return Path(os.path.realpath(text, strict=True))


def resolve_import(
    raw: str, base_dir: str | os.PathLike, span: Span | None = None
) -> ResolvedImport:
    """The file ``import "raw"`` reaches from a script in ``base_dir``, checked before it is read.

    Raises a ``value`` error at ``span`` when ``raw`` does not end in ``.ad``, the file
    does not exist or cannot be looked at, or what it reaches is not a regular file
    whose real name ends in ``.ad``.
    """
    if not raw.endswith(SUFFIX):
        raise AdcliError("value", f"import takes only .ad files, not {raw!r}", span)
    joined = os.path.join(os.fspath(base_dir), raw)
    try:
        path = real_path(joined)
    except FileNotFoundError:
        shown = os.path.abspath(joined) if "\0" not in joined else joined
        raise AdcliError("value", f"cannot import {raw!r}: no such file ({shown})", span) from None
    except (OSError, ValueError) as exc:
        raise AdcliError(
            "value", f"cannot import {raw!r}: {describe_os_error(exc)}", span
        ) from None
    if not path.name.endswith(SUFFIX):
        raise AdcliError(
            "value",
            f"cannot import {raw!r}: it leads to {path.name!r}, which is not a .ad file",
            span,
            hint="import follows symlinks; the file it reaches must itself end in .ad",
        )
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise AdcliError(
            "value", f"cannot import {raw!r}: {describe_os_error(exc)}", span
        ) from None
    if not stat.S_ISREG(mode):
        raise AdcliError("value", f"cannot import {raw!r}: not a regular file ({path})", span)
    filename = str(path) if os.path.isabs(raw) else os.path.relpath(path)
    return ResolvedImport(path, filename)


def read_source(
    path: str | os.PathLike,
    filename: str | None = None,
    max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES,
    *,
    regular_only: bool = False,
    what: str | None = None,
    span: Span | None = None,
) -> str:
    """The text of the script at ``path``: UTF-8, a leading byte-order mark dropped.

    ``filename`` (default ``path``) goes into the spans of errors in the text. With
    ``regular_only`` anything but a regular file is refused without blocking (a FIFO is
    never waited on). A failure to open or read is a ``value`` error "cannot {what}: why"
    at ``span`` (``what`` defaults to ``read FILENAME``).
    """
    filename = filename or os.fspath(path)
    what = what or f"read {filename}"
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    if regular_only:
        flags |= getattr(os, "O_NONBLOCK", 0)
    try:
        if "\0" in os.fspath(path):
            raise ValueError("embedded null byte")
        fd = os.open(path, flags)
    except (OSError, ValueError) as exc:
        raise AdcliError("value", f"cannot {what}: {describe_os_error(exc)}", span) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise AdcliError("value", f"cannot {what}: it is a directory", span)
        if regular_only and not stat.S_ISREG(mode):
            raise AdcliError("value", f"cannot {what}: not a regular file", span)
        if regular_only:
            os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(max_source_bytes + 1)
    except OSError as exc:
        raise AdcliError("value", f"cannot {what}: {describe_os_error(exc)}", span) from None
    finally:
        os.close(fd)
    return decode_source(data, filename, max_source_bytes)


def read_stream(
    stream: Any, filename: str, max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES
) -> str:
    """A program from a text stream (standard input), bounded like a file.

    A closed or missing stream (``adcli run - <&-``) is a ``value`` error, not a crash.
    """
    if stream is None:
        raise AdcliError("value", f"cannot read {filename}: standard input is closed")
    try:
        text = stream.read(max_source_bytes + 1)
    except UnicodeDecodeError as exc:
        raise AdcliError(
            "syntax",
            f"byte 0x{exc.object[exc.start]:02X} is not UTF-8 text",
            Span(filename, 1, 1, 1, 1),
            hint="save the script as UTF-8",
        ) from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, ValueError) and "closed" not in str(exc):
            raise
        reason = (
            "standard input is closed" if isinstance(exc, ValueError) else describe_os_error(exc)
        )
        raise AdcliError("value", f"cannot read {filename}: {reason}") from None
    if len(text) > max_source_bytes:
        raise _too_large(filename, max_source_bytes)
    return text


def decode_source(data: bytes, filename: str, max_source_bytes: int) -> str:
    """Bytes of a script as text, or the ``limit``/``syntax`` error that says why not."""
    if len(data) > max_source_bytes:
        raise _too_large(filename, max_source_bytes)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        line_start = data.rfind(b"\n", 0, start) + 1
        line = data.count(b"\n", 0, start) + 1
        column = len(data[line_start:start].decode("utf-8", "replace")) + 1
        raise AdcliError(
            "syntax",
            f"byte 0x{data[start]:02X} is not UTF-8 text",
            Span(filename, line, column, line, column + 1),
            hint="save the script as UTF-8",
        ) from None


def _too_large(filename: str, limit: int) -> AdcliError:
    return AdcliError(
        "limit",
        f"source too large (more than {limit} bytes; limit {limit})",
        Span(filename, 1, 1, 1, 1),
        hint="split it into several files, or raise the limit with --max-source-bytes",
    )


def base_dir_of(filename: str) -> Path:
    """The directory a script's imports resolve from (the working directory for ``<eval>``)."""
    if filename.startswith("<"):
        return Path.cwd()
    try:
        return real_path(filename).parent
    except (OSError, ValueError):
        return Path(os.path.abspath(filename)).parent


def identity(filename: str) -> str:
    """The key a script is known by on the import stack (its real path where it has one)."""
    try:
        return str(real_path(filename))
    except (OSError, ValueError):
        return os.path.abspath(filename)
