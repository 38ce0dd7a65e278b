"""The machine's cache folder: what synthscope derives once and reuses across workspaces.

``$SYNTHSCOPE_CACHE``, else ``$XDG_CACHE_HOME/synthscope`` (``~/.cache/synthscope``). It holds
things that depend only on their inputs (a trained demo model, a static model distilled from an
embedding model), each named by a hash or key of those inputs, so a stale entry is never picked up
and deleting the folder only costs the time to rebuild. Tests point it at a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    root = os.environ.get("SYNTHSCOPE_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "synthscope"
