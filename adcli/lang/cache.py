"""adcli's cache directory: files that only save time, read with suspicion.

Two things are kept there, as CPython keeps bytecode: the parser's tables
(one file per grammar) and parsed scripts (one file per script text). Nothing
in a cache file can run code: files are JSON, read only when they are regular
files of bounded size, checked whole by their reader, and on any doubt ignored
and rewritten. Files are written to a temporary file in the same directory and
renamed, so a reader never sees half a file; a temporary file that a failed or
killed write left behind is removed later.

The directory is ``$XDG_CACHE_HOME/adcli`` when ``XDG_CACHE_HOME`` is an
absolute path (a relative one is ignored, as the XDG specification says), else
``~/.cache/adcli``.
"""

from __future__ import annotations

import os
import stat
import time

__all__ = ["cache_dir", "prune", "read_bounded", "write_atomic"]

#: The suffix of temporary files; one older than this many seconds is debris.
_TEMP_SUFFIX = ".tmp"
_STALE_SECONDS = 600.0


def cache_dir() -> str:
    """Where adcli keeps its cache files (the directory may not exist yet)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "adcli")


def read_bounded(path: str, max_bytes: int) -> bytes | None:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``;
    ``None`` if it is missing, not a regular file (a FIFO, a device such as
    ``/dev/zero``, a directory), too large, or unreadable."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: opening a FIFO does not wait for a writer
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        chunks = []
        left = max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        return data if len(data) <= max_bytes else None
    except OSError:
        return None
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes) -> bool:
    """Write ``data`` to ``path`` through a temporary file and a rename; False
    (and nothing left behind) when that fails: a cache that cannot be written
    is simply not written."""
    import tempfile  # only when writing: not on every start-up

    folder = os.path.dirname(path)
    partial = None
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, partial = tempfile.mkstemp(
            prefix=os.path.basename(path) + ".", suffix=_TEMP_SUFFIX, dir=folder
        )
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(partial, path)
        partial = None
        return True
    except (OSError, ValueError):
        return False
    finally:
        if partial is not None:
            try:
                os.unlink(partial)
            except OSError:
                pass


def prune(folder: str, prefix: str, keep: int) -> None:
    """Keep the ``keep`` most recently used files named ``prefix*`` in ``folder``
    and remove older ones, and any stale temporary file: the cache stays bounded."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    now = time.time()
    ours = []
    for entry in entries:
        name = entry.name
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if name.endswith(_TEMP_SUFFIX):
            if now - info.st_mtime > _STALE_SECONDS:
                _remove(entry.path)
        elif name.startswith(prefix):
            ours.append((info.st_mtime, entry.path))
    if len(ours) > keep:
        ours.sort(reverse=True)
        for _, path in ours[keep:]:
            _remove(path)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
