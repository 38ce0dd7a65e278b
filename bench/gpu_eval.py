"""A real lm-eval run through synthscope on whatever device ``auto`` picks (CUDA on a GPU machine).

    python -m bench.gpu_eval --model MODEL_DIR [--batch-size 64]

Builds a scratch workspace, writes the demo's quiz as a local lm-eval task,
ingests it as the benchmark, records a run for ``MODEL_DIR`` (e.g. the demo's
``demo/lm/candidate``) and evaluates it with :func:`synthscope.evals.lmeval.run_eval`
(``device="auto"``). Prints one JSON line: the device, seconds, and accuracy on
the quiz's leaked and clean items.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from synthscope.core.workspace import Workspace
from synthscope.datasets.ingest import IngestOptions, ingest
from synthscope.demo import quiz as quizmod
from synthscope.evals.lmeval import run_eval
from synthscope.evals.runs import add_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="gpu-eval-"))
    quiz = quizmod.make_quiz()
    task = quizmod.write_task(quiz, root / "task")
    ws = Workspace.init(root / "ws")
    ingest(ws, quizmod.TASK, name="quiz", kind="benchmark",
           options=IngestOptions(format="lm-eval", include_path=str(task["include_path"])))
    add_run(ws, args.model, run_id="model")
    t0 = time.perf_counter()
    result = run_eval(ws, "model", [quizmod.TASK], include_path=task["include_path"], device="auto",
                      batch_size=args.batch_size)
    seconds = time.perf_counter() - t0
    leaked = set(json.loads(Path(task["leaked"]).read_text())["leaked_doc_ids"])
    samples = ws.query("SELECT doc_id, acc, record_id FROM eval_samples")
    is_leaked = samples["doc_id"].isin(leaked)
    print(json.dumps({"device": result.device, "seconds": round(seconds, 2), "samples": len(samples),
                      "linked": int(samples["record_id"].notna().sum()),
                      "acc_leaked": float(samples.loc[is_leaked, "acc"].mean()),
                      "acc_clean": float(samples.loc[~is_leaked, "acc"].mean())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
