"""The contamination grid: only the benchmark × synthetic pairs a scan ran, each label drawn in full."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa

from synthscope.contamination import results
from synthscope.core.workspace import Workspace
from synthscope.dashboard.components.grid import CELL_PAD, cell_label, grid_cells, heatmap, text_px

CONTAMINATION = "app_pages/contamination.py"


def scanned_pairs(ws: Path) -> set[tuple[str, str]]:
    """Every (benchmark, synthetic) pair the workspace's scans ran, as their manifests record them."""
    pairs = set()
    for path in (ws / "scans").glob("*/manifest.json"):
        scan = json.loads(path.read_text(encoding="utf-8"))
        pairs |= {(f"{scan['benchmark']}@{scan['benchmark_version']}", s["synthetic"]) for s in scan["summary"]}
    return pairs


def fake_grid() -> pd.DataFrame:
    """Two benchmarks, each scanned against its own synthetic sets (the demo's HumanEval and quiz, say)."""
    rows = [("humaneval@v1", "code-instruct@v1", 164, 32), ("humaneval@v1", "support-synth@v1", 164, 0),
            ("quiz@v1", "quiz-synth@v1", 200, 100),
            ("quiz@v1", "a-synthetic-set-with-a-rather-long-name-for-a-label@v12", 200, 3)]
    frame = pd.DataFrame(rows, columns=["benchmark", "synthetic", "items", "contaminated"])
    counts = dict.fromkeys(["confirmed", "likely", "candidate", "question_seen", "answer_seen", "exact",
                            "near_duplicate", "semantic", "judged", "dirty", "partial"], 0)
    return frame.assign(**counts, expected_false=0.0, contaminated_share=frame["contaminated"] / frame["items"],
                        scan_id="s")


def spec_of(chart) -> dict:
    return chart.to_dict() if hasattr(chart, "to_dict") else json.loads(chart.proto.spec)


def check_full_labels(spec: dict, labels: list[str]) -> None:
    """Every axis and header label drawn whole (no limit, none dropped for overlap), cells as wide as their text."""
    layers = spec["spec"]["layer"]
    (axis,) = {json.dumps(layer["encoding"]["y"]["axis"], sort_keys=True) for layer in layers}
    axis = json.loads(axis)
    assert axis["labelLimit"] == 0 and axis["labelOverlap"] is False
    header = spec["facet"]["row"]["header"]
    assert header["labelLimit"] == 0 and header["labelAngle"] == 0
    (text,) = [layer for layer in layers if layer["mark"]["type"] == "text"]
    assert text["mark"]["limit"] == 0 and text["encoding"]["text"]["field"] == "label"
    assert spec["spec"]["width"] >= text_px(labels) + CELL_PAD
    assert spec["spec"]["height"] == {"step": 40}
    assert spec["resolve"]["scale"]["y"] == "independent"  # a benchmark lists only its own scanned sets
    assert spec["usermeta"]["embedOptions"]["renderer"] == "svg"  # labels are text in the page


def test_cells_are_the_scanned_pairs_only_with_full_labels() -> None:
    grid = fake_grid()
    cells = grid_cells(grid)
    assert list(zip(cells["benchmark"], cells["synthetic"], strict=True)) == sorted(
        zip(grid["benchmark"], grid["synthetic"], strict=True))  # 4 cells, not the 2 × 4 cross product
    assert list(cells["label"]) == ["32 / 164 (19.5%)", "0 / 164 (0.0%)",
                                    "3 / 200 (1.5%)", "100 / 200 (50.0%)"]
    spec = heatmap(grid).to_dict()
    (data,) = spec["datasets"].values()
    assert [(d["benchmark"], d["synthetic"]) for d in data] == list(zip(cells["benchmark"], cells["synthetic"],
                                                                         strict=True))
    check_full_labels(spec, list(cells["label"]))


def test_cell_label_is_whole() -> None:
    assert cell_label(100, 200, 0.5) == "100 / 200 (50.0%)"
    assert cell_label(1234, 10000, 0.1234) == "1234 / 10000 (12.3%)"


def test_the_page_grid_shows_what_the_scans_ran(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, CONTAMINATION)
    (chart,) = at.get("vega_lite_chart")
    spec = spec_of(chart)
    (data,) = [pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets]
    pairs = set(zip(data["benchmark"], data["synthetic"], strict=True))
    assert pairs == scanned_pairs(demo_ws) and len(pairs) == len(data)  # one cell per scanned pair, no other
    grid = results.grid(Workspace.open(demo_ws)).set_index(["benchmark", "synthetic"])
    for row in data.itertuples():
        counted = grid.loc[(row.benchmark, row.synthetic)]
        assert row.label == f"{counted['contaminated']} / {counted['items']} ({counted['contaminated_share']:.1%})"
    check_full_labels(spec, list(data["label"]))
