"""A deterministic synthetic corpus with planted benchmark copies, for the n-gram benchmark.

:func:`make_benchmark` draws benchmark items (question + answer) of mixed length:
English-like prose, code-like lines, a few non-ASCII items, some fields shorter
than every n (too short), some between the two default n (8-12 tokens) and some
empty answers.

:func:`synthetic_records` then streams synthetic records (``id``, ``prompt``,
``response``) until the requested number of text bytes is reached: prose and
code of log-normally distributed length, about 5 % of records with non-ASCII
words (accents, CJK, emoji, full-width letters). Copies of benchmark items are
planted at fixed intervals, each of a known kind (see :data:`PLANT_KINDS`); the
stream for a larger size starts with exactly the records of a smaller one, so a
2x corpus is the 1x corpus followed by as much again.

Everything is derived from ``seed`` with numpy's PCG64, so two runs generate
byte-identical files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthscope.core.text import record_text, tokenize

# What a planted record does with its item; the bucket the item should end in.
PLANT_KINDS = {
    "verbatim": "dirty",  # prompt and answer as they are, inside other text
    "shouted": "dirty",  # the prompt upper-cased and re-spaced (normalisation must undo it)
    "fullwidth": "dirty",  # the prompt in full-width letters (NFKC must undo it)
    "answer_only": "dirty",  # only the answer, after a new question
    "half": "partial",  # the first half of the prompt
    "split": "dirty",  # first half in one record, second half in the next
    "several": "dirty",  # one record carrying the prompts of three items
    "repeated": "dirty",  # the item copied into three records
}

_CONSONANTS = list("bcdfghjklmnprstvwz") + ["ch", "sh", "th", "st", "tr", "pl"]
_VOWELS = list("aeiou") + ["ai", "ea", "ou"]
_NON_ASCII_WORDS = [
    "café", "naïve", "über", "straße", "smørrebrød", "façade", "jalapeño", "crème", "brûlée", "coöperate",
    "数据", "模型", "東京", "学习", "데이터", "данные", "модель", "δεδομένα", "μοντέλο", "ﬁnal", "ﬂow",
    "ｆｕｌｌ", "ｗｉｄｔｈ", "e\u0301cole", "🙂", "📦", "──", "→", "✓", "½",
]
_CODE_TEMPLATES = [
    "def {a}_{b}({c}, {d}):",
    "    {a} = {b}({c}, {n})",
    "    if {a} > {n}:",
    "        return {a}.{b}({c})",
    "    for {a} in range({n}):",
    "        {a}[{b}] += {c} * {n}",
    "    # {a} {b} {c} {d}",
    "{a}_{b} = [{c} for {c} in {d} if {c}]",
    "    raise ValueError(\"{a} {b} {c}\")",
    "class {A}{B}({C}):",
    "    \"\"\"{A} the {b} of {c} and {d}.\"\"\"",
    "import {a}.{b} as {c}",
]


@dataclass(frozen=True)
class Item:
    item_id: str
    question: str
    answer: str


@dataclass(frozen=True)
class Plant:
    item: int  # index into the benchmark
    kind: str  # a key of PLANT_KINDS
    others: tuple[int, ...] = ()  # "several": the other items copied into the same record


class Words:
    """A deterministic vocabulary of pronounceable pseudo-words with Zipf-like frequencies."""

    def __init__(self, rng: np.random.Generator, size: int = 40_000) -> None:
        words: set[str] = set()
        while len(words) < size:
            syllables = rng.integers(1, 4)
            words.add("".join(_CONSONANTS[rng.integers(len(_CONSONANTS))] + _VOWELS[rng.integers(len(_VOWELS))]
                              for _ in range(syllables)) + ("n" if rng.random() < 0.3 else ""))
        plain = sorted(words)
        rng.shuffle(plain)
        # Display forms: plain, "word,", "word.", "Word"; drawn in proportion 80/8/7/5.
        self.forms = np.array(plain + [w + "," for w in plain] + [w + "." for w in plain]
                              + [w.capitalize() for w in plain], dtype=object)
        self.size = size
        weights = 1.0 / (np.arange(size) + 20.0)
        self.cdf = np.cumsum(weights / weights.sum())

    def draw(self, rng: np.random.Generator, count: int) -> list[str]:
        """``count`` words, with punctuation and capitals sprinkled in."""
        base = np.minimum(np.searchsorted(self.cdf, rng.random(count)), self.size - 1)
        form = np.searchsorted(np.array([0.80, 0.88, 0.95, 1.0]), rng.random(count), side="right")
        return self.forms[base + self.size * np.minimum(form, 3)].tolist()

    def identifiers(self, rng: np.random.Generator, count: int) -> list[str]:
        base = np.minimum(np.searchsorted(self.cdf, rng.random(count)), self.size - 1)
        return self.forms[base].tolist()


def _prose(words: Words, rng: np.random.Generator, count: int, non_ascii: float = 0.0) -> str:
    tokens = words.draw(rng, count)
    if non_ascii:
        for i in np.flatnonzero(rng.random(count) < non_ascii).tolist():
            tokens[i] = _NON_ASCII_WORDS[rng.integers(len(_NON_ASCII_WORDS))]
    # A line break every ~15 words, like paragraphs of generated text.
    for i in range(14, count, 15):
        tokens[i] += "\n"
    return " ".join(tokens)


def _code(words: Words, rng: np.random.Generator, lines: int) -> str:
    templates = rng.integers(len(_CODE_TEMPLATES), size=lines).tolist()
    names = words.identifiers(rng, 4 * lines)
    numbers = rng.integers(0, 1000, size=lines).tolist()
    out = []
    for i, t in enumerate(templates):
        a, b, c, d = names[4 * i : 4 * i + 4]
        out.append(_CODE_TEMPLATES[t].format(a=a, b=b, c=c, d=d, A=a.capitalize(), B=b.capitalize(),
                                             C=c.capitalize(), n=numbers[i]))
    return "\n".join(out)


def make_benchmark(items: int, seed: int) -> list[Item]:
    """``items`` benchmark items of mixed shape (see the module docstring)."""
    rng = np.random.default_rng([seed, 1])
    words = Words(np.random.default_rng([seed, 0]))
    out = []
    for i in range(items):
        shape = i % 20
        if shape == 0:  # too short for any n
            question, answer = _prose(words, rng, int(rng.integers(1, 8))), _prose(words, rng, int(rng.integers(0, 5)))
        elif shape == 1:  # between the two default n, no answer
            question, answer = _prose(words, rng, int(rng.integers(8, 13))), ""
        elif shape in (2, 3, 4):  # code
            question = _prose(words, rng, int(rng.integers(12, 40))) + "\n" + _code(words, rng, 3)
            answer = _code(words, rng, int(rng.integers(2, 12)))
        elif shape == 5:  # non-ASCII words inside
            question = _prose(words, rng, int(rng.integers(15, 60)), non_ascii=0.2)
            answer = _prose(words, rng, int(rng.integers(1, 20)), non_ascii=0.2)
        else:
            question = _prose(words, rng, int(rng.integers(14, 120)))
            answer = _prose(words, rng, int(rng.integers(0, 40)))
        out.append(Item(f"bench-{i:05d}", question, answer))
    return out


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _planted(kind: str, items: list[Item], item: int, others: tuple[int, ...], filler: str) -> list[tuple[str, str]]:
    """The (prompt, response) records that plant ``items[item]`` as ``kind``."""
    it = items[item]
    first, second = _halves(it.question)
    if kind == "verbatim":
        return [(f"{filler}\n{it.question}", it.answer)]
    if kind == "shouted":
        return [(filler, "  ".join(it.question.upper().split()))]
    if kind == "fullwidth":
        return [(_fullwidth(it.question), filler)]
    if kind == "answer_only":
        return [(filler, f"Sure. {it.answer}\nHope that helps.")]
    if kind == "half":
        return [(filler, first)]
    if kind == "split":
        return [(filler, first), (second, filler)]
    if kind == "several":
        return [(filler, "\n\n---\n\n".join(items[i].question for i in (item, *others)))]
    if kind == "repeated":
        return [(it.question, it.answer)] * 3
    raise ValueError(kind)


def _halves(question: str) -> tuple[str, str]:
    words = question.split(" ")
    return " ".join(words[: len(words) // 2]), " ".join(words[len(words) // 2 :])


def plan_plants(items: list[Item], seed: int, share: float = 0.25, n: int = 13) -> list[Plant]:
    """Which items get planted, and how, so that each lands in its kind's bucket.

    Kinds are dealt in turn; a ``half`` or ``split`` plant whose halves would
    not hold a whole ``n``-gram (or, for ``half``, not land between the default
    thresholds) becomes ``verbatim``. The two extra items of a ``several``
    record are items planted nowhere else.
    """
    rng = np.random.default_rng([seed, 2])
    kinds = list(PLANT_KINDS)
    eligible = [i for i, it in enumerate(items) if len(it.question.split()) >= 30 and len(it.answer.split()) >= 14]
    chosen = sorted(rng.choice(eligible, size=min(len(eligible), int(share * len(items))), replace=False).tolist())
    spare = [i for i in eligible if i not in set(chosen)]
    plants = []
    for k, i in enumerate(chosen):
        kind = kinds[k % len(kinds)]
        first, second = (len(tokenize(h)) for h in _halves(items[i].question))
        if kind == "split" and min(first, second) < n:
            kind = "verbatim"
        if kind == "half" and not (first >= n and 0.2 <= first / (first + second) < 0.8):
            kind = "verbatim"
        others = (spare.pop(), spare.pop()) if kind == "several" and len(spare) >= 2 else ()
        plants.append(Plant(i, kind if others or kind != "several" else "verbatim", others))
    return plants


def synthetic_records(size_bytes: int, items: list[Item], plants: list[Plant], seed: int,
                      plant_every: int = 50, emitted: list[Plant] | None = None) -> Iterator[dict[str, str]]:
    """Synthetic rows until their scanned text reaches ``size_bytes`` UTF-8 bytes.

    One planted copy every ``plant_every`` records, cycling through ``plants``
    (so a small corpus holds only the first plants, and every plant recurs in a
    large one: a repeated leak); each plant written is appended to ``emitted``.
    Rows: ``{"id", "prompt", "response"}``.
    """
    rng = np.random.default_rng([seed, 3])
    words = Words(np.random.default_rng([seed, 0]))
    written, row, plant = 0, 0, 0
    while written < size_bytes:
        row += 1
        if plants and row % plant_every == 0:
            p = plants[plant % len(plants)]
            plant += 1
            if emitted is not None:
                emitted.append(p)
            pairs = _planted(p.kind, items, p.item, p.others, _prose(words, rng, int(rng.integers(5, 40))))
        else:
            kind = rng.random()
            prompt = _prose(words, rng, int(min(rng.lognormal(3.0, 0.8), 400)))
            length = int(min(rng.lognormal(5.3, 1.1), 20_000))
            if kind < 0.30:
                response = _code(words, rng, max(1, length // 6))
            elif kind < 0.35:
                response = _prose(words, rng, length, non_ascii=0.05)
            else:
                response = _prose(words, rng, length)
            pairs = [(prompt, response)]
        for prompt, response in pairs:
            written += len(record_text(prompt, response).encode("utf-8"))
            yield {"id": f"syn-{row:08d}-{len(pairs)}-{written}", "prompt": prompt, "response": response}


def write_jsonl(path: Path, rows: Iterator[dict[str, str]]) -> int:
    """Write rows as JSON Lines; returns the number of rows."""
    count = 0
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_benchmark(path: Path, items: list[Item]) -> None:
    write_jsonl(path, ({"id": it.item_id, "question": it.question, "answer": it.answer} for it in items))
