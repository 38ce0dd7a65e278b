"""Judged contamination (optional): a model says whether two texts are the same problem.

For a benchmark item and a candidate synthetic record the model is shown both
texts and asked one question, worded for the kind of data:

* ``code`` — the same program: same objective, same inputs and outputs;
  names, formatting and wording do not matter;
* ``math`` — the same problem: same situation and structure of solution;
  names and changed numbers do not matter;
* ``knowledge`` — the same question with the same answer; word order and
  phrasing do not matter.

``kind="auto"`` picks per pair from the benchmark item's text (:func:`detect_kind`).

Backends (``[contamination.judge] backend``)
    ``logits`` (the default, offline, no setup)
        A local instruct model — by default the packaged SmolLM2-135M-Instruct
        (GGUF) — answers Yes or No. The prompt is rendered with the model's chat
        template and its generation prompt, so the next token is the first token
        of the answer. With ``z_t`` the next-token logit of token ``t``::

            P(yes) = Σ_{t∈Y} e^{z_t} / (Σ_{t∈Y} e^{z_t} + Σ_{t∈N} e^{z_t}),
            Y = {"Yes", "yes"},  N = {"No", "no"}

        one forward pass, no sampling: the same pair always gets the same score.
        The reason given is that number ("P(yes) = 0.73 from next-token logits").
    ``chat``
        Any local Hugging Face chat model (a folder, a .gguf, or a hub id from the
        local cache) writes a JSON verdict ``{"same_problem": true|false,
        "confidence": 0..1, "reason": "one line"}``, greedily, at most
        ``max_new_tokens`` tokens. The reply is started with ``{"same_problem":``
        (written after the generation prompt), so even a small model answers in
        the format. On CUDA through vLLM when the ``vllm`` package is installed
        and the model is not a GGUF; otherwise through transformers, in
        left-padded batches of ``batch_size`` on CUDA, one pair at a time on the
        CPU (padding costs more than it saves there).
    ``endpoint``
        An OpenAI-compatible server the operator runs (vLLM, llama.cpp, TGI, a
        hosted API) is asked for the same JSON verdict: ``POST
        {endpoint}/chat/completions`` with temperature 0 and ``response_format =
        {"type": "json_object"}``, at most ``concurrency`` requests in flight,
        retried with backoff on 429 and 5xx (:mod:`synthscope.compute.chat_endpoint`).
        A loopback endpoint works offline; any other host needs ``--online``. The
        key is read from the environment variable ``api_key_env`` names when a
        request is made and is stored nowhere. The endpoint comes from
        ``synthscope.toml`` or the command line only: a scan started from the
        dashboard cannot set it (:func:`synthscope.tasks.start_scan` accepts only the
        dashboard's own settings).

Score
    The logits backend's score is P(yes). A JSON verdict's is ``confidence`` when
    ``same_problem`` is true and ``1 − confidence`` when it is false (a verdict
    without a confidence counts as certain). The first JSON object in the reply
    that has ``same_problem`` is the verdict, so prose or code fences around it do
    not matter; a reply without one, or with a ``same_problem`` or
    ``confidence`` that is not a boolean or a probability, scores NaN with the
    reason ``"unparseable answer"`` (NaN never confirms a pair). A pair is
    *judged* contaminated when its score ``>= confirm_at``.

Cache
    A judgement is a pure function of the backend, the model, the prompt kind and
    version, the cut-off (and for the JSON backends ``max_new_tokens``) and the two
    texts; its SHA-256 is the pair's key. Answers are appended, never edited, as
    Parquet shards ``indexes/judge/<cache_name>/<shard>.parquet`` (``pair_key``,
    ``kind``, ``score``, ``created_at``, ``reason``; shards written before reasons
    were kept have no ``reason`` and still read), so a re-scan asks nothing it has
    asked before, and does not even load the model or reach the endpoint when
    every pair is known. ``cache_name`` is the model's key for ``logits`` (as
    before backends existed, so old answers still count), ``chat-<model key>``
    for ``chat``, and ``endpoint-<model>-<hash of the URL and model>`` for an
    endpoint (another server with the same model name is another judge).

Honest note: the built-in model (SmolLM2-135M-Instruct, 4-bit) is tiny; measured
on real rephrasings its scores are close to chance (see the project's
documentation), so this stage is off by default and a stronger model — a local
chat model on a GPU or a served one — should be named for real use.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from synthscope.compute.chat_endpoint import ChatEndpoint, check_env_name, check_url
from synthscope.compute.models import DEFAULT_INSTRUCT, LoadedModel, ModelError, load_instruct, resolve
from synthscope.core.base import utc_now
from synthscope.core.text import tokenize
from synthscope.core.workspace import Workspace, atomic_write_parquet

KINDS = ("code", "math", "knowledge")
BACKENDS = ("logits", "chat", "endpoint")
PROMPT_VERSION = 1  # bump whenever a question's wording changes: cached answers to old prompts then no longer apply
JSON_PROMPT_VERSION = 1  # the same for the JSON framing of the chat and endpoint backends
YES = ("Yes", "yes")
NO = ("No", "no")
UNPARSEABLE = "unparseable answer"
PREFILL = '{"same_problem":'  # the start of a local chat model's reply, written for it

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class JudgeConfig:
    """Settings of the judged stage (``[contamination.judge]`` in ``synthscope.toml``).

    No field holds a secret: the manifest of every scan stores them all.
    """

    model: str = DEFAULT_INSTRUCT
    """``logits``/``chat``: the built-in name, a folder, a .gguf, or a hub id (see compute.models);
    ``endpoint``: the name the server serves."""
    device: str = "auto"
    """``auto`` (CUDA if present), ``cpu`` or ``cuda[:n]`` (local backends)."""
    confirm_at: float = 0.5
    """Score (P(same problem)) from which the judge confirms a pair."""
    max_pairs: int = 200
    """The most pairs a scan sends to the judge (its best candidates first); the caller applies it."""
    kind: str = "auto"
    """Prompt for ``code``, ``math`` or ``knowledge`` data, or ``auto``: chosen per pair from the item's text."""
    max_chars: int = 3000
    """Each text is cut to this many characters before it is shown to the model (bounds time and memory)."""
    batch_size: int = 4
    """Pairs per forward pass (``logits``) or per generation batch on CUDA (``chat`` through transformers)."""
    backend: str = "logits"
    """``logits`` (P(yes) from next-token logits), ``chat`` (a local chat model's JSON verdict) or ``endpoint``."""
    max_new_tokens: int = 96
    """``chat``/``endpoint``: the longest verdict; room for the JSON and a one-line reason."""
    trust_remote_code: bool = False
    """Run a local model's own code (``logits``/``chat``); off unless you trust the model's author."""
    endpoint: str | None = None
    """``endpoint``: the OpenAI-compatible API's base URL, e.g. ``http://127.0.0.1:8000/v1``."""
    api_key_env: str | None = None
    """``endpoint``: the name of the environment variable holding the API key (never the key)."""
    timeout_s: float = 120.0
    """``endpoint``: seconds to wait for one answer."""
    concurrency: int = 4
    """``endpoint``: requests in flight at once."""
    retries: int = 4
    """``endpoint``: retries of a request answered 429 or 5xx (or timed out), with exponential backoff."""

    def __post_init__(self) -> None:
        if self.kind != "auto" and self.kind not in KINDS:
            raise ValueError(f"kind must be 'auto' or one of {', '.join(KINDS)}; got {self.kind!r}")
        if not 0 <= self.confirm_at <= 1:
            raise ValueError(f"confirm_at must be a probability, got {self.confirm_at}")
        if self.max_pairs < 0 or self.max_chars < 1 or self.batch_size < 1:
            raise ValueError("max_pairs must be >= 0, max_chars and batch_size >= 1")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}")
        if self.max_new_tokens < 1 or self.timeout_s <= 0 or self.concurrency < 1 or self.retries < 0:
            raise ValueError("max_new_tokens and concurrency must be >= 1, timeout_s > 0 and retries >= 0")
        if self.api_key_env is not None:
            check_env_name(self.api_key_env)
        if self.backend == "endpoint":
            if not self.endpoint:
                raise ValueError("backend 'endpoint' needs endpoint = the server's base URL, "
                                 "e.g. http://127.0.0.1:8000/v1")
            if self.model == DEFAULT_INSTRUCT:
                raise ValueError("backend 'endpoint' needs model = the name the server serves "
                                 "(what GET {endpoint}/models lists)")
            object.__setattr__(self, "endpoint", check_url(self.endpoint))
        elif self.endpoint is not None or self.api_key_env is not None:
            raise ValueError(f"endpoint and api_key_env are used only with backend = 'endpoint' "
                             f"(backend is {self.backend!r})")

    def chat_endpoint(self) -> ChatEndpoint:
        """The server of the ``endpoint`` backend."""
        if self.backend != "endpoint" or self.endpoint is None:
            raise ValueError(f"backend {self.backend!r} has no endpoint")
        return ChatEndpoint(self.endpoint, self.model, self.api_key_env, self.timeout_s, self.concurrency,
                            self.retries)


