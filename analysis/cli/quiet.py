"""Library chatter off on the command line: Hugging Face progress bars and info logs.

Loading a model used to put transformers' "Loading weights" bar and its load report between
synthscope's own progress bar and its results. The libraries read these variables when they are
first imported, which on the command line is later (every heavy import is inside a command), so
setting them in :func:`synthscope.cli.main` is enough; a library already imported (a test that
runs the CLI in its own process) is told directly. A variable the user set is left as it is:
``HF_HUB_DISABLE_PROGRESS_BARS=0 TRANSFORMERS_VERBOSITY=info synthscope scan ...`` shows them all.

synthscope's own progress (the scan's bar, ``[done/total]`` lines) is plain tqdm and print, which
none of these touch; ``TQDM_DISABLE`` is not set for every command for that reason (it would hide
them, and lm-eval's per-request bars during ``eval run``, where they are the progress). The demo sets
it (:func:`only_own_bars`): there lm-eval's bars cut through the demo's step bars. ``serve`` calls
neither: the dashboard's environment stays the operator's.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # huggingface_hub's bars; transformers' ("Loading weights") follow it
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # datasets' (load_from_disk, map)
    "TRANSFORMERS_VERBOSITY": "error",  # load reports, generation-config notes
    "DATASETS_VERBOSITY": "error",
    "HF_HUB_VERBOSITY": "error",
}


def _on(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def quiet_libraries() -> None:
    """Turn the libraries' progress bars and info logs off, unless the user's environment says otherwise."""
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    bars_off = _on(os.environ["HF_HUB_DISABLE_PROGRESS_BARS"])
    level = os.environ["TRANSFORMERS_VERBOSITY"].upper()
    # sentence-transformers logs through the standard library; it has no variable of its own.
    logging.getLogger("sentence_transformers").setLevel(getattr(logging, level, logging.ERROR))
    if "huggingface_hub" in sys.modules and bars_off:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        if bars_off:
            transformers_logging.disable_progress_bar()
        if os.environ["TRANSFORMERS_VERBOSITY"] == "error":
            transformers_logging.set_verbosity_error()
    if "datasets" in sys.modules:
        import datasets

        if _on(os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"]):
            datasets.disable_progress_bars()
        if os.environ["DATASETS_VERBOSITY"] == "error":
            datasets.logging.set_verbosity_error()


@contextmanager
def only_own_bars() -> Iterator[bool]:
    """Every library's tqdm bar off while a command draws its own (the demo's steps); yields whether to hide those too.

    lm-eval draws a bar for every batch of requests ("Running loglikelihood requests"),
    which cuts through the demo's step bars. tqdm has no switch but ``TQDM_DISABLE``, read
    once, when tqdm is first imported: enter this before anything imports it (the command
    line imports it inside commands). The command's own bars pass ``disable`` themselves and
    stay; lm-eval passes it too, and is handed the variable by synthscope.evals.lmeval. A
    user's own ``TQDM_DISABLE`` stands and hides the command's bars as well (tqdm takes any
    non-empty value for true, and so does this). The variable is removed afterwards, for a
    caller that runs the command line in its own process (a test).
    """
    user = os.environ.get("TQDM_DISABLE")
    if user is None:
        os.environ["TQDM_DISABLE"] = "1"
    try:
        yield bool(user)
    finally:
        if user is None:
            os.environ.pop("TQDM_DISABLE", None)
