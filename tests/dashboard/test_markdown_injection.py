"""Every page over hostile data, through AppTest: ids, names, texts, file names, search text, job messages and
errors reach the page as text, never as Markdown.

The workspace (:mod:`tests.fixtures.hostile_ws`) holds strings that are images, links, HTML, code-span
break-outs, shortcodes, LaTeX, emphasis, block syntax and link literals. For every string of a run that
Streamlit renders as Markdown (:func:`~tests.fixtures.markdown.markdown_sources`), what it renders
(:func:`~tests.fixtures.markdown.render`) may hold no link, image, HTML, math, icon, emoji or block, no data
inside a code span, and each hostile string it shows must read exactly as written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button

from synthscope.compute import jobs
from synthscope.core.allowed import IMPORT_DIRS_ENV
from synthscope.core.workspace import Workspace, atomic_write_json
from tests.fixtures.compare_ws import BASELINE, compare_ws_template, copy_compare_ws
from tests.fixtures.hostile_ws import (
    BENCHMARK,
    CANDIDATE,
    SYNTHETIC,
    SYNTHETIC_VERSION,
    TASK,
    UNKNOWN,
    add_hostile_comparison,
    build_hostile_ws,
    file_payload,
    job_texts,
    markers,
    payloads,
)
from tests.fixtures.markdown import markdown_sources, render
from tests.team.test_access import secrets

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
BEACON = "http://127.0.0.1:9"  # AppTest draws no page: nothing is fetched, whatever the links say
MARKERS = markers(BEACON)
HOSTILE = payloads(BEACON)
ITEMS = {f"HX{i}" for i in range(1, 9)}
SYNTHETIC_REF = f"{SYNTHETIC}@{SYNTHETIC_VERSION}"
# What a page made of its own text: bold titles, and commands in code spans (checked to hold no data).
TEMPLATE_MARKUP = {"emphasis", "code"}
# Grades, which a page writes as their word in colour; nothing from data is in them.
GRADE_DIRECTIVE = re.compile(r":(?:green|orange|red|gray)(?:-badge)?\[(?:pass|warn|fail|info)\]")


@pytest.fixture(scope="module")
def hostile_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_hostile_ws(tmp_path_factory.mktemp("hostile"), BEACON)


@pytest.fixture
def hostile(hostile_template: Path, tmp_path: Path) -> Path:
    """A private copy of the hostile workspace."""
    target = tmp_path / "ws"
    shutil.copytree(hostile_template, target)
    Workspace.open(target).refresh_catalog()
    return target


@pytest.fixture
def open_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """``open_app(ws, page=None)``: the app on workspace ``ws``, run once (on ``page`` if given)."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    st.cache_data.clear()
    st.cache_resource.clear()

    def open_app(ws: Path, page: str | None = None) -> AppTest:
        monkeypatch.setenv("SYNTHSCOPE_WORKSPACE", str(ws))
        at = AppTest.from_file(APP, default_timeout=90).run()
        if page:
            at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_app


def shown_as_text(at: AppTest) -> set[str]:
    """The markers of the hostile strings the run shows; fails where any of them is Markdown, not text."""
    seen, problems = set(), []
    for kind, source in (pair for root in (at.main, at.sidebar, *at.toast) for pair in markdown_sources(root)):
        shown = render(source)
        text = " ".join(shown.plain().split())
        found = {m for m in MARKERS if m in text}
        seen |= found
        for made, what in shown.made:
            template = made in TEMPLATE_MARKUP or made == "directive" and GRADE_DIRECTIVE.fullmatch(what)
            if not template or any(m in what for m in MARKERS):
                problems.append(f"{kind} makes {made} {what!r} of {source!r}")
        problems += [f"{kind} shows {MARKERS[m]!r} as {text!r}" for m in found if MARKERS[m] not in text]
    assert not problems, "\n".join(problems)
    return seen


def button(at: AppTest, label: str) -> Button:
    (match,) = [b for b in at.button if b.label == label]
    return match


# The hostile strings each page shows as it opens; every page's sidebar shows the running job ("HXj1").
PAGES = {
    None: {"HXs", "HXv", "HXb"},  # the scorecard card and its links
    "app_pages/datasets.py": set(),  # only in tables and selectboxes until a row is searched or a file imported
    "app_pages/contamination.py": {"HXb", "HXr", "HXj6"},  # the newest scan, which found nothing; a finished job
    "app_pages/calibration.py": {"HXj2", "HXb", "HXp"},  # a failed job; the calibration's datasets
    "app_pages/quality.py": {"HXj4", "HXj5", "HXr", "HXp"},  # a finished job; what the scorecard measured against
    "app_pages/privacy.py": {"HX1", "HXj4", "HXj5", "HXr", "HXp"},  # and the ids of a near-copy
    "app_pages/trends.py": {"HXv"},
    "app_pages/generate.py": {"HX1", "HX2", "HX3", "HX4", "HX5", "HXj3"},  # seeds' ids; a failed job
    "app_pages/runs.py": set(),
    "app_pages/compare.py": set(),
}


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_shows_hostile_data_as_text(open_app, hostile: Path, page: str | None) -> None:
    at = open_app(hostile, page)
    if page == "app_pages/generate.py":
        at = at.selectbox(key="gen_pool").select(f"{BENCHMARK}@v1").run()
    assert PAGES[page] | {"HXj1"} <= shown_as_text(at)


