"""Offline by default: keep Hugging Face libraries off the network unless the user opts in.

Call :func:`configure` before importing ``datasets``, ``transformers``,
``huggingface_hub`` or ``lm_eval``: they read these variables at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def online_requested() -> bool:
    return os.environ.get("SYNTHSCOPE_ONLINE", "").lower() in {"1", "true", "yes"}


def is_online() -> bool:
    """Whether the online switch is on now: :func:`configure` last ran online.

    Read from ``HF_HUB_OFFLINE`` rather than remembered, so code that only sees the
    environment (a job's child process, :mod:`synthscope.compute.models`) agrees with it.
    """
    return os.environ.get("HF_HUB_OFFLINE") != "1"


def configure(workspace_root: Path | None = None, online: bool | None = None) -> bool:
    """Set the Hugging Face environment; returns whether the hub may be reached.

    Offline (the default) sets ``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE`` and
    ``TRANSFORMERS_OFFLINE``. Online (``--online`` or ``SYNTHSCOPE_ONLINE=1``)
    clears them. Without a user-set ``HF_HOME``, caches go to ``indexes/hf/`` inside the
    workspace so nothing is written elsewhere on the machine.
    """
    if online is None:
        online = online_requested()
    for var in OFFLINE_VARIABLES:
        if online:
            os.environ.pop(var, None)
        else:
            os.environ[var] = "1"
    if workspace_root is not None and "HF_HOME" not in os.environ:
        os.environ["HF_HOME"] = str(Path(workspace_root).resolve() / "indexes" / "hf")
    return online
