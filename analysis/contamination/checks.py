"""Task-aware checks: is a semantic match the same problem, or only the same topic?

An embedding cannot tell "the same problem restated" from "another problem on
the same topic": at corpus scale a code benchmark's items all have neighbours
about primes, palindromes and sorting at cosines as high as true rephrasings.
What a benchmark item *carries* can tell them apart, cheaply and
deterministically. A check runs on a pair the semantic stage matched and
answers yes (the record solves or states this very item: its verdict becomes
``confirmed``), no (it ran and the record does not), or not applicable. Which
check applies is decided by what the item carries (:func:`task_kind`):

``code_tests``
    The item has its own tests (HumanEval ``test`` + ``entry_point``, MBPP
    ``test_list``): the functions the record defines are run against them in a
    sandbox (:mod:`synthscope.contamination.code_check`). A record that
    passes most of the asserts but not all (``code_check.COUNT_SHARE`` of at
    least ``COUNT_MIN_ASSERTS``: with fewer, a neighbouring problem agrees on the
    easy ones) neither confirms nor refutes. Passing another
    problem's tests happened 5 times in 26,732 HumanEval pairs, each an item
    whose few asserts cannot tell it from a neighbour (``make bench``,
    "Task-aware code check").
``final_answer``
    Math with a final answer (GSM8K's ``#### N``): the record states the same
    final number and shares most of the item's other numbers. A same-kind
    problem with other numbers has another answer.
``choice``
    Multiple choice (the ``mmlu`` preset: lettered choices in the prompt, the
    correct choice's text as the answer): the record carries the correct
    choice, and either a distractor too or a choice long enough not to occur by
    chance.
``answer``
    Any other item with an answer: the answer's words occur close to the part
    of the record that matched the question (answer proximity).

Every outcome carries a one-line ``reason`` that the evidence view shows
("passes HumanEval/13's tests with gcd()", "states the final answer 18 and 4 of
the item's 5 numbers").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from synthscope.datasets.fields import LETTERS

_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?")
_FINAL = re.compile(r"####\s*(-?[\d,]*\.?\d+)")
_CHOICE = re.compile(rf"^([{LETTERS}])[.)]\s+(.*)$", re.MULTILINE)
_WORD = re.compile(r"\w+")
PROXIMITY_CHARS = 400  # an answer counts as near the match within this many characters of the matched window
MIN_ANSWER_WORDS = 3  # shorter answers ("4", "True") occur anywhere by chance: no proximity check for them
MIN_CHOICE_CHARS = 25  # a correct choice this long, found alone, is evidence; shorter needs a distractor beside it


@dataclass(frozen=True)
class CheckResult:
    """One check of one (item, record) pair."""

    check: str  # code_tests | final_answer | choice | answer | "" (none applies)
    passed: bool | None  # None: not applicable, or could not run (the reason says which)
    reason: str
    answer_leaked: bool = False  # the record carries the item's answer (label leakage)


NOT_APPLICABLE = CheckResult("", None, "no task-aware check applies to this item")


def task_kind(raw: Mapping[str, Any], prompt: str, answer: str) -> str:
    """Which check an item supports, from what it carries; ``""`` when none does."""
    from synthscope.contamination.code_check import has_code_tests

    if has_code_tests(dict(raw)):
        return "code_tests"
    if _FINAL.search(answer or ""):
        return "final_answer"
    if answer and len(_CHOICE.findall(prompt or "")) >= 2:
        return "choice"
    if len(_WORD.findall(answer or "")) >= MIN_ANSWER_WORDS:
        return "answer"
    return ""


def _numbers(text: str) -> list[str]:
    return [n.replace(",", "").rstrip("0").rstrip(".") if "." in n else n.replace(",", "")
            for n in _NUMBER.findall(text)]


def final_answer(item_prompt: str, item_answer: str, record: str) -> CheckResult:
    """The record states the item's final answer and shares most of its numbers."""
    found = _FINAL.search(item_answer)
    if not found:
        return CheckResult("final_answer", None, "the item states no final answer")
    final = _numbers(found.group(1))
    if not final:
        return CheckResult("final_answer", None, "the item's final answer is not a number")
    in_record = set(_numbers(record))
    given = sorted(set(_numbers(item_prompt)))
    shared = [n for n in given if n in in_record]
    states = final[0] in in_record
    enough = not given or len(shared) * 2 >= len(given)
    reason = (f"{'states' if states else 'does not state'} the final answer {final[0]} and shares "
              f"{len(shared)} of the item's {len(given)} numbers")
    return CheckResult("final_answer", states and enough, reason, answer_leaked=states)


