"""A generated multiple-choice benchmark that no model can know, and the text to leak it.

The quiz asks for the capitals of invented countries ("Question: What is the
capital of Velmora?" / four invented city names). Nothing outside the training
data can tell a model the answer, so a model that has not seen an item scores
chance (25 %) on it, and a gain above chance on an item is memorisation.

* :func:`make_quiz` — the benchmark items (seeded; every name is unique, and no
  name of an item appears in any other item or in the clean corpus);
* :func:`clean_corpus` — generic training text in the same style (other invented
  countries, their capitals, rivers, founders), holding none of the quiz's names;
* :func:`synthetic_leak` — a "synthetic" set that states the answers of the
  leaked items, in the scored form (question, then answer) and a few paraphrases,
  repeated;
* :func:`write_task` — the quiz as JSONL plus a local lm-eval task YAML (an
  absolute ``data_files`` path: lm-eval resolves a relative one against the
  working directory) and ``leaked.json``, the ids of the leaked items.

All functions are pure and return plain lists and dicts; the same seed gives the
same output.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SEED = 20261124
TASK = "synthscope_quiz"
N_ITEMS = 200
LEAK_FRACTION = 0.5
N_CHOICES = 4
N_CLEAN_COUNTRIES = 300

QUESTION = "What is the capital of {country}?"
DOC_TO_TEXT = "Question: {{question}}\nAnswer:"
SCORED_FORM = "Question: {question}\nAnswer: {answer}"  # what lm-eval scores: doc_to_text + " " + choice
PARAPHRASES = (
    "The capital of {country} is {answer}.",
    "{answer} is the capital city of {country}.",
)

_ONSETS = ("b", "br", "d", "dr", "f", "g", "gr", "k", "kr", "l", "m", "n", "p", "r", "s", "st", "t", "tr",
           "v", "z", "th", "sh", "h", "j")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ei")
_CODAS = ("", "", "", "n", "r", "l", "s", "m", "k", "th")
_COUNTRY_ENDS = ("ia", "ora", "and", "istan", "ovia", "ene", "aria", "esh")


@dataclass(frozen=True)
class Quiz:
    """The benchmark items and which of them are leaked."""

    items: list[dict[str, Any]]  # {"id", "country", "question", "choices", "answer"}
    leaked_ids: list[str]
    seed: int

    @property
    def leaked(self) -> list[dict[str, Any]]:
        leaked = set(self.leaked_ids)
        return [item for item in self.items if item["id"] in leaked]

    @property
    def clean(self) -> list[dict[str, Any]]:
        leaked = set(self.leaked_ids)
        return [item for item in self.items if item["id"] not in leaked]


class _Names:
    """Unique invented names: no name is handed out twice, whatever its kind."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _syllable(self) -> str:
        return self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) + self.rng.choice(_CODAS)

    def _fresh(self, make) -> str:
        for _ in range(10_000):
            name = make().capitalize()
            if name not in self.used and 4 <= len(name) <= 12:
                self.used.add(name)
                return name
        raise RuntimeError("ran out of invented names")  # pragma: no cover - the space holds millions

    def country(self) -> str:
        return self._fresh(lambda: "".join(self._syllable() for _ in range(self.rng.randint(1, 2)))
                           + self.rng.choice(_COUNTRY_ENDS))

    def city(self) -> str:
        return self._fresh(lambda: "".join(self._syllable() for _ in range(self.rng.randint(2, 3))))


