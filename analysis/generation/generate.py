"""Generation: new synthetic rows from an instruct model, a prompt template and a seed pool, with provenance.

A generation run is ``generations/<run_id>/``: ``run.json`` (model, weights hash,
template and its hash, parameters, seed pool), ``rows.jsonl`` (accepted rows, one
line appended and flushed per row as it is made), ``rejected.jsonl`` (outputs that
could not be parsed, with the reason). When the run ends the rows become a new
version of the output dataset (kind ``synthetic``) through ordinary ingest, and
its manifest keeps the provenance; every row carries its own: the model and
weights hash, the template hash, the seed record, the parameters, the time.

Before anything is generated
    The template (Jinja, sandboxed, undefined names are errors, rendered in a
    child process bounded in time, memory and prompt length: :mod:`synthscope.compute.sandbox`) is checked
    against the seed pool's fields: a template naming a missing field fails with
    the field and the ones there are. Seeds that are benchmark items — records of
    the pool flagged as evidence by the latest contamination scans — are left out
    (or kept and marked, with ``keep_flagged_seeds``): a generator prompted with a
    benchmark item writes a paraphrase of it.

Resuming
    A run that stops (a crash, a cancel) keeps every row already written; running
    it again with the same ``run_id`` skips the seeds already done. A torn last
    line (a crash mid-write) is dropped. Nothing reaches ``datasets/`` until the
    run finishes.

Backends
    ``vllm`` when it is installed (it needs a CUDA GPU): the same interface, vLLM
    schedules the batches. ``transformers`` (the default), through
    :func:`synthscope.compute.models.load_instruct`: CUDA in bfloat16 when present, batched
    (left-padded, one seed per batch); CPU in float32 otherwise, row by row with a
    seed per row (``seed + seed index``), so a row's text does not depend on the
    rows beside it. The model's chat template when it has one. A resumed run
    restarts at a batch boundary, so it makes the rows an uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from synthscope.compute.sandbox import Renderer, TemplateError
from synthscope.core.base import utc_now
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError, atomic_write_json, check_name

Progress = Callable[[int, int, str], None]
PARSERS = ("text", "json", "delimiter")


class GenerationError(WorkspaceError):
    """The generation cannot start or continue; the message says why."""


@dataclass
class Params:
    n: int = 1  # outputs per seed
    max_new_tokens: int = 128
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 50
    stop: list[str] = field(default_factory=list)
    seed: int = 0
    parse: str = "text"  # text | json | delimiter
    delimiter: str = "###"  # for parse = delimiter: prompt, delimiter, answer
    batch_size: int = 4

    def check(self) -> None:
        if self.n < 1 or self.max_new_tokens < 1 or self.batch_size < 1:
            raise GenerationError("n, max_new_tokens and batch_size must be at least 1")
        if not 0 <= self.temperature <= 5 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise GenerationError("temperature must be in [0, 5], top_p in (0, 1], top_k >= 0")
        if self.parse not in PARSERS:
            raise GenerationError(f"parse must be one of {', '.join(PARSERS)}, not {self.parse!r}")


# -- templates --------------------------------------------------------------------------------


def template_fields(template: str, renderer: Renderer | None = None) -> set[str]:
    """The names a template reads (found in the bounded process: compiling runs template code); a syntax error is a
    :class:`GenerationError` with its line."""
    try:
        if renderer is None:
            with Renderer() as own:
                return own.fields(template)
        return renderer.fields(template)
    except TemplateError as exc:
        raise GenerationError(str(exc)) from None


def check_template(template: str, fields: set[str], renderer: Renderer | None = None) -> None:
    """Refuse a template that names a field the seeds do not have (before any generation)."""
    missing = sorted(template_fields(template, renderer) - fields)
    if missing:
        raise GenerationError(f"the template uses {', '.join(repr(m) for m in missing)}, which the seed rows do not "
                              f"have; they have {', '.join(sorted(fields))}")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- seeds ------------------------------------------------------------------------------------


def flagged_seeds(ws: Workspace, pool: DatasetRef) -> set[str]:
    """Record ids of the pool that are evidence of a contaminated benchmark item in the latest scans."""
    ref = ws.resolve(pool)
    return set(ws.query("""
        SELECT DISTINCT e.record_id FROM evidence e JOIN latest_verdicts v USING (scan_id, item_id)
        WHERE e.synthetic = ? AND e.synthetic_version = ? AND v.synthetic = e.synthetic
          AND v.synthetic_version = e.synthetic_version AND v.verdict <> 'clean'""",
                        [ref.name, ref.version])["record_id"])


def seed_rows(ws: Workspace, pool: DatasetRef, limit: int | None = None) -> pd.DataFrame:
    """The pool's records as template fields: ``record_id``, ``prompt``, ``answer`` and every field of the raw row,
    with ``flagged`` (the record is evidence of a contaminated benchmark item in the latest scans).

    With ``limit``, only the first ``limit`` records that are not flagged, read with a LIMIT (a preview).
    """
    ref = ws.resolve(pool)
    flagged = flagged_seeds(ws, ref)
    if limit is None:
        records = ws.query("SELECT record_id, prompt, answer, raw FROM records WHERE dataset = ? AND version = ? "
                           "ORDER BY row", [ref.name, ref.version])
    else:
        records = ws.query("SELECT record_id, prompt, answer, raw FROM records WHERE dataset = ? AND version = ? "
                           "AND NOT list_contains(?::VARCHAR[], record_id) ORDER BY row LIMIT ?",
                           [ref.name, ref.version, sorted(flagged), limit])
    rows = []
    for r in records.itertuples():
        raw = json.loads(r.raw) if r.raw else {}
        fields = {k: v for k, v in raw.items() if isinstance(k, str) and k.isidentifier()} if isinstance(raw, dict) \
            else {}
        rows.append({**fields, "record_id": r.record_id, "prompt": r.prompt or "", "answer": r.answer or "",
                     "flagged": r.record_id in flagged})
    return pd.DataFrame(rows, columns=None if rows else ["record_id", "prompt", "answer", "flagged"])


def preview(ws: Workspace, pool: DatasetRef, template: str, rows: int = 5) -> list[tuple[str, str]]:
    """The rendered prompt of the first ``rows`` usable seeds: (seed record id, prompt); reads only those seeds."""
    seeds = seed_rows(ws, pool, limit=rows)
    records = seeds.to_dict("records")
    with Renderer() as renderer:
        check_template(template, set(seeds.columns) - {"flagged"}, renderer)
        prompts = renderer.render(template, records)
    return [(row["record_id"], prompt) for row, prompt in zip(records, prompts, strict=True)]


# -- parsing ----------------------------------------------------------------------------------


def parse_output(text: str, params: Params) -> tuple[dict[str, str] | None, str | None]:
    """The output as ``{prompt, answer}`` fields, or None and why it could not be read."""
    text = text.strip()
    if not text:
        return None, "empty output"
    if params.parse == "text":
        return {"prompt": text, "answer": ""}, None
    if params.parse == "delimiter":
        if params.delimiter not in text:
            return None, f"no {params.delimiter!r} between prompt and answer"
        prompt, _, answer = text.partition(params.delimiter)
        if not prompt.strip() or not answer.strip():
            return None, "an empty prompt or answer around the delimiter"
        return {"prompt": prompt.strip(), "answer": answer.strip()}, None
    found = re.search(r"\{.*\}", text, re.DOTALL)
    if not found:
        return None, "no JSON object in the output"
    try:
        obj = json.loads(found.group(0))
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} at character {exc.pos}"
    if not isinstance(obj, dict) or not str(obj.get("prompt") or obj.get("instruction") or "").strip():
        return None, "the JSON object has no 'prompt' (or 'instruction')"
    return {"prompt": str(obj.get("prompt") or obj.get("instruction")).strip(),
            "answer": str(obj.get("answer") or obj.get("output") or obj.get("response") or "").strip()}, None


# -- the run ----------------------------------------------------------------------------------


@dataclass
class GenerationResult:
    run_id: str
    rows: int
    rejected: int
    seeds_used: int
    seeds_flagged: int
    tokens: int
    seconds: float
    device: str
    dataset: DatasetRef | None  # the new version; None when stopped before the end
    stopped: bool = False

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def weights_sha256(ws: Workspace, path: Path) -> str:
    """sha256 over a model's weight files (``*.safetensors``, ``*.bin``, ``*.gguf``), cached by path, size and mtime."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in (".safetensors", ".bin",
                                                                                              ".gguf"))
    stamp = hashlib.sha1("".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files).encode()).hexdigest()
    cache = ws.indexes_dir / "weights" / f"{stamp}.txt"
    if cache.is_file():
        return cache.read_text().strip()
    digest = hashlib.sha256()
    for p in files:
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(digest.hexdigest())
    return digest.hexdigest()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete lines of ``path``; a torn last line (a crash mid-write) is dropped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out


