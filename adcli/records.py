"""``@record``: a dataclass whose methods come from a generated module, for start-up.

``@dataclass`` writes each class's ``__init__``, ``__repr__``, ``__eq__``,
``__hash__`` and (frozen) ``__setattr__``/``__delattr__`` as source text and
compiles it, every time the class is made: the score or so of dataclasses that
``adcli eval`` imports cost about 20 ms of its start-up that way. ``@record(...)``
takes the same options (``frozen``, ``eq``, ``slots``) and makes the same class,
a dataclass (``fields()``, ``replace()`` and ``__match_args__`` work), with
methods that do what ``@dataclass``'s do; their source is written out once in
:mod:`adcli._records` (``python -m adcli.records`` regenerates it, a test keeps
it in step), so Python's bytecode cache applies. A class that module does not
describe as it now is gets its methods compiled from the same source here.

This module imports nothing of adcli's, so every layer can use it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, FrozenInstanceError
from reprlib import recursive_repr
from typing import Any


class _Factory:
    """The default an ``__init__`` shows for a field with a ``default_factory``."""

    def __repr__(self) -> str:
        return "<factory>"


#: the default of a field with a ``default_factory`` in ``__init__`` (the factory runs)
FACTORY = _Factory()

#: every record class, in the order made, with its shape (what the generated module describes)
RECORDS: dict[type, tuple] = {}


def record(*, frozen: bool = False, eq: bool = True, slots: bool = False):
    """``@dataclass(frozen=..., eq=..., slots=...)``, with the methods from :mod:`adcli._records`."""

    def make(cls: type) -> type:
        return _make(cls, frozen, eq, slots)

    return make


def _key(cls: type) -> str:
    """The name a record's functions carry in the generated module (``values_Output``)."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}_{cls.__name__}"


def _shape(cls: type, frozen: bool, eq: bool, slots: bool) -> tuple:
    """What the methods depend on: the options, whether the class has its own ``__hash__``
    (as ``@dataclass`` tells), and per field its name, whether it has a default or a
    factory, and whether it is in the repr, the comparison and the hash."""
    class_hash = cls.__dict__.get("__hash__", MISSING)
    own_hash = not (class_hash is MISSING or (class_hash is None and "__eq__" in cls.__dict__))
    per_field = tuple(
        (
            f.name,
            "factory"
            if f.default_factory is not MISSING
            else "default"
            if f.default is not MISSING
            else "",
            f.repr,
            f.compare,
            f.compare if f.hash is None else f.hash,
        )
        for f in dataclasses.fields(cls)
    )
    return (frozen, eq, slots, own_hash, per_field)


def _make(cls: type, frozen: bool, eq: bool, slots: bool) -> type:
    cls = dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
    fields = dataclasses.fields(cls)
    if any(f.kw_only is True for f in fields):
        raise TypeError(f"{cls.__qualname__}: a record has no keyword-only fields")
    if slots:
        namespace = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
        for f in fields:
            namespace.pop(f.name, None)  # a default lives in __init__, not on the class
        namespace["__slots__"] = tuple(f.name for f in fields)
        made = type(cls.__name__, cls.__bases__, namespace)
        made.__qualname__ = cls.__qualname__
        cls = made
    shape = _shape(cls, frozen, eq, slots)
    key = _key(cls)
    from adcli import _records

    namespace = vars(_records)
    if namespace.get("SHAPES", {}).get(key) != shape:
        namespace = {}
        exec(source(cls, shape), namespace)  # noqa: S102 - our own code, from field names
    namespace.update(
        _object_setattr=object.__setattr__,
        _object_delattr=object.__delattr__,
        FrozenInstanceError=FrozenInstanceError,
        FACTORY=FACTORY,
    )
    namespace[f"_cls_{key}"] = cls
    namespace[f"_names_{key}"] = tuple(f.name for f in fields)
    for f in fields:
        if f.default_factory is not MISSING:
            namespace[f"_factory_{key}_{f.name}"] = f.default_factory
    # As @dataclass: a method the class writes itself is kept (a frozen one's
    # __setattr__ and __delattr__ may not be written).
    if "__init__" not in cls.__dict__:
        init = namespace[f"_init_{key}"]
        init.__defaults__ = _defaults(fields) or None
        init.__annotations__ = {**{f.name: f.type for f in fields}, "return": None}
        _attach(cls, "__init__", init)
    if "__repr__" not in cls.__dict__:
        _attach(cls, "__repr__", recursive_repr()(namespace[f"_repr_{key}"]))
    if eq and "__eq__" not in cls.__dict__:
        _attach(cls, "__eq__", namespace[f"_eq_{key}"])
    if frozen:
        for name in ("__setattr__", "__delattr__"):
            if name in cls.__dict__:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
        _attach(cls, "__setattr__", namespace[f"_setattr_{key}"])
        _attach(cls, "__delattr__", namespace[f"_delattr_{key}"])
    own_hash = shape[3]
    if eq and not own_hash:  # as @dataclass: frozen ones hash their fields, others none
        if frozen:
            _attach(cls, "__hash__", namespace[f"_hash_{key}"])
        else:
            type.__setattr__(cls, "__hash__", None)
    if frozen and slots:  # so copy and pickle get round the frozen __setattr__
        type.__setattr__(cls, "__getstate__", _getstate)
        type.__setattr__(cls, "__setstate__", _setstate)
    RECORDS[cls] = shape
    return cls