# -- prompts --------------------------------------------------------------------------------

_SYSTEM = "You check whether a benchmark problem was copied into training data. Answer with one word: Yes or No."
_SYSTEM_JSON = ("You check whether a benchmark problem was copied into training data. Reply with one JSON object and "
                'nothing else, with the keys "same_problem" (true or false), "confidence" (0 to 1) and "reason" (one '
                'short sentence), for example {"same_problem": false, "confidence": 0.7, '
                '"reason": "they ask for different outputs"}.')
_ANSWER = {"yes_no": "Answer Yes or No.", "json": "Answer with the JSON object only."}

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


def judge_messages(item_text: str, record_text: str, kind: str, max_chars: int = 3000,
                   answer: str = "yes_no") -> list[dict[str, str]]:
    """The chat messages asking the model about one pair (``kind`` one of :data:`KINDS`).

    ``answer`` is ``yes_no`` (the logits backend reads the first token) or
    ``json`` (the chat and endpoint backends parse a JSON verdict).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if answer not in _ANSWER:
        raise ValueError(f"answer must be one of {', '.join(_ANSWER)}; got {answer!r}")
    question = _QUESTIONS[kind]
    user = (f"{question}\n\nText A:\n\"\"\"\n{_cut(item_text, max_chars)}\n\"\"\"\n\n"
            f"Text B:\n\"\"\"\n{_cut(record_text, max_chars)}\n\"\"\"\n\n{question} {_ANSWER[answer]}")
    system = _SYSTEM if answer == "yes_no" else _SYSTEM_JSON
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def pair_key(model_key: str, kind: str, item_text: str, record_text: str, max_chars: int,
             backend: str = "logits", max_new_tokens: int = 0) -> str:
    """The cache key of one judgement: SHA-256 of everything the answer depends on.

    The logits backend's key is what it was before there were backends, so its
    cached answers still count; the others add the backend, the JSON prompt's
    version and ``max_new_tokens`` (a longer budget may turn a cut-off answer
    into a verdict).
    """
    if backend == "logits":
        parts = [model_key, kind, str(PROMPT_VERSION), str(max_chars), item_text, record_text]
    else:
        parts = [backend, model_key, kind, f"{PROMPT_VERSION}.{JSON_PROMPT_VERSION}", str(max_chars),
                 str(max_new_tokens), item_text, record_text]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


# -- JSON verdicts ----------------------------------------------------------------------------

_DECODER = json.JSONDecoder()
_PYTHON_BOOL = re.compile(r"\b(True|False)\b")
_MAX_ANSWER_CHARS = 20_000  # an endpoint that ignores max_tokens must not make parsing quadratic in a book


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def _first_verdict(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` with a ``same_problem`` key (keys lower-cased), else the first object.

    Python's ``True``/``False`` (small models write them) are read as JSON's ``true``/``false``.
    """
    text = text[:_MAX_ANSWER_CHARS]
    lenient = _PYTHON_BOOL.sub(lambda m: m.group().lower(), text)  # same length: positions still match
    first = None
    for match in re.finditer(r"\{", text):
        try:
            value, _ = _DECODER.raw_decode(text, match.start())
        except ValueError:
            try:
                value, _ = _DECODER.raw_decode(lenient, match.start())
            except ValueError:
                continue
        if isinstance(value, dict):
            value = {str(k).strip().lower(): v for k, v in value.items()}
            if "same_problem" in value:
                return value
            first = first if first is not None else value
    return first


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "yes": True, "false": False, "no": False}.get(value.strip().lower())
    return None


