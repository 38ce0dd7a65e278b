"""Field presets and detection (synthscope.datasets.fields): which column is the prompt, the answer, the id."""

from __future__ import annotations

import pytest

from synthscope.datasets.fields import PRESETS, MissingField, detect


@pytest.mark.parametrize(("columns", "preset"), [
    (["task_id", "prompt", "canonical_solution", "test", "entry_point"], "humaneval"),
    (["question", "choices", "answer"], "mmlu"),
    (["messages"], "chat"),
])
def test_known_shapes_get_their_preset(columns: list[str], preset: str) -> None:
    assert detect(columns) == PRESETS[preset]


def test_alpaca_and_gsm8k_keep_the_id_column() -> None:
    assert detect(["id", "instruction", "input", "output"]).extract(
        {"id": "a1", "instruction": "Add", "input": "2 and 3", "output": "5"}).id == "a1"
    fields = detect(["question", "answer", "uid"]).extract({"question": "1+1?", "answer": "#### 2", "uid": "q7"})
    assert (fields.prompt, fields.answer, fields.id) == ("1+1?", "#### 2", "q7")


def test_generic_columns_are_guessed_in_order_and_the_unguessable_is_named() -> None:
    fields = detect(["text", "completion"]).extract({"text": "Say hi", "completion": "hi"})
    assert (fields.prompt, fields.answer) == ("Say hi", "hi")
    with pytest.raises(MissingField, match="cannot tell which field is the prompt among: a, b"):
        detect(["a", "b"])


def test_mmlu_rows_put_lettered_choices_in_the_prompt_and_the_correct_choice_in_the_answer() -> None:
    fields = PRESETS["mmlu"].extract({"question": "2+2?", "choices": ["3", "4"], "answer": 1})
    assert fields.prompt == "2+2?\nA. 3\nB. 4" and fields.answer == "4"
    headerless = PRESETS["mmlu"].extract({"0": "2+2?", "1": "3", "2": "4", "3": "B"})
    assert headerless == fields
    with pytest.raises(MissingField, match="does not name one of 2 choices"):
        PRESETS["mmlu"].extract({"question": "2+2?", "choices": ["3", "4"], "answer": "C"})
