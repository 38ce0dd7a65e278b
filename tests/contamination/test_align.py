"""Aligned word runs: what a rephrasing shares with its benchmark item, as character ranges of both."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from synthscope.contamination.align import align, align_bounded, split_ranges
from synthscope.core.text import record_text, tokenize

ITEM_PROMPT = '''from typing import List


def mean_absolute_deviation(numbers: List[float]) -> float:
    """ For a given list of input numbers, calculate Mean Absolute Deviation
    around the mean of this dataset.
    Mean Absolute Deviation is the average absolute difference between each
    element and a centerpoint (mean in this case):
    MAD = average | x - x_mean |
    >>> mean_absolute_deviation([1.0, 2.0, 3.0, 4.0])
    1.0
    """
'''
ITEM_ANSWER = '''    mean = sum(numbers) / len(numbers)
    return sum(abs(x - mean) for x in numbers) / len(numbers)
'''
REPHRASED = '''Implement the function below.

from typing import List

def avg_abs_spread(values: List[float]) -> float:
    """Work out how far, on average, each value sits from the arithmetic mean of the list:
    take the mean, then average the absolute gaps |v - mean| over all values.
    >>> avg_abs_spread([1.0, 2.0, 3.0, 4.0])
    1.0
    """

    centre = sum(values) / len(values)
    return sum(abs(v - centre) for v in values) / len(values)'''

# An unrelated benchmark-like item: different task, different words.
UNRELATED = '''def is_palindrome(text: str) -> bool:
    """Checks if given string is a palindrome
    >>> is_palindrome('aba')
    True
    >>> is_palindrome('zbcd')
    False
    """
    return text == text[::-1]'''

PROSE_ITEM = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
              "How many clips did Natalia sell altogether in April and May?")
PROSE_REPHRASED = ("In April Natalia sold hair clips to 48 friends. In May she sold only half as many clips. "
                   "Altogether, how many clips did Natalia sell in April and May?")


def words(text: str, ranges: list[tuple[int, int]]) -> list[list[str]]:
    return [tokenize(text[a:b]) for a, b in ranges]


def test_a_rephrased_function_shares_its_signature_doctest_and_body_shape() -> None:
    item = record_text(ITEM_PROMPT, ITEM_ANSWER)
    found = align(item, REPHRASED)
    assert len(found.left) == len(found.right) >= 5
    left, right = words(item, found.left), words(REPHRASED, found.right)
    assert left == right  # run k is the same words on both sides
    shared = [" ".join(run) for run in left]
    assert any(run.startswith("from typing import list") for run in shared)
    assert any("1 0 2 0 3 0 4 0" in run for run in shared)  # the doctest input survived the rephrasing
    assert any(run.startswith("return sum abs") for run in shared)
    assert "def" not in shared and "a" not in shared  # nothing kept is a lone short word
    assert found.tokens == sum(map(len, left)) and 0.25 < found.share < 1


def test_a_rephrased_word_problem_shares_its_names_and_numbers() -> None:
    found = align(PROSE_ITEM, PROSE_REPHRASED)
    left = [" ".join(run) for run in words(PROSE_ITEM, found.left)]
    assert left == [" ".join(run) for run in words(PROSE_REPHRASED, found.right)]
    assert any("natalia sell" in run for run in left) and any("in april and may" in run for run in left)
    assert any("half as many clips" in run for run in left)


def test_runs_are_in_order_disjoint_and_inside_both_texts() -> None:
    item = record_text(ITEM_PROMPT, ITEM_ANSWER)
    found = align(item, REPHRASED)
    for text, ranges in ((item, found.left), (REPHRASED, found.right)):
        assert all(0 <= a < b <= len(text) for a, b in ranges)
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(ranges, ranges[1:]))
        assert all(text[a].isalnum() and text[b - 1].isalnum() for a, b in ranges)  # runs start and end on words


def test_unrelated_texts_share_few_ranges() -> None:
    item = record_text(ITEM_PROMPT, ITEM_ANSWER)
    related = align(item, REPHRASED)
    unrelated = align(item, UNRELATED)
    assert len(unrelated.left) <= 2 and unrelated.share < 0.1
    assert related.tokens >= 4 * max(unrelated.tokens, 1)
    assert align(PROSE_ITEM, UNRELATED).left == []


def test_matching_ignores_case_and_unicode_form_and_maps_back_to_the_original() -> None:
    left = "The ﬁnal ANSWER is Café au lait"
    right = "the final answer is CAFÉ AU LAIT, surely"
    found = align(left, right)
    assert [left[a:b] for a, b in found.left] == ["The ﬁnal ANSWER is Café au lait"]
    assert [right[a:b] for a, b in found.right] == ["the final answer is CAFÉ AU LAIT"]


def test_short_lone_words_are_dropped_and_long_ones_kept() -> None:
    found = align("cat sat on mat quietly", "dog on rug quietly")
    assert [w for w in words("cat sat on mat quietly", found.left)] == [["quietly"]]
    assert align("a b", "b a").left == []
    assert align("", "anything at all") == align("", "anything at all")
    assert align("", "anything").tokens == 0 and align("x y", "").left == []


@given(st.text(alphabet=st.sampled_from("ab cdZ9_.\n"), max_size=50),
       st.text(alphabet=st.sampled_from("ab cdZ9_.\n"), max_size=50))
def test_paired_runs_always_hold_the_same_tokens(left: str, right: str) -> None:
    found = align(left, right)
    assert words(left, found.left) == words(right, found.right)
    assert all(len(run) >= 2 or len(run[0]) >= 4 for run in words(left, found.left))


def test_long_texts_are_aligned_in_their_windows_with_offsets_into_the_whole() -> None:
    filler = "lorem ipsum dolor " * 40
    left = filler + PROSE_ITEM
    right = PROSE_REPHRASED + " " + filler
    window_left = (len(filler), len(left))
    window_right = (0, len(PROSE_REPHRASED))
    bounded = align_bounded(left, right, window_left, window_right, max_chars=300)
    direct = align(PROSE_ITEM, PROSE_REPHRASED)
    assert bounded.left == [(a + len(filler), b + len(filler)) for a, b in direct.left]
    assert bounded.right == direct.right
    assert align_bounded(PROSE_ITEM, PROSE_REPHRASED) == direct  # short texts: whole, windows unused


def test_split_ranges_of_record_text_into_prompt_and_answer() -> None:
    prompt, answer = "def f(x):", "return x"
    text = record_text(prompt, answer)
    assert text == "def f(x):\n\nreturn x"
    in_prompt, in_answer = split_ranges([(4, 19)], prompt, answer)  # "f(x):\n\nreturn x"
    assert [prompt[a:b] for a, b in in_prompt] == ["f(x):"]
    assert [answer[a:b] for a, b in in_answer] == ["return x"]
    assert split_ranges([(0, 3)], prompt, "") == ([(0, 3)], [])
    assert split_ranges([(9, 11)], prompt, answer) == ([], [])  # the separator is neither field
