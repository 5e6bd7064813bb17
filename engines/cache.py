"""A resumable disk cache in front of a ChatEngine, for judges and annotators.

`CachedChatEngine(inner, path, key_prefix)` answers each conversation from an append-only JSONL
file when it can and sends only the misses to `inner`. Each answer is appended as soon as it
arrives and flushed to the operating system, so a process killed half-way (even SIGKILL)
resumes without repeating any call it had received an answer to: an inner engine with
`chat_each(conversations, sampling)` (the HTTP engine) gets all the misses in one call and hands
answers over one by one as its requests complete; any other engine gets `batch_size` misses per
`chat` call and hands over each batch when it returns. The file is fsynced every `batch_size`
answers, so a machine crash loses at most that many. A last line cut short by a crash is dropped
(and reported) when the file is opened.

Key: sha256 of (key_prefix, the conversation's messages, the sampling settings, and the
occurrence number of that same request within the call). The occurrence number keeps identical
requests inside one call distinct, so sampled duplicates still get their own answers. Change
`key_prefix` (e.g. to the engine spec plus a prompt version) whenever answers should not be reused.
Seeds: the key holds the sampling settings, not a request's position in the batch, so a backend
that varies the seed by position (HTTP, vLLM) may answer a resumed run's misses differently than
an uninterrupted run would; at temperature 0 this does not matter.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator, Sequence

from tqdm import tqdm

from corpora.types import Message
from engines.base import ChatEngine, Sampling

log = logging.getLogger(__name__)


def request_key(key_prefix: str, conversation: Sequence[Message], sampling: Sampling | dict,
                occurrence: int = 0) -> str:
    """The cache key (hex sha256) of one chat request; `sampling` may be given as
    `dataclasses.asdict(sampling)`, which a caller keying many requests computes once."""
    payload = {
        "prefix": key_prefix,
        "messages": [m.as_dict() if isinstance(m, Message) else dict(m) for m in conversation],
        "sampling": sampling if isinstance(sampling, dict) else asdict(sampling),
        "occurrence": occurrence,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class CachedChatEngine:
    """ChatEngine that answers from a JSONL cache file and forwards only misses to `inner`.

    inner:      the engine doing the real work
    path:       the JSONL cache file (created, with its folder, if missing)
    key_prefix: what makes answers of this engine/prompt distinct (default: inner.name)
    batch_size: answers between two fsyncs of the file; for an inner engine without `chat_each`
                also the misses per inner call (answers are saved when each such call returns).
                An engine with `chat_each` gets all misses of a call at once, so a concurrent
                one (HTTP) stays busy instead of draining at every batch boundary.
    Counters: `hits` and `misses` over this object's lifetime; `dropped_lines` when opening.
    """

    def __init__(self, inner: ChatEngine, path: str | Path, key_prefix: str | None = None, *,
                 batch_size: int = 64):
        prefix = key_prefix if key_prefix is not None else getattr(inner, "name", None)
        if not prefix:
            raise ValueError("CachedChatEngine needs key_prefix (e.g. the engine spec) for an inner "
                             "engine without a `name`")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.inner, self.path, self.key_prefix = inner, Path(path), prefix
        self.batch_size = batch_size
        self.name = f"cached({prefix})"
        self.hits = self.misses = 0
        self._lock = threading.Lock()
        self.answers, self.dropped_lines = load_cache(self.path)

    def __repr__(self) -> str:
        return f"CachedChatEngine({self.key_prefix!r}, path={str(self.path)!r}, size={len(self.answers)})"

    def chat(self, conversations: Sequence[Sequence[Message]], sampling: Sampling) -> list[str]:
        """One reply per conversation, in order: cached ones from disk, the rest from `inner`."""
        keys = self._keys(conversations, sampling)
        missing = [i for i, k in enumerate(keys) if k not in self.answers]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            with tqdm(total=len(missing), desc=f"chat {self.key_prefix}",
                      disable=len(missing) <= self.batch_size) as progress, self._appender() as save:
                for key, reply in self._ask([conversations[i] for i in missing],
                                            [keys[i] for i in missing], sampling):
                    save(key, reply)
                    progress.update()
        return [self.answers[k] for k in keys]

    def _ask(self, conversations: Sequence[Sequence[Message]], keys: Sequence[str],
             sampling: Sampling) -> Iterator[tuple[str, str]]:
        """(key, reply) for every miss, as `inner` hands them over: one by one from `chat_each`,
        else a batch of `batch_size` per `chat` call."""
        chat_each = getattr(self.inner, "chat_each", None)
        if chat_each is not None:
            answered = 0
            for j, reply in chat_each(conversations, sampling):
                answered += 1
                yield keys[j], reply
            if answered != len(keys):
                raise RuntimeError(f"{self.key_prefix}: inner engine answered {answered} of "
                                   f"{len(keys)} conversations")
            return
        for s in range(0, len(keys), self.batch_size):
            batch = conversations[s:s + self.batch_size]
            replies = self.inner.chat(batch, sampling)
            if len(replies) != len(batch):
                raise RuntimeError(f"{self.key_prefix}: inner engine returned {len(replies)} "
                                   f"replies for {len(batch)} conversations")
            yield from zip(keys[s:s + self.batch_size], replies)

    def _keys(self, conversations: Sequence[Sequence[Message]], sampling: Sampling) -> list[str]:
        fields = asdict(sampling)  # once per call: asdict is slow next to the hashing
        seen: dict[str, int] = {}
        keys = []
        for conv in conversations:
            base = request_key(self.key_prefix, conv, fields)
            n = seen[base] = seen.get(base, -1) + 1
            keys.append(base if n == 0 else request_key(self.key_prefix, conv, fields, n))
        return keys

    @contextmanager
    def _appender(self) -> Iterator[Callable[[str, str], None]]:
        """A `save(key, reply)` that appends one record and flushes it to the operating system (it
        then outlives a killed process); the file is fsynced every `batch_size` records and when
        the block ends, error or not (a machine crash loses at most the records since)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            unsynced = 0

            def save(key: str, reply: str) -> None:
                nonlocal unsynced
                line = json.dumps({"key": key, "reply": reply}, ensure_ascii=False) + "\n"
                with self._lock:
                    f.write(line)
                    f.flush()
                    self.answers[key] = reply
                unsynced += 1
                if unsynced >= self.batch_size:
                    os.fsync(f.fileno())
                    unsynced = 0

            try:
                yield save
            finally:
                f.flush()
                os.fsync(f.fileno())


def load_cache(path: Path) -> tuple[dict[str, str], int]:
    """Read a cache file into {key: reply}; returns (answers, number of unreadable lines dropped).

    A last line without its newline (a write cut short) is removed from the file so that new
    records start on a fresh line; other unreadable lines are skipped and reported.
    """
    answers: dict[str, str] = {}
    if not path.exists():
        return answers, 0
    data = path.read_bytes()
    dropped = 0
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(keep)
        log.warning("%s: dropped an incomplete last record (%d bytes)", path, len(data) - keep)
        data, dropped = data[:keep], 1
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            answers[record["key"]] = record["reply"]
        except (ValueError, KeyError, TypeError):
            dropped += 1
            log.warning("%s:%d: unreadable cache record skipped", path, number)
    return answers, dropped
