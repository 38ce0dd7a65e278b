"""Judged stage and local models: prompts per kind, P(yes) from logits, the per-pair cache, the GGUF cache.

The model loads once for the module (de-quantising the built-in GGUF takes ~15 s
on a small CPU); every other load in here must come from the workspace cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthscope.compute import models
from synthscope.compute.models import DEFAULT_INSTRUCT, ModelError, load_instruct, resolve
from synthscope.contamination import judge
from synthscope.contamination.judge import JudgeConfig, detect_kind, judge_messages, judge_pairs
from synthscope.core.workspace import Workspace

CODE = '''from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """ Check if in given list of numbers, are any two numbers closer to each other than threshold.
    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)
    False
    """
    for idx, elem in enumerate(numbers):
        for idx2, elem2 in enumerate(numbers):
            if idx != idx2 and abs(elem - elem2) < threshold:
                return True
    return False
'''
CODE_REPHRASED = CODE.replace("has_close_elements", "nearby_exist").replace("numbers", "values")
MATH = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
        "How many clips did Natalia sell altogether in April and May?")
KNOWLEDGE = "The ecological approach to urban sociology involved studying which aspects of city life?"


@pytest.fixture(scope="module")
def model_ws(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, models.LoadedModel]:
    ws = Workspace.init(tmp_path_factory.mktemp("judge") / "ws")
    loaded = load_instruct(DEFAULT_INSTRUCT, ws=ws, device="cpu")
    assert not loaded.from_cache  # the first load de-quantises and writes the cache
    return ws, loaded


# -- models ---------------------------------------------------------------------------------


def test_second_load_reads_the_safetensors_cache(model_ws, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    ws, first = model_ws
    cache = ws.indexes_dir / "models" / first.key
    assert (cache / "model.safetensors").is_file() and (cache / "tokenizer.json").is_file()
    assert "quantization_config" not in json.loads((cache / "config.json").read_text())

    def no_gguf(*args, **kwargs):
        raise AssertionError("the GGUF was de-quantised again")

    monkeypatch.setattr(models, "_load_gguf", no_gguf)
    second = load_instruct(DEFAULT_INSTRUCT, ws=ws, device="cpu")
    assert second.from_cache and second.key == first.key
    ids = first.tokenizer("Is the sky blue?", return_tensors="pt")["input_ids"]
    assert torch.equal(ids, second.tokenizer("Is the sky blue?", return_tensors="pt")["input_ids"])
    with torch.inference_mode():
        assert torch.equal(first.model(ids).logits, second.model(ids).logits)  # the same float32 weights
    assert second.model.dtype == torch.float32 and second.device == "cpu"


def test_model_names_resolve_or_fail_clearly(tmp_path: Path) -> None:
    source = resolve(DEFAULT_INSTRUCT)
    assert source.is_gguf and source.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert resolve(str(source.folder / source.gguf_file)).key == source.key  # the file itself: same model
    assert resolve("some-org/some-model").hub_id == "some-org/some-model"
    with pytest.raises(ModelError, match="not a local file or folder"):
        resolve(str(tmp_path / "missing" / "model.gguf"))
    with pytest.raises(ModelError, match="not a model folder"):
        resolve(str(tmp_path))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelError, match="not a .gguf"):
        resolve(str(tmp_path / "notes.txt"))
    with pytest.raises(ModelError, match="--online"):  # the suite runs offline
        load_instruct("synthscope-test-nobody/no-such-model", device="cpu")


# -- prompts --------------------------------------------------------------------------------


def test_each_kind_has_its_own_question() -> None:
    code, math, knowledge = (judge_messages("A text", "B text", k)[1]["content"] for k in judge.KINDS)
    assert "same inputs and the same outputs" in code and "names" in code and "formatting" in code
    assert "numbers" in math and "names" in math
    assert "word order" in knowledge and "phrasing" in knowledge
    assert len({code, math, knowledge}) == 3
    for text in (code, math, knowledge):
        assert "A text" in text and "B text" in text and text.endswith("Answer Yes or No.")
    assert "…" in judge_messages("x" * 50, "y", "code", max_chars=10)[1]["content"]
    with pytest.raises(ValueError):
        judge_messages("a", "b", "poetry")


def test_auto_kind_reads_the_item_text() -> None:
    assert detect_kind(CODE) == "code"
    assert detect_kind("function add(a, b) {\n  return a + b;\n}") == "code"
    assert detect_kind(MATH) == "math"
    assert detect_kind("Find the degree of the field extension Q(sqrt(2), sqrt(3)) over Q.") == "math"
    assert detect_kind(KNOWLEDGE) == "knowledge"
    assert detect_kind("Which president signed the Civil Rights Act of 1964?") == "knowledge"
    with pytest.raises(ValueError):
        JudgeConfig(kind="poetry")


# -- scoring and the cache --------------------------------------------------------------------


def test_score_is_p_yes_from_the_next_token_logits(model_ws) -> None:
    import torch

    _, loaded = model_ws
    tok = loaded.tokenizer
    prompt = tok.apply_chat_template(judge_messages(MATH, KNOWLEDGE, "math"), tokenize=False,
                                     add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    with torch.inference_mode():
        logits = loaded.model(**tok(prompt, return_tensors="pt")).logits[0, -1].double()
    ids = [tok.encode(w, add_special_tokens=False)[0] for w in ("Yes", "yes", "No", "no")]
    probs = torch.softmax(logits[ids], dim=0)
    expected = float(probs[0] + probs[1])

    alone = judge.score_pairs(loaded, [MATH], [KNOWLEDGE], ["math"])
    assert alone[0] == pytest.approx(expected, abs=1e-5)
    # Deterministic, and the same when batched with a longer prompt (left padding, shifted positions).
    batched = judge.score_pairs(loaded, [MATH, CODE], [KNOWLEDGE, CODE_REPHRASED], ["math", "code"], batch_size=2)
    assert batched[0] == pytest.approx(alone[0], abs=1e-4)
    assert judge.score_pairs(loaded, [MATH], [KNOWLEDGE], ["math"])[0] == alone[0]


def test_judgements_are_cached_per_pair(model_ws, monkeypatch: pytest.MonkeyPatch) -> None:
    ws, loaded = model_ws
    calls: list[int] = []
    forward = judge._forward

    def counting(model, prompts):
        calls.append(len(prompts))
        return forward(model, prompts)

    monkeypatch.setattr(judge, "_forward", counting)
    pairs = pd.DataFrame({"item_text": [CODE, MATH, CODE], "record_text": [CODE_REPHRASED, KNOWLEDGE, CODE_REPHRASED]})
    config = JudgeConfig(device="cpu", batch_size=8)
    first = judge_pairs(ws, pairs, config, model=loaded)
    assert sum(calls) == 2  # the repeated pair is asked once
    assert first.shape == (3,) and first[0] == first[2] and ((first >= 0) & (first <= 1)).all()
    shards = list((ws.indexes_dir / "judge" / loaded.key).glob("*.parquet"))
    assert len(shards) == 1

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded although every pair is cached")

    monkeypatch.setattr(judge, "get_model", no_model)
    calls.clear()
    again = judge_pairs(ws, pairs, config)  # no model given: known pairs must not load one
    assert calls == [] and np.array_equal(first, again)

    # A new pair, or the same texts under another prompt kind, is asked; the rest is not.
    more = pd.DataFrame({"item_text": [MATH, MATH], "record_text": [KNOWLEDGE, KNOWLEDGE],
                         "kind": [None, "knowledge"]})
    scores = judge_pairs(ws, more, config, model=loaded)
    assert sum(calls) == 1 and scores[0] == first[1]
    assert len(list((ws.indexes_dir / "judge" / loaded.key).glob("*.parquet"))) == 2  # appended, not rewritten
    assert set(judge.read_cache(ws, loaded.key).values()) >= {float(scores[1]), *first.tolist()}


def test_reasons_of_the_logits_backend_and_the_packaged_model_as_a_chat_judge(model_ws) -> None:
    """The real SmolLM2: its logits reason is the number; as a chat judge, prefilled, it writes a JSON verdict."""
    ws, loaded = model_ws
    pairs = pd.DataFrame({"item_text": [MATH, CODE], "record_text": [KNOWLEDGE, CODE_REPHRASED]})
    scores, reasons = judge.judge_pairs_with_reasons(ws, pairs, JudgeConfig(device="cpu"), model=loaded)
    assert reasons == [f"P(yes) = {s:.2f} from next-token logits" for s in scores]

    chat = JudgeConfig(backend="chat", device="cpu", max_new_tokens=48)
    scores, reasons = judge.judge_pairs_with_reasons(ws, pairs, chat, model=loaded)
    print("chat judge:", scores.tolist(), reasons)
    parsed = ~np.isnan(scores)
    assert parsed.any() and ((scores[parsed] >= 0) & (scores[parsed] <= 1)).all()
    assert all(r and "\n" not in r for r in reasons)
    assert list((ws.indexes_dir / "judge").glob(f"chat-{loaded.key}/*.parquet"))
