"""OpenAI-compatible HTTP chat backend (vLLM, SGLang or hosted servers): `openai:<base_url>#<model>`.

`OpenAIChatEngine.chat` sends one POST {base_url}/chat/completions per conversation from a
bounded thread pool and returns the replies in order. Robustness:
- retries with exponential backoff and jitter on 429, 408, 5xx, connection errors, timeouts and
  malformed bodies; a Retry-After header (seconds) is honoured, up to `max_backoff`;
- other 4xx answers fail at once (retrying a bad request cannot help);
- when retries run out, EngineRequestError names the request index, model, endpoint and the last
  status or error;
- several base URLs are balanced: each request goes to the endpoint with the fewest requests in
  flight (ties in turn);
- the API key is read from an environment variable (default OPENAI_API_KEY) and is never put in
  logs, reprs or error messages; with no key set, no Authorization header is sent.
Seeds: a seeded call gives conversation i the seed `seed + i`, so identical conversations in one
call still get different samples while the call stays reproducible.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Callable, Sequence

import httpx

from corpora.types import Message
from engines.base import Sampling

RETRY_STATUSES = frozenset({408, 429})


class EngineRequestError(RuntimeError):
    """A chat request that failed for good (retries exhausted, or a non-retryable answer)."""


class _Retryable(Exception):
    """One failed attempt that may succeed if repeated; `retry_after` is the server's hint (s)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class OpenAIChatEngine:
    """ChatEngine over one or more OpenAI-compatible /chat/completions endpoints.

    base_urls:       one URL, a comma-separated string, or a list (e.g. http://host:8000/v1)
    model:           the model name the servers serve
    api_key_env:     environment variable holding the API key (unset → no Authorization header)
    max_concurrency: most requests in flight at once, over all endpoints
    timeout:         seconds per attempt (connect, read, write and pool)
    max_retries:     retries after the first attempt, per request
    backoff:         first retry delay in seconds; doubles per retry, times a jitter in [0.5, 1]
    max_backoff:     cap on any single delay, Retry-After included
    extra_body:      extra JSON fields sent with every request (e.g. {"top_k": 20})
    """

    def __init__(self, base_urls: str | Sequence[str], model: str, *, api_key_env: str = "OPENAI_API_KEY",
                 max_concurrency: int = 8, timeout: float = 120.0, max_retries: int = 5,
                 backoff: float = 0.5, max_backoff: float = 60.0, extra_body: dict[str, Any] | None = None,
                 name: str | None = None, sleep: Callable[[float], None] = time.sleep):
        urls = base_urls.split(",") if isinstance(base_urls, str) else list(base_urls)
        self.base_urls = tuple(u.strip().rstrip("/") for u in urls if u.strip())
        if not self.base_urls:
            raise ValueError("OpenAIChatEngine needs at least one base URL, e.g. http://localhost:8000/v1")
        if max_concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ValueError("max_concurrency must be >= 1, max_retries >= 0 and timeout > 0")
        self.model = model
        self.name = name or f"openai:{','.join(self.base_urls)}#{model}"
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.extra_body = dict(extra_body or {})
        self._sleep = sleep
        self._in_flight = {u: 0 for u in self.base_urls}
        self._turn = itertools.count()
        self._lock = threading.Lock()
        key = os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency))

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIChatEngine(name={self.name!r}, max_concurrency={self.max_concurrency})"

    def close(self) -> None:
        self._client.close()

    def chat(self, conversations: Sequence[Sequence[Message]], sampling: Sampling) -> list[str]:
        """One reply per conversation, in order; raises EngineRequestError if any request fails."""
        if not conversations:
            return []
        replies: list[str | None] = [None] * len(conversations)
        workers = min(self.max_concurrency, len(conversations))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wildsim-http") as pool:
            futures = {pool.submit(self._request, i, conv, sampling): i
                       for i, conv in enumerate(conversations)}
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
            for future in done:
                if future.exception() is not None:
                    raise future.exception()
                replies[futures[future]] = future.result()
        return replies  # type: ignore[return-value]

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

    def _request(self, index: int, conversation: Sequence[Message], sampling: Sampling) -> str:
        body = self.body(index, conversation, sampling)
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            url = self._acquire()
            try:
                return self._attempt(url, body)
            except _Retryable as err:
                last = f"{url}: {err}"
                if attempt < self.max_retries:
                    self._sleep(self._delay(attempt, err.retry_after))
            except EngineRequestError as err:
                raise EngineRequestError(f"request {index} (model {self.model!r}) failed: {err}") from None
            finally:
                self._release(url)
        raise EngineRequestError(
            f"request {index} (model {self.model!r}) failed after {self.max_retries + 1} attempts; "
            f"last: {last}")

    def _attempt(self, base_url: str, body: dict[str, Any]) -> str:
        url = f"{base_url}/chat/completions"
        try:
            response = self._client.post(url, json=body)
        except httpx.TimeoutException as err:
            raise _Retryable(f"timed out ({type(err).__name__})") from None
        except httpx.TransportError as err:
            raise _Retryable(f"connection error ({type(err).__name__}: {err})") from None
        status = response.status_code
        if status in RETRY_STATUSES or status >= 500:
            raise _Retryable(f"HTTP {status} {_snippet(response.text)}",
                             _retry_after(response.headers.get("retry-after")))
        if status >= 400:
            raise EngineRequestError(f"{url} answered HTTP {status} {_snippet(response.text)}")
        return _reply_text(response.text)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry `attempt + 1`: the server's Retry-After when given, else
        exponential backoff with jitter; never more than max_backoff."""
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        return min(self.backoff * 2 ** attempt, self.max_backoff) * random.uniform(0.5, 1.0)

    def _acquire(self) -> str:
        """The endpoint with the fewest requests in flight (ties taken in turn); counts one more."""
        with self._lock:
            turn = next(self._turn)
            n = len(self.base_urls)
            order = [self.base_urls[(turn + k) % n] for k in range(n)]
            url = min(order, key=lambda u: self._in_flight[u])
            self._in_flight[url] += 1
            return url

    def _release(self, url: str) -> None:
        with self._lock:
            self._in_flight[url] -= 1


def _reply_text(text: str) -> str:
    """The assistant text of a /chat/completions response body; malformed bodies are retryable."""
    try:
        content = json.loads(text)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise _Retryable(f"malformed response body {_snippet(text)}") from None
    if not isinstance(content, str):
        raise _Retryable(f"response has no text content {_snippet(text)}")
    return content.strip()


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the header's delta-seconds form; an HTTP date counts as absent)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return repr(text[:limit] + ("…" if len(text) > limit else ""))
