"""What ``--help`` tells a new user: which options repeat, and one example per command that the parser takes."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator

from synthscope.cli import build_parser


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command and subcommand (``("eval", "run")``) with its parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from commands(sub, (*path, name))


def test_the_walk_finds_every_command() -> None:
    found = {" ".join(path) for path, _ in commands(build_parser())}
    assert {"init", "ingest", "scan", "sql", "serve", "run", "run add", "eval", "eval mink", "compare", "gate",
            "push"} <= found


def test_every_option_that_repeats_says_so() -> None:
    repeating = [(path, action) for path, parser in commands(build_parser()) for action in parser._actions
                 if isinstance(action, argparse._AppendAction)]
    assert len(repeating) >= 15  # scan's --synthetic and --benchmark among them
    for path, action in repeating:
        assert "repeat" in (action.help or ""), f"synthscope {' '.join(path)} {action.option_strings[0]}"


def test_every_command_has_one_example_the_parser_takes() -> None:
    for path, parser in commands(build_parser()):
        name = f"synthscope {' '.join(path)}"
        lines = parser.format_help().splitlines()
        assert [line for line in lines if line.strip() == "example:"] == ["example:"], name
        example = [line for line in lines[lines.index("example:") + 1:] if line.strip()]
        assert len(example) == 1 and example[0].startswith(f"  {name} "), f"{name}: {example}"
        words = shlex.split(example[0])
        for redirect in {">", "|"} & set(words):  # `synthscope policy > policy.yaml`: the shell's part
            words = words[:words.index(redirect)]
        try:
            args = build_parser().parse_args(words[1:])
        except SystemExit:
            raise AssertionError(f"{name}: the parser refuses its example {example[0].strip()}") from None
        assert args.func.__name__ == "cmd_" + "_".join(words[1:3] if path[0] in {"run", "eval"} else words[1:2])
