"""What keeps ``adcli eval`` quick to start: generated code that Python's bytecode
cache covers, kept in step with what it is generated from."""

from __future__ import annotations

from pathlib import Path

from adcli.lang import _node_makers, nodes


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
