"""Parsed scripts, kept on disk as CPython keeps bytecode: a second run of an
unchanged script skips parsing.

An entry is keyed by the SHA-256 of the script's text, of the grammar, and the
versions of adcli and Lark (and of this format); spans are stored without the
file name, which is supplied when the entry is read. Never pickle: a header
line (JSON) with the key and the SHA-256 of the body, then the body: a line of
JSON with the node classes and tuple sizes it builds (only the node classes of
:mod:`adcli.lang.nodes`), a pool of literals and the sizes of the arrays that
follow, then those arrays of little-endian integers: spans written out (line,
column, end line, end column: those a parser did not pack), packed spans
(offsets into the source, as the parser keeps them, turned into spans when
first read, as after a parse) with the table of line starts they need, and
the records, in runs of one builder, each run field by field, so that it is
read with a pass per field rather than a step per node: NumPy views of the
file's bytes, checked by the least and greatest index of each field, the
fields gathered from the pool of values at once, the nodes made by the
parser's makers. Everything is checked on the way in: a file that is not exactly what this
module writes is ignored (and replaced by the next parse), never trusted.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from array import array
from dataclasses import fields
from itertools import chain, groupby, repeat
from operator import and_, attrgetter, length_hint, rshift, sub
from types import MemberDescriptorType
from typing import Any

import numpy as _np

from adcli.errors import Span
from adcli.lang import cache, nodes

__all__ = ["entry_key", "load", "store"]

FORMAT = 5
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
    return os.path.join(cache.cache_dir(), f"{_PREFIX}{key[:40]}.ast")


# ---------------------------------------------------------------------- writing


def store(key: str, program: nodes.Program, depth: int) -> None:
    """Write ``program`` (whose brackets nest ``depth`` deep) under ``key``; never raises
    for a cache that cannot be written."""
    import hashlib

    collecting = gc.isenabled()
    gc.disable()  # many small objects, no cycles: as in load
    try:
        body = _body(_encode(program))
    except (TypeError, ValueError, OverflowError, RecursionError):
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


#: The arrays of a body, in order, and the type code of their integers: the spans'
#: four columns (as many as ``sizes[0]`` each), the packed spans, the line starts, the
#: code. Unsigned, so that no number read is negative (no index from the end).
_ARRAYS = (("spans", "I"), ("packed", "Q"), ("starts", "Q"), ("code", "I"))
_ITEM_SIZES = {code: array(code).itemsize for _, code in _ARRAYS}
#: the little-endian NumPy type of each, as they are read back
_DTYPES = {code: _np.dtype(f"<u{size}") for code, size in _ITEM_SIZES.items()}
_SWAP = sys.byteorder != "little"


def _body(data: dict[str, Any]) -> bytes:
    """The bytes of an entry's body holding ``data`` (as :func:`_encode` makes it, or
    as :func:`_parts` reads it back): its JSON line, then its arrays."""
    spans = data["spans"]
    if len(spans) != 4 or any(len(column) != len(spans[0]) for column in spans):
        raise ValueError("ragged span columns")
    columns = {
        "spans": chain.from_iterable(spans),
        "packed": data["packed"],
        "starts": data["starts"],
        "code": data["code"],
    }
    head = {
        "builders": data["builders"],
        "consts": data["consts"],
        "sizes": [len(spans[0]), len(data["packed"]), len(data["starts"]), len(data["code"])],
    }
    parts = [json.dumps(head, separators=(",", ":"), allow_nan=True).encode(), b"\n"]
    for name, code in _ARRAYS:
        numbers = array(code, columns[name])  # (OverflowError for what does not fit)
        if _SWAP:
            numbers.byteswap()
        parts.append(numbers.tobytes())
    return b"".join(parts)


def _encode(program: nodes.Program) -> dict[str, Any]:
    """Literals, spans and packed spans in three pools, then one record per node or
    tuple: the indexes of its fields among the values before its run (the pools,
    then the records' results), in runs of records of one builder, a run written
    as its builder, its length, then field by field. A span field that the
    parser packed stays packed (with the line starts of its source).

    The tree is walked a level at a time (by distance from the root), a level
    kept as one list per builder (a node class, or tuples of one size). The
    leaves (records whose fields are all literals and spans) come first, a run
    per builder for the whole tree; then the other records from the deepest
    level up, a run per list: every field points back, never into its own run.
    A run's nodes are taken apart a field at a time, and each field's values go
    to the pools or to the next level a column at a time, so that the work per
    node is done by C loops (``map``, ``zip``, slices), not by Python steps.
    Iterative, so a 100,000-term chain is no deeper here than anywhere else."""
    if not issubclass(type(program), nodes.Node):
        raise TypeError(f"cannot cache a {type(program).__name__}")
    builders: list[list[Any]] = []
    builder_index: dict[Any, int] = {}
    consts: list[Any] = []  # the literals, each once
    const_at: dict[Any, int] = {}  # a literal's index: by value for a str, else by (type, value)
    # the spans' lines, columns, end lines and end columns (a parser makes a span per node)
    numbers: list[list[int]] = [[], [], [], []]
    packed: list[int] = []  # the packed spans, all of the first Lines met
    packed_lines: list[nodes.Lines] = []  # (that one)
    # The leaves, per builder: how many, and per list of them where its fields went.
    leaves: dict[Any, list[Any]] = {}
    leaf_count: dict[Any, int] = {}
    # Per level: its lists (builder key, size, and where among the builder's leaves,
    # or None), and a run per list of other records: its builder, its length, and
    # where its fields went (per field, or for a run of one record, per value).
    levels: list[tuple[list[tuple[Any, int, int | None]], list[tuple[int, int, bool, Any]]]] = []
    level: dict[Any, list[Any]] = {type(program): [program]}
    following: dict[Any, list[Any]] = {}  # the next level
    tables: dict[Any, Any] = {}  # per Lines of packed spans, its table of lines (see _unpack)

    def place(value: Any) -> tuple[Any, int]:
        """Put one value in a pool or on the next level: ``(pool, index)``, the pool
        being "c" (the literals), "s" (the spans) or a list of the next level."""
        kind = type(value)
        if kind is str:
            index = const_at.get(value)
            if index is None:
                index = const_at[value] = len(consts)
                consts.append(value)
            return ("c", index)
        if kind is Span:
            if len(value) != _SPAN_WIDTH:
                raise ValueError("a span of the wrong size")
            for part, item in zip(numbers, value[1:]):
                part.append(item)
            return ("s", len(numbers[0]) - 1)
        if kind in _SCALAR_SET:
            index = const_at.get((kind, value))
            if index is None:
                index = const_at[(kind, value)] = len(consts)
                consts.append(value)
            return ("c", index)
        if kind is tuple or issubclass(kind, nodes.Node):
            key = ("()", len(value)) if kind is tuple else kind
            bucket = following.get(key)
            if bucket is None:
                bucket = following[key] = []
            bucket.append(value)
            return (key, len(bucket) - 1)
        raise TypeError(f"cannot cache a {kind.__name__}")

    while level:
        lists: list[tuple[Any, int, int | None]] = []
        runs: list[tuple[int, int, bool, Any]] = []
        following = {}
        for key, items in level.items():
            number = len(items)
            if type(key) is tuple:  # ("()", size)
                width = key[1]
                getters = None
            else:
                getters = _getters.get(key)
                if getters is None:
                    getters = _getters[key] = [attrgetter(f.name) for f in fields(key)]
                    _raw_getters[key] = [_raw_getter(key, f.name) for f in fields(key)]
                width = len(getters)
            index = builder_index.get(key)
            if index is None:
                index = builder_index[key] = len(builders)
                builders.append(["()" if getters is None else key.__name__, width])
            compact = number == 1 and width <= 8
            if compact:  # a value at a time: cheaper for one record than columns
                item = items[0]
                placed: Any = list(
                    map(place, item if getters is None else [g(item) for g in getters])
                )
                leaf = all(type(pool) is str for pool, _ in placed)
            else:
                if getters is None:
                    # One column, field by field: a tuple's items are alike more often
                    # than not, and a long tuple is not taken apart into one-item columns.
                    if not width:
                        columns: list[Any] = []
                    elif number == 1:
                        columns = [items[0]]
                    else:
                        columns = [list(chain.from_iterable(zip(*items)))]
                else:
                    columns = [list(map(get, items)) for get in _raw_getters[key]]
                placed = [
                    _place_column(column, consts, const_at, numbers, following, place)
                    if raw is None
                    else _place_spans(
                        column,
                        items,
                        raw,
                        consts,
                        const_at,
                        numbers,
                        following,
                        place,
                        tables,
                        (packed, packed_lines),
                    )
                    for column, raw in zip(columns, _raw_names.get(key) or repeat(None))
                ]
                leaf = all(map(_is_pooled, placed))
            # A leaf, but not the root (which comes last), nor a tuple of items (whose
            # one column is not per field).
            if leaf and levels and (getters is not None or not width):
                chunks = leaves.setdefault(key, [])
                lists.append((key, number, leaf_count.get(key, 0)))
                leaf_count[key] = leaf_count.get(key, 0) + number
                chunks.append((compact, placed))
            else:
                lists.append((key, number, None))
                runs.append((index, number, compact, placed))
        levels.append((lists, runs))
        level = following
    first_span = len(consts)
    first_packed = first_span + len(numbers[0])
    where = first_packed + len(packed)  # the index of the next record
    code: list[int] = []
    # The leaves first, a run per builder, field by field across their lists.
    leaf_start: dict[Any, int] = {}
    for key, chunks in leaves.items():
        index = builder_index[key]
        code += (index, leaf_count[key])
        for field in range(builders[index][1]):
            for compact, placed in chunks:
                if compact:
                    pool, i = placed[field]
                    code.append(i if pool == "c" else first_span + i)
                else:
                    _emit(code, placed[field], first_span, first_packed, None)
        leaf_start[key] = where
        where += leaf_count[key]
    # Then the other records, from the deepest level up, each level's lists in order.
    below: dict[Any, int] = {}  # where each list one level down starts
    for lists, runs in reversed(levels):
        for index, number, compact, placed in runs:
            code += (index, number)
            if compact:
                code += [
                    i if p == "c" else first_span + i if p == "s" else below[p] + i
                    for p, i in placed
                ]
            else:
                for entry in placed:
                    _emit(code, entry, first_span, first_packed, below)
        below = {}
        for key, size, leaf_at in lists:
            if leaf_at is None:
                below[key] = where
                where += size
            else:
                below[key] = leaf_start[key] + leaf_at
    starts = packed_lines[0]._starts if packed_lines else []
    return {
        "builders": builders,
        "consts": consts,
        "spans": numbers,
        "packed": packed,
        "starts": starts,
        "code": code,
    }


def _emit(code: list[int], entry: tuple, first_span: int, first_packed: int, below: Any) -> None:
    """Append the indexes of one field's column, placed as ``entry`` says."""
    pool = entry[0]
    if pool == "p":
        _, start, length = entry
        code += range(first_packed + start, first_packed + start + length)
    elif pool == "b":
        _, key, start, length = entry
        start += below[key]
        code += range(start, start + length)
    elif pool == "s":
        _, start, length = entry
        code += range(first_span + start, first_span + start + length)
    elif pool == "c":
        code += entry[1]
    elif pool == "B":
        _, segments, inverse = entry
        ordered: list[int] = []
        for key, start, length in segments:
            start += below[key]
            ordered += range(start, start + length)
        code += map(ordered.__getitem__, inverse)
    else:  # "m": (pool, index) per value, a pool being "c", "s" or a list one level down
        code += [
            i if p == "c" else first_span + i if p == "s" else below[p] + i for p, i in entry[1]
        ]


def _place_column(
    column: Any, consts: list, const_at: dict, numbers: list, following: dict, place: Any
) -> tuple:
    """Put one field's values (of a run's records) in the pools or on the next
    level (``place`` puts one), and say where (see :func:`_emit`)."""
    held = set(map(type, column))
    if held == _SPAN_ONLY:
        start = len(numbers[0])
        parts = list(zip(*column))
        if len(parts) != _SPAN_WIDTH:  # (a Span is made of five)
            raise ValueError("a span of the wrong size")
        for part, items in zip(numbers, parts[1:]):
            part += items
        return ("s", start, len(column))
    if held <= _SCALAR_SET:
        return ("c", _const_refs(column, held, consts, const_at))
    if all(kind is tuple or issubclass(kind, nodes.Node) for kind in held):
        return _place_records(column, held, following)
    return ("m", list(map(place, column)))


def _is_pooled(entry: tuple) -> bool:
    """Whether a field's column (placed as ``entry``) is all literals and spans."""
    if entry[0] == "m":
        return all(pool == "c" or pool == "s" for pool, _ in entry[1])
    return entry[0] == "c" or entry[0] == "s" or entry[0] == "p"


_SPAN_ONLY = {Span}
_SPAN_WIDTH = len(Span._fields)
_STR_ONLY = {str}
_SCALAR_SET = set(_SCALARS)
#: per node class, a getter of each field
_getters: dict[type, list[Any]] = {}
#: per node class, a getter of each field's slot (a packed span stays an int), and
#: per field the name of the span field whose slot it reads, or None
_raw_getters: dict[type, list[Any]] = {}
_raw_names: dict[type, list[str | None]] = {}


def _raw_getter(cls: type, name: str) -> Any:
    """A getter of field ``name``'s slot: ``_name`` for a span field that the parser
    packs (:data:`adcli.lang.nodes.SPAN_FIELDS`, read through a property)."""
    names = _raw_names.setdefault(cls, [])
    slot = getattr(cls, f"_{name}", None)
    if type(getattr(cls, name, None)) is property and type(slot) is MemberDescriptorType:
        names.append(name)
        return attrgetter(f"_{name}")
    names.append(None)
    return attrgetter(name)


_get_lines = attrgetter("_lines")


def _place_spans(
    column: list,
    items: list,
    name: str,
    consts,
    const_at,
    numbers: list,
    following,
    place,
    tables,
    packing: tuple[list[int], list],
) -> tuple:
    """Place the column of span field ``name`` read from its slot. When the run's nodes
    share one :class:`~adcli.lang.nodes.Lines` and hold packed spans (ints): kept
    packed, in ``packing`` (the pool of packed spans, and the one Lines they may be
    of, set by the first), or else unpacked a column at a time, as
    :meth:`adcli.lang.nodes.Lines.span` does one. Else the field is read through
    its property, a span at a time."""
    held = set(map(type, column))
    if held == {int}:
        try:
            found = set(map(_get_lines, items))
        except AttributeError:
            found = set()
        lines = found.pop() if len(found) == 1 else None
        if type(lines) is nodes.Lines:
            table = tables.get(lines)
            if table is None:
                table = tables[lines] = _line_table(lines, column[0])
            if table is not None:
                pool, of = packing
                if not of:
                    of.append(lines)
                if of[0] is lines:
                    pool += column
                    return ("p", len(pool) - len(column), len(column))
                return _unpack(column, table, numbers)
    if held != _SPAN_ONLY:
        column = list(map(attrgetter(name), items))
    return _place_column(column, consts, const_at, numbers, following, place)


def _line_table(lines: nodes.Lines, pos: int) -> tuple[list[int], list[int]] | None:
    """Per offset in the source of ``lines``, its line, and per line (from 1), the
    offset of its start less one; None if the line starts are not as expected."""
    lines.span(pos)  # (makes its list of line starts)
    starts = lines._starts
    size = len(lines.source)
    if type(starts) is not list or not starts or starts[0] != 0 or starts[-1] > size:
        return None
    lengths = list(map(sub, starts[1:], starts))
    lengths.append(size + 1 - starts[-1])  # the last line: up to the end of the source
    line_of = list(chain.from_iterable(map(repeat, range(1, len(starts) + 1), lengths)))
    before = [0, *map(sub, starts, repeat(1))]  # columns are 1-based
    return line_of, before


def _unpack(column: list[int], table: tuple[list[int], list[int]], numbers: list) -> tuple:
    """The spans of packed offsets (see :func:`adcli.lang.nodes.packed`), a column at
    a time, as :meth:`adcli.lang.nodes.Lines.span` makes one: the end line is
    that of the last character (of the start, for an empty span)."""
    line_of, before = table
    shift = nodes.SPAN_SHIFT
    begin = list(map(rshift, column, repeat(shift)))
    end = list(map(and_, column, repeat((1 << shift) - 1)))
    line = list(map(line_of.__getitem__, begin))
    end_line = list(map(line_of.__getitem__, map(max, map(sub, end, repeat(1)), begin)))
    first = len(numbers[0])
    numbers[0] += line
    numbers[1] += map(sub, begin, map(before.__getitem__, line))
    numbers[2] += end_line
    numbers[3] += map(sub, end, map(before.__getitem__, end_line))
    return ("s", first, len(column))


def _const_refs(column: Any, held: set, consts: list, const_at: dict) -> list[int]:
    """The indexes in ``consts`` of the literals in ``column`` (of the types ``held``),
    adding those not there yet: strings by value, other literals by type and
    value (``1``, ``1.0`` and ``True`` are different literals)."""
    keys = column if held == _STR_ONLY else list(zip(map(type, column), column))
    for key in dict.fromkeys(keys):
        if key not in const_at:
            const_at[key] = len(consts)
            consts.append(key if held == _STR_ONLY else key[1])
    return list(map(const_at.__getitem__, keys))


def _record_key(value: Any) -> Any:
    """The list of its level a node or tuple goes to: by class, tuples by size."""
    return ("()", len(value)) if type(value) is tuple else type(value)


def _place_records(column: Any, held: set, following: dict) -> tuple:
    """Put the nodes and tuples of ``column`` (of the types ``held``) on the next
    level: ``("b", list, start, length)`` when they all go to one list, else
    ``("B", segments, inverse)``: the column sorted by list, where each run of it
    went, and where in that order each value of the column is."""
    if len(held) == 1:
        kind = next(iter(held))
        widths = set(map(len, column)) if kind is tuple else None
        if kind is not tuple or len(widths) == 1:
            key = kind if kind is not tuple else ("()", widths.pop())
            bucket = following.setdefault(key, [])
            start = len(bucket)
            bucket += column
            return ("b", key, start, len(column))
    if tuple in held:
        keys: list[Any] = list(
            zip(map(id, map(type, column)), map(length_hint, column, repeat(-1)))
        )
    else:
        keys = list(map(id, map(type, column)))
    order = sorted(range(len(column)), key=keys.__getitem__)
    segments = []
    for _, run in groupby(order, key=keys.__getitem__):
        run = list(map(column.__getitem__, run))
        key = _record_key(run[0])
        bucket = following.setdefault(key, [])
        segments.append((key, len(bucket), len(run)))
        bucket += run
    return ("B", segments, sorted(range(len(column)), key=order.__getitem__))


def _arrays(raw: bytes, start: int = 0) -> tuple[dict, tuple] | None:
    """What :func:`_body` wrote, from offset ``start`` of ``raw``: its JSON line (a
    dict), and its arrays as NumPy views of ``raw`` (the spans as four rows); None
    unless the sizes it gives are exact."""
    head_end = raw.index(b"\n", start)
    head = json.loads(raw[start:head_end])
    if type(head) is not dict:
        return None
    sizes = head.get("sizes")
    if type(sizes) is not list or len(sizes) != 4 or set(map(type, sizes)) != {int}:
        return None
    if min(sizes) < 0:
        return None
    counts = [4 * sizes[0], *sizes[1:]]
    at = head_end + 1
    if sum(n * _ITEM_SIZES[code] for n, (_, code) in zip(counts, _ARRAYS)) != len(raw) - at:
        return None
    arrays = []
    for n, (_, code) in zip(counts, _ARRAYS):
        arrays.append(_np.frombuffer(raw, _DTYPES[code], n, at))
        at += n * _ITEM_SIZES[code]
    arrays[0] = arrays[0].reshape(4, sizes[0])
    return head, tuple(arrays)


def _parts(raw: bytes, start: int = 0) -> dict[str, Any] | None:
    """What :func:`_body` wrote, as :func:`_body` takes it: the JSON line's builders
    and literals, and the arrays as lists (the spans as four columns)."""
    read = _arrays(raw, start)
    if read is None:
        return None
    head, arrays = read
    data: dict[str, Any] = {"builders": head.get("builders"), "consts": head.get("consts")}
    for (name, _), numbers in zip(_ARRAYS, arrays):
        data[name] = numbers.tolist()
    return data


# ---------------------------------------------------------------------- reading


def load(key: str, filename: str, max_depth: int, source_chars: int) -> nodes.Program | None:
    """The program stored under ``key`` with ``filename`` in its spans, or None
    when there is none, it nests deeper than ``max_depth`` (then parsing reports
    that), or anything about the file is in doubt (``source_chars``: the length of
    the script, which bounds the entry and the offsets of its spans)."""
    limit = min(_MAX_BYTES, 4096 + _BYTES_PER_CHAR * source_chars)
    raw = cache.read_bounded(_path(key), limit)
    if raw is None:
        return None
    collecting = gc.isenabled()
    gc.disable()  # many objects, no cycles: as in the parser
    try:
        return _decode(raw, key, filename, max_depth, source_chars)
    except (ValueError, TypeError, KeyError, IndexError, RecursionError, MemoryError):
        return None
    finally:
        if collecting:
            gc.enable()


class _CachedLines(nodes.Lines):
    """The :class:`~adcli.lang.nodes.Lines` of a program read from the cache: its
    line starts come from the entry (its source is not at hand)."""

    __slots__ = ()

    def __init__(self, filename: str, starts: list[int]) -> None:
        self.filename = filename
        self.source = ""
        self._starts = starts


def _decode(
    raw: bytes, key: str, filename: str, max_depth: int, source_chars: int
) -> nodes.Program | None:
    import hashlib

    header_end = raw.index(b"\n")
    header = json.loads(raw[:header_end])
    body = memoryview(raw)[header_end + 1 :]  # (not a copy)
    if type(header) is not dict or header.get("format") != FORMAT or header.get("key") != key:
        return None
    depth = header.get("depth")
    if type(depth) is not int or not 0 <= depth <= max_depth:
        return None
    if header.get("body") != hashlib.sha256(body).hexdigest():
        return None
    read = _arrays(raw, header_end + 1)
    if read is None:
        return None
    head, (columns, packed, starts, code) = read
    builders = _builders(head.get("builders"))
    if builders is None:
        return None
    consts = head.get("consts")
    if type(consts) is not list or not set(map(type, consts)) <= set(_SCALARS):
        return None
    if not len(code):
        return None
    if columns.size and int(columns.max()) > source_chars + 1:
        return None  # (lines and columns within the script)
    lines = None
    if len(packed):
        # Offsets within the script, and line starts that rise from 0 within it.
        if int((packed >> nodes.SPAN_SHIFT).max()) > source_chars:
            return None
        if int((packed & ((1 << nodes.SPAN_SHIFT) - 1)).max()) > source_chars:
            return None
        if not len(starts) or starts[0] != 0 or starts[-1] > source_chars:
            return None
        if not (starts[1:] > starts[:-1]).all():
            return None
        lines = _CachedLines(filename, starts.tolist())
    # The runs first (their builders and sizes), so that the pool of values can be
    # made at once: the literals, the spans, the packed spans, then the records.
    # The numbers read one or a few at a time come from a memoryview of a copy of the
    # code (native order, aligned): quicker than NumPy's indexing, which the long runs use.
    view = memoryview(code.astype(_np.uintc).tobytes()).cast("I")
    runs = []
    position, end = 0, len(code)
    records = 0
    while position < end:
        if position + 2 > end:
            return None
        which, count = view[position], view[position + 1]
        builder = builders[which]
        start = position + 2
        position = start + count * builder[1]
        records += count
        if count < 1 or position > end or records > end:
            return None  # (as many records as numbers in the code at most: bounded)
        runs.append((builder, start, count))
    first_span = len(consts)
    first_packed = first_span + columns.shape[1]
    first_record = first_packed + len(packed)
    values = _np.empty(first_record + records, dtype=object)
    values[:first_span] = consts
    if columns.shape[1]:
        spans = map(_new, repeat(Span), zip(repeat(filename), *columns.tolist()))
        values[first_span:first_packed] = _np.fromiter(spans, object, columns.shape[1])
    values[first_packed:first_record] = packed
    # spans sit at first_span .. first_packed - 1, packed ones from there to first_record - 1
    span_pools = (first_span, first_record if lines is not None else first_packed)
    here = first_record
    for builder, start, count in runs:
        if count > _SHORT_RUN:
            built = _build_run(values, code, start, count, builder, span_pools, here, lines)
        else:
            built = _build_few(values, view, start, count, builder, span_pools, here, lines)
        if not built:
            return None
        here += count
    program = values[here - 1]
    return program if type(program) is nodes.Program else None


def _builders(entries: Any) -> list[tuple] | None:
    """Per builder an entry names: ``(class, or None for a tuple; its size; the indexes
    of its span fields; its maker)``; None if one is neither a node class of the right
    size nor a tuple."""
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
        if cls is None or size != len(fields(cls)) or cls not in nodes.MAKERS:
            return None
        names = [f.name for f in fields(cls)]
        # Fields that hold spans must get spans (a check the makers do not make).
        span_fields = tuple(i for i, name in enumerate(names) if name in nodes.SPAN_FIELDS)
        builders.append((cls, size, span_fields, nodes.MAKERS[cls]))
    return builders


#: Runs of at most this many records are checked and built a value at a time.
_SHORT_RUN = 4


def _build_run(values, code, start: int, count: int, builder, span_pools, here, lines) -> bool:
    """Put in ``values`` from ``here`` the ``count`` nodes (or tuples) of one builder
    whose fields follow ``start`` in ``code``, a field at a time; False if a field
    points anywhere but back, before the run (at the pools or at a record built: no
    cycles), or a span field anywhere but at a span (written out, or packed where
    there are ``lines`` to read it)."""
    _, size, span_fields, _ = builder
    refs = code[start : start + size * count].reshape(size, count)
    if size:
        low, top = refs.min(axis=1).tolist(), refs.max(axis=1).tolist()
        first_span, end_of_spans = span_pools
        for i in range(size):
            if i in span_fields:
                if low[i] < first_span or top[i] >= end_of_spans:
                    return False
            elif top[i] >= here:
                return False
    built = _records(builder, lines, values[refs].tolist(), count)
    values[here : here + count] = _np.fromiter(built, object, count)
    return True


def _records(builder, lines, columns: list, count: int) -> Any:
    """The ``count`` records of ``builder`` whose fields are ``columns`` (one list per
    field), as an iterator: tuples, or nodes made by the builder's maker."""
    cls, size, _, make = builder
    if cls is None:
        return zip(*columns) if size else repeat((), count)
    return map(make, repeat(lines, count), *columns)


def _build_few(values, view, start: int, count: int, builder, span_pools, here, lines) -> bool:
    """:func:`_build_run` for a short run, a value at a time (``view``: the code)."""
    cls, size, span_fields, make = builder
    refs = view[start : start + size * count].tolist()
    if refs and max(refs) >= here:
        return False
    first_span, end_of_spans = span_pools
    for i in span_fields:
        for ref in refs[i * count : (i + 1) * count]:
            if ref < first_span or ref >= end_of_spans:
                return False
    fields = list(map(values.item, refs))
    if count == 1:
        values[here] = tuple(fields) if cls is None else make(lines, *fields)
        return True
    columns = [fields[i * count : (i + 1) * count] for i in range(size)]
    for offset, record in enumerate(_records(builder, lines, columns, count)):
        values[here + offset] = record
    return True