def test_the_evidence_of_every_hostile_item_is_text(open_app, hostile: Path) -> None:
    at = open_app(hostile, "app_pages/contamination.py")
    assert {"HXj1", "HXj6"} <= shown_as_text(at)  # a running and a finished scan job
    at = at.selectbox(key="cont_synthetic").select(SYNTHETIC_REF).run()
    picker = at.selectbox(key="cont_item")
    assert len(picker.options) == len(HOSTILE)
    for item in HOSTILE:
        at = at.selectbox(key="cont_item").select(item).run()
        assert {m for m in ITEMS if m in item} | {"HXb", "HXs", "HXv"} <= shown_as_text(at)


def test_row_search_and_imports_with_hostile_names_are_text(open_app, hostile: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(IMPORT_DIRS_ENV, str(tmp_path))  # the operator lets the form read files there
    at = open_app(hostile, "app_pages/datasets.py")
    at = at.selectbox(key="browse_ref").select(SYNTHETIC_REF).run()  # its unreadable line is listed
    at = at.text_input(key="browse_search").input(HOSTILE[0]).run()
    assert {"HX1", "HXs", "HXv"} <= shown_as_text(at)

    at.text_input(key="imp_path").input(str(tmp_path / file_payload()))  # no such file
    at.text_input(key="imp_name").input("missing")
    at = button(at, "Import").click().run()
    assert {"HX9"} <= shown_as_text(at) and at.error

    field = HOSTILE[1]  # a field name, also missing from the second row
    source = tmp_path / "fields.jsonl"
    source.write_text(json.dumps({field: "a prompt"}) + "\n" + json.dumps({"other": "b"}) + "\n", encoding="utf-8")
    at.text_input(key="imp_path").input(str(source))
    at.text_input(key="imp_name").input("fields")
    at.text_input(key="imp_prompt").input(field)
    at = button(at, "Import").click().run()
    assert {"HX2"} <= shown_as_text(at) and at.success


def test_an_upload_with_a_hostile_file_name_is_text(open_app, hostile: Path) -> None:
    at = open_app(hostile, "app_pages/datasets.py")
    at.file_uploader(key="imp_upload").set_value((f"{file_payload()}.csv", b"question,answer\nq,a\n", "text/csv"))
    at.text_input(key="imp_name").input("uploaded")
    at = button(at, "Import").click().run()
    assert at.success
    at.file_uploader(key="imp_upload").set_value((f"{file_payload()}.jsonl", b'{"broken\n', "text/plain"))
    at.text_input(key="imp_name").input("broken")
    at = button(at, "Import").click().run()
    assert {"HX9"} <= shown_as_text(at) and at.error


def test_a_run_recorded_with_hostile_names_is_text(open_app, hostile: Path, tmp_path: Path) -> None:
    at = open_app(hostile, "app_pages/runs.py")
    at.text_input(key="run_model").input(HOSTILE[0])  # neither a folder nor a hub id
    at = button(at, "Record run").click().run()
    assert {"HX1"} <= shown_as_text(at) and at.error
    model = tmp_path / file_payload()
    model.mkdir()
    at.text_input(key="run_model").input(str(model))
    at.text_input(key="run_id").input("run-2")
    at.multiselect(key="run_datasets").select(UNKNOWN)
    at = button(at, "Record run").click().run()
    assert {"HX9", "HXw"} <= shown_as_text(at) and at.success and at.warning


def test_generation_jobs_that_say_hostile_things_are_text(open_app, hostile: Path) -> None:
    texts = job_texts(BEACON)
    finished = {"rows": 3, "rejected": 1, "dataset": texts["generated"], "tokens_per_second": 9.5,
                "device": texts["device"], "run_id": texts["run"]}
    rows = hostile / "generations" / texts["run"] / "rows.jsonl"  # the run's newest rows are listed
    rows.parent.mkdir(parents=True)
    rows.write_text(json.dumps({"seed_record_id": HOSTILE[0], "prompt": HOSTILE[1], "answer": HOSTILE[2],
                                "created_at": "2099-01-02T00:00:00"}) + "\n", encoding="utf-8")
    for n, job, expected in [
            (1, {"message": texts["generating"], "pid": os.getpid(), "done": 1, "total": 3}, {"HXj7"}),
            (2, {"state": jobs.SUCCEEDED, "result": finished}, {"HXj8", "HXj9"}),  # a run id no path takes: no rows
            (3, {"state": jobs.SUCCEEDED, "result": {**finished, "stopped": True}}, {"HXjr"})]:
        job_id = f"20990102-00000{n}-ffffff"  # newer than the fixture's: the page shows the newest
        atomic_write_json(hostile / "jobs" / job_id / "status.json",
                          asdict(jobs.JobStatus(job_id, "generate", **job)))
        at = open_app(hostile, "app_pages/generate.py")
        assert expected <= shown_as_text(at)


def test_a_calibration_of_a_hostile_file_is_text(open_app, hostile: Path, tmp_path: Path) -> None:
    at = open_app(hostile, "app_pages/calibration.py")
    at.text_input(key="cal_truth").input(str(tmp_path / file_payload()))
    at = button(at, "Start calibration").click().run()
    assert {"HX9"} <= shown_as_text(at) and at.error


def test_a_hostile_setting_is_text(open_app, hostile: Path) -> None:
    (hostile / "synthscope.toml").write_text(f'[contamination]\n"{HOSTILE[0]}" = 1\n', encoding="utf-8")
    at = open_app(hostile, "app_pages/contamination.py")
    assert {"HX1"} <= shown_as_text(at) and at.error


def test_a_hostile_workspace_path_is_text(open_app, tmp_path: Path) -> None:
    folder = tmp_path / file_payload()
    folder.mkdir()
    assert {"HX9"} <= shown_as_text(open_app(folder))


def test_a_read_only_workspace_names_its_hostile_root_as_text() -> None:
    def page(root: str) -> None:
        from types import SimpleNamespace

        from synthscope.dashboard.components.workspace import read_only

        read_only(SimpleNamespace(read_only=True, root=root), "Importing")

    at = AppTest.from_function(page, args=(file_payload(),)).run()
    assert {"HX9"} <= shown_as_text(at)


@pytest.fixture
def signed_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """``signed_in(secrets, email)``: the app run once for a visitor signed in with address ``email``."""
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv("SYNTHSCOPE_WORKSPACE", str(Workspace.init(tmp_path / "ws").root))
    monkeypatch.chdir(tmp_path)  # no ./.streamlit/secrets.toml but the test's

    def signed_in(settings: dict, email: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=60)
        at.secrets = settings
        at.user = {"is_logged_in": True, "email": email, "email_verified": True}
        return at.run()

    return signed_in


def test_hostile_accounts_and_settings_of_sign_in_are_text(signed_in) -> None:
    at = signed_in(secrets(), f"{HOSTILE[0]}@evil.test")
    assert {"HX1"} <= shown_as_text(at) and "Not allowed" in [s.value for s in at.subheader]
    entry = HOSTILE[1].lower()  # the allow-list is read lower-cased: no marker left to find
    at = signed_in(secrets(allow=["@example.org", entry]), "bob@example.org")
    (message,) = [m.value for m in at.markdown if "neither an address" in m.value]
    assert not render(message).made and repr(entry) in render(message).plain()
    email = "x ![r](http://127.0.0.1:9/e.png) **b**@example.org"  # let in by its domain
    at = signed_in(secrets(), email)
    (caption,) = [c.value for c in at.sidebar.caption if c.value.startswith("Signed in as")]
    assert not render(caption).made and render(caption).plain() == f"Signed in as {email}"


@pytest.fixture(scope="module")
def hostile_compare_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    template = compare_ws_template(tmp_path_factory)
    root = copy_compare_ws(template, tmp_path_factory.mktemp("hostile-compare") / "ws")
    add_hostile_comparison(root, template, BEACON)
    return root


def test_a_comparison_on_a_hostile_task_is_text(open_app, hostile_compare_template: Path, tmp_path: Path) -> None:
    at = open_app(copy_compare_ws(hostile_compare_template, tmp_path / "ws"), "app_pages/compare.py")
    at.selectbox(key="cmp_baseline").select(BASELINE).run()
    at = at.selectbox(key="cmp_candidate").select(CANDIDATE).run()
    at = at.selectbox(key="cmp_task").select(TASK).run()
    assert not at.error, [e.value for e in at.error]
    assert {"HXc", "HXe", "HXt"} <= shown_as_text(at)
    items = at.dataframe(key="cmp_items").value
    at = at.selectbox(key="cmp_item").select(items.loc[items["contaminated"], "record_id"].iloc[0]).run()
    assert {"HXt"} <= shown_as_text(at)
    assert any(m in label for label in [e.label for e in at.expander] for m in ITEMS)  # hostile evidence ids
    at.selectbox(key="cmp_baseline").select("cand").run()  # evaluated on the ledger task only
    at = at.selectbox(key="cmp_candidate").select(CANDIDATE).run()
    assert {"HXc"} <= shown_as_text(at) and any("share no evaluated task" in i.value for i in at.info)
