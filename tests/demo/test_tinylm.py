"""The quiz benchmark, the tiny LM trainer and the leak it shows through lm-eval.

The end-to-end test trains the demo's two models once for the module with a
shortened schedule (300 steps of 4 × 64 tokens, about 15 s each on 2 cores; the
effect is already complete there) and scores both through lm-eval.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from synthscope.demo import quiz as Q
from synthscope.demo import tinylm as T

MICRO = T.TinyLMConfig(vocab_size=300, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seq_len=16,
                       batch_size=2, steps=3, warmup_steps=1)
SHORT = T.TinyLMConfig(steps=300, warmup_steps=20)


def _names(text: str) -> set[str]:
    return set(re.findall(r"[A-Z][a-z]+", text))


# --------------------------------------------------------------------------- quiz


def test_quiz_is_deterministic_and_its_leak_bookkeeping_adds_up() -> None:
    quiz = Q.make_quiz()
    assert quiz == Q.make_quiz()
    assert Q.make_quiz(seed=1).items != quiz.items
    assert len(quiz.items) == Q.N_ITEMS and len(quiz.leaked_ids) == Q.N_ITEMS // 2
    ids = [item["id"] for item in quiz.items]
    assert len(set(ids)) == len(ids) and set(quiz.leaked_ids) <= set(ids)
    assert {i["id"] for i in quiz.leaked} | {i["id"] for i in quiz.clean} == set(ids)
    assert not {i["id"] for i in quiz.leaked} & {i["id"] for i in quiz.clean}
    # every name is used once: no item's choice can be learned from another item
    names = [item["country"] for item in quiz.items] + [c for item in quiz.items for c in item["choices"]]
    assert len(set(names)) == len(names)
    assert all(len(item["choices"]) == 4 and 0 <= item["answer"] < 4 for item in quiz.items)
    positions = [item["answer"] for item in quiz.items]
    assert all(25 <= positions.count(k) <= 75 for k in range(4))  # the answer's position carries no signal
    assert Q.clean_corpus(quiz) == Q.clean_corpus(quiz) and Q.synthetic_leak(quiz) == Q.synthetic_leak(quiz)


def test_clean_corpus_holds_no_quiz_name_and_the_leak_states_only_leaked_answers() -> None:
    quiz = Q.make_quiz()
    quiz_names = {item["country"] for item in quiz.items} | {c for item in quiz.items for c in item["choices"]}
    clean = Q.clean_corpus(quiz)
    assert not _names("\n".join(clean)) & quiz_names
    assert any(doc.startswith("Question: What is the capital of ") for doc in clean)  # same style as the quiz

    leak = Q.synthetic_leak(quiz, repeats=3)
    text = "\n".join(leak)
    for item in quiz.leaked:
        scored = f"Question: {item['question']}\nAnswer: {item['choices'][item['answer']]}"
        assert leak.count(scored) == 3
    clean_names = {item["country"] for item in quiz.clean} | {c for item in quiz.clean for c in item["choices"]}
    assert not _names(text) & clean_names
    distractors = {c for item in quiz.leaked for k, c in enumerate(item["choices"]) if k != item["answer"]}
    assert not _names(text) & distractors


def test_task_yaml_has_an_absolute_data_path_and_leaked_json_lists_the_leak(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quiz = Q.make_quiz(n_items=20, leak_fraction=0.25, seed=3)
    monkeypatch.chdir(tmp_path)
    paths = Q.write_task(quiz, Path("task"))  # relative on purpose
    spec = yaml.safe_load(paths["yaml"].read_text())
    data = Path(spec["dataset_kwargs"]["data_files"]["test"])
    assert data.is_absolute() and data == (tmp_path / "task" / f"{Q.TASK}.jsonl").resolve() and data.is_file()
    assert spec["output_type"] == "multiple_choice" and spec["test_split"] == "test"
    assert spec["doc_to_text"] == "Question: {{question}}\nAnswer:"
    assert {m["metric"] for m in spec["metric_list"]} == {"acc", "acc_norm"}
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    assert rows == quiz.items
    leaked = json.loads(paths["leaked"].read_text())
    assert leaked["leaked_ids"] == quiz.leaked_ids and len(quiz.leaked_ids) == 5
    assert [rows[d]["id"] for d in leaked["leaked_doc_ids"]] == quiz.leaked_ids


# --------------------------------------------------------------------------- trainer


def test_trained_model_round_trips_through_safetensors_only(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    texts = Q.clean_corpus(Q.make_quiz(n_items=4), n_countries=20)
    seen = []
    result = T.train(texts, tmp_path / "micro", MICRO, description="micro", progress=lambda *a: seen.append(a))
    assert not result.reused and seen[-1][:2] == (3, 3)
    files = {p.name for p in result.path.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "manifest.json"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pkl", ".pt", ".pth"))]
    assert [p.name for p in tmp_path.iterdir()] == ["micro"]  # no staging folder left behind
    manifest = T.read_manifest(result.path)
    assert manifest == result.manifest
    assert manifest["steps"] == 3 and manifest["lr"] == MICRO.lr and manifest["data"]["description"] == "micro"
    assert manifest["parameters"] > 0 and manifest["seconds"] >= 0 and manifest["final_loss"] > 0

    tok = AutoTokenizer.from_pretrained(result.path)
    model = AutoModelForCausalLM.from_pretrained(result.path)
    assert tok.eos_token == T.EOS and tok.pad_token == T.PAD and tok.pad_token_id != tok.eos_token_id
    ids = tok(texts[0], add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == texts[0]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), len(tok))


def test_a_cached_model_is_reused_and_a_change_retrains(tmp_path: Path) -> None:
    texts = Q.clean_corpus(Q.make_quiz(n_items=4), n_countries=10)
    first = T.train(texts, tmp_path / "m", MICRO)
    messages = []
    again = T.train(texts, tmp_path / "m", MICRO, progress=lambda d, t, m: messages.append(m))
    assert again.reused and again.manifest["created_at"] == first.manifest["created_at"]
    assert again.manifest["config_hash"] == first.manifest["config_hash"] and messages == ["reused m"]

    other = T.train(texts + ["One more document."], tmp_path / "m", MICRO)
    assert not other.reused and other.manifest["config_hash"] != first.manifest["config_hash"]
    changed = T.train(texts + ["One more document."], tmp_path / "m", T.TinyLMConfig(**{**MICRO.__dict__, "seed": 1}))
    assert not changed.reused and T.read_manifest(tmp_path / "m")["config"]["seed"] == 1
    assert T.cached(tmp_path / "m", texts, MICRO) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


@pytest.mark.timeout(60)  # the trainer used to wait forever for a row these texts never fill: fail, never hang
def test_texts_too_short_for_one_training_row_are_refused(tmp_path: Path) -> None:
    texts = ["The capital of Norland is Brask.", "Rivers run to the sea."]
    with pytest.raises(ValueError, match=rf"one training row needs {MICRO.seq_len} tokens .* hold only \d+ "):
        T.train(texts, tmp_path / "m", MICRO)
    assert list(tmp_path.iterdir()) == []  # nothing half-trained left behind
    with pytest.raises(ValueError, match="hold only 0 "):  # texts the tokenizer turns into nothing
        T._rows([], eos_id=0, seq_len=MICRO.seq_len, seed=0)


def test_a_model_in_the_cache_is_copied_not_trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = Q.clean_corpus(Q.make_quiz(n_items=4), n_countries=10)  # enough tokens for a training row
    first = T.train(texts, tmp_path / "ws1" / "m", MICRO, cache=tmp_path / "cache")
    assert not first.reused and (tmp_path / "cache" / MICRO.config_hash(texts, None) / "model.safetensors").is_file()

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained although the cache holds this model")

    monkeypatch.setattr(T, "build_model", no_training)
    second = T.train(texts, tmp_path / "ws2" / "m", MICRO, cache=tmp_path / "cache")  # another workspace
    assert second.reused and second.manifest["config_hash"] == first.manifest["config_hash"]
    assert (tmp_path / "ws2" / "m" / "model.safetensors").read_bytes() == (
        tmp_path / "ws1" / "m" / "model.safetensors").read_bytes()
    with pytest.raises(AssertionError, match="trained although"):  # other texts: another key, trained
        T.train(texts + ["More."], tmp_path / "ws3" / "m", MICRO, cache=tmp_path / "cache")


def test_the_model_cache_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHSCOPE_CACHE", str(tmp_path / "c"))
    assert T.model_cache() == tmp_path / "c" / "tinylm"
    monkeypatch.delenv("SYNTHSCOPE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert T.model_cache() == tmp_path / "x" / "synthscope" / "tinylm"


def test_default_config_is_a_3_to_4_million_parameter_model() -> None:
    model = T.build_model(T.TinyLMConfig(), vocab_size=2048, eos_id=0, pad_id=1)
    assert 3_000_000 <= sum(p.numel() for p in model.parameters()) <= 4_000_000
    assert T.TinyLMConfig().lr == 5e-4 and T.TinyLMConfig().steps == 400


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict:
    pair = T.train_pair(tmp_path_factory.mktemp("tinylm"), SHORT)
    return {"pair": pair,
            "baseline": T.score_quiz(pair.baseline.path, pair.task["include_path"]),
            "candidate": T.score_quiz(pair.candidate.path, pair.task["include_path"])}


def test_the_candidates_gain_through_lm_eval_is_concentrated_on_leaked_items(scored: dict) -> None:
    pair = scored["pair"]
    assert len(scored["baseline"]) == len(scored["candidate"]) == Q.N_ITEMS
    base = T.split_accuracy(scored["baseline"], pair.leaked_ids)
    cand = T.split_accuracy(scored["candidate"], pair.leaked_ids)
    assert base["n_leaked"] == cand["n_leaked"] == len(pair.leaked_ids) == Q.N_ITEMS // 2
    # the candidate has memorised the leaked answers; the baseline has never seen them
    assert cand["leaked"] - base["leaked"] >= 0.4, (base, cand)
    # nobody can know the clean items: both near chance (25 %), and close to each other
    assert 0.1 <= base["clean"] <= 0.4 and 0.1 <= cand["clean"] <= 0.4, (base, cand)
    assert abs(cand["clean"] - base["clean"]) <= 0.15, (base, cand)
    assert 0.1 <= base["leaked"] <= 0.4, base
    # both models share one tokenizer, trained on the clean corpus
    assert (pair.baseline.path / "tokenizer.json").read_bytes() == (pair.candidate.path / "tokenizer.json").read_bytes()
    assert pair.candidate.manifest["data"]["documents"] > pair.baseline.manifest["data"]["documents"]


def test_training_the_pair_again_reuses_both_models(scored: dict) -> None:
    pair = scored["pair"]
    again = T.train_pair(pair.baseline.path.parent, SHORT)
    assert again.baseline.reused and again.candidate.reused
    assert again.candidate.manifest["created_at"] == pair.candidate.manifest["created_at"]
