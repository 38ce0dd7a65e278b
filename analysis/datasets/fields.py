"""Field mapping: which columns of a source row make a record's prompt, answer and id.

A mapping turns one raw row (a dict) into :class:`Fields`. Presets cover the
common layouts; :func:`detect` picks one from the first row's columns when the
user names none.

==========  ==========================================================================
preset      prompt / answer / id
==========  ==========================================================================
humaneval   ``prompt`` / ``canonical_solution`` / ``task_id``
mmlu        question and lettered choices / text of the correct choice (headerless
            CSV ``question,A,B,C,D,answer``, or Hugging Face ``question, choices, answer``)
gsm8k       ``question`` / ``answer``
alpaca      ``instruction`` + ``input`` / ``output``
chat        system and user turns of ``messages`` / assistant turns / ``id`` when present
==========  ==========================================================================

Every mapping takes an ``id`` column (``dataclasses.replace(mapper, id=...)``): an ``--id-field``
given with a preset, or with a detected mapping, replaces the one it would have used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

LETTERS = "ABCDEFGHIJ"


class MissingField(ValueError):
    """A mapped field is absent from a row."""


@dataclass(frozen=True)
class Fields:
    prompt: str
    answer: str
    id: str | None = None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "\n".join(_text(v) for v in value)
    return str(value)


def _get(row: Mapping[str, Any], key: str) -> Any:
    if key not in row:
        shown = ", ".join(list(row)[:12]) or "none"
        raise MissingField(f"field {key!r} is missing (fields present: {shown})")
    return row[key]


@dataclass(frozen=True)
class Columns:
    """Generic mapping: prompt and answer are named columns, joined by blank lines."""

    prompt: tuple[str, ...]
    answer: tuple[str, ...] = ()
    id: str | None = None
    name: str = "columns"
    optional: frozenset[str] = frozenset()  # fields that may be absent (read as empty)

    def _part(self, row: Mapping[str, Any], keys: tuple[str, ...]) -> str:
        values = (_text(row.get(k)) if k in self.optional else _text(_get(row, k)) for k in keys)
        return "\n\n".join(t for t in values if t)

    def extract(self, row: Mapping[str, Any]) -> Fields:
        prompt = self._part(row, self.prompt)
        answer = self._part(row, self.answer)
        ident = _text(_get(row, self.id)) if self.id else None
        return Fields(prompt, answer, ident)

    def describe(self) -> str:
        parts = [f"prompt={'+'.join(self.prompt)}", f"answer={'+'.join(self.answer) or '-'}"]
        if self.id:
            parts.append(f"id={self.id}")
        return f"{self.name}: " + ", ".join(parts)


@dataclass(frozen=True)
class Mmlu:
    """Multiple choice: the question with lettered choices; the answer is the correct choice's text."""

    name: str = "mmlu"
    id: str | None = None

    def extract(self, row: Mapping[str, Any]) -> Fields:
        ident = _text(_get(row, self.id)) if self.id else None
        if "choices" in row:  # Hugging Face layout: question, choices (list), answer (index)
            question = _text(_get(row, "question"))
            listed = _get(row, "choices")
            if not isinstance(listed, (list, tuple)):
                raise MissingField(f"'choices' must be a list of choices, found {type(listed).__name__}")
            choices = [_text(c) for c in listed]
            key = _get(row, "answer")
        else:  # headerless CSV: question, A, B, C, D, answer letter
            values = [_text(row[k]) for k in row if k != self.id]
            if len(values) < 3:
                raise MissingField(f"an MMLU row needs a question, choices and an answer; got {len(values)} columns")
            question, choices, key = values[0], values[1:-1], values[-1]
        if len(choices) > len(LETTERS):
            raise MissingField(f"an MMLU row has at most {len(LETTERS)} choices (A-J); this one has {len(choices)}")
        correct = choices[_choice_index(key, len(choices))]
        lettered = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))
        return Fields(f"{question}\n{lettered}", correct, ident)

    def describe(self) -> str:
        return "mmlu: prompt=question+choices, answer=correct choice" + (f", id={self.id}" if self.id else "")


