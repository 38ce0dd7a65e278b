"""Join the benchmark sections (``bench/reports/*.md``) into ``BENCHMARKS.md``.

Run by ``make bench`` after the benchmarks; each section says how to reproduce itself.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HEADER = """# Benchmarks

Written by `make bench`, which runs each benchmark below and joins their reports
(`bench/reports/`). Every ratio compares two things measured in the same run on the
same machine and data; each section gives the command that reproduces it.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sections", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    parts = [HEADER] + [p.read_text(encoding="utf-8").strip() + "\n" for p in args.sections]
    args.out.write_text("\n".join(parts), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
