"""What keeps ``adcli eval`` quick to start: generated code that Python's bytecode
cache covers, kept in step with what it is generated from."""

from __future__ import annotations

import copy
import dataclasses
import inspect
from dataclasses import dataclass, field, fields
from pathlib import Path

import pytest

from adcli import _records, records
from adcli.lang import _node_makers, nodes
from adcli.records import record


def test_the_node_makers_module_is_what_the_node_classes_generate():
    committed = Path(_node_makers.__file__).read_text(encoding="utf-8")
    assert committed == nodes.makers_source(nodes.NODE_CLASSES), (
        "adcli/lang/_node_makers.py is stale: run python -m adcli.lang.nodes"
    )


def test_the_node_classes_use_the_generated_functions():
    for cls in nodes.NODE_CLASSES:
        assert cls.__init__ is getattr(_node_makers, f"_init_{cls.__name__}")
        assert nodes.MAKERS[cls] is getattr(_node_makers, f"_make_{cls.__name__}")


def test_classes_the_generated_module_does_not_match_get_their_functions_compiled():
    @nodes.node
    class Pair(nodes.Node):
        left: int
        right: int
        span: object

    makers_before = dict(nodes.MAKERS)
    try:
        nodes._fast_inits([Pair])
        pair = Pair(1, 2, nodes.packed(0, 3))
        assert (pair.left, pair.right) == (1, 2)
        lines = nodes.Lines("f", "abc\n")
        made = nodes.MAKERS[Pair](lines, 1, 2, nodes.packed(0, 3))
        assert made == Pair(1, 2, lines.span(nodes.packed(0, 3)))
        assert not hasattr(_node_makers, "_init_Pair")
    finally:
        nodes.MAKERS.clear()
        nodes.MAKERS.update(makers_before)


# --------------------------------------------------------------------------- records
def test_the_records_module_is_what_the_records_generate():
    committed = Path(_records.__file__).read_text(encoding="utf-8")
    assert committed == records.generated_source(), (
        "adcli/_records.py is stale: run python -m adcli.records"
    )


def test_the_records_use_the_generated_functions():
    records.generated_source()  # every module with records imported
    made = [c for c in records.RECORDS if c.__module__.startswith("adcli.")]
    assert len(made) >= 15
    for cls in made:
        assert cls.__init__ is getattr(_records, f"_init_{records._key(cls)}")


def twins(options: dict):
    """The same class made by @dataclass and by @record, with these options (``own``:
    a class with its own ``__repr__`` and ``__eq__``)."""
    options = dict(options)
    own = options.pop("own", False)

    def body():
        class Thing:
            """A thing."""

            name: str
            count: int = 0
            tags: list = field(default_factory=list)
            note: object = field(default=None, repr=False, compare=False)
            weight: float = field(default=1.0, hash=False)

            def describe(self) -> str:
                return f"{self.name}:{self.count}"

            if own:

                def __repr__(self) -> str:
                    return f"<{self.name}>"

                def __eq__(self, other) -> bool:
                    return getattr(other, "name", None) == self.name

        return Thing

    return dataclass(**options)(body()), record(**options)(body())


def same_hash(a, b):
    try:
        return hash(a) == hash(b)
    except TypeError as exc:  # unhashable: a list among the fields, or not frozen
        return str(exc)


OPTIONS = [
    {},
    {"frozen": True},
    {"frozen": True, "slots": True},
    {"frozen": True, "slots": True, "eq": False},
    {"slots": True},
    {"eq": False},
    {"own": True},
    {"own": True, "frozen": True},
]


