"""Run a bench module's ``main`` in the order ``synthscope scan`` starts: the workers' fork server, then the imports.

``python -m bench.launch bench.ngram_bench --child scan ... --workers 2`` starts the fork
server (:func:`synthscope.compute.engine.start_fork_server`) when ``--workers`` asks for more
than one process, as the CLI does before importing the scan, so a measured child pays the
workers' start-up the way a user's command does.
"""

from __future__ import annotations

import importlib
import sys


def run(argv: list[str]) -> int:
    module, args = argv[0], argv[1:]
    if "--workers" in args and int(args[args.index("--workers") + 1]) > 1:
        from synthscope.compute.engine import start_fork_server

        start_fork_server()
    return importlib.import_module(module).main(args)


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
