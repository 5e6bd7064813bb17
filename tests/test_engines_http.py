"""OpenAIChatEngine against a real loopback HTTP server that injects failures and counts requests."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from corpora.types import Message
from engines.base import Sampling
from engines.http import EngineRequestError, OpenAIChatEngine

SAMPLING = Sampling(temperature=0.0, max_tokens=16)


class ScriptedServer:
    """An OpenAI-compatible /v1/chat/completions server. The last user message scripts it:
    "fail:<kind>:<n>:<text>" fails the first n attempts for that text (kind: 503, 429, hang,
    garbage, nochoices, 400); anything else is answered at once with "echo:<text>"."""

    def __init__(self, delay: float = 0.0, hang: float = 0.6, keep_alive: bool = False):
        self.delay, self.hang, self.keep_alive = delay, hang, keep_alive
        self.lock = threading.Lock()
        self.attempts: dict[str, int] = {}
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.requests: list[tuple[str, dict[str, str]]] = []  # (request target, headers)
        self.in_flight = self.max_in_flight = self.total = self.connections = 0
        self.gate = threading.Event()       # "gate" requests wait for it (at most 5 s)
        self.answered_400 = threading.Event()
        self.closed = threading.Event()     # set after a "close" request's connection was shut
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if server.keep_alive else "HTTP/1.0"

            def log_message(self, *args):  # keep test output clean
                pass

            def setup(self):
                super().setup()
                with server.lock:
                    server.connections += 1

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.in_flight += 1
                    server.total += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.bodies.append(body)
                    server.auth.append(self.headers.get("Authorization"))
                    server.requests.append((self.path, dict(self.headers)))
                try:
                    server.respond(self, body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

        return Handler

    def respond(self, handler, body) -> None:
        text = body["messages"][-1]["content"]
        with self.lock:
            seen = self.attempts[text] = self.attempts.get(text, 0) + 1
        if self.delay:
            time.sleep(self.delay)
        if text == "gate":
            self.gate.wait(5.0)
        if text.startswith("fail:"):
            _, kind, n, rest = text.split(":", 3)
            if seen <= int(n):
                return self.fail(handler, kind)
            text = rest
        reply = {"choices": [{"message": {"role": "assistant", "content": f"echo:{text}"}}]}
        self.send(handler, 200, json.dumps(reply).encode())
        if text == "close":  # drop the kept-alive connection without saying so, as an idle timeout does
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            self.closed.set()

    def fail(self, handler, kind: str) -> None:
        if kind == "hang":
            time.sleep(self.hang)
            return self.send(handler, 200, b"{}")
        bodies = {"503": (503, b"overloaded"), "429": (429, b"slow down"), "400": (400, b"bad"),
                  "garbage": (200, b"{not json"), "nochoices": (200, b'{"choices": []}')}
        status, payload = bodies[kind]
        self.send(handler, status, payload, {"Retry-After": "0.05"} if kind == "429" else {})
        if kind == "400":
            self.answered_400.set()
            self.gate.set()  # a request held at the gate may go on once the failure is out

    @staticmethod
    def send(handler, status: int, payload: bytes, headers: dict | None = None) -> None:
        try:
            handler.send_response(status)
            for k, v in (headers or {}).items():
                handler.send_header(k, v)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass


@pytest.fixture
def server():
    s = ScriptedServer()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _engine(urls, **kw):
    delays: list[float] = []
    opts = dict(timeout=0.2, max_retries=3, backoff=0.001, max_backoff=0.1, max_concurrency=4)
    opts.update(kw)
    engine = OpenAIChatEngine(urls, "test-model", sleep=delays.append, **opts)
    return engine, delays


def _convs(texts):
    return [[Message("system", "s"), Message("user", t)] for t in texts]


def test_retries_recover_and_results_keep_order(server):
    texts = ["plain", "fail:503:2:five", "fail:429:1:rate", "fail:hang:1:slow",
             "fail:garbage:1:junk", "fail:nochoices:2:empty"]
    engine, delays = _engine(server.url)
    replies = engine.chat(_convs(texts), SAMPLING)
    assert replies == ["echo:plain", "echo:five", "echo:rate", "echo:slow", "echo:junk", "echo:empty"]
    assert server.attempts["plain"] == 1
    assert server.attempts["fail:503:2:five"] == 3
    assert server.attempts["fail:429:1:rate"] == 2
    assert server.attempts["fail:hang:1:slow"] == 2
    assert server.attempts["fail:garbage:1:junk"] == 2
    assert server.attempts["fail:nochoices:2:empty"] == 3
    assert len(delays) == 2 + 1 + 1 + 1 + 2
    assert 0.05 in delays  # the 429's Retry-After was honoured


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    engine, _ = _engine("http://127.0.0.1:9/v1", backoff=0.1, max_backoff=0.5)
    for attempt, full in enumerate([0.1, 0.2, 0.4, 0.5, 0.5]):
        d = engine._delay(attempt, None)
        assert full * 0.5 <= d <= full
    assert engine._delay(0, 3.0) == 0.5  # Retry-After, capped by max_backoff
    assert engine._delay(0, 0.05) == 0.05


def test_exhausted_retries_name_the_request(server):
    engine, delays = _engine(server.url, max_retries=2)
    with pytest.raises(EngineRequestError) as info:
        engine.chat(_convs(["ok", "fail:503:99:never"]), SAMPLING)
    message = str(info.value)
    for fragment in ("request 1", "'test-model'", "3 attempts", server.url, "HTTP 503"):
        assert fragment in message
    assert server.attempts["fail:503:99:never"] == 3 and len(delays) == 2


def test_client_errors_are_not_retried(server):
    engine, delays = _engine(server.url)
    with pytest.raises(EngineRequestError, match=r"request 0 .*HTTP 400"):
        engine.chat(_convs(["fail:400:5:x"]), SAMPLING)
    assert server.attempts["fail:400:5:x"] == 1 and delays == []


def test_connection_refused_is_retried_then_reported():
    engine, delays = _engine("http://127.0.0.1:9/v1", max_retries=1)  # port 9: nothing listens
    with pytest.raises(EngineRequestError, match="connection error"):
        engine.chat(_convs(["x"]), SAMPLING)
    assert len(delays) == 1


def test_concurrency_is_bounded(server):
    server.delay = 0.02
    engine, _ = _engine(server.url, max_concurrency=3)
    texts = [f"m{i}" for i in range(24)]
    assert engine.chat(_convs(texts), SAMPLING) == [f"echo:{t}" for t in texts]
    assert server.total == 24
    assert 2 <= server.max_in_flight <= 3


def test_several_endpoints_share_the_load(server):
    other = ScriptedServer()
    other.thread.start()
    try:
        engine, _ = _engine(f"{server.url},{other.url}", max_concurrency=4)
        texts = [f"m{i}" for i in range(20)]
        assert engine.chat(_convs(texts), SAMPLING) == [f"echo:{t}" for t in texts]
        assert server.total + other.total == 20
        assert server.total >= 5 and other.total >= 5
    finally:
        other.httpd.shutdown()
        other.httpd.server_close()


def test_sampling_fields_are_sent_and_key_stays_secret(server, monkeypatch):
    monkeypatch.setenv("WILDSIM_TEST_KEY", "sk-very-secret")
    engine, _ = _engine(server.url, api_key_env="WILDSIM_TEST_KEY", max_retries=0,
                        extra_body={"top_k": 5})
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}}
    sampling = Sampling(temperature=0.7, top_p=0.9, max_tokens=9, stop=("END",), seed=10,
                        json_schema=schema)
    engine.chat(_convs(["a", "b"]), sampling)
    body = sorted(server.bodies, key=lambda b: b["messages"][-1]["content"])[1]
    assert body["model"] == "test-model" and body["messages"][0] == {"role": "system", "content": "s"}
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["stop"]) == (0.7, 0.9, 9, ["END"])
    assert body["seed"] == 11  # seed + index
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert body["top_k"] == 5
    assert set(server.auth) == {"Bearer sk-very-secret"}
    with pytest.raises(EngineRequestError) as info:
        engine.chat(_convs(["fail:503:1:x"]), sampling)
    assert "sk-very-secret" not in str(info.value) + repr(engine)


def test_no_key_means_no_authorization_header(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    engine, _ = _engine(server.url)
    engine.chat(_convs(["a"]), SAMPLING)
    assert server.auth == [None]


def test_spec_builds_the_http_engine(server):
    from engines.spec import load_chat_engine

    engine = load_chat_engine(f"openai:{server.url}#test-model", timeout=0.5, max_retries=0)
    assert isinstance(engine, OpenAIChatEngine)
    assert engine.chat(_convs(["hi"]), SAMPLING) == ["echo:hi"]


def test_replies_stream_in_arrival_order(server):
    engine, _ = _engine(server.url, max_concurrency=3)
    replies = engine.chat_each(_convs(["gate", "a", "b"]), SAMPLING)
    first_two = sorted([next(replies), next(replies)])  # answered while "gate" is still held
    assert first_two == [(1, "echo:a"), (2, "echo:b")]
    server.gate.set()
    assert list(replies) == [(0, "echo:gate")]


def test_a_failure_still_yields_the_replies_already_in_flight(server):
    engine, _ = _engine(server.url, max_concurrency=2)
    texts = ["gate", "fail:400:9:x", *(f"later{i}" for i in range(60))]
    got = []
    with pytest.raises(EngineRequestError, match=r"request 1 .*HTTP 400"):
        for item in engine.chat_each(_convs(texts), SAMPLING):
            got.append(item)
    assert (0, "echo:gate") in got  # sent before the failure, answered after it, not lost
    assert server.answered_400.is_set()
    assert server.total < len(texts)  # requests not yet started when the failure came were dropped


def test_keep_alive_connections_are_reused_across_calls():
    server = ScriptedServer(keep_alive=True)
    server.thread.start()
    try:
        engine, delays = _engine(server.url, max_concurrency=2)
        for call in range(3):
            texts = [f"c{call}-{i}" for i in range(6)]
            assert engine.chat(_convs(texts), SAMPLING) == [f"echo:{t}" for t in texts]
        assert server.total == 18 and server.connections <= 2 and delays == []
        engine.close()
        assert engine.chat(_convs(["after close"]), SAMPLING) == ["echo:after close"]
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def test_a_connection_the_server_dropped_is_replaced_without_a_retry():
    server = ScriptedServer(keep_alive=True)
    server.thread.start()
    try:
        engine, delays = _engine(server.url, max_concurrency=1)
        assert engine.chat(_convs(["close"]), SAMPLING) == ["echo:close"]
        assert server.closed.wait(5.0)  # the idle connection is now closed by the server
        assert engine.chat(_convs(["next"]), SAMPLING) == ["echo:next"]
        assert delays == [] and server.total == 2 and server.connections == 2
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def test_concurrency_is_bounded_over_simultaneous_calls(server):
    server.delay = 0.02
    engine, _ = _engine(server.url, max_concurrency=3)
    results = {}

    def call(name):
        texts = [f"{name}{i}" for i in range(12)]
        results[name] = engine.chat(_convs(texts), SAMPLING) == [f"echo:{t}" for t in texts]

    threads = [threading.Thread(target=call, args=(name,)) for name in "xy"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {"x": True, "y": True}
    assert server.total == 24 and server.max_in_flight <= 3


def _clear_proxies(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_http_proxy_from_the_environment(server, monkeypatch):
    _clear_proxies(monkeypatch)
    port = server.httpd.server_address[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://user:pa%40ss@127.0.0.1:{port}")
    engine, _ = _engine("http://judge.invalid:8000/v1", max_retries=0)
    assert engine.chat(_convs(["via proxy"]), SAMPLING) == ["echo:via proxy"]
    [(target, headers)] = server.requests
    assert target == "http://judge.invalid:8000/v1/chat/completions"
    assert headers["Host"] == "judge.invalid:8000"
    assert headers["Proxy-Authorization"] == "Basic " + base64.b64encode(b"user:pa@ss").decode()
    with pytest.raises(EngineRequestError) as info:
        engine.chat(_convs(["fail:503:1:x"]), SAMPLING)
    assert "pa%40ss" not in str(info.value) and "pa@ss" not in str(info.value)


def test_no_proxy_hosts_are_reached_directly(server, monkeypatch):
    _clear_proxies(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    engine, _ = _engine(server.url, max_retries=0)
    assert engine.chat(_convs(["direct"]), SAMPLING) == ["echo:direct"]
    assert server.requests[0][0] == "/v1/chat/completions"


# ---- the TokenEngine side: /v1/completions with token-id prompts ----------------------------
def vllm_choice(ids, finish="stop", stop_reason=None, logprobs=True, token_ids=True):
    """A /v1/completions choice as vLLM 0.31 writes it for return_token_ids and, with logprobs,
    return_tokens_as_token_ids (tokens read "token_id:N")."""
    choice = {"index": 0, "text": "…", "finish_reason": finish, "stop_reason": stop_reason}
    if token_ids:
        choice["token_ids"] = list(ids)
    if logprobs:
        choice["logprobs"] = {"text_offset": list(range(len(ids))),
                              "token_logprobs": [-0.25 * (k + 1) for k in range(len(ids))],
                              "tokens": [f"token_id:{i}" for i in ids],
                              "top_logprobs": [{f"token_id:{i}": -0.25 * (k + 1)} for k, i in enumerate(ids)]}
    return choice


def test_generate_sends_token_ids_and_reads_ids_logprobs_and_finish():
    from tests.eval_fixtures import ScriptedChatServer

    bodies = []

    def complete(body):
        bodies.append(body)
        prompt = body["prompt"]
        return vllm_choice([t + 10 for t in prompt], finish="length" if len(prompt) == 2 else "stop",
                           logprobs="logprobs" in body)

    sampling = Sampling(temperature=0.7, top_p=0.9, max_tokens=5, stop=("\n\n",), seed=11)
    with ScriptedChatServer(lambda body: "unused", complete) as srv:
        engine = OpenAIChatEngine(srv.url, "sim", max_concurrency=1)
        outs = engine.generate([[1, 2, 3], [4, 5]], sampling)
        no_lp = engine.generate([[7]], sampling.with_(seed=None), logprobs=False)
    assert [(o.ids, o.logprobs, o.finish) for o in outs] == [
        ([11, 12, 13], [-0.25, -0.5, -0.75], "stop"), ([14, 15], [-0.25, -0.5], "length")]
    assert bodies[0] == {"model": "sim", "prompt": [1, 2, 3], "temperature": 0.7, "top_p": 0.9,
                         "max_tokens": 5, "stop": ["\n\n"], "seed": 11, "return_token_ids": True,
                         "skip_special_tokens": False, "logprobs": 0, "return_tokens_as_token_ids": True}
    assert bodies[1]["prompt"] == [4, 5] and bodies[1]["seed"] == 12  # seed + index, as for chat
    assert "logprobs" not in bodies[2] and "seed" not in bodies[2]
    assert (no_lp[0].ids, no_lp[0].logprobs) == ([17], None)


def test_generate_reads_token_id_strings_when_the_server_has_no_token_ids():
    from tests.eval_fixtures import ScriptedChatServer

    with ScriptedChatServer(lambda b: "", lambda b: vllm_choice([5, 9, 2], token_ids=False)) as srv:
        out = OpenAIChatEngine(srv.url, "sim").generate([[1]], SAMPLING)[0]
    assert (out.ids, out.logprobs, out.finish) == ([5, 9, 2], [-0.25, -0.5, -0.75], "stop")


def test_generate_errors_retries_and_balancing():
    from tests.eval_fixtures import ScriptedChatServer

    seen = {"bad": 0}

    def complete(body):
        kind = body["prompt"][0]
        if kind == 400:
            raise ValueError("prompt too long")  # the fixture answers HTTP 400
        if kind == 1:
            return vllm_choice([3], logprobs=False, token_ids=False)  # no ids at all
        if kind == 2:
            return vllm_choice([3], finish="abort")
        if kind == 3 and seen["bad"] == 0:  # ids and logprobs disagree once: retried
            seen["bad"] += 1
            return {**vllm_choice([3, 4]), "token_ids": [3]}
        return vllm_choice([kind, 0])

    with ScriptedChatServer(lambda b: "", complete) as a, ScriptedChatServer(lambda b: "", complete) as b:
        engine, delays = _engine([a.url, b.url], timeout=5.0)
        with pytest.raises(EngineRequestError, match=r"request 0 .*completions answered HTTP 400"):
            engine.generate([[400, 1]], SAMPLING)
        with pytest.raises(EngineRequestError, match="no generated token ids"):
            engine.generate([[1]], SAMPLING)
        with pytest.raises(EngineRequestError, match="'abort'"):
            engine.generate([[2]], SAMPLING)
        outs = engine.generate([[3], [4], [5], [6], [7], [8]], SAMPLING)
    assert [o.ids for o in outs] == [[3, 0], [4, 0], [5, 0], [6, 0], [7, 0], [8, 0]]
    assert seen["bad"] == 1 and len(delays) == 1  # one retry, after a backoff
    assert a.calls["test-model"] > 0 and b.calls["test-model"] > 0  # both endpoints served
