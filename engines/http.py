"""OpenAI-compatible HTTP backend (vLLM, SGLang or hosted servers): `openai:<base_url>#<model>`.

`OpenAIChatEngine.chat` sends one POST {base_url}/chat/completions per conversation from the
engine's pool of `max_concurrency` worker threads and returns the replies in order;
`chat_each` yields them as they arrive, so a caller (the disk cache) can save each answer at once.
`generate` is the TokenEngine side: one POST {base_url}/completions per prompt, the prompt sent
as token ids, the generated ids (and log-probabilities) read back (engines/http_tokens.py; needs
a server that returns ids, e.g. vLLM). Both go through the same request machinery below.
Robustness:
- retries with exponential backoff and jitter on 429, 408, 5xx, connection errors, timeouts and
  malformed bodies; a Retry-After header (seconds) is honoured, up to `max_backoff`;
- other 4xx answers fail at once (retrying a bad request cannot help);
- when retries run out, EngineRequestError names the request index, model, endpoint and the last
  status or error;
- several base URLs are balanced: each request goes to the endpoint with the fewest requests in
  flight (ties in turn);
- the API key is read from an environment variable (default OPENAI_API_KEY) and is never put in
  logs, reprs or error messages; with no key set, no Authorization header is sent;
- HTTP/1.1 keep-alive connections are reused across requests and calls; an idle connection the
  server has closed is replaced before it is used. HTTP(S)_PROXY / ALL_PROXY / NO_PROXY are
  honoured for http:// proxies.
Wire layer: the standard library's http.client, one connection per request in flight, opened
with TCP_NODELAY. Client CPU per request is what bounds judging throughput on a small machine
(each request's Python work holds the GIL): measured on 2 cores against a loopback server,
http.client costs about 0.2 ms of CPU per request where httpx.Client costs about 1 ms (1.6–2.5 ms
with 32 threads sharing its pool) and httpx.AsyncClient about 4 ms at 32 concurrent requests;
benchmarks/judge.py measures this engine's throughput.
Seeds: a seeded call gives conversation i the seed `seed + i`, so identical conversations in one
call still get different samples while the call stays reproducible.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import logging
import os
import random
import select
import socket
import ssl
import threading
import time
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import unquote, urlsplit

from corpora.types import Message
from engines.base import Sampling, TokenOutput

log = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({408, 429})


class EngineRequestError(RuntimeError):
    """A request that failed for good (retries exhausted, or a non-retryable answer)."""


class RetryableError(Exception):
    """One failed attempt that may succeed if repeated; `retry_after` is the server's hint (s)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Endpoint:
    """Where one base URL's requests go: the server itself, or an HTTP proxy in front of it.

    target:  the request target's prefix, to which a route (/chat/completions) is appended: the
             base URL's path, or the base URL itself when sent through a plain-HTTP proxy
    connect: (host, port) of the TCP connection; tunnel: (host, port) to CONNECT to via a proxy
    headers: the static request headers (Content-Type, Authorization, Proxy-Authorization)
    """

    base_url: str
    https: bool
    connect: tuple[str, int]
    target: str
    tunnel: tuple[str, int] | None
    tunnel_headers: dict[str, str]
    headers: dict[str, str]


