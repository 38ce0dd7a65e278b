"""Generation: ``generate``."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from synthscope import tasks
from synthscope.cli.common import CliError, add_command, open_workspace, started
from synthscope.core.workspace import DatasetRef


def cmd_generate(args: argparse.Namespace) -> int:
    from synthscope.generation import generate as gen

    ws = open_workspace(args)
    try:
        template = Path(args.template).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read template {args.template}: {exc.strerror or exc}") from exc
    params = gen.Params(n=args.n, max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                        top_k=args.top_k, stop=args.stop or [], seed=args.seed, parse=args.parse,
                        delimiter=args.delimiter, batch_size=args.batch_size)
    seeds = DatasetRef.parse(args.seeds)
    if args.preview:
        for record_id, prompt in gen.preview(ws, seeds, template):
            print(f"--- seed {record_id}\n{prompt}")
        return 0
    task = tasks.GenerateTask(args.seeds, template, args.output, args.model, dataclasses.asdict(params), args.limit,
                              args.device, args.backend, args.keep_flagged_seeds, args.resume,
                              args.trust_remote_code, args.check)
    if args.background:
        params.check()
        gen.check_template(template, set(gen.seed_rows(ws, seeds).columns) - {"flagged"})  # fail now, not in a job
        return started(ws, tasks.start(ws, task))
    result, checks = task.run(ws, tasks.Console())
    print(f"run {result.run_id}: {result.rows} rows, {result.rejected} rejected, {result.seeds_used} seeds "
          f"({result.seeds_flagged} benchmark items among the pool {'kept' if args.keep_flagged_seeds else 'left out'})"
          f", {result.tokens_per_second:.1f} tokens/s on {result.device}")
    if checks:
        print(f"checked {result.dataset}: scanned against {len(checks['scanned_against'])} benchmark(s); "
              f"{checks['contaminated_items']} item(s) flagged; scorecard {checks['report_id']} "
              f"{str(checks['status']).upper()}")
    if result.stopped:
        print(f"stopped before the end; continue with --resume {result.run_id}")
    elif result.dataset and not args.check:
        print(f"new dataset version {result.dataset}; check it with --check, or `synthscope scan --synthetic "
              f"{result.dataset} --benchmark NAME` and `synthscope score {result.dataset}`")
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the generation commands to the parser."""
    p = add_command(sub, "generate", parents=[common],
                    help="new synthetic rows from an instruct model, with provenance",
                    example="synthscope generate -w ws --seeds code-alpaca --template t.j2 --output gen --limit 20 "
                            "--check")
    p.add_argument("--seeds", required=True, metavar="NAME[@VERSION]", help="dataset whose rows fill the template")
    p.add_argument("--template", required=True, metavar="FILE", help="Jinja prompt template ({{ prompt }}, ...)")
    p.add_argument("--output", required=True, metavar="NAME", help="dataset the rows become a new version of")
    p.add_argument("--model", help="local folder, .gguf or hub id (default: SmolLM2-135M-Instruct, packaged)")
    p.add_argument("--n", type=int, default=1, help="outputs per seed")
    p.add_argument("--limit", type=int, help="at most N seeds")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--top-k", type=int, default=50)
    p.add_argument("--stop", action="append", help="cut the output at this string (repeat for several)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parse", choices=["text", "json", "delimiter"], default="text")
    p.add_argument("--delimiter", default="###", help="for --parse delimiter: between prompt and answer")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="auto", help="auto (CUDA when present, default), cpu or cuda")
    p.add_argument("--backend", choices=["transformers", "vllm"], default="transformers",
                   help="vllm: when installed, on a CUDA GPU")
    p.add_argument("--keep-flagged-seeds", action="store_true", help="use seeds that are benchmark items too")
    p.add_argument("--resume", metavar="RUN_ID", help="continue a stopped run; rows already made are kept")
    p.add_argument("--preview", action="store_true", help="print the first five rendered prompts and stop")
    p.add_argument("--trust-remote-code", action="store_true", help="let the model run its own code")
    p.add_argument("--check", action="store_true",
                   help="when done, scan the new version against every benchmark and score it")
    p.add_argument("--background", action="store_true", help="run as a job; print its id and return")
    p.set_defaults(func=cmd_generate)
