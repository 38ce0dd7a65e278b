"""Issue 16's "done when": on a fresh clone, ``make run`` prints the URL, and the browser shows the Contamination
page with the demo's leaks while the rest of the demo is still building.

The repository under test is cloned, so what runs is its committed Makefile, not this checkout's files around it;
synthscope itself comes from the running virtual environment (``make test``'s ``.venv``, an editable install of
this checkout), handed to the Makefile as ``VENV`` so that nothing is installed. The test leaves as soon as the
page shows the first half: the second half (minutes of semantic scan, training, lm-eval) is stopped, not awaited.
The screenshot lands in ``artifacts/newcomer/make-run.png`` at the repository root (ignored by git).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from synthscope.demo.state import read_state
from tests.browser.conftest import BROWSER_ARGS, REPO
from tests.conftest import chromium_executable
from tests.fixtures.processes import free_port, naming, stop_group, wait_until, wait_until_healthy

pytestmark = pytest.mark.browser
ARTIFACTS = REPO / "artifacts" / "newcomer"
FIRST_HALF_S = 300  # clone-to-URL on a busy 2-core CI machine; the first half alone takes tens of seconds
PAGE_S = 60


def installed_venv() -> Path:
    """The running venv, when the Makefile takes it as installed; otherwise a skip (this test never installs)."""
    venv = Path(sys.prefix)
    if sys.prefix == sys.base_prefix:
        pytest.skip("not running in a virtual environment: `make run` would create and install one")
    if not (venv / ".installed").exists() or not (venv / "bin" / "synthscope").exists():
        pytest.skip(f"{venv} was not installed by the Makefile (no .installed or bin/synthscope); `make test` does "
                    "that, and this test will not install it")
    return venv


def newcomer_env() -> dict[str, str]:
    """This session's environment (SYNTHSCOPE_CACHE: the tiny models stay out of the user's cache; the hub
    offline), without the variables of a `make test` around it: the clone's make is a newcomer's, top-level."""
    return {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}}


def stop_everything(make: subprocess.Popen[bytes], ws: Path) -> None:
    """``make run``'s group (make, ``synthscope demo``, ``synthscope serve``), then the demo's job.

    The job building the second half runs in a session of its own (synthscope.compute.jobs.start), so
    ending make does not end it; its pid is its group's id. Make's group goes first, so that no new job
    starts; every job's pid file is read, not demo/state.json, which names the job only after it started.
    """
    stop_group(make.pid)
    make.wait()
    for pid_file in ws.glob("jobs/*/pid"):
        stop_group(int(pid_file.read_text(encoding="ascii")))


def test_make_run_on_a_fresh_clone_serves_the_leaks_while_the_rest_builds(tmp_path: Path) -> None:
    venv = installed_venv()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    clone, ws, port = tmp_path / "clone", tmp_path / "ws", free_port()
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    out, err = tmp_path / "make.out", tmp_path / "make.err"
    # -o: the clone's pyproject.toml is newer than the venv's stamp, and would have make reinstall everything.
    command = ["make", "-o", f"{venv}/.installed", "run", f"VENV={venv}", f"DEMO={ws}", f"PORT={port}"]
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        make = subprocess.Popen(command, cwd=clone, env=newcomer_env(), stdout=stdout, stderr=stderr,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # its own group, to stop it whole
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: url in out.read_text(errors="replace"), make, "make run", err, FIRST_HALF_S)
        state = read_state(ws)
        assert state is not None and "semantic" in state.pending and state.job, state
        wait_until_healthy(url, make, "make run's dashboard", err)
        show_contamination_page(url)
    finally:
        stop_everything(make, ws)
    assert not naming(str(tmp_path)), "left running after the test"


def show_contamination_page(url: str) -> None:
    """What the newcomer does with the URL: open it, click Contamination, see the leaks and the banner."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            nav = page.get_by_test_id("stSidebarNav")
            expect(nav).to_be_visible(timeout=PAGE_S * 1000)
            nav.get_by_text("Contamination", exact=True).click()
            expect(page.get_by_role("heading", name="Contamination", exact=True)).to_be_visible(
                timeout=PAGE_S * 1000)
            expect(page.get_by_text(re.compile(r"[1-9]\d* items with a verdict other than clean"))).to_be_visible(
                timeout=PAGE_S * 1000)  # the planted leaks, found by the first half's scan for copies
            expect(page.get_by_text(re.compile(
                r"The demo is still being built in the background.*Contamination \(rephrasings\)"))).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "make-run.png"), full_page=True)
        finally:
            browser.close()
