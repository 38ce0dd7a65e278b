"""How far a demo workspace got: ``demo/state.json``, written after every step.

The demo is built in two halves (:mod:`synthscope.demo.build`). The first half
(datasets and the first scan) is assembled in a staging folder and renamed into
place, so a demo workspace that exists has it whole. The second half (calibration,
scorecards, tiny models and their evaluations) runs in the workspace, step by step,
often as a background job while the dashboard is already open; this file says which
of its steps are done, which job is doing the rest, and how long each step took.

A demo workspace built before this file existed has no state and is complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE = Path("demo") / "state.json"


@dataclass
class DemoState:
    """The progress of one demo workspace's build."""

    steps: list[str]  # the second half's steps, in order
    done: list[str] = field(default_factory=list)  # those finished
    job: str | None = None  # the background job building the rest, when one was started
    seconds: dict[str, float] = field(default_factory=dict)  # per step, both halves
    error: str | None = None  # why the last attempt at the rest stopped

    @property
    def complete(self) -> bool:
        return all(step in self.done for step in self.steps)

    @property
    def pending(self) -> list[str]:
        return [step for step in self.steps if step not in self.done]


def read_state(root: Path) -> DemoState | None:
    """The state of the demo workspace at ``root``; None when it has none (built whole, or not a demo)."""
    path = Path(root) / STATE
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return DemoState(**{k: v for k, v in data.items() if k in DemoState.__dataclass_fields__})


def write_state(root: Path, state: DemoState) -> None:
    """Replace the state file in one rename: a reader never sees half of it."""
    path = Path(root) / STATE
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")
    os.replace(staging, path)
