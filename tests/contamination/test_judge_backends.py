"""The judge's chat and endpoint backends: JSON verdicts, an OpenAI-compatible server on loopback, the cache, secrets.

The endpoint tests talk to a real HTTP server (``http.server`` in a thread on
127.0.0.1) that answers like an OpenAI-compatible one. The chat backend is tested
with a stub model for the scoring and caching, and with a tiny random Llama for
batched generation; the real SmolLM2 answers in ``test_judge.py``, where it is
already loaded.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from synthscope.compute import chat_endpoint
from synthscope.compute.chat_endpoint import ChatEndpoint, EndpointError, is_loopback
from synthscope.contamination import cascade, judge
from synthscope.contamination.judge import (
    PREFILL,
    UNPARSEABLE,
    JudgeConfig,
    judge_pairs,
    judge_pairs_with_reasons,
    parse_verdict,
)
from synthscope.core.workspace import Workspace

SECRET = "sk-test-7f3a9c1e5b2d4f6a8c0e"  # what the key variable holds; must never be written anywhere
SAME = "Write a function that returns the n-th Fibonacci number."
SAME_REPHRASED = "Implement fib(n), giving the Fibonacci number at position n."
OTHER = "Write a function that checks whether a string is a palindrome."
MALFORMED = "Is 7919 prime? MALFORMED"
BUSY = "Sort a list of integers in place. BUSY"


# -- an OpenAI-compatible server on loopback ----------------------------------------------------


class FakeServer:
    """Answers ``POST /v1/chat/completions`` from the texts it is shown; records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.busy_left = 1  # a request about BUSY gets 429 this many times, then an answer
        self.status: int | None = None  # when set, every request gets this status

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        user = body["messages"][-1]["content"]
        if self.status is not None:
            return self.status, {}, {"error": {"message": "The model `judge-model` does not exist.", "code": 404}}
        if "BUSY" in user:
            with self.lock:
                if self.busy_left > 0:
                    self.busy_left -= 1
                    return 429, {"Retry-After": "0"}, {"error": {"message": "rate limited"}}
        if "MALFORMED" in user:
            content = "I believe these are the same problem, yes."
        elif "Fibonacci" in user and "fib(n)" in user:
            content = '{"same_problem": true, "confidence": 0.9, "reason": "both ask\\nfor Fibonacci(n)"}'
        else:
            content = '```json\n{"same_problem": false, "confidence": 0.8, "reason": "different tasks"}\n```'
        return 200, {}, {"id": "x", "object": "chat.completion", "model": body["model"],
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                      "finish_reason": "stop"}]}


@pytest.fixture
def server() -> Iterator[tuple[str, FakeServer]]:
    fake = FakeServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with fake.lock:
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            status, headers, reply = fake.answer(body)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", fake
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.init(tmp_path / "ws")


@pytest.fixture(autouse=True)
def offline_and_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the project's offline switch, as every entry point sets it
    monkeypatch.setattr(chat_endpoint, "BACKOFF_S", 0.01)


def endpoint_config(url: str, **more: Any) -> JudgeConfig:
    settings = {"backend": "endpoint", "endpoint": url, "model": "judge-model",
                "api_key_env": "SYNTHSCOPE_TEST_JUDGE_KEY", "concurrency": 3, **more}
    return JudgeConfig(**settings)


PAIRS = pd.DataFrame({"item_text": [SAME, SAME, MALFORMED, BUSY, SAME],
                      "record_text": [SAME_REPHRASED, OTHER, OTHER, OTHER, SAME_REPHRASED]})


# -- the endpoint backend ----------------------------------------------------------------------


def test_endpoint_verdicts_retries_and_cache(ws: Workspace, server, monkeypatch: pytest.MonkeyPatch) -> None:
    url, fake = server
    monkeypatch.setenv("SYNTHSCOPE_TEST_JUDGE_KEY", SECRET)
    config = endpoint_config(url)
    seen: list[tuple[int, int]] = []
    scores, reasons = judge_pairs_with_reasons(ws, PAIRS, config, lambda d, t, m: seen.append((d, t)))

    assert scores[0] == pytest.approx(0.9) and reasons[0] == "both ask for Fibonacci(n)"  # one line
    assert scores[1] == pytest.approx(0.2) and reasons[1] == "different tasks"  # inside a code fence; 1 - 0.8
    assert np.isnan(scores[2]) and reasons[2] == UNPARSEABLE  # a malformed answer is a NaN, not a crash
    assert scores[3] == pytest.approx(0.2)  # answered after one 429
    assert scores[4] == scores[0] and reasons[4] == reasons[0]  # the repeated pair is asked once
    assert seen[-1] == (5, 5)

    busy = [r for r in fake.requests if "BUSY" in r["body"]["messages"][-1]["content"]]
    assert len(busy) == 2 and len(fake.requests) == 5
    for request in fake.requests:
        assert request["path"] == "/v1/chat/completions"
        assert request["headers"]["Authorization"] == f"Bearer {SECRET}"
        body = request["body"]
        assert body["model"] == "judge-model" and body["temperature"] == 0
        assert body["response_format"] == {"type": "json_object"} and body["max_tokens"] == config.max_new_tokens
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
        assert '"same_problem"' in body["messages"][0]["content"]

    # The second call is answered from the cache: the server sees nothing, NaN and reasons included.
    fake.requests.clear()
    again, again_reasons = judge_pairs_with_reasons(ws, PAIRS, config)
    assert fake.requests == []
    np.testing.assert_array_equal(again, scores)
    assert again_reasons == reasons
    np.testing.assert_array_equal(judge_pairs(ws, PAIRS, config), scores)  # the thin wrapper: scores alone

    # Another endpoint serving the same model name is another judge: its own cache.
    shards = list((ws.indexes_dir / "judge").glob("endpoint-judge-model-*/*.parquet"))
    assert len(shards) == 1 and judge.model_key(endpoint_config(url + "2")) != judge.model_key(config)


