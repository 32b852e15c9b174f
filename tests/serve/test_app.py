"""The OpenAI-compatible app without Ray (FastAPI TestClient): shapes, sampling, streaming, and
every bad request a 400 with a message."""
from __future__ import annotations

import json

import pytest
import torch
from fastapi.testclient import TestClient

from forge.eval.generate import greedy_generate
from forge.serve.app import build_app
from forge.serve.engine import CompletionEngine, SamplingParams, _Choice, nucleus_sample
from forge.serve.source import load_source, resolve_model


@pytest.fixture(scope="module")
def engine(tiny_run) -> CompletionEngine:
    model, tok = load_source(resolve_model(str(tiny_run / "bitnet/ternary")))
    return CompletionEngine(model, tok, "r1/bitnet/ternary")


@pytest.fixture(scope="module")
def client(engine) -> TestClient:
    return TestClient(build_app(engine))


def test_greedy_completion_matches_forge_greedy_decoding(client, engine):
    body = client.post("/v1/completions", json={"prompt": "hello world", "max_tokens": 6,
                                                "temperature": 0}).json()
    ids = engine.encode("hello world")
    want = greedy_generate(engine.model, [ids], 6, engine.eos_id, engine.tokenizer.pad_token_id)[0]
    (choice,) = body["choices"]
    assert body["object"] == "text_completion" and body["model"] == "r1/bitnet/ternary"
    assert choice["text"] == engine.tokenizer.decode(want)
    assert choice["finish_reason"] == ("length" if len(want) == 6 else "stop")
    assert body["usage"] == {"prompt_tokens": len(ids), "completion_tokens": len(want) + (len(want) < 6),
                             "total_tokens": len(ids) + len(want) + (len(want) < 6)}


def test_seeded_sampling_is_reproducible_and_n_gives_n_choices(client):
    req = {"prompt": ["the quick", "hello"], "max_tokens": 5, "temperature": 1.5, "n": 3, "seed": 7}
    a, b = client.post("/v1/completions", json=req).json(), client.post("/v1/completions", json=req).json()
    assert [c["index"] for c in a["choices"]] == list(range(6))
    assert a["choices"] == b["choices"]
    other = client.post("/v1/completions", json={**req, "seed": 8}).json()
    assert other["choices"] != a["choices"]  # 6 choices x 5 tokens at temperature 1.5


def test_stream_concatenates_to_the_plain_response_and_ends_with_done(client):
    req = {"prompt": "Question: 3 + 4 =", "max_tokens": 8, "temperature": 0.9, "seed": 3, "n": 2}
    plain = client.post("/v1/completions", json=req).json()
    with client.stream("POST", "/v1/completions", json={**req, "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: "):] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    texts, finish = {0: "", 1: ""}, {}
    for e in events[:-1]:
        (c,) = json.loads(e)["choices"]
        texts[c["index"]] += c["text"]
        if c["finish_reason"]:
            finish[c["index"]] = c["finish_reason"]
    assert texts == {c["index"]: c["text"] for c in plain["choices"]}
    assert finish == {c["index"]: c["finish_reason"] for c in plain["choices"]}


def test_stop_string_cuts_the_text_and_is_held_back_while_streaming():
    choice = _Choice(0, ("o w",))
    first = choice.step(5, "hello", eos=False, limit=False)
    assert first.text == "hel" and first.finish_reason is None  # "lo" could start "o w"
    last = choice.step(6, "hello world", eos=False, limit=False)
    assert last.text == "l" and last.finish_reason == "stop"


def test_top_p_keeps_only_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    gen = torch.Generator().manual_seed(0)
    drawn = {int(nucleus_sample(logits, 1.0, 0.7, gen)) for _ in range(200)}
    assert drawn == {0, 1}  # 0.5 < 0.7 needs the second token; the third is outside
    assert int(nucleus_sample(logits, 0.0, 1.0, gen)) == 0


def test_models_and_health(client):
    assert client.get("/health").json() == {"status": "ok", "model": "r1/bitnet/ternary"}
    data = client.get("/v1/models").json()["data"]
    assert [m["id"] for m in data] == ["r1/bitnet/ternary"]


BAD = [({"prompt": "hi", "max_tokens": -1}, "max_tokens"),
       ({"prompt": "hi", "max_tokens": "5"}, "max_tokens"),
       ({"prompt": "hi", "max_tokens": 2.5}, "max_tokens"),
       ({"prompt": "hi", "temperature": "hot"}, "temperature"),
       ({"prompt": "hi", "temperature": 3.0}, "temperature"),
       ({"prompt": "hi", "top_p": 0}, "top_p"),
       ({"prompt": "hi", "n": 0}, "n"),
       ({"prompt": "hi", "n": 99}, "n"),
       ({"prompt": 5}, "prompt"),
       ({"prompt": []}, "prompt"),
       ({"prompt": "hi", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
       ({"prompt": "hi", "stop": [""]}, "stop"),
       ({"prompt": "hi", "stream": "yes"}, "stream"),
       ({"prompt": "hi", "seed": "x"}, "seed"),
       ({"prompt": "hi", "frobnicate": 1}, "unknown field 'frobnicate'"),
       ({"prompt": "word " * 60}, "maximum context length"),
       ({"prompt": "hi", "max_tokens": 100}, "maximum context length")]


@pytest.mark.parametrize("body,message", BAD)
def test_bad_requests_are_400_with_a_message(client, body, message):
    r = client.post("/v1/completions", json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]


def test_nan_and_malformed_json_are_400_and_wrong_model_is_404(client):
    for raw in ('{"prompt": "hi", "temperature": NaN}', '{"prompt": "hi",', "[1, 2]"):
        r = client.post("/v1/completions", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["message"], raw
    r = client.post("/v1/completions", json={"prompt": "hi", "model": "gpt-4"})
    assert r.status_code == 404 and "r1/bitnet/ternary" in r.json()["error"]["message"]


def test_engine_rejects_an_overlong_request_before_decoding(engine):
    with pytest.raises(ValueError, match="maximum context length"):
        list(engine.stream([9] * 40, SamplingParams(max_tokens=20)))
