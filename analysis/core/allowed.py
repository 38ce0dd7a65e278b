"""The folders the operator lets the dashboard read, and the check that a typed path lies in one.

``synthscope serve --import-dir DIR --task-dir DIR`` (each repeatable) puts them in the
server's environment (:data:`IMPORT_DIRS_ENV`, :data:`TASK_DIRS_ENV`), where a browser
user cannot change them. Without an import folder the dashboard reads no path at all.
A path is checked after symlinks and ``..`` are resolved, and a refusal names only
what the user typed; :func:`redact` keeps other server paths out of messages shown in
the dashboard.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

IMPORT_DIRS_ENV = "SYNTHSCOPE_IMPORT_DIRS"
TASK_DIRS_ENV = "SYNTHSCOPE_TASK_DIRS"
HIDDEN = "(a server path)"

# An absolute POSIX path in a message: not preceded by a word character, ':' or '/' (so URLs stay whole).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/[^\s'\"`,;:()\[\]{}<>|]*")


class NotAllowed(Exception):
    """A typed path is not in an allowed folder (or is nothing there); the message names only what was typed."""


def folders_from_env(variable: str) -> list[Path]:
    """The folders in ``variable`` (``os.pathsep``-separated), resolved; empty when it is unset."""
    return [Path(p).resolve() for p in os.environ.get(variable, "").split(os.pathsep) if p.strip()]


def to_env(folders: Iterable[Path]) -> str:
    return os.pathsep.join(str(f) for f in folders)


def is_inside(path: Path, folders: Iterable[Path]) -> bool:
    """Whether ``path``, with symlinks and ``..`` resolved, lies in one of ``folders`` (resolved too)."""
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(os.path.realpath(f)) for f in folders)


def confine(typed: str, folders: Sequence[Path]) -> Path:
    """The existing file or folder ``typed`` names inside ``folders``, resolved; else :class:`NotAllowed`.

    An absolute path must resolve (symlinks and ``..`` included) into one of ``folders``; a
    relative one is looked up in each folder in turn. A path outside and a path that does not
    exist get the same answer, so the check tells nothing about the rest of the machine.
    """
    if not folders:
        raise NotAllowed("reading paths on this machine is off: the operator names import folders with "
                         "`synthscope serve --import-dir DIR`")
    try:
        path = Path(typed)
        candidates = [path] if path.is_absolute() else [folder / path for folder in folders]
        for candidate in candidates:
            try:
                real = candidate.resolve(strict=True)
            except (OSError, RuntimeError):  # missing, unreadable, or a symlink loop
                continue
            if any(real.is_relative_to(folder.resolve()) for folder in folders):
                return real
    except ValueError:  # e.g. an embedded NUL byte
        pass
    raise NotAllowed(f"{typed!r} is not a file or folder in the import folders")


def redact(text: str, shown: Iterable[Path]) -> str:
    """``text`` with every absolute path outside the ``shown`` folders replaced by :data:`HIDDEN`."""
    folders = list(shown)

    def hide(match: re.Match[str]) -> str:
        return match.group(0) if is_inside(Path(match.group(0)), folders) else HIDDEN

    return _ABSOLUTE_PATH.sub(hide, text)