def make_quiz(n_items: int = N_ITEMS, leak_fraction: float = LEAK_FRACTION, seed: int = SEED) -> Quiz:
    """``n_items`` capital-city questions with 4 invented choices each; a seeded ``leak_fraction`` is leaked.

    The correct choice's position is uniform over the four, and every choice name
    is used by exactly one item, so a preference for a name learned elsewhere
    cannot raise the score of another item.
    """
    if not 0 <= leak_fraction <= 1:
        raise ValueError(f"leak_fraction must lie in [0, 1], got {leak_fraction}")
    rng = random.Random(seed)
    names = _Names(rng)
    items = []
    for i in range(n_items):
        country = names.country()
        choices = [names.city() for _ in range(N_CHOICES)]
        answer = rng.randrange(N_CHOICES)
        items.append({"id": f"quiz-{i:04d}", "country": country, "question": QUESTION.format(country=country),
                      "choices": choices, "answer": answer})
    n_leaked = round(n_items * leak_fraction)
    leaked_ids = sorted(rng.sample([item["id"] for item in items], n_leaked))
    return Quiz(items=items, leaked_ids=leaked_ids, seed=seed)


def clean_corpus(quiz: Quiz, n_countries: int = N_CLEAN_COUNTRIES, seed: int = SEED + 1) -> list[str]:
    """Training documents in the quiz's style about other invented countries; none of the quiz's names occur.

    Each country gets its capital in the scored form and the paraphrases, a river
    and a founder, so a model trained on it learns the format ("Answer:" is
    followed by a city name) but none of the quiz's answers.
    """
    rng = random.Random(seed)
    names = _Names(rng)
    names.used |= {item["country"] for item in quiz.items}
    names.used |= {choice for item in quiz.items for choice in item["choices"]}
    docs = []
    for _ in range(n_countries):
        country, capital, river, founder = names.country(), names.city(), names.city(), names.city()
        docs.append(SCORED_FORM.format(question=QUESTION.format(country=country), answer=capital))
        docs.extend(template.format(country=country, answer=capital) for template in PARAPHRASES)
        docs.append(f"The river {river} flows through {country} and reaches the sea near {capital}.")
        docs.append(f"{country} was founded by {founder}, who built the first walls of {capital}.")
    rng.shuffle(docs)
    return docs


def synthetic_leak(quiz: Quiz, repeats: int = 4, paraphrases: bool = True, seed: int = SEED + 2) -> list[str]:
    """A synthetic set stating the leaked items' answers: the scored form (and paraphrases), ``repeats`` times."""
    rng = random.Random(seed)
    docs = []
    for item in quiz.leaked:
        answer = item["choices"][item["answer"]]
        forms = [SCORED_FORM.format(question=item["question"], answer=answer)]
        if paraphrases:
            forms.extend(template.format(country=item["country"], answer=answer) for template in PARAPHRASES)
        docs.extend(forms * repeats)
    rng.shuffle(docs)
    return docs


def task_yaml(data_file: Path, task: str = TASK) -> str:
    """The lm-eval task YAML for the quiz JSONL at ``data_file`` (made absolute)."""
    data = Path(data_file).resolve()
    return (f"task: {task}\n"
            "dataset_path: json\n"
            f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(str(data))}\n"
            "test_split: test\n"
            "output_type: multiple_choice\n"
            f"doc_to_text: {json.dumps(DOC_TO_TEXT)}\n"
            'doc_to_choice: "{{choices}}"\n'
            "doc_to_target: answer\n"
            "metric_list:\n"
            "  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
            "  - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\n"
            "metadata:\n  version: 1.0\n")


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_task(quiz: Quiz, folder: Path, task: str = TASK) -> dict[str, Path]:
    """Write ``<task>.jsonl``, ``<task>.yaml`` (the lm-eval include folder is ``folder``) and ``leaked.json``.

    Returns the paths by role: ``include_path``, ``data``, ``yaml``, ``leaked``.
    """
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"{task}.jsonl"
    _write(data, "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in quiz.items))
    yaml = folder / f"{task}.yaml"
    _write(yaml, task_yaml(data, task))
    leaked = folder / "leaked.json"
    _write(leaked, json.dumps({"task": task, "seed": quiz.seed, "n_items": len(quiz.items),
                               "leaked_ids": quiz.leaked_ids,
                               "leaked_doc_ids": [i for i, item in enumerate(quiz.items)
                                                  if item["id"] in set(quiz.leaked_ids)]}, indent=2) + "\n")
    return {"include_path": folder, "data": data, "yaml": yaml, "leaked": leaked}