def _append(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        fh.flush()
        os.fsync(fh.fileno())


def _prompt_text(tokenizer: Any, text: str) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                             add_generation_prompt=True)
    return text


def _cut(text: str, stop: list[str]) -> str:
    cuts = [text.index(s) for s in stop if s and s in text]
    return text[: min(cuts)] if cuts else text


class TransformersBackend:
    """transformers: a left-padded batch per call, sampled with one seed."""

    name = "transformers"

    def __init__(self, ws: Workspace, model: str, device: str, trust_remote_code: bool) -> None:
        from synthscope.compute.models import load_instruct

        self.loaded = load_instruct(model, ws=ws, device=device, trust_remote_code=trust_remote_code)
        self.tokenizer = self.loaded.tokenizer
        self.tokenizer.padding_side = "left"
        self.device = self.loaded.device
        self.batches = self.device.startswith("cuda")  # on CPU: row by row, a seed per row

    def sample(self, prompts: list[str], params: Params, seed: int) -> tuple[list[str], int]:
        """One continuation per prompt; the texts and the tokens made."""
        import torch

        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        torch.manual_seed(seed)
        sampling = params.temperature > 0
        with torch.inference_mode():
            out = self.loaded.model.generate(
                **encoded, max_new_tokens=params.max_new_tokens, do_sample=sampling,
                temperature=params.temperature if sampling else None, top_p=params.top_p if sampling else None,
                top_k=params.top_k if sampling else None, pad_token_id=self.tokenizer.pad_token_id)
        new = out[:, encoded["input_ids"].shape[1]:]
        pad = self.tokenizer.pad_token_id
        made = int((new != pad).sum()) if pad is not None else new.numel()
        return [self.tokenizer.decode(row, skip_special_tokens=True) for row in new], made