class OpenAIChatEngine:
    """ChatEngine (and TokenEngine) over one or more OpenAI-compatible servers.

    base_urls:       one URL, a comma-separated string, or a list (e.g. http://host:8000/v1)
    model:           the model name the servers serve
    api_key_env:     environment variable holding the API key (unset → no Authorization header)
    max_concurrency: most requests in flight at once, over all endpoints and all calls of this
                     engine (its worker threads)
    timeout:         seconds per network operation (connect, each send, each read)
    max_retries:     retries after the first attempt, per request
    backoff:         first retry delay in seconds; doubles per retry, times a jitter in [0.5, 1]
    max_backoff:     cap on any single delay, Retry-After included
    extra_body:      extra JSON fields sent with every request (e.g. {"top_k": 20})
    tokenizer:       the served model's tokenizer (an object, or a local folder / hub id loaded
                     with AutoTokenizer), for callers that build prompt ids for `generate`;
                     None when only chat is used
    """

    def __init__(self, base_urls: str | Sequence[str], model: str, *, api_key_env: str = "OPENAI_API_KEY",
                 max_concurrency: int = 8, timeout: float = 120.0, max_retries: int = 5,
                 backoff: float = 0.5, max_backoff: float = 60.0, extra_body: dict[str, Any] | None = None,
                 name: str | None = None, sleep: Callable[[float], None] = time.sleep,
                 tokenizer: Any = None):
        urls = base_urls.split(",") if isinstance(base_urls, str) else list(base_urls)
        self.base_urls = tuple(u.strip().rstrip("/") for u in urls if u.strip())
        if not self.base_urls:
            raise ValueError("OpenAIChatEngine needs at least one base URL, e.g. http://localhost:8000/v1")
        if max_concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ValueError("max_concurrency must be >= 1, max_retries >= 0 and timeout > 0")
        self.model = model
        self.name = name or f"openai:{','.join(self.base_urls)}#{model}"
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.extra_body = dict(extra_body or {})
        if isinstance(tokenizer, str):
            from engines.http_tokens import load_tokenizer

            tokenizer = load_tokenizer(tokenizer)
        self.tokenizer = tokenizer
        self._sleep = sleep
        key = os.environ.get(api_key_env)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._endpoints = {u: _endpoint(u, headers) for u in self.base_urls}
        self._ssl = ssl.create_default_context() if any(
            e.https for e in self._endpoints.values()) else None
        self._in_flight = {u: 0 for u in self.base_urls}
        self._idle: dict[str, list[http.client.HTTPConnection]] = {u: [] for u in self.base_urls}
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIChatEngine(name={self.name!r}, max_concurrency={self.max_concurrency})"

    def close(self) -> None:
        """Stop the worker threads and close the idle connections (call when no chat is running;
        a later chat starts them again)."""
        with self._lock:
            pool, self._pool = self._pool, None
            idle = [c for conns in self._idle.values() for c in conns]
            for conns in self._idle.values():
                conns.clear()
        if pool is not None:
            pool.shutdown(wait=True)
        for conn in idle:
            conn.close()

    def chat(self, conversations: Sequence[Sequence[Message]], sampling: Sampling) -> list[str]:
        """One reply per conversation, in order; raises EngineRequestError if any request fails."""
        replies: list[str | None] = [None] * len(conversations)
        for index, reply in self.chat_each(conversations, sampling):
            replies[index] = reply
        return replies  # type: ignore[return-value]

    def chat_each(self, conversations: Sequence[Sequence[Message]], sampling: Sampling
                  ) -> Iterator[tuple[int, str]]:
        """(index, reply) for every conversation, in the order the replies arrive.

        When a request fails for good, requests not yet started are dropped, those already sent
        are still awaited and yielded (their answers are not wasted), and then the first
        EngineRequestError is raised. Closing the iterator early drops the requests not started.
        """
        bodies = [self.body(i, conv, sampling) for i, conv in enumerate(conversations)]
        yield from self._each("/chat/completions", bodies, _reply_text)

    def generate(self, prompt_ids: Sequence[Sequence[int]], sampling: Sampling, *,
                 logprobs: bool = True) -> list[TokenOutput]:
        """TokenEngine: one continuation per prompt of token ids, in order, over /completions
        (engines/http_tokens.py: what is sent and read back); raises EngineRequestError if any
        request fails. logprobs: also return each generated id's log-probability."""
        from engines.http_tokens import completion_body, token_output

        bodies = [completion_body(self, i, ids, sampling, logprobs) for i, ids in enumerate(prompt_ids)]
        outputs: list[TokenOutput | None] = [None] * len(bodies)
        for index, output in self._each("/completions", bodies,
                                        lambda text: token_output(text, sampling, self.tokenizer, logprobs)):
            outputs[index] = output
        return outputs  # type: ignore[return-value]

    def _each(self, route: str, bodies: Sequence[dict[str, Any]], parse: Callable[[str], Any]
              ) -> Iterator[tuple[int, Any]]:
        """(index, parse(answer)) for every request body POSTed to `route`, as they arrive (the
        failure policy of `chat_each`)."""
        if not bodies:
            return
        pool = self._workers()
        futures: dict[Future, int] = {pool.submit(self._request, i, route, body, parse): i
                                      for i, body in enumerate(bodies)}
        error: BaseException | None = None
        try:
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                if future.exception() is not None:
                    if error is None:
                        error = future.exception()
                        for other in futures:
                            other.cancel()
                    continue
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()
        if error is not None:
            raise error

    def body(self, index: int, conversation: Sequence[Message], sampling: Sampling) -> dict[str, Any]:
        """The JSON body of request `index` (public so callers and tests can see what is sent)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.as_dict() if isinstance(m, Message) else dict(m) for m in conversation],
            "temperature": sampling.temperature, "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            body["seed"] = sampling.seed + index
        if sampling.json_schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "output", "schema": sampling.json_schema, "strict": True}}
        body.update(self.extra_body)
        return body

    def _workers(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="wildsim-http")
            return self._pool

    def _request(self, index: int, route: str, body: dict[str, Any], parse: Callable[[str], Any]) -> Any:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode()  # once, for every attempt
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            endpoint, conn = self._acquire()
            try:
                return parse(self._attempt(endpoint, conn, route, data))
            except RetryableError as err:
                last = f"{endpoint.base_url}: {err}"
                if attempt < self.max_retries:
                    self._sleep(self._delay(attempt, err.retry_after))
            except EngineRequestError as err:
                raise EngineRequestError(f"request {index} (model {self.model!r}) failed: {err}") from None
        raise EngineRequestError(
            f"request {index} (model {self.model!r}) failed after {self.max_retries + 1} attempts; "
            f"last: {last}")

    def _attempt(self, endpoint: _Endpoint, conn: http.client.HTTPConnection | None, route: str,
                 data: bytes) -> str:
        """One POST to `route` on a kept-alive connection (or a new one), returning the answer's
        text; the connection goes back to the idle pool only after a complete exchange."""
        try:
            if conn is None or _dropped(conn):
                if conn is not None:
                    conn.close()
                conn = self._connect(endpoint)
            conn.request("POST", endpoint.target + route, body=data, headers=endpoint.headers)
            response = conn.getresponse()
            status, payload = response.status, response.read()
            retry_after = response.getheader("Retry-After")
        except TimeoutError as err:
            if conn is not None:
                conn.close()
            raise RetryableError(f"timed out ({type(err).__name__})") from None
        except (OSError, http.client.HTTPException) as err:
            if conn is not None:
                conn.close()
            raise RetryableError(f"connection error ({type(err).__name__}: {err})") from None
        finally:
            self._release(endpoint)
        self._keep(endpoint, conn)
        text = payload.decode("utf-8", errors="replace")
        if status in RETRY_STATUSES or status >= 500:
            raise RetryableError(f"HTTP {status} {snippet(text)}", _retry_after(retry_after))
        if status >= 400:
            raise EngineRequestError(f"{endpoint.base_url}{route} answered HTTP {status} {snippet(text)}")
        return text

    def _connect(self, endpoint: _Endpoint) -> http.client.HTTPConnection:
        host, port = endpoint.connect
        if not endpoint.https:
            return _HTTPConnection(host, port, timeout=self.timeout)
        conn = _HTTPSConnection(host, port, timeout=self.timeout, context=self._ssl)
        if endpoint.tunnel is not None:
            conn.set_tunnel(*endpoint.tunnel, headers=endpoint.tunnel_headers)
        return conn

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry `attempt + 1`: the server's Retry-After when given, else
        exponential backoff with jitter; never more than max_backoff."""
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        return min(self.backoff * 2 ** attempt, self.max_backoff) * random.uniform(0.5, 1.0)

    def _acquire(self) -> tuple[_Endpoint, http.client.HTTPConnection | None]:
        """The endpoint with the fewest requests in flight (ties taken in turn), counted one more,
        and one of its idle connections (None when there is none)."""
        with self._lock:
            turn = next(self._turn)
            n = len(self.base_urls)
            url = min((self.base_urls[(turn + k) % n] for k in range(n)), key=self._in_flight.__getitem__)
            self._in_flight[url] += 1
            idle = self._idle[url]
            return self._endpoints[url], (idle.pop() if idle else None)

    def _release(self, endpoint: _Endpoint) -> None:
        with self._lock:
            self._in_flight[endpoint.base_url] -= 1

    def _keep(self, endpoint: _Endpoint, conn: http.client.HTTPConnection) -> None:
        """Put a connection whose exchange completed back in the idle pool, if the server keeps it."""
        if conn.sock is None:  # the server answered "Connection: close"
            return
        with self._lock:
            self._idle[endpoint.base_url].append(conn)


