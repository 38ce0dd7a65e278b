"""Arrow schemas of the workspace's artefacts and their empty views (synthscope.core.schemas)."""

from __future__ import annotations

import math

import pandas as pd
import pyarrow as pa

from synthscope.core import schemas
from synthscope.core.workspace import Workspace


def test_to_table_casts_and_turns_every_kind_of_missing_into_null() -> None:
    schema = pa.schema([("a", pa.int64()), ("b", pa.string()), ("c", pa.list_(pa.int32()))])
    frame = pd.DataFrame({"a": [1, None], "b": [pd.NA, "x"], "c": [[1, 2], []]})
    table = schemas.to_table(frame, schema)
    assert table.schema == schema
    assert table.to_pylist() == [{"a": 1, "b": None, "c": [1, 2]}, {"a": None, "b": "x", "c": []}]
    assert schemas.to_table(pd.DataFrame({"a": [math.nan]}), schema).to_pylist() == [{"a": None, "b": None, "c": None}]


def test_every_view_exists_in_an_empty_workspace_with_its_columns(tmp_path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    for name in schemas.BASE_VIEWS:
        assert ws.query(f"SELECT count(*) AS n FROM {name}")["n"].iloc[0] == 0
        assert list(ws.query(f"SELECT * FROM {name} LIMIT 0").columns) == schemas.EMPTY[name]().column_names
    for name in schemas.DERIVED_VIEWS:
        assert ws.query(f"SELECT count(*) AS n FROM {name}")["n"].iloc[0] == 0
