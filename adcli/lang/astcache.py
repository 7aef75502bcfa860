"""Parsed scripts, kept on disk as CPython keeps bytecode: a second run of an
unchanged script skips parsing.

An entry is keyed by the SHA-256 of the script's text, of the grammar, and the
versions of adcli and Lark (and of this format); spans are stored without the
file name, which is supplied when the entry is read. The file is JSON (never
pickle): a header line with the key and the SHA-256 of the body, then the body:
the node classes and tuple sizes it builds (only the node classes of
:mod:`adcli.lang.nodes`), a pool of literals, one of spans, and the records,
in runs of one builder, each run field by field, so that it is read with a
pass per field rather than a step per node. Everything is checked on the way
in: a file that is not exactly what this module writes is ignored (and
replaced by the next parse), never trusted.
"""

from __future__ import annotations

import gc
import json
import os
from collections import deque
from dataclasses import fields
from itertools import repeat
from types import MemberDescriptorType
from typing import Any

from adcli.errors import Span
from adcli.lang import cache, nodes

__all__ = ["entry_key", "load", "store"]

FORMAT = 3
#: Scripts shorter than this are parsed faster than an entry is read.
MIN_SOURCE_CHARS = 1024
#: How many parsed scripts are kept (the least recently written go first).
MAX_ENTRIES = 256
#: The largest entry read, relative to its script (and in all).
_BYTES_PER_CHAR = 64
_MAX_BYTES = 512 * 1024 * 1024
_PREFIX = "ast-"

_new = tuple.__new__
_object_new = object.__new__
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

    collecting = gc.isenabled()
    gc.disable()  # many small objects, no cycles: as in load
    try:
        body = json.dumps(_encode(program), separators=(",", ":"), allow_nan=True).encode()
    except (TypeError, ValueError, RecursionError):
        return
    finally:
        if collecting:
            gc.enable()
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
    """Literals and spans in two pools, then one record per node or tuple, each
    after its fields (by height): the indexes of its fields among the values so
    far (the pools, then the records' results), in runs of records of one
    builder, a run written as its builder, its length, then field by field.
    Iterative, so a 100,000-term chain is no deeper here than anywhere else."""
    builders: list[list[Any]] = []
    builder_index: dict[Any, int] = {}
    consts: list[Any] = []
    const_index: dict[tuple[type, Any], int] = {}
    span_index: dict[Span, int] = {}
    field_names: dict[type, list[str]] = {}
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
            index = builder_index.get(cls)
            if index is None:
                names = field_names[cls] = [f.name for f in fields(cls)]
                index = builder_index[cls] = len(builders)
                builders.append([cls.__name__, len(names)])
            names = field_names[cls]
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
    # Records by height (a leaf's is 0, a parent's one more than its highest child's),
    # then by builder: every field still points back, and never into its own run of
    # records of one builder, which are written together, a field at a time.
    heights: list[int] = []
    for _, args in records:
        heights.append(max([heights[i] + 1 for pool, i in args if pool == "b"], default=0))
    order = sorted(range(len(records)), key=lambda j: (heights[j], records[j][0]))
    moved = [0] * len(records)
    for new, old in enumerate(order):
        moved[old] = new
    base = {"c": 0, "s": len(consts), "b": len(consts) + len(columns[0])}
    code: list[int] = []
    start = 0
    while start < len(order):
        which, height = records[order[start]][0], heights[order[start]]
        stop = start + 1
        while (
            stop < len(order)
            and records[order[stop]][0] == which
            and heights[order[stop]] == height
        ):
            stop += 1
        code += (which, stop - start)
        run = [records[j][1] for j in order[start:stop]]
        for field in range(len(run[0])):
            for args in run:
                pool, index = args[field]
                code.append(base[pool] + (moved[index] if pool == "b" else index))
        start = stop
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
    builders = _builders(entries)
    if builders is None:
        return None
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
    spans = (first_span, len(values))  # spans sit at the indexes first_span .. len - 1
    # The records, a run at a time: the builder, how many, then field by field.
    first_record = len(values)
    position, end = 0, len(code)
    while position < end:
        which, count = code[position], code[position + 1]
        builder = builders[which]
        start = position + 2
        position = start + count * builder[1]
        if count < 1 or position > end or len(values) + count > first_record + end:
            return None  # (as many records as numbers in the code at most: bounded)
        if not _build_run(values, code, start, count, builder, spans):
            return None
    if type(values[-1]) is not nodes.Program:
        return None
    return values[-1]


def _builders(entries: Any) -> list[tuple] | None:
    """Per builder an entry names: ``(class, or None for a tuple; its size; the indexes
    of its span fields; its slots' setters, or None)``; None if one is neither a node
    class of the right size nor a tuple."""
    if type(entries) is not list:
        return None
    known = _node_classes()
    builders: list[tuple] = []
    for entry in entries:
        if type(entry) is not list or len(entry) != 2 or type(entry[1]) is not int:
            return None
        name, size = entry
        if name == "()":
            if size < 0:
                return None
            builders.append((None, size, (), None))
            continue
        cls = known.get(name) if type(name) is str else None
        if cls is None or size != len(fields(cls)):
            return None
        names = [f.name for f in fields(cls)]
        # Fields that hold spans must get spans (a check the constructors do not make).
        span_fields = tuple(
            i for i, name in enumerate(names) if name == "span" or name.endswith("_span")
        )
        builders.append((cls, size, span_fields, _setters(cls, names)))
    return builders


def _setters(cls: type, names: list[str]) -> tuple | None:
    """The ``__set__`` of each field's slot, when making a ``cls`` is only setting them
    (``object.__new__``, no ``__post_init__``); else None, and its constructor is called."""
    if cls.__new__ is not object.__new__ or hasattr(cls, "__post_init__"):
        return None
    slots = [getattr(cls, name, None) for name in names]
    if not all(type(slot) is MemberDescriptorType for slot in slots):
        return None
    return tuple(slot.__set__ for slot in slots)


def _build_run(values: list, code: list, start: int, count: int, builder, spans) -> bool:
    """Append to ``values`` the ``count`` nodes (or tuples) of one builder whose fields
    follow ``start`` in ``code``, a field at a time; False if a field points anywhere
    but back, before the run (at the pools or at a record built: no cycles), or a
    span field anywhere but at a span."""
    cls, size, span_fields, setters = builder
    here = len(values)  # where the run's first record goes
    get = values.__getitem__
    if count == 1:
        refs = code[start : start + size]
        if refs and max(refs) >= here:
            return False
        first_span, end_of_spans = spans
        for i in span_fields:
            if not first_span <= refs[i] < end_of_spans:
                return False
        values.append(tuple(map(get, refs)) if cls is None else cls(*map(get, refs)))
        return True
    columns = [code[start + i * count : start + (i + 1) * count] for i in range(size)]
    if any(max(column) >= here for column in columns):
        return False
    first_span, end_of_spans = spans
    for i in span_fields:
        if min(columns[i]) < first_span or max(columns[i]) >= end_of_spans:
            return False
    if cls is None:
        if size:
            values.extend(zip(*[map(get, column) for column in columns]))
        else:
            values.extend(repeat((), count))
    elif setters is None:
        values.extend(map(cls, *[map(get, column) for column in columns]))
    else:
        built = list(map(_object_new, repeat(cls, count)))
        for setter, column in zip(setters, columns):
            deque(map(setter, built, map(get, column)), 0)
        values.extend(built)
    return True