def test_the_key_is_read_from_the_environment_and_never_stored(ws: Workspace, server,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    url, fake = server
    monkeypatch.setenv("SYNTHSCOPE_TEST_JUDGE_KEY", SECRET)
    config = endpoint_config(url)
    judge_pairs(ws, PAIRS.head(2), config)
    assert fake.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"

    # Not a field of the config, so not in a scan's settings (the manifest); the variable's name is.
    assert SECRET not in repr(dataclasses.asdict(config))
    settings = cascade.config_from({"stages": ["exact", "semantic", "judged"],
                                    "judge": {"backend": "endpoint", "endpoint": url, "model": "judge-model",
                                              "api_key_env": "SYNTHSCOPE_TEST_JUDGE_KEY"}}).settings()
    assert settings["judge"]["api_key_env"] == "SYNTHSCOPE_TEST_JUDGE_KEY" and SECRET not in json.dumps(settings)
    # Nowhere in the workspace (the cache shards included).
    written = [p for p in ws.root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in written)
    assert not [p for p in written if SECRET.encode() in p.read_bytes()]

    # A missing variable is named (it is a name, not a secret); a key pasted where its name belongs is refused
    # without being repeated.
    monkeypatch.delenv("SYNTHSCOPE_TEST_JUDGE_KEY")
    with pytest.raises(EndpointError, match="SYNTHSCOPE_TEST_JUDGE_KEY, but that environment variable is not set"):
        judge_pairs(ws, pd.DataFrame({"item_text": ["new"], "record_text": ["pair"]}), config)
    with pytest.raises(ValueError, match="not the key itself") as refused:
        JudgeConfig(backend="endpoint", endpoint=url, model="m", api_key_env=SECRET)
    assert SECRET not in str(refused.value)


def test_non_loopback_endpoint_needs_the_online_switch(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    config = JudgeConfig(backend="endpoint", endpoint="https://judge.example.com/v1", model="big-judge")

    def no_request(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a request was sent while offline")

    monkeypatch.setattr(ChatEndpoint, "complete", no_request)
    with pytest.raises(EndpointError, match=r"not this machine, and synthscope is offline: run with --online"):
        judge_pairs(ws, PAIRS.head(1), config)

    monkeypatch.delenv("HF_HUB_OFFLINE")  # what --online / SYNTHSCOPE_ONLINE=1 / synthscope.online() do
    config.chat_endpoint().check_allowed()

    assert is_loopback("http://127.0.0.1:8000/v1") and is_loopback("http://127.8.9.1/v1")
    assert is_loopback("http://localhost:8000/v1") and is_loopback("http://[::1]:8000/v1")
    assert not is_loopback("http://10.0.0.5:8000/v1") and not is_loopback("http://127.0.0.1.nip.io/v1")
    assert not is_loopback("http://0.0.0.0:8000/v1")


def test_endpoint_errors_are_one_sentence(ws: Workspace, server) -> None:
    url, fake = server
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pairs = pd.DataFrame({"item_text": [SAME], "record_text": [OTHER]})
    with pytest.raises(EndpointError, match=r"could not reach the judge endpoint .*; is the server running there\?"):
        judge_pairs(ws, pairs, JudgeConfig(backend="endpoint", endpoint=f"http://127.0.0.1:{port}/v1", model="m"))

    fake.status = 404
    with pytest.raises(EndpointError, match="answered 404 Not Found: The model `judge-model` does not exist.") as e:
        judge_pairs(ws, pairs, endpoint_config(url, api_key_env=None))
    assert "\n" not in str(e.value) and len(fake.requests) == 1  # a 4xx is not retried

    fake.status, fake.requests = 503, []
    with pytest.raises(EndpointError, match="answered 503 Service Unavailable after 2 retries"):
        judge_pairs(ws, pairs, endpoint_config(url, api_key_env=None, retries=2))
    assert len(fake.requests) == 3
    assert not list((ws.indexes_dir / "judge").rglob("*.parquet"))  # failures are not cached as answers


def test_endpoint_settings_are_checked(server) -> None:
    url, _ = server
    with pytest.raises(ValueError, match="needs endpoint"):
        JudgeConfig(backend="endpoint", model="m")
    with pytest.raises(ValueError, match="needs model = the name the server serves"):
        JudgeConfig(backend="endpoint", endpoint=url)
    with pytest.raises(ValueError, match="used only with backend = 'endpoint'"):
        JudgeConfig(endpoint=url)
    with pytest.raises(ValueError, match="must not carry a user name or password"):
        JudgeConfig(backend="endpoint", endpoint="http://user:pw@127.0.0.1:8000/v1", model="m")
    with pytest.raises(ValueError, match="http"):
        JudgeConfig(backend="endpoint", endpoint="file:///etc/passwd", model="m")
    with pytest.raises(ValueError, match="backend must be one of logits, chat, endpoint"):
        JudgeConfig(backend="gpt")
    assert JudgeConfig(backend="endpoint", endpoint=url + "/", model="m").endpoint == url
    assert JudgeConfig().backend == "logits" and JudgeConfig().trust_remote_code is False


def test_a_dashboard_scan_cannot_set_the_judge_endpoint(ws: Workspace, tmp_path: Path) -> None:
    from synthscope import tasks
    from synthscope.datasets.ingest import ingest

    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"prompt": SAME, "answer": "def fib(n): ..."}) + "\n")
    bench = ingest(ws, rows, name="bench", kind="benchmark").ref
    synth = ingest(ws, rows, name="synth", kind="synthetic").ref
    for key, value in (("judge.endpoint", "http://127.0.0.1:8000/v1"), ("judge.backend", "endpoint"),
                       ("judge.api_key_env", "HOME")):
        with pytest.raises(ValueError, match="unknown scan settings"):
            tasks.start_scan(ws, bench, [synth], {"stages": ["exact", "semantic", "judged"], key: value})