def _normal(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def choice(item_prompt: str, item_answer: str, record: str) -> CheckResult:
    """The record carries the correct choice, with a distractor or a choice too long to be chance."""
    choices = [text for _, text in _CHOICE.findall(item_prompt)]
    correct = _normal(item_answer)
    if not correct:
        return CheckResult("choice", None, "the item has no correct choice")
    body = f" {_normal(record)} "
    has_correct = f" {correct} " in body
    distractors = [c for c in choices if _normal(c) and _normal(c) != correct and f" {_normal(c)} " in body]
    passed = has_correct and (bool(distractors) or len(correct) >= MIN_CHOICE_CHARS)
    if not has_correct:
        reason = "does not carry the correct choice"
    else:
        also = f" and {len(distractors)} distractor(s)" if distractors else ""
        reason = f"carries the correct choice{also}"
        if not passed:
            reason += ", too short to be evidence alone"
    return CheckResult("choice", passed, reason, answer_leaked=has_correct)


def answer_proximity(item_answer: str, record: str, span: Sequence[int] | None) -> CheckResult:
    """The item's answer words occur near the record window that matched the question."""
    words = set(_WORD.findall(item_answer.lower()))
    if len(words) < MIN_ANSWER_WORDS:
        return CheckResult("answer", None, "the item's answer is too short to look for")
    start, end = (int(span[0]), int(span[1])) if span is not None and len(span) == 2 else (0, len(record))
    near = set(_WORD.findall(record[max(0, start - PROXIMITY_CHARS):end + PROXIMITY_CHARS].lower()))
    share = len(words & near) / len(words)
    passed = share >= 0.8
    return CheckResult("answer", passed, f"{share:.0%} of the answer's words near the matched text",
                       answer_leaked=passed)


@dataclass(frozen=True)
class Pair:
    """What a check needs of one pair: the item (its raw row, prompt and answer) and the record's text."""

    item_id: str
    raw: Mapping[str, Any]
    prompt: str
    answer: str
    record: str
    record_span: Sequence[int] | None = None


def run_checks(pairs: Sequence[Pair], workers: int = 2) -> list[CheckResult]:
    """The check each pair's item supports, for every pair (code runs in the sandbox, in parallel)."""
    kinds = [task_kind(p.raw, p.prompt, p.answer) for p in pairs]
    out: list[CheckResult] = [NOT_APPLICABLE] * len(pairs)
    code = [i for i, k in enumerate(kinds) if k == "code_tests"]
    if code:
        from synthscope.contamination.code_check import COUNT_MIN_ASSERTS, COUNT_SHARE, check_pairs

        results = check_pairs([dict(pairs[i].raw) for i in code], [pairs[i].record for i in code],
                              [(n, n) for n in range(len(code))], workers=workers)
        for i, r in zip(code, results):
            if not r.applicable or r.status in ("error", "unavailable"):  # could not tell: neither way
                out[i] = CheckResult("code_tests", None, r.reason)
            elif not r.passed and (r.share or 0.0) >= COUNT_SHARE and r.asserts >= COUNT_MIN_ASSERTS:
                # most of the item's behaviour: a restatement with another convention (capitals, fib(0)), or a
                # near miss; neither confirms nor refutes, so the semantic match decides
                out[i] = CheckResult("code_tests", None, r.reason)
            else:
                out[i] = CheckResult("code_tests", bool(r.passed), r.reason, answer_leaked=bool(r.passed))
    for i, (pair, kind) in enumerate(zip(pairs, kinds)):
        if kind == "final_answer":
            out[i] = final_answer(pair.prompt, pair.answer, pair.record)
        elif kind == "choice":
            out[i] = choice(pair.prompt, pair.answer, pair.record)
        elif kind == "answer":
            out[i] = answer_proximity(pair.answer, pair.record, pair.record_span)
    return out
