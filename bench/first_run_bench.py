"""First run: from the end of the install to the dashboard answering, and to the whole demo.

Run ``python -m bench.first_run_bench --out bench/reports/first_run.md`` (part of
``make bench``). It does what ``make run`` does after installing, twice, in one
run: on the machine as it is, then (unless ``--no-competing``) beside a competing
CPU-bound process (one busy Python loop per core), each into a fresh demo folder
with an empty model cache:

1. ``synthscope demo WS --resume --rest-in-background`` (the first half: datasets and
   their scan), then ``synthscope serve WS``; the clock stops when ``/_stcore/health``
   answers;
2. the demo's second half runs as a background job; the clock stops when
   ``demo/state.json`` says every step is done;
3. (first run only) every page in the sidebar is opened in headless Chromium and timed
   from navigation to its first heading, then checked for placeholders still on screen.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PAGES = ("", "datasets", "contamination", "calibration", "quality", "privacy", "trends", "generate", "runs",
         "compare")


@dataclass
class FirstRun:
    label: str
    first_half: float = 0.0  # synthscope demo --rest-in-background returned
    answering: float = 0.0  # /_stcore/health answered
    complete: float = 0.0  # demo/state.json complete
    steps: dict[str, float] = field(default_factory=dict)
    pages: dict[str, float] = field(default_factory=dict)
    placeholders: dict[str, int] = field(default_factory=dict)


def _answering(port: int, timeout: float = 300) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _state(ws: Path) -> dict:
    path = ws / "demo" / "state.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _competitors() -> list[subprocess.Popen]:
    busy = "while True:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", busy]) for _ in range(os.cpu_count() or 1)]


def _pages(port: int, result: FirstRun) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("SYNTHSCOPE_CHROMIUM", "/usr/bin/chromium"), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            for name in PAGES:
                started = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/{name}")
                page.locator("[data-testid='stMain'] h1").first.wait_for(state="visible", timeout=120_000)
                result.pages[name or "overview"] = time.perf_counter() - started
                page.wait_for_timeout(3000)  # what is still a placeholder three seconds after the heading
                result.placeholders[name or "overview"] = page.locator("[data-testid='stSkeleton']").count()
        finally:
            browser.close()


def first_run(label: str, competing: bool, port: int, pages: bool) -> FirstRun:
    result = FirstRun(label)
    with tempfile.TemporaryDirectory(prefix="synthscope-first-run-") as tmp:
        ws = Path(tmp) / "workspace"
        env = {**os.environ, "SYNTHSCOPE_CACHE": str(Path(tmp) / "cache")}  # an empty model cache: a first run
        others = _competitors() if competing else []
        serve = None
        try:
            started = time.perf_counter()
            subprocess.run([str(BIN / "synthscope"), "demo", str(ws), "--resume", "--rest-in-background"],
                           env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            result.first_half = time.perf_counter() - started
            serve = subprocess.Popen([str(BIN / "synthscope"), "serve", str(ws), "--port", str(port)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            if not _answering(port):
                raise RuntimeError("the dashboard did not answer within 300 s")
            result.answering = time.perf_counter() - started
            while not (state := _state(ws)).get("steps") or set(state["steps"]) - set(state.get("done", [])):
                if state.get("error"):
                    raise RuntimeError(f"the demo's second half failed: {state['error']}")
                time.sleep(1)
            result.complete = time.perf_counter() - started
            result.steps = state.get("seconds", {})
            for proc in others:
                proc.kill()
            others = []
            if pages:
                _pages(port, result)
        finally:
            for proc in others:
                proc.kill()
            if serve is not None:
                os.killpg(serve.pid, signal.SIGTERM)
                serve.wait(timeout=30)
    return result


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def report(runs: list[FirstRun], command: str, load_before: str, load_after: str) -> str:
    quiet, busy = runs[0], runs[-1]
    lines = ["## First run", "",
             f"`{command}` on {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
             f"one run, every row in it, each from an empty folder and an empty model cache (load average "
             f"{load_before} at the start, {load_after} at the end). *Answering* is the end of the install to "
             "`/_stcore/health` answering: `synthscope demo --resume --rest-in-background` (datasets and a scan "
             "for copies) and the server's start. *Complete* is the whole demo, its second half built as a job "
             "while the dashboard is up. *Competing*: one busy Python loop per core ran throughout.", "",
             "| run | first half (s) | dashboard answering (s) | demo complete (s) |",
             "| --- | ---: | ---: | ---: |"]
    for r in runs:
        lines.append(f"| {r.label} | {r.first_half:.0f} | {r.answering:.0f} | {r.complete:.0f} |")
    if busy is not quiet:
        lines += ["", f"Competing / as is: answering {busy.answering / quiet.answering:.2f}x, "
                  f"complete {busy.complete / quiet.complete:.2f}x."]
    lines += ["", f"Seconds per step ({'; '.join(r.label for r in runs)}): " + ", ".join(
        f"{step} " + "; ".join(f"{r.steps.get(step, 0):.0f}" for r in runs) for step in quiet.steps)
        + ". The second half runs two steps at a time in worker processes (`synthscope.demo.parallel`), so its "
          "steps overlap and their seconds add up to more than the time to complete.", ""]
    if quiet.pages:
        times = list(quiet.pages.values())
        lines += [f"**Pages** ({quiet.label} run, demo complete, first visit of each in one Chromium tab, "
                  f"navigation to its first heading): p50 {statistics.median(times):.1f} s, max {max(times):.1f} s "
                  f"({max(quiet.pages, key=quiet.pages.get)}). Placeholders still on screen 3 s later: "
                  f"{sum(quiet.placeholders.values())}.", "",
                  "| page | seconds | placeholders after 3 s |", "| --- | ---: | ---: |"]
        lines += [f"| {name} | {quiet.pages[name]:.1f} | {quiet.placeholders.get(name, 0)} |" for name in quiet.pages]
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/reports/first_run.md"))
    parser.add_argument("--port", type=int, default=8631)
    parser.add_argument("--no-competing", action="store_true", help="only the run on the machine as it is")
    args = parser.parse_args(argv)
    load_before = _load()
    runs = [first_run("as is", competing=False, port=args.port, pages=True)]
    if not args.no_competing:
        runs.append(first_run("competing", competing=True, port=args.port + 1, pages=False))
    command = "python -m bench.first_run_bench" + (" --no-competing" if args.no_competing else "")
    text = report(runs, command, load_before, _load())
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