def test_cli_refuses_a_remote_endpoint_offline_before_scanning(ws: Workspace, capsys) -> None:
    from synthscope.cli import main

    code = main(["scan", "-w", str(ws.root), "--synthetic", "s", "--benchmark", "b", "--stages", "exact", "semantic",
                 "judged", "--judge-endpoint", "https://judge.example.com/v1", "--judge-model", "big-judge"])
    err = capsys.readouterr().err
    assert code == 2 and "synthscope is offline: run with --online" in err and err.count("\n") == 1


# -- parsing JSON verdicts -----------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "score", "reason"), [
    ('{"same_problem": true, "confidence": 0.75, "reason": "same task"}', 0.75, "same task"),
    ('{"same_problem": false, "confidence": 0.75, "reason": "no"}', 0.25, "no"),
    ('Sure! Here is my verdict:\n{"same_problem": true, "confidence": 0.6, "reason": "x"}\nHope it helps.', 0.6, "x"),
    ('```json\n{\n  "same_problem": false,\n  "confidence": 1,\n  "reason": "y"\n}\n```', 0.0, "y"),
    ('Text A uses {braces} and {"a": 1}; {"same_problem": "yes", "confidence": "0.7", "reason": "z"}', 0.7, "z"),
    ('{"Same_Problem": true, "Confidence": 80, "reason": "percent"}', 0.8, "percent"),
    ('{"same_problem": False, "confidence": 0.6, "reason": "python bools"}', 0.4, "python bools"),
    ('{"same_problem": true, "reason": "sure"}', 1.0, "sure (no confidence given)"),
    ('{"same_problem": false, "confidence": 0.9}', pytest.approx(0.1), "no reason given"),
    ('{"same_problem": true, "confidence": 0.9, "reason": "a\\n  b"} {"same_problem": false}', 0.9, "a b"),
    ('{"same_problem": true, "confidence": 0.9, "reason": "' + "w" * 500 + '"}', 0.9, "w" * 200 + "…"),
])
def test_json_verdicts_parse_robustly(reply: str, score: Any, reason: str) -> None:
    assert parse_verdict(reply) == (pytest.approx(score), reason)


