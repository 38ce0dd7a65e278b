"""Judged contamination (optional): a local instruct model says whether two texts are the same problem.

For a benchmark item and a candidate synthetic record the model is shown both
texts and asked one yes/no question, worded for the kind of data:

* ``code`` — the same program: same objective, same inputs and outputs;
  names, formatting and wording do not matter;
* ``math`` — the same problem: same situation and structure of solution;
  names and changed numbers do not matter;
* ``knowledge`` — the same question with the same answer; word order and
  phrasing do not matter.

``kind="auto"`` picks per pair from the benchmark item's text (:func:`detect_kind`).

Score
    The prompt is rendered with the model's chat template and its generation
    prompt, so the next token is the first token of the answer. With ``z_t`` the
    next-token logit of token ``t``::

        P(yes) = Σ_{t∈Y} e^{z_t} / (Σ_{t∈Y} e^{z_t} + Σ_{t∈N} e^{z_t}),
        Y = {"Yes", "yes"},  N = {"No", "no"}

    one forward pass, no sampling: the same pair always gets the same score. A
    pair is *judged* contaminated when ``P(yes) >= confirm_at``.

Cache
    A judgement is a pure function of the model, the prompt kind and version,
    the cut-off and the two texts; its SHA-256 is the pair's key. Answers are
    appended, never edited, as Parquet shards
    ``indexes/judge/<model_key>/<shard>.parquet`` (``pair_key``, ``kind``,
    ``score``, ``created_at``), so a re-scan asks the model nothing it has
    answered before, and does not even load it when every pair is known.

Honest note: the built-in model (SmolLM2-135M-Instruct, 4-bit) is tiny; measured
on real rephrasings its scores are close to chance (see the project's
documentation), so this stage is off by default and a larger local model should
be named for real use.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from synthscope.compute.models import DEFAULT_INSTRUCT, LoadedModel, load_instruct, resolve
from synthscope.core.base import utc_now
from synthscope.core.text import tokenize
from synthscope.core.workspace import Workspace, atomic_write_parquet

KINDS = ("code", "math", "knowledge")
PROMPT_VERSION = 1  # bump whenever a prompt's wording changes: cached answers to old prompts then no longer apply
YES = ("Yes", "yes")
NO = ("No", "no")

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class JudgeConfig:
    """Settings of the judged stage (``[contamination.judge]`` in ``synthscope.toml``)."""

    model: str = DEFAULT_INSTRUCT
    """A local instruct model: the built-in name, a folder, a .gguf, or (online) a hub id (see compute.models)."""
    device: str = "auto"
    """``auto`` (CUDA if present), ``cpu`` or ``cuda[:n]``."""
    confirm_at: float = 0.5
    """P(yes) from which the judge confirms a pair."""
    max_pairs: int = 200
    """The most pairs a scan sends to the judge (its best candidates first); the caller applies it."""
    kind: str = "auto"
    """Prompt for ``code``, ``math`` or ``knowledge`` data, or ``auto``: chosen per pair from the item's text."""
    max_chars: int = 3000
    """Each text is cut to this many characters before it is shown to the model (bounds time and memory)."""
    batch_size: int = 4
    """Pairs per forward pass."""

    def __post_init__(self) -> None:
        if self.kind != "auto" and self.kind not in KINDS:
            raise ValueError(f"kind must be 'auto' or one of {', '.join(KINDS)}; got {self.kind!r}")
        if not 0 <= self.confirm_at <= 1:
            raise ValueError(f"confirm_at must be a probability, got {self.confirm_at}")
        if self.max_pairs < 0 or self.max_chars < 1 or self.batch_size < 1:
            raise ValueError("max_pairs must be >= 0, max_chars and batch_size >= 1")


# -- prompts --------------------------------------------------------------------------------

_SYSTEM = "You check whether a benchmark problem was copied into training data. Answer with one word: Yes or No."

_QUESTIONS = {
    "code": ("Do Text A and Text B ask for the same program, with the same objective, the same inputs and the same "
             "outputs? Ignore differences in function and variable names, formatting and wording."),
    "math": ("Are Text A and Text B the same math problem, with the same situation and the same steps to solve it? "
             "Ignore differences in names and in the numbers used."),
    "knowledge": ("Do Text A and Text B ask the same question, with the same answer? "
                  "Ignore differences in word order and phrasing."),
}

_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from \S+ import |return\b|#include|function\b|public |private |const |let |var |"
    r"for .*:\s*$|if .*:\s*$|while .*:\s*$|>>> )|[;{}]\s*$|\)\s*:\s*$|=>|\bprint\(", re.M)
