"""The Datasets page's import form: paths only inside the operator's import folders, lm-eval tasks by name only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from synthscope.core.allowed import HIDDEN, IMPORT_DIRS_ENV, TASK_DIRS_ENV
from synthscope.core.workspace import Workspace
from tests.fixtures.markdown import render

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
DATASETS = "app_pages/datasets.py"
SECRET = 'cookie_secret = "s3cr3t-cookie"\nclient_secret = "s3cr3t-client"\n'


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A workspace, an import folder with one dataset, and Streamlit secrets beside it (not in it)."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv(IMPORT_DIRS_ENV, raising=False)
    monkeypatch.delenv(TASK_DIRS_ENV, raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    secrets = tmp_path / ".streamlit" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_text(SECRET)
    imports = tmp_path / "imports"
    imports.mkdir()
    (imports / "good.jsonl").write_text(json.dumps({"prompt": "fine", "answer": "yes"}) + "\n")
    (imports / "secrets.csv").symlink_to(secrets)
    ws = Workspace.init(tmp_path / "ws")
    monkeypatch.setenv("SYNTHSCOPE_WORKSPACE", str(ws.root))
    return {"ws": ws.root, "imports": imports, "secrets": secrets, "root": tmp_path}


def datasets_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(DATASETS).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def submit(at: AppTest, name: str, **fields: str) -> AppTest:
    """Fill the import form (``path``, ``task``, ``format``) and press Import."""
    at.text_input(key="imp_name").input(name)
    at.selectbox(key="imp_kind").select("reference")
    for key, value in fields.items():
        if key == "format":
            at.selectbox(key="imp_format").select(value)
        else:
            at.text_input(key=f"imp_{key}").input(value)
    (button,) = [b for b in at.button if b.label == "Import"]
    at = button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown_text(at: AppTest) -> str:
    return "\n".join(e.value for kind in (at.error, at.success, at.warning, at.info, at.code, at.caption)
                     for e in kind)


def imported(ws: Path) -> list[str]:
    return [m["name"] for m in Workspace.open(ws).manifests()]


def test_without_import_folders_no_path_is_read(machine: dict[str, Path]) -> None:
    at = datasets_page()
    assert at.text_input(key="imp_path").disabled
    assert any("--import-dir" in c for c in (e.value for e in at.caption))
    # A value sent for the disabled field anyway (a hand-made websocket message) is refused on the server.
    at.session_state["imp_path"] = str(machine["secrets"])
    at = submit(at, "stolen", format="csv")
    assert any("Nothing was imported" in e.value and "off" in e.value for e in at.error)
    assert imported(machine["ws"]) == [] and "s3cr3t" not in shown_text(at)


@pytest.mark.parametrize("typed", [
    "{secrets}", "{imports}/../.streamlit/secrets.toml", "../.streamlit/secrets.toml", "secrets.csv",
    "{imports}/secrets.csv", "/etc/passwd",
])
def test_paths_outside_the_import_folders_are_refused(machine: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                      typed: str) -> None:
    monkeypatch.setenv(IMPORT_DIRS_ENV, str(machine["imports"]))
    typed = typed.format(**machine)
    at = submit(datasets_page(), "stolen", path=typed, format="csv")
    (error,) = [render(e.value).plain().strip() for e in at.error]
    assert error == f"Nothing was imported: {typed!r} is not a file or folder in the import folders"
    assert imported(machine["ws"]) == [] and "s3cr3t" not in shown_text(at)


def test_a_path_inside_an_import_folder_imports(machine: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(IMPORT_DIRS_ENV, str(machine["imports"]))
    at = datasets_page()
    assert not at.text_input(key="imp_path").disabled
    assert str(machine["imports"]) in "\n".join(e.value for e in at.code)  # the folders are named
    at = submit(at, "mine", path="good.jsonl")
    assert any("Imported 1 rows into mine@v1" in s.value for s in at.success)
    assert Workspace.open(machine["ws"]).manifests()[0]["source"] == str(machine["imports"] / "good.jsonl")


def test_an_uploaded_task_file_never_runs(machine: dict[str, Path]) -> None:
    marker = machine["root"] / "PWNED"
    evil = ("task: evil\ndataset_path: json\noutput_type: generate_until\ndoc_to_target: answer\n"
            f"doc_to_text: \"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}\"\n")
    at = datasets_page()
    assert "lm-eval" not in at.selectbox(key="imp_format").options  # a task comes by name, never as a file
    at.file_uploader(key="imp_upload").set_value(("evil.yaml", evil.encode(), "application/yaml"))
    at = submit(at, "evil")
    (error,) = [e.value for e in at.error]
    assert "cannot tell the format of evil.yaml" in error and str(machine["root"]) not in error
    assert not marker.exists() and imported(machine["ws"]) == []


def test_lm_eval_tasks_load_by_name_only(machine: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    root, marker = machine["root"], machine["root"] / "PWNED"
    data = root / "docs.jsonl"
    data.write_text(json.dumps({"question": "What is 2+2?", "answer": "4"}) + "\n")
    (root / "evil.yaml").write_text(
        f"task: evil\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n"
        "output_type: generate_until\ndoc_to_target: answer\n"
        f"doc_to_text: \"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}\"\n")
    tasks = root / "tasks"
    tasks.mkdir()
    common = "dataset_path: json\ntest_split: test\noutput_type: generate_until\ndoc_to_target: answer\n"
    (tasks / "toy.yaml").write_text(f"task: synthscope_toy\n{common}doc_to_text: \"Q: {{{{question}}}}\"\n"
                                    f"dataset_kwargs:\n  data_files:\n    test: {data}\n")
    hidden = root / "private" / "missing.jsonl"
    (tasks / "broken.yaml").write_text(f"task: synthscope_broken\n{common}doc_to_text: question\n"
                                       f"dataset_kwargs:\n  data_files:\n    test: {hidden}\n")
    monkeypatch.setenv(TASK_DIRS_ENV, str(tasks))

    at = submit(datasets_page(), "evil", task=str(root / "evil.yaml"))  # a task file's path: refused
    assert any("no lm-eval task named" in e.value for e in at.error)
    assert not marker.exists()

    at = submit(at, "broken", task="synthscope_broken")  # the error names no server path outside the folders
    (error,) = [render(e.value).plain() for e in at.error]
    assert "could not load lm-eval task 'synthscope_broken'" in error
    assert str(hidden) not in error and str(hidden.parent) not in error and HIDDEN in error

    at = submit(at, "toy", task="synthscope_toy")  # a task of the operator's task folder, by name
    assert any("Imported 1 rows into toy@v1" in s.value for s in at.success)
    assert imported(machine["ws"]) == ["toy"] and not marker.exists()
