"""The two replies of a turn: both assistants answer the same conversation concurrently, each
reply retried on failure, and a reply that still fails is returned as an error (recorded and
shown to the participant), never as an empty text.

    gen = ReplyGenerator({"base": "builtin:smollm2-135m-instruct", "rl": "openai:...#rl"}, ...)
    left, right = gen.pair(["rl", "base"], messages)   # Reply(text, latency_s, error)
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

from corpora.types import Message
from engines.base import ChatEngine, Sampling
from engines.spec import load_chat_engine, parse_spec


@dataclass(frozen=True)
class Reply:
    """One assistant's answer: `text` (None when it failed), seconds taken (all attempts), and
    the last error after every attempt failed (None on success)."""

    text: str | None
    latency_s: float
    error: str | None


class ReplyGenerator:
    """Loads each assistant's ChatEngine on first use and generates replies for pairs of them.

    specs:     assistant name -> engine spec
    sampling:  how every reply is sampled
    attempts:  tries per reply; engines named by an openai: spec get `timeout` and no retries of
               their own (the attempts here are the retries)
    engines:   already-built engines by name (tests, benchmarks), used instead of the specs
    """

    def __init__(self, specs: dict[str, str], sampling: Sampling, attempts: int = 3,
                 timeout: float = 120.0, engines: dict[str, ChatEngine] | None = None):
        self.specs = dict(specs)
        self.sampling = sampling
        self.attempts = attempts
        self.timeout = timeout
        self._engines: dict[str, ChatEngine] = dict(engines or {})
        self._locks: dict[int, threading.Lock] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="arena-reply")

    def engine(self, name: str) -> ChatEngine:
        """The engine of assistant `name`, loaded once (local models are shared by spec)."""
        with self._lock:
            if name not in self._engines:
                spec = parse_spec(self.specs[name])
                opts = ({"timeout": self.timeout, "max_retries": 0}
                        if spec.backend == "openai" else {})
                self._engines[name] = load_chat_engine(spec, **opts)
            engine = self._engines[name]
            # a local model shared by two names must not generate twice at once
            lock = self._locks.setdefault(id(engine), threading.Lock())
        return engine if spec_is_remote(self.specs.get(name, "openai:")) else _Locked(engine, lock)

    def one(self, name: str, messages: Sequence[Message]) -> Reply:
        """Assistant `name`'s reply to `messages`, tried up to `attempts` times."""
        start, error = time.perf_counter(), "no attempt made"
        for attempt in range(self.attempts):
            try:
                text = self.engine(name).chat([list(messages)], self.sampling)[0]
                if text and text.strip():
                    return Reply(text, time.perf_counter() - start, None)
                error = "the assistant returned an empty reply"
            except Exception as err:  # any backend failure is retried, then recorded
                error = f"{type(err).__name__}: {err}"
            if attempt + 1 < self.attempts:
                time.sleep(min(0.2 * 2 ** attempt, 2.0))
        return Reply(None, time.perf_counter() - start, error[:2000])

    def pair(self, names: Sequence[str], messages: Sequence[Message]) -> list[Reply]:
        """Both replies, generated at the same time, in the order of `names`."""
        futures = [self._pool.submit(self.one, name, messages) for name in names]
        return [f.result() for f in futures]


def spec_is_remote(spec: str) -> bool:
    """True for openai: specs (thread-safe HTTP engines need no lock)."""
    return spec.startswith("openai:")


class _Locked:
    """A ChatEngine whose calls are serialised by a lock (a local model shared by two names)."""

    def __init__(self, engine: ChatEngine, lock: threading.Lock):
        self._engine, self._lock = engine, lock

    def chat(self, conversations, sampling):
        with self._lock:
            return self._engine.chat(conversations, sampling)
