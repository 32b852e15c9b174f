"""`forge serve` on Ray Serve, called with the real `openai` client over loopback: completions
(plain and streamed), models, health, 400s; two replicas at 0.5 CPU each share the load."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

openai = pytest.importorskip("openai")

from forge.serve.cli import ServeOptions  # noqa: E402
from forge.serve.source import resolve_model  # noqa: E402
from tests.serve.conftest import make_run  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, thread: threading.Thread, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and thread.is_alive():
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise AssertionError(f"{url} never became healthy (server thread alive: {thread.is_alive()})")


@pytest.fixture(scope="module")
def server(ray_session, tmp_path_factory):
    """`forge serve`'s own entry (actors.serve.main) in a thread on the session Ray: 2 replicas
    at 0.5 CPU on a free loopback port; stopping it shuts its Serve instance down."""
    from actors.serve import main

    run = make_run(tmp_path_factory.mktemp("serve-runs"))
    options = ServeOptions(resolve_model(str(run / "bitnet/ternary")), port=free_port(),
                           replicas=2, num_cpus=0.5)
    stop, result = threading.Event(), []
    thread = threading.Thread(target=lambda: result.append(main(options, stop)), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{options.port}"
    try:
        wait_healthy(url, thread)
        yield url, options.source.name
    finally:
        stop.set()
        thread.join(timeout=120)
    assert result == [0]
    with pytest.raises(OSError):  # Serve's proxy went with the server: nothing listens there
        socket.create_connection(("127.0.0.1", options.port), timeout=5).close()


def test_openai_client_completes_streams_and_lists_models(server):
    url, name = server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
    assert [m.id for m in client.models.list().data] == [name]
    done = client.completions.create(model=name, prompt="hello world", max_tokens=6,
                                     temperature=0.8, seed=5, n=2)
    assert len(done.choices) == 2 and done.usage.prompt_tokens > 0
    assert all(c.finish_reason in ("stop", "length") for c in done.choices)
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    again = client.completions.create(model=name, prompt="hello world", max_tokens=6,
                                      temperature=0.8, seed=5, n=2)
    assert [c.text for c in again.choices] == [c.text for c in done.choices]  # any replica
    chunks = list(client.completions.create(model=name, prompt="hello world", max_tokens=6,
                                            temperature=0.8, seed=5, n=2, stream=True))
    streamed = {0: "", 1: ""}
    for chunk in chunks:
        for c in chunk.choices:
            streamed[c.index] += c.text
    assert streamed == {c.index: c.text for c in done.choices}


def test_bad_requests_are_400_through_the_client_and_health_answers(server):
    url, name = server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.completions.create(model=name, prompt="hi", max_tokens=-3)
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.completions.create(model=name, prompt="word " * 80, max_tokens=4)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-4", prompt="hi", max_tokens=2)
    raw = urllib.request.Request(f"{url}/v1/completions", data=b'{"prompt": "x", "temperature": NaN}',
                                 headers={"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(raw, timeout=30)
    assert err.value.code == 400 and "finite" in json.loads(err.value.read())["error"]["message"]
    with urllib.request.urlopen(f"{url}/health", timeout=30) as r:
        assert json.loads(r.read()) == {"status": "ok", "model": name}


def test_serve_benchmark_pieces_measure_real_requests(server, tmp_path):
    from actors.bench import serve as bench

    url, _ = server
    stats = bench.load_test(url, {"requests": 4, "concurrency": 2, "max_tokens": 3,
                                     "prompt": "hello"})
    assert 0 < stats["p50_latency_s"] <= stats["p99_latency_s"]
    assert stats["requests_per_s"] > 0 and stats["tokens_per_s"] >= 3 * stats["requests_per_s"] * 0.99
    run = make_run(tmp_path)
    (run / "fp").symlink_to(run / "cognate/fp")
    (run / "packed").symlink_to(run / "bitnet/ternary")
    ms = bench.ms_per_token(run, 3, rounds=1, prompt="hello world")
    assert set(ms) == {"fp", "packed"} and all(0 < v < 10_000 for v in ms.values())