class VllmBackend:
    """vLLM, when installed (it needs a CUDA GPU): the same interface, batches scheduled by vLLM."""

    name = "vllm"
    batches = True
    device = "cuda"

    def __init__(self, ws: Workspace, model: str, device: str, trust_remote_code: bool) -> None:
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise GenerationError("the vLLM backend needs the vllm package and a CUDA GPU (`pip install vllm`); "
                                  "the transformers backend works everywhere")
        from vllm import LLM

        from synthscope.compute.models import resolve

        source = resolve(model)
        target = str(source.folder / source.gguf_file) if source.gguf_file else str(source.folder or source.hub_id)
        self.llm = LLM(model=target, trust_remote_code=trust_remote_code, dtype="bfloat16")
        self.tokenizer = self.llm.get_tokenizer()

    def sample(self, prompts: list[str], params: Params, seed: int) -> tuple[list[str], int]:
        from vllm import SamplingParams

        sampling = SamplingParams(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or -1,
                                  max_tokens=params.max_new_tokens, stop=params.stop or None, seed=seed)
        outputs = self.llm.generate(prompts, sampling, use_tqdm=False)
        return ([o.outputs[0].text for o in outputs], sum(len(o.outputs[0].token_ids) for o in outputs))


BACKENDS = {"transformers": TransformersBackend, "vllm": VllmBackend}


