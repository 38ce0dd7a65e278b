"""Tiny causal LMs trained from scratch on CPU, to show a leak in a benchmark score.

:func:`train` trains a byte-level BPE tokenizer (``tokenizers``) on the given
texts, then a Llama-shaped causal LM of about 3.7 M parameters from scratch
(AdamW, learning rate 5e-4 with a short warmup and cosine decay, 400 steps of
4 × 64 tokens) and saves both with ``save_pretrained`` (safetensors only) plus
``manifest.json`` into ``out_dir``. The folder is assembled under a temporary
name beside ``out_dir`` and renamed into place, so an interrupted training leaves
no half-written model. A folder whose manifest has the same ``config_hash`` (the
training config and the exact texts) is reused without training.

:func:`train_pair` trains the demo's two models on the quiz of
:mod:`synthscope.demo.quiz`: ``baseline`` on the clean corpus and ``candidate`` on
the clean corpus plus a synthetic set that leaks half of the quiz. Each training
takes about 60 s on one core: after 400 steps at 5e-4 the candidate answers 96 of the
100 leaked items and the baseline 22, and both 22 of the 100 clean ones (measured;
1,000 steps at 3e-4 took 2.5 times as long for the same picture). :func:`score_quiz`
evaluates a model through lm-eval (offline) and returns per-item accuracies;
:func:`split_accuracy` splits them into leaked and clean items.

Documents are packed into rows that start at a document boundary (documents are
separated by the end-of-text token), so a row looks like what lm-eval scores: a
question at the start of the context, with no special token before it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synthscope.compute.device import cpu_threads
from synthscope.core.cache import cache_root

Progress = Callable[[int, int, str], None]

EOS = "<|endoftext|>"
PAD = "<|pad|>"
MANIFEST = "manifest.json"
FORMAT_VERSION = 1  # bump when training changes in a way the config does not capture
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


@dataclass(frozen=True)
class TinyLMConfig:
    """Model shape and training schedule. The defaults: ~3.7 M parameters, ~60 s on one CPU core."""

    vocab_size: int = 2048
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 688
    seq_len: int = 64
    batch_size: int = 4
    steps: int = 400
    lr: float = 5e-4
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0

    def config_hash(self, texts: Sequence[str], tokenizer_texts: Sequence[str] | None = None) -> str:
        """Identifies a trained model: this config, the training (and tokenizer) texts and :data:`FORMAT_VERSION`."""
        digest = hashlib.sha256()
        digest.update(json.dumps({"format": FORMAT_VERSION, **asdict(self)}, sort_keys=True).encode())
        digest.update(texts_sha256(texts).encode())
        if tokenizer_texts is not None:
            digest.update(b"tokenizer:" + texts_sha256(tokenizer_texts).encode())
        return digest.hexdigest()[:16]


@dataclass
class TrainResult:
    """A trained (or reused) model folder and what its manifest says."""

    path: Path
    reused: bool  # True: a folder with the same config_hash existed and nothing was trained
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return float(self.manifest.get("seconds", 0.0))

    @property
    def final_loss(self) -> float:
        return float(self.manifest.get("final_loss", math.nan))


def texts_sha256(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a trained model folder, or None when there is none (or it cannot be read)."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def cached(out_dir: Path, texts: Sequence[str], config: TinyLMConfig,
           tokenizer_texts: Sequence[str] | None = None) -> TrainResult | None:
    """The model in ``out_dir`` if it was trained with this config on these texts, else None."""
    manifest = read_manifest(out_dir)
    if manifest is None or manifest.get("config_hash") != config.config_hash(texts, tokenizer_texts):
        return None
    if not (Path(out_dir) / "model.safetensors").is_file():
        return None
    return TrainResult(path=Path(out_dir), reused=True, manifest=manifest)


def train_tokenizer(texts: Sequence[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on ``texts``, as a ``PreTrainedTokenizerFast`` (eos = bos = unk)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=EOS,
                                   pad_token=PAD, model_max_length=4096)


def build_model(config: TinyLMConfig, vocab_size: int, eos_id: int, pad_id: int):
    """A Llama-shaped causal LM with tied embeddings, randomly initialised from ``config.seed``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(config.seed)
    model_config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers, num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads, max_position_embeddings=max(256, config.seq_len * 4),
        tie_word_embeddings=True, bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=pad_id)
    return LlamaForCausalLM(model_config)


