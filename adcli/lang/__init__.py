"""The ``.ad`` language: syntax tree, parser, name resolution, builtins and
the interpreter that evaluates programs onto the engine. It never prints."""