def _as_probability(value: Any) -> float | None:
    """A confidence in [0, 1]; one in (1, 100] is read as a percentage; anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip().rstrip("%")
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number < 0 or number > 100:
        return None
    return number / 100 if number > 1 else number


def parse_verdict(text: str) -> tuple[float, str]:
    """The score and one-line reason of a JSON verdict in a model's reply (see the module docstring).

    Never raises: a reply without a usable verdict is ``(nan, "unparseable answer")``.
    """
    verdict = _first_verdict(text or "")
    if verdict is None:
        return math.nan, UNPARSEABLE
    same = _as_bool(verdict.get("same_problem"))
    confidence = _as_probability(verdict["confidence"]) if "confidence" in verdict else 1.0
    if same is None or confidence is None:
        return math.nan, UNPARSEABLE
    reason = verdict.get("reason")
    reason = _one_line(reason) if isinstance(reason, str) and reason.strip() else "no reason given"
    if "confidence" not in verdict:
        reason += " (no confidence given)"
    return (confidence if same else 1.0 - confidence), reason


# -- the logits backend -----------------------------------------------------------------------


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


def logits_reason(score: float) -> str:
    """The logits backend's reason: the number it read."""
    return f"P(yes) = {score:.2f} from next-token logits"


# -- the chat backend -------------------------------------------------------------------------