def generate(ws: Workspace, pool: DatasetRef, template: str, output: str, *, model: str | None = None,
             params: Params | None = None, limit: int | None = None, device: str = "auto",
             keep_flagged_seeds: bool = False, run_id: str | None = None, trust_remote_code: bool = False,
             progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
             on_start: Callable[[str], None] | None = None, backend: str = "transformers") -> GenerationResult:
    """Generate rows from the seeds of ``pool`` and make them version ``output@next`` (see the module docstring)."""
    from synthscope.compute.models import DEFAULT_INSTRUCT, resolve

    # The names that become paths are checked before anything is read or written.
    folder = ws.artefact_dir("generations", ws.new_id() if run_id is None else run_id)
    check_name(output, "dataset name")
    run_id = folder.name
    params = params or Params()
    params.check()
    if backend not in BACKENDS:
        raise GenerationError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    report = progress or (lambda done, total, message: None)
    stop_now = should_stop or (lambda: False)
    model = model or DEFAULT_INSTRUCT
    seeds = seed_rows(ws, pool)
    if seeds.empty:
        raise GenerationError(f"{pool} has no records to seed from")
    check_template(template, set(seeds.columns) - {"flagged"})
    flagged = int(seeds["flagged"].sum())
    usable = seeds if keep_flagged_seeds else seeds[~seeds["flagged"]]
    usable = usable.head(limit) if limit else usable
    if usable.empty:
        raise GenerationError(f"every seed of {pool} is a benchmark item per the latest scans; pass "
                              "--keep-flagged-seeds to use them anyway")
    source = resolve(model)
    folder.mkdir(parents=True, exist_ok=True)
    weights = source.folder / source.gguf_file if source.gguf_file else source.folder
    run = {"run_id": run_id, "created_at": utc_now(), "model": model, "backend": backend,
           "weights_sha256": weights_sha256(ws, weights) if weights is not None else None,
           "template": template, "template_sha256": sha256_text(template), "params": asdict(params),
           "seed_pool": str(ws.resolve(pool)), "output": output, "keep_flagged_seeds": keep_flagged_seeds}
    previous = json.loads((folder / "run.json").read_text()) if (folder / "run.json").is_file() else None
    if previous and (previous["template_sha256"], previous["params"], previous["model"]) != (
            run["template_sha256"], run["params"], run["model"]):
        raise GenerationError(f"run {run_id} was started with another model, template or parameters; "
                              "start a new run instead of resuming this one")
    run["created_at"] = previous["created_at"] if previous else run["created_at"]
    atomic_write_json(folder / "run.json", run)
    if on_start:
        on_start(run_id)
    done_rows = _read_jsonl(folder / "rows.jsonl")
    rejected_rows = _read_jsonl(folder / "rejected.jsonl")
    # Rewrite both files without a torn last line before appending to them.
    for name, rows in (("rows.jsonl", done_rows), ("rejected.jsonl", rejected_rows)):
        (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    done = {(r["seed_record_id"], r["sample"]) for r in done_rows + rejected_rows}
    todo = [(row, k) for row in usable.to_dict("records") for k in range(params.n)
            if (row["record_id"], k) not in done]
    total = len(usable) * params.n
    report(total - len(todo), total, f"loading {model}")
    engine = BACKENDS[backend](ws, model, device, trust_remote_code)
    tokens, started = 0, time.perf_counter()
    stopped = False
    index = {rid: i for i, rid in enumerate(usable["record_id"])}
    with Renderer() as renderer:  # one bounded process renders every prompt of the run
        for start in range(0, len(todo), params.batch_size):
            if stop_now():
                stopped = True
                break
            batch = todo[start:start + params.batch_size]
            prompts = [_prompt_text(engine.tokenizer, p) for p in renderer.render(template, [row for row, _ in batch])]
            first = index[batch[0][0]["record_id"]] * params.n + batch[0][1]
            if engine.batches:  # one batch, one seed per batch
                texts, made = engine.sample(prompts, params, params.seed + first)
            else:  # row by row, unpadded, one seed per row: a row's text does not depend on its batch
                texts, made = [], 0
                for (row, k), prompt in zip(batch, prompts, strict=True):
                    one, count = engine.sample([prompt], params, params.seed + index[row["record_id"]] * params.n + k)
                    texts += one
                    made += count
            tokens += made
            outputs = [_cut(t, params.stop) for t in texts]
            accepted, rejected = [], []
            for (row, k), text in zip(batch, outputs, strict=True):
                fields, why = parse_output(text, params)
                base = {"seed_record_id": row["record_id"], "sample": k, "seed_flagged": bool(row["flagged"]),
                        "model": model, "weights_sha256": run["weights_sha256"],
                        "template_sha256": run["template_sha256"], "params": asdict(params), "created_at": utc_now()}
                if fields is None:
                    rejected.append({**base, "output": text, "reason": why})
                else:
                    accepted.append({"id": f"{run_id}-{row['record_id']}-{k}", **fields, **base})
            _append(folder / "rows.jsonl", accepted)
            _append(folder / "rejected.jsonl", rejected)
            seconds = time.perf_counter() - started
            report(total - len(todo) + start + len(batch), total,
                   f"{tokens / seconds if seconds else 0:.1f} tokens/s on {engine.device}")
    seconds = time.perf_counter() - started
    rows = _read_jsonl(folder / "rows.jsonl")
    n_rejected = len(_read_jsonl(folder / "rejected.jsonl"))
    result = GenerationResult(run_id, len(rows), n_rejected, len(usable), flagged, tokens, seconds, engine.device,
                              None, stopped)
    if stopped:
        return result
    if not rows:
        raise GenerationError(f"run {run_id} made no usable row ({n_rejected} outputs could not be parsed as "
                              f"{params.parse}); see {folder / 'rejected.jsonl'}")
    from synthscope.datasets.ingest import IngestOptions, ingest

    ingested = ingest(ws, folder / "rows.jsonl", name=output, kind="synthetic",
                      options=IngestOptions(prompt_fields=("prompt",), answer_fields=("answer",), id_field="id"),
                      source_label=f"generations/{run_id}/rows.jsonl",
                      provenance={**{k: v for k, v in run.items() if k != "created_at"},
                                  "started_at": run["created_at"], "rows": len(rows), "rejected": n_rejected,
                                  "seeds_flagged": flagged, "device": engine.device})
    result.dataset = ingested.ref
    return result