@pytest.mark.parametrize("reply", [
    "", "Yes.", "same_problem: true", '{"same_problem": maybe}', '{"confidence": 0.9, "reason": "no verdict"}',
    '{"same_problem": "perhaps", "confidence": 0.9}', '{"same_problem": true, "confidence": "high"}',
    '{"same_problem": true, "confidence": -0.1}', '{"same_problem": true, "confidence": 101}',
    '{"same_problem": true, "confidence": NaN}', '{"same_problem": 1, "confidence": 0.9}',
    '{"same_problem": true, "confidence": 0.9, "reason": "cut off befo', "[true, 0.9]", "{" * 5000,
])
def test_unparseable_answers_are_nan(reply: str) -> None:
    score, reason = parse_verdict(reply)
    assert np.isnan(score) and reason == UNPARSEABLE


# -- the chat backend ----------------------------------------------------------------------------


class StubTokenizer:
    chat_template = "stub"

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool = False,
                            add_generation_prompt: bool = True) -> str:
        assert not tokenize and add_generation_prompt
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


class StubChat:
    """A :class:`judge.ChatModel` that continues the prefilled reply as a model would."""

    key = "stub-chat-model"
    tokenizer = StubTokenizer()

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        self.calls.append(prompts)
        replies = []
        for prompt in prompts:
            assert prompt.endswith("<assistant>" + PREFILL) and '"same_problem"' in prompt
            if "MALFORMED" in prompt:
                replies.append(" maybe, it depends")
            elif "fib(n)" in prompt:
                replies.append(' true, "confidence": 0.95, "reason": "same function"}\nThat is my answer.')
            else:
                replies.append(' false, "confidence": 0.7, "reason": "not the same"}')
        return replies


def test_chat_backend_scores_json_verdicts_and_caches_them(ws: Workspace) -> None:
    chat = StubChat()
    config = JudgeConfig(backend="chat")
    scores, reasons = judge_pairs_with_reasons(ws, PAIRS, config, model=chat)
    assert scores[0] == pytest.approx(0.95) and reasons[0] == "same function"
    assert scores[1] == pytest.approx(0.3) and reasons[1] == "not the same"
    assert np.isnan(scores[2]) and reasons[2] == UNPARSEABLE
    assert sum(len(c) for c in chat.calls) == 4  # the repeated pair once
    assert len(list((ws.indexes_dir / "judge" / "chat-stub-chat-model").glob("*.parquet"))) == 1

    def no_model(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model was loaded although every pair is cached")

    chat.calls.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(judge, "get_chat", no_model)
        mp.setattr(judge, "resolve", lambda name: type("Source", (), {"key": "stub-chat-model"})())
        again, again_reasons = judge_pairs_with_reasons(ws, PAIRS, config)
    assert chat.calls == [] and again_reasons == reasons
    np.testing.assert_array_equal(again, scores)

    # The same pairs under another backend or token budget are other judgements.
    keys = {judge.pair_key("stub-chat-model", "code", SAME, OTHER, 3000, backend, tokens)
            for backend, tokens in (("logits", 96), ("chat", 96), ("chat", 200), ("endpoint", 96))}
    assert len(keys) == 4


def test_old_cache_shards_without_reasons_still_read(ws: Workspace) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    config = JudgeConfig()  # logits with the packaged model: its key names the cache, nothing is loaded
    key = judge.model_key(config)
    pair = judge.pair_key(key, "code", SAME, OTHER, config.max_chars)
    folder = ws.indexes_dir / "judge" / key
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"pair_key": [pair], "kind": ["code"], "score": [0.734],
                             "created_at": ["2025-01-01T00:00:00Z"]}), folder / "old.parquet")
    scores, reasons = judge_pairs_with_reasons(ws, pd.DataFrame({"item_text": [SAME], "record_text": [OTHER],
                                                                 "kind": ["code"]}), config)
    assert scores.tolist() == [0.734] and reasons == ["P(yes) = 0.73 from next-token logits"]
    assert judge.read_cache(ws, key) == {pair: 0.734}


def test_batched_greedy_generation_matches_one_by_one() -> None:
    """Left padding: a prompt's greedy continuation does not depend on what it is batched with."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from synthscope.compute.models import LoadedModel, resolve

    source = resolve(judge.DEFAULT_INSTRUCT)
    tokenizer = AutoTokenizer.from_pretrained(source.folder, gguf_file=source.gguf_file)
    tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=2048)).eval()
    loaded = LoadedModel(model, tokenizer, "cpu", source, False, 0.0)
    prompts = [judge.chat_prompt(tokenizer, judge.judge_messages(a, b, "code", answer="json"))
               for a, b in ((SAME, SAME_REPHRASED), (OTHER, SAME * 3), (BUSY, OTHER))]
    side = tokenizer.padding_side
    alone = judge.generate_greedy(loaded, prompts, max_new_tokens=8, batch_size=1)
    batched = judge.generate_greedy(loaded, prompts, max_new_tokens=8, batch_size=3)
    assert batched == alone and all(alone)
    assert tokenizer.padding_side == side  # left padding only while generating
    assert judge.TransformersChat(loaded, batch_size=8).batch_size == 1  # CPU: one at a time
