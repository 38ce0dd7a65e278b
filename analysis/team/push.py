"""Publish a local workspace to object storage for a team to read (``synthscope push``).

The read side, and the index format both sides share, is :mod:`synthscope.core.storage`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from synthscope.core.base import MARKER, utc_now
from synthscope.core.storage import INDEX, Location, clients, read_index
from synthscope.core.workspace import Workspace

# Local working state and derived caches: meaningful only on the machine that wrote them.
# catalog.duckdb names local file paths, so a reader builds its views from the index instead.
LOCAL_ONLY = frozenset({"tmp", "jobs", "indexes", "generations", "catalog.duckdb", "catalog.root"})


@dataclass(frozen=True)
class PushReport:
    url: str
    files: int  # files the new index lists
    uploaded: int  # of those, uploaded by this push
    bytes: int  # uploaded bytes


def local_files(ws: Workspace) -> dict[str, int]:
    """The files a push publishes (relative path -> size): everything but local state and staging leftovers."""
    out = {}
    for path in sorted(ws.root.rglob("*")):
        rel = path.relative_to(ws.root)
        if rel.parts[0] in LOCAL_ONLY or any(p.startswith(".") for p in rel.parts) or not path.is_file():
            continue
        out[rel.as_posix()] = path.stat().st_size
    return out


def push(ws: Workspace, url: str) -> PushReport:
    """Publish ``ws`` to ``url``; readers switch to it whole when the index lands, last.

    A file the previous index already lists with the same size is not sent again
    (artefacts are never rewritten); the settings file always is. Files a new
    index no longer lists are left in place: a reader may still be using them.
    """
    loc = Location.parse(url)
    _, s3 = clients()
    published = read_index(s3, loc) or {}
    files = local_files(ws)
    todo = [rel for rel, size in files.items() if rel == MARKER or published.get(rel) != size]
    for rel in todo:
        s3.upload_file(str(ws.root / rel), loc.bucket, loc.key(rel))
    index = {"format": 1, "pushed_at": utc_now(), "files": files}
    s3.put_object(Bucket=loc.bucket, Key=loc.key(INDEX), Body=json.dumps(index, indent=1).encode(),
                  ContentType="application/json")
    return PushReport(loc.url(), len(files), len(todo), sum(files[rel] for rel in todo))