@dataclass(frozen=True)
class Chat:
    """``messages: [{role, content}]``: system/user turns make the prompt, assistant turns the answer."""

    name: str = "chat"
    id: str | None = None  # None: ``id`` when the row has one

    def extract(self, row: Mapping[str, Any]) -> Fields:
        messages = _get(row, "messages")
        if not isinstance(messages, Sequence) or isinstance(messages, str):
            raise MissingField("'messages' must be a list of {role, content} objects")
        prompt, answer = [], []
        for m in messages:
            if not isinstance(m, Mapping) or "content" not in m:
                raise MissingField("each message needs 'role' and 'content'")
            (answer if m.get("role") == "assistant" else prompt).append(_text(m["content"]))
        ident = _text(_get(row, self.id)) if self.id else _text(row["id"]) if "id" in row else None
        return Fields("\n\n".join(prompt), "\n\n".join(answer), ident)

    def describe(self) -> str:
        return "chat: prompt=system+user turns, answer=assistant turns" + (f", id={self.id}" if self.id else "")


def _choice_index(key: Any, count: int) -> int:
    """The 0-based choice an MMLU answer names: a letter (A, b, ...) or an index (2, "2", 2.0)."""
    index: int | None = None
    if isinstance(key, str):
        text = key.strip().upper()
        if len(text) == 1 and text in LETTERS:
            index = LETTERS.index(text)
        elif text.isascii() and text.isdigit() and len(text) < 10:
            index = int(text)
    elif isinstance(key, int) and not isinstance(key, bool):
        index = key
    elif isinstance(key, float) and key.is_integer():
        index = int(key)
    if index is None or not 0 <= index < count:
        raise MissingField(f"answer {str(key)[:40]!r} does not name one of {count} choices")
    return index


Mapper = Columns | Mmlu | Chat

PRESETS: dict[str, Mapper] = {
    "humaneval": Columns(("prompt",), ("canonical_solution",), "task_id", name="humaneval"),
    "mmlu": Mmlu(),
    "gsm8k": Columns(("question",), ("answer",), name="gsm8k"),
    "alpaca": Columns(("instruction", "input"), ("output",), name="alpaca", optional=frozenset({"input"})),
    "chat": Chat(),
}

_PROMPT_GUESSES = ("prompt", "question", "instruction", "input", "text", "content", "query")
_ANSWER_GUESSES = ("answer", "output", "completion", "response", "canonical_solution", "solution", "target")
_ID_GUESSES = ("id", "task_id", "uid", "record_id")


def detect(columns: Sequence[str]) -> Mapper:
    """Pick a preset or a generic mapping from a row's column names."""
    cols = set(columns)
    ident = next((c for c in _ID_GUESSES if c in cols), None)
    if "messages" in cols:
        return PRESETS["chat"]
    if {"prompt", "canonical_solution"} <= cols:
        return PRESETS["humaneval"]
    if {"instruction", "output"} <= cols:
        return replace(PRESETS["alpaca"], id=ident)  # type: ignore[type-var]
    if {"question", "choices", "answer"} <= cols:
        return PRESETS["mmlu"]
    if {"question", "answer"} <= cols:
        return replace(PRESETS["gsm8k"], id=ident)  # type: ignore[type-var]
    prompt = next((c for c in _PROMPT_GUESSES if c in cols), None)
    if prompt is None:
        raise MissingField(
            f"cannot tell which field is the prompt among: {', '.join(columns)}; "
            "name it with --prompt-field (or choose a --preset)"
        )
    answer = next((c for c in _ANSWER_GUESSES if c in cols and c != prompt), None)
    return Columns((prompt,), (answer,) if answer else (), ident, name="auto")
