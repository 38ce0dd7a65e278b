"""What ``--help`` tells a new user: which options repeat, and one example per command that the parser takes."""

from __future__ import annotations

import argparse
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