def _rows(docs: list[list[int]], eos_id: int, seq_len: int, seed: int) -> Iterator[list[int]]:
    """Endless rows of ``seq_len`` tokens; each row starts at a document (shuffled per epoch, eos-separated).

    A document cut by the end of a row starts the next row again, so every document
    is seen whole at least once per epoch. Texts shorter than one row in all are refused
    here, not when the first row is asked for: no epoch would ever yield one, and the
    trainer would wait for it forever.
    """
    available = sum(len(doc) + 1 for doc in docs)  # each document and its end-of-text token
    if available < seq_len:
        raise ValueError(f"one training row needs {seq_len} tokens (seq_len), but the training texts hold only "
                         f"{available} (with an end-of-text token after each): give more or longer texts, "
                         "or a shorter seq_len")
    return _endless_rows(docs, eos_id, seq_len, seed)


def _endless_rows(docs: list[list[int]], eos_id: int, seq_len: int, seed: int) -> Iterator[list[int]]:
    import random

    rng = random.Random(seed)
    order = list(range(len(docs)))
    while True:
        rng.shuffle(order)
        stream: list[int] = []
        starts: list[int] = []
        for i in order:
            starts.append(len(stream))
            stream.extend(docs[i])
            stream.append(eos_id)
        starts_set = set(starts)
        position, k = 0, 0  # k: index into starts of the first start > position
        while position + seq_len <= len(stream):
            yield stream[position:position + seq_len]
            end = position + seq_len
            while k < len(starts) and starts[k] <= position:
                k += 1
            inside = [s for s in starts[k:k + seq_len] if s < end]
            position = end if end in starts_set or not inside else inside[-1]


def _lr_at(step: int, config: TinyLMConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n or cpu_threads()))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def model_cache() -> Path:
    """Where trained demo models are kept between builds: ``$SYNTHSCOPE_CACHE/tinylm``.

    ``SYNTHSCOPE_CACHE`` defaults to ``$XDG_CACHE_HOME/synthscope`` (``~/.cache/synthscope``).
    A model there is named by its configuration hash (config, training texts, tokenizer
    texts), so a changed demo never picks up a stale model.
    """
    return cache_root() / "tinylm"


