"""synthscope: prove that synthetic training data is uncontaminated, accurate, unbiased and private.

The Python API (the CLI ``synthscope`` and the dashboard call the same engine)::

    import synthscope

    ws = synthscope.Workspace.init("ws")
    synthscope.ingest(ws, "train.jsonl", name="my-synth", kind="synthetic")
    synthscope.ingest(ws, "humaneval.jsonl", name="humaneval", kind="benchmark")
    summary = synthscope.scan(ws, "humaneval", ["my-synth"])
    ws.query("SELECT verdict, count(*) FROM latest_verdicts GROUP BY verdict")

Offline by default: importing synthscope keeps Hugging Face libraries off the network;
:func:`online` (or ``SYNTHSCOPE_ONLINE=1``) is the one switch that lets them reach the hub.
"""

from importlib.metadata import PackageNotFoundError, version

from synthscope.api import calibrate, compare, gate, ingest, online, push, scan, score
from synthscope.core import hub
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError
from synthscope.datasets.ingest import IngestError, IngestOptions
from synthscope.scorecard.policy import PolicyError

hub.configure(None)  # offline unless SYNTHSCOPE_ONLINE=1; see online()

try:
    __version__ = version("synthscope")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = [
    "DatasetRef", "IngestError", "IngestOptions", "PolicyError", "Workspace", "WorkspaceError", "__version__",
    "calibrate", "compare", "gate", "ingest", "online", "push", "scan", "score",
]