class ChatModel(Protocol):
    """A local chat model the ``chat`` backend can ask: its tokenizer (for the chat template) and greedy generation."""

    key: str
    tokenizer: Any

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        """The greedy continuation of each rendered prompt, in order."""
        ...


def chat_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The messages rendered with the tokenizer's chat template, ready for the reply, which :data:`PREFILL` starts.

    A template that refuses a system message (some do) gets it at the top of the user's.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError("the chat judge needs a chat (instruct) model with a chat template; this tokenizer has none")
    from jinja2 import TemplateError

    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except TemplateError:
        system, user = messages[0]["content"], messages[1]["content"]
        text = tokenizer.apply_chat_template([{"role": "user", "content": f"{system}\n\n{user}"}], tokenize=False,
                                             add_generation_prompt=True)
    return text + PREFILL


def generate_greedy(loaded: LoadedModel, prompts: Sequence[str], max_new_tokens: int,
                    batch_size: int = 1) -> list[str]:
    """Greedy continuations of ``prompts`` (decoded, special tokens dropped), in order.

    Prompts are sorted by length and generated ``batch_size`` at a time, padded
    on the left (transformers derives each row's positions from the attention
    mask), so a prompt's continuation does not depend on what it is batched with
    beyond float rounding.
    """
    import torch

    tokenizer = loaded.tokenizer
    texts = [""] * len(prompts)
    order = np.argsort([len(p) for p in prompts], kind="stable")
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            batch = tokenizer([prompts[i] for i in chosen], return_tensors="pt", padding=True,
                              add_special_tokens=False).to(loaded.device)
            with torch.inference_mode():
                out = loaded.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                            temperature=None, top_p=None, top_k=None,
                                            pad_token_id=tokenizer.pad_token_id)
            for row, tokens in zip(chosen, out[:, batch["input_ids"].shape[1]:]):
                texts[row] = tokenizer.decode(tokens, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return texts


class TransformersChat:
    """A :class:`ChatModel` over transformers: batched on CUDA, one prompt at a time on the CPU."""

    def __init__(self, loaded: LoadedModel, batch_size: int = 4) -> None:
        self.loaded = loaded
        self.key = loaded.key
        self.tokenizer = loaded.tokenizer
        self.batch_size = batch_size if loaded.device.startswith("cuda") else 1

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        return generate_greedy(self.loaded, prompts, max_new_tokens, self.batch_size)


class VllmChat:
    """A :class:`ChatModel` over vLLM (installed, with a CUDA GPU); vLLM schedules the batches."""

    def __init__(self, name: str, trust_remote_code: bool = False) -> None:
        from vllm import LLM

        source = resolve(name)
        self.key = source.key
        self.llm = LLM(model=str(source.folder or source.hub_id), trust_remote_code=trust_remote_code,
                       dtype="bfloat16")
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        from vllm import SamplingParams

        outputs = self.llm.generate(prompts, SamplingParams(temperature=0.0, max_tokens=max_new_tokens),
                                    use_tqdm=False)
        return [o.outputs[0].text for o in outputs]


def use_vllm(config: JudgeConfig) -> bool:
    """Whether the chat backend runs on vLLM: installed, CUDA present and wanted, and the model not a GGUF."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None or not config.device.startswith(("auto", "cuda")):
        return False
    import torch

    return torch.cuda.is_available() and not resolve(config.model).is_gguf


def chat_pairs(chat: ChatModel, item_texts: Sequence[str], record_texts: Sequence[str], kinds: Sequence[str],
               max_chars: int = 3000, max_new_tokens: int = 96) -> tuple[np.ndarray, list[str]]:
    """Score and reason of every pair from a local chat model's JSON verdicts (no cache)."""
    prompts = [chat_prompt(chat.tokenizer, judge_messages(a, b, k, max_chars, "json"))
               for a, b, k in zip(item_texts, record_texts, kinds)]
    replies = chat.generate(prompts, max_new_tokens)
    parsed = [parse_verdict(PREFILL + reply) for reply in replies]
    return np.array([s for s, _ in parsed], dtype=np.float64), [r for _, r in parsed]


def endpoint_pairs(endpoint: ChatEndpoint, item_texts: Sequence[str], record_texts: Sequence[str],
                   kinds: Sequence[str], max_chars: int = 3000, max_new_tokens: int = 96,
                   progress: Progress | None = None) -> tuple[np.ndarray, list[str]]:
    """Score and reason of every pair from an OpenAI-compatible endpoint's JSON verdicts (no cache)."""
    conversations = [judge_messages(a, b, k, max_chars, "json") for a, b, k in zip(item_texts, record_texts, kinds)]
    replies = endpoint.complete_all(conversations, max_new_tokens, json_mode=True, progress=progress)
    parsed = [parse_verdict(reply) for reply in replies]
    return np.array([s for s, _ in parsed], dtype=np.float64), [r for _, r in parsed]


# -- the cache ------------------------------------------------------------------------------

_CACHE_SCHEMA = pa.schema([("pair_key", pa.string()), ("kind", pa.string()), ("score", pa.float64()),
                           ("created_at", pa.string()), ("reason", pa.string())])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60] or "model"