def _copy_tree(source: Path, out_dir: Path) -> None:
    """Copy a model folder into ``out_dir`` through a staging folder renamed into place."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex}.tmp")
    try:
        shutil.copytree(source, staging)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def train(texts: Sequence[str], out_dir: Path, config: TinyLMConfig | None = None, *, description: str = "",
          tokenizer_texts: Sequence[str] | None = None, progress: Progress | None = None,
          threads: int | None = None, force: bool = False, cache: Path | None = None) -> TrainResult:
    """Train a tokenizer and a tiny causal LM on ``texts`` (documents) into ``out_dir``; reuse it when cached.

    The tokenizer is trained on ``tokenizer_texts`` when given (two models to be
    compared then share one vocabulary), else on ``texts``. ``description`` is
    stored in the manifest (what the training data is). ``threads`` defaults to
    :func:`synthscope.compute.device.cpu_threads` (half the cores). ``force`` retrains
    even when cached. With ``cache`` (a folder, e.g. :func:`model_cache`), a model
    trained before with the same configuration hash is copied from there instead of
    trained, and a newly trained one is copied there.
    """
    import torch

    config = config or TinyLMConfig()
    texts = list(texts)
    tokenizer_texts = None if tokenizer_texts is None else list(tokenizer_texts)
    if not texts:
        raise ValueError("no training texts")
    out_dir = Path(out_dir)
    if not force and (hit := cached(out_dir, texts, config, tokenizer_texts)) is not None:
        if progress:
            progress(config.steps, config.steps, f"reused {out_dir.name}")
        return hit
    kept = None if cache is None else Path(cache) / config.config_hash(texts, tokenizer_texts)
    if not force and kept is not None and cached(kept, texts, config, tokenizer_texts) is not None:
        _copy_tree(kept, out_dir)
        if progress:
            progress(config.steps, config.steps, f"{out_dir.name}: copied from the model cache")
        return TrainResult(path=out_dir, reused=True, manifest=read_manifest(out_dir) or {})

    started = time.perf_counter()
    with _threads(threads):
        tokenizer = train_tokenizer(texts if tokenizer_texts is None else tokenizer_texts, config.vocab_size)
        eos_id, pad_id = tokenizer.convert_tokens_to_ids(EOS), tokenizer.convert_tokens_to_ids(PAD)
        docs = [ids for ids in tokenizer(texts, add_special_tokens=False)["input_ids"] if ids]
        rows = _rows(docs, eos_id, config.seq_len, config.seed)  # refuses too few tokens before building anything
        model = build_model(config, len(tokenizer), eos_id, pad_id)
        n_params = sum(p.numel() for p in model.parameters())
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.95))
        model.train()
        losses: list[float] = []
        curve: list[list[float]] = []
        every = max(1, config.steps // 20)
        for step in range(config.steps):
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, config)
            batch = torch.tensor([next(rows) for _ in range(config.batch_size)], dtype=torch.long)
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            if (step + 1) % every == 0 or step + 1 == config.steps:
                recent = sum(losses[-every:]) / len(losses[-every:])
                curve.append([step + 1, round(recent, 4)])
                if progress:
                    progress(step + 1, config.steps, f"step {step + 1}/{config.steps}, loss {recent:.3f}")
        model.eval()
        seconds = time.perf_counter() - started
        tail = losses[-min(50, len(losses)):]
        manifest = {
            "kind": "synthscope-tinylm",
            "config_hash": config.config_hash(texts, tokenizer_texts),
            "config": asdict(config),
            "format_version": FORMAT_VERSION,
            "parameters": n_params,
            "vocab_size": len(tokenizer),
            "steps": config.steps,
            "lr": config.lr,
            "tokens_seen": config.steps * config.batch_size * config.seq_len,
            "seconds": round(seconds, 2),
            "threads": torch.get_num_threads(),
            "final_loss": round(sum(tail) / len(tail), 4),
            "loss_curve": curve,
            "data": {"description": description, "documents": len(texts), "tokens": sum(len(d) + 1 for d in docs),
                     "sha256": texts_sha256(texts),
                     "tokenizer_sha256": texts_sha256(texts if tokenizer_texts is None else tokenizer_texts)},
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": {"torch": torch.__version__, **_versions()},
        }
        _save(model, tokenizer, manifest, out_dir)
    if kept is not None:
        with contextlib.suppress(OSError):  # a read-only or full cache costs the next build a retraining, no more
            _copy_tree(out_dir, kept)
    return TrainResult(path=out_dir, reused=False, manifest=manifest)


def _versions() -> dict[str, str]:
    import tokenizers
    import transformers

    return {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__}


def _save(model, tokenizer, manifest: dict[str, Any], out_dir: Path) -> None:
    """Save into a temporary folder beside ``out_dir``, then rename it into place."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex}.tmp")
    old = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex}.old")
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- the demo pair


@dataclass
class DemoPair:
    baseline: TrainResult
    candidate: TrainResult
    task: dict[str, Path]  # quiz.write_task's paths: include_path, data, yaml, leaked
    leaked_ids: list[str]


