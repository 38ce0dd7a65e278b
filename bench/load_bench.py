"""Load test of the dashboard: page latency with 20 concurrent sessions while a scan job runs.

Run ``python -m bench.load_bench --out bench/reports/load.md`` (part of ``make bench``).
On loopback, against ``synthscope serve`` on a copy of the demo workspace (built
with :func:`synthscope.demo.build.build_demo` when ``--workspace`` is not given), it

1. warms the server up (every page once; first runs import pandas, Plotly, DuckDB);
2. **idle**: one session visits every page ``--rounds`` times, first as a protocol
   client, then as a real Chromium tab;
3. **scan alone**: times a real scan job (:func:`synthscope.tasks.start`, as the
   Contamination page starts one) with nobody on the dashboard: every synthetic
   dataset version against HumanEval, ``--scan-passes`` times in a row, so that
   it outlasts the loaded phase's first rounds by far;
4. **loaded**: starts the same scan again and, while it runs, 20 sessions (19
   protocol clients and one Chromium tab) visit the pages in a loop, each from a
   different first page; visits stop when the scan ends, so it covers the whole window.

A visit's latency is the time from asking for a page until it is drawn:

* protocol client (:class:`Session`): what the browser sends over
  ``/_stcore/stream`` (a ``rerun_script`` BackMsg naming the page), until the
  server's ``script_finished``; the page's ``st.title`` must have arrived and no
  ``exception`` element. It answers ``auto_rerun`` like the browser does (a
  page's job panel reruns itself every two seconds while its job runs), so the
  server carries the load 20 real tabs put on it;
* Chromium tab: ``page.goto`` until the title heading is visible and the app's
  script state is ``notRunning`` (what a user sees).

Why mostly protocol clients: 20 users have 20 browsers on 20 machines. Twenty
Chromium tabs on the 2 cores that also run the server and the scan measure
Chromium fighting the server for CPU, not the dashboard; the one real tab shows
what a user feels under that load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from playwright.async_api import async_playwright
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from synthscope.compute import jobs
from synthscope.core.workspace import Workspace
from synthscope.tasks import ScanTask
from synthscope.tasks import start as start_job

# url path -> the st.title the page draws
PAGES = {"": "Overview", "datasets": "Datasets", "contamination": "Contamination", "calibration": "Calibration",
         "quality": "Quality & Bias", "privacy": "Privacy", "trends": "Trends", "generate": "Generate",
         "runs": "Runs", "compare": "Compare runs"}
BENCHMARK = "humaneval@v1"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VISIT_TIMEOUT = 120.0


@dataclass
class Visit:
    client: str  # "protocol" or "chromium"
    page: str
    seconds: float
    error: str | None = None


@dataclass
class Session:
    """One dashboard session over Streamlit's websocket protocol, as the browser speaks it."""

    url: str
    headings: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    page_hash: str = ""
    _ws: websockets.ClientConnection | None = None
    _finished: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _reruns: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    async def __aenter__(self) -> Session:
        self._ws = await websockets.connect(self.url.replace("http", "ws", 1) + "/_stcore/stream",
                                            subprotocols=["streamlit"], max_size=None)
        self._tasks.append(asyncio.create_task(self._read()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in [*self._tasks, *self._reruns.values()]:
            task.cancel()
        assert self._ws is not None
        await self._ws.close()

    async def visit(self, page: str) -> Visit:
        for task in self._reruns.values():  # the browser drops a page's timers when it leaves it
            task.cancel()
        self._reruns.clear()
        self.headings.clear()
        self.exceptions.clear()
        started = time.perf_counter()
        await self._send(ClientState(page_name=page))
        try:
            async with asyncio.timeout(VISIT_TIMEOUT):
                while await self._finished.get() != ForwardMsg.FINISHED_SUCCESSFULLY:
                    pass  # a fragment's rerun, or a run cut short for this one
        except TimeoutError:
            return Visit("protocol", page, time.perf_counter() - started, f"not drawn in {VISIT_TIMEOUT:.0f}s")
        seconds = time.perf_counter() - started
        error = ("; ".join(self.exceptions) if self.exceptions
                 else None if PAGES[page] in self.headings else f"no heading {PAGES[page]!r}")
        return Visit("protocol", page, seconds, error)

    async def _send(self, state: ClientState) -> None:
        msg = BackMsg()
        msg.rerun_script.CopyFrom(state)
        assert self._ws is not None
        await self._ws.send(msg.SerializeToString())

    async def _read(self) -> None:
        assert self._ws is not None
        async for raw in self._ws:
            msg = ForwardMsg()
            msg.ParseFromString(raw if isinstance(raw, bytes) else raw.encode())
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = msg.new_session.page_script_hash
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                if element.WhichOneof("type") == "heading":
                    self.headings.append(element.heading.body)
                elif element.WhichOneof("type") == "exception":
                    self.exceptions.append(f"{element.exception.type}: {element.exception.message}")
            elif kind == "auto_rerun":
                fragment = msg.auto_rerun.fragment_id
                if fragment in self._reruns:
                    self._reruns[fragment].cancel()
                self._reruns[fragment] = asyncio.create_task(self._rerun_every(fragment, msg.auto_rerun.interval))
            elif kind == "stop_auto_rerun":
                for fragment in msg.stop_auto_rerun.fragment_ids:
                    if fragment in self._reruns:
                        self._reruns.pop(fragment).cancel()
            elif kind == "script_finished":
                self._finished.put_nowait(msg.script_finished)

    async def _rerun_every(self, fragment: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self._send(ClientState(page_script_hash=self.page_hash, fragment_id=fragment, is_auto_rerun=True))


async def protocol_visits(url: str, pages: Sequence[str], keep_going: asyncio.Event | None = None) -> list[Visit]:
    """Visit ``pages`` in order; with ``keep_going``, again and again while it is set."""
    visits: list[Visit] = []
    async with Session(url) as session:
        while True:
            for page in pages:
                if keep_going is not None and not keep_going.is_set():
                    return visits
                visits.append(await session.visit(page))
            if keep_going is None:
                return visits


async def chromium_visits(url: str, pages: Sequence[str], keep_going: asyncio.Event | None = None) -> list[Visit]:
    """The same as :func:`protocol_visits` in a real headless Chromium tab."""
    from tests.conftest import chromium_executable

    visits: list[Visit] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 1000})
            while True:
                for name in pages:
                    if keep_going is not None and not keep_going.is_set():
                        return visits
                    started = time.perf_counter()
                    error = None
                    try:
                        await page.goto(f"{url}/{name}", timeout=VISIT_TIMEOUT * 1000)
                        await page.get_by_role("heading", name=PAGES[name], exact=True).wait_for(
                            timeout=VISIT_TIMEOUT * 1000)
                        await page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(
                            timeout=VISIT_TIMEOUT * 1000)
                        if await page.locator('[data-testid="stException"]').count():
                            error = "an exception on the page"
                    except Exception as exc:  # noqa: BLE001 - a failed visit is counted, not raised
                        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    visits.append(Visit("chromium", name, time.perf_counter() - started, error))
                if keep_going is None:
                    return visits
        finally:
            await browser.close()


def scan_task(ws: Workspace, passes: int) -> ScanTask:
    """A scan of every synthetic dataset version against the benchmark, ``passes`` times in a row."""
    synthetics = [f"{m['name']}@{m['version']}" for m in ws.manifests() if m["kind"] == "synthetic"]
    return ScanTask([BENCHMARK] * passes, synthetics)


async def run_scan(ws: Workspace, task: ScanTask, sessions: int = 0, url: str = "") -> tuple[float, list[Visit]]:
    """Run the scan job; with ``sessions``, that many sessions visit pages until it ends. Its wall time, the visits."""
    running = asyncio.Event()
    running.set()
    started = time.perf_counter()
    job_id = start_job(ws, task)
    pages = list(PAGES)
    clients = [(chromium_visits if i == 0 else protocol_visits)(url, pages[i % len(pages):] + pages[:i % len(pages)],
                                                                 running) for i in range(sessions)]
    load = asyncio.gather(*clients)
    while jobs.status(ws, job_id).state == jobs.RUNNING:
        await asyncio.sleep(0.2)
    wall = time.perf_counter() - started
    running.clear()
    visits = [v for client in await load for v in client]
    state = jobs.status(ws, job_id)
    if state.state != jobs.SUCCEEDED:
        raise RuntimeError(f"the scan job failed: {state.error}\n{jobs.log_tail(ws, job_id)}")
    return wall, visits


def percentiles(seconds: Sequence[float]) -> str:
    if not seconds:
        return "– | – | – | –"
    cuts = statistics.quantiles(seconds, n=100, method="inclusive") if len(seconds) > 1 else [seconds[0]] * 99
    return f"{cuts[49]:.2f} | {cuts[89]:.2f} | {cuts[98]:.2f} | {max(seconds):.2f}"


def report(result: Result, args: argparse.Namespace, elapsed: float) -> str:
    idle, loaded, scan_alone, scan_loaded = result.idle, result.loaded, result.scan_alone, result.scan_loaded
    rows = []
    for client, label in (("protocol", "server (protocol client)"), ("chromium", "user (Chromium tab)")):
        for name, visits in (("1 session, idle", idle), (f"{args.sessions} sessions + scan", loaded)):
            mine = [v for v in visits if v.client == client]
            rows.append(f"| {label} | {name} | {len(mine)} | {percentiles([v.seconds for v in mine])} "
                        f"| {sum(v.error is not None for v in mine)} |")

    def p(visits: list[Visit], client: str, q: int) -> float:
        seconds = [v.seconds for v in visits if v.client == client] or [float("nan")]
        return statistics.quantiles(seconds, n=100, method="inclusive")[q - 1] if len(seconds) > 1 else seconds[0]

    per_page = []
    for page, title in PAGES.items():
        before = [v.seconds for v in idle if v.page == page and v.client == "protocol"]
        after = [v.seconds for v in loaded if v.page == page and v.client == "protocol"]
        per_page.append(f"| {title} (`/{page}`) | {statistics.median(before):.2f} | {len(after)} "
                        f"| {percentiles(after)} |")
    errors = [v for v in idle + loaded if v.error]
    error_lines = "".join(f"\n- {v.client} `/{v.page}`: {v.error}" for v in errors[:10])
    return f"""## Dashboard under load: 20 sessions while a scan runs

`python -m bench.load_bench --out bench/reports/load.md` — `synthscope serve` on loopback
on a copy of the demo workspace, {os.cpu_count()} cores ({platform.processor() or platform.machine()}),
whole run {elapsed:.0f} s. The scan job is `synthscope scan` of {BENCHMARK} against every synthetic
dataset version of the demo ({result.synthetics}), {args.scan_passes} passes in a row (`--benchmark` repeated;
stages from the demo's `synthscope.toml`, workers on every core).

Idle: one session visits each of the {len(PAGES)} pages {args.rounds} times (a protocol client,
then a Chromium tab). Loaded: {args.sessions} sessions ({args.sessions - 1} protocol clients and one
Chromium tab) visit the pages in a loop, each from a different first page, for as long as
the scan job runs. Latency, in seconds, from asking for a page until it is
drawn: for a protocol client, the `rerun_script` message until `script_finished`, with the
page's title received and no exception element; for the Chromium tab, `page.goto` until the
title is visible and the script state is `notRunning`. Protocol clients answer `auto_rerun`
like a browser (a page's job panel reruns every 2 s while its job runs). The one
Chromium tab shows what a user feels; 20 tabs would have put 20 renderers on the server's
cores and measured Chromium, not the dashboard. A visit not drawn in {VISIT_TIMEOUT:.0f} s is an
error and counts {VISIT_TIMEOUT:.0f} s, so percentiles at that value are a lower bound.

| measured by | load | visits | p50 | p90 | p99 | max | errors |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

Loaded / idle: p50 **{p(loaded, "protocol", 50) / p(idle, "protocol", 50):.1f}x** (server),
**{p(loaded, "chromium", 50) / p(idle, "chromium", 50):.1f}x** (user); p90
**{p(loaded, "protocol", 90) / p(idle, "protocol", 90):.1f}x** (server),
**{p(loaded, "chromium", 90) / p(idle, "chromium", 90):.1f}x** (user).
Scan job wall time alone {scan_alone:.1f} s, under load {scan_loaded:.1f} s:
**{scan_loaded / scan_alone:.2f}x**. Errors: **{len(errors)}**.{error_lines}

Per page, protocol clients (seconds; idle is the median of {args.rounds} visits):

| page | idle p50 | loaded visits | p50 | p90 | p99 | max |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(per_page)}

Measured on a shared machine ({os.cpu_count()} cores, other work running beside it): the
absolute numbers are noisy; read the loaded/idle ratios, which come from one run.
"""


@dataclass
class Result:
    idle: list[Visit]
    loaded: list[Visit]
    scan_alone: float
    scan_loaded: float
    synthetics: int


async def measure(ws: Workspace, url: str, args: argparse.Namespace) -> Result:
    await protocol_visits(url, list(PAGES))  # warm-up, not counted
    idle: list[Visit] = []
    for _ in range(args.rounds):
        idle += await protocol_visits(url, list(PAGES))
    for _ in range(args.rounds):
        idle += await chromium_visits(url, list(PAGES))
    task = scan_task(ws, args.scan_passes)
    scan_alone, _ = await run_scan(ws, task)
    scan_loaded, loaded = await run_scan(ws, task, args.sessions, url)
    return Result(idle, loaded, scan_alone, scan_loaded, len(task.synthetics))


def main(argv: list[str] | None = None) -> int:
    from synthscope.demo.build import build_demo
    from tests.browser.conftest import serve

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/reports/load.md"))
    parser.add_argument("--workspace", type=Path, help="a demo workspace to copy (default: build one)")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="idle visits of each page, per client kind")
    parser.add_argument("--scan-passes", type=int, default=4,
                        help="the scan job scans the benchmark this many times in a row (one pass: about 15 s)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        if args.workspace:
            shutil.copytree(args.workspace, root, symlinks=True)
        else:
            build_demo(root)
        ws = Workspace.open(root)
        ws.refresh_catalog()  # the catalog names files by absolute path
        with serve(root, Path(tmp) / "server.log") as url:
            result = asyncio.run(measure(ws, url, args))
        (Path("bench/out")).mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(tmp) / "server.log", "bench/out/load_server.log")  # for a look when a visit failed
    text = report(result, args, time.perf_counter() - started)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
