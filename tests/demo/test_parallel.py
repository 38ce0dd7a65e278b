"""The demo's second half side by side: steps in their own processes, their order, failures and progress."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synthscope.demo.parallel import Event, Overall, StepFailed, run_steps

RUNNER = "tests.fixtures.demo_steps:run"


def _run(tmp_path: Path, steps: list[str], **kwargs) -> list[Event]:
    events: list[Event] = []
    run_steps(tmp_path, steps, events.append, runner=RUNNER, **kwargs)
    return events


def test_two_steps_run_at_once_each_in_a_process_of_its_own(tmp_path: Path) -> None:
    # wait_for_b can only finish while b's process has started: one after the other it would time out
    events = _run(tmp_path, ["wait_for_b", "b"], lanes=2)
    pids = {(tmp_path / f"{s}.started").read_text() for s in ("wait_for_b", "b")}
    assert len(pids) == 2 and str(os.getpid()) not in pids
    assert [e.step for e in events if e.kind == "done"] and {e.step for e in events if e.kind == "done"} == {
        "wait_for_b", "b"}
    assert ("progress", "b", 2, 2, "b finished") in [(e.kind, e.step, e.done, e.total, e.message) for e in events]


def test_workers_do_not_run_this_processs_main_script_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    script = tmp_path / "unguarded.py"  # what AppTest leaves as __main__: a script that must not run again
    script.write_text(f"open({str(tmp_path / 'ran-again')!r}, 'w').close()\nraise SystemExit(3)\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    _run(tmp_path, ["a"], lanes=1)
    assert (tmp_path / "a.ended").exists() and not (tmp_path / "ran-again").exists()
    assert sys.modules["__main__"] is main  # and put back


def test_a_step_waits_for_the_one_it_comes_after_and_lanes_bound_how_many_run(tmp_path: Path) -> None:
    events = _run(tmp_path, ["a", "b", "c"], lanes=2, after={"a": "c"})
    order = [(e.kind, e.step) for e in events if e.kind in ("start", "done")]
    assert order.index(("start", "a")) > order.index(("done", "c"))  # listed first, started after its prerequisite
    running, most = 0, 0
    for kind, _ in order:
        running += 1 if kind == "start" else -1
        most = max(most, running)
    assert most == 2
    assert float((tmp_path / "a.ended").read_text()) >= float((tmp_path / "c.ended").read_text())
    pids = {(tmp_path / f"{s}.started").read_text() for s in "abc"}
    assert len(pids) <= 2 and str(os.getpid()) not in pids  # at most two workers, reused from step to step


def test_a_failing_step_names_itself_and_stops_the_others(tmp_path: Path) -> None:
    with pytest.raises(StepFailed) as caught:
        _run(tmp_path, ["hangs", "fails"], lanes=2)
    assert caught.value.step == "fails" and str(caught.value) == "fails: ValueError: a planted failure"
    assert any("raise ValueError" in note for note in caught.value.__notes__)  # the traceback, for the job log
    pid = int((tmp_path / "hangs.started").read_text())
    with pytest.raises(ProcessLookupError):  # ended and reaped, not left sleeping
        os.kill(pid, 0)
    assert not (tmp_path / "hangs.ended").exists()


def test_a_worker_that_dies_fails_the_step_it_had(tmp_path: Path) -> None:
    with pytest.raises(StepFailed) as caught:
        _run(tmp_path, ["dies", "b"], lanes=1)
    assert str(caught.value) == "dies: its process ended with exit code 3"
    assert not (tmp_path / "b.started").exists()  # never handed to anyone


def test_the_overall_progress_of_steps_side_by_side_never_goes_back() -> None:
    overall = Overall(["a", "b", "c"])
    seen = [overall.update(e) for e in (
        Event("start", "a"), Event("progress", "a", 5, 10, "x"), Event("start", "b"),
        Event("progress", "b", 1, 100, "y"), Event("progress", "a", 4, 10, "late and out of order"),
        Event("done", "a", seconds=1), Event("start", "c"), Event("progress", "b", 100, 100, "z"),
        Event("done", "b", seconds=2), Event("done", "c", seconds=3))]
    done = [d for d, _, _ in seen]
    assert done == sorted(done) and seen[-1][:2] == (3000, 3000)
    assert seen[3][2] == "a: x · b: y" and seen[-1][2] == ""


def test_the_modules_example_runs() -> None:
    import doctest

    import synthscope.demo.parallel as module

    assert doctest.testmod(module).failed == 0


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for whoever adopted it to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_end_with_the_process_that_started_them_even_when_it_is_killed(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    script = ("import sys; from pathlib import Path; from synthscope.demo.parallel import run_steps; "
              f"run_steps(Path(sys.argv[1]), ['hangs'], lambda e: None, runner={RUNNER!r})")
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=Path(__file__).parents[2])
    started = tmp_path / "hangs.started"
    deadline = time.monotonic() + 120
    while not started.exists() and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.1)
    assert started.exists(), "the step never started"
    worker = int(started.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(worker):
        time.sleep(0.1)
    if _alive(worker):
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its killed parent")