@pytest.mark.parametrize("options", OPTIONS, ids=repr)
def test_a_record_behaves_as_the_dataclass_it_replaces(options):
    by_dataclass, by_record = twins(options)
    assert str(inspect.signature(by_record)) == str(inspect.signature(by_dataclass))
    assert [(f.name, f.repr, f.compare, f.hash) for f in fields(by_record)] == [
        (f.name, f.repr, f.compare, f.hash) for f in fields(by_dataclass)
    ]
    assert by_record.__match_args__ == by_dataclass.__match_args__
    assert hasattr(by_record, "__slots__") == hasattr(by_dataclass, "__slots__")
    assert (by_record.__hash__ is None) == (by_dataclass.__hash__ is None)

    def instances(cls):
        a = cls("a", 2, ["x"], note="n")
        return a, cls("a", 2, ["x"], note="other"), cls("a", 3), cls("b")

    for made, expected in zip(instances(by_record), instances(by_dataclass)):
        assert repr(made) == repr(expected)
        assert made.describe() == expected.describe()
        assert made.tags == expected.tags and made.tags is not by_record("z").tags
    ours, theirs = instances(by_record), instances(by_dataclass)
    for i in range(4):
        for j in range(4):
            assert (ours[i] == ours[j]) == (theirs[i] == theirs[j])
            if options.get("eq", True):
                assert same_hash(ours[i], ours[j]) == same_hash(theirs[i], theirs[j])
    assert (ours[0] == "a") == (theirs[0] == "a")
    if by_dataclass.__hash__ is None:
        with pytest.raises(TypeError):
            hash(ours[0])

    for thing, cls in ((ours[0], by_record), (theirs[0], by_dataclass)):
        changed = dataclasses.replace(thing, count=9)
        assert (type(changed), changed.count, changed.name) == (cls, 9, "a")
        assert copy.copy(thing) == thing or not options.get("eq", True)
        assert copy.deepcopy(thing).tags == ["x"]
    if options.get("frozen"):
        for thing in (ours[0], theirs[0]):
            with pytest.raises(
                dataclasses.FrozenInstanceError, match="cannot assign to field 'count'"
            ):
                thing.count = 1
            with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'name'"):
                del thing.name
    else:
        ours[0].count = theirs[0].count = 5
        assert ours[0].count == theirs[0].count == 5


def test_a_record_shows_itself_once_inside_itself():
    shown = []
    for cls in twins({}):
        thing = cls("loop")
        thing.tags.append(thing)
        shown.append(repr(thing))
    assert shown[0] == shown[1]
    assert shown[1].endswith("Thing(name='loop', count=0, tags=[...], weight=1.0)")


def test_the_grammar_tables_module_is_what_the_grammar_generates():
    from adcli.lang import _grammar_tables, parser

    assert _grammar_tables.GRAMMAR == parser.grammar_text(), (
        "adcli/lang/_grammar_tables.py is stale: run python -m adcli.lang.parser"
    )
    if _grammar_tables.DATA["lark"] != parser._lark_version():
        pytest.skip(
            f"the tables were generated with Lark {_grammar_tables.DATA['lark']}, and Lark "
            f"{parser._lark_version()} is installed: it may number its states otherwise"
        )
    committed = Path(_grammar_tables.__file__).read_text(encoding="utf-8")
    assert committed == parser.tables_source(), (
        "adcli/lang/_grammar_tables.py is stale: run python -m adcli.lang.parser"
    )


def test_the_shipped_grammar_needs_neither_lark_nor_the_cache(tmp_path, monkeypatch):
    from adcli.lang import _grammar_tables, parser

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(parser, "_tables", None)
    monkeypatch.setattr(parser, "_compile_grammar", None)  # must not be needed
    made = parser.parse(SAMPLE, "s.ad")
    tables = parser._get_tables()
    assert tables.data["actions"] is _grammar_tables.DATA["actions"]
    assert not list(tmp_path.rglob("grammar-*"))  # nothing read or written there
    # The same trees and spans as from the same tables read as a cache file holds them
    # (checked, their pickers compiled, their leading spaces worked out).
    monkeypatch.setattr(parser, "_tables", parser._Tables({**tables.data}))
    assert parser._tables.spaces == tables.spaces
    again = parser.parse(SAMPLE, "s.ad")
    assert again == made
    assert [getattr(n, "span", None) for n in nodes.walk(again)] == [
        getattr(n, "span", None) for n in nodes.walk(made)
    ]


def test_generated_tables_of_another_grammar_are_not_used(tmp_path, monkeypatch):
    from adcli.lang import parser

    class Stale:
        GRAMMAR = "start: other\n"

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(parser, "_tables", None)
    monkeypatch.setattr(parser, "_made_tables", lambda: Stale)
    assert parser.parse("x = 1 + 2", "s.ad").statements[0].value.op == "+"
    assert list(tmp_path.rglob("grammar-*.json"))  # compiled, and kept in the cache


SAMPLE = (
    "g(a) {\n  if a > 0 { return a } else if a < 0 { return -a } else { return }\n}\n"
    "x = tensor([[1.0, 2.0], [3.0, 4.0]])\nv = x[1:, ::2] + max(x, 2.5, axis=0) - [1, none][0]\n"
    'u, w = w, u\nfor i in range(3) { while false { break }\n continue }\nassert v != 0, "w"\n'
)
