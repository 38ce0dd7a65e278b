"""The evaluation half of the demo: two tiny models, one trained with a leaky synthetic set.

Added to the demo workspace (:func:`synthscope.demo.build.build_demo`) after it is in
place, because runs and lm-eval tasks name their files by absolute path:

* benchmark ``quiz@v1`` — 200 multiple-choice questions on invented capitals
  (:mod:`synthscope.demo.quiz`), ingested from its local lm-eval task in
  ``demo/lm/task/`` so lm-eval's ``doc_id`` links samples to records;
* reference ``quiz-clean@v1`` — the clean training corpus (other invented countries);
* synthetic ``quiz-synth@v1`` — the synthetic set: half the quiz, stated with its answers;
* runs ``tiny-baseline`` (clean corpus) and ``tiny-candidate`` (clean corpus +
  ``quiz-synth``), 3.7 M-parameter models trained from scratch on CPU
  (:mod:`synthscope.demo.tinylm`, about 2 min for both on one core), kept in ``demo/lm/``;
* a scan of ``quiz`` against ``quiz-synth`` and both runs evaluated on the quiz
  through lm-eval, and Min-K%++ of every quiz item under both models, so the
  Compare page opens on the answer: the candidate's gain sits on the leaked
  items, and its own token probabilities single them out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from synthscope.contamination.scan import config_from, run_scan
from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.datasets.ingest import IngestOptions, ingest
from synthscope.demo import quiz as quizmod
from synthscope.demo.tinylm import DemoPair, model_cache, train_pair
from synthscope.evals.lmeval import run_eval
from synthscope.evals.membership import score_run
from synthscope.evals.runs import add_run

Progress = Callable[[int, int, str], None]
BASELINE, CANDIDATE = "tiny-baseline", "tiny-candidate"


def _jsonl(rows: list[dict[str, str]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def train_models(ws: Workspace, progress: Progress | None = None) -> DemoPair:
    """Train the two models into ``demo/lm/`` (or copy them from the model cache, or reuse them there)."""
    return train_pair(ws.root / "demo" / "lm", quiz=quizmod.make_quiz(), progress=progress, cache=model_cache())


def build_eval_demo(ws: Workspace, progress: Progress | None = None) -> None:
    """Ingest the quiz and its data, scan, add the runs and evaluate both models (trained first if need be).

    Safe to run again after an interruption: datasets and runs that exist are kept.
    """
    report = progress or (lambda done, total, message: None)
    quiz = quizmod.make_quiz()
    pair = train_pair(ws.root / "demo" / "lm", quiz=quiz, cache=model_cache())
    task = pair.task
    steps = 3 + 2 * 2
    report(0, steps, "importing the quiz and the training sets")
    _ingest_once(ws, quizmod.TASK, name="quiz", kind="benchmark", version="v1",
                 options=IngestOptions(format="lm-eval", include_path=str(task["include_path"])),
                 source_label="demo/lm/task (lm-eval task)")
    sources = ws.root / "demo" / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    clean = quizmod.clean_corpus(quiz)
    leak = quizmod.synthetic_leak(quiz)
    (sources / "quiz-clean.jsonl").write_text(_jsonl([{"id": f"clean-{i:05d}", "text": t}
                                                       for i, t in enumerate(clean)]), encoding="utf-8")
    (sources / "quiz-synth.jsonl").write_text(_jsonl([{"id": f"synth-{i:05d}", "text": t}
                                                      for i, t in enumerate(leak)]), encoding="utf-8")
    _ingest_once(ws, sources / "quiz-clean.jsonl", name="quiz-clean", kind="reference", version="v1",
                 source_label="demo/sources/quiz-clean.jsonl")
    _ingest_once(ws, sources / "quiz-synth.jsonl", name="quiz-synth", kind="synthetic", version="v1",
                 source_label="demo/sources/quiz-synth.jsonl")
    report(1, steps, "scanning the quiz against its synthetic set")
    run_scan(ws, DatasetRef("quiz", "v1"), [DatasetRef("quiz-synth", "v1")], config_from(ws), workers=1)
    report(2, steps, "adding the runs")
    share = len(leak) / (len(leak) + len(clean))
    if not (ws.runs_dir / BASELINE / "manifest.json").exists():
        add_run(ws, str(pair.baseline.path), run_id=BASELINE,
                base_model="none: trained from scratch (3.7 M parameters)", datasets=["quiz-clean@v1"],
                synthetic_share=0.0, tags=["demo", "baseline"], date="2026-11-01",
                notes=pair.baseline.manifest["data"]["description"])
    if not (ws.runs_dir / CANDIDATE / "manifest.json").exists():
        add_run(ws, str(pair.candidate.path), run_id=CANDIDATE,
                base_model="none: trained from scratch (3.7 M parameters)",
                datasets=["quiz-clean@v1", "quiz-synth@v1"], synthetic_share=round(share, 3),
                tags=["demo", "synthetic"], date="2026-11-15", notes=pair.candidate.manifest["data"]["description"])
    done = 3
    for run_id in (BASELINE, CANDIDATE):
        report(done, steps, f"{run_id}: lm-eval on the quiz")
        run_eval(ws, run_id, [quizmod.TASK], include_path=task["include_path"], device="cpu", batch_size=16)
        report(done + 1, steps, f"{run_id}: Min-K%++ of every quiz item")
        score_run(ws, run_id, DatasetRef("quiz", "v1"), device="cpu", batch_size=32)
        done += 2
    report(steps, steps, "evaluated")


def _ingest_once(ws: Workspace, source: Any, *, name: str, version: str, **kwargs: Any) -> None:
    if version not in ws.versions(name):
        ingest(ws, source, name=name, version=version, **kwargs)