def model_key(config: JudgeConfig) -> str:
    """What the cache keys name as the model: the local model's key, or the endpoint's URL and model name."""
    if config.backend == "endpoint":
        digest = hashlib.sha1(f"{config.endpoint}\x1f{config.model}".encode()).hexdigest()[:10]
        return f"{_slug(config.model)}-{digest}"
    return resolve(config.model).key


def cache_name(backend: str, key: str) -> str:
    """The folder under ``indexes/judge/`` of a backend's answers (the bare key for ``logits``, as before)."""
    return key if backend == "logits" else f"{backend}-{key}"


def _cache_dir(ws: Workspace, name: str) -> Path:
    return ws.indexes_dir / "judge" / name


def read_answers(ws: Workspace, name: str) -> dict[str, tuple[float, str | None]]:
    """Every cached judgement in ``indexes/judge/<name>/``: ``pair_key -> (score, reason)``.

    ``reason`` is None for answers from shards written before reasons were kept.
    """
    import pyarrow.parquet as pq

    out: dict[str, tuple[float, str | None]] = {}
    for path in sorted(_cache_dir(ws, name).glob("*.parquet")):
        has_reason = "reason" in pq.read_schema(path).names
        table = pq.read_table(path, columns=["pair_key", "score", "reason"] if has_reason else ["pair_key", "score"])
        reasons = table.column("reason").to_pylist() if has_reason else [None] * table.num_rows
        out.update(zip(table.column("pair_key").to_pylist(),
                       zip(table.column("score").to_pylist(), reasons)))
    return out


