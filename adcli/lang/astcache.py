"""Parsed scripts, kept on disk as CPython keeps bytecode: a second run of an
unchanged script skips parsing.

An entry is keyed by the SHA-256 of the script's text, of the grammar, and the
versions of adcli and Lark (and of this format); spans are stored without the
file name, which is supplied when the entry is read. The file is JSON (never
pickle): a header line with the key and the SHA-256 of the body, then the body,
a program for a small stack machine that can only build the node classes of
:mod:`adcli.lang.nodes`, spans, tuples and literals. Everything is checked on
the way in: a file that is not exactly what this module writes is ignored (and
replaced by the next parse), never trusted.
"""

from __future__ import annotations

import gc
import json
import os
from dataclasses import fields
from itertools import repeat
from typing import Any

from adcli.errors import Span
from adcli.lang import cache, nodes

__all__ = ["entry_key", "load", "store"]

FORMAT = 2
#: Scripts shorter than this are parsed faster than an entry is read.
MIN_SOURCE_CHARS = 1024
#: How many parsed scripts are kept (the least recently written go first).
MAX_ENTRIES = 256
#: The largest entry read, relative to its script (and in all).
_BYTES_PER_CHAR = 64
_MAX_BYTES = 512 * 1024 * 1024
_PREFIX = "ast-"

_new = tuple.__new__
_SCALARS = (str, int, float, bool, type(None))


def _node_classes() -> dict[str, type]:
    """The node classes an entry may build: those :mod:`adcli.lang.nodes` defines."""
    return {
        name: value
        for name, value in vars(nodes).items()
        if isinstance(value, type)
        and issubclass(value, nodes.Node)
        and value.__name__ == name
        and hasattr(value, "__dataclass_fields__")
    }


def entry_key(source: str, grammar: str, versions: str) -> str:
    """The hex key of ``source`` parsed by ``grammar`` (``versions``: adcli's and Lark's).

    The code that builds trees is in the key too, as CPython stamps bytecode
    with its source: the node classes' fields, and the size and time of the
    modules that build and store the nodes, so that editing the builder
    cannot leave stale trees in the cache."""
    import hashlib  # only for scripts long enough to cache: not on every start-up

    digest = hashlib.sha256()
    for part in (f"adcli-ast-{FORMAT}", versions, _code_stamp(), grammar, source):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


_stamp: str | None = None


def _code_stamp() -> str:
    global _stamp
    if _stamp is None:
        parts = [
            f"{name}({','.join(f.name for f in fields(cls))})"
            for name, cls in sorted(_node_classes().items())
        ]
        here = os.path.dirname(os.path.abspath(__file__))
        for module in ("parser.py", "nodes.py", "astcache.py"):
            try:
                info = os.stat(os.path.join(here, module))
                parts.append(f"{module}:{info.st_size}:{info.st_mtime_ns}")
            except OSError:
                parts.append(f"{module}:?")
        _stamp = ";".join(parts)
    return _stamp


def _path(key: str) -> str:
    return os.path.join(cache.cache_dir(), f"{_PREFIX}{key[:40]}.json")


# ---------------------------------------------------------------------- writing


def store(key: str, program: nodes.Program, depth: int) -> None:
    """Write ``program`` (whose brackets nest ``depth`` deep) under ``key``; never raises
    for a cache that cannot be written."""
    import hashlib

    try:
        body = json.dumps(_encode(program), separators=(",", ":"), allow_nan=True).encode()
    except (TypeError, ValueError, RecursionError):
        return
    header = {
        "format": FORMAT,
        "key": key,
        "depth": depth,
        "body": hashlib.sha256(body).hexdigest(),
    }
    path = _path(key)
    if cache.write_atomic(path, json.dumps(header).encode() + b"\n" + body):
        cache.prune(os.path.dirname(path), _PREFIX, MAX_ENTRIES)


def _encode(program: nodes.Program) -> dict[str, Any]:
    """Literals and spans in two pools, then one record per node or tuple, in
    postfix order: its builder, then the indexes of its fields among the values
    so far (the pools, then the records' results). Iterative, so a 100,000-term
    chain is no deeper here than anywhere else."""
    builders: list[list[Any]] = []
    builder_index: dict[Any, int] = {}
    consts: list[Any] = []
    const_index: dict[tuple[type, Any], int] = {}
    span_index: dict[Span, int] = {}
    columns: list[list[int]] = [[], [], [], []]
    # ("c", i) a literal, ("s", i) a span, ("b", j) the j-th record's result
    refs: list[tuple[str, int]] = []
    records: list[tuple[int, list[tuple[str, int]]]] = []
    work: list[Any] = [program]
    while work:
        item = work.pop()
        kind = type(item)
        if kind is _Emit:
            what, size = item
            args = refs[len(refs) - size :] if size else []
            del refs[len(refs) - size :]
            records.append((what, args))
            refs.append(("b", len(records) - 1))
        elif kind is Span:
            index = span_index.get(item)
            if index is None:
                index = span_index[item] = len(columns[0])
                for column, value in zip(columns, item[1:]):
                    column.append(value)
            refs.append(("s", index))
        elif kind is tuple:
            key = ("()", len(item))
            index = builder_index.get(key)
            if index is None:
                index = builder_index[key] = len(builders)
                builders.append(["()", len(item)])
            work.append(_Emit(index, len(item)))
            work.extend(reversed(item))
        elif isinstance(item, nodes.Node):
            cls = type(item)
            names = [f.name for f in fields(cls)]
            index = builder_index.get(cls)
            if index is None:
                index = builder_index[cls] = len(builders)
                builders.append([cls.__name__, len(names)])
            work.append(_Emit(index, len(names)))
            work.extend(reversed([getattr(item, name) for name in names]))
        elif kind in _SCALARS:
            index = const_index.get((kind, item))
            if index is None:
                index = const_index[(kind, item)] = len(consts)
                consts.append(item)
            refs.append(("c", index))
        else:
            raise TypeError(f"cannot cache a {kind.__name__}")
    base = {"c": 0, "s": len(consts), "b": len(consts) + len(columns[0])}
    code: list[int] = []
    for which, args in records:
        code.append(which)
        code.extend(base[pool] + index for pool, index in args)
    return {"builders": builders, "consts": consts, "spans": columns, "code": code}