class _HTTPConnection(http.client.HTTPConnection):
    """http.client sends a request's headers and body in two writes: with Nagle's algorithm on,
    the body would wait for the server to acknowledge the headers (a delayed ACK), so the
    connection is opened with TCP_NODELAY, as urllib3 does."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _HTTPSConnection(http.client.HTTPSConnection):
    """HTTPSConnection opened with TCP_NODELAY (see _HTTPConnection)."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _endpoint(base_url: str, headers: dict[str, str]) -> _Endpoint:
    """How to reach `base_url`: directly, or through the proxy the environment names for it."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base URL {base_url!r} must look like http(s)://host[:port]/v1")
    https = parts.scheme == "https"
    server = (parts.hostname, parts.port or (443 if https else 80))
    path = parts.path
    proxy = _proxy_for(parts.scheme, parts.hostname)
    if proxy is None:
        return _Endpoint(base_url, https, server, path, None, {}, dict(headers))
    proxy_at, proxy_headers = proxy
    if https:  # CONNECT tunnel through the proxy, TLS to the server
        return _Endpoint(base_url, True, proxy_at, path, server, proxy_headers, dict(headers))
    return _Endpoint(base_url, False, proxy_at, base_url, None, {},
                     {**headers, **proxy_headers})


def _proxy_for(scheme: str, host: str) -> tuple[tuple[str, int], dict[str, str]] | None:
    """The http:// proxy the environment (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY) names for a host,
    as ((host, port), Proxy-Authorization header if it has credentials); None to go direct."""
    proxies = urllib.request.getproxies()
    url = proxies.get(scheme) or proxies.get("all")
    if not url or urllib.request.proxy_bypass(host):
        return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        log.warning("proxy %s://%s is not an http:// proxy; connecting to %s directly",
                    parts.scheme, parts.hostname, host)
        return None
    headers = {}
    if parts.username is not None:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(token).decode()
    return (parts.hostname, parts.port or 80), headers


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle keep-alive connection is unusable: closed, or readable while idle (the
    server closed it, or sent something nobody asked for)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _reply_text(text: str) -> str:
    """The assistant text of a /chat/completions response body; malformed bodies are retryable."""
    try:
        content = json.loads(text)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise RetryableError(f"malformed response body {snippet(text)}") from None
    if not isinstance(content, str):
        raise RetryableError(f"response has no text content {snippet(text)}")
    return content.strip()


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the header's delta-seconds form; an HTTP date counts as absent)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return repr(text[:limit] + ("…" if len(text) > limit else ""))