def read_cache(ws: Workspace, name: str) -> dict[str, float]:
    """Every cached judgement in ``indexes/judge/<name>/``: ``pair_key -> score``."""
    return {key: score for key, (score, _) in read_answers(ws, name).items()}


def _append_cache(ws: Workspace, name: str, keys: list[str], kinds: list[str], scores: np.ndarray,
                  reasons: list[str]) -> None:
    table = pa.table({"pair_key": keys, "kind": kinds, "score": np.asarray(scores, dtype=np.float64),
                      "created_at": [utc_now()] * len(keys), "reason": reasons}, schema=_CACHE_SCHEMA)
    atomic_write_parquet(_cache_dir(ws, name) / f"{ws.new_id()}.parquet", table)


# -- the models, loaded once ---------------------------------------------------------------------

_LOADED: dict[tuple[Any, ...], Any] = {}


def _once(key: tuple[Any, ...], load: Callable[[], Any]) -> Any:
    if key not in _LOADED:
        _LOADED.clear()  # one judge model in memory at a time
        _LOADED[key] = load()
    return _LOADED[key]


def get_model(ws: Workspace, config: JudgeConfig) -> LoadedModel:
    """The logits judge's model, loaded once per process (the last one used is kept)."""
    return _once(("logits", str(ws.root), config.model, config.device, config.trust_remote_code),
                 lambda: load_instruct(config.model, ws=ws, device=config.device,
                                       trust_remote_code=config.trust_remote_code))


def get_chat(ws: Workspace, config: JudgeConfig) -> ChatModel:
    """The chat judge's model (vLLM when :func:`use_vllm`, else transformers), loaded once per process."""
    if use_vllm(config):
        return _once(("vllm", config.model, config.trust_remote_code),
                     lambda: VllmChat(config.model, config.trust_remote_code))
    return _once(("chat", str(ws.root), config.model, config.device, config.trust_remote_code, config.batch_size),
                 lambda: TransformersChat(load_instruct(config.model, ws=ws, device=config.device,
                                                        trust_remote_code=config.trust_remote_code),
                                          config.batch_size))


# -- judging pairs ------------------------------------------------------------------------------


def _texts(pairs: pd.DataFrame, column: str) -> list[str]:
    return ["" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
            for v in pairs[column].tolist()]


def _kinds(pairs: pd.DataFrame, items: list[str], default: str) -> list[str]:
    given = pairs["kind"].tolist() if "kind" in pairs else [None] * len(pairs)
    kinds = []
    for item, kind in zip(items, given):
        kind = kind if isinstance(kind, str) and kind else default
        if kind == "auto":
            kind = detect_kind(item)
        elif kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; use auto or one of {', '.join(KINDS)}")
        kinds.append(kind)
    return kinds


Scorer = Callable[[list[str], list[str], list[str], Progress], tuple[np.ndarray, list[str]]]


def _scorer(ws: Workspace, config: JudgeConfig, model: Any) -> Scorer:
    """Score and reasons of a chunk of pairs with ``config``'s backend (loading the model now, if any)."""
    if config.backend == "endpoint":
        endpoint = config.chat_endpoint()
        return lambda a, b, k, report: endpoint_pairs(endpoint, a, b, k, config.max_chars, config.max_new_tokens,
                                                      report)
    if config.backend == "chat":
        chat = model if model is not None else get_chat(ws, config)
        if isinstance(chat, LoadedModel):
            chat = TransformersChat(chat, config.batch_size)
        return lambda a, b, k, report: chat_pairs(chat, a, b, k, config.max_chars, config.max_new_tokens)
    loaded = model if model is not None else get_model(ws, config)

    def logits(a: list[str], b: list[str], k: list[str], report: Progress) -> tuple[np.ndarray, list[str]]:
        scores = score_pairs(loaded, a, b, k, config.max_chars, config.batch_size)
        return scores, [logits_reason(s) for s in scores.tolist()]

    return logits