_QUANTITY = re.compile(r"\b(how (many|much|long|far|old)|calculate|compute|solve|what is the (total|sum|value)|"
                       r"percent|remainder|equation)\b", re.I)


def detect_kind(text: str) -> str:
    """``code`` if the text looks like code, ``math`` if numbers carry a word problem, else ``knowledge``.

    Code: at least two lines, or a fifth of the non-blank lines, match a code
    pattern (``def``, ``import``, ``return``, braces, a trailing ``;``, a Python
    block header, a doctest prompt …). Math: at least two number tokens making 5 %
    or more of the tokens, or any number together with a quantity question
    ("how many", "calculate", "what is the total" …).
    """
    lines = [line for line in text.splitlines() if line.strip()]
    code_lines = len(_CODE_LINE.findall(text))
    if code_lines >= 2 or (lines and code_lines / len(lines) >= 0.2 and code_lines >= 1 and len(lines) > 1):
        return "code"
    tokens = tokenize(text)
    numbers = sum(t.isdecimal() for t in tokens)
    if (numbers >= 2 and numbers / max(len(tokens), 1) >= 0.05) or (numbers >= 1 and _QUANTITY.search(text)):
        return "math"
    return "knowledge"


def _cut(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[:max_chars] + " …"


def judge_messages(item_text: str, record_text: str, kind: str, max_chars: int = 3000) -> list[dict[str, str]]:
    """The chat messages asking the model about one pair (``kind`` one of :data:`KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    question = _QUESTIONS[kind]
    user = (f"{question}\n\nText A:\n\"\"\"\n{_cut(item_text, max_chars)}\n\"\"\"\n\n"
            f"Text B:\n\"\"\"\n{_cut(record_text, max_chars)}\n\"\"\"\n\n{question} Answer Yes or No.")
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def pair_key(model_key: str, kind: str, item_text: str, record_text: str, max_chars: int) -> str:
    """The cache key of one judgement: SHA-256 of everything the answer depends on."""
    payload = "\x1f".join([model_key, kind, str(PROMPT_VERSION), str(max_chars), item_text, record_text])
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


# -- scoring --------------------------------------------------------------------------------


def _answer_tokens(tokenizer: Any, words: Sequence[str]) -> list[int]:
    """The first token of each answer word as the model would start its reply (distinct ids)."""
    ids = []
    for word in words:
        encoded = tokenizer.encode(word, add_special_tokens=False)
        if encoded and encoded[0] not in ids:
            ids.append(encoded[0])
    if not ids:
        raise ValueError(f"the tokenizer cannot encode any of {words}")
    return ids


def _forward(loaded: LoadedModel, prompts: list[str]) -> np.ndarray:
    """Next-token logits after each prompt, ``(len(prompts), vocab)`` float32; one batched forward pass.

    Prompts are padded on the left, with position ids counted from each
    prompt's first real token, so a prompt gets the same logits whatever it is
    batched with (up to float rounding).
    """
    import torch

    tokenizer = loaded.tokenizer
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    mask = batch["attention_mask"].to(loaded.device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        out = loaded.model(input_ids=batch["input_ids"].to(loaded.device), attention_mask=mask,
                           position_ids=positions, logits_to_keep=1)
    return out.logits[:, -1, :].float().cpu().numpy()


def score_pairs(loaded: LoadedModel, item_texts: Sequence[str], record_texts: Sequence[str],
                kinds: Sequence[str], max_chars: int = 3000, batch_size: int = 4,
                progress: Progress | None = None) -> np.ndarray:
    """P(yes) of every pair from the model (no cache; see :func:`judge_pairs`)."""
    tokenizer = loaded.tokenizer
    yes, no = _answer_tokens(tokenizer, YES), _answer_tokens(tokenizer, NO)
    prompts = [tokenizer.apply_chat_template(judge_messages(a, b, k, max_chars), tokenize=False,
                                             add_generation_prompt=True)
               for a, b, k in zip(item_texts, record_texts, kinds)]
    scores = np.empty(len(prompts), dtype=np.float64)
    order = np.argsort([len(p) for p in prompts], kind="stable")  # similar lengths together: less padding
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        logits = _forward(loaded, [prompts[i] for i in chosen]).astype(np.float64)
        top = logits.max(axis=1, keepdims=True)
        p_yes = np.exp(logits[:, yes] - top).sum(axis=1)
        p_no = np.exp(logits[:, no] - top).sum(axis=1)
        scores[chosen] = p_yes / (p_yes + p_no)
        if progress:
            progress(min(start + batch_size, len(order)), len(order), "judging pairs")
    return scores


# -- the cache ------------------------------------------------------------------------------

_CACHE_SCHEMA = pa.schema([("pair_key", pa.string()), ("kind", pa.string()), ("score", pa.float64()),
                           ("created_at", pa.string())])


def _cache_dir(ws: Workspace, model_key: str) -> Path:
    return ws.indexes_dir / "judge" / model_key


def read_cache(ws: Workspace, model_key: str) -> dict[str, float]:
    """Every cached judgement of a model: ``pair_key -> P(yes)``."""
    import pyarrow.parquet as pq

    out: dict[str, float] = {}
    for path in sorted(_cache_dir(ws, model_key).glob("*.parquet")):
        table = pq.read_table(path, columns=["pair_key", "score"])
        out.update(zip(table.column("pair_key").to_pylist(), table.column("score").to_pylist()))
    return out


def _append_cache(ws: Workspace, model_key: str, keys: list[str], kinds: list[str], scores: np.ndarray) -> None:
    table = pa.table({"pair_key": keys, "kind": kinds, "score": scores.astype(np.float64),
                      "created_at": [utc_now()] * len(keys)}, schema=_CACHE_SCHEMA)
    atomic_write_parquet(_cache_dir(ws, model_key) / f"{ws.new_id()}.parquet", table)


_LOADED: dict[tuple[str, str, str], LoadedModel] = {}


def get_model(ws: Workspace, config: JudgeConfig) -> LoadedModel:
    """The judge's model, loaded once per process (the last one used is kept)."""
    key = (str(ws.root), config.model, config.device)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_instruct(config.model, ws=ws, device=config.device)
    return _LOADED[key]


def judge_pairs(ws: Workspace, pairs: pd.DataFrame, config: JudgeConfig | None = None,
                progress: Progress | None = None, model: LoadedModel | None = None,
                flush_every: int = 32) -> np.ndarray:
    """P(yes) for every row of ``pairs`` (columns ``item_text``, ``record_text``, optional ``kind``).

    A row's ``kind`` (when given and not null) overrides ``config.kind``;
    ``auto`` is resolved by :func:`detect_kind` on the item text. Known pairs
    come from the cache; the others are scored by the model (``model``, or
    :func:`get_model`), in batches, and appended to the cache every
    ``flush_every`` pairs, so an interrupted scan keeps what it paid for. The
    model is not loaded when every pair is cached. Scoring all rows is the
    caller's choice: ``config.max_pairs`` is applied where candidates are chosen.
    """
    config = config or JudgeConfig()
    report = progress or (lambda done, total, message: None)
    missing = {"item_text", "record_text"} - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs need columns item_text and record_text; missing {sorted(missing)}")
    items = ["" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
             for v in pairs["item_text"].tolist()]
    records = ["" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
               for v in pairs["record_text"].tolist()]
    given = pairs["kind"].tolist() if "kind" in pairs else [None] * len(pairs)
    kinds = []
    for item, kind in zip(items, given):
        kind = kind if isinstance(kind, str) and kind else config.kind
        if kind == "auto":
            kind = detect_kind(item)
        elif kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; use auto or one of {', '.join(KINDS)}")
        kinds.append(kind)

    model_key = model.key if model is not None else resolve(config.model).key
    keys = [pair_key(model_key, k, a, b, config.max_chars) for k, a, b in zip(kinds, items, records)]
    cached = read_cache(ws, model_key)
    todo: dict[str, int] = {}  # key -> first row asking it
    for row, key in enumerate(keys):
        if key not in cached and key not in todo:
            todo[key] = row
    report(len(keys) - len(todo), len(keys), f"{len(keys) - len(todo)} of {len(keys)} pairs already judged")
    if todo:
        loaded = model or get_model(ws, config)
        rows = list(todo.values())
        for start in range(0, len(rows), flush_every):
            chunk = rows[start : start + flush_every]
            scores = score_pairs(loaded, [items[r] for r in chunk], [records[r] for r in chunk],
                                 [kinds[r] for r in chunk], config.max_chars, config.batch_size)
            chunk_keys = [keys[r] for r in chunk]
            _append_cache(ws, model_key, chunk_keys, [kinds[r] for r in chunk], scores)
            cached.update(zip(chunk_keys, scores.tolist()))
            done = len(keys) - len(todo) + start + len(chunk)
            report(done, len(keys), "judging pairs")
    return np.array([cached[k] for k in keys], dtype=np.float64)