def train_pair(folder: Path, config: TinyLMConfig | None = None, *, progress: Progress | None = None,
               threads: int | None = None, quiz=None, repeats: int = 4, cache: Path | None = None) -> DemoPair:
    """The quiz task in ``folder/task`` and two models, ``folder/baseline`` and ``folder/candidate``.

    The baseline trains on the clean corpus; the candidate on the clean corpus plus
    the synthetic set leaking the quiz's leaked items (``repeats`` times each form).
    Both use the same config and step count and share one tokenizer trained on the
    clean corpus, so only the weights differ. Cached models are reused (those in
    ``folder``, then those in ``cache``: see :func:`train`).
    """
    from synthscope.demo import quiz as quizmod

    config = config or TinyLMConfig()
    folder = Path(folder)
    q = quiz or quizmod.make_quiz()
    task = quizmod.write_task(q, folder / "task")
    clean = quizmod.clean_corpus(q)
    leak = quizmod.synthetic_leak(q, repeats=repeats)

    def scaled(offset: int) -> Progress | None:
        if progress is None:
            return None
        return lambda done, total, message: progress(offset + done, 2 * total, message)

    baseline = train(clean, folder / "baseline", config, tokenizer_texts=clean, progress=scaled(0), threads=threads,
                     cache=cache,
                     description=f"clean corpus: {len(clean)} documents about invented countries not in the quiz")
    candidate = train(clean + leak, folder / "candidate", config, tokenizer_texts=clean,
                      progress=scaled(config.steps), threads=threads, cache=cache,
                      description=f"clean corpus ({len(clean)} documents) + synthetic set ({len(leak)} documents) "
                                  f"leaking {len(q.leaked_ids)} of {len(q.items)} quiz items")
    return DemoPair(baseline=baseline, candidate=candidate, task=task, leaked_ids=list(q.leaked_ids))


# --------------------------------------------------------------------------- scoring through lm-eval


@contextmanager
def _offline() -> Iterator[None]:
    before = {name: os.environ.get(name) for name in _OFFLINE_VARIABLES}
    os.environ.update({name: "1" for name in _OFFLINE_VARIABLES})
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def score_quiz(model_dir: Path, include_path: Path, task: str = "synthscope_quiz", batch_size: int = 16,
               threads: int | None = None) -> dict[str, dict[str, float]]:
    """Per-item scores of the model in ``model_dir`` on a local multiple-choice task, through lm-eval.

    Returns ``{item id: {"doc_id", "acc", "acc_norm"}}`` (the doc's ``id`` field, or
    its doc id as text when it has none). Runs offline on CPU.
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    with _offline(), _threads(threads):
        out = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={Path(model_dir).resolve()},dtype=float32",
                                      tasks=[task], task_manager=TaskManager(include_path=str(include_path)),
                                      log_samples=True, device="cpu", batch_size=batch_size)
    scores = {}
    for sample in out["samples"][task]:
        key = str(sample["doc"].get("id", sample["doc_id"]))
        scores[key] = {"doc_id": int(sample["doc_id"]), "acc": float(sample["acc"]),
                       "acc_norm": float(sample["acc_norm"])}
    return scores


def split_accuracy(scores: dict[str, dict[str, float]], leaked_ids: Sequence[str],
                   metric: str = "acc") -> dict[str, float]:
    """Mean ``metric`` over the leaked items, the clean items and all items (with their counts)."""
    leaked = set(leaked_ids)
    parts = {"leaked": [s[metric] for k, s in scores.items() if k in leaked],
             "clean": [s[metric] for k, s in scores.items() if k not in leaked]}
    parts["all"] = parts["leaked"] + parts["clean"]
    result = {name: (sum(v) / len(v) if v else math.nan) for name, v in parts.items()}
    result.update({f"n_{name}": len(v) for name, v in parts.items()})
    return result
