"""Benchmark of generation: tokens per second of ``synthscope generate`` against bare ``model.generate``.

Run ``python -m bench.generate_bench --out bench/reports/generate.md`` (part of
``make bench``). In one process, with the packaged SmolLM2-135M-Instruct on the
device ``auto`` picks, on the same seed prompts (chat template applied) and the
same sampling parameters, it times

(a) bare ``model.generate`` on each prompt (the model already loaded);
(b) :func:`synthscope.generation.generate.generate` end to end after loading: template
    rendering, sampling, parsing, appending each row to disk, provenance.

The ratio (b)/(a) of tokens per second is the pipeline's overhead. On a GPU machine
the same command measures CUDA (batched in bfloat16).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.datasets.ingest import ingest
from synthscope.generation import generate as gen

TASKS = ["Write a haiku about rain.", "Explain what a list is in Python.", "Give one tip for sleeping well.",
         "Name three yellow fruits.", "Say good morning in Spanish.", "Describe a cat in five words.",
         "Suggest a name for a bakery.", "Write a riddle about the moon."]
TEMPLATE = "Write one new task in the style of this one, on another subject.\nTask: {{ instruction }}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/reports/generate.md"))
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(Path(tmp) / "ws")
        seeds = Path(tmp) / "seeds.jsonl"
        seeds.write_text("".join(json.dumps({"id": f"s{i}", "instruction": t}) + "\n" for i, t in enumerate(TASKS)))
        ingest(ws, seeds, name="seeds", kind="reference")
        params = gen.Params(max_new_tokens=args.max_new_tokens, temperature=0.7, seed=0, batch_size=8)
        engine = gen.TransformersBackend(ws, "SmolLM2-135M-Instruct", args.device, False)
        prompts = [gen._prompt_text(engine.tokenizer, gen.render(TEMPLATE, {"instruction": t})) for t in TASKS]
        engine.sample(prompts[:1], params, 0)  # warm up
        started, bare_tokens = time.perf_counter(), 0
        if engine.batches:
            bare_tokens += engine.sample(prompts, params, 0)[1]
        else:
            for i, prompt in enumerate(prompts):
                bare_tokens += engine.sample([prompt], params, i)[1]
        bare = bare_tokens / (time.perf_counter() - started)
        result = gen.generate(ws, DatasetRef("seeds"), TEMPLATE, "gen", params=params, device=args.device)
        piped = result.tokens_per_second
    report = f"""## Generation: tokens per second

`python -m bench.generate_bench --out bench/reports/generate.md` — SmolLM2-135M-Instruct
(packaged GGUF, cached as safetensors), {len(TASKS)} seed prompts, up to
{args.max_new_tokens} new tokens each, temperature 0.7, device `{engine.device}`
({platform.processor() or platform.machine()}).

| path | tokens | tokens/s |
| --- | ---: | ---: |
| bare `model.generate` | {bare_tokens} | {bare:.1f} |
| `synthscope generate` (render, sample, parse, write, provenance) | {result.tokens} | {piped:.1f} |

Pipeline / bare: **{piped / bare:.2f}x** (measured in one run). On CPU rows are sampled one
by one (a seed per row, so a resumed run makes the same rows); on CUDA in batches.
"""
    args.out.write_text(report, encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