def _getstate(self: Any) -> list:
    return [getattr(self, f.name) for f in dataclasses.fields(self)]


def _setstate(self: Any, state: list) -> None:
    for f, value in zip(dataclasses.fields(self), state):
        object.__setattr__(self, f.name, value)


def _defaults(fields: tuple) -> tuple:
    """The trailing defaults of ``__init__`` (``FACTORY`` where a factory makes it)."""
    out: list[Any] = []
    for f in fields:
        if f.default_factory is not MISSING:
            out.append(FACTORY)
        elif f.default is not MISSING:
            out.append(f.default)
        elif out:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
    return tuple(out)


def _attach(cls: type, name: str, fn: Any) -> None:
    fn.__name__ = name
    fn.__qualname__ = f"{cls.__qualname__}.{name}"
    fn.__module__ = cls.__module__
    type.__setattr__(cls, name, fn)


def source(cls: type, shape: tuple) -> str:
    """The source of one record's functions (named after :func:`_key`)."""
    frozen, eq, _, _, per_field = shape
    key = _key(cls)
    names = [name for name, *_ in per_field]
    lines = [f"def _init_{key}(self{''.join(f', {n}' for n in names)}):"]
    for name, default, *_ in per_field:
        value = name
        if default == "factory":
            value = f"_factory_{key}_{name}() if {name} is FACTORY else {name}"
        if frozen:
            lines.append(f'    _object_setattr(self, "{name}", {value})')
        else:
            lines.append(f"    self.{name} = {value}")
    if not names:
        lines.append("    pass")
    shown = ", ".join(f"{name}={{self.{name}!r}}" for name, _, in_repr, *_ in per_field if in_repr)
    lines += [
        "",
        "",
        f"def _repr_{key}(self):",
        f'    return f"{{self.__class__.__qualname__}}({shown})"',
    ]
    if eq:
        compared = "".join(f"self.{name}," for name, _, _, c, _ in per_field if c)
        other = "".join(f"other.{name}," for name, _, _, c, _ in per_field if c)
        lines += [
            "",
            "",
            f"def _eq_{key}(self, other):",
            "    if other.__class__ is self.__class__:",
            f"        return ({compared}) == ({other})",
            "    return NotImplemented",
        ]
    if eq and frozen:
        hashed = "".join(f"self.{name}," for name, *_, h in per_field if h)
        lines += ["", "", f"def _hash_{key}(self):", f"    return hash(({hashed}))"]
    if frozen:
        for what, verb, args in (
            ("setattr", "assign to", "name, value"),
            ("delattr", "delete", "name"),
        ):
            lines += [
                "",
                "",
                f"def _{what}_{key}(self, {args}):",
                f"    if type(self) is _cls_{key} or name in _names_{key}:",
                f'        raise FrozenInstanceError(f"cannot {verb} field {{name!r}}")',
                f"    super(_cls_{key}, self).__{what}__({args})",
            ]
    return "\n".join(lines) + "\n"


_HEADER = (
    '"""The methods of the records (see :mod:`adcli.records`): generated by\n'
    "``python -m adcli.records``, do not edit. The names they use are set in this\n"
    'module by ``records._make``."""\n'
    "# ruff: noqa: F821\n"
    "# fmt: off\n\n"
    "#: each record's options and fields (see records._shape): checked before use\n"
)


def module_source(records: dict[type, tuple]) -> str:
    """The source of :mod:`adcli._records` for ``records`` (class -> shape), by name."""
    by_key = {}
    for cls, shape in records.items():
        if _key(cls) in by_key:
            raise ValueError(f"two records are called {_key(cls)}")
        by_key[_key(cls)] = cls, shape
    chosen = [by_key[key] for key in sorted(by_key)]
    parts = [_HEADER, "SHAPES = {\n"]
    parts += [f'    "{_key(cls)}": {shape!r},\n' for cls, shape in chosen]
    parts.append("}\n")
    parts += ["\n\n" + source(cls, shape) for cls, shape in chosen]
    return "".join(parts)


def generated_source() -> str:
    """What :mod:`adcli._records` should say: the records of every module of adcli
    (all are imported, so a new record cannot be missed)."""
    import importlib
    import pkgutil

    import adcli

    for module in pkgutil.walk_packages(adcli.__path__, "adcli."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    return module_source({c: s for c, s in RECORDS.items() if c.__module__.startswith("adcli.")})


if __name__ == "__main__":  # regenerate adcli/_records.py
    import importlib
    from pathlib import Path

    made = importlib.import_module("adcli.records")  # not this __main__ copy
    Path(__file__).with_name("_records.py").write_text(made.generated_source())
