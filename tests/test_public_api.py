"""``import synthscope``: the curated public API, its version, and offline by default."""

from __future__ import annotations

import os
import subprocess
import sys

import synthscope


def test_every_public_name_imports_and_is_documented() -> None:
    assert synthscope.__all__ == sorted(synthscope.__all__, key=lambda n: (n[0].islower(), n))
    for name in synthscope.__all__:
        value = getattr(synthscope, name)
        if callable(value):
            assert value.__doc__, f"synthscope.{name} has no docstring"
    assert {"Workspace", "DatasetRef", "ingest", "scan", "calibrate", "score", "gate", "compare", "push",
            "online"} <= set(synthscope.__all__)
    assert synthscope.__version__ and synthscope.__version__ != "0+unknown"


def test_importing_synthscope_is_offline_and_online_is_one_switch() -> None:
    code = ("import os, synthscope; print(os.environ.get('HF_HUB_OFFLINE'), os.environ.get('TRANSFORMERS_OFFLINE')); "
            "synthscope.online(); print(os.environ.get('HF_HUB_OFFLINE'))")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE") and k != "SYNTHSCOPE_ONLINE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["1", "1", "None"]


def test_the_api_scans_a_workspace_by_path_and_names(tmp_path) -> None:
    import json

    task = "Write a function that adds two numbers and returns their sum please"
    (tmp_path / "bench.jsonl").write_text(json.dumps({"id": "b1", "question": task, "answer": "a + b"}) + "\n")
    (tmp_path / "syn.jsonl").write_text(json.dumps({"id": "s1", "instruction": task, "output": "x"}) + "\n")
    ws = synthscope.Workspace.init(tmp_path / "ws")
    synthscope.ingest(tmp_path / "ws", tmp_path / "bench.jsonl", name="bench", kind="benchmark")
    synthscope.ingest(ws, tmp_path / "syn.jsonl", name="syn", kind="synthetic")
    summary = synthscope.scan(str(tmp_path / "ws"), "bench", ["syn@v1"], overrides={"stages": ["exact"]})
    verdicts = ws.query("SELECT item_id, verdict FROM latest_verdicts WHERE scan_id = ?", [summary.scan_id])
    assert verdicts.to_dict("records") == [{"item_id": "b1", "verdict": "exact"}]