def judge_pairs_with_reasons(ws: Workspace, pairs: pd.DataFrame, config: JudgeConfig | None = None,
                             progress: Progress | None = None, model: Any = None,
                             flush_every: int = 32) -> tuple[np.ndarray, list[str]]:
    """The score (P(same problem)) and a one-line reason for every row of ``pairs``.

    ``pairs`` has columns ``item_text``, ``record_text`` and optionally ``kind``;
    a row's ``kind`` (when given and not null) overrides ``config.kind``, and
    ``auto`` is resolved by :func:`detect_kind` on the item text. Known pairs
    come from the cache; the others go to ``config.backend`` (``model`` — a
    :class:`LoadedModel`, or for ``chat`` any :class:`ChatModel` — or the
    configured one, loaded only when some pair is not cached) and are appended to
    the cache every ``flush_every`` pairs, so an interrupted scan keeps what it
    paid for. A score is NaN, with the reason ``"unparseable answer"``, when a
    JSON backend's reply held no verdict. Scoring all rows is the caller's choice:
    ``config.max_pairs`` is applied where candidates are chosen. Errors of the
    endpoint (unreachable, refused offline, a 4xx answer, retries used up) raise
    :class:`synthscope.compute.chat_endpoint.EndpointError`; the chunks answered
    before it stay cached.
    """
    config = config or JudgeConfig()
    report = progress or (lambda done, total, message: None)
    missing = {"item_text", "record_text"} - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs need columns item_text and record_text; missing {sorted(missing)}")
    items, records = _texts(pairs, "item_text"), _texts(pairs, "record_text")
    kinds = _kinds(pairs, items, config.kind)

    key = model.key if model is not None and config.backend != "endpoint" else model_key(config)
    name = cache_name(config.backend, key)
    keys = [pair_key(key, k, a, b, config.max_chars, config.backend, config.max_new_tokens)
            for k, a, b in zip(kinds, items, records)]
    cached = read_answers(ws, name)
    todo: dict[str, int] = {}  # key -> first row asking it
    for row, pair in enumerate(keys):
        if pair not in cached and pair not in todo:
            todo[pair] = row
    known = len(keys) - len(todo)
    report(known, len(keys), f"{known} of {len(keys)} pairs already judged")
    if todo:
        score = _scorer(ws, config, model)
        rows = list(todo.values())
        step = max(flush_every, config.concurrency) if config.backend == "endpoint" else flush_every
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            done_before = known + start
            scores, reasons = score([items[r] for r in chunk], [records[r] for r in chunk], [kinds[r] for r in chunk],
                                    lambda done, total, msg, base=done_before: report(base + done, len(keys), msg))
            chunk_keys = [keys[r] for r in chunk]
            _append_cache(ws, name, chunk_keys, [kinds[r] for r in chunk], scores, reasons)
            cached.update(zip(chunk_keys, zip(scores.tolist(), reasons)))
            report(done_before + len(chunk), len(keys), "judging pairs")
    scores = np.array([cached[k][0] for k in keys], dtype=np.float64)
    reasons = [cached[k][1] or (logits_reason(cached[k][0]) if config.backend == "logits" else "no reason cached")
               for k in keys]
    return scores, reasons


def judge_pairs(ws: Workspace, pairs: pd.DataFrame, config: JudgeConfig | None = None,
                progress: Progress | None = None, model: Any = None, flush_every: int = 32) -> np.ndarray:
    """The scores of :func:`judge_pairs_with_reasons` alone (what the scan reads until it shows reasons)."""
    return judge_pairs_with_reasons(ws, pairs, config, progress, model, flush_every)[0]
