"""Task-aware checks: each passes the same problem and refuses the same topic."""

from __future__ import annotations

from synthscope.contamination.checks import Pair, answer_proximity, choice, final_answer, run_checks, task_kind

GSM = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
       "How many clips did Natalia sell altogether in April and May?")
GSM_ANSWER = "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether.\n#### 72"
MMLU = "Which of these is a prime number?\nA. 21\nB. 27\nC. 29\nD. 33"


def test_the_check_follows_what_the_item_carries() -> None:
    assert task_kind({"test": "def check(c): pass", "entry_point": "f", "prompt": "def f():"}, "def f():", "") \
        == "code_tests"
    assert task_kind({}, GSM, GSM_ANSWER) == "final_answer"
    assert task_kind({}, MMLU, "29") == "choice"
    assert task_kind({}, "Who wrote Hamlet?", "William Shakespeare wrote it around 1600") == "answer"
    assert task_kind({}, "Who wrote Hamlet?", "Shakespeare") == ""  # too short to look for


def test_final_answer_needs_the_answer_and_the_numbers() -> None:
    restated = "Natalia sells clips: 48 in April, half as many in May. Total? She sold 72."
    other = "Tom sold 30 apples in June and twice as many in July. How many in all? 90"
    assert final_answer(GSM, GSM_ANSWER, restated).passed
    result = final_answer(GSM, GSM_ANSWER, other)
    assert result.passed is False and result.reason.startswith("does not state the final answer 72")
    same_answer_other_numbers = "Sam had 36 marbles and found 36 more: 72 in all."
    assert final_answer(GSM, GSM_ANSWER, same_answer_other_numbers).passed is False


def test_choice_needs_the_correct_choice_and_a_distractor_or_a_long_one() -> None:
    assert choice(MMLU, "29", "Is 29 prime? Options: 21, 27, 29 or 33. Answer: 29").passed
    assert choice(MMLU, "29", "29 is a prime number.").passed is False  # short, alone: could be chance
    long = "the mitochondria is the powerhouse of the cell"
    assert choice("What is it?\nA. " + long + "\nB. no", long, f"Fact: {long}.").passed
    assert choice(MMLU, "29", "21 and 27 are odd").reason == "does not carry the correct choice"


def test_answer_proximity_looks_near_the_matched_window() -> None:
    answer = "the treaty of westphalia ended the thirty years war"
    near = "Q: which treaty ended the war? A: The Treaty of Westphalia ended the Thirty Years War."
    assert answer_proximity(answer, near, [0, len(near)]).passed
    far = near[:40] + " " * 2000 + "Treaty of Westphalia ended the Thirty Years War"
    assert answer_proximity(answer, far, [0, 40]).passed is False


def test_run_checks_runs_code_in_the_sandbox_and_the_rest_inline() -> None:
    item = {"task_id": "T/1", "prompt": "def add(x, y):\n    \"\"\"Add.\"\"\"\n", "entry_point": "add",
            "canonical_solution": "    return x + y\n",
            "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"}
    pairs = [Pair("T/1", item, item["prompt"], item["canonical_solution"], "def plus(a, b):\n    return a + b\n"),
             Pair("T/1", item, item["prompt"], item["canonical_solution"], "def plus(a, b):\n    return a - b\n"),
             Pair("T/1", item, item["prompt"], item["canonical_solution"], "Adding is easy."),
             Pair("G/1", {}, GSM, GSM_ANSWER, "48 in April, half in May, 72 in total"),
             # code that needs a library the sandbox lacks says nothing about the problem: neither way
             Pair("T/1", item, item["prompt"], item["canonical_solution"],
                  "import numpy as np\ndef plus(a, b):\n    return int(np.add(a, b))\n")]
    results = run_checks(pairs)
    assert [(r.check, r.passed) for r in results] == [("code_tests", True), ("code_tests", False),
                                                     ("code_tests", None), ("final_answer", True),
                                                     ("code_tests", None)]
    assert "plus()" in results[0].reason and results[0].answer_leaked
    assert results[1].reason == "fails T/1's tests: plus() fails at least 1 of 2 asserts (AssertionError)"
    assert results[4].reason == ("T/1's tests could not run the record's code: plus() fails at least 1 of 2 asserts "
                                 "(NameError: name 'np' is not defined)")