class _Emit(tuple):
    """A marker in the encoder's work list: emit this op once the fields are out."""

    __slots__ = ()

    def __new__(cls, builder: int, size: int) -> _Emit:  # noqa: PYI034
        return tuple.__new__(cls, (builder, size))


# ---------------------------------------------------------------------- reading


def load(key: str, filename: str, max_depth: int, source_chars: int) -> nodes.Program | None:
    """The program stored under ``key`` with ``filename`` in its spans, or None
    when there is none, it nests deeper than ``max_depth`` (then parsing reports
    that), or anything about the file is in doubt."""
    limit = min(_MAX_BYTES, 4096 + _BYTES_PER_CHAR * source_chars)
    raw = cache.read_bounded(_path(key), limit)
    if raw is None:
        return None
    collecting = gc.isenabled()
    gc.disable()  # many objects, no cycles: as in the parser
    try:
        return _decode(raw, key, filename, max_depth)
    except (ValueError, TypeError, KeyError, IndexError, RecursionError, MemoryError):
        return None
    finally:
        if collecting:
            gc.enable()


def _decode(raw: bytes, key: str, filename: str, max_depth: int) -> nodes.Program | None:
    import hashlib

    header_end = raw.index(b"\n")
    header = json.loads(raw[:header_end])
    body = raw[header_end + 1 :]
    if type(header) is not dict or header.get("format") != FORMAT or header.get("key") != key:
        return None
    depth = header.get("depth")
    if type(depth) is not int or not 0 <= depth <= max_depth:
        return None
    if header.get("body") != hashlib.sha256(body).hexdigest():
        return None
    data = json.loads(body)
    if type(data) is not dict:
        return None
    entries, consts, columns, code = data["builders"], data["consts"], data["spans"], data["code"]
    known = _node_classes()
    builders: list[tuple[type | None, int, tuple[int, ...]]] = []
    if type(entries) is not list:
        return None
    for entry in entries:
        if type(entry) is not list or len(entry) != 2 or type(entry[1]) is not int:
            return None
        name, size = entry
        if name == "()":
            if size < 0:
                return None
            builders.append((None, size, ()))
            continue
        cls = known.get(name) if type(name) is str else None
        if cls is None or size != len(fields(cls)):
            return None
        # Fields that hold spans must get spans (a check the constructors do not make).
        span_fields = tuple(
            i for i, f in enumerate(fields(cls)) if f.name == "span" or f.name.endswith("_span")
        )
        builders.append((cls, size, span_fields))
    if type(consts) is not list or not set(map(type, consts)) <= set(_SCALARS):
        return None
    if type(columns) is not list or len(columns) != 4:
        return None
    if any(type(c) is not list or len(c) != len(columns[0]) for c in columns):
        return None
    if not all(set(map(type, column)) <= {int} for column in columns):
        return None
    if type(code) is not list or not code or not set(map(type, code)) <= {int}:
        return None
    if min(code) < 0:  # no negative index may reach Python's from-the-end indexing
        return None
    values: list[Any] = list(consts)
    first_span = len(values)
    values.extend(map(_new, repeat(Span), zip(repeat(filename), *columns)))
    end_of_spans = len(values)  # spans sit at the indexes first_span .. end_of_spans - 1
    get = values.__getitem__
    push = values.append
    position, end = 0, len(code)
    while position < end:
        cls, size, span_fields = builders[code[position]]
        start = position + 1
        position = start + size
        if position > end:
            return None
        # Every index points back: at the pools or at a record already built
        # (a later one is an IndexError); a span field's, at a span.
        refs = code[start:position]
        for i in span_fields:
            if not first_span <= refs[i] < end_of_spans:
                return None
        if cls is None:
            push(tuple(map(get, refs)))
        else:
            push(cls(*map(get, refs)))
    if type(values[-1]) is not nodes.Program:
        return None
    return values[-1]
